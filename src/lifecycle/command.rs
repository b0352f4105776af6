//! The actions from the command line: check the flags, load the config, run the action
//! and print its [`Report`] in the chosen format (exit 0, or 3 with the cause).

use super::{Action, Report, run};
use crate::cli::{Cli, Format, emit};
use crate::{config, logging, workflow};
use std::io::Write;

/// `--ack`, `--accept`, `--silence`, `--silences` or `--unsilence`; returns the exit code.
pub fn main(cli: &Cli) -> i32 {
    let name = "action";
    let with_operations = !cli.operations().is_empty() || cli.explain || cli.check_config;
    let action = match Action::from_flags(&cli.actions, cli.location_name.as_deref()) {
        Ok(Some(_)) if with_operations => {
            return print(
                cli.format,
                &Report::unknown(
                    name,
                    "--ack, --accept, --silence, --silences and --unsilence run on their own, without operations",
                ),
            );
        }
        Ok(Some(a)) => a,
        Ok(None) => {
            let e = "--reason and --for go with --ack, --accept or --silence";
            return print(cli.format, &Report::unknown(name, e));
        }
        Err(e) => return print(cli.format, &Report::unknown(name, &e)),
    };
    let path = config::choose_path(cli.config.as_deref());
    let config = match config::load(&path) {
        Ok(c) => c,
        Err(e) => {
            let msg = format!("invalid config {}: {}", path.display(), e.errors.join("; "));
            return print(cli.format, &Report::unknown(action.name(), &msg));
        }
    };
    let _log = logging::init_for(
        &config,
        logging::stderr_level(cli.quiet, cli.verbose),
        config.log_file().as_deref(),
    );
    let now = match workflow::now() {
        Ok(t) => t,
        Err(e) => return print(cli.format, &Report::unknown(action.name(), &e)),
    };
    print(cli.format, &run(&config, &action, now))
}

/// The report on stdout (text, JSON or a plugin line); in text, a refusal goes to stderr.
fn print(format: Format, r: &Report) -> i32 {
    match format {
        Format::Json => emit(&r.json(), r.exit_code),
        Format::Nagios => emit(&r.nagios(), r.exit_code),
        Format::Text | Format::Junit if r.exit_code == 0 => emit(&r.text(), 0),
        Format::Text | Format::Junit => {
            let _ = writeln!(std::io::stderr().lock(), "error: {}", r.message);
            r.exit_code
        }
    }
}
