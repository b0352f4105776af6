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
}

/// A PostgreSQL error as one line: the server's own message when it sent one.
fn pg_text(e: &postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{} ({})", db.message(), db.code().code()),
        None => crate::problem::one_line(&e.to_string()).into_owned(),
    }
}

pub type SqlResult<T> = Result<T, SqlError>;

/// A value the store writes.
pub trait ToValue {
    fn to_value(&self) -> Value;
}

/// A value the store reads; a value it cannot read is an error naming it.
pub trait FromValue: Sized {
    fn from_value(v: &Value) -> Result<Self, String>;
}

impl ToValue for Value {
    fn to_value(&self) -> Value {
        self.clone()
    }
}

impl<T: ToValue + ?Sized> ToValue for &T {
    fn to_value(&self) -> Value {
        (**self).to_value()
    }
}

impl<T: ToValue> ToValue for Option<T> {
    fn to_value(&self) -> Value {
        self.as_ref().map_or(Value::Null, ToValue::to_value)
    }
}

macro_rules! int_value {
    ($($t:ty),*) => {$(
        impl ToValue for $t {
            fn to_value(&self) -> Value {
                Value::Int(*self as i64)
            }
        }
        impl FromValue for $t {
            fn from_value(v: &Value) -> Result<Self, String> {
                match v {
                    Value::Int(i) => <$t>::try_from(*i).map_err(|_| format!("{i} is out of range")),
                    other => Err(format!("expected an integer, found {other:?}")),
                }
            }
        }
    )*};
}
int_value!(i64, i32, u32, u64, usize);

impl ToValue for bool {
    fn to_value(&self) -> Value {
        Value::Int(i64::from(*self))
    }
}

impl FromValue for bool {
    fn from_value(v: &Value) -> Result<Self, String> {
        match v {
            Value::Int(i) => Ok(*i != 0),
            other => Err(format!("expected a boolean, found {other:?}")),
        }
    }
}

impl ToValue for f64 {
    fn to_value(&self) -> Value {
        Value::Real(*self)
    }
}

impl FromValue for f64 {
    fn from_value(v: &Value) -> Result<Self, String> {
        match v {
            Value::Real(f) => Ok(*f),
            Value::Int(i) => Ok(*i as f64),
            other => Err(format!("expected a number, found {other:?}")),
        }
    }
}

impl ToValue for str {
    fn to_value(&self) -> Value {
        Value::Text(self.to_string())
    }
}

impl ToValue for String {
    fn to_value(&self) -> Value {
        Value::Text(self.clone())
    }
}

impl FromValue for String {
    fn from_value(v: &Value) -> Result<Self, String> {
        match v {
            Value::Text(s) => Ok(s.clone()),
            other => Err(format!("expected text, found {other:?}")),
        }
    }
}

