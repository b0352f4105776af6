//! Open problems: each operation judges its own kinds and syncs them here. A problem
//! stays open until the operation that owns it judges it again.

use super::sql::{Row, SqlResult, ToValue, params};
use super::{Store, from_unix, to_unix};
use crate::problem::{Operation, Problem, ProblemKey, Severity};
use anyhow::Result;
use chrono::{DateTime, Utc};
use std::collections::HashMap;
use std::rc::Rc;

/// The open problems of one operation on one host, read at its first sync in a run (see
/// `Store::open_of`).
#[derive(Debug, Default)]
pub(crate) struct OpenRead {
    by_location: HashMap<Option<i64>, Vec<StoredProblem>>,
    /// Locations whose share was handed out: their problems may have changed since.
    handed_out: std::collections::HashSet<Option<i64>>,
}

impl OpenRead {
    /// The problems of `op` among a host's open problems `all`, none handed out yet.
    fn of(all: &[StoredProblem], op: Operation) -> OpenRead {
        OpenRead {
            by_location: by_location(all.iter().filter(|p| p.operation == op).cloned()),
            handed_out: Default::default(),
        }
    }
}

/// A problem as stored, with its history.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredProblem {
    pub id: i64,
    /// The host it was found on.
    pub host: String,
    pub problem: Problem,
    pub operation: Operation,
    pub location_id: Option<i64>,
    pub first_seen: DateTime<Utc>,
    pub last_seen: DateTime<Utc>,
    /// Consecutive judging runs that found it (for `alerts.min_consecutive`).
    pub runs_seen: u32,
    pub resolved_at: Option<DateTime<Utc>>,
}

const COLUMNS: &str = "id, kind, severity, operation, location_id, location, path, slot, message, first_seen, last_seen, runs_seen, resolved_at, host";

/// The order [`Store::open_problems`] lists problems in (the statement's `ORDER BY`:
/// byte order, a missing value first).
fn listed_order(p: &StoredProblem) -> ListedOrder {
    (
        p.host.clone(),
        p.problem.location.clone(),
        p.problem.kind.as_str(),
        p.problem.path.clone(),
        p.problem.slot.as_ref().map(|s| s.to_string()),
    )
}

type ListedOrder = (
    String,
    Option<String>,
    &'static str,
    Option<String>,
    Option<String>,
);

/// Problems opened per statement of [`insert_problems`] (eight parameters each).
const INSERT_ROWS: usize = 200;

/// Open `rows` (location, problem) of `host` found by `op`, first seen at `now_s`
/// (already resolved when `resolved_at` is given): [`INSERT_ROWS`] a statement. One that
/// is open already is left as it is: only a host's own run writes its problems while it
/// holds its lock, except `monitor_stale`, which a fleet run stores for a host whose run
/// has been going for longer than `monitoring.max_run_age` — a run that hung, and may
/// yet wake up to write the same problem from what it read before.
fn insert_problems(
    db: &super::sql::Db,
    host: &str,
    op: Operation,
    rows: &[(Option<i64>, &Problem)],
    now_s: i64,
    resolved_at: Option<i64>,
) -> Result<()> {
    const PER_ROW: usize = 8;
    for chunk in rows.chunks(INSERT_ROWS) {
        let keys: Vec<ProblemKey> = chunk.iter().map(|(_, p)| p.key()).collect();
        let mut args: Vec<&dyn ToValue> = vec![&now_s, &host, &op, &resolved_at];
        let values: Vec<String> = chunk
            .iter()
            .zip(&keys)
            .enumerate()
            .map(|(i, ((location_id, p), key))| {
                args.extend([
                    key as &dyn ToValue,
                    &p.kind,
                    &p.severity,
                    location_id,
                    &p.location,
                    &p.path,
                    &p.slot,
                    &p.message,
                ]);
                let f = 5 + i * PER_ROW;
                format!(
                    "(?{f}, ?{}, ?{}, ?3, ?{}, ?{}, ?{}, ?{}, ?{}, ?1, ?1, ?4, ?2)",
                    f + 1,
                    f + 2,
                    f + 3,
                    f + 4,
                    f + 5,
                    f + 6,
                    f + 7
                )
            })
            .collect();
        db.execute(
            &format!(
                "INSERT INTO problems (key, kind, severity, operation, location_id, location, path, slot, message, first_seen, last_seen, resolved_at, host)
                 VALUES {} ON CONFLICT DO NOTHING",
                values.join(", ")
            ),
            &args,
        )?;
    }
    Ok(())
}

/// `rows` by their location.
pub fn by_location(
    rows: impl IntoIterator<Item = StoredProblem>,
) -> HashMap<Option<i64>, Vec<StoredProblem>> {
    let mut out: HashMap<Option<i64>, Vec<StoredProblem>> = HashMap::new();
    for p in rows {
        out.entry(p.location_id).or_default().push(p);
    }
    out
}

/// What a sync of one location does to its open problems (those `op` found there).
pub struct Changes<'a> {
    /// Open ones found again: (id, as found now).
    pub refreshed: Vec<(i64, &'a Problem)>,
    /// Found and not open.
    pub opened: Vec<&'a Problem>,
    /// Open, not found, and judged again by this sync (`rejudged`).
    pub resolved: Vec<i64>,
}

