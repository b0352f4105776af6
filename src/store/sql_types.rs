//! How the domain's typed values are written to and read from SQL columns: one place
//! per type. A value the store cannot read back (a kind or severity this build does not
//! know) is a conversion error naming the column's value, never a silent default.

use super::sql::{FromValue, ToValue, Value, ValueCow, ValueRef};
use crate::problem::{Kind, Operation, ProblemKey, Severity, SlotStart};

fn from_text<T: std::str::FromStr>(v: ValueRef<'_>, what: &str) -> Result<T, String> {
    let ValueRef::Text(text) = v else {
        return Err(format!("expected text, found {v:?}"));
    };
    text.parse()
        .map_err(|_| format!("unknown {what} `{text}` in the store"))
}

macro_rules! text_column {
    ($ty:ty, $what:literal) => {
        impl ToValue for $ty {
            fn value_ref(&self) -> ValueCow<'_> {
                ValueCow::Borrowed(ValueRef::Text(self.as_str()))
            }
        }
        impl FromValue for $ty {
            fn from_value(v: ValueRef<'_>) -> Result<Self, String> {
                from_text(v, $what)
            }
        }
    };
}

text_column!(Kind, "problem kind");
text_column!(Severity, "severity");
text_column!(Operation, "operation");
text_column!(super::Verdict, "restore verdict");
text_column!(super::Event, "event");

impl ToValue for SlotStart {
    fn value_ref(&self) -> ValueCow<'_> {
        ValueCow::Owned(Value::Text(self.to_string()))
    }
}

impl FromValue for SlotStart {
    fn from_value(v: ValueRef<'_>) -> Result<Self, String> {
        from_text(v, "slot time")
    }
}

impl ToValue for ProblemKey {
    fn value_ref(&self) -> ValueCow<'_> {
        ValueCow::Owned(Value::Text(self.to_string()))
    }
}
