//! `hoist setup [ENV] [--apply]`: show, then write, what a server needs for hoist's graceful
//! restarts: the app server's config and hoist's loader, a supervisor program or systemd unit,
//! and an nginx server block. Writes only with --apply; never installs packages.

use std::path::Path;

use anstream::{eprintln, print, println};
use clap::Args;
use hoist_setup::Change;
use hoist_transport::Local;

use crate::commands::load_config;
use crate::{exit, printer};

#[derive(Args, Debug)]
pub struct SetupArgs {
    /// The environment to set up. Until environments arrive, setup targets this machine.
    pub env: Option<String>,
    /// Write the files that differ (default: only show the diff).
    #[arg(long)]
    pub apply: bool,
}

pub fn run(args: &SetupArgs, config: Option<&Path>) -> i32 {
    let config = match load_config(config) {
        Ok(c) => c,
        Err(code) => return code,
    };
    // Written through the Transport trait, so the same code serves SSH hosts later.
    let t = Local::default();
    let plan = match hoist_setup::plan(&config, &t) {
        Ok(plan) => plan,
        Err(e) => {
            printer::error(
                &format!("setup of {}: {e}", config.app.name),
                &["fix the template or the [setup] table in hoist.toml".into()],
            );
            return exit::CONFIG;
        }
    };
    if let Some(env) = &args.env {
        eprintln!(
            "setup: environment {env}: targeting this machine ({})",
            plan.host
        );
    }
    for file in &plan.files {
        println!(
            "{} {} (from {})",
            file.change().word(),
            file.path.display(),
            file.template
        );
        if file.change() != Change::Unchanged {
            print!("{}", file.diff());
        }
    }
    for missing in &plan.missing {
        printer::warning(&format!(
            "{} is missing on {}: install it with `apt-get install {}` (hoist does not install packages)",
            missing.command, plan.host, missing.package
        ));
    }
    if !plan.has_changes() {
        eprintln!("setup: {} is up to date", plan.host);
        return exit::OK;
    }
    if !args.apply {
        eprintln!("setup: nothing written; run `hoist setup --apply` to write the files above");
        return exit::OK;
    }
    match hoist_setup::apply(&plan, &t) {
        Ok(written) => {
            for path in written {
                eprintln!("wrote {}", path.display());
            }
            eprintln!("setup: load them with `supervisorctl update` (or `systemctl daemon-reload`) and `nginx -t && nginx -s reload`");
            exit::OK
        }
        Err(e) => {
            printer::error(&format!("setup of {}: {e}", config.app.name), &[]);
            exit::INTERNAL
        }
    }
}
