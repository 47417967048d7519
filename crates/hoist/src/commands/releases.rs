//! `hoist releases` and `hoist releases mark-good ID`.

use std::path::Path;

use hoist_release::ReleaseId;

use crate::cli::{HostsOutputArgs, MarkGoodArgs, ReleasesArgs, ReleasesCommand};
use crate::command_error::CommandError;
use crate::commands::{command_line, fleet, load_config, lock_wait};
use crate::printer::{self, tables, Printer};

pub fn run(
    args: &ReleasesArgs,
    config: Option<&Path>,
    printer: Printer,
) -> Result<(), CommandError> {
    match &args.command {
        Some(ReleasesCommand::MarkGood(mark)) => mark_good(mark, config, printer),
        None if args.history => history(&args.list, config, printer),
        None => list(&args.list, config, printer),
    }
}

/// `hoist releases mark-good ID`.
fn mark_good(
    args: &MarkGoodArgs,
    config: Option<&Path>,
    printer: Printer,
) -> Result<(), CommandError> {
    let config = load_config(config)?;
    let id = ReleaseId::parse(&args.id).map_err(|e| {
        CommandError::config(format!("mark-good: {e}"))
            .hint("`hoist releases` lists the release ids")
    })?;
    let lock_wait = lock_wait(args.lock_wait.as_deref(), &config)?;
    let fleet = fleet(&config, &args.target)?;
    let sink = printer::deploy::events(printer, fleet.hosts.len());
    let hosts = hoist_deploy::mark_good(
        &config,
        &fleet,
        &id,
        &hoist_deploy::who(),
        &command_line(),
        lock_wait,
        &sink,
    )?;
    printer.data(format!(
        "marked {id} good on {}; it can be a rollback target again",
        hosts.join(", ")
    ));
    Ok(())
}

/// `hoist releases --history`: the journal of every host, as outcomes.
fn history(
    args: &HostsOutputArgs,
    config: Option<&Path>,
    printer: Printer,
) -> Result<(), CommandError> {
    let printer = printer.with_json(args.json);
    let config = load_config(config)?;
    let fleet = fleet(&config, &args.target)?;
    let mut per_host = Vec::new();
    for (host, rows) in fleet
        .hosts
        .iter()
        .zip(fleet.each(|_, h| hoist_deploy::journal_history(h)))
    {
        per_host.push((host.name.clone(), rows?));
    }
    tables::history(printer, &per_host);
    Ok(())
}

fn list(
    args: &HostsOutputArgs,
    config: Option<&Path>,
    printer: Printer,
) -> Result<(), CommandError> {
    let printer = printer.with_json(args.json);
    let config = load_config(config)?;
    let fleet = fleet(&config, &args.target)?;
    let mut per_host = Vec::new();
    for (host, rows) in fleet
        .hosts
        .iter()
        .zip(fleet.each(|_, h| hoist_deploy::releases(h)))
    {
        let mut rows = rows?;
        for row in &mut rows {
            row.message = row
                .commit
                .as_deref()
                .and_then(|c| commit_subject(&config.app.source, c));
        }
        per_host.push((host.name.clone(), rows));
    }
    if per_host.len() > 1 {
        tables::fleet_releases(printer, &per_host);
    } else {
        let rows = per_host.pop().map(|(_, rows)| rows).unwrap_or_default();
        tables::releases(printer, &config, &rows);
    }
    Ok(())
}

/// The first line of `commit`'s message, from the repository of the app's source on this
/// machine; `None` when it is not there (another clone, a shallow one).
fn commit_subject(source: &Path, commit: &str) -> Option<String> {
    let sha = commit.split_once('-').map_or(commit, |(sha, _)| sha);
    if sha.is_empty() || !sha.chars().all(|c| c.is_ascii_hexdigit()) {
        return None;
    }
    let out = std::process::Command::new("git")
        .arg("-C")
        .arg(source)
        .args(["log", "-1", "--format=%s", sha, "--"])
        .stderr(std::process::Stdio::null())
        .output()
        .ok()?;
    let subject = String::from_utf8_lossy(&out.stdout).trim().to_string();
    (out.status.success() && !subject.is_empty()).then_some(subject)
}
