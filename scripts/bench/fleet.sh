#!/usr/bin/env bash
# Benchmark: many hosts sharing one PostgreSQL store (not a test; figures go to
# docs/performance.md).
#
#   scripts/bench/fleet.sh [HOSTS] [LOCATIONS] [DAYS]     (default 1000 20 30)
#
# Needs a PostgreSQL server: BM_TEST_PG_URL (scripts/test-postgres start prints it).
# Creates the database bm_fleet_bench there (dropped at the end), then:
#   1. loads HOSTS x LOCATIONS x DAYS of history through the store's write path
#      (examples/fleet_load.rs: one run per host and day: scan, the verifications of a
#      nightly --verify with the default verify_sample: 1 (the new backup's first sight,
#      every older one re-hashed), health, problems), 4 writers at once, ending the night
#      before the clock the rest runs at (so the fleet views' window holds its last week);
#   2. runs 50 hosts' --monitor --verify at once through the binary, all must succeed;
#   3. times the fleet --status (target 2 s) and the fleet --report (target 10 s) with
#      their peak RSS;
#   4. times one host's nightly run (--monitor --verify, 20 locations x 30 backups) on
#      SQLite and on PostgreSQL side by side, with peak RSS: its first run, a night with
#      one new backup per location, and a run with nothing new. The target (within 2x)
#      is on the store's time, which the run logs at -vv (connecting and opening the
#      store, and every statement to its last row); the whole run's time is beside it.
#      When pgbouncer is installed (and the URL has no password), the PostgreSQL runs
#      once more through a PgBouncer in session mode in front of the same server. Before
#      each PostgreSQL run the tables a night updates are vacuumed (untimed), as the
#      server's autovacuum does between two nights of a host;
#   5. on a copy of the store, times the fleet --check-alerts twice: the first stores and
#      tells monitor_stale for every location of every host that stopped (the loaded
#      hosts, as of the fleet views' clock), the second finds them all again.
# BACKUP_MONITOR_BIN / FLEET_LOAD_BIN pick the binaries (default: release builds).
# FLEET_BENCH_KEEP=1 keeps the database afterwards and reuses a loaded one (skipping 1).
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
hosts="${1:-1000}"; locations="${2:-20}"; days="${3:-30}"
: "${BM_TEST_PG_URL:?set BM_TEST_PG_URL (scripts/test-postgres start prints it)}"
bin="${BACKUP_MONITOR_BIN:-$root/target/release/backup-monitor}"
load="${FLEET_LOAD_BIN:-$root/target/release/examples/fleet_load}"
[ -x "$bin" ] || (cd "$root" && cargo build --release -q)
[ -x "$load" ] || (cd "$root" && cargo build --release -q --example fleet_load)
db=bm_fleet_bench
url="${BM_TEST_PG_URL%/*}/$db"
case "$url" in *\?*) ;; *) url="$url?sslmode=disable" ;; esac
work="$(mktemp -d)"
keep="${FLEET_BENCH_KEEP:-0}"
cleanup() {
    [ -f "$work/pgb/pid" ] && kill "$(cat "$work/pgb/pid")" 2>/dev/null
    [ "$keep" = 1 ] || psql -q "$BM_TEST_PG_URL" -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1 || true
    rm -rf "$work"
}
trap cleanup EXIT
loaded=0
if [ "$keep" = 1 ] && psql -At "$url" -c "SELECT COUNT(*) FROM runs" 2>/dev/null | grep -qv '^0$'; then
    loaded=1
else
    psql -q "$BM_TEST_PG_URL" -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" -c "CREATE DATABASE $db" >/dev/null
fi
tag="$$"

# `timed LABEL CMD...`: wall seconds and peak RSS of CMD, one line.
timed() {
    local label="$1"; shift
    /usr/bin/time -f "%e %M" -o "$work/time" "$@" >"$work/out" 2>"$work/err" || true
    # GNU time puts "Command exited with non-zero status N" first: the figures are last.
    read -r secs kb < <(tail -n 1 "$work/time") || true
    printf '%-44s %8.2f s  %7d KiB  exit %s\n' "$label" "${secs:-0}" "${kb:-0}" \
        "$(head -n 1 "$work/time" | sed -n 's/.*status //p' | grep . || echo 0)"
}

