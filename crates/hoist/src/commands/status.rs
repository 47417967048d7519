//! `hoist status`.

use std::path::Path;

use anstream::println;
use hoist_config::Config;
use hoist_deploy::Status;

use crate::cli::HostsOutputArgs;
use crate::commands::releases::commit_label;
use crate::commands::{fleet, load_config};
use crate::{exit, printer};

pub fn run(args: &HostsOutputArgs, config: Option<&Path>) -> i32 {
    let config = match load_config(config) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let fleet = match fleet(&config, &args.target) {
        Ok(f) => f,
        Err(code) => return code,
    };
    let many = fleet.hosts.len() > 1;
    let mut code = exit::OK;
    for status in fleet.each(|_, h| hoist_deploy::status(h)) {
        match status {
            Ok(status) if args.json => printer::json_line(&status),
            Ok(status) => show(&config, &status, many),
            Err(e) => {
                printer::deploy_error(&e);
                code = exit::code(e.kind);
            }
        }
    }
    code
}

fn show(config: &Config, status: &Status, many: bool) {
    if many {
        println!("[{}]", status.host);
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
            commit_label(r),
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
}
