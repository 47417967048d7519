//! One job: its workspace, its services, then its steps in order, each after deciding whether
//! it runs (its `when`, an earlier failure, the job's deadline, cancellation).

use super::step::{StepOutcome, StepRun};
use super::workspace::Workspace;
use super::{cancelled, millis, steps, RunCtx};
use crate::event::Event;
use crate::junit::TestReport;
use crate::record::{JobRecord, JobStatus, Note, ServiceRecord, StepRecord, StepStatus};
use crate::services::{self, RunningService};
use hoist_config::pipeline::{Job, Step, StepKind, When};
use std::path::PathBuf;
use std::time::Instant;

/// What every step of a job shares.
pub(crate) struct JobRun<'a, 'b> {
    pub ctx: &'a RunCtx<'b>,
    pub job: &'a Job,
    pub workspace: PathBuf,
    pub env: Vec<(String, String)>,
    pub deadline: Option<Instant>,
}

/// The record of a job that never started (filtered out, skipped or cancelled).
pub(crate) fn not_started(job: &Job, status: JobStatus, reason: String) -> JobRecord {
    JobRecord {
        name: job.name.clone(),
        status,
        reason: Some(reason),
        millis: 0,
        services: Vec::new(),
        steps: Vec::new(),
        tests: None,
    }
}

/// Runs `job` to its end and returns its record; services and the workspace are released
/// whatever happened.
pub(crate) fn run(ctx: &RunCtx<'_>, job: &Job) -> JobRecord {
    let started = Instant::now();
    ctx.send(Event::JobStarted {
        job: job.name.clone(),
    });
    let mut record = JobRecord {
        name: job.name.clone(),
        status: JobStatus::Passed,
        reason: None,
        millis: 0,
        services: Vec::new(),
        steps: Vec::new(),
        tests: None,
    };
    let end = |mut record: JobRecord| {
        record.millis = millis(started);
        ctx.send(Event::JobFinished {
            job: record.name.clone(),
            status: record.status,
            reason: record.reason.clone(),
            millis: record.millis,
        });
        record
    };
    let workspace = match Workspace::take(&ctx.opts.ci_dir, &job.name) {
        Ok(workspace) => workspace,
        Err(reason) => {
            record.status = JobStatus::Failed;
            record.reason = Some(reason);
            return end(record);
        }
    };
    // Services live until this function returns: dropping them stops them, whatever happened.
    let running = match start_services(ctx, job, &mut record) {
        Ok(running) => running,
        Err(()) => {
            drop(workspace);
            return end(record);
        }
    };
    let mut env: Vec<(String, String)> = vec![
        ("CI".into(), "true".into()),
        ("HOIST_CI".into(), "true".into()),
        ("HOIST_RUN_ID".into(), ctx.run_id.clone()),
        ("HOIST_JOB".into(), job.name.clone()),
        ("HOIST_BRANCH".into(), ctx.branch.clone()),
        ("HOIST_REVISION".into(), ctx.commit.clone()),
        (
            "HOIST_WORKSPACE".into(),
            workspace.dir.display().to_string(),
        ),
    ];
    env.extend(running.iter().flat_map(|s| s.env.iter().cloned()));
    env.extend(ctx.pipeline.environment.iter().cloned());
    env.extend(job.environment.iter().cloned());
    env.extend(ctx.secrets.iter().cloned());
    let job_run = JobRun {
        ctx,
        job,
        workspace: workspace.dir.clone(),
        env,
        deadline: job.timeout.map(|t| started + t),
    };
    job_run.run_steps(&mut record);
    drop(running);
    drop(workspace);
    end(record)
}

/// Starts the job's services in order; on the first that fails, records it, marks every step
/// not run and returns `Err` (the ones started are stopped as the vector drops).
fn start_services(
    ctx: &RunCtx<'_>,
    job: &Job,
    record: &mut JobRecord,
) -> Result<Vec<RunningService>, ()> {
    let mut running = Vec::new();
    let scratch = services::scratch_root();
    for spec in &job.services {
        let starting = Instant::now();
        match services::start(spec, &scratch) {
            Ok(service) => {
                let startup = service.startup.as_millis() as u64;
                ctx.send(Event::ServiceStarted {
                    job: job.name.clone(),
                    service: service.kind.into(),
                    port: service.port,
                    millis: startup,
                });
                record.services.push(ServiceRecord {
                    kind: service.kind.into(),
                    port: Some(service.port),
                    millis: startup,
                    error: None,
                    log: None,
                });
                running.push(service);
            }
            Err(e) => {
                let failing = millis(starting);
                ctx.send(Event::ServiceFailed {
                    job: job.name.clone(),
                    service: e.service.clone(),
                    message: e.message.clone(),
                    log: e.log.clone(),
                    millis: failing,
                });
                record.services.push(ServiceRecord {
                    kind: e.service.clone(),
                    port: None,
                    millis: failing,
                    error: Some(e.message.clone()),
                    log: Some(e.log.clone()),
                });
                record.status = JobStatus::Failed;
                record.reason = Some(format!(
                    "service {} did not start: {}",
                    e.service, e.message
                ));
                record.steps = job
                    .steps
                    .iter()
                    .map(|s| not_run(s, "a service did not start"))
                    .collect();
                return Err(());
            }
        }
    }
    Ok(running)
}

