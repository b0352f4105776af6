//! Versioned migrations, one list per engine. Each entry is applied once, in order,
//! inside a transaction; SQLite's `PRAGMA user_version` and PostgreSQL's `bm_schema`
//! table record how far a store has come. Append; never edit a shipped one.

pub const MIGRATIONS: &[&str] = &[
    // 1: the initial schema.
    r#"
CREATE TABLE locations (
    id            INTEGER PRIMARY KEY,
    name          TEXT NOT NULL UNIQUE,
    path          TEXT NOT NULL,
    kind          TEXT NOT NULL,
    created_at    INTEGER NOT NULL,
    last_scan_at  INTEGER,
    available     INTEGER,
    free_bytes    INTEGER,
    total_bytes   INTEGER
);

-- One row per backup file ever seen. `size`/`mtime_ns` are the values recorded when the
-- settled file was first seen; `seen_*` are the latest scan's. A re-appearing path after
-- deletion is a new row.
CREATE TABLE backups (
    id               INTEGER PRIMARY KEY,
    location_id      INTEGER NOT NULL REFERENCES locations(id),
    path             TEXT NOT NULL,
    size             INTEGER NOT NULL,
    mtime_ns         INTEGER NOT NULL,
    ts               INTEGER NOT NULL,
    ts_source        TEXT NOT NULL,
    seen_size        INTEGER NOT NULL,
    seen_mtime_ns    INTEGER NOT NULL,
    first_seen       INTEGER NOT NULL,
    last_seen        INTEGER NOT NULL,
    deleted_at       INTEGER,
    checksum         TEXT,
    checksum_algo    TEXT,
    checksum_at      INTEGER,
    last_verified_at INTEGER
);
CREATE UNIQUE INDEX backups_present ON backups(location_id, path) WHERE deleted_at IS NULL;
CREATE INDEX backups_by_ts ON backups(location_id, ts);

CREATE TABLE verifications (
    id           INTEGER PRIMARY KEY,
    backup_id    INTEGER NOT NULL REFERENCES backups(id),
    run_id       INTEGER,
    at           INTEGER NOT NULL,
    method       TEXT NOT NULL,
    algo         TEXT,
    result       TEXT NOT NULL,
    bytes        INTEGER NOT NULL DEFAULT 0,
    duration_ms  INTEGER NOT NULL DEFAULT 0,
    detail       TEXT
);
CREATE INDEX verifications_by_backup ON verifications(backup_id, at);
CREATE INDEX verifications_by_at ON verifications(at);

CREATE TABLE restore_tests (
    id           INTEGER PRIMARY KEY,
    backup_id    INTEGER NOT NULL REFERENCES backups(id),
    run_id       INTEGER,
    at           INTEGER NOT NULL,
    format       TEXT NOT NULL,
    result       TEXT NOT NULL,
    files        INTEGER NOT NULL DEFAULT 0,
    bytes        INTEGER NOT NULL DEFAULT 0,
    duration_ms  INTEGER NOT NULL DEFAULT 0,
    detail       TEXT,
    size         INTEGER NOT NULL,
    mtime_ns     INTEGER NOT NULL,
    settings     TEXT NOT NULL DEFAULT '',
    carried_from INTEGER REFERENCES restore_tests(id)
);
CREATE INDEX restore_tests_by_backup ON restore_tests(backup_id, at);
CREATE INDEX restore_tests_by_at ON restore_tests(at);

CREATE TABLE health_daily (
    location_id   INTEGER NOT NULL REFERENCES locations(id),
    day           TEXT NOT NULL,
    score         REAL,
    backup_rate   REAL,
    verify_rate   REAL,
    restore_rate  REAL,
    computed_at   INTEGER NOT NULL,
    PRIMARY KEY (location_id, day)
);

-- Problems stay open until the operation that owns them judges them again.
CREATE TABLE problems (
    id           INTEGER PRIMARY KEY,
    key          TEXT NOT NULL,
    kind         TEXT NOT NULL,
    severity     TEXT NOT NULL,
    operation    TEXT NOT NULL,
    location_id  INTEGER REFERENCES locations(id),
    location     TEXT,
    path         TEXT,
    slot         TEXT,
    message      TEXT NOT NULL,
    first_seen   INTEGER NOT NULL,
    last_seen    INTEGER NOT NULL,
    runs_seen    INTEGER NOT NULL DEFAULT 1,
    resolved_at  INTEGER
);
CREATE UNIQUE INDEX problems_open ON problems(key) WHERE resolved_at IS NULL;
CREATE INDEX problems_by_location ON problems(location_id, resolved_at);

-- One alert per open problem that passed the alert filters. Which channel
-- was told what, and when, is the delivery history below: the next event of each channel
-- (open, repeat, escalation, resolved) is decided from its last successful delivery.
CREATE TABLE alerts (
    id            INTEGER PRIMARY KEY,
    key           TEXT NOT NULL,
    problem_id    INTEGER NOT NULL UNIQUE REFERENCES problems(id),
    kind          TEXT NOT NULL,
    severity      TEXT NOT NULL,
    location      TEXT,
    path          TEXT,
    slot          TEXT,
    message       TEXT NOT NULL,
    opened_at     INTEGER NOT NULL,
    last_sent_at  INTEGER,
    send_count    INTEGER NOT NULL DEFAULT 0,
    closed_at     INTEGER,
    finished_at   INTEGER
);
CREATE INDEX alerts_by_key ON alerts(key, closed_at);
CREATE INDEX alerts_unfinished ON alerts(finished_at);

-- Every attempt to deliver an alert on a channel; `error` is redacted before it is stored.
CREATE TABLE alert_deliveries (
    id        INTEGER PRIMARY KEY,
    alert_id  INTEGER NOT NULL REFERENCES alerts(id),
    run_id    INTEGER,
    channel   TEXT NOT NULL,
    event     TEXT NOT NULL,
    severity  TEXT NOT NULL,
    at        INTEGER NOT NULL,
    success   INTEGER NOT NULL,
    error     TEXT
);
CREATE INDEX alert_deliveries_by_alert ON alert_deliveries(alert_id, channel, at);

CREATE TABLE runs (
    id          INTEGER PRIMARY KEY,
    started_at  INTEGER NOT NULL,
    finished_at INTEGER,
    operations  TEXT NOT NULL,
    exit_code   INTEGER,
    host        TEXT NOT NULL,
    version     TEXT NOT NULL,
    pid         INTEGER NOT NULL
);
"#,
    // 2: the settings each location's backup timestamps were derived with (NULL: derived
    // before they were recorded, so derived again by the next scan).
    r#"
ALTER TABLE locations ADD COLUMN timestamp_settings TEXT;
"#,
    // 3: acknowledgements, accepted deletions, silences, and the audit log of who did
    // which of them, when and why.
    r#"
CREATE TABLE acks (
    id           INTEGER PRIMARY KEY,
    problem_id   INTEGER NOT NULL REFERENCES problems(id),
    severity     TEXT NOT NULL,
    at           INTEGER NOT NULL
);
CREATE INDEX acks_by_problem ON acks(problem_id);

-- A deleted backup whose deletion was intended: deleted_before_retention never opens for it.
CREATE TABLE accepted_deletions (
    backup_id    INTEGER PRIMARY KEY REFERENCES backups(id),
    at           INTEGER NOT NULL
);

CREATE TABLE silences (
    id           INTEGER PRIMARY KEY,
    selector     TEXT NOT NULL,
    created_at   INTEGER NOT NULL,
    until        INTEGER NOT NULL,
    ended_at     INTEGER,
    user_name    TEXT NOT NULL,
    host         TEXT NOT NULL,
    reason       TEXT NOT NULL
);

CREATE TABLE lifecycle_actions (
    id           INTEGER PRIMARY KEY,
    at           INTEGER NOT NULL,
    user_name    TEXT NOT NULL,
    host         TEXT NOT NULL,
    action       TEXT NOT NULL,
    target       TEXT NOT NULL,
    reason       TEXT NOT NULL
);
CREATE INDEX lifecycle_actions_by_at ON lifecycle_actions(at);
"#,
    // 4: tables and rows a restore test produced, when the content was a database whose
    // rows were counted (NULL otherwise), compared with what restores usually produce.
    r#"
ALTER TABLE restore_tests ADD COLUMN tables INTEGER;
ALTER TABLE restore_tests ADD COLUMN rows_restored INTEGER;
CREATE INDEX restore_tests_passed ON restore_tests(result, carried_from, at);
"#,
    // 5: many hosts in one store. A location is (host, name); problems, alerts and
    // runs belong to a host; `run_locks` names the run holding each host's lock. Rows
    // from before get the host of the run that migrates (set by the store after this).
    // The table is rebuilt because SQLite cannot drop the old UNIQUE(name).
    r#"
CREATE TABLE locations_v5 (
    id                 INTEGER PRIMARY KEY,
    host               TEXT NOT NULL DEFAULT '',
    name               TEXT NOT NULL,
    path               TEXT NOT NULL,
    kind               TEXT NOT NULL,
    created_at         INTEGER NOT NULL,
    last_scan_at       INTEGER,
    available          INTEGER,
    free_bytes         INTEGER,
    total_bytes        INTEGER,
    timestamp_settings TEXT,
    UNIQUE (host, name)
);
INSERT INTO locations_v5 (id, host, name, path, kind, created_at, last_scan_at, available, free_bytes, total_bytes, timestamp_settings)
    SELECT id, '', name, path, kind, created_at, last_scan_at, available, free_bytes, total_bytes, timestamp_settings FROM locations;
DROP TABLE locations;
ALTER TABLE locations_v5 RENAME TO locations;
ALTER TABLE problems ADD COLUMN host TEXT NOT NULL DEFAULT '';
DROP INDEX problems_open;
CREATE UNIQUE INDEX problems_open ON problems(host, key) WHERE resolved_at IS NULL;
ALTER TABLE alerts ADD COLUMN host TEXT NOT NULL DEFAULT '';
CREATE INDEX alerts_by_host ON alerts(host, finished_at);
CREATE INDEX runs_by_host ON runs(host, id);
CREATE TABLE run_locks (
    host     TEXT PRIMARY KEY,
    pid      INTEGER NOT NULL,
    machine  TEXT NOT NULL,
    since    INTEGER NOT NULL
);
"#,
    // 6: what each host last stored about each of its locations for the fleet views
    // (missing slots, schedule figures: what only its own config knows), as JSON.
    r#"
CREATE TABLE location_states (
    location_id  INTEGER PRIMARY KEY REFERENCES locations(id),
    written_at   INTEGER NOT NULL,
    state        TEXT NOT NULL
);
"#,
    // 7: claims on an alert's next notice per channel, so that two runs sharing a store
    // (a fleet `--check-alerts` and a host's own) never both send it. A claim names the
    // run holding it and lapses at `expires_at` (a run that died does not block it).
    r#"
CREATE TABLE alert_claims (
    alert_id   INTEGER NOT NULL REFERENCES alerts(id),
    channel    TEXT NOT NULL,
    run_id     INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    PRIMARY KEY (alert_id, channel)
);
"#,
    // 8: each run's verdicts per location, counted when they are written, so that the
    // health score reads a few rows per location and night instead of every
    // verification in its window; counted from the verifications already stored. A
    // restore test names its location too, so that a location's tests are found by it.
    r#"
CREATE TABLE verification_tallies (
    location_id  INTEGER NOT NULL REFERENCES locations(id),
    run_id       INTEGER,
    at           INTEGER NOT NULL,
    passed       INTEGER NOT NULL,
    judged       INTEGER NOT NULL
);
CREATE INDEX verification_tallies_by_location ON verification_tallies(location_id, at);
INSERT INTO verification_tallies (location_id, run_id, at, passed, judged)
    SELECT b.location_id, v.run_id, v.at, COUNT(*) FILTER (WHERE v.result = 'passed'), COUNT(*)
    FROM verifications v JOIN backups b ON b.id = v.backup_id
    WHERE v.result IN ('passed', 'failed')
    GROUP BY b.location_id, v.run_id, v.at;
ALTER TABLE restore_tests ADD COLUMN location_id INTEGER REFERENCES locations(id);
UPDATE restore_tests SET location_id = (SELECT b.location_id FROM backups b WHERE b.id = restore_tests.backup_id);
CREATE INDEX restore_tests_by_location ON restore_tests(location_id, at);
"#,
    // 9: the verifications that did not pass, by time: what the fleet report lists and
    // counts one by one, among the millions that passed (a host re-hashes every present
    // backup every night; passes are counted from the tallies).
    r#"
CREATE INDEX verifications_unpassed ON verifications(at) WHERE result <> 'passed';
"#,
    // 10: both indexes of verifications by time, where missing: a development build of
    // 2026-12-05 (never released) dropped the one by time alone under the number 9, and
    // a store it migrated skips the migration above.
    r#"
CREATE INDEX IF NOT EXISTS verifications_by_at ON verifications(at);
CREATE INDEX IF NOT EXISTS verifications_unpassed ON verifications(at) WHERE result <> 'passed';
"#,
    // 11: when a location left its host's config (NULL while configured): the fleet's
    // views leave it out, as a host's own views do, instead of reading it as stopped.
    r#"
ALTER TABLE locations ADD COLUMN removed_at INTEGER;
"#,
];

