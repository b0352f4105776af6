//! The thin SQL layer under the store: one enum of the two connections (SQLite through
//! `rusqlite`, PostgreSQL through the blocking `postgres` client), a small value type
//! for parameters and results, and transactions that work the same on both.
//!
//! Statements are written once, with SQLite's numbered placeholders `?N`; for PostgreSQL
//! [`to_postgres`] rewrites them to `$N`, skipping string literals, quoted identifiers and
//! comments. Text ordering is written `COLLATE "C"` (byte order), which SQLite spells
//! `COLLATE BINARY`.

use std::cell::RefCell;
use std::collections::HashMap;

/// A parameter or column value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Int(i64),
    Real(f64),
    Text(String),
}

/// A value borrowed from where it lives: a parameter's own field, or the engine's row.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ValueRef<'a> {
    Null,
    Int(i64),
    Real(f64),
    Text(&'a str),
}

impl Value {
    pub fn as_value_ref(&self) -> ValueRef<'_> {
        match self {
            Value::Null => ValueRef::Null,
            Value::Int(i) => ValueRef::Int(*i),
            Value::Real(f) => ValueRef::Real(*f),
            Value::Text(s) => ValueRef::Text(s),
        }
    }
}

impl ValueRef<'_> {
    pub fn to_value(self) -> Value {
        match self {
            ValueRef::Null => Value::Null,
            ValueRef::Int(i) => Value::Int(i),
            ValueRef::Real(f) => Value::Real(f),
            ValueRef::Text(s) => Value::Text(s.to_string()),
        }
    }
}

/// A parameter as bound: borrowed from the caller where it can be, owned where the
/// value had to be made (a timestamp formatted as text).
#[derive(Debug, Clone, PartialEq)]
pub enum ValueCow<'a> {
    Borrowed(ValueRef<'a>),
    Owned(Value),
}

impl ValueCow<'_> {
    pub fn as_value_ref(&self) -> ValueRef<'_> {
        match self {
            ValueCow::Borrowed(v) => *v,
            ValueCow::Owned(v) => v.as_value_ref(),
        }
    }
}

/// Why a statement failed.
#[derive(Debug, thiserror::Error)]
pub enum SqlError {
    #[error(transparent)]
    Sqlite(#[from] rusqlite::Error),
    #[error("{}", pg_text(.0))]
    Postgres(#[from] postgres::Error),
    #[error("column {column}: {detail}")]
    Convert { column: usize, detail: String },
    #[error("the query returned no rows")]
    NoRows,
    /// The server ended the session or the connection broke: said with the server's
    /// name, as the one line a failed run prints.
    #[error(
        "lost the connection to the PostgreSQL store at {server} ({detail}); check that the server is up and reachable from this host, then run again"
    )]
    Lost { server: String, detail: String },
}

impl SqlError {
    /// A PostgreSQL statement named a table that does not exist (SQLSTATE 42P01).
    pub fn is_undefined_table(&self) -> bool {
        matches!(self, SqlError::Postgres(e)
            if e.code() == Some(&postgres::error::SqlState::UNDEFINED_TABLE))
    }
}

/// `e` as a [`SqlError`], naming `server` when the connection itself is gone: the
/// server shut down or ended the session (SQLSTATE class 08, 57P01–57P03), the socket
/// broke or closed.
fn pg_error(server: &str, e: postgres::Error) -> SqlError {
    let code = e.code().map(|c| c.code());
    let lost = e.is_closed()
        || code.is_some_and(|c| c.starts_with("08") || ["57P01", "57P02", "57P03"].contains(&c))
        || std::error::Error::source(&e).is_some_and(|s| s.is::<std::io::Error>());
    if lost {
        SqlError::Lost {
            server: server.to_string(),
            detail: pg_text(&e),
        }
    } else {
        SqlError::Postgres(e)
    }
}

/// A PostgreSQL error as one line: the server's own message when it sent one.
fn pg_text(e: &postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{} ({})", db.message(), db.code().code()),
        None => crate::problem::one_line(&e.to_string()).into_owned(),
    }
}

pub type SqlResult<T> = Result<T, SqlError>;

/// A value the store writes. SQLite binds the borrowed view as it is (text is not
/// copied); PostgreSQL converts it to the type the server inferred.
pub trait ToValue {
    fn value_ref(&self) -> ValueCow<'_>;

    /// The value, owned (for callers that collect parameters of items they do not keep).
    fn to_value(&self) -> Value {
        match self.value_ref() {
            ValueCow::Borrowed(v) => v.to_value(),
            ValueCow::Owned(v) => v,
        }
    }
}

/// A value the store reads; a value it cannot read is an error naming it.
pub trait FromValue: Sized {
    fn from_value(v: ValueRef<'_>) -> Result<Self, String>;
}

impl ToValue for Value {
    fn value_ref(&self) -> ValueCow<'_> {
        ValueCow::Borrowed(self.as_value_ref())
    }
}

impl<T: ToValue + ?Sized> ToValue for &T {
    fn value_ref(&self) -> ValueCow<'_> {
        (**self).value_ref()
    }
}

impl<T: ToValue> ToValue for Option<T> {
    fn value_ref(&self) -> ValueCow<'_> {
        match self {
            Some(v) => v.value_ref(),
            None => ValueCow::Borrowed(ValueRef::Null),
        }
    }
}

macro_rules! int_value {
    ($($t:ty),*) => {$(
        impl ToValue for $t {
            fn value_ref(&self) -> ValueCow<'_> {
                ValueCow::Borrowed(ValueRef::Int(*self as i64))
            }
        }
        impl FromValue for $t {
            fn from_value(v: ValueRef<'_>) -> Result<Self, String> {
                match v {
                    ValueRef::Int(i) => <$t>::try_from(i).map_err(|_| format!("{i} is out of range")),
                    other => Err(format!("expected an integer, found {other:?}")),
                }
            }
        }
    )*};
}
int_value!(i64, i32, u32, u64, usize);

