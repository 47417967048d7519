//! `hoist lock acquire|release`, on every host of the environment.

use std::path::Path;

use crate::cli::{LockArgs, LockCommand};
use crate::command_error::CommandError;
use crate::commands::{fleet, load_config};
use crate::printer::{self, Printer};

/// Acts on every host; the hosts where it failed are the error (the last one; earlier ones are
/// shown as warnings), the others are reported.
pub fn run(args: LockArgs, config: Option<&Path>, printer: Printer) -> Result<(), CommandError> {
    let config = load_config(config)?;
    let fleet = fleet(&config, &args.target)?;
    let sink = printer::deploy::events(printer, fleet.hosts.len());
    let who = hoist_deploy::who();
    let app = &config.app.name;
    let now = chrono::Utc::now;
    let results: Vec<Result<String, hoist_deploy::DeployError>> = match args.command {
        LockCommand::Acquire { message } => fleet
            .hosts
            .iter()
            .zip(fleet.each(|_, host| {
                hoist_deploy::acquire_manual_lock(
                    host.transport(),
                    &host.layout,
                    &who,
                    message.as_deref(),
                    &sink,
                )
            }))
            .map(|(host, r)| {
                r.map(|owner| format!("locked {app} on {}: {}", host.name, owner.describe(now())))
            })
            .collect(),
        LockCommand::Release { force } => {
            fleet
                .hosts
                .iter()
                .zip(fleet.each(|_, host| {
                    hoist_deploy::release_lock(host.transport(), &host.layout, force)
                }))
                .map(|(host, r)| {
                    r.map(|owner| match owner {
                        Some(owner) => format!(
                            "released the lock of {app} on {}: it was {}",
                            host.name,
                            owner.describe(now())
                        ),
                        None => format!("the lock of {app} on {} was not held", host.name),
                    })
                })
                .collect()
        }
    };
    let mut failed: Option<CommandError> = None;
    for result in results {
        match result {
            Ok(line) => printer.data(line),
            Err(e) => {
                if let Some(earlier) = failed.replace(e.into()) {
                    printer.warn(&earlier.message);
                }
            }
        }
    }
    failed.map_or(Ok(()), Err)
}
