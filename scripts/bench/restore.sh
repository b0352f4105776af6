#!/usr/bin/env bash
# Benchmark: `backup-monitor --test-restore` side by side with the tools a sysadmin would
# otherwise run (issue 4). One go, one table; timings are never test assertions.
#
#   scripts/bench/restore.sh            # 1 GiB of content; builds the release binary
#   SIZE_MIB=256 scripts/bench/restore.sh
#   BACKUP_MONITOR_BIN=/path/to/bin scripts/bench/restore.sh
#   BENCH_DIR=/tmp/rb scripts/bench/restore.sh   # keep the archives there and reuse them
#   REPEAT=5 scripts/bench/restore.sh            # rounds to take the median of (default 3)
#   SWEEP="256KiB 1MiB" scripts/bench/restore.sh  # chunk sizes to sweep (default 16KiB..1MiB; none)
#   OUT_DIR=/dev/shm scripts/bench/restore.sh     # where both the tool and backup-monitor write
#
# Where they write matters on ext4 without a journal: inodes deleted in the last minutes
# are skipped when new ones are allocated (ext4's recently_deleted), so each repeated
# extraction of thousands of files scans past all the previous run's inodes, and the
# kernel's time grows run after run for both sides (39% of a run's samples here). OUT_DIR
# on a tmpfs removes that; the table says which was used.
#
# Needs: tar, gzip, zstd, zip, unzip, age, python3, /usr/bin/time (apt: time) and about
# 4 x SIZE_MIB free under $TMPDIR (removed on exit). The content is realistic mixed data:
# ~70% log-like text in a few large files, ~15% random (already compressed) data, ~15%
# small text/JSON files. Page cache is warm for every measurement. Every backup-monitor
# run starts from a fresh store, so each archive is really restored (no carried verdict).
#
# Targets: .tar.gz  >= 3x   `tar -xzf` into a temp dir
#          .zip     >= 1x   `unzip -t`
#          .tar.zst >= 1x   `zstd -dc | tar -x`
#          .tar.zst.age >= 0.9x `age -d | zstd -dc | tar -x`
#          peak RSS < 100 MiB in every backup-monitor run
set -euo pipefail
export LC_ALL=C
root="$(cd "$(dirname "$0")/../.." && pwd)"
bin="${BACKUP_MONITOR_BIN:-${CARGO_TARGET_DIR:-$root/target}/release/backup-monitor}"
if [ -z "${BACKUP_MONITOR_BIN:-}" ]; then
  (cd "$root" && cargo build --release -q)
fi
[ -x "$bin" ] || { echo "no binary at $bin" >&2; exit 1; }
bin="$(cd "$(dirname "$bin")" && pwd)/$(basename "$bin")"
for tool in tar gzip zstd zip unzip age age-keygen python3 /usr/bin/time; do
  command -v "$tool" > /dev/null || { echo "missing $tool (apt-get install ${tool##*/})" >&2; exit 1; }
done
size_mib="${SIZE_MIB:-1024}"

if [ -n "${BENCH_DIR:-}" ]; then
  work="$BENCH_DIR"
  mkdir -p "$work"
  trap 'rm -rf "${outdir:-/nonexistent}/out" "${outdir:-/nonexistent}/scratch"' EXIT
else
  work="$(mktemp -d "${TMPDIR:-/tmp}/restore-bench.XXXXXX")"
  trap 'rm -rf "$work" "${outdir:-/nonexistent}/out" "${outdir:-/nonexistent}/scratch"' EXIT
fi
cd "$work"
outdir="${OUT_DIR:-$work}"
mkdir -p backups "$outdir/out" "$outdir/scratch"

if [ -f backups/done ] && [ "$(cat backups/done)" = "$size_mib" ] && [ -f backups/site.tar.zst.age ]; then
  echo "reusing the archives in $work/backups" >&2
  read -r bytes files < backups/content
