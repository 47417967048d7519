//! `hoist status`.

use std::path::Path;

use anstream::println;

use crate::cli::OutputArgs;
use crate::commands::releases::short_commit;
use crate::commands::{load_config, transport};
use crate::{exit, printer};

pub fn run(args: &OutputArgs, config: Option<&Path>) -> i32 {
    let config = match load_config(config) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let t = transport(&config);
    let status = match hoist_deploy::status(&config, &t) {
        Ok(s) => s,
        Err(e) => {
            printer::deploy_error(&e);
            return exit::code(e.kind);
        }
    };
    if args.json {
        printer::json_line(&status);
        return exit::OK;
    }
    println!(
        "app:      {} at {} on {}",
        config.app.name, status.root, status.host
    );
    match &status.current {
        Some(r) => println!(
            "live:     {} ({}, commit {}, {} by {})",
            r.id,
            r.state,
            r.commit.as_deref().map_or("-".into(), short_commit),
            r.created.map_or("-".into(), printer::age),
            r.who.as_deref().unwrap_or("-")
        ),
        None => println!("live:     nothing deployed yet"),
    }
    println!(
        "rollback: {}",
        status.rollback_target.as_deref().unwrap_or("no target")
    );
    match &status.lock {
        None => println!("lock:     free"),
        Some(owner) => {
            let stale = if status.lock_stale {
                " [stale: that process is gone; the next deploy reclaims it]"
            } else {
                ""
            };
            println!("lock:     {}{stale}", owner.describe(chrono::Utc::now()));
        }
    }
    exit::OK
}