impl ToValue for bool {
    fn value_ref(&self) -> ValueCow<'_> {
        ValueCow::Borrowed(ValueRef::Int(i64::from(*self)))
    }
}

impl FromValue for bool {
    fn from_value(v: ValueRef<'_>) -> Result<Self, String> {
        match v {
            ValueRef::Int(i) => Ok(i != 0),
            other => Err(format!("expected a boolean, found {other:?}")),
        }
    }
}

impl ToValue for f64 {
    fn value_ref(&self) -> ValueCow<'_> {
        ValueCow::Borrowed(ValueRef::Real(*self))
    }
}

impl FromValue for f64 {
    fn from_value(v: ValueRef<'_>) -> Result<Self, String> {
        match v {
            ValueRef::Real(f) => Ok(f),
            ValueRef::Int(i) => Ok(i as f64),
            other => Err(format!("expected a number, found {other:?}")),
        }
    }
}

impl ToValue for str {
    fn value_ref(&self) -> ValueCow<'_> {
        ValueCow::Borrowed(ValueRef::Text(self))
    }
}

impl ToValue for String {
    fn value_ref(&self) -> ValueCow<'_> {
        ValueCow::Borrowed(ValueRef::Text(self))
    }
}

impl FromValue for String {
    fn from_value(v: ValueRef<'_>) -> Result<Self, String> {
        match v {
            ValueRef::Text(s) => Ok(s.to_string()),
            other => Err(format!("expected text, found {other:?}")),
        }
    }
}

impl<T: FromValue> FromValue for Option<T> {
    fn from_value(v: ValueRef<'_>) -> Result<Self, String> {
        match v {
            ValueRef::Null => Ok(None),
            v => T::from_value(v).map(Some),
        }
    }
}

/// Parameters of one statement: `params![a, b, c]`.
macro_rules! params {
    ($($e:expr),* $(,)?) => {
        &[$(&$e as &dyn $crate::store::sql::ToValue),*] as &[&dyn $crate::store::sql::ToValue]
    };
}
pub(crate) use params;

/// One result row: owned values (from [`Db::query`]), or, inside [`Db::query_map`] and
/// [`Db::query_each`], a view of the engine's own row that reads each column in place.
#[derive(Debug)]
pub struct Row<'r>(RowSrc<'r>);

#[derive(Debug)]
enum RowSrc<'r> {
    Owned(Vec<Value>),
    Sqlite(&'r rusqlite::Row<'r>),
    Postgres(&'r postgres::Row),
}

impl Row<'_> {
    pub fn get<T: FromValue>(&self, i: usize) -> SqlResult<T> {
        let v = match &self.0 {
            RowSrc::Owned(vals) => vals.get(i).map_or(ValueRef::Null, Value::as_value_ref),
            RowSrc::Sqlite(r) => sqlite_value(r.get_ref(i)?, i)?,
            RowSrc::Postgres(r) => pg_value(r, i)?,
        };
        T::from_value(v).map_err(|detail| SqlError::Convert { column: i, detail })
    }

    /// The row with its values copied out, to keep past the query.
    fn to_owned_row(&self) -> SqlResult<Row<'static>> {
        let vals = match &self.0 {
            RowSrc::Owned(vals) => vals.clone(),
            RowSrc::Sqlite(r) => (0..r.as_ref().column_count())
                .map(|i| Ok(sqlite_value(r.get_ref(i)?, i)?.to_value()))
                .collect::<SqlResult<_>>()?,
            RowSrc::Postgres(r) => (0..r.len())
                .map(|i| Ok(pg_value(r, i)?.to_value()))
                .collect::<SqlResult<_>>()?,
        };
        Ok(Row(RowSrc::Owned(vals)))
    }
}

/// Rewrite `?N` placeholders to PostgreSQL's `$N`, leaving string literals, quoted
/// identifiers and comments as they are. A `?` not followed by digits stays.
pub fn to_postgres(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len() + 8);
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\'' | '"' => {
                out.push(c);
                // A doubled quote inside is an escaped quote: the loop sees it as the end
                // and an immediate new start, which copies it through just the same.
                for d in chars.by_ref() {
                    out.push(d);
                    if d == c {
                        break;
                    }
                }
            }
            '-' if chars.peek() == Some(&'-') => {
                out.push(c);
                for d in chars.by_ref() {
                    out.push(d);
                    if d == '\n' {
                        break;
                    }
                }
            }
            '/' if chars.peek() == Some(&'*') => {
                out.push(c);
                out.push(chars.next().unwrap_or('*'));
                let mut prev = '\0';
                for d in chars.by_ref() {
                    out.push(d);
                    if prev == '*' && d == '/' {
                        break;
                    }
                    prev = d;
                }
            }
            '?' if chars.peek().is_some_and(char::is_ascii_digit) => {
                out.push('$');
                while let Some(d) = chars.next_if(char::is_ascii_digit) {
                    out.push(d);
                }
            }
            c => out.push(c),
        }
    }
    out
}

/// SQLite's spelling of what is written once for both.
fn to_sqlite(sql: &str) -> std::borrow::Cow<'_, str> {
    if sql.contains("COLLATE \"C\"") {
        sql.replace("COLLATE \"C\"", "COLLATE BINARY").into()
    } else {
        sql.into()
    }
}

/// A PostgreSQL array literal of `items` (`{"a","b",NULL}`), for a parameter cast to an
/// array type: each element quoted and escaped, a None as `NULL`.
pub fn array_literal(items: impl IntoIterator<Item = Option<String>>) -> String {
    let mut out = String::from("{");
    for (i, item) in items.into_iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        match item {
            None => out.push_str("NULL"),
            Some(text) => {
                out.push('"');
                for c in text.chars() {
                    if c == '"' || c == '\\' {
                        out.push('\\');
                    }
                    out.push(c);
                }
                out.push('"');
            }
        }
    }
    out.push('}');
    out
}

