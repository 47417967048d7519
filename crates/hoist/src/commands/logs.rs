//! `hoist logs [ENV] [PROCESS] [-n LINES]`: the recent log of each process, per host (logic in
//! `hoist_deploy::process_logs`).

use std::path::Path;

use crate::cli::LogsArgs;
use crate::command_error::CommandError;
use crate::commands::{fleet, load_config};
use crate::printer::Printer;

pub fn run(args: &LogsArgs, config: Option<&Path>, printer: Printer) -> Result<(), CommandError> {
    let config = load_config(config)?;
    // `hoist logs web` names a process when no environment is called `web`.
    let mut target = args.target.clone();
    let mut process = args.process.clone();
    if process.is_none() {
        if let Some(word) = &target.environment {
            let environments: Vec<&str> = config
                .inventory
                .environments
                .iter()
                .map(|e| e.name.as_str())
                .collect();
            let processes: Vec<&str> = config.processes.iter().map(|p| p.name.as_str()).collect();
            if !environments.contains(&word.as_str()) {
                if !processes.contains(&word.as_str()) {
                    let list = |names: &[&str]| {
                        if names.is_empty() {
                            "none".to_string()
                        } else {
                            names.join(", ")
                        }
                    };
                    return Err(CommandError::config(format!(
                        "no environment or [[process]] named {word:?}; environments: {}; processes: {}",
                        list(&environments),
                        list(&processes)
                    )));
                }
                process = target.environment.take();
            }
        }
    }
    let fleet = fleet(&config, &target)?;
    let many = fleet.hosts.len() > 1;
    let results = fleet
        .each(|_, host| hoist_deploy::process_logs(&config, host, process.as_deref(), args.lines));
    let mut failed: Option<CommandError> = None;
    for (host, result) in fleet.hosts.iter().zip(results) {
        match result {
            Ok(logs) => {
                for log in logs {
                    if many {
                        printer.data(format!("==> {}: {} <==", host.name, log.source));
                    } else {
                        printer.data(format!("==> {} <==", log.source));
                    }
                    for line in log.lines {
                        printer.data(line);
                    }
                }
            }
            Err(e) => {
                if let Some(earlier) = failed.replace(e.into()) {
                    printer.warn(&earlier.message);
                }
            }
        }
    }
    failed.map_or(Ok(()), Err)
}
