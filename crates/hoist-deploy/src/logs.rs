//! `hoist logs`: the recent log of each `[[process]]`, read where its supervisor keeps it:
//! `supervisorctl tail` for a supervisor program, `journalctl` for a systemd unit. The other
//! restart strategies do not say where the app server writes its log.

use hoist_config::{Config, Process, Restart};
use hoist_service::supervisor::{program_names, Unreachable};
use hoist_transport::{Cmd, Transport as _};

use crate::host::Host;
use crate::DeployError;

/// The last lines of one log of one process.
#[derive(Debug, Clone)]
pub struct ProcessLog {
    /// The `[[process]]` name.
    pub process: String,
    /// Where the lines come from, e.g. `supervisor program web`.
    pub source: String,
    /// The lines, oldest first.
    pub lines: Vec<String>,
}

/// The last `lines` lines of the logs of `process` (every process when `None`) on `host`.
pub fn process_logs(
    config: &Config,
    host: &Host,
    process: Option<&str>,
    lines: usize,
) -> Result<Vec<ProcessLog>, DeployError> {
    let selected: Vec<&Process> = config
        .processes
        .iter()
        .filter(|p| process.is_none_or(|name| p.name == name))
        .collect();
    if selected.is_empty() {
        let known: Vec<&str> = config.processes.iter().map(|p| p.name.as_str()).collect();
        return Err(match process {
            Some(name) => DeployError::config(format!(
                "no [[process]] named {name:?}; hoist.toml has {}",
                if known.is_empty() {
                    "none".to_string()
                } else {
                    known.join(", ")
                }
            )),
            None => DeployError::config("hoist.toml has no [[process]] whose log to show"),
        });
    }
    let mut logs = Vec::new();
    for process in selected {
        match &process.restart {
            Restart::Supervisor { program } => {
                // The program's log as supervisord keeps it (hoist setup's programs send
                // stderr there too: redirect_stderr).
                for name in program_names(program) {
                    let text = run(
                        host,
                        &Cmd::new("supervisorctl").args([
                            "tail".to_string(),
                            format!("-{}", lines.max(1) * 200),
                            name.clone(),
                        ]),
                    )?;
                    logs.push(ProcessLog {
                        process: process.name.clone(),
                        source: format!("supervisor program {name}"),
                        lines: last_lines(&text, lines),
                    });
                }
            }
            Restart::Systemd { unit } => {
                let text = run(
                    host,
                    &Cmd::new("journalctl").args([
                        "--no-pager".to_string(),
                        "-o".to_string(),
                        "short-iso".to_string(),
                        "-n".to_string(),
                        lines.to_string(),
                        "-u".to_string(),
                        unit.clone(),
                    ]),
                )?;
                logs.push(ProcessLog {
                    process: process.name.clone(),
                    source: format!("systemd unit {unit}"),
                    lines: last_lines(&text, lines),
                });
            }
            other => {
                return Err(DeployError::config(format!(
                    "{}: process {:?} restarts with {:?}, which does not say where its log is",
                    host.name,
                    process.name,
                    other.strategy()
                ))
                .hint(
                    "read the file your app server writes, e.g. hoist run -- tail -n 100 <log file>",
                ));
            }
        }
    }
    Ok(logs)
}

/// Runs a log command; its standard output, or an error with what it said.
fn run(host: &Host, cmd: &Cmd) -> Result<String, DeployError> {
    // `become = true` applies to supervisorctl and journalctl, as to restarts.
    let out = hoist_transport::Privileged(host.transport()).exec(cmd)?;
    let said = format!("{}{}", out.stdout_text(), out.stderr_text());
    // A log can say anything: only a one-line answer is read as supervisorctl's own error.
    let one_line = said.trim().lines().count() <= 1;
    if let Some(unreachable) = Unreachable::from_output(&said).filter(|_| one_line) {
        return Err(
            DeployError::internal(format!("{}: {}", host.name, unreachable.detail()))
                .hint(unreachable.hint()),
        );
    }
    if !out.success() || (one_line && said.contains("ERROR")) {
        return Err(DeployError::internal(format!(
            "{}: {} failed: {}",
            host.name,
            cmd.program,
            out.tail(3)
        )));
    }
    Ok(out.stdout_text())
}

/// The last `count` lines of `text`; a first line cut by a byte offset is dropped.
fn last_lines(text: &str, count: usize) -> Vec<String> {
    let lines: Vec<&str> = text.trim_end().lines().collect();
    lines[lines.len().saturating_sub(count)..]
        .iter()
        .map(|l| (*l).to_string())
        .collect()
}
