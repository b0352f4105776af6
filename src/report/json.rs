//! The JSON report: the report model as it is, the same data the HTML shows.

use super::data::ReportData;
use super::{Edition, Exporter};
use anyhow::Result;

pub struct JsonExporter;

impl Exporter for JsonExporter {
    fn extension(&self) -> &'static str {
        "json"
    }

    fn render(&self, report: &ReportData, _: Edition) -> Result<Vec<u8>> {
        let mut out = serde_json::to_vec_pretty(report)?;
        out.push(b'\n');
        Ok(out)
    }
}
