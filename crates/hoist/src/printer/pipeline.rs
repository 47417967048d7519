//! `hoist ci` events, the run's summary, and the job list: one set of status words.

use anstream::eprintln;
use hoist_config::pipeline::Pipeline;
use hoist_pipeline::event::Event;
use hoist_pipeline::junit::{Outcome, TestReport};
use hoist_pipeline::record::{JobStatus, RunRecord, Severity, StepStatus};
use owo_colors::OwoColorize;

use super::{millis, seconds, Printer};

/// `hoist ci jobs`: a line per job (data, on stdout).
pub fn jobs(printer: Printer, pipeline: &Pipeline) {
    for job in &pipeline.jobs {
        let mut parts = vec![format!("{} step(s)", job.steps.len())];
        if !job.requires.is_empty() {
            parts.push(format!("requires {}", job.requires.join(", ")));
        }
        if !job.filter.only.is_empty() {
            let only: Vec<String> = job.filter.only.iter().map(ToString::to_string).collect();
            parts.push(format!("only {}", only.join(", ")));
        }
        if !job.filter.ignore.is_empty() {
            let ignore: Vec<String> = job.filter.ignore.iter().map(ToString::to_string).collect();
            parts.push(format!("ignore {}", ignore.join(", ")));
        }
        if !job.services.is_empty() {
            let services: Vec<&str> = job.services.iter().map(|s| s.kind()).collect();
            parts.push(format!("services {}", services.join(", ")));
        }
        printer.data(format!("{}  {}", job.name, parts.join("; ")));
    }
}

fn step_word(status: StepStatus) -> String {
    match status {
        StepStatus::Passed => "ok".green().to_string(),
        StepStatus::Failed => "FAILED".red().bold().to_string(),
        StepStatus::Skipped => "skipped".dimmed().to_string(),
        StepStatus::TimedOut => "TIMED OUT".red().bold().to_string(),
        StepStatus::Cancelled => "cancelled".yellow().to_string(),
    }
}

fn job_word(status: JobStatus) -> String {
    match status {
        JobStatus::Passed => "passed".green().to_string(),
        JobStatus::Failed => "FAILED".red().bold().to_string(),
        JobStatus::Skipped => "skipped".dimmed().to_string(),
        JobStatus::TimedOut => "TIMED OUT".red().bold().to_string(),
        JobStatus::Cancelled => "cancelled".yellow().to_string(),
    }
}

/// Renders one pipeline event: a JSON line with `--json`, else a line on stderr (none with
/// `--quiet`). Steps' output is shown as it comes: it is what a CI log is read for.
pub fn event(printer: Printer, event: &Event) {
    if printer.json {
        printer.json_line(event);
        return;
    }
    if printer.quiet() {
        return;
    }
    match event {
        Event::RunStarted {
            run_id,
            commit,
            branch,
            ..
        } => {
            let branch = if branch.is_empty() {
                "(no branch)"
            } else {
                branch
            };
            eprintln!(
                "run {run_id}: commit {} on {branch}",
                &commit[..commit.len().min(12)]
            );
        }
        Event::Warning { job, message } => match job {
            Some(job) => crate::warn_user!(printer, "{job}: {message}"),
            None => printer.warn(message),
        },
        Event::JobSkipped { job, reason } => eprintln!("{job}  {}: {reason}", "skipped".dimmed()),
        Event::JobStarted { job } => eprintln!("{job}  {}", "started".bold()),
        Event::ServiceStarted {
            job,
            service,
            port,
            millis,
        } => {
            eprintln!(
                "{job}  service {service} ready on 127.0.0.1:{port} ({})",
                super::millis(*millis)
            );
        }
        Event::ServiceFailed {
            job,
            service,
            message,
            log,
            ..
        } => {
            eprintln!(
                "{job}  service {service} {}: {message}",
                "FAILED".red().bold()
            );
            for line in log.lines() {
                eprintln!("{job}  {service} | {line}");
            }
        }
        Event::StepStarted { job, step, name } => eprintln!("{job}  [{step}] {name}"),
        Event::Output { job, line, .. } => eprintln!("{job}  {} {line}", "|".dimmed()),
        Event::StepNote {
            job,
            severity,
            message,
            ..
        } => match severity {
            Severity::Warning => crate::warn_user!(printer, "{job}: {message}"),
            Severity::Info => eprintln!("{job}  {} {message}", "·".dimmed()),
        },
        Event::StepFinished {
            job,
            step,
            name,
            status,
            millis,
            ..
        } => {
            let took = if *status == StepStatus::Skipped {
                String::new()
            } else {
                format!(" ({})", super::millis(*millis))
            };
            eprintln!("{job}  [{step}] {} {name}{took}", step_word(*status));
        }
        Event::JobFinished {
            job,
            status,
            reason,
            millis,
        } => {
            let why = reason.as_ref().map_or(String::new(), |r| format!(": {r}"));
            eprintln!(
                "{job}  {}{why} ({})",
                job_word(*status),
                super::millis(*millis)
            );
        }
        Event::RunFinished { .. } => {}
    }
}

