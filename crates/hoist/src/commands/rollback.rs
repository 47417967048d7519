//! `hoist rollback`.

use std::path::Path;

use hoist_release::ReleaseId;

use crate::cli::RollbackArgs;
use crate::command_error::CommandError;
use crate::commands::{command_line, fleet, load_config, lock_wait};
use crate::printer::{self, Printer};

pub fn run(
    args: &RollbackArgs,
    config: Option<&Path>,
    printer: Printer,
) -> Result<(), CommandError> {
    let printer = printer.with_json(args.json);
    let config = load_config(config)?;
    let to = args
        .to
        .as_deref()
        .map(ReleaseId::parse)
        .transpose()
        .map_err(|e| {
            CommandError::config(format!("--to: {e}"))
                .hint("`hoist releases` lists the release ids")
        })?;
    let lock_wait = lock_wait(args.lock_wait.as_deref(), &config)?;
    let fleet = fleet(&config, &args.target)?;
    let sink = printer::deploy::events(printer, fleet.hosts.len());
    let report = hoist_deploy::rollback(
        &config,
        &fleet,
        to.as_ref(),
        &hoist_deploy::who(),
        &command_line(),
        lock_wait,
        &sink,
    )?;
    printer::deploy::rolled_back(printer, &report, &fleet.name);
    Ok(())
}
