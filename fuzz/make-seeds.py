#!/usr/bin/env python3
"""Regenerate the hand-made seed corpus under fuzz/corpus/<target>/seed-* (small valid
examples of every format and value). Run from the repository root: python3 fuzz/make-seeds.py"""
import bz2, gzip, io, lzma, os, sqlite3, subprocess, struct, tarfile, tempfile, zipfile

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")
NAMES = ["backup.tar", "backup.tar.gz", "backup.tgz", "backup.tar.zst", "backup.tar.bz2",
         "backup.tar.xz", "backup.zip", "notes.txt.gz", "notes.txt.zst", "notes.txt.bz2",
         "notes.txt.xz", "db.sqlite", "db.sql", "db.sql.gz", "db.dump", "backup.bin"]
INNER = ["backup.tar", "backup.zip", "db.sql", "db.sqlite", "db.dump", "notes.txt"]


def seed(target, name, data):
    d = os.path.join(ROOT, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "seed-" + name), "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode())


def zst(b):
    return subprocess.run(["zstd", "-q", "-c", "-1"], input=b, capture_output=True, check=True).stdout


def tar_bytes():
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as t:
        d = tarfile.TarInfo("site/"); d.type = tarfile.DIRTYPE; t.addfile(d)
        body = b"<html>hello</html>\n"
        f = tarfile.TarInfo("site/index.html"); f.size = len(body); t.addfile(f, io.BytesIO(body))
        s = tarfile.TarInfo("site/link"); s.type = tarfile.SYMTYPE; s.linkname = "index.html"; t.addfile(s)
        h = tarfile.TarInfo("site/hard"); h.type = tarfile.LNKTYPE; h.linkname = "site/index.html"; t.addfile(h)
    return buf.getvalue()[:2560]  # header blocks + two zero blocks, no record padding


def zip_bytes():
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("site/", b"")
        z.writestr("site/index.html", b"<html>hello</html>\n" * 4, compress_type=zipfile.ZIP_DEFLATED)
        z.writestr("site/raw.txt", b"stored\n", compress_type=zipfile.ZIP_STORED)
    return buf.getvalue()


def sqlite_bytes():
    with tempfile.TemporaryDirectory() as d:
        p = os.path.join(d, "db.sqlite")
        c = sqlite3.connect(p)
        c.execute("PRAGMA page_size=512")
        c.execute("CREATE TABLE users(id INTEGER PRIMARY KEY, name TEXT)")
        c.execute("INSERT INTO users(name) VALUES ('ada'), ('bob')")
        c.commit(); c.close()
        return open(p, "rb").read()


SQLITE_DUMP = ("PRAGMA foreign_keys=OFF;\nBEGIN TRANSACTION;\nCREATE TABLE users(id INTEGER PRIMARY KEY, name TEXT);\n"
               "INSERT INTO users VALUES(1,'ada');\nINSERT INTO users VALUES(2,'semi;colon');\nCOMMIT;\n").encode()
PG_DUMP = ("--\n-- PostgreSQL database dump\n--\n\nSET statement_timeout = 0;\nCREATE TABLE public.users (\n    id integer,\n"
           "    name text\n);\nALTER TABLE public.users OWNER TO app;\nCOPY public.users (id, name) FROM stdin;\n1\tada\n\\.\n\n"
           "--\n-- PostgreSQL database dump complete\n--\n\n").encode()
MYSQL_DUMP = ("-- MySQL dump 10.13  Distrib 8.0.36, for Linux (x86_64)\n--\nCREATE TABLE `users` (\n  `id` int NOT NULL\n);\n"
              "INSERT INTO `users` VALUES (1);\n-- Dump completed on 2026-11-21  2:00:00\n").encode()
PGDMP = b"PGDMP\x01\x0e\x00\x04\x08\x01\x01" + b"\x00" * 32
TEXT = b"log line one\nlog line two\n"