impl Changes<'_> {
    /// Nothing opens or closes: at most problems found again.
    pub fn settles_nothing(&self) -> bool {
        self.opened.is_empty() && self.resolved.is_empty()
    }
}

/// Compare a location's `open` problems with what was `found` there (a problem found
/// twice counts once).
pub fn changes<'a>(
    open: Vec<StoredProblem>,
    found: &'a [Problem],
    rejudged: &dyn Fn(&Problem) -> bool,
) -> Changes<'a> {
    let mut open_by_key: HashMap<ProblemKey, StoredProblem> =
        open.into_iter().map(|p| (p.problem.key(), p)).collect();
    let mut seen_keys = std::collections::HashSet::new();
    let mut out = Changes {
        refreshed: Vec::new(),
        opened: Vec::new(),
        resolved: Vec::new(),
    };
    for p in found {
        let key = p.key();
        if !seen_keys.insert(key.clone()) {
            continue;
        }
        match open_by_key.remove(&key) {
            Some(existing) => out.refreshed.push((existing.id, p)),
            None => out.opened.push(p),
        }
    }
    out.resolved = open_by_key
        .values()
        .filter(|p| rejudged(&p.problem))
        .map(|p| p.id)
        .collect();
    out
}

fn from_row(r: &Row) -> SqlResult<StoredProblem> {
    Ok(StoredProblem {
        id: r.get(0)?,
        problem: Problem {
            kind: r.get(1)?,
            severity: r.get(2)?,
            location: r.get(5)?,
            path: r.get(6)?,
            slot: r.get(7)?,
            message: r.get(8)?,
        },
        operation: r.get(3)?,
        location_id: r.get(4)?,
        first_seen: from_unix(r.get(9)?),
        last_seen: from_unix(r.get(10)?),
        runs_seen: r.get(11)?,
        resolved_at: r.get::<Option<i64>>(12)?.map(from_unix),
        host: r.get(13)?,
    })
}

impl Store {
    /// Replace what `op` knows about one location (or the run, `location_id` None) with
    /// `found`: new problems open, known ones are refreshed (message, severity, one more
    /// consecutive run), and open ones of `op` there that are no longer found are
    /// resolved — but only those `rejudged` says this run actually looked at (e.g. the
    /// backups a sampled verify hashed). What opens or resolves is written at once, in one
    /// transaction with the refreshes; when only refreshes are left they are kept and
    /// written with every other location's (see [`Store::write_pending`]).
    pub fn sync_problems(
        &self,
        op: Operation,
        location_id: Option<i64>,
        found: &[Problem],
        rejudged: &dyn Fn(&Problem) -> bool,
        now: DateTime<Utc>,
    ) -> Result<()> {
        self.sync_problems_of(&self.host, op, location_id, found, rejudged, now)
    }

    /// [`Store::sync_problems`] for a location of `host` (the caller holds that host's
    /// lock, or is its run).
    pub fn sync_problems_of(
        &self,
        host: &str,
        op: Operation,
        location_id: Option<i64>,
        found: &[Problem],
        rejudged: &dyn Fn(&Problem) -> bool,
        now: DateTime<Utc>,
    ) -> Result<()> {
        self.sync_locations_of(host, op, &[(location_id, found)], rejudged, now)
    }

    /// [`Store::sync_problems_of`] for several locations of `host` at once (each named
    /// once; a fleet run judging whether `host` stopped checking, holding its lock): what
    /// they open, close and find again is written together (a statement for all the
    /// problems opened, not one each).
    pub fn sync_locations_of(
        &self,
        host: &str,
        op: Operation,
        found: &[(Option<i64>, &[Problem])],
        rejudged: &dyn Fn(&Problem) -> bool,
        now: DateTime<Utc>,
    ) -> Result<()> {
        debug_assert!(
            {
                let mut ids: Vec<Option<i64>> = found.iter().map(|(l, _)| *l).collect();
                ids.sort_unstable();
                ids.windows(2).all(|w| w[0] != w[1])
            },
            "each location is synced once"
        );
        let mut all = Vec::with_capacity(found.len());
        for (location_id, found) in found {
            let open = self.open_of(host, op, *location_id)?;
            all.push((*location_id, changes(open, found, rejudged)));
        }
        self.write_changes(host, op, &all, now, false)
    }

    /// [`Store::sync_locations_of`] for a host whose lock is held by a run that has been
    /// going for longer than `monitoring.max_run_age` (a fleet run judging that host's
    /// staleness without its lock): the host's open problems of `op` are read again and
    /// what changes is written in one transaction, under a transaction lock of that host
    /// that every fleet run writing it this way takes, so two of them at once open
    /// nothing twice. A problem some other writer opened meanwhile is left as it is
    /// (see [`insert_problems`]).
    pub fn sync_locations_unlocked(
        &self,
        host: &str,
        op: Operation,
        found: &[(Option<i64>, &[Problem])],
        rejudged: &dyn Fn(&Problem) -> bool,
        now: DateTime<Utc>,
    ) -> Result<()> {
        self.write_pending()?;
        let tx = self.db.transaction()?;
        if self.backend() == super::sql::Backend::Postgres {
            self.db.query(
                "SELECT pg_advisory_xact_lock(?1::integer, ?2::integer)",
                params![super::STALE_CLASS, super::fnv1a(host.as_bytes()) as i32],
            )?;
        }
        let mut open = by_location(self.db.query_map(
            &format!(
                "SELECT {COLUMNS} FROM problems WHERE resolved_at IS NULL AND host = ?1 AND operation = ?2"
            ),
            params![host, op],
            from_row,
        )?);
        let all: Vec<_> = found
            .iter()
            .map(|(location_id, found)| {
                let open = open.remove(location_id).unwrap_or_default();
                (*location_id, changes(open, found, rejudged))
            })
            .collect();
        self.write_changes(host, op, &all, now, true)?;
        tx.commit()?;
        Ok(())
    }

