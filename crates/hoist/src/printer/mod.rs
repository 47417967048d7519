//! The one printer: it alone decides colour, verbosity, `--json`, and what goes to stdout
//! (data and the result line) or stderr (progress, warnings, errors). Readable without colour;
//! colour only on a terminal and never with NO_COLOR (anstream decides).
//!
//! - `mod.rs`: [`Printer`], errors, warnings ([`warn_user!`]), JSON lines, durations, ages.
//! - `deploy.rs`: deploy, rollback and lock events, the per-host table, result lines.
//! - `pipeline.rs`: `hoist ci` events, the run's summary, the job list.
//! - `tables.rs`: the `status`, `check` and `releases` tables.

pub mod deploy;
pub mod pipeline;
pub mod tables;

use std::fmt::Display;
use std::io::Write;
use std::time::Duration;

use anstream::{eprintln, println};
use owo_colors::OwoColorize;

use crate::command_error::CommandError;

/// How much the user asked to see.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Verbosity {
    /// `--quiet`: errors, the final result line and the data asked for; no progress, no
    /// warnings.
    Quiet,
    Normal,
    /// `--verbose`: also every line of output of hooks and of the installer, as it comes.
    Verbose,
}

/// Where and how a command's output is written. Cheap to copy; every command gets one.
#[derive(Debug, Clone, Copy)]
pub struct Printer {
    pub verbosity: Verbosity,
    /// `--json`: data and events as one JSON object per line on stdout, nothing else there.
    pub json: bool,
}

/// `warn_user!(printer, "...", args)`: a `warning:` line on stderr, unless `--quiet`.
#[macro_export]
macro_rules! warn_user {
    ($printer:expr, $($arg:tt)*) => {
        $printer.warn(&format!($($arg)*))
    };
}

impl Printer {
    pub fn new(verbosity: Verbosity) -> Self {
        Printer {
            verbosity,
            json: false,
        }
    }

    /// The same printer for a command that was given `--json`.
    #[must_use]
    pub fn with_json(self, json: bool) -> Self {
        Printer { json, ..self }
    }

    pub fn quiet(self) -> bool {
        self.verbosity == Verbosity::Quiet
    }

    pub fn verbose(self) -> bool {
        self.verbosity == Verbosity::Verbose
    }

    /// Data the user asked for, or a command's result line: stdout, always.
    pub fn data(self, text: impl Display) {
        println!("{text}");
    }

    /// Data written as is (a generated file, a diff): stdout, always.
    pub fn raw(self, text: &str) {
        let mut out = anstream::stdout().lock();
        let _ = out.write_all(text.as_bytes());
        let _ = out.flush();
    }

    /// A result that is not data (where a file was written, what to run next): stderr, even
    /// with `--quiet`.
    pub fn outcome(self, text: impl Display) {
        eprintln!("{text}");
    }

    /// Progress and notes: stderr, not with `--quiet`.
    pub fn info(self, text: impl Display) {
        if !self.quiet() {
            eprintln!("{text}");
        }
    }

    /// A `warning:` line on stderr, not with `--quiet`. See [`warn_user!`].
    pub fn warn(self, message: &str) {
        if !self.quiet() {
            eprintln!("{}: {message}", "warning".yellow().bold());
        }
    }

    /// One value as a JSON line on stdout.
    pub fn json_line<T: serde::Serialize>(self, value: &T) {
        let line = serde_json::to_string(value).expect("serialisable");
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{line}");
        let _ = out.flush();
    }

    /// A text table (header and padded columns) on stdout.
    pub fn table(self, header: &[&str], rows: &[Vec<String>]) {
        self.data(render_table(header, rows));
    }
}

/// Prints a failed command's error once: `error: message` (its later lines indented), then a
/// `hint:` line per hint, then for a fleet where every host stands. With `--json` the error is
/// also a `{"event": "failed", ...}` line on stdout, so a script reading stdout sees it.
pub fn error(printer: Printer, e: &CommandError) {
    if e.message.is_empty() {
        return;
    }
    if printer.json {
        printer.json_line(&serde_json::json!({
            "event": "failed",
            "kind": e.kind.name(),
            "message": e.message,
            "hints": e.hints,
            "hosts": e.hosts,
            "exit_code": e.kind.exit_code(),
        }));
    }
    let mut lines = e.message.lines();
    eprintln!("{}: {}", "error".red().bold(), lines.next().unwrap_or(""));
    for line in lines {
        eprintln!("  {line}");
    }
    for hint in &e.hints {
        eprintln!("{}: {hint}", "hint".cyan().bold());
    }
    if e.hosts.len() > 1 {
        eprintln!();
        eprintln!("{}", deploy::host_table(&e.hosts));
    }
}

/// A duration for people: `850 ms`, `1.4 s`, `29.8 s`, `1 min 30 s`, `2 h 5 min`.
pub fn duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms < 1000 {
        return format!("{ms} ms");
    }
    let tenths = (ms + 50) / 100;
    if tenths < 600 {
        return format!("{}.{} s", tenths / 10, tenths % 10);
    }
    let secs = (ms + 500) / 1000;
    if secs < 3600 {
        return match secs % 60 {
            0 => format!("{} min", secs / 60),
            s => format!("{} min {s} s", secs / 60),
        };
    }
    let mins = (secs + 30) / 60;
    match mins % 60 {
        0 => format!("{} h", mins / 60),
        m => format!("{} h {m} min", mins / 60),
    }
}

/// [`duration`] of a number of milliseconds.
pub fn millis(ms: u64) -> String {
    duration(Duration::from_millis(ms))
}

/// [`duration`] of a number of seconds (test reports give fractions).
pub fn seconds(secs: f64) -> String {
    duration(Duration::from_secs_f64(secs.max(0.0)))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_are_rounded_for_people() {
        let ms = |n| millis(n);
        assert_eq!(ms(0), "0 ms");
        assert_eq!(ms(999), "999 ms");
        assert_eq!(ms(1000), "1.0 s");
        assert_eq!(ms(29_750), "29.8 s");
        assert_eq!(ms(59_949), "59.9 s");
        assert_eq!(ms(59_950), "1 min");
        assert_eq!(ms(90_000), "1 min 30 s");
        assert_eq!(ms(3_600_000), "1 h");
        assert_eq!(ms(7_500_000), "2 h 5 min");
        assert_eq!(seconds(0.25), "250 ms");
    }
}