def restore_seeds():
    tar, z, lite = tar_bytes(), zip_bytes(), sqlite_bytes()
    comp = {"gz": gzip.compress, "zst": zst, "bz2": bz2.compress, "xz": lzma.compress}
    raw = {
        "backup.tar": tar, "backup.tar.gz": gzip.compress(tar), "backup.tar.zst": zst(tar),
        "backup.tar.bz2": bz2.compress(tar), "backup.tar.xz": lzma.compress(tar), "backup.zip": z,
        "notes.txt.gz": gzip.compress(TEXT), "notes.txt.zst": zst(TEXT), "notes.txt.bz2": bz2.compress(TEXT),
        "notes.txt.xz": lzma.compress(TEXT), "db.sqlite": lite, "db.sql": SQLITE_DUMP,
        "db.sql.gz": gzip.compress(PG_DUMP), "db.dump": PGDMP,
    }
    for name, data in raw.items():
        seed("restore_raw", name, bytes([NAMES.index(name)]) + data)
    seed("restore_raw", "pg.sql", bytes([NAMES.index("db.sql")]) + PG_DUMP)
    # Findings (docs/reliability.md, Fuzzing): SQLite dump replays that wrote outside the
    # sandbox, grew past max_bytes, or never ended.
    dump = lambda body: bytes([NAMES.index("db.sql")]) + (
        "PRAGMA foreign_keys=OFF;\nBEGIN TRANSACTION;\n" + body + "\nCOMMIT;\n").encode()
    seed("restore_raw", "sql-attach", dump("ATTACH DATABASE 'escaped.db' AS e;\nCREATE TABLE e.t(a);"))
    seed("restore_raw", "sql-vacuum-into", dump("CREATE TABLE t(a);\nVACUUM INTO 'escaped.db';"))
    seed("restore_raw", "sql-grow", dump("PRAGMA max_page_count=4294967294;\nCREATE TABLE t AS WITH RECURSIVE "
                                         "c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c LIMIT 200000) "
                                         "SELECT randomblob(1000) AS b FROM c;"))
    seed("restore_raw", "sql-spin", dump("CREATE TABLE t AS WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL "
                                         "SELECT x+1 FROM c) SELECT count(*) AS n FROM c;"))
    seed("restore_raw", "mysql.sql", bytes([NAMES.index("db.sql")]) + MYSQL_DUMP)
    # sql_budget: the body of a .dump replay; the attack round's slow and greedy statements.
    slow = "length(hex(zeroblob(100000000 + (x % 2))))"
    seed("sql_budget", "cte-hex", f"SELECT max({slow}) FROM (WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL "
                                  "SELECT x+1 FROM c LIMIT 100000) SELECT x FROM c);")
    seed("sql_budget", "cte-small", "SELECT max(length(hex(zeroblob(500000 + (x % 2))))) FROM (WITH RECURSIVE c(x) AS "
                                    "(SELECT 1 UNION ALL SELECT x+1 FROM c LIMIT 100000) SELECT x FROM c);")
    seed("sql_budget", "hex-memory", "SELECT hex(zeroblob(400000000)), hex(zeroblob(400000000));")
    seed("sql_budget", "check-rewrite", "CREATE TABLE t(x INTEGER CHECK(x > 0));\nINSERT INTO t VALUES(1),(2),(3);\n"
                                        "PRAGMA writable_schema=ON;\nUPDATE sqlite_schema SET sql='CREATE TABLE t(x INTEGER "
                                        f"CHECK({slow} > 0))' WHERE name='t';")
    seed("sql_budget", "printf", "CREATE TABLE t(a TEXT);\nINSERT INTO t SELECT printf('%.*c', 1000000000, 'x');")
    seed("sql_budget", "plain", "CREATE TABLE users(id INTEGER PRIMARY KEY, name TEXT);\nINSERT INTO users VALUES(1,'a');\n"
                                "CREATE INDEX i ON users(name);")
    inner = {"backup.tar": tar, "backup.zip": z, "db.sql": SQLITE_DUMP, "db.sqlite": lite,
             "db.dump": PGDMP, "notes.txt": TEXT}
    for i, (name, data) in enumerate(inner.items()):
        for c, suffix in [(0, "plain"), (1, "gz"), (2, "zst"), (3, "bz2"), (4, "xz")]:
            if name in ("db.dump", "notes.txt", "backup.zip") and c > 2:
                continue
            seed("restore_wrapped", f"{name}.{suffix}", bytes([c + 5 * INNER.index(name)]) + data)
    seed("restore_wrapped", "pg.sql.gz", bytes([1 + 5 * INNER.index("db.sql")]) + PG_DUMP)
    seed("restore_wrapped", "mysql.sql.zst", bytes([2 + 5 * INNER.index("db.sql")]) + MYSQL_DUMP)
    for name, data in [("tar", tar[:600]), ("gz", gzip.compress(TEXT)[:64]), ("zip", z[:64]),
                       ("sqlite", lite[:128]), ("pgdmp", PGDMP), ("pg.sql", PG_DUMP[:200]),
                       ("sqlite.sql", SQLITE_DUMP[:80]), ("bz2", bz2.compress(TEXT)[:32])]:
        seed("detect", name, b"backup." + name.encode() + b"\0" + data)