    /// Write what a sync of some locations of `host` changes (`all`): opened and resolved
    /// problems at once, in a transaction of their own unless `in_transaction`; when only
    /// refreshes are left they are kept and written with every other location's.
    fn write_changes(
        &self,
        host: &str,
        op: Operation,
        all: &[(Option<i64>, Changes)],
        now: DateTime<Utc>,
        in_transaction: bool,
    ) -> Result<()> {
        let now_s = to_unix(now);
        let refreshed = all
            .iter()
            .flat_map(|(_, c)| c.refreshed.iter().map(|(id, p)| (*id, *p)));
        if all.iter().all(|(_, c)| c.settles_nothing()) {
            // The usual night: the same problems found again. Refreshing them waits to be
            // written with every other location's (see `Store::write_pending`).
            self.refresh_later(refreshed, now_s);
            return Ok(());
        }
        self.problems_changed();
        let refreshed: Vec<_> = refreshed
            .map(|(id, p)| (id, p.severity, p.message.as_str(), now_s))
            .collect();
        let opened: Vec<(Option<i64>, &Problem)> = all
            .iter()
            .flat_map(|(l, c)| c.opened.iter().map(|p| (*l, *p)))
            .collect();
        let resolved: Vec<i64> = all.iter().flat_map(|(_, c)| c.resolved.clone()).collect();
        let writes = refreshed.len().div_ceil(super::UPDATE_ROWS)
            + opened.len().div_ceil(INSERT_ROWS)
            + resolved.len().div_ceil(super::UPDATE_ROWS);
        // One statement is atomic alone; on PostgreSQL a transaction around it would
        // cost two more round trips.
        let tx = match writes {
            _ if in_transaction => None,
            1 => None,
            _ => Some(self.db.transaction()?),
        };
        self.refresh_problems(&refreshed)?;
        insert_problems(&self.db, host, op, &opened, now_s, None)?;
        self.set_for_ids("problems", "resolved_at", now_s, &resolved)?;
        if let Some(tx) = tx {
            tx.commit()?;
        }
        Ok(())
    }

    /// Open problems found again (id, as found now), refreshed with the next write (see
    /// `Store::write_pending`). A problem resolved meanwhile is left as it closed.
    pub fn refresh_later<'a>(
        &self,
        found: impl IntoIterator<Item = (i64, &'a Problem)>,
        now_s: i64,
    ) {
        self.pending.refreshed.borrow_mut().extend(
            found
                .into_iter()
                .map(|(id, p)| (id, p.severity, p.message.clone(), now_s)),
        );
    }

    /// The open problems of `op` of several hosts, read at once (pending refreshes
    /// written first), by host. Not kept for the run: a fleet run decides from it which
    /// hosts need their problems opened or closed, and reads those again under their
    /// host's lock.
    pub fn open_problems_of_hosts(
        &self,
        hosts: &[&str],
        op: Operation,
    ) -> Result<HashMap<String, Vec<StoredProblem>>> {
        self.write_pending()?;
        let mut out: HashMap<String, Vec<StoredProblem>> = HashMap::new();
        self.query_each_in(
            &format!(
                "SELECT {COLUMNS} FROM problems WHERE resolved_at IS NULL AND operation = ?1 AND host IN ({{ids}}) ORDER BY id"
            ),
            &[&op],
            hosts,
            |r| {
                let p = from_row(r)?;
                out.entry(p.host.clone()).or_default().push(p);
                Ok(())
            },
        )?;
        Ok(out)
    }

    /// Whether [`Store::open_problems`] may be served from what this run read: only for
    /// the run's own host, whose problems only this run writes while it holds its lock.
    fn memo_view(&self) -> bool {
        self.view_host() == Some(self.host.as_str())
    }

    /// Forget what this run read of open problems: called by every statement that writes
    /// them (see `RunMemo::open_problems`).
    pub(crate) fn problems_changed(&self) {
        self.memo.open_problems.borrow_mut().take();
    }

    /// Write the refreshes of problems found again that [`Store::sync_problems`] kept.
    pub(crate) fn write_refreshed_problems(&self) -> Result<()> {
        let kept = std::mem::take(&mut *self.pending.refreshed.borrow_mut());
        let rows: Vec<_> = kept
            .iter()
            .map(|(id, severity, message, at)| (*id, *severity, message.as_str(), *at))
            .collect();
        self.refresh_problems(&rows)
    }

