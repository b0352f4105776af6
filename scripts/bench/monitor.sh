#!/usr/bin/env bash
# Benchmark: --monitor over one location of N small backup files (default 100,000),
# side by side with `find -printf` (the floor: one readdir + stat per file).
#
#   scripts/bench/monitor.sh [N]
#
# Prints wall time and peak RSS (from /usr/bin/time -v) for:
#   find <dir> -type f -printf '%s %T@ %p\n'
#   backup-monitor --monitor   (first run: every file new)
#   backup-monitor --monitor   (second run: nothing changed)
# Targets (issue 2): unchanged re-scan within 4x find, first scan within 10x, RSS < 150 MiB.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
n="${1:-100000}"
bin="${BACKUP_MONITOR_BIN:-$root/target/release/backup-monitor}"
[ -x "$bin" ] || (cd "$root" && cargo build --release -q)
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/backups"

echo "creating $n files in $work/backups ..."
python3 - "$work/backups" "$n" <<'PY'
import os, sys
d, n = sys.argv[1], int(sys.argv[2])
base = 1_700_000_000
for i in range(n):
    p = os.path.join(d, f"app_{i:06d}.bak")
    with open(p, "wb") as f:
        f.write(b"x" * (100 + i % 50))
    os.utime(p, (base + i * 60, base + i * 60))
PY
cat > "$work/config.yaml" <<YAML
timezone: UTC
logging: { file: null }
backups:
  locations:
    - name: many
      path: backups
      schedule: hourly
      retention_days: 3650
YAML
sync
measure() { # label, command...
  local label="$1"; shift
  /usr/bin/time -v -o "$work/time.txt" "$@" > /dev/null 2>&1 || true
  local wall rss
  wall=$(awk -F': ' '/Elapsed \(wall clock\)/ {print $2}' "$work/time.txt")
  rss=$(awk -F': ' '/Maximum resident set size/ {printf "%.1f", $2/1024}' "$work/time.txt")
  local secs
  secs=$(python3 -c "import sys; p=sys.argv[1].split(':'); print(sum(float(x)*60**i for i,x in enumerate(reversed(p))))" "$wall")
  printf '%-34s %10.3f s %10s MiB\n' "$label" "$secs" "$rss"
  echo "$secs" > "$work/last"
}
# Warm the page cache and dentry cache first, as a nightly cron run would find them.
find "$work/backups" -type f > /dev/null
printf '\n%-34s %12s %14s\n' "command ($n files)" "wall" "peak RSS"
measure "find -printf" find "$work/backups" -type f -printf '%s %T@ %p\n'
find_s=$(cat "$work/last")
measure "backup-monitor --monitor (first)" "$bin" --config "$work/config.yaml" --monitor --no-progress -q
first_s=$(cat "$work/last")
measure "backup-monitor --monitor (again)" "$bin" --config "$work/config.yaml" --monitor --no-progress -q
again_s=$(cat "$work/last")
python3 - "$find_s" "$first_s" "$again_s" <<'PY'
import sys
f, a, b = map(float, sys.argv[1:])
print(f"\nfirst scan  = {a/f:5.1f}x find (target <= 10x)")
print(f"re-scan     = {b/f:5.1f}x find (target <=  4x)")
PY
