//! `hoist adopt`.

use std::path::Path;

use crate::cli::HostsOutputArgs;
use crate::command_error::CommandError;
use crate::commands::{command_line, fleet, load_config};
use crate::printer::{self, Printer};

pub fn run(
    args: &HostsOutputArgs,
    config: Option<&Path>,
    printer: Printer,
) -> Result<(), CommandError> {
    let printer = printer.with_json(args.json);
    let config = load_config(config)?;
    let fleet = fleet(&config, &args.target)?;
    let sink = printer::deploy::events(printer, fleet.hosts.len());
    let adopted = hoist_deploy::adopt(
        &fleet,
        &hoist_deploy::who(),
        &config.app.name,
        &command_line(),
        &sink,
    )?;
    for host in adopted {
        let ids: Vec<String> = host.releases.iter().map(ToString::to_string).collect();
        if printer.json {
            printer.json_line(&serde_json::json!({
                "event": "adopted", "host": host.host, "releases": ids,
            }));
        } else if ids.is_empty() {
            printer.data(format!("{}: nothing to adopt", host.host));
        } else {
            printer.data(format!("{}: adopted {}", host.host, ids.join(", ")));
        }
    }
    Ok(())
}
