//! `hoist setup [ENV] [--apply]`: show, then write, what each host of the environment needs for
//! hoist's graceful restarts: the app server's config and hoist's loader, a supervisor program
//! (or systemd unit) per process, and an nginx server block. Writes only with --apply, then
//! has the host's supervisor load the programs; never installs packages.

use std::path::Path;

use clap::Args;
use hoist_setup::{Change, Reloaded, SetupError, SetupPlan};

use crate::cli::TargetArgs;
use crate::command_error::CommandError;
use crate::commands::{fleet, load_config};
use crate::printer::Printer;
use crate::warn_user;

#[derive(Args, Debug)]
pub struct SetupArgs {
    #[command(flatten)]
    pub target: TargetArgs,
    /// Write the files that differ on each host and load the programs (default: only show
    /// the diff).
    #[arg(long)]
    pub apply: bool,
}

pub fn run(args: &SetupArgs, config: Option<&Path>, printer: Printer) -> Result<(), CommandError> {
    let mut config = load_config(config)?;
    // Every step of setup needs root (files under /etc, the root's owner): `become = true`
    // applies to all of it.
    config.inventory.widen_become();
    let app = &config.app.name;
    let fleet = fleet(&config, &args.target)?;
    let plans =
        fleet.each(|_, host| hoist_setup::plan(&config, &host.layout.root, &*host.transport));
    let mut ready = Vec::new();
    let mut failure = None;
    for (host, plan) in fleet.hosts.iter().zip(plans) {
        match plan {
            Ok(plan) => {
                show(&plan, fleet.hosts.len() > 1, printer);
                ready.push(plan);
            }
            Err(e @ (SetupError::Template { .. } | SetupError::Clash(_))) => {
                return Err(CommandError::from(e)
                    .prefixed(&format!("setup of {app}"))
                    .hint("fix the template or the [setup] and [[process]] tables in hoist.toml"));
            }
            Err(e) => {
                let e = CommandError::from(e).prefixed(&format!("setup of {app} on {}", host.name));
                if let Some(earlier) = failure.replace(e) {
                    printer.warn(&earlier.message);
                }
            }
        }
    }
    if let Some(e) = failure {
        return Err(e);
    }
    if !args.apply {
        if ready.iter().any(SetupPlan::has_changes) {
            printer.outcome(
                "setup: nothing written; run `hoist setup --apply` to write the files above",
            );
        }
        return Ok(());
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
                    printer.outcome(format!("wrote {}", path.display()));
                }
                match reloaded {
                    Reloaded::Loaded(states) => {
                        printer.info(format!("setup: {}: loaded {}", plan.host, states.join(", ")));
                    }
                    Reloaded::NotRunning(why) => warn_user!(
                        printer,
                        "{}: the programs are not loaded: {why}; they load when supervisord starts (or run `supervisorctl update` there)",
                        plan.host
                    ),
                }
            }
            Err(e) => {
                let e = CommandError::from(e).prefixed(&format!("setup of {app} on {}", plan.host));
                if let Some(earlier) = failure.replace(e) {
                    printer.warn(&earlier.message);
                }
            }
        }
    }
    if let Some(e) = failure {
        return Err(e);
    }
    if config.setup.nginx {
        printer.outcome("setup: load the nginx server block with `nginx -t && nginx -s reload`");
    }
    Ok(())
}

/// Prints a host's plan: each file with what applying would do, and the diff.
fn show(plan: &SetupPlan, several: bool, printer: Printer) {
    if several {
        printer.data(format!("host {} ({})", plan.host, plan.root.display()));
    }
    for file in &plan.files {
        printer.data(format!(
            "{} {} (from {})",
            file.change().word(),
            file.path.display(),
            file.template
        ));
        if file.change() != Change::Unchanged {
            printer.raw(&file.diff());
        }
    }
    for missing in &plan.missing {
        warn_user!(
            printer,
            "{} is missing on {}: install it with `apt-get install {}` (hoist does not install packages)",
            missing.command,
            plan.host,
            missing.package
        );
    }
    if !plan.has_changes() {
        printer.info(format!("setup: {} is up to date", plan.host));
    }
}
