#!/usr/bin/env bash
# Benchmark: --verify of a bucket location on loopback SeaweedFS, side by side with a
# plain client (boto3) streaming the same objects into `sha256sum`; and listing a
# location of many objects.
#
#   scripts/bench/s3.sh [LIST_N]
#
# Data sets (uploaded once per run, removed with the server's temp dir):
#   16 × 64 MiB objects, and one 1 GiB object (random bytes);
#   LIST_N tiny objects (default 50,000) for the listing.
# Prints wall time, throughput and peak RSS (GNU /usr/bin/time -v) of each, and for the
# listing the time and the number of requests. Targets (issue 15): ≥ 0.8× the plain
# client's throughput, peak RSS < 100 MiB.
#
# Uses the servers of scripts/test-s3 when BM_TEST_S3_SEAWEED is set, else starts them
# (and stops them at the end). Needs ~2.2 GiB free under $TMPDIR; takes a few minutes.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
list_n="${1:-50000}"
obj_mib="${OBJ_MIB:-64}"    # each of the 16 objects
big_mib="${BIG_MIB:-1024}"  # the one large object
bin="${BACKUP_MONITOR_BIN:-$root/target/release/backup-monitor}"
[ -x "$bin" ] || (cd "$root" && cargo build --release -q)
[ -x /usr/bin/time ] || { echo "needs GNU time (apt-get install time)" >&2; exit 1; }
python3 -c 'import boto3' 2>/dev/null || pip install --quiet boto3

work="$(mktemp -d)"
started_servers=0
cleanup() {
    rm -rf "$work"
    if [ "$started_servers" = 1 ]; then "$root/scripts/test-s3" stop >/dev/null 2>&1 || true; fi
}
trap cleanup EXIT
if [ -z "${BM_TEST_S3_SEAWEED:-}" ]; then
    eval "$("$root/scripts/test-s3" start)"
    started_servers=1
fi
export AWS_ACCESS_KEY_ID="$BM_TEST_S3_KEY_ID" AWS_SECRET_ACCESS_KEY="$BM_TEST_S3_SECRET"
endpoint="$BM_TEST_S3_SEAWEED"
bucket="bench-$$"

cat > "$work/s3.py" <<'PY'
import boto3, hashlib, os, sys, concurrent.futures
from botocore.config import Config
c = boto3.client("s3", endpoint_url=os.environ["ENDPOINT"], region_name="us-east-1",
                 config=Config(s3={"addressing_style": "path"}, max_pool_connections=16))
cmd, bucket = sys.argv[1], sys.argv[2]
if cmd == "mkbucket":
    c.create_bucket(Bucket=bucket)
elif cmd == "upload":          # upload KEY SIZE_MIB
    key, mib = sys.argv[3], int(sys.argv[4])
    path = os.path.join(os.environ["WORK"], "blob")
    with open(path, "wb") as f:
        for _ in range(mib):
            f.write(os.urandom(1 << 20))
    c.upload_file(path, bucket, key)
    os.remove(path)
elif cmd == "many":            # many PREFIX N
    prefix, n = sys.argv[3], int(sys.argv[4])
    def put(i):
        c.put_object(Bucket=bucket, Key=f"{prefix}/part-{i:06d}.bin", Body=b"x")
    with concurrent.futures.ThreadPoolExecutor(16) as ex:
        list(ex.map(put, range(n)))
elif cmd == "plain":           # plain PREFIX: each object streamed into `sha256sum`, in turn
    import subprocess
    keys = [o["Key"] for page in c.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=sys.argv[3] + "/")
            for o in page.get("Contents", [])]
    for key in keys:
        body = c.get_object(Bucket=bucket, Key=key)["Body"]
        sha = subprocess.Popen(["sha256sum"], stdin=subprocess.PIPE, stdout=subprocess.DEVNULL)
        for chunk in iter(lambda: body.read(1 << 20), b""):
            sha.stdin.write(chunk)
        sha.stdin.close()
        sha.wait()
PY
s3() { ENDPOINT="$endpoint" WORK="$work" python3 "$work/s3.py" "$@"; }

echo "uploading 16 × $obj_mib MiB, 1 × $big_mib MiB and $list_n tiny objects to $endpoint ..."
s3 mkbucket "$bucket"
for i in $(seq -w 1 16); do s3 upload "$bucket" "many/obj-$i.bin" "$obj_mib"; done
s3 upload "$bucket" "one/big.bin" "$big_mib"
s3 many "$bucket" list "$list_n"

config() { # name prefix
    cat > "$work/config.yaml" <<YAML
timezone: UTC
database_url: sqlite://$work/bm-$1.db
logging: { file: $work/bm-$1.log, level: debug }
backups:
  locations:
    - name: $1
      path: s3://$bucket/$2
      timestamp: mtime
      settle: 0s
      retention_days: 3650
      test_restore: false
      s3: { endpoint: $endpoint }
YAML
}

measure() { # label command...: wall seconds and peak RSS (MiB)
    local label=$1; shift
    /usr/bin/time -v -o "$work/time" "$@" >/dev/null
    local wall rss
    wall=$(awk -F': ' '/Elapsed \(wall clock\)/ {n=split($2,a,":"); s=0; for(i=1;i<=n;i++) s=s*60+a[i]; print s}' "$work/time")
    rss=$(awk -F': ' '/Maximum resident set size/ {printf "%.0f", $2/1024}' "$work/time")
    echo "$label|$wall|$rss"
}

report() { # label bytes plain-line ours-line
    IFS='|' read -r _ pw prss <<<"$3"
    IFS='|' read -r _ ow orss <<<"$4"
    awk -v l="$1" -v b="$2" -v pw="$pw" -v ow="$ow" -v prss="$prss" -v orss="$orss" 'BEGIN {
        printf "%-22s plain client %6.2f s %7.1f MB/s (RSS %s MiB) | backup-monitor %6.2f s %7.1f MB/s (RSS %s MiB) | ratio %.2fx\n",
            l, pw, b/pw/1e6, prss, ow, b/ow/1e6, orss, pw/ow }'
}

echo
echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)"
for set in many one; do
    [ "$set" = many ] && bytes=$((16 * obj_mib * 1048576)) || bytes=$((big_mib * 1048576))
    p=$(measure plain env ENDPOINT="$endpoint" WORK="$work" python3 "$work/s3.py" plain "$bucket" "$set")
    config "$set" "$set"
    o=$(measure ours "$bin" --config "$work/config.yaml" --no-progress --monitor --verify)
    report "$set" "$bytes" "$p" "$o"
done

config list list
l=$(measure list "$bin" --config "$work/config.yaml" --no-progress --monitor)
IFS='|' read -r _ lw lrss <<<"$l"
requests=$(grep -o 'listed [0-9]* objects of .* in [0-9]* requests' "$work/bm-list.log" | head -1)
echo "listing $list_n objects: --monitor ${lw} s (RSS ${lrss} MiB); $requests"
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
