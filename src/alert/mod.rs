//! `--check-alerts`: alerts with de-duplication and recoveries (SPEC 3.7). Placeholder.

use crate::output::AlertSummary;
use crate::run::RunContext;
use anyhow::Result;

pub fn run(ctx: &RunContext) -> Result<AlertSummary> {
    let _ = ctx;
    Ok(AlertSummary::default())
}
