//! `hoist rollback`.

use std::path::Path;

use anstream::println;
use hoist_release::ReleaseId;

use crate::cli::RollbackArgs;
use crate::commands::{command_line, fleet, load_config, lock_wait};
use crate::{exit, printer};

pub fn run(args: &RollbackArgs, config: Option<&Path>) -> i32 {
    let config = match load_config(config) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let to = match args.to.as_deref().map(ReleaseId::parse).transpose() {
        Ok(to) => to,
        Err(e) => {
            printer::error(
                &format!("--to: {e}"),
                &["`hoist releases` lists the release ids".into()],
            );
            return exit::CONFIG;
        }
    };
    let lock_wait = match lock_wait(args.lock_wait.as_deref(), &config) {
        Ok(d) => d,
        Err(code) => return code,
    };
    let fleet = match fleet(&config, &args.target) {
        Ok(f) => f,
        Err(code) => return code,
    };
    let sink = printer::events(args.json);
    match hoist_deploy::rollback(
        &config,
        &fleet,
        to.as_ref(),
        &hoist_deploy::who(),
        &command_line(),
        lock_wait,
        &sink,
    ) {
        Ok(report) => {
            let took = printer::format_ms(report.elapsed.as_millis() as u64);
            if args.json {
                printer::json_line(&serde_json::json!({
                    "event": "rolled_back",
                    "to": report.to.to_string(),
                    "hosts": report.hosts,
                    "ms": report.elapsed.as_millis() as u64,
                }));
            } else if let [only] = report.hosts.as_slice() {
                let from = only.previous.as_deref().unwrap_or("-");
                if report.left_marked_bad {
                    println!(
                        "rolled back {} from {from} to {} in {took}; {from} is marked bad",
                        only.host, report.to
                    );
                } else {
                    println!(
                        "rolled forward {} from {from} to {} in {took}; {from} keeps its state",
                        only.host, report.to
                    );
                }
            } else {
                println!(
                    "rolled back {} hosts of {} to {} in {took}",
                    report.hosts.len(),
                    fleet.name,
                    report.to
                );
                printer::host_table(&report.hosts);
            }
            exit::OK
        }
        Err(e) => {
            printer::deploy_error(&e);
            exit::code(e.kind)
        }
    }
}
