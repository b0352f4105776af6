//! Build-time tasks for packaging, run as `cargo xtask <task>`.
//!
//! `assets` writes the man page and the shell completions, generated from the same clap
//! definition the binary parses, so they can never drift from `--help`:
//!
//! ```text
//! target/assets/backup-monitor.1.gz
//! target/assets/completions/backup-monitor.bash
//! target/assets/completions/_backup-monitor        (zsh)
//! target/assets/completions/backup-monitor.fish
//! ```
//!
//! Always `target/` in the workspace, whatever `$CARGO_TARGET_DIR` says: the Debian
//! package's asset list in Cargo.toml names these paths. Nothing generated is committed.

use anyhow::{Context, Result, bail};
use backup_monitor::cli::Cli;
use clap::CommandFactory;
use clap_complete::Shell;
use flate2::{Compression, write::GzEncoder};
use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

const BIN: &str = "backup-monitor";

fn main() -> Result<()> {
    let task = std::env::args().nth(1);
    match task.as_deref() {
        Some("assets") => {
            let dir = assets_dir();
            write_assets(&dir)?;
            println!("{}", dir.display());
            Ok(())
        }
        _ => {
            bail!("usage: cargo xtask assets   (man page and shell completions into target/assets)")
        }
    }
}

fn assets_dir() -> PathBuf {
    workspace_root().join("target").join("assets")
}

fn workspace_root() -> PathBuf {
    let xtask = Path::new(env!("CARGO_MANIFEST_DIR"));
    xtask.parent().unwrap_or(xtask).to_path_buf()
}

fn write_assets(dir: &Path) -> Result<()> {
    let completions = dir.join("completions");
    fs::create_dir_all(&completions)
        .with_context(|| format!("cannot create {}", completions.display()))?;
    write_man_page(&dir.join(format!("{BIN}.1.gz")))?;
    for (shell, name) in [
        (Shell::Bash, format!("{BIN}.bash")),
        (Shell::Zsh, format!("_{BIN}")),
        (Shell::Fish, format!("{BIN}.fish")),
    ] {
        let path = completions.join(name);
        write_file(&path, |out| {
            clap_complete::generate(shell, &mut Cli::command(), BIN, out);
            Ok(())
        })?;
    }
    Ok(())
}

/// The man page, gzipped as Debian installs man pages.
fn write_man_page(path: &Path) -> Result<()> {
    write_file(path, |out| {
        let mut gz = GzEncoder::new(out, Compression::best());
        clap_mangen::Man::new(Cli::command()).render(&mut gz)?;
        gz.finish()?;
        Ok(())
    })
}

fn write_file(path: &Path, render: impl FnOnce(&mut dyn Write) -> Result<()>) -> Result<()> {
    let file = File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
    let mut out = BufWriter::new(file);
    render(&mut out).with_context(|| format!("cannot write {}", path.display()))?;
    out.flush()
        .with_context(|| format!("cannot write {}", path.display()))
}
