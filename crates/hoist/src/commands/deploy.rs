//! `hoist deploy`.

use std::path::Path;

use anstream::println;
use hoist_deploy::{DeployOptions, Event};

use crate::cli::DeployArgs;
use crate::commands::{command_line, fleet, load_config, lock_wait};
use crate::{exit, printer};

pub fn run(args: &DeployArgs, config: Option<&Path>) -> i32 {
    let config = match load_config(config) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let lock_wait = match lock_wait(args.lock_wait.as_deref(), &config) {
        Ok(d) => d,
        Err(code) => return code,
    };
    let fleet = match fleet(&config, &args.target) {
        Ok(f) => f,
        Err(code) => return code,
    };
    let opts = DeployOptions {
        who: hoist_deploy::who(),
        git_ref: args.git_ref.clone(),
        lock_wait,
        command: command_line(),
        rollback_on_failure: !args.no_rollback_on_failure,
    };
    let sink = printer::events(args.json);
    if args.plan {
        return match hoist_deploy::plan_deploy(&config, &fleet, &opts) {
            Ok(plan) => {
                if !args.json {
                    let hosts: Vec<&str> = plan.hosts.iter().map(|h| h.host.as_str()).collect();
                    println!(
                        "plan: deploy {} as release {} to {} (nothing below has been done)",
                        config.app.name,
                        plan.release,
                        hosts.join(", ")
                    );
                }
                for host in plan.hosts {
                    for (step, action) in host.actions {
                        sink(Event::Plan {
                            host: host.host.clone(),
                            step,
                            action,
                        });
                    }
                }
                exit::OK
            }
            Err(e) => {
                printer::deploy_error(&e);
                exit::code(e.kind)
            }
        };
    }
    match hoist_deploy::deploy(&config, &fleet, &opts, &sink) {
        Ok(report) => {
            if args.json {
                printer::json_line(&serde_json::json!({
                    "event": "deployed",
                    "release": report.release.to_string(),
                    "commit": report.commit,
                    "hosts": report.hosts,
                    "ms": report.elapsed.as_millis() as u64,
                }));
            } else {
                let took = printer::format_ms(report.elapsed.as_millis() as u64);
                if let [only] = report.hosts.as_slice() {
                    println!(
                        "deployed {} to {} in {took} (was {})",
                        report.release,
                        only.outcome.host,
                        only.outcome.previous.as_deref().unwrap_or("nothing")
                    );
                } else {
                    println!(
                        "deployed {} to {} hosts of {} in {took}",
                        report.release,
                        report.hosts.len(),
                        fleet.name
                    );
                    let outcomes: Vec<_> = report.hosts.iter().map(|h| h.outcome.clone()).collect();
                    printer::host_table(&outcomes);
                }
            }
            exit::OK
        }
        Err(e) => {
            if args.json {
                printer::json_line(&serde_json::json!({
                    "event": "failed",
                    "kind": format!("{:?}", e.kind),
                    "message": e.message,
                    "hints": e.hints,
                    "hosts": e.hosts,
                    "exit_code": exit::code(e.kind),
                }));
            }
            printer::deploy_error(&e);
            exit::code(e.kind)
        }
    }
}