    /// Open problems found again: (id, severity, message, when), one statement per 200.
    fn refresh_problems(&self, rows: &[(i64, Severity, &str, i64)]) -> Result<()> {
        let values: Vec<[&dyn ToValue; 4]> = rows
            .iter()
            .map(|(id, severity, message, at)| [id as _, severity as _, message as _, at as _])
            .collect();
        // A problem resolved since it was read (another host's, by that host's own run)
        // is left as it closed.
        self.update_by_id_where(
            "problems",
            "severity = v.column2, message = v.column3, last_seen = v.column4, runs_seen = runs_seen + 1",
            "problems.resolved_at IS NULL",
            ["BIGINT", "TEXT", "TEXT", "BIGINT"],
            &values,
        )?;
        // What this run read of open problems is refreshed as the store is: nothing else
        // of theirs changes (their order neither).
        if !rows.is_empty()
            && let Some(memo) = self.memo.open_problems.borrow_mut().as_mut()
        {
            let by_id: HashMap<i64, &(i64, Severity, &str, i64)> =
                rows.iter().map(|r| (r.0, r)).collect();
            for p in Rc::make_mut(memo).iter_mut() {
                if let Some((_, severity, message, at)) = by_id.get(&p.id) {
                    p.problem.severity = *severity;
                    p.problem.message = message.to_string();
                    p.last_seen = from_unix(*at);
                    p.runs_seen += 1;
                }
            }
        }
        Ok(())
    }

    /// The open problems `op` found at one location of `host` (or the run's own), for a
    /// sync. The first sync of an operation in a run reads them for every location of the
    /// host at once (one statement, not one per location: a round trip each on a shared
    /// store); each location's share is handed out once, later syncs of it read again.
    fn open_of(
        &self,
        host: &str,
        op: Operation,
        location_id: Option<i64>,
    ) -> Result<Vec<StoredProblem>> {
        let mut prefetched = self.memo.open_problems_read.borrow_mut();
        let key = (host.to_string(), op);
        if !prefetched.contains_key(&key) {
            // Problems found again and kept are written first (read from the store).
            self.write_pending()?;
            // Every operation's at once: each operation of the run syncs in turn, and
            // each would otherwise wait on a read of its own. Only syncs change open
            // problems during a run, and each sync hands out its share once.
            let all = self.open_of_host(host)?;
            for o in Operation::ALL {
                prefetched
                    .entry((host.to_string(), *o))
                    .or_insert_with(|| OpenRead::of(&all, *o));
            }
        }
        let read = prefetched.entry(key.clone()).or_default();
        if read.handed_out.insert(location_id) {
            return Ok(read.by_location.remove(&location_id).unwrap_or_default());
        }
        // A second round of syncs of this operation (a `--report` judges health, then
        // staleness, each location in turn): the operation's open problems of every
        // location are taken again, once, and handed out anew. What the first round wrote
        // is in the store by now, and from here on each location's share is again changed
        // only by its own sync.
        self.write_pending()?;
        let mut again = OpenRead::of(&self.open_of_host(host)?, op);
        again.handed_out.insert(location_id);
        let share = again.by_location.remove(&location_id).unwrap_or_default();
        prefetched.insert(key, again);
        Ok(share)
    }

    /// Every open problem of `host` as stored now (pending refreshes written first by the
    /// caller). The run's own host's are what [`Store::open_problems`] reads too: taken
    /// from what the run read, if nothing changed them since, and kept for it otherwise
    /// (sorted as it sorts).
    fn open_of_host(&self, host: &str) -> Result<Rc<Vec<StoredProblem>>> {
        let mine = host == self.host && self.memo_view();
        if mine && let Some(rows) = self.memo.open_problems.borrow().clone() {
            return Ok(rows);
        }
        let mut all = self.db.query_map(
            &format!("SELECT {COLUMNS} FROM problems WHERE resolved_at IS NULL AND host = ?1"),
            params![host],
            from_row,
        )?;
        if !mine {
            return Ok(Rc::new(all));
        }
        all.sort_by_cached_key(listed_order);
        let all = Rc::new(all);
        *self.memo.open_problems.borrow_mut() = Some(all.clone());
        Ok(all)
    }

    /// Open problems, optionally only of some operations and locations (None: all).
    pub fn open_problems(
        &self,
        ops: Option<&[Operation]>,
        location_ids: Option<&[i64]>,
    ) -> Result<Vec<StoredProblem>> {
        self.write_pending()?;
        let memo = self.memo.open_problems.borrow().clone();
        let rows = match memo {
            Some(rows) if self.memo_view() => rows,
            _ => {
                let rows = Rc::new(self.db.query_map(
                    &format!(
                        "SELECT {COLUMNS} FROM problems WHERE resolved_at IS NULL AND (CAST(?1 AS TEXT) IS NULL OR host = ?1)
                         ORDER BY host COLLATE \"C\", location COLLATE \"C\" NULLS FIRST, kind COLLATE \"C\",
                           path COLLATE \"C\" NULLS FIRST, slot COLLATE \"C\" NULLS FIRST"
                    ),
                    params![self.view_host()],
                    from_row,
                )?);
                if self.memo_view() {
                    *self.memo.open_problems.borrow_mut() = Some(rows.clone());
                }
                rows
            }
        };
        let location_ids: Option<std::collections::HashSet<i64>> =
            location_ids.map(|ids| ids.iter().copied().collect());
        let mut out = Vec::new();
        for p in rows.iter().cloned() {
            if ops.is_some_and(|ops| !ops.contains(&p.operation)) {
                continue;
            }
            if let Some(ids) = &location_ids {
                // Problems of the run itself (no location) are always in scope.
                if p.location_id.is_some_and(|id| !ids.contains(&id)) {
                    continue;
                }
            }
            out.push(p);
        }
        Ok(out)
    }