/// Which engine a store is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

pub(crate) struct PgConn {
    pub client: postgres::Client,
    /// Each statement's PostgreSQL text (`$N` placeholders), translated once.
    translated: HashMap<String, String>,
    tx: PgTx,
    /// The server, for messages (never with the password).
    server: String,
    /// Why the connection was lost, as first said: every later statement says the same
    /// (a pooler's reason, not the bare "connection closed" of the statements after).
    lost: Option<String>,
}

/// Where a PostgreSQL connection stands in a [`Tx`]. `BEGIN` is sent only before the
/// transaction's first statement that writes or locks: a transaction that only read (the
/// common case of a nightly run with nothing new) costs no round trips for `BEGIN` and
/// `COMMIT`. Under PostgreSQL's read committed isolation each statement sees what was
/// committed when it started, in a transaction or not, so reading before `BEGIN` changes
/// nothing the reads can see.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PgTx {
    None,
    Pending,
    Open,
}

/// Whether a statement must run inside the transaction's `BEGIN`: everything but a
/// plain `SELECT` (one that neither locks rows, takes an advisory lock, makes a table
/// with `INTO`, nor is followed by more statements).
fn writes_or_locks(sql: &str) -> bool {
    let head = sql.trim_start();
    let select = head
        .get(..6)
        .is_some_and(|h| h.eq_ignore_ascii_case("select"));
    if !select {
        return true;
    }
    // A batch's later statements may write (a false alarm only sends BEGIN early).
    if sql.trim_end().trim_end_matches(';').contains(';') {
        return true;
    }
    let upper = sql.to_ascii_uppercase();
    // Words, whatever whitespace separates them: a locking clause may start a line.
    let words: Vec<&str> = upper
        .split(|c: char| c.is_ascii_whitespace() || c == '(' || c == ')' || c == ',')
        .filter(|w| !w.is_empty())
        .collect();
    words
        .windows(2)
        .any(|w| w[0] == "FOR" && matches!(w[1], "UPDATE" | "SHARE" | "NO" | "KEY"))
        // SELECT ... INTO makes a table.
        || words.contains(&"INTO")
        || upper.contains("ADVISORY")
}

impl PgConn {
    pub fn new(client: postgres::Client, server: String) -> PgConn {
        PgConn {
            client,
            translated: HashMap::new(),
            tx: PgTx::None,
            server,
            lost: None,
        }
    }

    /// `e` as a [`SqlError`]; a lost connection keeps the reason first given for it.
    fn fail(&mut self, e: postgres::Error) -> SqlError {
        match pg_error(&self.server, e) {
            SqlError::Lost { server, detail } => SqlError::Lost {
                server,
                detail: self.lost.get_or_insert(detail).clone(),
            },
            other => other,
        }
    }

    /// Send the pending `BEGIN` if `sql` needs it.
    fn before(&mut self, sql: &str) -> Result<(), postgres::Error> {
        if self.tx == PgTx::Pending && writes_or_locks(sql) {
            self.client.batch_execute("BEGIN")?;
            self.tx = PgTx::Open;
        }
        Ok(())
    }

    /// End the transaction: `COMMIT` or `ROLLBACK` if `BEGIN` was sent.
    fn end(&mut self, how: &str) -> Result<(), postgres::Error> {
        let open = self.tx == PgTx::Open;
        self.tx = PgTx::None;
        if open {
            self.client.batch_execute(how)?;
        }
        Ok(())
    }

    fn execute(&mut self, sql: &str, params: &[&dyn ToValue]) -> Result<u64, postgres::Error> {
        Ok(self.run(sql, params)?.1)
    }

    fn query(
        &mut self,
        sql: &str,
        params: &[&dyn ToValue],
    ) -> Result<Vec<postgres::Row>, postgres::Error> {
        Ok(self.run(sql, params)?.0)
    }

    /// Run `sql` with `params` (after the pending `BEGIN` if it needs it): its rows and
    /// the number of rows it changed. Each parameter is sent with the type of its value,
    /// so the statement is parsed, bound and run in one round trip, where preparing it
    /// first would take two (a nightly run sends most of its statements once). A NULL
    /// goes untyped: the server infers its type from the statement, as it would have when
    /// preparing.
    fn run(
        &mut self,
        sql: &str,
        params: &[&dyn ToValue],
    ) -> Result<(Vec<postgres::Row>, u64), postgres::Error> {
        use postgres::fallible_iterator::FallibleIterator;
        use postgres::types::Type;
        self.before(sql)?;
        if !self.translated.contains_key(sql) {
            self.translated.insert(sql.to_string(), to_postgres(sql));
        }
        let text = &self.translated[sql];
        let vals = pg_values(params);
        let args: Vec<(PgParam, Type)> = vals
            .iter()
            .map(|v| {
                let v = v.as_value_ref();
                let ty = match v {
                    ValueRef::Null => untyped(),
                    ValueRef::Int(_) => Type::INT8,
                    ValueRef::Real(_) => Type::FLOAT8,
                    ValueRef::Text(_) => Type::TEXT,
                };
                (PgParam(v), ty)
            })
            .collect();
        let mut rows_iter = self.client.query_typed_raw(
            text,
            args.iter()
                .map(|(p, t)| (p as &(dyn postgres::types::ToSql + Sync), t.clone())),
        )?;
        let mut rows = Vec::new();
        while let Some(r) = rows_iter.next()? {
            rows.push(r);
        }
        let changed = rows_iter.rows_affected().unwrap_or(0);
        Ok((rows, changed))
    }

