//! The `hoist` command line. Clap definitions live in `cli.rs`, one file per command under
//! `commands/`, all terminal output in `printer.rs`, and exit codes in `exit.rs`.

mod cli;
mod commands;
mod exit;
mod printer;

use clap::Parser;

fn main() {
    let cli = cli::Cli::parse();
    // Ctrl-C (and SIGTERM): let the engine stop at a safe point and release the lock.
    // `hoist serve` handles both itself: it lets running runs finish within a grace period.
    if !matches!(cli.command, cli::Command::Serve(_)) {
        let _ = ctrlc::set_handler(|| {
            hoist_deploy::request_cancel();
            hoist_pipeline::request_cancel();
        });
    }
    let code = commands::dispatch(cli);
    std::process::exit(code);
}
