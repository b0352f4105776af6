//! Alerts and their delivery history. An alert follows one problem row;
//! every attempt to deliver it on a channel is a delivery row, successful or not, with
//! its (already redacted) error. What a channel must be told next is decided from these
//! rows by `alert::decide`. A claim row marks the run about to tell a channel an alert's
//! next notice, so runs sharing a store do not both send it.

use super::sql::{Row, SqlResult, ToValue, Value, params};
use super::{RUN_CLASS, Store, from_unix, to_unix};
use crate::problem::{Problem, Severity};
use crate::store::StoredProblem;
use anyhow::Result;
use chrono::{DateTime, Utc};
use std::collections::{BTreeMap, HashMap, HashSet};

/// Claims per statement (one bound parameter each).
const CLAIM_ROWS: usize = 200;

/// Alerts opened per statement.
const ALERT_ROWS: usize = 200;

/// What a message says about one alert; recorded with each delivery.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    serde::Serialize,
    strum::IntoStaticStr,
    strum::EnumString,
)]
#[serde(rename_all = "lowercase")]
#[strum(serialize_all = "lowercase")]
pub enum Event {
    /// The first notice of a problem.
    Open,
    /// The severity rose since the channel was last told: sent at once.
    Escalation,
    /// The severity dropped since the channel was last told: sent when the cooldown
    /// allows a repeat, worded as a de-escalation.
    Deescalation,
    /// Still open after `cooldown`.
    Repeat,
    /// The problem closed (`send_resolved`).
    Resolved,
}

impl Event {
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

/// An alert as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct AlertRow {
    pub id: i64,
    pub key: String,
    pub problem_id: i64,
    /// The problem as it was when the alert was opened (the severity follows it while
    /// open: an escalation updates it).
    pub problem: Problem,
    pub opened_at: DateTime<Utc>,
    /// Last successful delivery on any channel.
    pub last_sent_at: Option<DateTime<Utc>>,
    /// Successful deliveries on all channels.
    pub send_count: u32,
    /// When its problem was resolved.
    pub closed_at: Option<DateTime<Utc>>,
    /// The host its problem was found on.
    pub host: String,
}

/// One attempt to deliver an alert on one channel.
#[derive(Debug, Clone, PartialEq)]
pub struct AlertDelivery {
    pub alert_id: i64,
    pub channel: String,
    pub event: Event,
    pub severity: Severity,
    pub at: DateTime<Utc>,
    pub success: bool,
    pub error: Option<String>,
}

const COLUMNS: &str = "id, key, problem_id, kind, severity, location, path, slot, message, opened_at, last_sent_at, send_count, closed_at, host";

fn alert_from_row(r: &Row) -> SqlResult<AlertRow> {
    Ok(AlertRow {
        id: r.get(0)?,
        key: r.get(1)?,
        problem_id: r.get(2)?,
        problem: Problem {
            kind: r.get(3)?,
            severity: r.get(4)?,
            location: r.get(5)?,
            path: r.get(6)?,
            slot: r.get(7)?,
            message: r.get(8)?,
        },
        opened_at: from_unix(r.get(9)?),
        last_sent_at: r.get::<Option<i64>>(10)?.map(from_unix),
        send_count: r.get(11)?,
        closed_at: r.get::<Option<i64>>(12)?.map(from_unix),
        host: r.get(13)?,
    })
}

fn delivery_from_row(r: &Row) -> SqlResult<AlertDelivery> {
    Ok(AlertDelivery {
        alert_id: r.get(0)?,
        channel: r.get(1)?,
        event: r.get(2)?,
        severity: r.get(3)?,
        at: from_unix(r.get(4)?),
        success: r.get(5)?,
        error: r.get(6)?,
    })
}

impl Store {
    fn alerts_where(
        &self,
        sql: &str,
        params: &[&dyn super::sql::ToValue],
    ) -> Result<Vec<AlertRow>> {
        Ok(self.db.query_map(sql, params, alert_from_row)?)
    }