    /// `COPY ... FROM STDIN (FORMAT binary)` of `rows`, each value sent as its column's
    /// type (after the pending `BEGIN`).
    fn copy_rows(
        &mut self,
        sql: &str,
        types: &[postgres::types::Type],
        rows: impl Iterator<Item = Vec<Value>>,
    ) -> Result<u64, postgres::Error> {
        self.before(sql)?;
        let mut writer =
            postgres::binary_copy::BinaryCopyInWriter::new(self.client.copy_in(sql)?, types);
        for row in rows {
            let params: Vec<PgParam> = row.iter().map(|v| PgParam(v.as_value_ref())).collect();
            let refs: Vec<&(dyn postgres::types::ToSql + Sync)> = params
                .iter()
                .map(|p| p as &(dyn postgres::types::ToSql + Sync))
                .collect();
            writer.write(&refs)?;
        }
        writer.finish()
    }
}

/// Rows from which [`Db::insert_rows`] copies on PostgreSQL rather than inserting.
const COPY_FROM: usize = 32;

/// A column's type for [`Db::insert_rows`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SqlType {
    BigInt,
    Text,
}

/// The type of a parameter sent as "unspecified" (0): the server infers it.
fn untyped() -> postgres::types::Type {
    static UNTYPED: std::sync::OnceLock<postgres::types::Type> = std::sync::OnceLock::new();
    UNTYPED
        .get_or_init(|| {
            postgres::types::Type::new(
                "unspecified".to_string(),
                0,
                postgres::types::Kind::Pseudo,
                "pg_catalog".to_string(),
            )
        })
        .clone()
}

/// The connection of a store, and the time spent on it.
pub(crate) struct Db {
    conn: Conn,
    clock: Clock,
}

enum Conn {
    Sqlite(rusqlite::Connection),
    Postgres(Box<RefCell<PgConn>>),
}

/// The time a store's engine took: opening the connection, and each statement from its
/// call to its last row read into the caller's values (less the time the caller took to
/// produce the rows it inserts, so hashing that feeds a `COPY` is not counted). In
/// process for SQLite, a round trip and the server's work for PostgreSQL.
#[derive(Debug, Default)]
struct Clock {
    spent: std::cell::Cell<std::time::Duration>,
    statements: std::cell::Cell<u64>,
}

/// What a store's engine took so far (see [`Db::spent`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Spent {
    pub time: std::time::Duration,
    pub statements: u64,
}

/// One timed call to the engine: adds its time to the clock when dropped (and says it
/// at the trace level, with the statement's start).
struct Timing<'c> {
    clock: &'c Clock,
    start: std::time::Instant,
    what: &'c str,
    /// Time within the call that was the caller's, not the engine's.
    excluded: std::time::Duration,
    /// Something was sent (an insert of no rows sends nothing and is no statement).
    sent: bool,
}

impl Clock {
    fn start<'c>(&'c self, what: &'c str) -> Timing<'c> {
        Timing {
            clock: self,
            start: std::time::Instant::now(),
            what,
            excluded: std::time::Duration::ZERO,
            sent: true,
        }
    }

    fn add(&self, d: std::time::Duration) {
        self.spent.set(self.spent.get() + d);
    }
}

impl Drop for Timing<'_> {
    fn drop(&mut self) {
        let took = self.start.elapsed().saturating_sub(self.excluded);
        self.clock.add(took);
        if !self.sent {
            return;
        }
        self.clock.statements.set(self.clock.statements.get() + 1);
        if tracing::enabled!(tracing::Level::TRACE) {
            let what: String = self.what.split_whitespace().collect::<Vec<_>>().join(" ");
            let what: String = what.chars().take(80).collect();
            tracing::trace!("store: {:.2} ms: {what}", took.as_secs_f64() * 1000.0);
        }
    }
}

/// PostgreSQL's arguments: each parameter's value, converted when sent.
fn pg_values<'p>(params: &[&'p dyn ToValue]) -> Vec<ValueCow<'p>> {
    params
        .iter()
        .map(|p| <dyn ToValue>::value_ref(*p))
        .collect()
}

fn sqlite_params<'p>(
    params: &'p [&'p dyn ToValue],
) -> rusqlite::ParamsFromIter<impl Iterator<Item = SqliteParam<'p>>> {
    rusqlite::params_from_iter(params.iter().map(|p| SqliteParam(*p)))
}

impl Db {
    pub fn sqlite_conn(conn: rusqlite::Connection) -> Db {
        Db {
            conn: Conn::Sqlite(conn),
            clock: Clock::default(),
        }
    }

    pub fn postgres(conn: PgConn) -> Db {
        Db {
            conn: Conn::Postgres(Box::new(RefCell::new(conn))),
            clock: Clock::default(),
        }
    }

    /// The time the engine took so far, and the statements it ran.
    pub fn spent(&self) -> Spent {
        Spent {
            time: self.clock.spent.get(),
            statements: self.clock.statements.get(),
        }
    }

    /// Count `opening` as the engine's time so far: the whole of opening the store
    /// (connecting, checking its schema and layout), the statements that took included.
    pub fn opened_in(&self, opening: std::time::Duration) {
        self.clock.spent.set(opening);
    }

    pub fn backend(&self) -> Backend {
        match self.conn {
            Conn::Sqlite(_) => Backend::Sqlite,
            Conn::Postgres(_) => Backend::Postgres,
        }
    }

    /// The SQLite connection (for what only SQLite has: PRAGMAs, integrity checks).
    pub fn sqlite(&self) -> Option<&rusqlite::Connection> {
        match &self.conn {
            Conn::Sqlite(c) => Some(c),
            Conn::Postgres(_) => None,
        }
    }

