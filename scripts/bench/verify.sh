#!/usr/bin/env bash
# Benchmark: `backup-monitor --monitor --verify` hashing throughput, side by side with the
# coreutils / OpenSSL / b3sum tools a sysadmin would otherwise script (issue 3).
#
#   scripts/bench/verify.sh            # builds the release binary if needed
#   BACKUP_MONITOR_BIN=/path/to/bin scripts/bench/verify.sh
#
# Needs: sha256sum, md5sum, openssl, b3sum (apt: b3sum), /usr/bin/time (apt: time),
# python3, and about 9 GiB free under $TMPDIR (removed on exit). Page cache is warm for
# every measurement (each data set is read once before it is timed), as in a nightly run
# shortly after the backups were written. Every backup-monitor run starts from a fresh
# store, so it is a first sight: every file is hashed.
#
# Scenarios and the issue's targets:
#   A  16 x 128 MiB, sha256:  >= 0.9x `xargs -P2 openssl dgst -sha256`, >= 8x sha256sum
#   A  16 x 128 MiB, md5:     >= 1.6x md5sum
#   B  one 2 GiB file:        sha256 >= 0.95x openssl dgst; blake3 >= 0.8x b3sum
#   C  10,000 x 64 KiB:       >= 5x sha256sum
#   D  one 4 GiB file:        peak RSS < 64 MiB (sha256 streaming; blake3 shown too)
#   E  second run of A and C with verify_sample 0.1: bytes hashed <= 15% of the total
#   S  the read-size sweep: B (sha256) and A (md5) with BACKUP_MONITOR_HASH_READ_SIZE
#      from 16 KiB to 1 MiB (SWEEP="16KiB 64KiB ..." to choose), beside the baselines,
#      to choose the default in src/tuning.rs on the machine at hand. SWEEP=none skips it.
set -euo pipefail
export LC_ALL=C
root="$(cd "$(dirname "$0")/../.." && pwd)"
bin="${BACKUP_MONITOR_BIN:-${CARGO_TARGET_DIR:-$root/target}/release/backup-monitor}"
if [ -z "${BACKUP_MONITOR_BIN:-}" ]; then
  (cd "$root" && cargo build --release -q)
fi
[ -x "$bin" ] || { echo "no binary at $bin" >&2; exit 1; }
for tool in sha256sum md5sum openssl b3sum python3 /usr/bin/time; do
  command -v "$tool" > /dev/null || { echo "missing $tool" >&2; exit 1; }
done

work="$(mktemp -d "${TMPDIR:-/tmp}/verify-bench.XXXXXX")"
trap 'rm -rf "$work"' EXIT
cd "$work"
mkdir -p a big huge small
MiB=$((1024 * 1024))

echo "preparing data in $work ..." >&2
head -c $((128 * MiB)) /dev/urandom > a/part_00.bin
for i in $(seq -w 1 15); do
  cp a/part_00.bin "a/part_$i.bin"
  printf '%s' "$i" | dd of="a/part_$i.bin" conv=notrunc status=none # distinct content
