//! `--test-restore`: sandboxed restore tests (SPEC 3.6). Placeholder until the restore issue lands.

use crate::output::RestoreSummary;
use crate::run::RunContext;
use anyhow::Result;

pub fn run(ctx: &RunContext) -> Result<RestoreSummary> {
    let _ = ctx;
    Ok(RestoreSummary::default())
}