    /// Run a statement; returns the rows it changed.
    pub fn execute(&self, sql: &str, params: &[&dyn ToValue]) -> SqlResult<usize> {
        let _timing = self.clock.start(sql);
        match &self.conn {
            Conn::Sqlite(c) => {
                let mut stmt = c.prepare_cached(&to_sqlite(sql))?;
                Ok(stmt.execute(sqlite_params(params))?)
            }
            Conn::Postgres(pg) => {
                let mut pg = pg.borrow_mut();
                match pg.execute(sql, params) {
                    Ok(n) => Ok(n as usize),
                    Err(e) => Err(pg.fail(e)),
                }
            }
        }
    }

    /// Call `f` with each row of a query, in order, reading columns straight from the
    /// engine's row; stops at the first error. `f` should only read the row: on
    /// PostgreSQL the whole result has arrived before the first call, on SQLite the
    /// statement is still stepping.
    pub fn query_each(
        &self,
        sql: &str,
        params: &[&dyn ToValue],
        mut f: impl FnMut(&Row<'_>) -> SqlResult<()>,
    ) -> SqlResult<()> {
        let _timing = self.clock.start(sql);
        match &self.conn {
            Conn::Sqlite(c) => {
                let mut stmt = c.prepare_cached(&to_sqlite(sql))?;
                let mut rows = stmt.query(sqlite_params(params))?;
                while let Some(r) = rows.next()? {
                    f(&Row(RowSrc::Sqlite(r)))?;
                }
                Ok(())
            }
            Conn::Postgres(pg) => {
                // The connection is free again before the rows are handed on.
                let rows = {
                    let mut pg = pg.borrow_mut();
                    match pg.query(sql, params) {
                        Ok(rows) => rows,
                        Err(e) => return Err(pg.fail(e)),
                    }
                };
                for r in &rows {
                    f(&Row(RowSrc::Postgres(r)))?;
                }
                Ok(())
            }
        }
    }

    /// Every row of a query, each made into a `T` by `f` (see [`Db::query_each`]).
    pub fn query_map<T>(
        &self,
        sql: &str,
        params: &[&dyn ToValue],
        mut f: impl FnMut(&Row<'_>) -> SqlResult<T>,
    ) -> SqlResult<Vec<T>> {
        let mut out = Vec::new();
        self.query_each(sql, params, |r| {
            out.push(f(r)?);
            Ok(())
        })?;
        Ok(out)
    }

    /// Every row of a query, as owned values.
    pub fn query(&self, sql: &str, params: &[&dyn ToValue]) -> SqlResult<Vec<Row<'static>>> {
        self.query_map(sql, params, |r| r.to_owned_row())
    }

    /// The first row of a query, if any.
    pub fn query_opt(&self, sql: &str, params: &[&dyn ToValue]) -> SqlResult<Option<Row<'static>>> {
        Ok(self.query(sql, params)?.into_iter().next())
    }

    /// The first row of a query that must return one.
    pub fn query_row(&self, sql: &str, params: &[&dyn ToValue]) -> SqlResult<Row<'static>> {
        self.query_opt(sql, params)?.ok_or(SqlError::NoRows)
    }

    /// Insert `rows` (values in the order of `columns`, typed by `types`) into `table`
    /// as the iterator yields them; returns how many. PostgreSQL takes them as one
    /// `COPY` stream (the server stores each row as it arrives, at two thirds of the
    /// cost of a multi-row `INSERT`, while the iterator is still producing), or fewer
    /// than [`COPY_FROM`] rows in one `INSERT` (a `COPY` costs a second round trip);
    /// SQLite, in process, one prepared single-row `INSERT` after another.
    pub fn insert_rows(
        &self,
        table: &str,
        columns: &[&str],
        types: &[SqlType],
        rows: impl Iterator<Item = Vec<Value>>,
    ) -> SqlResult<u64> {
        let mut timing = self.clock.start(table);
        // The time the caller takes to produce each row is its own, not the engine's.
        let mut rows = rows;
        let mut producing = std::time::Duration::ZERO;
        let mut any = false;
        let rows = std::iter::from_fn(|| {
            let start = std::time::Instant::now();
            let row = rows.next();
            producing += start.elapsed();
            any |= row.is_some();
            row
        });
        let result = self.insert_rows_timed(table, columns, types, rows);
        timing.excluded = producing;
        timing.sent = any;
        result
    }

    fn insert_rows_timed(
        &self,
        table: &str,
        columns: &[&str],
        types: &[SqlType],
        rows: impl Iterator<Item = Vec<Value>>,
    ) -> SqlResult<u64> {
        match &self.conn {
            Conn::Sqlite(c) => {
                let sql = format!(
                    "INSERT INTO {table} ({}) VALUES ({})",
                    columns.join(", "),
                    super::report::placeholders(columns.len(), 1)
                );
                let mut stmt = c.prepare_cached(&sql)?;
                let mut n = 0;
                for row in rows {
                    let refs: Vec<&dyn ToValue> = row.iter().map(|v| v as &dyn ToValue).collect();
                    stmt.execute(sqlite_params(&refs))?;
                    n += 1;
                }
                Ok(n)
            }
            Conn::Postgres(pg) => {
                // A few rows go in one INSERT: a COPY costs a second round trip.
                let mut rows = rows;
                let head: Vec<Vec<Value>> = rows.by_ref().take(COPY_FROM).collect();
                if head.len() < COPY_FROM {
                    if head.is_empty() {
                        return Ok(0);
                    }
                    let values: Vec<String> = (0..head.len())
                        .map(|i| {
                            let first = i * columns.len() + 1;
                            format!("({})", super::report::placeholders(columns.len(), first))
                        })
                        .collect();
                    let args: Vec<&dyn ToValue> = head
                        .iter()
                        .flat_map(|r| r.iter().map(|v| v as &dyn ToValue))
                        .collect();
                    let sql = format!(
                        "INSERT INTO {table} ({}) VALUES {}",
                        columns.join(", "),
                        values.join(", ")
                    );
                    let mut pg = pg.borrow_mut();
                    return match pg.execute(&sql, &args) {
                        Ok(n) => Ok(n),
                        Err(e) => Err(pg.fail(e)),
                    };
                }
                let mut pg = pg.borrow_mut();
                let sql = format!(
                    "COPY {table} ({}) FROM STDIN (FORMAT binary)",
                    columns.join(", ")
                );
                let types: Vec<postgres::types::Type> = types
                    .iter()
                    .map(|t| match t {
                        SqlType::BigInt => postgres::types::Type::INT8,
                        SqlType::Text => postgres::types::Type::TEXT,
                    })
                    .collect();
                match pg.copy_rows(&sql, &types, head.into_iter().chain(rows)) {
                    Ok(n) => Ok(n),
                    Err(e) => Err(pg.fail(e)),
                }
            }
        }
    }

    /// Statements without parameters, separated by `;` (migrations).
    pub fn batch(&self, sql: &str) -> SqlResult<()> {
        let _timing = self.clock.start(sql);
        match &self.conn {
            Conn::Sqlite(c) => Ok(c.execute_batch(&to_sqlite(sql))?),
            Conn::Postgres(pg) => {
                let mut pg = pg.borrow_mut();
                match pg.before(sql).and_then(|()| pg.client.batch_execute(sql)) {
                    Ok(()) => Ok(()),
                    Err(e) => Err(pg.fail(e)),
                }
            }
        }
    }

    /// Begin a transaction; it rolls back unless committed. On PostgreSQL `BEGIN` waits
    /// for the first statement that writes or locks (see [`PgTx`]).
    pub fn transaction(&self) -> SqlResult<Tx<'_>> {
        match &self.conn {
            Conn::Sqlite(c) => {
                let _timing = self.clock.start("BEGIN");
                c.execute_batch("BEGIN")?
            }
            Conn::Postgres(pg) => pg.borrow_mut().tx = PgTx::Pending,
        }
        Ok(Tx {
            db: self,
            done: false,
        })
    }

    fn end_transaction(&self, how: &str) -> SqlResult<()> {
        match &self.conn {
            Conn::Sqlite(c) => {
                let _timing = self.clock.start(how);
                Ok(c.execute_batch(how)?)
            }
            Conn::Postgres(pg) => {
                let mut pg = pg.borrow_mut();
                // Nothing to end (and nothing sent) when the transaction only read.
                let _timing = (pg.tx == PgTx::Open).then(|| self.clock.start(how));
                pg.end(how).map_err(|e| pg.fail(e))
            }
        }
    }
}