    /// Record gaps of `location_id` found by `op`: a gap whose problem was resolved by
    /// this run (`now`) gets the gap's message (how many slots, for how long); a gap no
    /// earlier run saw is inserted opened and resolved now, so it is told once as
    /// resolved and never counts for an exit code. Known gaps are left as they are.
    ///
    /// A gap that began before `window` (the window's start, or the newest backup an
    /// earlier run knew of if older) only rewords the problem this run closed (an outage
    /// longer than the window, told as the gap it was); it is not recorded as history of
    /// its own (a first run on old, sparse backups would announce it).
    ///
    /// Kept, and written with every other location's by [`Store::write_pending`]: on
    /// the usual night every gap in the window is known already, and one read for all
    /// locations finds that, where one each would be a round trip each on a shared store.
    pub fn record_gaps(
        &self,
        op: Operation,
        location_id: i64,
        gaps: &[Problem],
        window: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<()> {
        self.pending
            .gaps
            .borrow_mut()
            .extend(gaps.iter().map(|p| PendingGap {
                op,
                location_id,
                key: p.key().to_string(),
                problem: p.clone(),
                before_window: p.slot.is_some_and(|slot| slot.utc() < window),
                now: to_unix(now),
            }));
        Ok(())
    }

    /// Write the gaps [`Store::record_gaps`] kept: one read of what the store has of
    /// them, and only what it lacks written, in one transaction.
    pub(crate) fn write_gaps(&self) -> Result<()> {
        let gaps = std::mem::take(&mut *self.pending.gaps.borrow_mut());
        if gaps.is_empty() {
            return Ok(());
        }
        let mut keys: Vec<&str> = gaps.iter().map(|g| g.key.as_str()).collect();
        keys.sort_unstable();
        keys.dedup();
        // By location and key: the problems of it (id, when closed if closed).
        type Stored = Vec<(i64, Option<i64>)>;
        let mut known: HashMap<(i64, String), Stored> = HashMap::new();
        self.query_each_in(
            "SELECT location_id, key, id, resolved_at FROM problems WHERE host = ?1 AND key IN ({ids})",
            &[&self.host],
            &keys,
            |r| {
                if let Some(location) = r.get::<Option<i64>>(0)? {
                    known
                        .entry((location, r.get(1)?))
                        .or_default()
                        .push((r.get(2)?, r.get(3)?));
                }
                Ok(())
            },
        )?;
        // (problem id, the gap's message) of the problems this run closed: each says how
        // long its gap was.
        let mut reworded: Vec<(i64, &str)> = Vec::new();
        let mut recorded: Vec<&PendingGap> = Vec::new();
        // A gap found twice (a job log that lists a failed run twice) is one problem.
        let mut seen = std::collections::HashSet::new();
        for g in &gaps {
            if !seen.insert((g.location_id, g.key.as_str())) {
                continue;
            }
            match known.get(&(g.location_id, g.key.clone())) {
                Some(stored) => reworded.extend(
                    stored
                        .iter()
                        .filter(|(_, closed)| *closed == Some(g.now))
                        .map(|(id, _)| (*id, g.problem.message.as_str())),
                ),
                None if g.before_window => {}
                None => recorded.push(g),
            }
        }
        if reworded.is_empty() && recorded.is_empty() {
            return Ok(());
        }
        self.problems_changed();
        let tx = self.db.transaction()?;
        let rows: Vec<[&dyn ToValue; 2]> = reworded
            .iter()
            .map(|(id, message)| [id as &dyn ToValue, message as &dyn ToValue])
            .collect();
        self.update_by_id("problems", "message = v.column2", ["BIGINT", "TEXT"], &rows)?;
        // Inserted together where they share their operation and time (a run's do).
        type Rows<'a> = Vec<(Option<i64>, &'a Problem)>;
        let mut groups: std::collections::BTreeMap<(Operation, i64), Rows> = Default::default();
        for g in recorded {
            groups
                .entry((g.op, g.now))
                .or_default()
                .push((Some(g.location_id), &g.problem));
        }
        for ((op, now_s), rows) in groups {
            insert_problems(&self.db, &self.host, op, &rows, now_s, Some(now_s))?;
        }
        tx.commit()?;
        Ok(())
    }

    /// Problems of `location_ids` recorded already resolved (gaps found after the fact)
    /// since `since` that no alert follows yet: to be told once as resolved.
    pub fn unannounced_gaps(
        &self,
        location_ids: &[i64],
        since: DateTime<Utc>,
    ) -> Result<Vec<StoredProblem>> {
        self.write_pending()?;
        let rows = self.db.query_map(
            &format!(
                "SELECT {COLUMNS} FROM problems p WHERE resolved_at >= ?1 AND first_seen = resolved_at
                   AND NOT EXISTS (SELECT 1 FROM alerts a WHERE a.problem_id = p.id)
                 ORDER BY id"
            ),
            params![to_unix(since)],
            from_row,
        )?;
        let mut out = Vec::new();
        for p in rows {
            if p.location_id.is_some_and(|id| location_ids.contains(&id)) {
                out.push(p);
            }
        }
        Ok(out)
    }

