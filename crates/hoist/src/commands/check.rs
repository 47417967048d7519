//! `hoist check`.

use std::path::Path;

use anstream::println;
use hoist_deploy::CheckStatus;
use owo_colors::OwoColorize;

use crate::cli::HostsOutputArgs;
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
    let items: Vec<_> = fleet
        .each(|_, host| hoist_deploy::check(&config, host))
        .into_iter()
        .flatten()
        .collect();
    let failed = items.iter().any(|i| i.status == CheckStatus::Failed);
    if args.json {
        printer::json_line(&items);
    } else {
        println!("config    {} is valid", config.path.display());
        for item in &items {
            let mark = match item.status {
                CheckStatus::Ok => "ok".green().to_string(),
                CheckStatus::Warning => "warning".yellow().to_string(),
                CheckStatus::Failed => "FAILED".red().bold().to_string(),
            };
            println!("{}  {mark} {}: {}", item.host, item.what, item.detail);
            if let Some(hint) = &item.hint {
                println!("{}  hint: {hint}", item.host);
            }
        }
    }
    if failed {
        exit::BEFORE_SWITCH
    } else {
        exit::OK
    }
}