# A host's config: 20 locations of 30 daily backups each, under $1.
make_host() {
    local dir="$1" host="$2" store="$3"
    mkdir -p "$dir"
    python3 - "$dir" "$locations" <<'PY'
import os, sys, datetime
d, n = sys.argv[1], int(sys.argv[2])
base = datetime.datetime(2026, 11, 21, 2, 0, tzinfo=datetime.timezone.utc)
for l in range(n):
    loc = os.path.join(d, f"loc{l:02}")
    os.makedirs(loc, exist_ok=True)
    for k in range(30):
        t = base - datetime.timedelta(days=k)
        p = os.path.join(loc, f"db_{t:%Y%m%d_%H%M%S}.sql")
        with open(p, "wb") as f:
            f.write(b"-- dump %d\n" % k * 20)
        os.utime(p, (t.timestamp(), t.timestamp()))
PY
    {
        echo "host: $host"
        echo "database_url: $store"
        echo "logging: { file: null }"
        echo "backups:"
        echo "  locations:"
        for l in $(seq -w 0 $((locations - 1))); do
            printf '    - { name: loc%s, path: loc%s, type: database, schedule: daily, min_free_space: 0 }\n' "$l" "$l"
        done
    } >"$dir/config.yaml"
}
export BACKUP_MONITOR_NOW=2026-11-21T12:00:00Z TZ=UTC

echo "fleet benchmark: $hosts hosts x $locations locations x $days days on $(nproc) cores"
if [ "$loaded" = 0 ]; then
    timed "load history (fleet_load, 4 writers)" "$load" "$url" "$hosts" "$locations" "$days" 4
    cat "$work/out"
    # As autovacuum would leave a store in use (index-only scans need the visibility map).
    psql -q "$url" -c "VACUUM ANALYZE"
    # And the load's writes flushed, so that the server's checkpoint does not run under
    # the timings below (needs a superuser or pg_checkpoint; skipped otherwise).
    psql -q "$url" -c "CHECKPOINT" 2>/dev/null || true
else
    echo "reusing the loaded database $db"
fi
psql -At "$url" -c "SELECT 'rows: ' || (SELECT COUNT(*) FROM locations) || ' locations, ' || (SELECT COUNT(*) FROM backups) || ' backups, ' || (SELECT COUNT(*) FROM verifications) || ' verifications, ' || (SELECT COUNT(*) FROM runs) || ' runs, ' || pg_size_pretty(pg_database_size(current_database()))"

echo "50 host runs at once (--monitor --verify) ..."
for i in $(seq -w 0 49); do make_host "$work/h$i" "live$tag-$i" "$url"; done
start=$(date +%s.%N)
pids=()
for i in $(seq -w 0 49); do
    (cd "$work/h$i" && "$bin" --config config.yaml --monitor --verify --no-progress -q --format json >out.json 2>err.txt; echo $? >code) &
    pids+=($!)
done
wait "${pids[@]}"
end=$(date +%s.%N)
bad=0
for i in $(seq -w 0 49); do
    code=$(cat "$work/h$i/code")
    [ "$code" = 3 ] && { bad=$((bad + 1)); head -c 300 "$work/h$i/err.txt"; }
done
printf '%-44s %8.2f s  %d of 50 exit 3\n' "50 runs at once, all done" "$(echo "$end - $start" | bc)" "$bad"

cd "$work/h00"
timed "fleet --status (json, every host)" "$bin" --config config.yaml --status --fleet --format json
python3 -c "import json,sys; d=json.load(open('$work/out')); print('  locations:', len(d['locations']), ' problems:', len(d['problems']))"
timed "fleet --status (text)" "$bin" --config config.yaml --status --fleet
timed "--status --host bench0500" "$bin" --config config.yaml --status --host bench0500 --format json

# The fleet report, from a host of its own (checked once first, so its own run is a
# normal nightly one): every host's locations in HTML, CSV, JSON and the fleet textfile.
make_host "$work/rep" "reporter$tag" "$url"
printf 'reporting:\n  output_dir: reports\n  formats: [html, csv, json]\n  prometheus_textfile: metrics/bm.prom\n' >>"$work/rep/config.yaml"
(cd "$work/rep" && "$bin" --config config.yaml --monitor --no-progress -q >/dev/null 2>&1 || true)
(cd "$work/rep" && timed "fleet --report (html, csv, json, textfile)" "$bin" --config config.yaml --report --fleet --no-progress -q)
python3 - "$work/rep" <<'PY'
import json, os, sys
d = sys.argv[1]
r = json.load(open(os.path.join(d, "reports/fleet_latest.json")))
sizes = ", ".join(f"{ext} {os.path.getsize(os.path.join(d, 'reports/fleet_latest.' + ext)) / 1e6:.1f} MB" for ext in ("html", "csv", "json"))
print(f"  hosts: {len(r['hosts'])}  locations: {len(r['locations'])}  problems: {len(r['problems'])}  ({sizes})")
PY

