//! `hoist lock acquire|release`.

use std::path::Path;

use anstream::println;
use hoist_deploy::Layout;

use crate::cli::LockCommand;
use crate::commands::{load_config, transport};
use crate::{exit, printer};

pub fn run(cmd: LockCommand, config: Option<&Path>) -> i32 {
    let config = match load_config(config) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let t = transport(&config);
    let layout = Layout::new(&config.release);
    let sink = printer::events(false);
    match cmd {
        LockCommand::Acquire { message } => {
            match hoist_deploy::acquire_manual_lock(
                &t,
                &layout,
                &hoist_deploy::who(),
                message.as_deref(),
                &sink,
            ) {
                Ok(owner) => {
                    println!(
                        "locked {}: {}",
                        config.app.name,
                        owner.describe(chrono::Utc::now())
                    );
                    exit::OK
                }
                Err(e) => {
                    printer::deploy_error(&e);
                    exit::code(e.kind)
                }
            }
        }
        LockCommand::Release { force } => match hoist_deploy::release_lock(&t, &layout, force) {
            Ok(Some(owner)) => {
                println!(
                    "released the lock of {}: it was {}",
                    config.app.name,
                    owner.describe(chrono::Utc::now())
                );
                exit::OK
            }
            Ok(None) => {
                println!("the lock of {} was not held", config.app.name);
                exit::OK
            }
            Err(e) => {
                printer::deploy_error(&e);
                exit::code(e.kind)
            }
        },
    }
}