    /// For each of `location_ids` with one, when a problem of another kind than
    /// `health_degraded` was last resolved there (a health score judged before that
    /// time scored the trouble just over).
    pub fn last_recoveries(&self, location_ids: &[i64]) -> Result<HashMap<i64, DateTime<Utc>>> {
        if location_ids.is_empty() {
            return Ok(HashMap::new());
        }
        self.write_pending()?;
        let args: Vec<&dyn ToValue> = location_ids.iter().map(|id| id as &dyn ToValue).collect();
        let rows = self.db.query_map(
            &format!(
                "SELECT location_id, MAX(resolved_at) FROM problems
                 WHERE location_id IN ({}) AND resolved_at IS NOT NULL AND kind <> 'health_degraded'
                 GROUP BY location_id",
                super::report::placeholders(location_ids.len(), 1)
            ),
            &args,
            |r| Ok((r.get::<i64>(0)?, from_unix(r.get::<i64>(1)?))),
        )?;
        Ok(rows.into_iter().collect())
    }

    /// One stored problem by id, open or resolved.
    pub fn problem(&self, id: i64) -> Result<StoredProblem> {
        self.problems(&[id])?
            .remove(&id)
            .ok_or_else(|| anyhow::anyhow!("problem {id} is not in the store"))
    }

    /// Stored problems by id, open or resolved, read at once; an unknown id is absent.
    pub fn problems(&self, ids: &[i64]) -> Result<HashMap<i64, StoredProblem>> {
        self.write_pending()?;
        let mut out = HashMap::new();
        self.query_each_in(
            &format!("SELECT {COLUMNS} FROM problems WHERE id IN ({{ids}})"),
            &[],
            ids,
            |r| {
                let p = from_row(r)?;
                out.insert(p.id, p);
                Ok(())
            },
        )?;
        Ok(out)
    }
}

/// A gap found by a run, kept by [`Store::record_gaps`] until written.
pub(crate) struct PendingGap {
    op: Operation,
    location_id: i64,
    /// The problem's key, as stored.
    key: String,
    problem: Problem,
    /// It began before the run's window: only the problem the run closed is reworded.
    before_window: bool,
    /// The run's time (seconds): a problem closed then was closed by the run.
    now: i64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::problem::{Kind, Severity};

    /// A fleet run syncs a host's locations together, and refreshes what it only found
    /// again with the next write: a problem that host's own run resolved meanwhile stays
    /// as it closed.
    #[test]
    fn locations_sync_together_and_a_later_refresh_leaves_a_resolved_problem_closed() {
        let (_db, store, a, b) = crate::store::store_with_two_locations("generic");
        let stale =
            |loc: &str, m: &str| Problem::new(Kind::MonitorStale, Severity::Critical, loc, m);
        let is_stale = |p: &Problem| p.kind == Kind::MonitorStale;
        let host = store.host().to_string();
        let (fa, fb) = ([stale("a", "stale")], [stale("b", "stale")]);
        store
            .sync_locations_of(
                &host,
                Operation::Report,
                &[(Some(a), &fa[..]), (Some(b), &fb[..])],
                &is_stale,
                from_unix(1),
            )
            .unwrap();
        let mut open = store
            .open_problems_of_hosts(&[host.as_str(), "elsewhere"], Operation::Report)
            .unwrap();
        assert_eq!(open.len(), 1, "a host with none is absent");
        let open = open.remove(&host).unwrap();
        let id_of = |loc: i64| open.iter().find(|p| p.location_id == Some(loc)).unwrap().id;
        let (id_a, id_b) = (id_of(a), id_of(b));
        // b is checked again (its host's own run) before the refresh is written.
        store
            .sync_problems(Operation::Report, Some(b), &[], &is_stale, from_unix(2))
            .unwrap();
        let again = [stale("a", "still stale"), stale("b", "still stale")];
        store.refresh_later([(id_a, &again[0]), (id_b, &again[1])], 3);
        store.write_pending().unwrap();
        let state = |id: i64| {
            let p = store.problem(id).unwrap();
            (p.problem.message, p.runs_seen, p.last_seen, p.resolved_at)
        };
        assert_eq!(
            state(id_a),
            ("still stale".to_string(), 2, from_unix(3), None)
        );
        assert_eq!(
            state(id_b),
            ("stale".to_string(), 1, from_unix(1), Some(from_unix(2)))
        );
    }