impl<T: FromValue> FromValue for Option<T> {
    fn from_value(v: &Value) -> Result<Self, String> {
        match v {
            Value::Null => Ok(None),
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

/// One result row, read into owned values.
#[derive(Debug, Clone)]
pub struct Row(Vec<Value>);

impl Row {
    pub fn get<T: FromValue>(&self, i: usize) -> SqlResult<T> {
        let v = self.0.get(i).unwrap_or(&Value::Null);
        T::from_value(v).map_err(|detail| SqlError::Convert { column: i, detail })
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

/// Which engine a store is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

pub(crate) struct PgConn {
    pub client: postgres::Client,
    cache: HashMap<String, postgres::Statement>,
}

impl PgConn {
    pub fn new(client: postgres::Client) -> PgConn {
        PgConn {
            client,
            cache: HashMap::new(),
        }
    }

    fn statement(&mut self, sql: &str) -> SqlResult<postgres::Statement> {
        if let Some(s) = self.cache.get(sql) {
            return Ok(s.clone());
        }
        let s = self.client.prepare(&to_postgres(sql))?;
        self.cache.insert(sql.to_string(), s.clone());
        Ok(s)
    }
}

/// The connection of a store.
pub(crate) enum Db {
    Sqlite(rusqlite::Connection),
    Postgres(Box<RefCell<PgConn>>),
}

fn values(params: &[&dyn ToValue]) -> Vec<Value> {
    params.iter().map(|p| p.to_value()).collect()
}

impl Db {
    pub fn backend(&self) -> Backend {
        match self {
            Db::Sqlite(_) => Backend::Sqlite,
            Db::Postgres(_) => Backend::Postgres,
        }
    }

    /// The SQLite connection (for what only SQLite has: PRAGMAs, integrity checks).
    pub fn sqlite(&self) -> Option<&rusqlite::Connection> {
        match self {
            Db::Sqlite(c) => Some(c),
            Db::Postgres(_) => None,
        }
    }

    /// Run a statement; returns the rows it changed.
    pub fn execute(&self, sql: &str, params: &[&dyn ToValue]) -> SqlResult<usize> {
        let vals = values(params);
        match self {
            Db::Sqlite(c) => {
                let mut stmt = c.prepare_cached(&to_sqlite(sql))?;
                Ok(stmt.execute(rusqlite::params_from_iter(vals.iter().map(SqliteParam)))?)
            }
            Db::Postgres(pg) => {
                let mut pg = pg.borrow_mut();
                let stmt = pg.statement(sql)?;
                let args: Vec<PgParam> = vals.iter().map(PgParam).collect();
                let refs: Vec<&(dyn postgres::types::ToSql + Sync)> = args
                    .iter()
                    .map(|a| a as &(dyn postgres::types::ToSql + Sync))
                    .collect();
                Ok(pg.client.execute(&stmt, &refs)? as usize)
            }
        }
    }

    /// Every row of a query.
    pub fn query(&self, sql: &str, params: &[&dyn ToValue]) -> SqlResult<Vec<Row>> {
        let vals = values(params);
        match self {
            Db::Sqlite(c) => {
                let mut stmt = c.prepare_cached(&to_sqlite(sql))?;
                let n = stmt.column_count();
                let mut rows =
                    stmt.query(rusqlite::params_from_iter(vals.iter().map(SqliteParam)))?;
                let mut out = Vec::new();
                while let Some(r) = rows.next()? {
                    let mut row = Vec::with_capacity(n);
                    for i in 0..n {
                        row.push(sqlite_value(r.get_ref(i)?, i)?);
                    }
                    out.push(Row(row));
                }
                Ok(out)
            }
            Db::Postgres(pg) => {
                let mut pg = pg.borrow_mut();
                let stmt = pg.statement(sql)?;
                let args: Vec<PgParam> = vals.iter().map(PgParam).collect();
                let refs: Vec<&(dyn postgres::types::ToSql + Sync)> = args
                    .iter()
                    .map(|a| a as &(dyn postgres::types::ToSql + Sync))
                    .collect();
                pg.client.query(&stmt, &refs)?.iter().map(pg_row).collect()
            }
        }
    }

    /// The first row of a query, if any.
    pub fn query_opt(&self, sql: &str, params: &[&dyn ToValue]) -> SqlResult<Option<Row>> {
        Ok(self.query(sql, params)?.into_iter().next())
    }

    /// The first row of a query that must return one.
    pub fn query_row(&self, sql: &str, params: &[&dyn ToValue]) -> SqlResult<Row> {
        self.query_opt(sql, params)?.ok_or(SqlError::NoRows)
    }

    /// Statements without parameters, separated by `;` (migrations).
    pub fn batch(&self, sql: &str) -> SqlResult<()> {
        match self {
            Db::Sqlite(c) => Ok(c.execute_batch(&to_sqlite(sql))?),
            Db::Postgres(pg) => Ok(pg.borrow_mut().client.batch_execute(sql)?),
        }
    }

    /// Begin a transaction; it rolls back unless committed.
    pub fn transaction(&self) -> SqlResult<Tx<'_>> {
        self.batch("BEGIN")?;
        Ok(Tx {
            db: self,
            done: false,
        })
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
        self.db.batch("COMMIT")
    }
}

impl Drop for Tx<'_> {
    fn drop(&mut self) {
        if !self.done {
            let _ = self.db.batch("ROLLBACK");
        }
    }
}

struct SqliteParam<'a>(&'a Value);

impl rusqlite::ToSql for SqliteParam<'_> {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        use rusqlite::types::{ToSqlOutput, ValueRef};
        Ok(match self.0 {
            Value::Null => ToSqlOutput::Borrowed(ValueRef::Null),
            Value::Int(i) => ToSqlOutput::Borrowed(ValueRef::Integer(*i)),
            Value::Real(f) => ToSqlOutput::Borrowed(ValueRef::Real(*f)),
            Value::Text(s) => ToSqlOutput::Borrowed(ValueRef::Text(s.as_bytes())),
        })
    }
}

