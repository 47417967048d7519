//! `hoist lock acquire|release`, on every host of the environment.

use std::path::Path;

use anstream::println;

use crate::cli::{LockArgs, LockCommand};
use crate::commands::{fleet, load_config};
use crate::{exit, printer};

pub fn run(args: LockArgs, config: Option<&Path>) -> i32 {
    let config = match load_config(config) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let fleet = match fleet(&config, &args.target) {
        Ok(f) => f,
        Err(code) => return code,
    };
    let sink = printer::events(false);
    let who = hoist_deploy::who();
    let mut code = exit::OK;
    match args.command {
        LockCommand::Acquire { message } => {
            let results = fleet.each(|_, host| {
                hoist_deploy::acquire_manual_lock(
                    host.transport(),
                    &host.layout,
                    &who,
                    message.as_deref(),
                    &sink,
                )
            });
            for (host, r) in fleet.hosts.iter().zip(results) {
                match r {
                    Ok(owner) => println!(
                        "locked {} on {}: {}",
                        config.app.name,
                        host.name,
                        owner.describe(chrono::Utc::now())
                    ),
                    Err(e) => {
                        printer::deploy_error(&e);
                        code = exit::code(e.kind);
                    }
                }
            }
        }
        LockCommand::Release { force } => {
            let results = fleet
                .each(|_, host| hoist_deploy::release_lock(host.transport(), &host.layout, force));
            for (host, r) in fleet.hosts.iter().zip(results) {
                match r {
                    Ok(Some(owner)) => println!(
                        "released the lock of {} on {}: it was {}",
                        config.app.name,
                        host.name,
                        owner.describe(chrono::Utc::now())
                    ),
                    Ok(None) => println!(
                        "the lock of {} on {} was not held",
                        config.app.name, host.name
                    ),
                    Err(e) => {
                        printer::deploy_error(&e);
                        code = exit::code(e.kind);
                    }
                }
            }
        }
    }
    code
}
