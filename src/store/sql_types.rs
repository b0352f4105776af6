//! How the domain's typed values are written to and read from SQL columns: one place
//! per type. A value the store cannot read back (a kind or severity this build does not
//! know) is a conversion error naming the column's value, never a silent default.

use crate::problem::{Kind, Operation, ProblemKey, Severity, SlotStart};
use rusqlite::types::{FromSql, FromSqlError, FromSqlResult, ToSql, ToSqlOutput, ValueRef};

fn from_text<T: std::str::FromStr>(v: ValueRef<'_>, what: &str) -> FromSqlResult<T> {
    let text = v.as_str()?;
    text.parse()
        .map_err(|_| FromSqlError::Other(format!("unknown {what} `{text}` in the store").into()))
}

macro_rules! text_column {
    ($ty:ty, $what:literal) => {
        impl ToSql for $ty {
            fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
                Ok(ToSqlOutput::from(self.as_str()))
            }
        }
        impl FromSql for $ty {
            fn column_result(v: ValueRef<'_>) -> FromSqlResult<Self> {
                from_text(v, $what)
            }
        }
    };
}

text_column!(Kind, "problem kind");
text_column!(Severity, "severity");
text_column!(Operation, "operation");

impl ToSql for SlotStart {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::from(self.to_string()))
    }
}

impl FromSql for SlotStart {
    fn column_result(v: ValueRef<'_>) -> FromSqlResult<Self> {
        from_text(v, "slot time")
    }
}

impl ToSql for ProblemKey {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::from(self.to_string()))
    }
}