fn sqlite_value(v: rusqlite::types::ValueRef<'_>, column: usize) -> SqlResult<Value> {
    use rusqlite::types::ValueRef;
    Ok(match v {
        ValueRef::Null => Value::Null,
        ValueRef::Integer(i) => Value::Int(i),
        ValueRef::Real(f) => Value::Real(f),
        ValueRef::Text(t) | ValueRef::Blob(t) => match std::str::from_utf8(t) {
            Ok(s) => Value::Text(s.to_string()),
            Err(e) => {
                return Err(SqlError::Convert {
                    column,
                    detail: format!("text that is not UTF-8 ({e})"),
                });
            }
        },
    })
}

fn pg_row(r: &postgres::Row) -> SqlResult<Row> {
    use postgres::types::Type;
    let mut out = Vec::with_capacity(r.len());
    for (i, col) in r.columns().iter().enumerate() {
        let ty = col.type_();
        let v = if *ty == Type::VOID {
            None
        } else if *ty == Type::INT8 {
            r.try_get::<_, Option<i64>>(i)?.map(Value::Int)
        } else if *ty == Type::INT4 {
            r.try_get::<_, Option<i32>>(i)?
                .map(|v| Value::Int(i64::from(v)))
        } else if *ty == Type::INT2 {
            r.try_get::<_, Option<i16>>(i)?
                .map(|v| Value::Int(i64::from(v)))
        } else if *ty == Type::BOOL {
            r.try_get::<_, Option<bool>>(i)?
                .map(|v| Value::Int(i64::from(v)))
        } else if *ty == Type::FLOAT8 {
            r.try_get::<_, Option<f64>>(i)?.map(Value::Real)
        } else if *ty == Type::FLOAT4 {
            r.try_get::<_, Option<f32>>(i)?
                .map(|v| Value::Real(f64::from(v)))
        } else if [
            Type::TEXT,
            Type::VARCHAR,
            Type::NAME,
            Type::BPCHAR,
            Type::UNKNOWN,
        ]
        .contains(ty)
        {
            r.try_get::<_, Option<String>>(i)?.map(Value::Text)
        } else {
            return Err(SqlError::Convert {
                column: i,
                detail: format!("the store cannot read a column of type {ty}"),
            });
        };
        out.push(v.unwrap_or(Value::Null));
    }
    Ok(Row(out))
}

/// A parameter for PostgreSQL, converted to whatever type the server inferred for its
/// placeholder (every integer column is BIGINT, but `LIMIT`, `CASE` and comparisons may
/// infer others).
#[derive(Debug)]
struct PgParam<'a>(&'a Value);

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
        match self.0 {
            Value::Null => Ok(IsNull::Yes),
            Value::Int(i) => {
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
            Value::Real(f) => {
                if *ty == Type::FLOAT8 {
                    f.to_sql(ty, out)
                } else if *ty == Type::FLOAT4 {
                    (*f as f32).to_sql(ty, out)
                } else {
                    Err(format!("cannot send a number as {ty}").into())
                }
            }
            Value::Text(s) => {
                if is_text {
                    s.as_str().to_sql(ty, out)
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
        assert_eq!(u32::from_value(&Value::Int(7)), Ok(7));
        assert!(u32::from_value(&Value::Int(-1)).is_err());
        assert!(i64::from_value(&Value::Text("x".into())).is_err());
        assert_eq!(Option::<i64>::from_value(&Value::Null), Ok(None));
        assert_eq!(bool::from_value(&Value::Int(1)), Ok(true));
        assert_eq!(Some(3i64).to_value(), Value::Int(3));
        assert_eq!(None::<&str>.to_value(), Value::Null);
    }
}