else
rm -rf content backups/* && mkdir -p content/site
echo "generating ${size_mib} MiB of mixed content in $work ..." >&2
python3 - "$size_mib" <<'PY'
import os, random, sys
total = int(sys.argv[1]) << 20
rnd = random.Random(42)
levels = ["INFO", "INFO", "INFO", "DEBUG", "WARN", "ERROR"]
modules = ["http", "db.pool", "auth", "cache", "scheduler", "mailer", "api.v2", "worker"]
verbs = ["GET", "POST", "PUT", "DELETE"]
paths = ["/api/users/%d", "/api/orders/%d", "/static/app.%x.js", "/login", "/health", "/search?q=%d"]
def fill(p):
    return p % rnd.randrange(1 << 20) if "%" in p else p
def line(i):
    t = "2026-11-%02dT%02d:%02d:%02d.%03dZ" % (1 + i % 28, i // 3600 % 24, i // 60 % 60, i % 60, rnd.randrange(1000))
    msg = "%s %s %d %dms user=%d req=%08x" % (rnd.choice(verbs), fill(rnd.choice(paths)),
          rnd.choice([200, 200, 200, 201, 304, 404, 500]), rnd.randrange(2000), rnd.randrange(50000), rnd.getrandbits(32))
    return "%s %-5s [%s] %s\n" % (t, rnd.choice(levels), rnd.choice(modules), msg)
pool = [line(i) for i in range(200000)]
def write_text(path, size):
    with open(path, "w") as f:
        written = 0
        while written < size:
            chunk = "".join(rnd.choices(pool, k=20000))
            f.write(chunk)
            written += len(chunk)
logs = int(total * 0.70)
for i in range(6):
    write_text("content/site/app-%d.log" % i, logs // 6)
randoms = int(total * 0.15)
for i in range(3):
    with open("content/site/blob-%d.bin" % i, "wb") as f:
        f.write(os.urandom(randoms // 3))
small = int(total * 0.15)
n, done = 0, 0
while done < small:
    d = "content/site/docs/%02d" % (n % 50)
    os.makedirs(d, exist_ok=True)
    size = rnd.randrange(8 << 10, 64 << 10)
    body = "".join('{"id": %d, "name": "item %d", "tags": ["a", "b"], "price": %d.%02d}\n' % (j, j * 7, j % 1000, j % 100) for j in range(size // 60))
    with open("%s/doc-%05d.json" % (d, n), "w") as f:
        f.write(body)
    done += len(body)
    n += 1
PY
bytes=$(du -sb content | cut -f1)
files=$(find content -type f | wc -l)
echo "content: $bytes bytes in $files files; compressing ..." >&2
tar -cf - -C content site | gzip -6 > backups/site.tar.gz
tar -cf - -C content site | zstd -q -T0 -3 -o backups/site.tar.zst
(cd content && zip -q -r -6 ../backups/site.zip site)
rm -f age-key.txt && age-keygen -o age-key.txt 2> /dev/null && chmod 600 age-key.txt
age -r "$(age-keygen -y age-key.txt)" -o backups/site.tar.zst.age backups/site.tar.zst
rm -rf content
# Keep the backups' mtime in the past: they must have settled to be recorded.
touch -d '2 days ago' backups/*
echo "$bytes $files" > backups/content
echo "$size_mib" > backups/done
fi

cat > config.yaml <<YAML
backups:
  locations:
    - { name: targz, path: backups, patterns: ["*.tar.gz"], restore: { scratch_dir: $outdir/scratch, max_bytes: 64GiB } }
    - { name: zip, path: backups, patterns: ["*.zip"], restore: { scratch_dir: $outdir/scratch, max_bytes: 64GiB } }
    - { name: tarzst, path: backups, patterns: ["*.tar.zst"], restore: { scratch_dir: $outdir/scratch, max_bytes: 64GiB } }
    - { name: tarzstage, path: backups, patterns: ["*.tar.zst.age"], restore: { scratch_dir: $outdir/scratch, max_bytes: 64GiB, decrypt: { age_identity_file: age-key.txt } } }
logging: { file: null }
YAML

# time_of <command...>: prints "<wall s> <max RSS KiB> <user+sys CPU s>" of the command.
time_of() {
  if ! /usr/bin/time -f "%e %M %U %S" -o time.txt "$@" > run.out 2> run.err; then
    echo "failed: $*" >&2
    cat run.out run.err time.txt >&2
    return 1
  fi
  tail -n 1 time.txt | awk '{ printf "%s %s %.2f\n", $1, $2, $3 + $4 }'
}

ours() {
  rm -f backup_monitor.db*
  cat "backups/$2" > /dev/null
  local t
  t=$(time_of "$bin" --config config.yaml --test-restore --location-name "$1" --format json --no-progress)
  # A fast failure is no result: the restore test must have passed.
  python3 -c 'import json,sys; r=json.load(open("run.out"))["restore_tests"]; sys.exit(r["passed"] != 1)' || {
    echo "the restore test of $2 did not pass:" >&2
    cat run.out >&2
    return 1
  }
  echo "$t"
}

baseline() {
  rm -rf "$outdir/out" && mkdir "$outdir/out"
  cat "backups/$1" > /dev/null
  shift
  local t
  t=$(time_of bash -c "$*")
  rm -rf "$outdir/out"
  echo "$t"
}

# The machine is shared and noisy: REPEAT rounds (default 3), each timing the tool and
# then backup-monitor on each archive; the table shows the median of each.
repeat="${REPEAT:-3}"
: > times.txt
for round in $(seq "$repeat"); do
  echo "timing, round $round of $repeat ..." >&2
  echo "tar.gz base $(baseline site.tar.gz "tar -xzf backups/site.tar.gz -C $outdir/out")" >> times.txt
  echo "tar.gz ours $(ours targz site.tar.gz)" >> times.txt
  echo "zip base $(baseline site.zip "unzip -t -q backups/site.zip")" >> times.txt
  echo "zip ours $(ours zip site.zip)" >> times.txt
  echo "tar.zst base $(baseline site.tar.zst "zstd -dc backups/site.tar.zst | tar -xf - -C $outdir/out")" >> times.txt
  echo "tar.zst ours $(ours tarzst site.tar.zst)" >> times.txt
  echo "tar.zst.age base $(baseline site.tar.zst.age "age -d -i age-key.txt backups/site.tar.zst.age | zstd -dc | tar -xf - -C $outdir/out")" >> times.txt
  echo "tar.zst.age ours $(ours tarzstage site.tar.zst.age)" >> times.txt
done

python3 - "$bytes" "$files" "$(stat -c %s backups/site.tar.gz)" "$(stat -c %s backups/site.zip)" \
  "$(stat -c %s backups/site.tar.zst)" "$(stat -c %s backups/site.tar.zst.age)" times.txt <<'PY'
import os, statistics, sys
content, files = int(sys.argv[1]), int(sys.argv[2])
sizes = dict(zip(["tar.gz", "zip", "tar.zst", "tar.zst.age"], map(int, sys.argv[3:7])))
runs = {}
for line in open(sys.argv[7]):
    fmt, who, wall, kb, cpu = line.split()
    runs.setdefault((fmt, who), []).append((float(wall), int(kb), float(cpu)))
rows = [("tar.gz", "tar -xzf", 3.0), ("zip", "unzip -t", 1.0), ("tar.zst", "zstd -dc | tar -x", 1.0),
        ("tar.zst.age", "age -d | zstd -dc | tar -x", 0.9)]
mib = 1 << 20
n = len(runs[("tar.gz", "base")])
print(f"content: {content / mib:.0f} MiB in {files} files; median of {n} rounds (all walls in s); written under {os.environ.get('OUT_DIR') or 'the work directory'}")
print("| archive | size | baseline | baseline time | baseline MB/s | --test-restore time | --test-restore MB/s | ratio | target | CPU s (tool / ours) | peak RSS |")
print("|---|---|---|---|---|---|---|---|---|---|---|")
for name, tool, target in rows:
    b, o = runs[(name, "base")], runs[(name, "ours")]
    bs = statistics.median(w for w, _, _ in b)
    os_ = statistics.median(w for w, _, _ in o)
    bc = statistics.median(c for _, _, c in b)
    oc = statistics.median(c for _, _, c in o)
    kb = max(k for _, k, _ in o)
    ratio = bs / os_
    ok = "ok" if ratio >= target and kb < 100 * 1024 else "MISSED"
    each = " ".join(f"{w:.2f}/{x:.2f}" for (w, _, _), (x, _, _) in zip(b, o))
    print(f"| {name} | {sizes[name] / mib:.0f} MiB | `{tool}` | {bs:.2f} s | {content / bs / 1e6:.0f} | {os_:.2f} s | {content / os_ / 1e6:.0f} | {ratio:.2f}x | >= {target}x | {bc:.2f} / {oc:.2f} | {kb / 1024:.1f} MiB ({ok}) |")
    print(f"  {name} rounds (tool/ours wall s): {each}", file=sys.stderr)
PY

# The chunk-size sweep: BACKUP_MONITOR_RESTORE_CHUNK (the decoder's chunks and the copy
# buffer), each size REPEAT rounds, median wall time beside the median baseline above.
if [ "${SWEEP:-}" != none ]; then
  : > sweep.txt
  for size in ${SWEEP:-16KiB 64KiB 128KiB 256KiB 512KiB 1MiB}; do
    echo "sweep: restore chunk $size ..." >&2
    for round in $(seq "$repeat"); do
      for pair in targz:site.tar.gz zip:site.zip tarzst:site.tar.zst; do
        echo "$size ${pair%%:*} $(BACKUP_MONITOR_RESTORE_CHUNK=$size ours "${pair%%:*}" "${pair#*:}")" >> sweep.txt
      done
    done
  done
  python3 - times.txt sweep.txt <<'PY'
import statistics, sys
base = {}
for line in open(sys.argv[1]):
    name, who, wall, kb, cpu = line.split()
    if who == "base":
        base.setdefault(name, []).append(float(wall))
sweep = {}
order = []
for line in open(sys.argv[2]):
    size, loc, wall, kb, cpu = line.split()
    if size not in order:
        order.append(size)
    sweep.setdefault((size, loc), []).append((float(wall), int(kb), float(cpu)))
names = {"targz": "tar.gz", "zip": "zip", "tarzst": "tar.zst"}
print()
print("Chunk-size sweep (BACKUP_MONITOR_RESTORE_CHUNK), median wall s (ratio to the baseline's median; CPU s; peak RSS):")
print("| chunk | tar.gz | zip | tar.zst |")
print("|---|---|---|---|")
for size in order:
    cells = []
    for loc in ["targz", "zip", "tarzst"]:
        r = sweep[(size, loc)]
        w = statistics.median(x for x, _, _ in r)
        c = statistics.median(x for _, _, x in r)
        kb = max(k for _, k, _ in r)
        b = statistics.median(base[names[loc]])
        cells.append(f"{w:.2f} s ({b / w:.2f}x; {c:.2f}; {kb / 1024:.0f} MiB)")
    print(f"| {size} | " + " | ".join(cells) + " |")
PY
fi
