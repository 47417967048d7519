//! `hoist setup [ENV] [--apply]`: show, then write, what each host of the environment needs for
//! hoist's graceful restarts: the app server's config and hoist's loader, a supervisor program
//! (or systemd unit) per process, and an nginx server block. Writes only with --apply, then
//! has the host's supervisor load the programs; never installs packages.

use std::path::Path;

use anstream::{eprintln, print, println};
use clap::Args;
use hoist_setup::{Change, Reloaded, SetupError, SetupPlan};

use crate::cli::TargetArgs;
use crate::commands::{fleet, load_config};
use crate::{exit, printer};

#[derive(Args, Debug)]
pub struct SetupArgs {
    #[command(flatten)]
    pub target: TargetArgs,
    /// Write the files that differ on each host and load the programs (default: only show
    /// the diff).
    #[arg(long)]
    pub apply: bool,
}

pub fn run(args: &SetupArgs, config: Option<&Path>) -> i32 {
    let config = match load_config(config) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let fleet = match fleet(&config, &args.target) {
        Ok(f) => f,
        Err(code) => return code,
    };
    let plans =
        fleet.each(|_, host| hoist_setup::plan(&config, &host.layout.root, &*host.transport));
    let mut ready = Vec::new();
    let mut code = exit::OK;
    for (host, plan) in fleet.hosts.iter().zip(plans) {
        match plan {
            Ok(plan) => {
                show(&plan, fleet.hosts.len() > 1);
                ready.push(plan);
            }
            Err(e @ (SetupError::Template { .. } | SetupError::Clash(_))) => {
                printer::error(
                    &format!("setup of {}: {e}", config.app.name),
                    &[
                        "fix the template or the [setup] and [[process]] tables in hoist.toml"
                            .into(),
                    ],
                );
                return exit::CONFIG;
            }
            Err(e) => {
                printer::error(
                    &format!("setup of {} on {}: {e}", config.app.name, host.name),
                    &[],
                );
                code = exit::INTERNAL;
            }
        }
    }
    if code != exit::OK {
        return code;
    }
    if !args.apply {
        if ready.iter().any(SetupPlan::has_changes) {
            eprintln!("setup: nothing written; run `hoist setup --apply` to write the files above");
        }
        return exit::OK;
    }
    let results = fleet.each(|i, host| {
        let plan = &ready[i];
        let written = hoist_setup::apply(plan, &*host.transport)?;
        let reloaded = hoist_setup::reload(plan, &*host.transport)?;
        Ok::<_, SetupError>((written, reloaded))
    });
    for (plan, result) in ready.iter().zip(results) {
        match result {
            Ok((written, reloaded)) => {
                for path in written {
                    eprintln!("wrote {}", path.display());
                }
                match reloaded {
                    Reloaded::Loaded(states) => {
                        eprintln!("setup: {}: loaded {}", plan.host, states.join(", "));
                    }
                    Reloaded::NotRunning(why) => printer::warning(&format!(
                        "{}: the programs are not loaded: {why}; they load when supervisord starts (or run `supervisorctl update` there)",
                        plan.host
                    )),
                }
            }
            Err(e) => {
                printer::error(
                    &format!("setup of {} on {}: {e}", config.app.name, plan.host),
                    &[],
                );
                code = exit::INTERNAL;
            }
        }
    }
    if code == exit::OK && config.setup.nginx {
        eprintln!("setup: load the nginx server block with `nginx -t && nginx -s reload`");
    }
    code
}

/// Prints a host's plan: each file with what applying would do, and the diff.
fn show(plan: &SetupPlan, several: bool) {
    if several {
        println!("host {} ({})", plan.host, plan.root.display());
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
    }
}