# PgBouncer in front of the same server, session pooling (as docs/fleet.md advises for a
# fleet), when it is installed and the URL carries no password: the nightly runs once
# more through it, where a run finds a server session already open and warm.
pgb_url=""
if command -v pgbouncer >/dev/null && ! printf '%s' "$url" | grep -Eq '://[^/@]*:[^/@]*@'; then
    read -r pg_user pg_host pg_port < <(printf '%s\n' "$url" \
        | sed -E 's#^[a-z]+://(([^@/:]+)@)?([^/:]+)(:([0-9]+))?/.*#\2 \3 \5#')
    pgb_port=$((20000 + RANDOM % 20000))
    mkdir -p "$work/pgb" && chmod 777 "$work/pgb" && chmod o+x "$work"
    printf '"%s" ""\n' "${pg_user:-postgres}" >"$work/pgb/users"
    cat >"$work/pgb/pgb.ini" <<EOF
[databases]
* = host=$pg_host port=${pg_port:-5432}
[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $pgb_port
unix_socket_dir =
auth_type = trust
auth_file = $work/pgb/users
pool_mode = session
server_reset_query = DISCARD ALL
logfile = $work/pgb/log
pidfile = $work/pgb/pid
EOF
    as=(); [ "$(id -u)" = 0 ] && as=(runuser -u nobody --)
    if "${as[@]}" pgbouncer -d "$work/pgb/pgb.ini" 2>"$work/pgb/err"; then
        pgb_url="postgresql://${pg_user:-postgres}@127.0.0.1:$pgb_port/$db?sslmode=disable"
    else
        echo "  (pgbouncer did not start: $(head -c 200 "$work/pgb/err"); its line is left out)"
    fi
fi

echo "one host's nightly run (--monitor --verify, $locations locations x 30 backups), SQLite vs PostgreSQL, medians of 7:"
echo "  first run: fresh stores (the PostgreSQL one already holds the fleet), every backup new;"
echo "  a night: the next day, one new backup per location; nothing new: the same run again ..."
for i in $(seq 1 7); do
    make_host "$work/sqlite$i" nightly "sqlite://store.db"
    make_host "$work/pg$i" "nightly-$tag-$i" "$url"
    [ -z "$pgb_url" ] || make_host "$work/pgb$i" "nightly-pgb-$tag-$i" "$pgb_url"
done
python3 - "$bin" "$work" "$locations" "$url" <<'PY'
import datetime, os, re, statistics, subprocess, sys, time
binary, work, locations, url = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
def vacuum():
    # A host runs once a night, and the server's autovacuum cleans the night's stamps
    # between two of its runs (a fleet's thousand hosts update the table far past its
    # threshold every night). Here one host runs dozens of times within seconds: without
    # this, the same 600 rows pile up versions no night would leave, and stamping them
    # again costs 40-60 ms more. Not timed.
    subprocess.run(["psql", "-q", url, "-c", "VACUUM backups, problems, locations"], check=True)
start = datetime.datetime(2026, 11, 21, 12, 0, tzinfo=datetime.timezone.utc)
def run(d, now):
    if not d.startswith("sqlite"):
        vacuum()
    # -vv: the store's own time ("the store (...) took N ms over M statements, ...").
    env = dict(os.environ, BACKUP_MONITOR_NOW=now.strftime("%Y-%m-%dT%H:%M:%SZ"))
    t = time.perf_counter()
    p = subprocess.run([binary, "--config", "config.yaml", "--monitor", "--verify", "--no-progress", "-vv"],
                       cwd=os.path.join(work, d), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    wall = (time.perf_counter() - t) * 1000
    if p.returncode > 2:
        sys.exit(f"nightly run in {d} failed (exit {p.returncode}): {p.stderr.decode()[-300:]}")
    took = re.findall(r"the store \(.*\) took ([0-9.]+) ms over", p.stderr.decode())
    if not took:
        sys.exit(f"nightly run in {d} did not say what the store took")
    return wall, float(took[-1])
def new_backup(d, day):
    # The night's backup of each location, written at 02:00 as make_host's are.
    t = (start + datetime.timedelta(days=day)).replace(hour=2)
    for l in range(locations):
        p = os.path.join(work, d, f"loc{l:02}", f"db_{t:%Y%m%d_%H%M%S}.sql")
        with open(p, "wb") as f:
            f.write(b"-- dump %d\n" % day * 20)
        os.utime(p, (t.timestamp(), t.timestamp()))
engines = ("sqlite", "pg") + (("pgb",) if os.path.isdir(os.path.join(work, "pgb1")) else ())
first = {e: [run(f"{e}{i}", start) for i in range(1, 8)] for e in engines}
night = {e: [] for e in engines}
for day in range(1, 8):
    for e in engines:
        new_backup(f"{e}1", day)
        night[e].append(run(f"{e}1", start + datetime.timedelta(days=day)))
again = {e: [] for e in engines}
for _ in range(7):
    for e in engines:
        again[e].append(run(f"{e}1", start + datetime.timedelta(days=7)))
for label, m in (("first run", first), ("a night", night), ("nothing new", again)):
    med = lambda e, i: statistics.median(x[i] for x in m[e])
    s, p = med("sqlite", 1), med("pg", 1)
    ws, wp = med("sqlite", 0), med("pg", 0)
    print(f"nightly {label:<12} store time: SQLite {s:6.1f} ms  PostgreSQL {p:6.1f} ms  ratio {p / s:4.2f}x (target <= 2x)"
          f"  | whole run: {ws:6.1f} / {wp:6.1f} ms ({wp / ws:4.2f}x)")
    if "pgb" in engines:
        b, wb = med("pgb", 1), med("pgb", 0)
        print(f"  through PgBouncer       store time: SQLite {s:6.1f} ms  PostgreSQL {b:6.1f} ms  ratio {b / s:4.2f}x"
              f"  | whole run: {ws:6.1f} / {wb:6.1f} ms ({wb / ws:4.2f}x)")
PY
# As of the last night above.
export BACKUP_MONITOR_NOW=2026-11-28T12:00:00Z
(cd "$work/sqlite1" && timed "  peak RSS, a nightly run on SQLite" "$bin" --config config.yaml --monitor --verify --no-progress -q)
(cd "$work/pg1" && timed "  peak RSS, a nightly run on PostgreSQL" "$bin" --config config.yaml --monitor --verify --no-progress -q)

# The fleet's alerts, on a copy of the store (the run stores what it tells): every host
# that stopped checking gets `monitor_stale` on each location, opened and told at once by
# the first fleet --check-alerts (to the log channel), found again by the next.
export BACKUP_MONITOR_NOW=2026-11-21T12:00:00Z
copy="${db}_alerts"
# A database is copied only when no one else is connected: PgBouncer keeps its server
# sessions open.
if [ -f "$work/pgb/pid" ]; then
    kill "$(cat "$work/pgb/pid")" 2>/dev/null || true
    rm -f "$work/pgb/pid"
fi
psql -q "$BM_TEST_PG_URL" -c "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '$db' AND pid <> pg_backend_pid()" >/dev/null
psql -q "$BM_TEST_PG_URL" -c "DROP DATABASE IF EXISTS $copy WITH (FORCE)" -c "CREATE DATABASE $copy TEMPLATE $db" >/dev/null
copy_url="${url%%\?*}"
copy_url="${copy_url%/*}/$copy?${url#*\?}"
make_host "$work/alerts" "checker$tag" "$copy_url"
printf 'alerts:\n  log: { enabled: true }\n' >>"$work/alerts/config.yaml"
(cd "$work/alerts" && "$bin" --config config.yaml --monitor --no-progress -q >/dev/null 2>&1 || true)
for pass in "first (opens and tells every alert)" "again (finds them again)"; do
    (cd "$work/alerts" && timed "fleet --check-alerts, $pass" "$bin" --config config.yaml --check-alerts --fleet --no-progress -vv --format json)
    printf '  %s; %s\n' "$(grep -o 'took [0-9.]* ms over [0-9]* statements' "$work/err" | tail -n 1 | sed 's/^/store /')" \
        "$(python3 -c "import json; d=json.load(open('$work/out')); print('alerts sent', d['alerts']['sent'], '- open problems', len(d['problems']))")"
done
psql -q "$BM_TEST_PG_URL" -c "DROP DATABASE IF EXISTS $copy WITH (FORCE)" >/dev/null