    /// Alerts of the hosts in view that may still need a delivery: open ones, and closed
    /// ones whose resolution is not yet delivered everywhere.
    pub fn unfinished_alerts(&self) -> Result<Vec<AlertRow>> {
        self.alerts_where(
            &format!(
                "SELECT {COLUMNS} FROM alerts WHERE finished_at IS NULL AND (CAST(?1 AS TEXT) IS NULL OR host = ?1) ORDER BY id"
            ),
            params![self.view_host()],
        )
    }

    /// Alerts of the hosts in view whose problem is still open (for `--status`), oldest
    /// first.
    pub fn open_alerts(&self) -> Result<Vec<AlertRow>> {
        self.alerts_where(
            &format!(
                "SELECT {COLUMNS} FROM alerts WHERE closed_at IS NULL AND (CAST(?1 AS TEXT) IS NULL OR host = ?1) ORDER BY opened_at, id"
            ),
            params![self.view_host()],
        )
    }

    /// Open the alert of an open problem (on the problem's host). One alert per problem:
    /// when another run opened it a moment ago, that alert is the one returned.
    pub fn open_alert(&self, problem: &StoredProblem, now: DateTime<Utc>) -> Result<AlertRow> {
        self.open_alerts_for(&[problem], now)?
            .remove(&problem.id)
            .ok_or_else(|| anyhow::anyhow!("the alert of problem {} was not stored", problem.id))
    }

    /// [`Store::open_alert`] of several problems: [`ALERT_ROWS`] of them a statement, then
    /// their alerts read back in one; by problem id.
    pub fn open_alerts_for(
        &self,
        problems: &[&StoredProblem],
        now: DateTime<Utc>,
    ) -> Result<HashMap<i64, AlertRow>> {
        if problems.is_empty() {
            return Ok(HashMap::new());
        }
        self.write_pending()?;
        let now_s = to_unix(now);
        const PER_ROW: usize = 9;
        for chunk in problems.chunks(ALERT_ROWS) {
            let keys: Vec<crate::problem::ProblemKey> =
                chunk.iter().map(|p| p.problem.key()).collect();
            let rows: Vec<String> = (0..chunk.len())
                .map(|i| {
                    format!(
                        "({}, ?1)",
                        super::report::placeholders(PER_ROW, 2 + i * PER_ROW)
                    )
                })
                .collect();
            let mut args: Vec<&dyn ToValue> = vec![&now_s];
            for (p, key) in chunk.iter().zip(&keys) {
                let q = &p.problem;
                args.extend([
                    key as &dyn ToValue,
                    &p.id,
                    &q.kind,
                    &q.severity,
                    &q.location,
                    &q.path,
                    &q.slot,
                    &q.message,
                    &p.host,
                ]);
            }
            self.db.execute(
                &format!(
                    "INSERT INTO alerts (key, problem_id, kind, severity, location, path, slot, message, host, opened_at)
                     VALUES {} ON CONFLICT (problem_id) DO NOTHING",
                    rows.join(", ")
                ),
                &args,
            )?;
        }
        let ids: Vec<i64> = problems.iter().map(|p| p.id).collect();
        let mut out = HashMap::new();
        self.query_each_in(
            &format!("SELECT {COLUMNS} FROM alerts WHERE problem_id IN ({{ids}})"),
            &[],
            &ids,
            |r| {
                let a = alert_from_row(r)?;
                out.insert(a.problem_id, a);
                Ok(())
            },
        )?;
        Ok(out)
    }

    /// Follow the problems' current severity and message: (alert id, severity, message).
    pub fn refresh_alerts(&self, alerts: &[(i64, Severity, &str)]) -> Result<()> {
        let rows: Vec<[&dyn ToValue; 3]> = alerts
            .iter()
            .map(|(id, severity, message)| [id as &dyn ToValue, severity, message])
            .collect();
        self.update_by_id(
            "alerts",
            "severity = v.column2, message = v.column3",
            ["BIGINT", "TEXT", "TEXT"],
            &rows,
        )
    }

    /// The alerts' problems were resolved: (alert id, when). An alert closed already
    /// keeps its time.
    pub fn close_alerts(&self, alerts: &[(i64, DateTime<Utc>)]) -> Result<()> {
        let at: Vec<(i64, i64)> = alerts.iter().map(|(id, t)| (*id, to_unix(*t))).collect();
        let rows: Vec<[&dyn ToValue; 2]> =
            at.iter().map(|(id, t)| [id as &dyn ToValue, t]).collect();
        self.update_by_id(
            "alerts",
            "closed_at = COALESCE(alerts.closed_at, v.column2)",
            ["BIGINT", "BIGINT"],
            &rows,
        )
    }

