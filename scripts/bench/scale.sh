#!/usr/bin/env bash
# Scale: one full run (--monitor --verify --test-restore --report --check-alerts) over
# 20 locations holding 200,000 backup files and 20 GiB of (sparse) data in total.
# Target (issue 7): completes with peak RSS under 200 MiB.
#
#   scripts/bench/scale.sh [LOCATIONS] [FILES_PER_LOCATION] [BYTES_PER_FILE]
#
# Files are sparse (truncate), so the disk holds almost nothing while every byte is
# still read and hashed. Timestamps are hourly, so schedules, windows and reports have
# real history to chew on.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
locations="${1:-20}"
per="${2:-10000}"
size="${3:-107374}"   # 20 GiB / 200,000 files
bin="${BACKUP_MONITOR_BIN:-$root/target/release/backup-monitor}"
[ -x "$bin" ] || (cd "$root" && cargo build --release -q)
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

echo "creating $locations locations x $per files x $size bytes (sparse) in $work ..."
python3 - "$work" "$locations" "$per" "$size" <<'PY'
import os, sys, datetime
work, locations, per, size = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
now = datetime.datetime.now(datetime.timezone.utc).replace(minute=0, second=0, microsecond=0)
cfg = ["timezone: UTC", "logging: { file: null }", "reporting: { output_dir: reports, prometheus_textfile: reports/metrics.prom }",
       "backups:", "  locations:"]
for l in range(locations):
    d = os.path.join(work, f"loc{l:02d}")
    os.makedirs(d)
    for i in range(per):
        t = now - datetime.timedelta(hours=i + 1)
        p = os.path.join(d, f"app_{t:%Y%m%d_%H%M%S}.bak")
        with open(p, "wb") as f:
            f.truncate(size)
        ts = t.timestamp()
        os.utime(p, (ts, ts))
    cfg += [f"    - name: loc{l:02d}", f"      path: loc{l:02d}", "      schedule: hourly",
            "      retention_days: 3650", "      settle: 0s", "      min_size: 1"]
open(os.path.join(work, "config.yaml"), "w").write("\n".join(cfg) + "\n")
PY
total=$((locations * per))
run() { # label
  /usr/bin/time -v -o "$work/time.txt" "$bin" --config "$work/config.yaml" \
    --monitor --verify --test-restore --report --check-alerts --no-progress -q > "$work/out.txt" 2>"$work/err.txt" || true
  local wall rss
  wall=$(awk -F': ' '/Elapsed \(wall clock\)/ {print $2}' "$work/time.txt")
  rss=$(awk -F': ' '/Maximum resident set size/ {printf "%.1f", $2/1024}' "$work/time.txt")
  printf '%-28s %12s %12s MiB\n' "$1" "$wall" "$rss"
}
printf '\n%-28s %12s %16s\n' "full run ($total files)" "wall" "peak RSS"
run "first (all new, all hashed)"
run "second (sampled re-verify)"
echo
tail -n 12 "$work/out.txt"
