//! Deploy, rollback and lock events, the per-host table, and the result lines of `deploy`,
//! `rollback`, `adopt` and `lock`.

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::sync::{Mutex, PoisonError};

use anstream::eprintln;
use hoist_deploy::{Event, HostOutcome, Step, StepStatus};
use owo_colors::OwoColorize;

use super::{millis, Printer};

/// The per-host table of a deploy or rollback: old release, new release, state.
pub fn host_table(hosts: &[HostOutcome]) -> String {
    let rows: Vec<Vec<String>> = hosts
        .iter()
        .map(|h| {
            let mut state = h.result.describe().to_string();
            if let Some(d) = &h.detail {
                state.push_str(&format!(": {d}"));
            }
            vec![
                h.host.clone(),
                h.previous.clone().unwrap_or_else(|| "-".into()),
                h.release.clone(),
                state,
            ]
        })
        .collect();
    super::render_table(&["HOST", "OLD", "NEW", "STATE"], &rows)
}

/// Renders engine events: JSON lines on stdout with `--json`; otherwise, on a terminal, a live
/// line per host (indicatif) with finished steps printed above, and plain lines when stderr is
/// not a terminal (CI logs). What hooks, restarts and health attempts say is shown as it comes,
/// line by line, prefixed by the host; a tool's output (pip) with `--verbose` only: when its
/// step fails, the error carries the end of it. `--quiet` shows no progress at all (the error
/// says what failed).
///
/// The error is printed once, by `main`: with one host, a failed step's line names the step
/// only; with several, it also says why, since the error sums the hosts up.
pub fn events(printer: Printer, hosts: usize) -> impl Fn(Event) + Sync {
    let live = (!printer.json && !printer.quiet() && std::io::stderr().is_terminal())
        .then(LiveHosts::default);
    move |event| {
        if printer.json {
            printer.json_line(&event);
            return;
        }
        if let Event::Plan { host, step, action } = &event {
            printer.data(format!("{host}  {:<12} {action}", step.name()));
            return;
        }
        if printer.quiet() {
            return;
        }
        let line = match &event {
            Event::Step {
                host,
                step,
                status,
                detail,
                ms,
            } => {
                let took = ms.map_or(String::new(), |ms| format!(" ({})", millis(ms)));
                let detail = detail.as_ref().map_or(String::new(), |d| format!(": {d}"));
                match status {
                    StepStatus::Started => {
                        if let Some(live) = &live {
                            live.bar(host).set_message(format!("{}...", step.name()));
                        }
                        return;
                    }
                    StepStatus::Done => {
                        if *step == Step::Unlock {
                            if let Some(live) = &live {
                                live.finish(host);
                            }
                        }
                        format!("{host}  {} {}{detail}{took}", "ok".green(), step.name())
                    }
                    StepStatus::Failed if hosts > 1 => {
                        format!("{host}  {} {}{detail}", "FAILED".red().bold(), step.name())
                    }
                    StepStatus::Failed => {
                        format!("{host}  {} {}", "FAILED".red().bold(), step.name())
                    }
                }
            }
            Event::Output { host, step, line } => {
                // Waiting for the lock is progress; hooks, restarts and health attempts are
                // the user's own commands, followed live. A tool's output (pip) is noise
                // unless asked for.
                let followed =
                    matches!(step, Step::Lock | Step::Hook | Step::Restart | Step::Health);
                if !printer.verbose() && !followed {
                    return;
                }
                format!("{host}  {}  | {line}", step.name().dimmed())
            }
            Event::Warning { host, message } => {
                format!("{}: {host}: {message}", "warning".yellow().bold())
            }
            Event::Plan { .. } => return,
        };
        match &live {
            Some(live) => live.println(&line),
            None => eprintln!("{line}"),
        }
    }
}

/// One spinner line per host, below the finished steps.
#[derive(Default)]
struct LiveHosts {
    multi: indicatif::MultiProgress,
    bars: Mutex<BTreeMap<String, indicatif::ProgressBar>>,
}

impl LiveHosts {
    fn bar(&self, host: &str) -> indicatif::ProgressBar {
        let mut bars = self.bars.lock().unwrap_or_else(PoisonError::into_inner);
        bars.entry(host.to_string())
            .or_insert_with(|| {
                let bar = self.multi.add(indicatif::ProgressBar::new_spinner());
                bar.set_style(
                    indicatif::ProgressStyle::with_template("{prefix}  {spinner} {msg} {elapsed}")
                        .expect("a valid template"),
                );
                bar.set_prefix(host.to_string());
                bar.enable_steady_tick(std::time::Duration::from_millis(120));
                bar
            })
            .clone()
    }

    fn finish(&self, host: &str) {
        let mut bars = self.bars.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(bar) = bars.remove(host) {
            bar.finish_and_clear();
        }
    }

    fn println(&self, line: &str) {
        let _ = self.multi.println(line);
    }
}

impl Drop for LiveHosts {
    fn drop(&mut self) {
        let bars = self.bars.get_mut().unwrap_or_else(PoisonError::into_inner);
        for bar in bars.values() {
            bar.finish_and_clear();
        }
    }
}

/// `hoist deploy`'s result: one line for one host, a line and the table for a fleet.
pub fn deployed(printer: Printer, report: &hoist_deploy::DeployReport, fleet: &str) {
    if printer.json {
        printer.json_line(&serde_json::json!({
            "event": "deployed",
            "release": report.release.to_string(),
            "commit": report.commit,
            "hosts": report.hosts,
            "ms": report.elapsed.as_millis() as u64,
        }));
        return;
    }
    let took = super::duration(report.elapsed);
    if let [only] = report.hosts.as_slice() {
        printer.data(format!(
            "deployed {} to {} in {took} (was {})",
            report.release,
            only.outcome.host,
            only.outcome.previous.as_deref().unwrap_or("nothing")
        ));
    } else {
        printer.data(format!(
            "deployed {} to {} hosts of {fleet} in {took}",
            report.release,
            report.hosts.len(),
        ));
        let outcomes: Vec<_> = report.hosts.iter().map(|h| h.outcome.clone()).collect();
        printer.data(host_table(&outcomes));
    }
}

/// `hoist rollback`'s result.
pub fn rolled_back(printer: Printer, report: &hoist_deploy::RollbackReport, fleet: &str) {
    if printer.json {
        printer.json_line(&serde_json::json!({
            "event": "rolled_back",
            "to": report.to.to_string(),
            "hosts": report.hosts,
            "ms": report.elapsed.as_millis() as u64,
        }));
        return;
    }
    let took = super::duration(report.elapsed);
    if let [only] = report.hosts.as_slice() {
        let from = only.previous.as_deref().unwrap_or("-");
        if report.left_marked_bad {
            printer.data(format!(
                "rolled back {} from {from} to {} in {took}; {from} is marked bad",
                only.host, report.to
            ));
        } else {
            printer.data(format!(
                "rolled forward {} from {from} to {} in {took}; {from} keeps its state",
                only.host, report.to
            ));
        }
    } else {
        printer.data(format!(
            "rolled back {} hosts of {fleet} to {} in {took}",
            report.hosts.len(),
            report.to
        ));
        printer.data(host_table(&report.hosts));
    }
}