    /// Nothing is left to deliver for these closed alerts.
    pub fn finish_alerts(&self, alert_ids: &[i64], now: DateTime<Utc>) -> Result<()> {
        self.set_for_ids("alerts", "finished_at", to_unix(now), alert_ids)
    }

    /// Every delivery attempt of an alert, oldest first.
    pub fn alert_deliveries(&self, alert_id: i64) -> Result<Vec<AlertDelivery>> {
        Ok(self
            .deliveries_of(&[alert_id])?
            .remove(&alert_id)
            .unwrap_or_default())
    }

    /// [`Store::alert_deliveries`] of several alerts; an alert with none is absent.
    pub fn deliveries_of(&self, alert_ids: &[i64]) -> Result<HashMap<i64, Vec<AlertDelivery>>> {
        let mut out: HashMap<i64, Vec<AlertDelivery>> = HashMap::new();
        let mut ids = alert_ids.to_vec();
        ids.sort_unstable();
        ids.dedup();
        self.query_each_in(
            "SELECT alert_id, channel, event, severity, at, success, error
             FROM alert_deliveries WHERE alert_id IN ({ids}) ORDER BY alert_id, at, id",
            &[],
            &ids,
            |r| {
                let d = delivery_from_row(r)?;
                out.entry(d.alert_id).or_default().push(d);
                Ok(())
            },
        )?;
        Ok(out)
    }

    /// Claim the next notice of each of `alert_ids` on `channel` for run `run_id`, until
    /// `expires_at`; returns the ids claimed. Each statement is atomic, so of two runs
    /// claiming at once exactly one gets each alert. A claim another run holds is left
    /// to it while that run lives: on PostgreSQL while its session holds the run's lock
    /// (taken when the run starts, and here again for a caller that did not; gone with a
    /// killed run's connection) and the claim has not expired; on SQLite
    /// never, as runs on one store file are serialized by the lock file beside it (a
    /// claim left there is a dead run's).
    pub fn claim_notices(
        &self,
        alert_ids: &[i64],
        channel: &str,
        run_id: i64,
        now: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> Result<HashSet<i64>> {
        let (now_s, expires_s) = (to_unix(now), to_unix(expires_at));
        let (lock_key, alive) = match self.backend() {
            super::sql::Backend::Sqlite => (None, "FALSE"),
            super::sql::Backend::Postgres => (
                Some((run_id % (1 << 31)) as i32),
                "alert_claims.expires_at > ?4 AND EXISTS (
                   SELECT 1 FROM pg_locks k
                   WHERE k.locktype = 'advisory' AND k.granted AND k.objsubid = 2
                     AND k.database = (SELECT oid FROM pg_database WHERE datname = current_database())
                     AND k.classid::bigint = ?5 AND k.objid::bigint = alert_claims.run_id % 2147483648)",
            ),
        };
        if let Some(key) = lock_key {
            self.db.query(
                "SELECT pg_advisory_lock(?1::integer, ?2::integer)",
                params![RUN_CLASS, key],
            )?;
        }
        let mut claimed = HashSet::new();
        for chunk in alert_ids.chunks(CLAIM_ROWS) {
            let rows: Vec<String> = (0..chunk.len())
                .map(|i| format!("(?{}, ?1, ?2, ?3)", i + 6))
                .collect();
            let sql = format!(
                "INSERT INTO alert_claims (alert_id, channel, run_id, expires_at) VALUES {}
                 ON CONFLICT (alert_id, channel) DO UPDATE
                   SET run_id = excluded.run_id, expires_at = excluded.expires_at
                   WHERE alert_claims.run_id = ?2 OR NOT ({alive})
                 RETURNING alert_id",
                rows.join(", ")
            );
            let class = i64::from(RUN_CLASS);
            let mut args: Vec<&dyn ToValue> = vec![&channel, &run_id, &expires_s, &now_s, &class];
            args.extend(chunk.iter().map(|id| id as &dyn ToValue));
            claimed.extend(self.db.query_map(&sql, &args, |r| r.get::<i64>(0))?);
        }
        Ok(claimed)
    }

