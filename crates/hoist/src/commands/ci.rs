//! `hoist ci`: run the pipeline of hoist.toml on this machine, and list its jobs.

use std::path::Path;

use hoist_config::pipeline::{self, Pipeline};
use hoist_pipeline::engine::{self, RunOptions};
use hoist_pipeline::event::Event;

use crate::command_error::{CommandError, ErrorKind};
use crate::commands::config_path;
use crate::printer::{self, Printer};

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

/// Runs a `hoist ci` command.
pub fn run(cmd: CiCommand, config: Option<&Path>, printer: Printer) -> Result<(), CommandError> {
    // hoist.toml is found as for every command; hoist-config reads and validates its [pipeline].
    let path = config_path(config)?;
    let pipeline = pipeline::load(&path)?;
    match cmd {
        CiCommand::Run(args) => run_pipeline(&args, &path, &pipeline, printer.with_json(args.json)),
        CiCommand::Jobs => {
            printer::pipeline::jobs(printer, &pipeline);
            Ok(())
        }
    }
}

/// A pipeline that ran and failed exits 7 (its summary said why); one that could not start is
/// the error of its cause.
fn run_pipeline(
    args: &RunArgs,
    path: &Path,
    pipeline: &Pipeline,
    printer: Printer,
) -> Result<(), CommandError> {
    let mut opts = RunOptions::new(path);
    opts.jobs.clone_from(&args.jobs);
    opts.branch.clone_from(&args.branch);
    opts.revision.clone_from(&args.revision);
    opts.deploy = !args.no_deploy;
    opts.max_parallel = args.max_parallel;
    // Steps run in their own process groups, so Ctrl-C reaches only hoist: main's handler
    // calls hoist_pipeline::request_cancel, and the engine kills the steps and stops services.
    let render = move |event: Event| printer::pipeline::event(printer, &event);
    let record = engine::run(pipeline, &opts, &render)?;
    printer::pipeline::summary(printer, &record);
    if record.passed {
        Ok(())
    } else {
        Err(CommandError::reported(ErrorKind::PipelineFailed))
    }
}