/// Failures first (message and traceback), then counts and the slowest tests, then the jobs;
/// the verdict line is shown even with `--quiet`.
pub fn summary(printer: Printer, record: &RunRecord) {
    if printer.json {
        return;
    }
    if printer.quiet() {
        verdict(printer, record);
        return;
    }
    let mut report = TestReport::default();
    for job in &record.jobs {
        if let Some(tests) = &job.tests {
            report.cases.extend(tests.cases.iter().cloned());
            report.seconds += tests.seconds;
        }
    }
    if !report.cases.is_empty() {
        eprintln!();
        for case in report.failures() {
            eprintln!("{} {}: {}", "FAILED".red().bold(), case.id(), case.message);
            for line in case.details.lines() {
                eprintln!("    {line}");
            }
        }
        eprintln!(
            "tests: {} total, {} passed, {} failed, {} errors, {} skipped ({} reported)",
            report.cases.len(),
            report.count(&Outcome::Passed),
            report.count(&Outcome::Failed),
            report.count(&Outcome::Error),
            report.count(&Outcome::Skipped),
            seconds(report.seconds)
        );
        let slowest: Vec<String> = report
            .slowest(5)
            .iter()
            .filter(|c| c.seconds > 0.0)
            .map(|c| format!("{} {}", seconds(c.seconds), c.id()))
            .collect();
        if !slowest.is_empty() {
            eprintln!("slowest:");
            for line in slowest {
                eprintln!("  {line}");
            }
        }
    }
    eprintln!();
    for job in &record.jobs {
        let cached: Vec<String> = job
            .steps
            .iter()
            .filter_map(|s| s.cache.as_ref())
            .map(|c| match (&c.matched, c.saved) {
                (_, true) => format!("saved {}", c.keys[0]),
                (Some(m), false) => format!("hit {m}"),
                (None, false) => format!("miss {}", c.keys.join(", ")),
            })
            .collect();
        let cache = if cached.is_empty() {
            String::new()
        } else {
            format!("  cache: {}", cached.join("; "))
        };
        eprintln!(
            "{}  {} ({}){cache}",
            job.name,
            job_word(job.status),
            millis(job.millis)
        );
    }
    verdict(printer, record);
}

/// `pipeline passed in 12.3 s; logs and record: <dir>` (stderr, even with `--quiet`).
fn verdict(printer: Printer, record: &RunRecord) {
    let verdict = if record.passed {
        "passed".green().bold().to_string()
    } else {
        "FAILED".red().bold().to_string()
    };
    printer.outcome(format!(
        "pipeline {verdict} in {}; logs and record: {}",
        millis(record.millis),
        record.dir.display()
    ));
}
