//! `--verify`: integrity checks (SPEC 3.5). Placeholder until the verify issue lands.

use crate::output::VerificationSummary;
use crate::run::RunContext;
use anyhow::Result;

pub fn run(ctx: &RunContext) -> Result<VerificationSummary> {
    let _ = ctx;
    Ok(VerificationSummary::default())
}
