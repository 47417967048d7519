//! `hoist check`: can this host take a deploy? Read-only: nothing is created or changed.

use std::path::{Path, PathBuf};

use hoist_config::{Config, Restart};
use hoist_transport::{Cmd, FileKind, Transport};

use crate::host::Host;
use crate::plan::installer_choice;
use crate::state::HostState;

/// The verdict of one check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CheckStatus {
    Ok,
    Warning,
    Failed,
}

/// One line of `hoist check`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct CheckItem {
    pub host: String,
    pub what: String,
    pub status: CheckStatus,
    pub detail: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
}

/// Minimum free space below which `check` warns.
const LOW_DISK: u64 = 1 << 30;

/// Checks the target: root writable, `current` a symlink, the journal readable, the
/// interpreter and installer present, disk space, the restart commands present.
pub fn check(config: &Config, target: &Host) -> Vec<CheckItem> {
    let t = target.t();
    let layout = &target.layout;
    let host = target.name.clone();
    let item = |what: &str, status, detail: String, hint: Option<String>| CheckItem {
        host: host.clone(),
        what: what.into(),
        status,
        detail,
        hint,
    };
    let mut items = Vec::new();

    let existing = nearest_existing(t, &layout.root);
    let writable = t
        .exec(&Cmd::new("test").arg("-w").path_arg(&existing))
        .is_ok_and(|o| o.success());
    items.push(if writable {
        let detail = if existing == layout.root {
            format!("{} is writable", layout.root.display())
        } else {
            format!(
                "{} will be created in {} (writable)",
                layout.root.display(),
                existing.display()
            )
        };
        item("root", CheckStatus::Ok, detail, None)
    } else {
        item(
            "root",
            CheckStatus::Failed,
            format!("{} is not writable by this user", existing.display()),
            Some(format!(
                "create {} and give it to the deploying user",
                layout.root.display()
            )),
        )
    });

    match HostState::read(t, layout) {
        Ok(state) => items.push(item(
            "releases",
            CheckStatus::Ok,
            match &state.current {
                Some(id) => format!("current is {id}; {} releases on disk", state.existing.len()),
                None => "nothing deployed yet".into(),
            },
            None,
        )),
        Err(e) => items.push(item(
            "releases",
            CheckStatus::Failed,
            e.message.clone(),
            e.hints.first().cloned(),
        )),
    }

    match hoist_pyenv::probe_interpreter(t, &target.python) {
        Ok(interp) => {
            items.push(item(
                "python",
                CheckStatus::Ok,
                format!(
                    "{} is Python {} ({})",
                    config.app.python, interp.version, interp.executable
                ),
                None,
            ));
            let choice = installer_choice(config.app.installer);
            match hoist_pyenv::probe_installer(t, &interp, choice) {
                Ok(installer) => items.push(item(
                    "installer",
                    CheckStatus::Ok,
                    format!("{installer:?}"),
                    None,
                )),
                Err(e) => items.push(item("installer", CheckStatus::Failed, e.to_string(), None)),
            }
        }
        Err(e) => items.push(item(
            "python",
            CheckStatus::Failed,
            e.to_string(),
            Some("install Python 3 on the host or set app.python".into()),
        )),
    }

    match t.free_bytes(&existing) {
        Ok(free) if free < LOW_DISK => items.push(item(
            "disk",
            CheckStatus::Warning,
            format!("only {} MiB free under {}", free >> 20, existing.display()),
            Some("each new environment needs room; prune or grow the disk".into()),
        )),
        Ok(free) => items.push(item(
            "disk",
            CheckStatus::Ok,
            format!("{} MiB free", free >> 20),
            None,
        )),
        Err(e) => items.push(item("disk", CheckStatus::Warning, e.to_string(), None)),
    }

    for process in &config.processes {
        let what = format!("restart {}", process.name);
        let (program, found) = match &process.restart {
            Restart::Command { command } => {
                let first = command
                    .split_whitespace()
                    .find(|w| !w.contains('='))
                    .unwrap_or("");
                (
                    first.to_string(),
                    program_exists(t, first, &config.app.source),
                )
            }
            Restart::Supervisor { .. } => (
                "supervisorctl".into(),
                program_exists(t, "supervisorctl", Path::new("/")),
            ),
            Restart::Systemd { .. } => (
                "systemctl".into(),
                program_exists(t, "systemctl", Path::new("/")),
            ),
            Restart::UwsgiChain { fifo } => (
                fifo.display().to_string(),
                t.kind(fifo).is_ok_and(|k| k != FileKind::Missing),
            ),
            Restart::GunicornHup { pidfile } => (pidfile.display().to_string(), true),
        };
        items.push(if found {
            item(&what, CheckStatus::Ok, format!("{program} found"), None)
        } else {
            item(
                &what,
                CheckStatus::Failed,
                format!("{program} not found"),
                Some(
                    "fix the process's restart settings in hoist.toml, or install it on the host"
                        .into(),
                ),
            )
        });
    }
    items
}

fn nearest_existing(t: &dyn Transport, path: &Path) -> PathBuf {
    let mut p = path.to_path_buf();
    while !t.kind(&p).is_ok_and(FileKind::exists) {
        match p.parent() {
            Some(parent) => p = parent.to_path_buf(),
            None => break,
        }
    }
    p
}

/// A command word exists: a path relative to the project (shipped with the release), or a
/// program on the host's PATH.
fn program_exists(t: &dyn Transport, program: &str, source: &Path) -> bool {
    if program.is_empty() {
        return false;
    }
    if program.contains('/') {
        return source.join(program).is_file() || Path::new(program).is_file();
    }
    t.exec(&Cmd::new("bash").args(["-c", "command -v \"$1\"", "hoist-check", program]))
        .is_ok_and(|o| o.success())
}
