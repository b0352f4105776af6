//! Versioned migrations. Each entry is applied once, in order, inside a transaction, and
//! `PRAGMA user_version` records how far a store has come. Append; never edit a shipped one.

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
];
