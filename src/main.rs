//! The `backup-monitor` binary: everything lives in the library; see `cli::main`.

fn main() {
    std::process::exit(backup_monitor::cli::main());
}