    /// A `--report` syncs its problems of each location twice (health, then staleness,
    /// each with its own rule for what it judged): the second round sees what the first
    /// opened, and a problem the first found again and the second resolves ends resolved.
    #[test]
    fn a_second_round_of_syncs_sees_what_the_first_round_wrote() {
        let (db, store, a, b) = crate::store::store_with_two_locations("generic");
        let few_only = |p: &Problem| p.kind == Kind::TooFewBackups;
        let stale_only = |p: &Problem| p.kind == Kind::MonitorStale;
        let few = |loc: &str| Problem::new(Kind::TooFewBackups, Severity::Warning, loc, "few");
        let stale = |loc: &str| Problem::new(Kind::MonitorStale, Severity::Critical, loc, "stale");
        let op = Operation::Report;
        // One run: a's first round opens a problem, b's finds none; the second round
        // finds both stale.
        store
            .sync_problems(op, Some(a), &[few("a")], &few_only, from_unix(1))
            .unwrap();
        store
            .sync_problems(op, Some(b), &[], &few_only, from_unix(1))
            .unwrap();
        store
            .sync_problems(op, Some(a), &[stale("a")], &stale_only, from_unix(1))
            .unwrap();
        store
            .sync_problems(op, Some(b), &[stale("b")], &stale_only, from_unix(1))
            .unwrap();
        let kinds = |s: &Store| -> Vec<(Option<i64>, Kind, u32)> {
            let mut v: Vec<_> = s
                .open_problems(None, None)
                .unwrap()
                .iter()
                .map(|p| (p.location_id, p.problem.kind, p.runs_seen))
                .collect();
            v.sort_by_key(|(l, k, _)| (*l, k.as_str()));
            v
        };
        let both = vec![
            (Some(a), Kind::MonitorStale, 1),
            (Some(a), Kind::TooFewBackups, 1),
            (Some(b), Kind::MonitorStale, 1),
        ];
        assert_eq!(kinds(&store), both);
        assert_eq!(kinds(&db.reopen()), both);
        drop(store);
        // The next run, its listing read first: the first round finds a's problem
        // again (kept, to be written later), the second finds a no longer stale and b
        // stale still.
        let next = db.reopen();
        next.open_problems(None, None).unwrap();
        next.sync_problems(op, Some(a), &[few("a")], &few_only, from_unix(2))
            .unwrap();
        next.sync_problems(op, Some(b), &[], &few_only, from_unix(2))
            .unwrap();
        next.sync_problems(op, Some(a), &[], &stale_only, from_unix(2))
            .unwrap();
        next.sync_problems(op, Some(b), &[stale("b")], &stale_only, from_unix(2))
            .unwrap();
        let after = vec![
            (Some(a), Kind::TooFewBackups, 2),
            (Some(b), Kind::MonitorStale, 2),
        ];
        assert_eq!(kinds(&next), after);
        drop(next);
        assert_eq!(kinds(&db.reopen()), after);
    }

    #[test]
    fn problems_found_again_are_written_before_any_read_and_when_the_store_closes() {
        let (db, store, a, b) = crate::store::store_with_two_locations("generic");
        let all = |_: &Problem| true;
        let found = |loc: &str, message: &str| {
            Problem::new(Kind::TooFewBackups, Severity::Warning, loc, message)
        };
        for (loc, name) in [(a, "a"), (b, "b")] {
            store
                .sync_problems(
                    Operation::Monitor,
                    Some(loc),
                    &[found(name, "1")],
                    &all,
                    from_unix(1),
                )
                .unwrap();
        }
        // Found again at both: kept, then written by the next read.
        for (loc, name) in [(a, "a"), (b, "b")] {
            let mut p = found(name, "2 present");
            p.severity = Severity::Critical;
            store
                .sync_problems(Operation::Monitor, Some(loc), &[p], &all, from_unix(2))
                .unwrap();
        }
        let open = store.open_problems(None, None).unwrap();
        assert_eq!(open.len(), 2);
        for p in &open {
            assert_eq!((p.runs_seen, p.last_seen), (2, from_unix(2)));
            assert_eq!(p.problem.message, "2 present");
            assert_eq!(p.problem.severity, Severity::Critical);
        }
        // Found a third time and the store closed without reading: written on close.
        store
            .sync_problems(
                Operation::Monitor,
                Some(a),
                &[found("a", "3")],
                &all,
                from_unix(3),
            )
            .unwrap();
        drop(store);
        let again = db.reopen();
        let a_open = again.open_problems(None, Some(&[a])).unwrap();
        assert_eq!(
            (a_open[0].runs_seen, a_open[0].last_seen),
            (3, from_unix(3))
        );
        assert_eq!(a_open[0].problem.message, "3");
    }

    #[test]
    fn sync_opens_refreshes_and_resolves_in_scope_only() {
        let (_dir, store, loc) = crate::store::store_with_location("a", "generic");
        let p1 =
            Problem::new(Kind::ChecksumMismatch, Severity::Critical, "a", "x").with_path("one");
        let p2 =
            Problem::new(Kind::ChecksumMismatch, Severity::Critical, "a", "y").with_path("two");
        let all = |_: &Problem| true;
        store
            .sync_problems(
                Operation::Verify,
                Some(loc),
                &[p1.clone(), p2.clone()],
                &all,
                from_unix(1),
            )
            .unwrap();
        store
            .sync_problems(
                Operation::Verify,
                Some(loc),
                std::slice::from_ref(&p1),
                &|p| p.path.as_deref() == Some("one"),
                from_unix(2),
            )
            .unwrap();
        let open = store.open_problems(None, None).unwrap();
        assert_eq!(open.len(), 2, "two was not re-judged, so it stays open");
        assert_eq!(
            open.iter()
                .find(|p| p.problem.path.as_deref() == Some("one"))
                .unwrap()
                .runs_seen,
            2
        );
        let ids: Vec<i64> = open.iter().map(|p| p.id).collect();
        store
            .sync_problems(Operation::Verify, Some(loc), &[], &all, from_unix(3))
            .unwrap();
        assert!(store.open_problems(None, None).unwrap().is_empty());
        for id in ids {
            assert_eq!(store.problem(id).unwrap().resolved_at, Some(from_unix(3)));
        }
        // Other operations' problems are untouched by a sync.
        let m = Problem::new(Kind::NoBackups, Severity::Critical, "a", "none");
        store
            .sync_problems(Operation::Monitor, Some(loc), &[m], &all, from_unix(4))
            .unwrap();
        store
            .sync_problems(Operation::Verify, Some(loc), &[], &all, from_unix(5))
            .unwrap();
        assert_eq!(
            store
                .open_problems(Some(&[Operation::Monitor]), Some(&[loc]))
                .unwrap()
                .len(),
            1
        );
    }

