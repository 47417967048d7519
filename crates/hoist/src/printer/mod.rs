//! The one printer: progress and messages on stderr, data on stdout, `--json` as one object
//! per line. Readable without colour; colour only on a terminal and never with NO_COLOR.

use std::io::{IsTerminal, Write};

use anstream::{eprintln, println};
use hoist_deploy::{DeployError, Event, HostOutcome, Step, StepStatus};
use owo_colors::OwoColorize;

/// Prints `error: ...` and its `hint:` lines.
pub fn error(message: &str, hints: &[String]) {
    let mut lines = message.lines();
    eprintln!("{}: {}", "error".red().bold(), lines.next().unwrap_or(""));
    for line in lines {
        eprintln!("  {line}");
    }
    for hint in hints {
        eprintln!("{}: {hint}", "hint".cyan().bold());
    }
}

/// The error, then (for a fleet) where every host stands.
pub fn deploy_error(e: &DeployError) {
    error(&e.message, &e.hints);
    if e.hosts.len() > 1 {
        let mut out = std::io::stderr().lock();
        let _ = writeln!(out);
        drop(out);
        host_table_to(&e.hosts, true);
    }
}

/// The per-host table of a deploy or rollback: old release, new release, state.
pub fn host_table(hosts: &[HostOutcome]) {
    host_table_to(hosts, false);
}

fn host_table_to(hosts: &[HostOutcome], to_stderr: bool) {
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
    let text = render_table(&["HOST", "OLD", "NEW", "STATE"], &rows);
    if to_stderr {
        eprintln!("{text}");
    } else {
        println!("{text}");
    }
}

pub fn warning(message: &str) {
    eprintln!("{}: {message}", "warning".yellow().bold());
}

/// Prints one value as a JSON line on stdout.
pub fn json_line<T: serde::Serialize>(value: &T) {
    let line = serde_json::to_string(value).expect("serialisable");
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

/// Renders engine events: JSON lines on stdout with `--json`; otherwise, on a terminal, a live
/// line per host (indicatif) with finished steps printed above, and plain lines when stderr is
/// not a terminal (CI logs).
pub fn events(json: bool) -> impl Fn(Event) + Sync {
    let live = (!json && std::io::stderr().is_terminal()).then(LiveHosts::default);
    move |event| {
        if json {
            json_line(&event);
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
                let took = ms.map_or(String::new(), |ms| format!(" ({})", format_ms(ms)));
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
                    StepStatus::Failed => {
                        format!("{host}  {} {}{detail}", "FAILED".red().bold(), step.name())
                    }
                }
            }
            Event::Output { host, step, line } => {
                format!("{host}  {}  | {line}", step.name().dimmed())
            }
            Event::Warning { host, message } => {
                format!("{}: {host}: {message}", "warning".yellow().bold())
            }
            Event::Plan { host, step, action } => {
                println!("{host}  {:<12} {action}", step.name());
                return;
            }
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
    bars: std::sync::Mutex<std::collections::BTreeMap<String, indicatif::ProgressBar>>,
}

impl LiveHosts {
    fn bar(&self, host: &str) -> indicatif::ProgressBar {
        let mut bars = self
            .bars
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
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
        let mut bars = self
            .bars
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
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
        let bars = self
            .bars
            .get_mut()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for bar in bars.values() {
            bar.finish_and_clear();
        }
    }
}

pub fn format_ms(ms: u64) -> String {
    if ms < 1000 {
        format!("{ms}ms")
    } else {
        format!("{:.2}s", ms as f64 / 1000.0)
    }
}

/// "3m ago", "2h ago", "4d ago".
pub fn age(then: chrono::DateTime<chrono::Utc>) -> String {
    let secs = (chrono::Utc::now() - then).num_seconds().max(0);
    match secs {
        0..=59 => format!("{secs}s ago"),
        60..=3599 => format!("{}m ago", secs / 60),
        3600..=86399 => format!("{}h ago", secs / 3600),
        _ => format!("{}d ago", secs / 86400),
    }
}

/// A plain text table on stdout.
pub fn table(header: &[&str], rows: &[Vec<String>]) {
    println!("{}", render_table(header, rows));
}

/// A plain text table with a header row; columns padded to the widest cell.
pub fn render_table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            widths[i] = widths[i].max(cell.chars().count());
        }
    }
    let render = |cells: Vec<String>| {
        let mut line = String::new();
        for (i, cell) in cells.iter().enumerate() {
            if i + 1 == cells.len() {
                line.push_str(cell);
            } else {
                line.push_str(&format!("{cell:<w$}  ", w = widths[i]));
            }
        }
        line.trim_end().to_string()
    };
    let mut lines = vec![render(header.iter().map(|h| h.to_string()).collect())];
    lines.extend(rows.iter().map(|row| render(row.clone())));
    lines.join("\n")
}