/// An open transaction on a store's connection. Statements inside it go through the
/// same [`Db`]; dropping it without [`Tx::commit`] rolls back.
pub(crate) struct Tx<'a> {
    db: &'a Db,
    done: bool,
}

impl Tx<'_> {
    pub fn commit(mut self) -> SqlResult<()> {
        self.done = true;
        self.db.end_transaction("COMMIT")
    }
}

impl Drop for Tx<'_> {
    fn drop(&mut self) {
        if !self.done {
            let _ = self.db.end_transaction("ROLLBACK");
        }
    }
}

struct SqliteParam<'a>(&'a dyn ToValue);

impl rusqlite::ToSql for SqliteParam<'_> {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        use rusqlite::types::{ToSqlOutput, ValueRef as R};
        Ok(match self.0.value_ref() {
            ValueCow::Borrowed(v) => ToSqlOutput::Borrowed(match v {
                ValueRef::Null => R::Null,
                ValueRef::Int(i) => R::Integer(i),
                ValueRef::Real(f) => R::Real(f),
                ValueRef::Text(s) => R::Text(s.as_bytes()),
            }),
            ValueCow::Owned(v) => ToSqlOutput::Owned(match v {
                Value::Null => rusqlite::types::Value::Null,
                Value::Int(i) => rusqlite::types::Value::Integer(i),
                Value::Real(f) => rusqlite::types::Value::Real(f),
                Value::Text(s) => rusqlite::types::Value::Text(s),
            }),
        })
    }
}

fn sqlite_value(v: rusqlite::types::ValueRef<'_>, column: usize) -> SqlResult<ValueRef<'_>> {
    use rusqlite::types::ValueRef as R;
    Ok(match v {
        R::Null => ValueRef::Null,
        R::Integer(i) => ValueRef::Int(i),
        R::Real(f) => ValueRef::Real(f),
        R::Text(t) | R::Blob(t) => match std::str::from_utf8(t) {
            Ok(s) => ValueRef::Text(s),
            Err(e) => {
                return Err(SqlError::Convert {
                    column,
                    detail: format!("text that is not UTF-8 ({e})"),
                });
            }
        },
    })
}

/// Column `i` of a PostgreSQL row, read by the column's type.
fn pg_value(r: &postgres::Row, i: usize) -> SqlResult<ValueRef<'_>> {
    use postgres::types::Type;
    let Some(col) = r.columns().get(i) else {
        return Err(SqlError::Convert {
            column: i,
            detail: format!("the query returned only {} columns", r.len()),
        });
    };
    let ty = col.type_();
    let v = if *ty == Type::VOID {
        None
    } else if *ty == Type::INT8 {
        r.try_get::<_, Option<i64>>(i)?.map(ValueRef::Int)
    } else if *ty == Type::INT4 {
        r.try_get::<_, Option<i32>>(i)?
            .map(|v| ValueRef::Int(i64::from(v)))
    } else if *ty == Type::INT2 {
        r.try_get::<_, Option<i16>>(i)?
            .map(|v| ValueRef::Int(i64::from(v)))
    } else if *ty == Type::BOOL {
        r.try_get::<_, Option<bool>>(i)?
            .map(|v| ValueRef::Int(i64::from(v)))
    } else if *ty == Type::FLOAT8 {
        r.try_get::<_, Option<f64>>(i)?.map(ValueRef::Real)
    } else if *ty == Type::FLOAT4 {
        r.try_get::<_, Option<f32>>(i)?
            .map(|v| ValueRef::Real(f64::from(v)))
    } else if [
        Type::TEXT,
        Type::VARCHAR,
        Type::NAME,
        Type::BPCHAR,
        Type::UNKNOWN,
    ]
    .contains(ty)
    {
        r.try_get::<_, Option<&str>>(i)?.map(ValueRef::Text)
    } else {
        return Err(SqlError::Convert {
            column: i,
            detail: format!("the store cannot read a column of type {ty}"),
        });
    };
    Ok(v.unwrap_or(ValueRef::Null))
}

