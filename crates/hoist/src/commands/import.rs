//! `hoist import`: bring another tool's configuration over.

use std::path::{Path, PathBuf};

use anstream::eprintln;

use crate::printer;

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

/// Runs a `hoist import` command; returns the exit code.
pub fn run(cmd: ImportCommand, config: Option<&Path>) -> i32 {
    match cmd {
        ImportCommand::Circleci(args) => circleci(&args, config),
        ImportCommand::Ansible(args) => super::import_ansible::run(&args, config),
    }
}

fn circleci(args: &CircleciArgs, config: Option<&Path>) -> i32 {
    let yaml = match std::fs::read_to_string(&args.path) {
        Ok(t) => t,
        Err(e) => {
            printer::error(
                &format!("cannot read {}: {e}", args.path.display()),
                &["pass the config's path: hoist import circleci .circleci/config.yml".into()],
            );
            return crate::exit::CONFIG;
        }
    };
    let target = config
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("hoist.toml"));
    // The app's requirements files sit beside hoist.toml (or in the current directory).
    let project = target
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf);
    let conversion = match hoist_pipeline::import::circleci(
        &yaml,
        &args.path.display().to_string(),
        Some(&project),
    ) {
        Ok(c) => c,
        Err(e) => {
            printer::error(&e.to_string(), &[e.hint()]);
            return crate::exit::CONFIG;
        }
    };
    for note in &conversion.notes {
        eprintln!("note: {note}");
    }
    for item in &conversion.unconverted {
        printer::warning(&format!("not converted: {item}"));
    }
    if !args.write {
        print!("{}", conversion.toml);
        return crate::exit::OK;
    }
    let existing = std::fs::read_to_string(&target).unwrap_or_default();
    if hoist_config::pipeline::parse(&target, &existing).is_ok_and(|p| p.is_some())
        || existing
            .lines()
            .any(|l| l.trim_start().starts_with("[pipeline"))
    {
        printer::error(
            &format!("{} already has a [pipeline]", target.display()),
            &[
                "remove it first, or run without --write and merge the printed pipeline by hand"
                    .into(),
            ],
        );
        return crate::exit::CONFIG;
    }
    let text = if existing.is_empty() {
        conversion.toml.clone()
    } else {
        format!("{}\n\n{}", existing.trim_end(), conversion.toml)
    };
    if let Err(e) = std::fs::write(&target, text) {
        printer::error(&format!("cannot write {}: {e}", target.display()), &[]);
        return crate::exit::INTERNAL;
    }
    eprintln!(
        "wrote the pipeline to {}; run it with: hoist ci run",
        target.display()
    );
    crate::exit::OK
}