/// The migration that made locations, problems and alerts belong to a host.
pub const HOST_SCHEMA: usize = 5;

/// The migration (SQLite, PostgreSQL) that added `location_states`: a store not yet
/// migrated that far is read as having no stored states.
pub const STATES_SCHEMA: (usize, usize) = (6, 2);

/// The PostgreSQL schema: the same tables and columns as SQLite's after all its
/// migrations, in PostgreSQL's types (every integer BIGINT: nanosecond mtimes do not fit
/// 32 bits; DOUBLE PRECISION, not the 4-byte REAL).
pub const PG_MIGRATIONS: &[&str] = &[
    // 1: the schema as SQLite's after its first five migrations.
    r#"
CREATE TABLE locations (
    id                 BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    host               TEXT NOT NULL DEFAULT '',
    name               TEXT NOT NULL,
    path               TEXT NOT NULL,
    kind               TEXT NOT NULL,
    created_at         BIGINT NOT NULL,
    last_scan_at       BIGINT,
    available          BIGINT,
    free_bytes         BIGINT,
    total_bytes        BIGINT,
    timestamp_settings TEXT,
    UNIQUE (host, name)
);

CREATE TABLE backups (
    id               BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    location_id      BIGINT NOT NULL REFERENCES locations(id),
    path             TEXT NOT NULL,
    size             BIGINT NOT NULL,
    mtime_ns         BIGINT NOT NULL,
    ts               BIGINT NOT NULL,
    ts_source        TEXT NOT NULL,
    seen_size        BIGINT NOT NULL,
    seen_mtime_ns    BIGINT NOT NULL,
    first_seen       BIGINT NOT NULL,
    last_seen        BIGINT NOT NULL,
    deleted_at       BIGINT,
    checksum         TEXT,
    checksum_algo    TEXT,
    checksum_at      BIGINT,
    last_verified_at BIGINT
);
CREATE UNIQUE INDEX backups_present ON backups(location_id, path) WHERE deleted_at IS NULL;
CREATE INDEX backups_by_ts ON backups(location_id, ts);

CREATE TABLE verifications (
    id           BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    backup_id    BIGINT NOT NULL REFERENCES backups(id),
    run_id       BIGINT,
    at           BIGINT NOT NULL,
    method       TEXT NOT NULL,
    algo         TEXT,
    result       TEXT NOT NULL,
    bytes        BIGINT NOT NULL DEFAULT 0,
    duration_ms  BIGINT NOT NULL DEFAULT 0,
    detail       TEXT
);
CREATE INDEX verifications_by_backup ON verifications(backup_id, at);
CREATE INDEX verifications_by_at ON verifications(at);

CREATE TABLE restore_tests (
    id            BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    backup_id     BIGINT NOT NULL REFERENCES backups(id),
    run_id        BIGINT,
    at            BIGINT NOT NULL,
    format        TEXT NOT NULL,
    result        TEXT NOT NULL,
    files         BIGINT NOT NULL DEFAULT 0,
    bytes         BIGINT NOT NULL DEFAULT 0,
    duration_ms   BIGINT NOT NULL DEFAULT 0,
    detail        TEXT,
    size          BIGINT NOT NULL,
    mtime_ns      BIGINT NOT NULL,
    settings      TEXT NOT NULL DEFAULT '',
    carried_from  BIGINT REFERENCES restore_tests(id),
    tables        BIGINT,
    rows_restored BIGINT
);
CREATE INDEX restore_tests_by_backup ON restore_tests(backup_id, at);
CREATE INDEX restore_tests_by_at ON restore_tests(at);
CREATE INDEX restore_tests_passed ON restore_tests(result, carried_from, at);

CREATE TABLE health_daily (
    location_id   BIGINT NOT NULL REFERENCES locations(id),
    day           TEXT NOT NULL,
    score         DOUBLE PRECISION,
    backup_rate   DOUBLE PRECISION,
    verify_rate   DOUBLE PRECISION,
    restore_rate  DOUBLE PRECISION,
    computed_at   BIGINT NOT NULL,
    PRIMARY KEY (location_id, day)
);

CREATE TABLE problems (
    id           BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    key          TEXT NOT NULL,
    kind         TEXT NOT NULL,
    severity     TEXT NOT NULL,
    operation    TEXT NOT NULL,
    location_id  BIGINT REFERENCES locations(id),
    location     TEXT,
    path         TEXT,
    slot         TEXT,
    message      TEXT NOT NULL,
    first_seen   BIGINT NOT NULL,
    last_seen    BIGINT NOT NULL,
    runs_seen    BIGINT NOT NULL DEFAULT 1,
    resolved_at  BIGINT,
    host         TEXT NOT NULL DEFAULT ''
);
CREATE UNIQUE INDEX problems_open ON problems(host, key) WHERE resolved_at IS NULL;
CREATE INDEX problems_by_location ON problems(location_id, resolved_at);
CREATE INDEX problems_by_host ON problems(host, resolved_at);

CREATE TABLE alerts (
    id            BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    key           TEXT NOT NULL,
    problem_id    BIGINT NOT NULL UNIQUE REFERENCES problems(id),
    kind          TEXT NOT NULL,
    severity      TEXT NOT NULL,
    location      TEXT,
    path          TEXT,
    slot          TEXT,
    message       TEXT NOT NULL,
    opened_at     BIGINT NOT NULL,
    last_sent_at  BIGINT,
    send_count    BIGINT NOT NULL DEFAULT 0,
    closed_at     BIGINT,
    finished_at   BIGINT,
    host          TEXT NOT NULL DEFAULT ''
);
CREATE INDEX alerts_by_key ON alerts(key, closed_at);
CREATE INDEX alerts_unfinished ON alerts(finished_at);
CREATE INDEX alerts_by_host ON alerts(host, finished_at);

CREATE TABLE alert_deliveries (
    id        BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    alert_id  BIGINT NOT NULL REFERENCES alerts(id),
    run_id    BIGINT,
    channel   TEXT NOT NULL,
    event     TEXT NOT NULL,
    severity  TEXT NOT NULL,
    at        BIGINT NOT NULL,
    success   BIGINT NOT NULL,
    error     TEXT
);
CREATE INDEX alert_deliveries_by_alert ON alert_deliveries(alert_id, channel, at);

CREATE TABLE runs (
    id          BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    started_at  BIGINT NOT NULL,
    finished_at BIGINT,
    operations  TEXT NOT NULL,
    exit_code   BIGINT,
    host        TEXT NOT NULL,
    version     TEXT NOT NULL,
    pid         BIGINT NOT NULL
);
CREATE INDEX runs_by_host ON runs(host, id);

CREATE TABLE acks (
    id           BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    problem_id   BIGINT NOT NULL REFERENCES problems(id),
    severity     TEXT NOT NULL,
    at           BIGINT NOT NULL
);
CREATE INDEX acks_by_problem ON acks(problem_id);

CREATE TABLE accepted_deletions (
    backup_id    BIGINT PRIMARY KEY REFERENCES backups(id),
    at           BIGINT NOT NULL
);

CREATE TABLE silences (
    id           BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    selector     TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    until        BIGINT NOT NULL,
    ended_at     BIGINT,
    user_name    TEXT NOT NULL,
    host         TEXT NOT NULL,
    reason       TEXT NOT NULL
);

CREATE TABLE lifecycle_actions (
    id           BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    at           BIGINT NOT NULL,
    user_name    TEXT NOT NULL,
    host         TEXT NOT NULL,
    action       TEXT NOT NULL,
    target       TEXT NOT NULL,
    reason       TEXT NOT NULL
);
CREATE INDEX lifecycle_actions_by_at ON lifecycle_actions(at);

CREATE TABLE run_locks (
    host     TEXT PRIMARY KEY,
    pid      BIGINT NOT NULL,
    machine  TEXT NOT NULL,
    since    BIGINT NOT NULL
);
"#,
    // 2: what each host last stored about each of its locations for the fleet views.
    r#"
CREATE TABLE location_states (
    location_id  BIGINT PRIMARY KEY REFERENCES locations(id),
    written_at   BIGINT NOT NULL,
    state        TEXT NOT NULL
);
"#,
    // 3: claims on an alert's next notice per channel (SQLite's migration 7).
    r#"
CREATE TABLE alert_claims (
    alert_id   BIGINT NOT NULL REFERENCES alerts(id),
    channel    TEXT NOT NULL,
    run_id     BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    PRIMARY KEY (alert_id, channel)
);
"#,
    // 4: room on each page for the rows every run updates (a backup's last verification,
    // a location's last scan), so that PostgreSQL updates them in place instead of adding
    // an entry to each of their indexes every night. Pages written from now on keep it.
    r#"
ALTER TABLE backups SET (fillfactor = 70);
ALTER TABLE locations SET (fillfactor = 70);
"#,
    // 5: each run's verdicts per location, and the location of each restore test
    // (SQLite's migration 8).
    r#"
CREATE TABLE verification_tallies (
    location_id  BIGINT NOT NULL REFERENCES locations(id),
    run_id       BIGINT,
    at           BIGINT NOT NULL,
    passed       BIGINT NOT NULL,
    judged       BIGINT NOT NULL
);
CREATE INDEX verification_tallies_by_location ON verification_tallies(location_id, at);
INSERT INTO verification_tallies (location_id, run_id, at, passed, judged)
    SELECT b.location_id, v.run_id, v.at, COUNT(*) FILTER (WHERE v.result = 'passed'), COUNT(*)
    FROM verifications v JOIN backups b ON b.id = v.backup_id
    WHERE v.result IN ('passed', 'failed')
    GROUP BY b.location_id, v.run_id, v.at;
ALTER TABLE restore_tests ADD COLUMN location_id BIGINT REFERENCES locations(id);
UPDATE restore_tests SET location_id = b.location_id FROM backups b WHERE b.id = restore_tests.backup_id;
CREATE INDEX restore_tests_by_location ON restore_tests(location_id, at);
"#,
    // 6: a verification's backup is no longer checked against `backups` by the server:
    // the check cost as much as storing the row (a query and a row lock for each of the
    // ~1,000 rows a host writes a night). Backups are never deleted (only marked
    // deleted), and verifications are written only for backups the run read from the
    // store; SQLite, in process, still checks every row.
    r#"
ALTER TABLE verifications DROP CONSTRAINT IF EXISTS verifications_backup_id_fkey;
"#,
    // 7: the same for the rows a nightly run writes about its locations (backups, health
    // scores, states, tallies, problems): each table's check cost the server a query to
    // prepare and a row lock per row, about half a millisecond a table a run.
    // Locations are never deleted, and a run writes these rows only for locations it
    // took from the store.
    r#"
ALTER TABLE backups DROP CONSTRAINT IF EXISTS backups_location_id_fkey;
ALTER TABLE health_daily DROP CONSTRAINT IF EXISTS health_daily_location_id_fkey;
ALTER TABLE location_states DROP CONSTRAINT IF EXISTS location_states_location_id_fkey;
ALTER TABLE verification_tallies DROP CONSTRAINT IF EXISTS verification_tallies_location_id_fkey;
ALTER TABLE problems DROP CONSTRAINT IF EXISTS problems_location_id_fkey;
"#,
    // 8: the verifications that did not pass, by time (SQLite's migration 9).
    r#"
CREATE INDEX verifications_unpassed ON verifications(at) WHERE result <> 'passed';
"#,
    // 9: the index of verifications by time alone, where missing: a development build of
    // 2026-12-05 (never released) dropped it in the migration numbered 7 (SQLite's 10).
    r#"
CREATE INDEX IF NOT EXISTS verifications_by_at ON verifications(at);
"#,
    // 10: room on each page for problems and alerts too: every run finds its open
    // problems again (their last-seen time, count and message change), a fleet run the
    // staleness of every stopped host, and each alert follows its problem's message.
    r#"
ALTER TABLE problems SET (fillfactor = 70);
ALTER TABLE alerts SET (fillfactor = 70);
"#,
    // 11: when a location left its host's config (SQLite's 11).
    r#"
ALTER TABLE locations ADD COLUMN removed_at BIGINT;
"#,
];
