#!/bin/sh
# Benchmark `--report --days 30` on a store with a year of history for 100 locations:
# daily backups (the last 30 present, older ones deleted by retention), three
# verifications and one restore test per backup, a health row per location per day and
# a few open problems. The history is inserted with the sqlite3 CLI straight into the
# schema the binary created, so generating it takes seconds.
#
#   scripts/bench/report.sh [RUNS]          (default 5 runs)
#
# Uses target/release/backup-monitor when present (build it with `cargo build --release`),
# else target/debug/backup-monitor; BACKUP_MONITOR_BIN overrides. Prints the timings; it
# asserts nothing about them.
set -eu

root=$(cd "$(dirname "$0")/../.." && pwd)
runs=${1:-5}
bin=${BACKUP_MONITOR_BIN:-}
if [ -z "$bin" ]; then
    if [ -x "$root/target/release/backup-monitor" ]; then bin="$root/target/release/backup-monitor"
    else bin="$root/target/debug/backup-monitor"; fi
fi
[ -x "$bin" ] || { echo "no binary at $bin; run cargo build --release" >&2; exit 1; }
command -v sqlite3 >/dev/null || { echo "needs the sqlite3 CLI" >&2; exit 1; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT INT TERM
now=2026-11-21T12:00:00Z
start=$(date -u -d "2025-11-21T02:00:00Z" +%s)   # a year before now, 02:00

{
    echo "timezone: UTC"
    echo "backups:"
    echo "  locations:"
    i=1
    while [ $i -le 100 ]; do
        case $((i % 4)) in 0) t=database ;; 1) t=website ;; 2) t=files ;; *) t=generic ;; esac
        echo "    - { name: loc$i, path: data/loc$i, type: $t, schedule: daily, at: \"02:00\" }"
        i=$((i + 1))
    done
    echo "reporting:"
    echo "  prometheus_textfile: metrics/backup_monitor.prom"
    echo "logging: { file: null }"
} > "$work/config.yaml"

# Let the binary create the schema and register the locations.
BACKUP_MONITOR_NOW=$now "$bin" --config "$work/config.yaml" --report --no-progress -q >/dev/null || true
rm -rf "$work/reports"

t0=$(date +%s.%N)
sqlite3 "$work/backup_monitor.db" >/dev/null <<SQL
PRAGMA journal_mode=WAL;
BEGIN;
WITH RECURSIVE d(n) AS (SELECT 0 UNION ALL SELECT n + 1 FROM d WHERE n < 364)
INSERT INTO backups (location_id, path, size, mtime_ns, ts, ts_source, seen_size, seen_mtime_ns,
                     first_seen, last_seen, deleted_at, checksum, checksum_algo, checksum_at, last_verified_at)
SELECT l.id,
       'loc' || l.id || '_' || strftime('%Y%m%d_%H%M%S', $start + d.n * 86400, 'unixepoch') || '.sql.gz',
       50000000 + l.id * 100000 + d.n * 20000 + (abs(random()) % 500000),
       ($start + d.n * 86400 + 600) * 1000000000,
       $start + d.n * 86400, 'filename',
       50000000 + l.id * 100000 + d.n * 20000, ($start + d.n * 86400 + 600) * 1000000000,
       $start + d.n * 86400 + 3600, $start + 364 * 86400 + 3600,
       CASE WHEN d.n < 335 THEN $start + (d.n + 30) * 86400 + 3600 END,
       lower(hex(randomblob(32))), 'sha256', $start + d.n * 86400 + 3700, $start + d.n * 86400 + 3700
FROM locations l, d;
UPDATE locations SET last_scan_at = $start + 364 * 86400 + 3600, available = 1,
       free_bytes = 400000000000 - id * 1000000000, total_bytes = 1000000000000;
INSERT INTO verifications (backup_id, at, method, algo, result, bytes, duration_ms)
SELECT id, ts + 3700, 'checksum', 'sha256', 'recorded', size, 120 FROM backups;
INSERT INTO verifications (backup_id, at, method, algo, result, bytes, duration_ms, detail)
SELECT id, ts + 86400 + 3700, 'checksum', 'sha256',
       CASE WHEN abs(random()) % 200 = 0 THEN 'failed' ELSE 'passed' END, size, 120, NULL FROM backups;
INSERT INTO verifications (backup_id, at, method, algo, result, bytes, duration_ms)
SELECT id, ts + 7 * 86400 + 3700, 'sidecar', 'sha256', 'passed', size, 120 FROM backups;
INSERT INTO verification_tallies (location_id, at, passed, judged)
SELECT b.location_id, v.at, COUNT(*) FILTER (WHERE v.result = 'passed'), COUNT(*)
FROM verifications v JOIN backups b ON b.id = v.backup_id
WHERE v.result IN ('passed', 'failed') GROUP BY b.location_id, v.at;
INSERT INTO restore_tests (backup_id, at, format, result, files, bytes, duration_ms, detail, size, mtime_ns, location_id)
SELECT id, ts + 5400, 'sql.gz', CASE WHEN abs(random()) % 100 = 0 THEN 'failed' ELSE 'passed' END,
       1, size * 4, 900, NULL, size, mtime_ns, location_id FROM backups;
WITH RECURSIVE d(n) AS (SELECT 0 UNION ALL SELECT n + 1 FROM d WHERE n < 364)
INSERT OR REPLACE INTO health_daily (location_id, day, score, backup_rate, verify_rate, restore_rate, computed_at)
SELECT l.id, date($start + d.n * 86400, 'unixepoch'), 0.9 + (abs(random()) % 100) / 1000.0, 1.0, 0.99, 1.0,
       $start + d.n * 86400 + 3600
FROM locations l, d;
INSERT INTO problems (key, kind, severity, operation, location_id, location, path, slot, message, first_seen, last_seen)
SELECT 'missing_backup|' || name || '||2026-11-19T02:00:00+00:00', 'missing_backup', 'critical', 'monitor', id, name,
       NULL, '2026-11-19T02:00:00+00:00', 'no backup for the daily slot starting 2026-11-19T02:00:00+00:00',
       $start + 363 * 86400, $start + 364 * 86400
FROM locations WHERE id % 10 = 0;
COMMIT;
ANALYZE;
SQL
t1=$(date +%s.%N)
counts=$(sqlite3 "$work/backup_monitor.db" "SELECT (SELECT count(*) FROM backups) || ' backups, ' ||
    (SELECT count(*) FROM verifications) || ' verifications, ' || (SELECT count(*) FROM restore_tests) ||
    ' restore tests, ' || (SELECT count(*) FROM health_daily) || ' health rows'")
echo "store: 100 locations, $counts (generated in $(echo "$t1 - $t0" | bc) s)"
echo "binary: $bin"

i=1
times=""
while [ $i -le "$runs" ]; do
    s=$(date +%s.%N)
    BACKUP_MONITOR_NOW=$now "$bin" --config "$work/config.yaml" --report --days 30 --no-progress -q >/dev/null || true
    e=$(date +%s.%N)
    t=$(echo "$e - $s" | bc)
    times="$times $t"
    printf 'run %d: %.3f s\n' "$i" "$t"
    i=$((i + 1))
done
ls "$work/reports" >/dev/null
echo "$times" | tr ' ' '\n' | grep . | sort -n | awk '{a[NR]=$1} END {printf "min %.3f s, median %.3f s, max %.3f s over %d runs\n", a[1], a[int((NR+1)/2)], a[NR], NR}'
printf 'latest.html %s bytes, latest.csv %s rows\n' "$(wc -c < "$work/reports/latest.html")" "$(($(wc -l < "$work/reports/latest.csv") - 1))"