    #[test]
    fn open_problems_are_read_again_after_every_write_and_only_then() {
        // On PostgreSQL too with BM_TEST_STORE=postgres.
        let (db, store) = crate::store::test_store();
        let loc = store
            .upsert_location("a", "/a", "generic", from_unix(0))
            .unwrap();
        let statements = |s: &Store| s.db.spent().statements;
        let all = |_: &Problem| true;
        let p1 =
            Problem::new(Kind::ChecksumMismatch, Severity::Critical, "a", "x").with_path("one");
        store
            .sync_problems(
                Operation::Verify,
                Some(loc),
                std::slice::from_ref(&p1),
                &all,
                from_unix(1),
            )
            .unwrap();
        let first = store.open_problems(None, None).unwrap();
        assert_eq!(first.len(), 1);
        let before = statements(&store);
        assert_eq!(store.open_problems(None, None).unwrap(), first);
        assert_eq!(
            store
                .open_problems(Some(&[Operation::Monitor]), None)
                .unwrap(),
            vec![]
        );
        assert_eq!(
            statements(&store),
            before,
            "nothing written: nothing read again"
        );
        // Found again with a new message: the refresh is written before the next read,
        // and the read shows it.
        let again = Problem::new(Kind::ChecksumMismatch, Severity::Warning, "a", "x again")
            .with_path("one");
        store
            .sync_problems(
                Operation::Verify,
                Some(loc),
                std::slice::from_ref(&again),
                &all,
                from_unix(2),
            )
            .unwrap();
        let refreshed = store.open_problems(None, None).unwrap();
        assert_eq!(refreshed[0].problem.message, "x again");
        assert_eq!(refreshed[0].problem.severity, Severity::Warning);
        assert_eq!(refreshed[0].runs_seen, 2);
        // A new one, then one resolved by a path, then a gap recorded: each shows.
        let p2 =
            Problem::new(Kind::ChecksumMismatch, Severity::Critical, "a", "y").with_path("two");
        store
            .sync_problems(
                Operation::Verify,
                Some(loc),
                &[again.clone(), p2],
                &all,
                from_unix(3),
            )
            .unwrap();
        assert_eq!(store.open_problems(None, None).unwrap().len(), 2);
        store
            .resolve_path_problems(loc, "two", &[Kind::ChecksumMismatch], from_unix(4))
            .unwrap();
        let left = store.open_problems(None, None).unwrap();
        assert_eq!(left.len(), 1);
        assert_eq!(left, db.reopen().open_problems(None, None).unwrap());
        // The next run's first sync reads every open problem of the host: the listing
        // comes from that read, refreshed as the store is, in the listing's order.
        let b = store
            .upsert_location("b", "/b", "generic", from_unix(0))
            .unwrap();
        let found = [
            Problem::new(Kind::NoBackups, Severity::Critical, "b", "none"),
            Problem::new(Kind::ChecksumMismatch, Severity::Critical, "b", "z").with_path("zz"),
            Problem::new(Kind::ChecksumMismatch, Severity::Critical, "b", "a").with_path("Ab"),
            Problem::new(Kind::ChecksumMismatch, Severity::Critical, "b", "b").with_path("ab"),
        ];
        store
            .sync_problems(Operation::Verify, Some(b), &found, &all, from_unix(5))
            .unwrap();
        let next = db.reopen();
        next.sync_problems(
            Operation::Verify,
            Some(b),
            &found[1..],
            &|_| false,
            from_unix(6),
        )
        .unwrap();
        let before = statements(&next);
        let listed = next.open_problems(None, None).unwrap();
        assert_eq!(
            statements(&next),
            before + 1,
            "the refresh is written, nothing read"
        );
        assert_eq!(listed, db.reopen().open_problems(None, None).unwrap());
        assert_eq!(listed.len(), 5);
        assert!(
            listed
                .iter()
                .filter(|p| p.problem.path.is_some() && p.problem.location.as_deref() == Some("b"))
                .all(|p| p.runs_seen == 2)
        );
        // Another host's view is another read.
        let mut other = db.reopen_as("web9");
        assert!(other.open_problems(None, None).unwrap().is_empty());
        other.set_view(super::super::View::Fleet);
        assert_eq!(other.open_problems(None, None).unwrap().len(), 5);
        // A view of another host (`--host`) is read afresh each time: that host's own run
        // writes its problems meanwhile.
        other.set_view(super::super::View::Host(store.host().to_string()));
        assert_eq!(other.open_problems(None, None).unwrap().len(), 5);
        store
            .sync_problems(Operation::Verify, Some(b), &[], &all, from_unix(7))
            .unwrap();
        assert_eq!(other.open_problems(None, None).unwrap().len(), 1);
    }
}
