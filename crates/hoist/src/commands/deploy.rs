//! `hoist deploy`.

use std::path::Path;

use anstream::println;
use hoist_deploy::{DeployOptions, Event};

use crate::cli::DeployArgs;
use crate::commands::{command_line, load_config, lock_wait, transport};
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
    let t = transport(&config);
    let opts = DeployOptions {
        who: hoist_deploy::who(),
        git_ref: args.git_ref.clone(),
        lock_wait,
        command: command_line(),
    };
    let sink = printer::events(args.json);
    if args.plan {
        return match hoist_deploy::plan_deploy(&config, &t, &opts) {
            Ok(plan) => {
                if !args.json {
                    println!(
                        "plan: deploy {} as release {} to {} (nothing below has been done)",
                        config.app.name, plan.release, plan.host
                    );
                }
                for (step, action) in plan.actions {
                    sink(Event::Plan {
                        host: plan.host.clone(),
                        step,
                        action,
                    });
                }
                exit::OK
            }
            Err(e) => {
                printer::deploy_error(&e);
                exit::code(e.kind)
            }
        };
    }
    match hoist_deploy::deploy(&config, &t, &opts, &sink) {
        Ok(report) => {
            if args.json {
                printer::json_line(&serde_json::json!({
                    "event": "deployed",
                    "host": report.host,
                    "release": report.release.to_string(),
                    "previous": report.previous.map(|p| p.to_string()),
                    "commit": report.commit,
                    "env_reused": report.env_reused,
                    "dep_key": report.dep_key,
                    "pruned": report.pruned.iter().map(ToString::to_string).collect::<Vec<_>>(),
                    "ms": report.elapsed.as_millis() as u64,
                }));
            } else {
                println!(
                    "deployed {} to {} in {} (was {})",
                    report.release,
                    report.host,
                    printer::format_ms(report.elapsed.as_millis() as u64),
                    report.previous.map_or("nothing".into(), |p| p.to_string())
                );
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
                    "exit_code": exit::code(e.kind),
                }));
            }
            printer::deploy_error(&e);
            exit::code(e.kind)
        }
    }
}