done
cat a/*.bin > big/one.bin
cat big/one.bin big/one.bin > huge/four.bin
python3 - small <<'PY'
import os, sys
d = sys.argv[1]
block = os.urandom(64 * 1024)
for i in range(10_000):
    with open(os.path.join(d, f"f_{i:05d}.bin"), "wb") as f:
        f.write(i.to_bytes(4, "little") + block[4:])
PY
sync
cat a/* big/* huge/* > /dev/null
find small -type f -exec cat {} + > /dev/null

# config <name> <dir> <checksum> <sample>: a config with its own fresh store.
config() {
  cat > "$1.yaml" <<YAML
database_url: sqlite://$1.db
timezone: UTC
logging: { file: null }
backups:
  locations:
    - name: $1
      path: $2
      schedule: hourly
      retention_days: 3650
      settle: 0s
      checksum: $3
      verify_sample: $4
YAML
}

# measure <label> <command...>: best wall time of $REPS runs into $secs, with that run's
# CPU seconds (user + system) in $cpu and peak RSS (KiB) in $rss. Set $fresh to a store
# path to delete it before every run (each backup-monitor run is then a first sight).
REPS="${REPS:-2}"
fresh=""
measure() {
  local label="$1"; shift
  local best="" r w u s m
  for r in $(seq "$REPS"); do
    [ -n "$fresh" ] && rm -f "$fresh" "$fresh-wal" "$fresh-shm"
    /usr/bin/time -f '%e %U %S %M' -o time.txt "$@" > out.run 2> err.txt || true
    read -r w u s m < time.txt
    if [ -z "$best" ] || python3 -c "import sys; sys.exit(0 if float(sys.argv[1]) < float(sys.argv[2]) else 1)" "$w" "$best"; then
      best=$w; secs=$w; rss=$m; cpu=$(python3 -c "print(round($u + $s, 2))"); cp out.run out.txt
    fi
  done
  printf '  %-46s %8.2f s wall %8.2f s CPU %7.0f MiB\n' "$label" "$secs" "$cpu" "$((rss / 1024))" >&2
}

# monitor <config>: run --monitor --verify from a fresh store; sets $secs, $cpu, $rss and
# $hashed (bytes). monitor_again <config>: the same on the existing store, once.
monitor() {
  fresh="$1.db"
  measure "backup-monitor ($1)" "$bin" --config "$1.yaml" --monitor --verify --format json --no-progress -q
  fresh=""
  hashed=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["verification"]["bytes"])' out.txt)
}
monitor_again() {
  local reps=$REPS; REPS=1
  measure "backup-monitor ($1, second run)" "$bin" --config "$1.yaml" --monitor --verify --format json --no-progress -q
  REPS=$reps
  hashed=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["verification"]["bytes"])' out.txt)
}

rows=()
# row <scenario> <base-label> <base-secs> <base-cpu> <ours-secs> <ours-cpu> <bytes> <target>
row() {
  rows+=("$(python3 - "$@" <<'PY'
import sys
scen, base, bs, bc, os_, oc, n, target = sys.argv[1:]
bs, bc, os_, oc, n = map(float, (bs, bc, os_, oc, n))
gbs = lambda s: n / s / 1e9 if s > 0 else float("inf")
ratio = bs / os_ if os_ > 0 else float("inf")
print(f"| {scen} | {base} | {bs:.2f} s ({bc:.2f}) | {gbs(bs):.2f} GB/s | {os_:.2f} s ({oc:.2f}) | {gbs(os_):.2f} GB/s | {ratio:.2f}x | {target} |")
PY
)")
}

A=$((16 * 128 * MiB)); B=$((2048 * MiB)); C=$((10000 * 64 * 1024))

echo "A: 16 x 128 MiB" >&2
measure "sha256sum (sequential)" sha256sum a/*.bin; sha_a=$secs; sha_a_c=$cpu
measure "xargs -P2 openssl dgst -sha256" sh -c 'printf "%s\n" a/*.bin | xargs -P2 -n8 openssl dgst -sha256'; ossl_a=$secs; ossl_a_c=$cpu
config a_sha a sha256 1; monitor a_sha; ours_a=$secs; ours_a_c=$cpu
row "A 16x128MiB sha256" "sha256sum" "$sha_a" "$sha_a_c" "$ours_a" "$ours_a_c" "$A" "≥ 8x"
row "A 16x128MiB sha256" "xargs -P2 openssl" "$ossl_a" "$ossl_a_c" "$ours_a" "$ours_a_c" "$A" "≥ 0.9x"
measure "md5sum (sequential)" md5sum a/*.bin; md5_a=$secs; md5_a_c=$cpu
config a_md5 a md5 1; monitor a_md5
row "A 16x128MiB md5" "md5sum" "$md5_a" "$md5_a_c" "$secs" "$cpu" "$A" "≥ 1.6x"

echo "B: one 2 GiB file" >&2
measure "openssl dgst -sha256" openssl dgst -sha256 big/one.bin; ossl_b=$secs; ossl_b_c=$cpu
config b_sha big sha256 1; monitor b_sha
row "B 1x2GiB sha256" "openssl dgst" "$ossl_b" "$ossl_b_c" "$secs" "$cpu" "$B" "≥ 0.95x"
measure "b3sum" b3sum big/one.bin; b3_b=$secs; b3_b_c=$cpu
config b_b3 big blake3 1; monitor b_b3
row "B 1x2GiB blake3" "b3sum" "$b3_b" "$b3_b_c" "$secs" "$cpu" "$B" "≥ 0.8x"

echo "C: 10,000 x 64 KiB" >&2
measure "sha256sum (sequential)" sh -c 'find small -type f -print0 | xargs -0 sha256sum'; sha_c=$secs; sha_c_c=$cpu
config c_sha small sha256 1; monitor c_sha
row "C 10000x64KiB sha256" "sha256sum" "$sha_c" "$sha_c_c" "$secs" "$cpu" "$C" "≥ 5x"

echo "D: one 4 GiB file, peak RSS" >&2
config d_sha huge sha256 1; monitor d_sha; rss_sha=$((rss / 1024)); secs_d=$secs
config d_b3 huge blake3 1; monitor d_b3; rss_b3=$((rss / 1024)); secs_d3=$secs
measure "b3sum (4 GiB, for reference)" b3sum huge/four.bin; rss_b3sum=$((rss / 1024))

sweep_rows=()
if [ "${SWEEP:-}" != none ]; then
  echo "S: read-size sweep" >&2
  for size in ${SWEEP:-16KiB 32KiB 64KiB 128KiB 256KiB 512KiB 1MiB}; do
    export BACKUP_MONITOR_HASH_READ_SIZE=$size
    config b_sha big sha256 1; monitor b_sha; s_b=$secs
    config a_sha a sha256 1; monitor a_sha; s_a=$secs
    config a_md5 a md5 1; monitor a_md5; s_m=$secs
    unset BACKUP_MONITOR_HASH_READ_SIZE
    sweep_rows+=("$(python3 -c "
import sys
b, a, m = $s_b, $s_a, $s_m
print(f'| $size | {b:.2f} s ({$ossl_b / b:.2f}x) | {a:.2f} s ({$ossl_a / a:.2f}x) | {m:.2f} s ({$md5_a / m:.2f}x) |')")")
  done
fi

echo "E: second run, verify_sample 0.1" >&2
config a_sha a sha256 0.1; monitor_again a_sha; e_a=$hashed; e_a_s=$secs
config c_sha small sha256 0.1; monitor_again c_sha; e_c=$hashed; e_c_s=$secs

cat <<EOF

$(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), page cache warm.
Caches: $(lscpu | grep -E '^(L1d|L2|L3) cache' | sed -E 's/ cache: +/ /' | paste -sd, | sed 's/,/, /g').
SHA extensions: $(grep -qw sha_ni /proc/cpuinfo && echo yes || echo no). Read size: ${BACKUP_MONITOR_HASH_READ_SIZE:-the default}.
Load average at the end: $(cut -d' ' -f1-3 /proc/loadavg). Best wall time of $REPS runs, with
its CPU seconds (user + system) in brackets. ratio = baseline time / backup-monitor
time (higher is better); backup-monitor's time is the whole run: scan, store, hashing,
judging.

| scenario | baseline | baseline time (CPU) | rate | backup-monitor time (CPU) | rate | ratio | target |
|---|---|---|---|---|---|---|---|
EOF
printf '%s\n' "${rows[@]}"
cat <<EOF

| peak RSS, one 4 GiB file | value |
|---|---|
| backup-monitor, sha256 (streaming) | ${rss_sha} MiB (${secs_d} s) |
| backup-monitor, blake3 (16 MiB mmap windows + rayon) | ${rss_b3} MiB (${secs_d3} s) |
| b3sum (mmap + rayon), reference | ${rss_b3sum} MiB |

| second run, verify_sample 0.1 | bytes hashed | share of total | time |
|---|---|---|---|
| A 16 x 128 MiB | ${e_a} | $(python3 -c "print(f'{$e_a/$A*100:.1f}%')") | ${e_a_s} s |
| C 10,000 x 64 KiB | ${e_c} | $(python3 -c "print(f'{$e_c/$C*100:.1f}%')") | ${e_c_s} s |
EOF
if [ ${#sweep_rows[@]} -gt 0 ]; then
  cat <<EOF

Read-size sweep (BACKUP_MONITOR_HASH_READ_SIZE; best of $REPS; ratio to the same baselines:
openssl dgst ${ossl_b} s, xargs -P2 openssl ${ossl_a} s, md5sum ${md5_a} s):

| read size | one 2 GiB file, sha256 | 16 x 128 MiB, sha256 | 16 x 128 MiB, md5 |
|---|---|---|---|
EOF
  printf '%s\n' "${sweep_rows[@]}"
fi
