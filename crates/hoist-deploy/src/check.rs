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
    let transport = target.transport();
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

    let existing = nearest_existing(transport, &layout.root);
    let writable = transport
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

    let mut current = None;
    match HostState::read(transport, layout) {
        Ok(state) => items.push(item(
            "releases",
            CheckStatus::Ok,
            match state.current.clone().map(|id| current.insert(id).clone()) {
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

    // The health URL is fetched with the host's Python; `python3` when the configured one is
    // missing (that is reported above).
    let mut python = "python3".to_string();
    match hoist_pyenv::probe_interpreter(transport, &target.python) {
        Ok(interpreter) => {
            python.clone_from(&interpreter.executable);
            items.push(item(
                "python",
                CheckStatus::Ok,
                format!(
                    "{} is Python {} ({})",
                    config.app.python, interpreter.version, interpreter.executable
                ),
                None,
            ));
            let choice = installer_choice(config.app.installer);
            match hoist_pyenv::probe_installer(transport, &interpreter, choice) {
                Ok(installer) => items.push(item(
                    "installer",
                    CheckStatus::Ok,
                    installer.to_string(),
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

    match transport.free_bytes(&existing) {
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

    // `become = true` applies to the process queries, as to the restarts they stand for.
    let privileged = hoist_transport::Privileged(transport);
    for process in &config.processes {
        let (status, detail, hint) = probe_supervised_master(&privileged, process)
            .unwrap_or_else(|| probe_restart(&privileged, config, process));
        items.push(item(
            &format!("restart {}", process.name),
            status,
            detail,
            hint,
        ));
    }

    if let Some(health) = &config.health {
        let (status, detail, hint) =
            probe_health(config, target, &health.probe, &python, current.as_ref());
        items.push(item("health", status, detail, hint));
    }
    items
}

/// Asks the app on the host what the deploy's health check would ask, once, and says what it
/// got: the URL is fetched from the server itself (with its Python), so an app bound to
/// 127.0.0.1 there answers; a health command runs in the live release. An app that does not
/// serve is a warning: it does not stop a deploy, which restarts it.
fn probe_health(
    config: &Config,
    target: &Host,
    probe: &hoist_config::HealthProbe,
    python: &str,
    current: Option<&hoist_release::ReleaseId>,
) -> (CheckStatus, String, Option<String>) {
    let transport = crate::app_env::app_transport(config, target);
    let not_serving = || {
        Some(match current {
            Some(_) => "the live release does not serve as the health check expects: `hoist logs` shows what the app says".to_string(),
            None => "nothing is deployed yet: the first deploy starts the app".to_string(),
        })
    };
    match probe {
        hoist_config::HealthProbe::Http { url, status, body } => {
            let cmd = Cmd::new(python).args(["-c", FETCH, url.as_str()]);
            let out = match transport.exec(&cmd) {
                Ok(out) if out.success() => out,
                Ok(out) => {
                    return (
                        CheckStatus::Warning,
                        format!("GET {url} on {} failed: {}", target.name, out.tail(2)),
                        None,
                    )
                }
                Err(e) => return (CheckStatus::Warning, e.to_string(), None),
            };
            let text = out.stdout_text();
            let (first, answer) = text.split_once('\n').unwrap_or((text.as_str(), ""));
            let Ok(code) = first.trim().parse::<u16>() else {
                let why = first.trim().strip_prefix("error ").unwrap_or(first.trim());
                return (
                    CheckStatus::Warning,
                    format!("GET {url} on {}: no answer ({why})", target.name),
                    not_serving(),
                );
            };
            let start: String = answer
                .lines()
                .next()
                .unwrap_or("")
                .chars()
                .take(80)
                .collect();
            if code != *status {
                return (
                    CheckStatus::Warning,
                    format!(
                        "GET {url} on {}: {code}, expected {status}; it said {start:?}",
                        target.name
                    ),
                    not_serving(),
                );
            }
            match body {
                Some(want) if !answer.contains(want.as_str()) => (
                    CheckStatus::Warning,
                    format!(
                        "GET {url} on {}: {code} without {want:?} in its body; it said {start:?}",
                        target.name
                    ),
                    not_serving(),
                ),
                Some(want) => (
                    CheckStatus::Ok,
                    format!(
                        "GET {url} on {}: {code} with {want:?} in its body",
                        target.name
                    ),
                    None,
                ),
                None => (
                    CheckStatus::Ok,
                    format!("GET {url} on {}: {code}", target.name),
                    None,
                ),
            }
        }
        hoist_config::HealthProbe::Command { command } => {
            let Some(id) = current else {
                return (
                    CheckStatus::Ok,
                    format!("`{command}` runs once a release is live; nothing deployed yet"),
                    None,
                );
            };
            let ctx = crate::activate::restart_context(config, target, id);
            let mut cmd = Cmd::new("timeout")
                .args(["30s", "bash", "-eo", "pipefail", "-c"])
                .arg(command.clone())
                .cwd(&target.layout.release(id));
            for (k, v) in ctx.env() {
                cmd = cmd.env(k, v);
            }
            match transport.exec(&cmd) {
                Ok(out) if out.success() => (
                    CheckStatus::Ok,
                    format!("`{command}` passed on {} in {id}", target.name),
                    None,
                ),
                Ok(out) => (
                    CheckStatus::Warning,
                    format!(
                        "`{command}` exited {} on {} in {id}: {}",
                        out.status,
                        target.name,
                        out.tail(2)
                    ),
                    not_serving(),
                ),
                Err(e) => (CheckStatus::Warning, e.to_string(), None),
            }
        }
    }
}

/// Fetches `argv[1]` with Python's standard library (on every host hoist deploys to): prints
/// the status on the first line, then the start of the body; or `error <reason>`.
const FETCH: &str = r#"import sys, urllib.request, urllib.error
try:
    r = urllib.request.urlopen(sys.argv[1], timeout=5)
    code, body = r.status, r.read(4096)
except urllib.error.HTTPError as e:
    code, body = e.code, e.read(4096)
except Exception as e:
    print("error", getattr(e, "reason", e))
    sys.exit(0)
print(code)
sys.stdout.write(body.decode("utf-8", "replace"))"#;

/// A gunicorn or uWSGI master run by a supervisor program hoist knows: the deploy starts the
/// program when it is not running (the first deploy, after a reboot), so what must hold then is
/// that supervisord has it. `None` when the master is running (its own probe follows) or hoist
/// knows no program.
fn probe_supervised_master(
    t: &dyn Transport,
    process: &hoist_config::Process,
) -> Option<(CheckStatus, String, Option<String>)> {
    let Some(hoist_config::Supervised::Program(program)) = &process.supervised else {
        return None;
    };
    let failed = |detail: String, hint: &str| (CheckStatus::Failed, detail, Some(hint.to_string()));
    let programs = vec![program.clone()];
    match hoist_service::supervisor::query_status_in(t, process.supervisor_conf.as_deref(), &programs) {
        Err(e) => Some(failed(e.to_string(), unreachable_hint(&e))),
        Ok(Err(problem)) => Some(failed(problem.detail(), problem.hint())),
        Ok(Ok(found)) => match found.iter().find(|s| &s.name == program) {
            None => Some(failed(
                format!("supervisord has no program {program:?}"),
                "`hoist setup --apply` writes and loads it, or name the master's program with `program` in hoist.toml",
            )),
            Some(s) if s.state == "RUNNING" => None,
            Some(s) => Some((
                CheckStatus::Ok,
                format!("supervisor program {program} is {}; the deploy starts it", s.state),
                None,
            )),
        },
    }
}

/// A command line's words as the shell splits them at the top level: whitespace inside quotes
/// or `$(...)` does not split (`HOIST_PORT=$(cat "$HOIST_ROOT/port") bin/restart-web` is two
/// words). Quotes are kept; this only finds where the program is.
fn shell_words(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let (mut quote, mut depth) = (None, 0usize);
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match (quote, c) {
            (Some(q), _) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '\'' | '"') => quote = Some(c),
            (None, '$') if chars.peek() == Some(&'(') => {
                word.push(c);
                depth += 1;
                word.push(chars.next().unwrap_or('('));
                continue;
            }
            (None, ')') if depth > 0 => depth -= 1,
            (None, c) if c.is_whitespace() && depth == 0 => {
                if !word.is_empty() {
                    words.push(std::mem::take(&mut word));
                }
                continue;
            }
            _ => {}
        }
        word.push(c);
    }
    if !word.is_empty() {
        words.push(word);
    }
    words
}

/// `NAME=value`, a variable assignment before the program.
fn is_assignment(word: &str) -> bool {
    word.split_once('=').is_some_and(|(name, _)| {
        !name.is_empty()
            && !name.starts_with(|c: char| c.is_ascii_digit())
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
    })
}

/// The hint for a probe that could not run: sudo's refusal (`become`) has its own fix.
fn unreachable_hint(e: &hoist_transport::TransportError) -> &'static str {
    match e {
        hoist_transport::TransportError::SudoRefused { .. } => {
            "add that line, or set become = false for this host if its login user may run supervisorctl itself"
        }
        _ => "check that the host is reachable",
    }
}

/// What the process's restart strategy needs, probed on the host: every ok is something seen.
fn probe_restart(
    transport: &dyn Transport,
    config: &Config,
    process: &hoist_config::Process,
) -> (CheckStatus, String, Option<String>) {
    let failed = |detail: String, hint: &str| (CheckStatus::Failed, detail, Some(hint.to_string()));
    match &process.restart {
        Restart::Command { command } => {
            let words = shell_words(command);
            let first = words
                .iter()
                .find(|w| !is_assignment(w))
                .map_or("", String::as_str);
            if program_exists(transport, first, &config.app.source) {
                (CheckStatus::Ok, format!("{first} found"), None)
            } else {
                failed(
                    format!("{first} not found"),
                    "fix the process's restart command in hoist.toml, or install it on the host",
                )
            }
        }
        Restart::Supervisor { program } => {
            let programs = hoist_service::supervisor::program_names(program);
            match hoist_service::supervisor::query_status_in(
                transport,
                process.supervisor_conf.as_deref(),
                &programs,
            ) {
                Err(e) => failed(e.to_string(), unreachable_hint(&e)),
                Ok(Err(problem)) => failed(problem.detail(), problem.hint()),
                Ok(Ok(found)) => {
                    let mut seen = Vec::new();
                    for name in &programs {
                        match found.iter().find(|s| &s.name == name) {
                            Some(s) => seen.push(format!("{name} is {}", s.state)),
                            None => {
                                return failed(
                                    format!("supervisord has no program {name:?}"),
                                    "`hoist setup --apply` writes it (then `supervisorctl update`), or fix `program` in hoist.toml",
                                )
                            }
                        }
                    }
                    (
                        CheckStatus::Ok,
                        format!("supervisor program {}", seen.join(", ")),
                        None,
                    )
                }
            }
        }
        Restart::Systemd { unit } => {
            // sd_booted(3): systemd runs as the init system exactly when this directory exists.
            let booted = transport
                .kind(Path::new("/run/systemd/system"))
                .is_ok_and(|k| k == FileKind::Dir);
            if !booted {
                return failed(
                    format!("systemd is not running on this host (no /run/systemd/system), so it cannot restart {unit}"),
                    "use another restart strategy (supervisor, gunicorn-hup, uwsgi-chain or command)",
                );
            }
            let out = transport.exec(
                &Cmd::new("systemctl")
                    .args(["show", "--property=LoadState", "--value"])
                    .arg(unit.clone()),
            );
            match out {
                Ok(o) if o.success() && o.stdout_text().trim() == "loaded" => {
                    (CheckStatus::Ok, format!("systemd unit {unit} is loaded"), None)
                }
                Ok(o) => failed(
                    format!("systemd has no unit {unit} (LoadState: {})", o.tail(1).trim()),
                    "`hoist setup --apply` writes it (then `systemctl daemon-reload`), or fix `unit` in hoist.toml",
                ),
                Err(e) => failed(e.to_string(), unreachable_hint(&e)),
            }
        }
        Restart::UwsgiChain { fifo } => {
            let is_fifo = transport
                .exec(&Cmd::new("test").arg("-p").path_arg(fifo))
                .is_ok_and(|o| o.success());
            if is_fifo {
                (
                    CheckStatus::Ok,
                    format!("{} is a FIFO (uWSGI's master-fifo)", fifo.display()),
                    None,
                )
            } else {
                failed(
                    format!("{} is not a FIFO: no uWSGI master is running with it as master-fifo", fifo.display()),
                    "start uWSGI with master-fifo set to this path (the ini `hoist setup` writes does), or fix `fifo` in hoist.toml",
                )
            }
        }
        Restart::GunicornHup { pidfile } => {
            let hint = "start gunicorn with this pidfile (the config `hoist setup` writes does) before deploying, or fix `pidfile` in hoist.toml";
            let pid = match transport.read_file(pidfile) {
                Ok(Some(bytes)) => String::from_utf8_lossy(&bytes).trim().to_string(),
                Ok(None) => {
                    return failed(
                        format!(
                            "{} does not exist: no gunicorn master to reload",
                            pidfile.display()
                        ),
                        hint,
                    )
                }
                Err(e) => return failed(e.to_string(), hint),
            };
            if pid.is_empty() || !pid.chars().all(|c| c.is_ascii_digit()) {
                return failed(
                    format!("{} holds {pid:?}, not a pid", pidfile.display()),
                    hint,
                );
            }
            let alive = transport
                .exec(&Cmd::new("test").arg("-d").arg(format!("/proc/{pid}")))
                .is_ok_and(|o| o.success());
            if alive {
                (
                    CheckStatus::Ok,
                    format!("gunicorn master {pid} is running ({})", pidfile.display()),
                    None,
                )
            } else {
                failed(
                    format!(
                        "{} names pid {pid}, which is not running",
                        pidfile.display()
                    ),
                    hint,
                )
            }
        }
    }
}

fn nearest_existing(transport: &dyn Transport, path: &Path) -> PathBuf {
    let mut p = path.to_path_buf();
    while !transport.kind(&p).is_ok_and(FileKind::exists) {
        match p.parent() {
            Some(parent) => p = parent.to_path_buf(),
            None => break,
        }
    }
    p
}

/// A command word exists: a path relative to the project (shipped with the release), or a
/// program on the host's PATH.
fn program_exists(transport: &dyn Transport, program: &str, source: &Path) -> bool {
    if program.is_empty() {
        return false;
    }
    if program.contains('/') {
        return source.join(program).is_file() || Path::new(program).is_file();
    }
    transport
        .exec(&Cmd::new("bash").args(["-c", "command -v \"$1\"", "hoist-check", program]))
        .is_ok_and(|o| o.success())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_program_is_found_after_assignments_with_spaces_inside() {
        let words = shell_words(r#"HOIST_PORT=$(cat "$HOIST_ROOT/port") bin/restart-web --now"#);
        assert_eq!(
            words,
            [
                r#"HOIST_PORT=$(cat "$HOIST_ROOT/port")"#,
                "bin/restart-web",
                "--now"
            ]
        );
        assert!(is_assignment(&words[0]));
        assert!(!is_assignment("bin/restart-web"));
        assert!(!is_assignment("--opt=1"));
        assert_eq!(
            shell_words("A='x y' B=\"z\"  run"),
            ["A='x y'", "B=\"z\"", "run"]
        );
    }
}
