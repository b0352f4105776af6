#!/usr/bin/env bash
# Two builds of backup-monitor on the same restore and verify work, compared by the
# instructions they execute (valgrind's callgrind: every thread, user space), beside their
# CPU time outside valgrind. Instruction counts do not move with the machine's load, so
# this shows whether a change costs work even on a shared, noisy machine (or a VM without
# hardware counters), where wall times move by 20-50% between two runs of the same
# binary. Not a test.
#
#   OLD=/path/to/old/backup-monitor NEW=/path/to/new/backup-monitor \
#     BENCH_DIR=/tmp/rb scripts/bench/compare-builds.sh
#
# BENCH_DIR holds the archives `scripts/bench/restore.sh` made (run that once with the
# same BENCH_DIR, it keeps them; SIZE_MIB=64 is plenty: callgrind runs ~50x slower).
# REPEAT (default 1) runs per build and archive; the table shows the median. Needs
# valgrind and GNU time (apt: valgrind time).
set -euo pipefail
export LC_ALL=C
: "${OLD:?set OLD to the older binary}" "${NEW:?set NEW to the newer binary}"
: "${BENCH_DIR:?set BENCH_DIR to the directory scripts/bench/restore.sh kept its archives in}"
command -v valgrind > /dev/null || { echo "valgrind is missing (apt-get install valgrind)" >&2; exit 1; }
[ -f "$BENCH_DIR/backups/site.tar.gz" ] || {
  echo "no archives in $BENCH_DIR/backups: run BENCH_DIR=$BENCH_DIR REPEAT=1 scripts/bench/restore.sh first" >&2
  exit 1
}
repeat="${REPEAT:-1}"
work="$(mktemp -d "${TMPDIR:-/tmp}/compare-builds.XXXXXX")"
trap 'rm -rf "$work"' EXIT
cd "$work"
mkdir -p scratch small
cat > config.yaml <<YAML
backups:
  locations:
    - { name: targz, path: $BENCH_DIR/backups, patterns: ["site.tar.gz"], schedule: daily, test_restore: true, verify_integrity: false, restore: { scratch_dir: $work/scratch, max_bytes: 4GiB } }
    - { name: zip, path: $BENCH_DIR/backups, patterns: ["site.zip"], schedule: daily, test_restore: true, verify_integrity: false, restore: { scratch_dir: $work/scratch, max_bytes: 4GiB } }
    - { name: tarzst, path: $BENCH_DIR/backups, patterns: ["site.tar.zst"], schedule: daily, test_restore: true, verify_integrity: false, restore: { scratch_dir: $work/scratch, max_bytes: 4GiB } }
    - { name: small, path: $work/small, patterns: ["*.bin"], schedule: daily, settle: 0s }
logging: { file: null }
YAML
# 10,000 files of 64 KiB for --verify (first sight: every file hashed).
python3 - <<'PY'
import os
block = os.urandom(64 << 10)
for i in range(10000):
    with open(f"small/f{i:05}.bin", "wb") as f:
        f.write(block[i % 64:] + block[: i % 64])
PY
touch -d '2 days ago' small/*.bin

# measure BIN ARGS...: prints "<instructions> <task-clock ms>" of one run from a fresh store.
measure() {
  local bin=$1
  shift
  rm -f backup_monitor.db*
  local rc=0
  /usr/bin/time -f "%U %S" -o time.txt "$bin" --config config.yaml "$@" \
    --format json --no-progress > run.out 2> run.err || rc=$?
  rm -f backup_monitor.db*
  valgrind --tool=callgrind --callgrind-out-file=/dev/null "$bin" --config config.yaml "$@" \
    --format json --no-progress > run.out 2> run.err || rc=$?
  # 0-2 are verdicts (ok, warning, critical); 3 means the run could not judge.
  if [ "$rc" -gt 2 ]; then
    echo "run failed (exit $rc): $bin $*" >&2
    tail -n 5 run.err >&2
    return 1
  fi
  # A fast failure is no result: every restore test must have passed.
  if [ "$1" = --test-restore ]; then
    python3 -c 'import json,sys; r=json.load(open("run.out"))["restore_tests"]; sys.exit(r["passed"] != 1)' || {
      echo "the restore test did not pass: $bin $*" >&2
      return 1
    }
  fi
  local ins ms
  ins=$(grep -o 'Collected : [0-9]*' run.err | grep -o '[0-9]*$')
  ms=$(awk '{ printf "%.0f", ($1 + $2) * 1000 }' time.txt)
  echo "$ins $ms"
}

: > results.txt
for round in $(seq "$repeat"); do
  echo "round $round of $repeat ..." >&2
  for which in OLD NEW; do
    bin=${!which}
    for loc in targz zip tarzst; do
      m=$(measure "$bin" --test-restore --location-name "$loc") || exit 1
      echo "$loc $which $m" >> results.txt
    done
    m=$(measure "$bin" --monitor --verify --location-name small) || exit 1
    echo "verify-10k $which $m" >> results.txt
  done
done

python3 - results.txt "$OLD" "$NEW" <<'PY'
import statistics, sys
runs = {}
for line in open(sys.argv[1]):
    what, which, ins, ms = line.split()
    runs.setdefault((what, which), []).append((int(ins), float(ms)))
print(f"old: {sys.argv[2]}\nnew: {sys.argv[3]}")
print("| work | instructions, old | instructions, new | change | CPU ms, old | CPU ms, new |")
print("|---|---|---|---|---|---|")
for what in ["targz", "zip", "tarzst", "verify-10k"]:
    o, n = runs[(what, "OLD")], runs[(what, "NEW")]
    oi = statistics.median(i for i, _ in o); ni = statistics.median(i for i, _ in n)
    ot = statistics.median(t for _, t in o); nt = statistics.median(t for _, t in n)
    print(f"| {what} | {oi / 1e9:.3f} G | {ni / 1e9:.3f} G | {100 * (ni - oi) / oi:+.1f}% | {ot:.0f} | {nt:.0f} |")
PY
