//! `hoist logs [ENV] [PROCESS] [-n LINES]`: the recent log of each process, per host (logic in
//! `hoist_deploy::process_logs`).

use std::path::Path;

use anstream::println;

use crate::cli::LogsArgs;
use crate::commands::{fleet, load_config};
use crate::{exit, printer};

pub fn run(args: &LogsArgs, config: Option<&Path>) -> i32 {
    let config = match load_config(config) {
        Ok(c) => c,
        Err(code) => return code,
    };
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
                    printer::error(
                        &format!(
                            "no environment or [[process]] named {word:?}; environments: {}; processes: {}",
                            list(&environments),
                            list(&processes)
                        ),
                        &[],
                    );
                    return exit::CONFIG;
                }
                process = target.environment.take();
            }
        }
    }
    let fleet = match fleet(&config, &target) {
        Ok(f) => f,
        Err(code) => return code,
    };
    let many = fleet.hosts.len() > 1;
    let results = fleet
        .each(|_, host| hoist_deploy::process_logs(&config, host, process.as_deref(), args.lines));
    let mut code = exit::OK;
    for (host, result) in fleet.hosts.iter().zip(results) {
        match result {
            Ok(logs) => {
                for log in logs {
                    if many {
                        println!("==> {}: {} <==", host.name, log.source);
                    } else {
                        println!("==> {} <==", log.source);
                    }
                    for line in log.lines {
                        println!("{line}");
                    }
                }
            }
            Err(e) => {
                printer::deploy_error(&e);
                if code == exit::OK {
                    code = exit::code(e.kind);
                }
            }
        }
    }
    code
}
