//! `--report`: HTML/CSV/JSON reports and the Prometheus textfile (SPEC 5). Placeholder.

use crate::output::RunDocument;
use crate::run::RunContext;
use anyhow::Result;
use std::path::PathBuf;

pub fn run(ctx: &RunContext, doc: &RunDocument) -> Result<Vec<PathBuf>> {
    let _ = (ctx, doc);
    Ok(Vec::new())
}
