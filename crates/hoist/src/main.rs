//! The `hoist` command line: clap definitions in `cli.rs`, one file per command under
//! `commands/`, every error a [`command_error::CommandError`] mapped to its exit code here, and
//! all terminal output through [`printer::Printer`].

mod cli;
mod command_error;
mod commands;
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
    let printer = printer::Printer::new(cli.verbosity());
    let json = cli.json();
    if let Err(e) = commands::dispatch(cli, printer) {
        printer::error(printer.with_json(json), &e);
        std::process::exit(e.exit_code());
    }
}
