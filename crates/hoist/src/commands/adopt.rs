//! `hoist adopt`.

use std::path::Path;

use anstream::println;

use crate::cli::HostsOutputArgs;
use crate::commands::{command_line, fleet, load_config};
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
    let sink = printer::events(args.json);
    match hoist_deploy::adopt(
        &fleet,
        &hoist_deploy::who(),
        &config.app.name,
        &command_line(),
        &sink,
    ) {
        Ok(adopted) => {
            for host in adopted {
                let ids: Vec<String> = host.releases.iter().map(ToString::to_string).collect();
                if args.json {
                    printer::json_line(&serde_json::json!({
                        "event": "adopted", "host": host.host, "releases": ids,
                    }));
                } else if ids.is_empty() {
                    println!("{}: nothing to adopt", host.host);
                } else {
                    println!("{}: adopted {}", host.host, ids.join(", "));
                }
            }
            exit::OK
        }
        Err(e) => {
            printer::deploy_error(&e);
            exit::code(e.kind)
        }
    }
}
