//! `hoist rollback`.

use std::path::Path;

use anstream::println;
use hoist_release::ReleaseId;

use crate::cli::RollbackArgs;
use crate::commands::{command_line, load_config, lock_wait, transport};
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
    let t = transport(&config);
    let sink = printer::events(args.json);
    match hoist_deploy::rollback(
        &config,
        &t,
        to.as_ref(),
        &hoist_deploy::who(),
        &command_line(),
        lock_wait,
        &sink,
    ) {
        Ok(report) => {
            if args.json {
                printer::json_line(&serde_json::json!({
                    "event": "rolled_back",
                    "host": report.host,
                    "from": report.from.to_string(),
                    "to": report.to.to_string(),
                    "ms": report.elapsed.as_millis() as u64,
                }));
            } else {
                println!(
                    "rolled back {} from {} to {} in {}; {} is marked bad",
                    report.host,
                    report.from,
                    report.to,
                    printer::format_ms(report.elapsed.as_millis() as u64),
                    report.from
                );
            }
            exit::OK
        }
        Err(e) => {
            printer::deploy_error(&e);
            exit::code(e.kind)
        }
    }
}
