//! `hoist ci`: run the pipeline of hoist.toml on this machine, and list its jobs.

use std::path::{Path, PathBuf};

use anstream::eprintln;
use hoist_config::pipeline::{self, Pipeline};
use hoist_pipeline::engine::{self, RunOptions};
use hoist_pipeline::event::Event;
use hoist_pipeline::junit::{Outcome, TestReport};
use hoist_pipeline::record::{JobStatus, RunRecord, Severity, StepStatus};
use owo_colors::OwoColorize;

use crate::printer::{self, format_ms};

/// `hoist ci ...`
#[derive(clap::Subcommand, Debug)]
pub enum CiCommand {
    /// Run the pipeline: check out the commit, start services, run each job's steps.
    Run(RunArgs),
    /// List the pipeline's jobs: what they require, their branch filters and services.
    Jobs,
}

/// `hoist ci run`
#[derive(clap::Args, Debug)]
pub struct RunArgs {
    /// Run only this job (repeatable); the jobs it requires are not run.
    #[arg(long = "job", value_name = "JOB")]
    pub jobs: Vec<String>,
    /// Run as this branch (default: the checked-out branch); decides the jobs' only/ignore.
    #[arg(long, value_name = "BRANCH")]
    pub branch: Option<String>,
    /// Run this commit (default: HEAD). Uncommitted changes are never part of a run.
    #[arg(long, value_name = "COMMIT")]
    pub revision: Option<String>,
    /// Skip deploy steps (they are listed as skipped).
    #[arg(long)]
    pub no_deploy: bool,
    /// Run at most this many jobs at once (default: the pipeline's max_parallel).
    #[arg(long, value_name = "N")]
    pub max_parallel: Option<usize>,
    /// Print one JSON event per line on stdout; the last one holds the run's record.
    #[arg(long)]
    pub json: bool,
}

/// Runs a `hoist ci` command; returns the exit code.
pub fn run(cmd: CiCommand, config: Option<&Path>) -> i32 {
    let (path, pipeline) = match load(config) {
        Ok(v) => v,
        Err(code) => return code,
    };
    match cmd {
        CiCommand::Run(args) => run_pipeline(&args, &path, &pipeline),
        CiCommand::Jobs => {
            list_jobs(&pipeline);
            0
        }
    }
}

/// Finds hoist.toml (as every command does) and reads its `[pipeline]`.
pub(crate) fn load(config: Option<&Path>) -> Result<(PathBuf, Pipeline), i32> {
    let path = match config {
        Some(p) => p.to_path_buf(),
        None => {
            let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
            match hoist_config::find(&cwd) {
                Some(p) => p,
                None => {
                    printer::error(
                        &format!("no hoist.toml in {} or any parent directory", cwd.display()),
                        &["run `hoist init` to write one, or pass --config <path>".into()],
                    );
                    return Err(crate::exit::CONFIG);
                }
            }
        }
    };
    match pipeline::load(&path) {
        Ok(p) => Ok((path, p)),
        Err(e) => {
            let hints: Vec<String> = e.hint.iter().cloned().collect();
            printer::error(&e.to_string(), &hints);
            Err(crate::exit::CONFIG)
        }
    }
}

fn list_jobs(pipeline: &Pipeline) {
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
        println!("{}  {}", job.name, parts.join("; "));
    }
}

fn run_pipeline(args: &RunArgs, path: &Path, pipeline: &Pipeline) -> i32 {
    let mut opts = RunOptions::new(path);
    opts.jobs.clone_from(&args.jobs);
    opts.branch.clone_from(&args.branch);
    opts.revision.clone_from(&args.revision);
    opts.deploy = !args.no_deploy;
    opts.max_parallel = args.max_parallel;
    // Steps run in their own process groups, so Ctrl-C reaches only hoist: main's handler
    // calls hoist_pipeline::request_cancel, and the engine kills the steps and stops services.
    let json = args.json;
    let render = move |event: Event| {
        if json {
            printer::json_line(&event);
        } else {
            render_event(&event);
        }
    };
    match engine::run(pipeline, &opts, &render) {
        Ok(record) => {
            if !json {
                summary(&record);
            }
            if record.passed {
                crate::exit::OK
            } else {
                crate::exit::PIPELINE_FAILED
            }
        }
        Err(e) => {
            let hints: Vec<String> = e.hint().into_iter().collect();
            printer::error(&e.to_string(), &hints);
            crate::exit::CONFIG
        }
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

fn render_event(event: &Event) {
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
            Some(job) => printer::warning(&format!("{job}: {message}")),
            None => printer::warning(message),
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
                format_ms(*millis)
            );
        }
        Event::ServiceFailed {
            job,
            service,
            message,
            log,
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
            Severity::Warning => printer::warning(&format!("{job}: {message}")),
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
                format!(" ({})", format_ms(*millis))
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
            eprintln!("{job}  {}{why} ({})", job_word(*status), format_ms(*millis));
        }
        Event::RunFinished { .. } => {}
    }
}

/// Failures first (message and traceback), then counts and the slowest tests, then the jobs.
fn summary(record: &RunRecord) {
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
            "tests: {} total, {} passed, {} failed, {} errors, {} skipped ({:.2}s reported)",
            report.cases.len(),
            report.count(&Outcome::Passed),
            report.count(&Outcome::Failed),
            report.count(&Outcome::Error),
            report.count(&Outcome::Skipped),
            report.seconds
        );
        let slowest: Vec<String> = report
            .slowest(5)
            .iter()
            .filter(|c| c.seconds > 0.0)
            .map(|c| format!("{:.2}s {}", c.seconds, c.id()))
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
            format_ms(job.millis)
        );
    }
    let verdict = if record.passed {
        "passed".green().bold().to_string()
    } else {
        "FAILED".red().bold().to_string()
    };
    eprintln!(
        "pipeline {verdict} in {}; logs and record: {}",
        format_ms(record.millis),
        record.dir.display()
    );
}
