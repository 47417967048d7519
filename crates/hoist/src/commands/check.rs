//! `hoist check`.

use std::path::Path;

use anstream::println;
use hoist_deploy::{CheckItem, CheckStatus};
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
    let mut items = placeholder_items(&config);
    items.extend(
        fleet
            .each(|_, host| hoist_deploy::check(&config, host))
            .into_iter()
            .flatten(),
    );
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

/// A warning for each guess `hoist init` marked PLACEHOLDER that is still in hoist.toml.
fn placeholder_items(config: &hoist_config::Config) -> Vec<CheckItem> {
    let text = std::fs::read_to_string(&config.path).unwrap_or_default();
    hoist_config::placeholders(&text)
        .into_iter()
        .map(|p| CheckItem {
            host: "config".into(),
            what: "placeholder".into(),
            status: CheckStatus::Warning,
            detail: format!(
                "{}:{}: {} is a guess of `hoist init`: {}",
                config.path.display(),
                p.line,
                p.setting,
                p.advice
            ),
            hint: Some("check the value, then delete its `# PLACEHOLDER:` comment".into()),
        })
        .collect()
}
