-- A DB4Sci-style admin table of backup runs, and a read-only role for backup-monitor.
--
-- Each run of a container's backup writes two rows with the same id: a 'start' row when
-- it begins, then an 'end' row when it succeeds or a 'failed' row when it fails. A run
-- that is still going has only its 'start' row. job-log-db4sci.yaml pairs them by id.
--
--   psql "$ADMIN_URL" -f examples/job-log-db4sci.sql

CREATE TABLE IF NOT EXISTS backup_log (
    id        bigint      NOT NULL,
    container text        NOT NULL,
    state     text        NOT NULL CHECK (state IN ('start', 'end', 'failed')),
    ts        timestamptz NOT NULL DEFAULT now()
);

-- The query looks back a bounded time: an index on ts keeps it cheap as the log grows.
CREATE INDEX IF NOT EXISTS backup_log_ts ON backup_log (ts);
CREATE INDEX IF NOT EXISTS backup_log_id ON backup_log (id);

-- backup-monitor only reads. Create the role once, with a password you keep in the
-- environment of backup-monitor (DB4SCI_ADMIN_URL), never in the config file:
--
--   CREATE ROLE backup_monitor LOGIN PASSWORD '…';
--   GRANT SELECT ON backup_log TO backup_monitor;
--
-- Besides the read-only role, backup-monitor runs the query in a read-only transaction
-- with a statement timeout.