pub(crate) fn timeout_reason(job: &Job) -> String {
    format!(
        "the job ran past its timeout of {}s",
        job.timeout.map_or(0, |t| t.as_secs())
    )
}

fn not_run(step: &Step, reason: &str) -> StepRecord {
    StepRecord {
        name: step.name.clone(),
        kind: step.kind.key().into(),
        status: StepStatus::Skipped,
        exit_code: None,
        millis: 0,
        notes: vec![Note::info(reason)],
        log: None,
        cache: None,
        artifacts: Vec::new(),
    }
}

impl JobRun<'_, '_> {
    /// Runs or skips each step in order, and sets the job's status and reason from theirs.
    fn run_steps(&self, record: &mut JobRecord) {
        let job = self.job;
        let mut failing = false;
        let mut stopped: Option<(JobStatus, String)> = None;
        // The job's last restore_cache restored its first key exactly (for unless_cache_hit).
        let mut exact_hit = false;
        let mut tests: Option<TestReport> = None;
        for (i, step) in job.steps.iter().enumerate() {
            let number = i + 1;
            if stopped.is_none() {
                if cancelled(self.ctx.opts) {
                    stopped = Some((JobStatus::Cancelled, "the run was cancelled".into()));
                } else if self.deadline.is_some_and(|d| Instant::now() >= d) {
                    stopped = Some((JobStatus::TimedOut, timeout_reason(job)));
                }
            }
            let skip_reason = match (&stopped, step.when) {
                // A cancelled or timed-out job runs nothing more, not even `always` steps.
                (Some((_, reason)), _) => Some(reason.as_str()),
                (None, When::OnSuccess) if failing => Some("an earlier step failed"),
                (None, When::OnFail) if !failing => Some("no earlier step failed (when = on_fail)"),
                _ => None,
            };
            if let Some(reason) = skip_reason {
                self.ctx.send(Event::StepFinished {
                    job: job.name.clone(),
                    step: number,
                    name: step.name.clone(),
                    status: StepStatus::Skipped,
                    exit_code: None,
                    millis: 0,
                    cache: None,
                });
                record.steps.push(not_run(step, reason));
                continue;
            }
            let step_record = self.run_step(number, step, &mut exact_hit, &mut tests);
            match step_record.status {
                StepStatus::Failed => failing = true,
                StepStatus::TimedOut if self.deadline.is_some_and(|d| Instant::now() >= d) => {
                    stopped = Some((JobStatus::TimedOut, timeout_reason(job)));
                }
                StepStatus::TimedOut => failing = true,
                StepStatus::Cancelled => {
                    stopped = Some((JobStatus::Cancelled, "the run was cancelled".into()));
                }
                StepStatus::Passed | StepStatus::Skipped => {}
            }
            if failing && record.reason.is_none() {
                record.reason = Some(format!("step {number} ({}) failed", step_record.name));
            }
            record.steps.push(step_record);
        }
        if let Some((status, reason)) = stopped {
            record.status = status;
            record.reason = Some(reason);
        } else if failing {
            record.status = JobStatus::Failed;
        }
        record.tests = tests;
    }

    /// Runs one step by its kind's module and turns its outcome into its record.
    fn run_step(
        &self,
        number: usize,
        step: &Step,
        exact_hit: &mut bool,
        tests: &mut Option<TestReport>,
    ) -> StepRecord {
        let started = Instant::now();
        self.ctx.send(Event::StepStarted {
            job: self.job.name.clone(),
            step: number,
            name: step.name.clone(),
        });
        let mut run = StepRun::new(self, number);
        let outcome: StepOutcome = match &step.kind {
            StepKind::Checkout => steps::checkout::run(&mut run),
            StepKind::Run(script) => steps::script::run(&mut run, script, *exact_hit),
            StepKind::RestoreCache { keys } => {
                let outcome = steps::cache::restore(&mut run, keys);
                *exact_hit = outcome.cache.as_ref().is_some_and(|c| c.exact);
                outcome
            }
            StepKind::SaveCache { key, paths } => steps::cache::save(&mut run, key, paths),
            StepKind::Artifacts { path, destination } => {
                steps::artifacts::run(&mut run, path, destination)
            }
            StepKind::TestResults { path } => steps::test_results::run(&mut run, path, tests),
            StepKind::Deploy { environment } => {
                steps::deploy::run(&mut run, environment.as_deref())
            }
        };
        let record = run.into_record(step, outcome, millis(started));
        self.ctx.send(Event::StepFinished {
            job: self.job.name.clone(),
            step: number,
            name: record.name.clone(),
            status: record.status,
            exit_code: record.exit_code,
            millis: record.millis,
            cache: record.cache.clone(),
        });
        record
    }
}