/// A parameter for PostgreSQL, converted to whatever type the server inferred for its
/// placeholder (every integer column is BIGINT, but `LIMIT`, `CASE` and comparisons may
/// infer others).
#[derive(Debug)]
struct PgParam<'a>(ValueRef<'a>);

impl postgres::types::ToSql for PgParam<'_> {
    fn to_sql(
        &self,
        ty: &postgres::types::Type,
        out: &mut bytes::BytesMut,
    ) -> Result<postgres::types::IsNull, Box<dyn std::error::Error + Sync + Send>> {
        use postgres::types::{IsNull, Type};
        let is_text = [
            Type::TEXT,
            Type::VARCHAR,
            Type::NAME,
            Type::BPCHAR,
            Type::UNKNOWN,
        ]
        .contains(ty);
        match &self.0 {
            ValueRef::Null => Ok(IsNull::Yes),
            ValueRef::Int(i) => {
                if *ty == Type::INT8 {
                    i.to_sql(ty, out)
                } else if *ty == Type::INT4 {
                    i32::try_from(*i)?.to_sql(ty, out)
                } else if *ty == Type::INT2 {
                    i16::try_from(*i)?.to_sql(ty, out)
                } else if *ty == Type::BOOL {
                    (*i != 0).to_sql(ty, out)
                } else if *ty == Type::FLOAT8 {
                    (*i as f64).to_sql(ty, out)
                } else if is_text {
                    i.to_string().to_sql(ty, out)
                } else {
                    Err(format!("cannot send an integer as {ty}").into())
                }
            }
            ValueRef::Real(f) => {
                if *ty == Type::FLOAT8 {
                    f.to_sql(ty, out)
                } else if *ty == Type::FLOAT4 {
                    (*f as f32).to_sql(ty, out)
                } else {
                    Err(format!("cannot send a number as {ty}").into())
                }
            }
            ValueRef::Text(s) => {
                if is_text {
                    s.to_sql(ty, out)
                } else {
                    Err(format!("cannot send text as {ty}").into())
                }
            }
        }
    }

    fn accepts(_: &postgres::types::Type) -> bool {
        true
    }

    postgres::types::to_sql_checked!();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_selects_wait_for_a_pending_begin() {
        assert!(!writes_or_locks("SELECT a FROM t WHERE b = ?1"));
        assert!(!writes_or_locks("  select count(*) from t"));
        assert!(writes_or_locks("INSERT INTO t (a) VALUES (?1)"));
        assert!(writes_or_locks("UPDATE t SET a = 1"));
        assert!(writes_or_locks(
            "WITH x AS (DELETE FROM t RETURNING a) SELECT a FROM x"
        ));
        assert!(writes_or_locks(
            "SELECT id FROM alerts WHERE a = 1 FOR UPDATE SKIP LOCKED"
        ));
        assert!(writes_or_locks(
            "SELECT pg_advisory_xact_lock(?1::integer, 0)"
        ));
    }

    #[test]
    fn every_locking_clause_and_a_select_that_writes_need_the_begin() {
        // A row lock taken before BEGIN ends with its statement: these must send it.
        assert!(writes_or_locks("SELECT id FROM t WHERE a = 1\nFOR UPDATE"));
        assert!(writes_or_locks("SELECT id FROM t\n\tFOR SHARE OF t"));
        assert!(writes_or_locks("SELECT id FROM t FOR KEY SHARE"));
        assert!(writes_or_locks(
            "SELECT id FROM t\nFOR NO KEY UPDATE NOWAIT"
        ));
        // SELECT INTO makes a table; a batch's later statements may write.
        assert!(writes_or_locks("SELECT a INTO t2 FROM t"));
        assert!(writes_or_locks("SELECT 1; INSERT INTO t (a) VALUES (1)"));
        // Plain reads still wait, trailing semicolon or not.
        assert!(!writes_or_locks("SELECT a FROM t;"));
        assert!(!writes_or_locks("SELECT a, b\nFROM t\nWHERE c = 'x'"));
    }

    #[test]
    fn placeholders_are_rewritten_outside_literals_identifiers_and_comments() {
        assert_eq!(
            to_postgres("SELECT a FROM t WHERE b = ?1 AND c IN (?2, ?10)"),
            "SELECT a FROM t WHERE b = $1 AND c IN ($2, $10)"
        );
        assert_eq!(
            to_postgres("SELECT '?1', 'it''s ?2', \"?3\" -- ?4\n, ?5 /* ?6 */ ?7"),
            "SELECT '?1', 'it''s ?2', \"?3\" -- ?4\n, $5 /* ?6 */ $7"
        );
        assert_eq!(to_postgres("SELECT ? , ?x"), "SELECT ? , ?x");
        assert_eq!(to_postgres("'unterminated ?1"), "'unterminated ?1");
    }

    #[test]
    fn collation_is_spelled_for_sqlite() {
        assert_eq!(
            to_sqlite("ORDER BY name COLLATE \"C\""),
            "ORDER BY name COLLATE BINARY"
        );
    }

    #[test]
    fn values_convert_and_refuse_what_does_not_fit() {
        assert_eq!(u32::from_value(ValueRef::Int(7)), Ok(7));
        assert!(u32::from_value(ValueRef::Int(-1)).is_err());
        assert!(i64::from_value(ValueRef::Text("x")).is_err());
        assert_eq!(Option::<i64>::from_value(ValueRef::Null), Ok(None));
        assert_eq!(bool::from_value(ValueRef::Int(1)), Ok(true));
        assert_eq!(Some(3i64).to_value(), Value::Int(3));
        assert_eq!(None::<&str>.to_value(), Value::Null);
    }

    #[test]
    fn text_parameters_are_bound_borrowed() {
        let owned = String::from("a/b.tar");
        match owned.value_ref() {
            ValueCow::Borrowed(ValueRef::Text(s)) => assert!(std::ptr::eq(s, owned.as_str())),
            other => panic!("expected borrowed text, got {other:?}"),
        }
    }

    #[test]
    fn a_session_the_server_ends_is_said_as_a_lost_connection_naming_the_server() {
        // Only PostgreSQL has a server to lose (BM_TEST_STORE=postgres).
        let (_guard, store) = crate::store::test_store();
        if store.db.backend() != Backend::Postgres {
            return;
        }
        let err = store
            .db
            .batch("SELECT pg_terminate_backend(pg_backend_pid())")
            .unwrap_err();
        let said = err.to_string();
        assert!(matches!(err, SqlError::Lost { .. }), "{said}");
        assert!(said.contains(&store.name()), "{said}");
        // Every later statement says the same, not a bare "connection closed".
        let err = store.db.query("SELECT 1", params![]).unwrap_err();
        assert!(matches!(err, SqlError::Lost { .. }), "{err}");
        assert_eq!(err.to_string(), said, "the first reason, kept");
        // A statement the server refuses is not a lost connection.
        let (_guard, store) = crate::store::test_store();
        let err = store.db.batch("SELECT * FROM no_such_table").unwrap_err();
        assert!(matches!(err, SqlError::Postgres(_)), "{err}");
    }

    #[test]
    fn array_literals_carry_any_text_and_nulls() {
        let items = [
            Some("plain".to_string()),
            None,
            Some("it's \"odd\" \\ {1,2}, NULL".to_string()),
            Some(String::new()),
            Some("NULL".to_string()),
        ];
        assert_eq!(
            array_literal(items[..2].iter().cloned()),
            "{\"plain\",NULL}"
        );
        assert_eq!(array_literal(std::iter::empty()), "{}");
        // The server reads back exactly what was sent (BM_TEST_STORE=postgres).
        let (_guard, store) = crate::store::test_store();
        if store.db.backend() != Backend::Postgres {
            return;
        }
        let back = store
            .db
            .query_map(
                "SELECT v FROM unnest(CAST(?1 AS TEXT[])) WITH ORDINALITY AS u(v, i) ORDER BY i",
                params![array_literal(items.iter().cloned())],
                |r| r.get::<Option<String>>(0),
            )
            .unwrap();
        assert_eq!(back, items);
    }

    #[test]
    fn rows_read_in_place_match_owned_rows() {
        // On PostgreSQL too with BM_TEST_STORE=postgres.
        let (_guard, store) = crate::store::test_store();
        let db = &store.db;
        db.batch("CREATE TABLE t (a BIGINT, b TEXT, c DOUBLE PRECISION)")
            .unwrap();
        for (a, b) in [(1i64, Some("x")), (2, None)] {
            db.execute("INSERT INTO t VALUES (?1, ?2, 0.5)", params![a, b])
                .unwrap();
        }
        let read = |r: &Row<'_>| -> SqlResult<(i64, Option<String>, f64)> {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        };
        let sql = "SELECT a, b, c FROM t WHERE a >= ?1 ORDER BY a";
        let streamed = db.query_map(sql, params![1i64], read).unwrap();
        let owned: Vec<_> = db
            .query(sql, params![1i64])
            .unwrap()
            .iter()
            .map(read)
            .collect::<SqlResult<_>>()
            .unwrap();
        assert_eq!(streamed, vec![(1, Some("x".into()), 0.5), (2, None, 0.5)]);
        assert_eq!(streamed, owned);
        let err = db
            .query_map(sql, params![1i64], |r| r.get::<i64>(1))
            .unwrap_err();
        assert!(matches!(err, SqlError::Convert { column: 1, .. }), "{err}");
    }

    #[test]
    fn a_transaction_commits_or_rolls_back_its_writes_whenever_begin_was_sent() {
        // On PostgreSQL too with BM_TEST_STORE=postgres (where BEGIN waits for a write).
        let (_guard, store) = crate::store::test_store();
        let db = &store.db;
        db.batch("CREATE TABLE t (a BIGINT)").unwrap();
        let count = || {
            db.query_row("SELECT COUNT(*) FROM t", &[])
                .unwrap()
                .get::<i64>(0)
                .unwrap()
        };
        // Read, write, dropped: nothing stays.
        {
            let _tx = db.transaction().unwrap();
            assert_eq!(count(), 0);
            db.execute("INSERT INTO t VALUES (1)", &[]).unwrap();
            assert_eq!(count(), 1);
        }
        assert_eq!(count(), 0);
        // Only read, committed: fine, and the next transaction starts clean.
        let tx = db.transaction().unwrap();
        assert_eq!(count(), 0);
        tx.commit().unwrap();
        let tx = db.transaction().unwrap();
        db.execute("INSERT INTO t VALUES (2)", &[]).unwrap();
        tx.commit().unwrap();
        assert_eq!(count(), 1);
        // Outside a transaction, statements commit at once.
        db.execute("INSERT INTO t VALUES (3)", &[]).unwrap();
        assert_eq!(count(), 2);
    }
}
