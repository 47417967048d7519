//! `hoist import`: bring another tool's configuration over.

use std::path::{Path, PathBuf};

use crate::command_error::CommandError;
use crate::printer::Printer;
use crate::warn_user;

/// `hoist import ...`
#[derive(clap::Subcommand, Debug)]
pub enum ImportCommand {
    /// Convert a CircleCI 2.0/2.1 config (without orbs) into hoist's [pipeline].
    Circleci(CircleciArgs),
    /// Convert an Ansible INI inventory and group_vars/all into a hoist.toml.
    Ansible(super::import_ansible::AnsibleArgs),
}

/// `hoist import circleci`
#[derive(clap::Args, Debug)]
pub struct CircleciArgs {
    /// The CircleCI config.
    #[arg(default_value = ".circleci/config.yml", value_name = "PATH")]
    pub path: PathBuf,
    /// Append the [pipeline] to hoist.toml instead of printing it.
    #[arg(long)]
    pub write: bool,
}

/// Runs a `hoist import` command.
pub fn run(
    cmd: ImportCommand,
    config: Option<&Path>,
    printer: Printer,
) -> Result<(), CommandError> {
    match cmd {
        ImportCommand::Circleci(args) => circleci(&args, config, printer),
        ImportCommand::Ansible(args) => super::import_ansible::run(&args, config, printer),
    }
}

fn circleci(
    args: &CircleciArgs,
    config: Option<&Path>,
    printer: Printer,
) -> Result<(), CommandError> {
    let yaml = std::fs::read_to_string(&args.path).map_err(|e| {
        CommandError::config(format!("cannot read {}: {e}", args.path.display()))
            .hint("pass the config's path: hoist import circleci .circleci/config.yml")
    })?;
    let target = config
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("hoist.toml"));
    // The app's requirements files sit beside hoist.toml (or in the current directory).
    let project = target
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf);
    let conversion =
        hoist_pipeline::import::circleci(&yaml, &args.path.display().to_string(), Some(&project))?;
    for note in &conversion.notes {
        printer.info(format!("note: {note}"));
    }
    for item in &conversion.unconverted {
        warn_user!(printer, "not converted: {item}");
    }
    if !args.write {
        printer.raw(&conversion.toml);
        return Ok(());
    }
    let existing = std::fs::read_to_string(&target).unwrap_or_default();
    if hoist_config::pipeline::parse(&target, &existing).is_ok_and(|p| p.is_some())
        || existing
            .lines()
            .any(|l| l.trim_start().starts_with("[pipeline"))
    {
        return Err(
            CommandError::config(format!("{} already has a [pipeline]", target.display())).hint(
                "remove it first, or run without --write and merge the printed pipeline by hand",
            ),
        );
    }
    let text = if existing.is_empty() {
        conversion.toml.clone()
    } else {
        format!("{}\n\n{}", existing.trim_end(), conversion.toml)
    };
    std::fs::write(&target, text)
        .map_err(|e| CommandError::internal(format!("cannot write {}: {e}", target.display())))?;
    printer.outcome(format!(
        "wrote the pipeline to {}; run it with: hoist ci run",
        target.display()
    ));
    Ok(())
}
