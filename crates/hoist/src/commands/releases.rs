//! `hoist releases` and `hoist releases mark-good ID`.

use std::path::Path;

use hoist_release::ReleaseId;

use crate::cli::{HostsOutputArgs, MarkGoodArgs, ReleasesArgs, ReleasesCommand};
use crate::command_error::CommandError;
use crate::commands::{command_line, fleet, load_config, lock_wait};
use crate::printer::{self, tables, Printer};

pub fn run(
    args: &ReleasesArgs,
    config: Option<&Path>,
    printer: Printer,
) -> Result<(), CommandError> {
    match &args.command {
        Some(ReleasesCommand::MarkGood(mark)) => mark_good(mark, config, printer),
        None => list(&args.list, config, printer),
    }
}

/// `hoist releases mark-good ID`.
fn mark_good(
    args: &MarkGoodArgs,
    config: Option<&Path>,
    printer: Printer,
) -> Result<(), CommandError> {
    let config = load_config(config)?;
    let id = ReleaseId::parse(&args.id).map_err(|e| {
        CommandError::config(format!("mark-good: {e}"))
            .hint("`hoist releases` lists the release ids")
    })?;
    let lock_wait = lock_wait(args.lock_wait.as_deref(), &config)?;
    let fleet = fleet(&config, &args.target)?;
    let sink = printer::deploy::events(printer, fleet.hosts.len());
    let hosts = hoist_deploy::mark_good(
        &config,
        &fleet,
        &id,
        &hoist_deploy::who(),
        &command_line(),
        lock_wait,
        &sink,
    )?;
    printer.data(format!(
        "marked {id} good on {}; it can be a rollback target again",
        hosts.join(", ")
    ));
    Ok(())
}

fn list(
    args: &HostsOutputArgs,
    config: Option<&Path>,
    printer: Printer,
) -> Result<(), CommandError> {
    let printer = printer.with_json(args.json);
    let config = load_config(config)?;
    let fleet = fleet(&config, &args.target)?;
    let mut per_host = Vec::new();
    for (host, rows) in fleet
        .hosts
        .iter()
        .zip(fleet.each(|_, h| hoist_deploy::releases(h)))
    {
        per_host.push((host.name.clone(), rows?));
    }
    if per_host.len() > 1 {
        tables::fleet_releases(printer, &per_host);
    } else {
        let rows = per_host.pop().map(|(_, rows)| rows).unwrap_or_default();
        tables::releases(printer, &config, &rows);
    }
    Ok(())
}
