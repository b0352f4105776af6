//! The CSV report: one row per backup in the window, with a header row. Cells that a
//! spreadsheet would run as a formula are defused with a leading `'`.

use super::data::ReportData;
use super::{Edition, Exporter};
use anyhow::Result;

pub struct CsvExporter;

pub const HEADER: [&str; 12] = [
    "location",
    "type",
    "path",
    "timestamp",
    "size",
    "checksum_algo",
    "checksum",
    "last_verification",
    "last_verified_at",
    "last_restore",
    "last_restored_at",
    "deleted_at",
];

/// A text cell safe to open in a spreadsheet (OWASP CSV injection guidance).
pub fn defuse(cell: &str) -> String {
    if cell.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{cell}")
    } else {
        cell.to_string()
    }
}

impl Exporter for CsvExporter {
    fn extension(&self) -> &'static str {
        "csv"
    }

    fn render(&self, report: &ReportData, _: Edition) -> Result<Vec<u8>> {
        let mut w = ::csv::Writer::from_writer(Vec::new());
        w.write_record(HEADER)?;
        let text = |v: &Option<String>| defuse(v.as_deref().unwrap_or(""));
        for b in &report.backups {
            w.write_record([
                defuse(&b.location),
                defuse(&b.kind),
                defuse(&b.path),
                defuse(&b.timestamp),
                b.size.to_string(),
                text(&b.checksum_algo),
                text(&b.checksum),
                text(&b.last_verification),
                text(&b.last_verified_at),
                text(&b.last_restore),
                text(&b.last_restored_at),
                text(&b.deleted_at),
            ])?;
        }
        Ok(w.into_inner().map_err(|e| e.into_error())?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formulas_are_defused() {
        for bad in ["=cmd|' /C calc'!A0", "+1", "-2", "@SUM(A1)", "\tx", "\rx"] {
            assert_eq!(defuse(bad), format!("'{bad}"));
        }
        assert_eq!(defuse("db_2026.sql"), "db_2026.sql");
        assert_eq!(defuse(""), "");
    }
}