    /// Give up the claims run `run_id` holds on `channel`.
    pub fn release_claims(&self, run_id: i64, channel: &str) -> Result<()> {
        self.db.execute(
            "DELETE FROM alert_claims WHERE run_id = ?1 AND channel = ?2",
            params![run_id, channel],
        )?;
        Ok(())
    }

    /// Record the attempts of one message (one row per alert it carried) and give up the
    /// run's claims on its channel, in one transaction; successful ones also update the
    /// alert's last_sent_at and send_count. A run that claims after this commits sees the
    /// delivery.
    pub fn record_deliveries(&self, run_id: i64, deliveries: &[AlertDelivery]) -> Result<()> {
        let tx = self.db.transaction()?;
        let mut channels: Vec<&str> = deliveries.iter().map(|d| d.channel.as_str()).collect();
        channels.sort_unstable();
        channels.dedup();
        for channel in channels {
            self.release_claims(run_id, channel)?;
        }
        let rows = deliveries.iter().map(|d| {
            vec![
                Value::Int(d.alert_id),
                Value::Int(run_id),
                Value::Text(d.channel.clone()),
                Value::Text(d.event.as_str().to_string()),
                Value::Text(d.severity.as_str().to_string()),
                Value::Int(to_unix(d.at)),
                Value::Int(i64::from(d.success)),
                d.error.clone().map_or(Value::Null, Value::Text),
            ]
        });
        use super::sql::SqlType::{BigInt, Text};
        self.db.insert_rows(
            "alert_deliveries",
            &[
                "alert_id", "run_id", "channel", "event", "severity", "at", "success", "error",
            ],
            &[BigInt, BigInt, Text, Text, Text, BigInt, BigInt, Text],
            rows,
        )?;
        // Each alert's successful deliveries of this message: how many, and the last.
        let mut sent: BTreeMap<i64, (i64, i64)> = BTreeMap::new();
        for d in deliveries.iter().filter(|d| d.success) {
            let e = sent.entry(d.alert_id).or_insert((0, i64::MIN));
            e.0 += 1;
            e.1 = e.1.max(to_unix(d.at));
        }
        let sent: Vec<(i64, i64, i64)> =
            sent.into_iter().map(|(id, (n, at))| (id, at, n)).collect();
        let rows: Vec<[&dyn ToValue; 3]> = sent
            .iter()
            .map(|(id, at, n)| [id as &dyn ToValue, at, n])
            .collect();
        self.update_by_id(
            "alerts",
            "last_sent_at = v.column2, send_count = alerts.send_count + v.column3",
            ["BIGINT", "BIGINT", "BIGINT"],
            &rows,
        )?;
        tx.commit()?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::problem::{Kind, Operation, Problem};

    /// A store with one open missing_backup (found at 10) and its alert (opened at 20).
    fn one_alert() -> (crate::store::TestDb, Store, StoredProblem, AlertRow) {
        let (dir, store, loc) = crate::store::store_with_location("db", "database");
        let p = Problem::new(Kind::MissingBackup, Severity::Critical, "db", "slot missed")
            .with_slot("2026-11-19T02:00:00+00:00".parse().unwrap());
        store
            .sync_problems(
                Operation::Monitor,
                Some(loc),
                &[p],
                &|_| true,
                from_unix(10),
            )
            .unwrap();
        let problem = store.open_problems(None, None).unwrap().remove(0);
        let alert = store.open_alert(&problem, from_unix(20)).unwrap();
        (dir, store, problem, alert)
    }

    #[test]
    fn alert_lifecycle_and_history() {
        let (_dir, store, problem, alert) = one_alert();
        assert_eq!(alert.key, problem.problem.key().to_string());
        assert_eq!(alert.send_count, 0);
        let attempt = |channel: &str, at: i64, success: bool| AlertDelivery {
            alert_id: alert.id,
            channel: channel.into(),
            event: Event::Open,
            severity: Severity::Critical,
            at: from_unix(at),
            success,
            error: (!success).then(|| "HTTP 500".to_string()),
        };
        store
            .record_deliveries(
                7,
                &[attempt("email", 20, true), attempt("slack", 20, false)],
            )
            .unwrap();
        let history = store.alert_deliveries(alert.id).unwrap();
        assert_eq!(history.len(), 2);
        assert_eq!(history[1].error.as_deref(), Some("HTTP 500"));
        let open = store.open_alerts().unwrap();
        assert_eq!(open[0].send_count, 1, "only the successful delivery counts");
        assert_eq!(open[0].last_sent_at, Some(from_unix(20)));
        store.close_alerts(&[(alert.id, from_unix(30))]).unwrap();
        assert!(store.open_alerts().unwrap().is_empty());
        let unfinished = store.unfinished_alerts().unwrap();
        assert_eq!(unfinished.len(), 1);
        store.close_alerts(&[(alert.id, from_unix(35))]).unwrap();
        assert_eq!(
            store.unfinished_alerts().unwrap()[0].closed_at,
            Some(from_unix(30)),
            "a closed alert keeps the time it closed"
        );
        store.finish_alerts(&[alert.id], from_unix(40)).unwrap();
        assert!(store.unfinished_alerts().unwrap().is_empty());
    }

    /// An alert's successful deliveries add up over the messages that carried it.
    #[test]
    fn send_count_accumulates_over_messages() {
        let (_dir, store, _, alert) = one_alert();
        let told = |at: i64| AlertDelivery {
            alert_id: alert.id,
            channel: "email".into(),
            event: Event::Repeat,
            severity: Severity::Critical,
            at: from_unix(at),
            success: true,
            error: None,
        };
        store.record_deliveries(1, &[told(20)]).unwrap();
        store.record_deliveries(2, &[told(30), told(30)]).unwrap();
        let a = store.open_alerts().unwrap().remove(0);
        assert_eq!((a.send_count, a.last_sent_at), (3, Some(from_unix(30))));
    }

    /// A fleet's alerts are opened, refreshed, told, closed and finished many at a time:
    /// more than one statement's worth each, every row as if written one by one.
    #[test]
    fn alerts_are_written_in_batches_as_they_would_be_one_by_one() {
        let (_dir, store, loc) = crate::store::store_with_location("db", "database");
        let n = ALERT_ROWS + 50;
        let found: Vec<Problem> = (0..n)
            .map(|i| {
                Problem::new(Kind::ChecksumMismatch, Severity::Critical, "db", "changed")
                    .with_path(format!("f{i}.dump"))
            })
            .collect();
        store
            .sync_problems(
                Operation::Verify,
                Some(loc),
                &found,
                &|_| true,
                from_unix(10),
            )
            .unwrap();
        let problems = store.open_problems(None, None).unwrap();
        let refs: Vec<&StoredProblem> = problems.iter().collect();
        let (first, rest) = refs.split_at(10);
        let early = store.open_alerts_for(first, from_unix(20)).unwrap();
        let all = store.open_alerts_for(&refs, from_unix(21)).unwrap();
        assert_eq!(all.len(), n);
        for p in first {
            assert_eq!(
                all[&p.id], early[&p.id],
                "an open alert is found, not opened again"
            );
        }
        for p in rest {
            let a = &all[&p.id];
            assert_eq!(
                (a.opened_at, a.key.clone()),
                (from_unix(21), p.problem.key().to_string())
            );
            assert_eq!((&a.problem, &a.host), (&p.problem, &p.host));
        }
        let ids: Vec<i64> = problems.iter().map(|p| all[&p.id].id).collect();
        let refreshed: Vec<(i64, Severity, &str)> = ids
            .iter()
            .map(|id| (*id, Severity::Warning, "now a warning"))
            .collect();
        store.refresh_alerts(&refreshed).unwrap();
        // One message told every alert, the first twice (two lines on one channel).
        let mut told: Vec<AlertDelivery> = ids
            .iter()
            .map(|id| AlertDelivery {
                alert_id: *id,
                channel: "webhook".into(),
                event: Event::Open,
                severity: Severity::Warning,
                at: from_unix(30),
                success: true,
                error: None,
            })
            .collect();
        told.push(AlertDelivery {
            at: from_unix(31),
            ..told[0].clone()
        });
        told.push(AlertDelivery {
            success: false,
            error: Some("HTTP 500".into()),
            ..told[1].clone()
        });
        store.record_deliveries(1, &told).unwrap();
        let open = store.open_alerts().unwrap();
        assert_eq!(open.len(), n);
        for a in &open {
            assert_eq!(
                (a.problem.severity, a.problem.message.as_str()),
                (Severity::Warning, "now a warning")
            );
            let (count, last) = if a.id == ids[0] { (2, 31) } else { (1, 30) };
            assert_eq!(
                (a.send_count, a.last_sent_at),
                (count, Some(from_unix(last))),
                "alert {}",
                a.id
            );
        }
        let history = store.deliveries_of(&ids).unwrap();
        assert_eq!(history.values().map(Vec::len).sum::<usize>(), n + 2);
        assert_eq!(history[&ids[1]][1].error.as_deref(), Some("HTTP 500"));
        let closing: Vec<(i64, DateTime<Utc>)> =
            ids.iter().map(|id| (*id, from_unix(40))).collect();
        store.close_alerts(&closing).unwrap();
        assert!(store.open_alerts().unwrap().is_empty());
        store.finish_alerts(&ids[..n - 1], from_unix(50)).unwrap();
        let left = store.unfinished_alerts().unwrap();
        assert_eq!(left.iter().map(|a| a.id).collect::<Vec<_>>(), [ids[n - 1]]);
        assert_eq!(left[0].closed_at, Some(from_unix(40)));
        let by_id = store
            .problems(&[problems[0].id, problems[n - 1].id, -1])
            .unwrap();
        assert_eq!(by_id.len(), 2, "an unknown id is absent");
        assert_eq!(by_id[&problems[0].id], problems[0]);
    }

    #[test]
    fn a_notice_is_claimed_by_one_run_until_delivered_or_expired() {
        let (_dir, store, loc) = crate::store::store_with_location("db", "database");
        let p = Problem::new(Kind::MonitorStale, Severity::Critical, "db", "stopped");
        store
            .sync_problems(Operation::Report, Some(loc), &[p], &|_| true, from_unix(10))
            .unwrap();
        let problem = store.open_problems(None, None).unwrap().remove(0);
        let alert = store.open_alert(&problem, from_unix(20)).unwrap();
        assert_eq!(
            store.open_alert(&problem, from_unix(21)).unwrap(),
            alert,
            "a second run opening the same alert gets the first one"
        );
        let ids = [alert.id];
        let claim = |run: i64, at: i64| {
            store
                .claim_notices(&ids, "webhook", run, from_unix(at), from_unix(at + 120))
                .unwrap()
        };
        assert_eq!(claim(1, 30), HashSet::from([alert.id]));
        assert_eq!(claim(1, 32).len(), 1, "a run may claim again what it holds");
        assert_eq!(
            store
                .claim_notices(&ids, "email", 2, from_unix(31), from_unix(151))
                .unwrap()
                .len(),
            1,
            "claims are per channel"
        );
        // Delivering releases the claim, in the transaction that records the delivery.
        let sent = AlertDelivery {
            alert_id: alert.id,
            channel: "webhook".into(),
            event: Event::Open,
            severity: Severity::Critical,
            at: from_unix(33),
            success: true,
            error: None,
        };
        store.record_deliveries(1, &[sent]).unwrap();
        assert_eq!(claim(2, 34).len(), 1, "free once delivered");
        match store.backend() {
            // Runs of one SQLite store never overlap: a claim left behind is a dead run's.
            crate::store::sql::Backend::Sqlite => {
                assert_eq!(claim(3, 35).len(), 1, "a dead run's claim is taken over");
            }
            // Run 2's claim lock is held (by this very session): it stands until it
            // expires.
            crate::store::sql::Backend::Postgres => {
                assert!(claim(3, 100).is_empty(), "run 2 is alive and holds it");
                assert_eq!(claim(3, 154).len(), 1, "an expired claim lapses");
            }
        }
        store.release_claims(3, "webhook").unwrap();
        assert_eq!(claim(4, 155).len(), 1);
    }
}