def value_seeds():
    for i, t in enumerate(["512", "10KiB", "5MB", "2GiB", "1.5 TB", "90s", "15m", "4h", "2d", "1w", "1h30m",
                           "50%", "0.15", "local", "UTC", "Europe/Berlin", "hourly", "daily", "@weekly",
                           "0 2 * * 1-5", "*/15 * * * *", ":15", "02:00", "sun 02:00", "31 23:59"]):
        seed("values", f"{i:02}", t)
    nums = lambda tz, t, days, oldest: struct.pack("<HIBB", tz, t, days, oldest)
    sched = [("daily", "02:00", "4h"), ("hourly", ":15", ""), ("weekly", "sun 02:00", "1d"),
             ("monthly", "31 02:00", ""), ("0 2 * * 1-5", "", "2h"), ("@monthly", "", ""), ("daily", "", "")]
    for i, (f, a, g) in enumerate(sched):
        seed("schedule", f"{i:02}", nums(i * 37, 0x60000000 + i * 999_999, 7 + i, 30) + f"{f}\0{a}\0{g}".encode())
    names = ["db_20261121_020304.sql.gz", "site-2026-11-21T02-03-04.tar.gz", "db_2026-11-21.dump",
             "x_2026-11-21_2026-11-22T10:00:00.tar", "backup-21.11.2026-0200.tgz\0%d.%m.%Y-%H%M",
             "nightly_21-11-2026.tgz\0%d-%m-%Y", "db_20261121-020304.sql", "id_1202611219.bin"]
    for i, n in enumerate(names):
        seed("timestamp", f"{i:02}", n)
    sha = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    md5 = "d41d8cd98f00b204e9800998ecf8427e"
    for i, (pick, text) in enumerate([
        (0, f"{sha}  backup.tar\n{sha} *other.gz\n# comment\n\\{sha}  back\\\\slash\\nname\n"),
        (1, f"{md5}  backup.tar\r\n{md5}  ./sub/x/y.tar\n"),
        (2, f"BLAKE3 (backup.tar) = {sha}\n"),
        (3, f"{sha}\n"), (4, f"MD5 (backup.tar) = {md5}\n"), (0x80, f"{sha}  backup.tar\n"),
    ]):
        seed("sidecar", f"{i:02}", bytes([pick]) + text.encode())


def config_seeds():
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    seed("config", "example", open(os.path.join(repo, "config.example.yaml"), "rb").read())
    loc = "backups:\n  locations:\n    - name: db\n      path: /x\n"
    seed("config", "retention-huge", loc + "      retention_days: 4294967295\n")  # finding
    seed("config", "grace-huge", loc + "      grace: 99999999w\n")  # finding
    seed("config", "minimal", "backups:\n  locations:\n    - name: db\n      path: /backups/db\n")
    seed("config", "full-location", """timezone: Europe/Berlin
backups:
  locations:
    - name: site.files
      path: ${BACKUP_ROOT:-/srv}/site
      type: website
      patterns: ["*.tar.gz"]
      exclude: ["*.tmp"]
      schedule: weekly
      at: "sun 02:00"
      grace: 1h30m
      filename_format: "%Y%m%d"
      retention_days: 90
      min_size: 1KiB
      max_size_drop: 50%
      settle: 5m
      checksum: blake3
      verify_sample: 0.15
      restore: { latest: 2, expect: ["index.html"], min_files: 1, max_bytes: 2GiB }
      min_free_space: 10GiB
    - name: cron
      path: rel/dir
      schedule: "*/30 * * * *"
alerts: { cooldown: 24h, min_consecutive: 2, notify: critical }
""")


if __name__ == "__main__":
    restore_seeds(); value_seeds(); config_seeds()
