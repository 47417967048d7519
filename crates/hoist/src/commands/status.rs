//! `hoist status`.

use std::path::Path;

use crate::cli::HostsOutputArgs;
use crate::command_error::CommandError;
use crate::commands::{fleet, load_config};
use crate::printer::{tables, Printer};

/// Every host's status; a host whose status cannot be read is the error (the last one, when
/// several fail: the others are shown as warnings).
pub fn run(
    args: &HostsOutputArgs,
    config: Option<&Path>,
    printer: Printer,
) -> Result<(), CommandError> {
    let printer = printer.with_json(args.json);
    let config = load_config(config)?;
    let fleet = fleet(&config, &args.target)?;
    let many = fleet.hosts.len() > 1;
    let mut failed: Option<CommandError> = None;
    for status in fleet.each(|_, h| hoist_deploy::status(h)) {
        match status {
            Ok(status) => tables::status(printer, &config, &status, many),
            Err(e) => {
                if let Some(earlier) = failed.replace(e.into()) {
                    printer.warn(&earlier.message);
                }
            }
        }
    }
    failed.map_or(Ok(()), Err)
}
