//! `hoist setup [ENV] [--apply]`: show, then write, what a server needs for hoist's graceful
//! restarts: the app server's config and hoist's loader, a supervisor program or systemd unit,
//! and an nginx server block. Writes only with --apply; never installs packages.

use std::path::Path;

use clap::Args;
use hoist_setup::Change;
use hoist_transport::Local;

use crate::command_error::CommandError;
use crate::commands::load_config;
use crate::printer::Printer;
use crate::warn_user;

#[derive(Args, Debug)]
pub struct SetupArgs {
    /// The environment to set up. Until environments arrive, setup targets this machine.
    pub env: Option<String>,
    /// Write the files that differ (default: only show the diff).
    #[arg(long)]
    pub apply: bool,
}

pub fn run(args: &SetupArgs, config: Option<&Path>, printer: Printer) -> Result<(), CommandError> {
    let config = load_config(config)?;
    let app = &config.app.name;
    // Written through the Transport trait, so the same code serves SSH hosts later.
    let t = Local::default();
    let plan = hoist_setup::plan(&config, &t).map_err(|e| {
        CommandError::from(e)
            .prefixed(&format!("setup of {app}"))
            .hint("fix the template or the [setup] table in hoist.toml")
    })?;
    if let Some(env) = &args.env {
        printer.info(format!(
            "setup: environment {env}: targeting this machine ({})",
            plan.host
        ));
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
        printer.outcome(format!("setup: {} is up to date", plan.host));
        return Ok(());
    }
    if !args.apply {
        printer
            .outcome("setup: nothing written; run `hoist setup --apply` to write the files above");
        return Ok(());
    }
    let written = hoist_setup::apply(&plan, &t)
        .map_err(|e| CommandError::from(e).prefixed(&format!("setup of {app}")))?;
    for path in written {
        printer.outcome(format!("wrote {}", path.display()));
    }
    printer.info("setup: load them with `supervisorctl update` (or `systemctl daemon-reload`) and `nginx -t && nginx -s reload`");
    Ok(())
}
