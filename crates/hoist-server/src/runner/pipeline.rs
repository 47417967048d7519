//! The one place the server calls the CI engine (`hoist-pipeline`): it runs the pipeline of a
//! checked-out commit, exactly as `hoist ci run` does in a working copy, and turns the engine's
//! events into the store's jobs, steps, log lines, test suites and artifacts as they come.
//! A `deploy` step's own report (the last JSON event of `hoist deploy --json`) becomes the run's
//! per-host deployments; services started and what cache steps did are kept as facts too.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use hoist_config::pipeline::{Pipeline, StepKind};
use hoist_pipeline::engine;
use hoist_pipeline::event::Event;
use hoist_pipeline::junit::Outcome;
use hoist_pipeline::record::{
    CacheRecord, JobStatus, RunRecord, Severity, StepStatus as EngineStepStatus,
};
use hoist_store::{
    JobId, NewCacheUse, NewDeployment, NewJob, NewLogLine, NewService, RunId, StepId, StepStatus,
    Store, StoreError, TestCase, TestOutcome, TestSuite,
};
use tokio::sync::mpsc;

use super::job_process::{self, JobSpec};
use super::job_user::JobUser;

/// One pipeline run of a checked-out commit.
pub struct PipelineRun {
    /// The run in the store.
    pub run: RunId,
    /// Its project.
    pub project: String,
    /// What the engine runs.
    pub job: JobSpec,
    /// The data dir, which artifact paths are kept relative to.
    pub data_dir: PathBuf,
    /// Set to stop the run: running steps are killed, nothing more starts.
    pub cancel: Arc<AtomicBool>,
    /// Run the engine in a child process as this user (`[runner] user`); `None`: in this
    /// process, as the server's user.
    pub user: Option<JobUser>,
}

/// Runs the pipeline; `Ok(true)` when it passed. `Err` when it could not start (the message is
/// also in the run's log).
///
/// # Errors
///
/// The pipeline's definition or the engine refused to start, or the store failed.
pub async fn run(store: Arc<dyn Store>, spec: PipelineRun) -> Result<bool, String> {
    let pipeline = match hoist_config::pipeline::load(&spec.job.config) {
        Ok(pipeline) => pipeline,
        Err(e) => {
            let hint = e
                .hint
                .as_ref()
                .map(|h| format!(" (hint: {h})"))
                .unwrap_or_default();
            return Err(format!("{e}{hint}"));
        }
    };
    let requires: HashMap<String, Vec<String>> = pipeline
        .jobs
        .iter()
        .map(|j| (j.name.clone(), j.requires.clone()))
        .collect();
    let deploys = deploy_steps(&pipeline, &spec.job.config);
    let saves = save_cache_steps(&pipeline);
    let (tx, rx) = mpsc::unbounded_channel();
    let engine = match &spec.user {
        None => {
            let opts = spec.job.options(Arc::clone(&spec.cancel));
            tokio::task::spawn_blocking(move || {
                engine::run(&pipeline, &opts, &move |event| {
                    let _ = tx.send(event);
                })
                .map(|record| record.passed)
                .map_err(|e| job_process::describe(&e))
            })
        }
        Some(user) => {
            let exe = std::env::current_exe()
                .map_err(|e| format!("cannot find the hoist program to run the job: {e}"))?;
            job_process::spawn(&exe, &spec.job, user, Arc::clone(&spec.cancel), tx)?
        }
    };
    let mut sink = EventSink {
        store,
        run: spec.run,
        project: spec.project,
        data_dir: spec.data_dir,
        requires,
        deploys,
        saves,
        reports: HashMap::new(),
        host_times: HashMap::new(),
        jobs: HashMap::new(),
        steps: HashMap::new(),
        pending: Vec::new(),
    };
    let stored = sink.consume(rx).await;
    let outcome = engine
        .await
        .map_err(|e| format!("the pipeline engine stopped: {e}"))?;
    stored.map_err(|e| format!("the run's events could not be stored: {e}"))?;
    outcome
}

/// The pipeline's deploy steps by (job, step number, from 1, as the engine counts them): the
/// environment each deploys to (the only one of the commit's hoist.toml when it names none).
fn deploy_steps(pipeline: &Pipeline, config: &Path) -> HashMap<(String, usize), String> {
    let hoist = hoist_config::load(config).ok();
    let mut steps = HashMap::new();
    for job in &pipeline.jobs {
        for (i, step) in job.steps.iter().enumerate() {
            if let StepKind::Deploy { environment } = &step.kind {
                let name = hoist
                    .as_ref()
                    .and_then(|c| c.environment(environment.as_deref()).ok())
                    .map(|e| e.name)
                    .or_else(|| environment.clone())
                    .unwrap_or_else(|| "default".into());
                steps.insert((job.name.clone(), i + 1), name);
            }
        }
    }
    steps
}

/// The pipeline's `save_cache` steps by (job, step number): a save that found its key taken
/// and a restore of the first key leave the same record, the step's kind tells them apart.
fn save_cache_steps(pipeline: &Pipeline) -> HashSet<(String, usize)> {
    let mut steps = HashSet::new();
    for job in &pipeline.jobs {
        for (i, step) in job.steps.iter().enumerate() {
            if matches!(step.kind, StepKind::SaveCache { .. }) {
                steps.insert((job.name.clone(), i + 1));
            }
        }
    }
    steps
}

/// What a cache step did, as the store keeps it.
fn cache_use(
    job: &str,
    step: Option<StepId>,
    save: bool,
    record: CacheRecord,
    millis: u64,
) -> NewCacheUse {
    let outcome = match (save, record.saved, &record.matched, record.exact) {
        (true, true, _, _) => "saved",
        (true, false, _, _) => "exists",
        (false, _, None, _) => "miss",
        (false, _, Some(_), true) => "hit",
        (false, _, Some(_), false) => "fallback",
    };
    NewCacheUse {
        job: job.to_string(),
        step,
        action: if save { "save" } else { "restore" }.into(),
        outcome: outcome.into(),
        keys: record.keys,
        matched: record.matched,
        bytes: record.bytes,
        millis,
    }
}

/// The times of a host's first and last event in a deploy step's output.
type FirstAndLast = (DateTime<Utc>, DateTime<Utc>);

/// A line of `hoist deploy --json` about one host: its time counts towards that host's duration.
#[derive(serde::Deserialize)]
struct HostEvent {
    host: String,
}

/// The last event `hoist deploy --json` prints: `deployed` or `failed`, with the per-host table.
#[derive(serde::Deserialize)]
struct DeployReport {
    event: String,
    #[serde(default)]
    hosts: Vec<HostRow>,
}

/// One host of that table.
#[derive(serde::Deserialize)]
struct HostRow {
    host: String,
    release: String,
    result: String,
    #[serde(default)]
    detail: Option<String>,
}

impl DeployReport {
    fn parse(line: &str) -> Option<DeployReport> {
        serde_json::from_str::<DeployReport>(line)
            .ok()
            .filter(|r| r.event == "deployed" || r.event == "failed")
    }
}

/// Turns engine events into store rows, in order; output lines are appended in batches (all
/// the lines waiting when the channel runs dry).
struct EventSink {
    store: Arc<dyn Store>,
    run: RunId,
    project: String,
    data_dir: PathBuf,
    requires: HashMap<String, Vec<String>>,
    /// The deploy steps and their environments.
    deploys: HashMap<(String, usize), String>,
    /// The `save_cache` steps.
    saves: HashSet<(String, usize)>,
    /// The last report each deploy step printed.
    reports: HashMap<(String, usize), DeployReport>,
    /// Per deploy step and host: the times of its first and last event.
    host_times: HashMap<(String, usize), HashMap<String, FirstAndLast>>,
    jobs: HashMap<String, JobId>,
    steps: HashMap<(String, usize), StepId>,
    pending: Vec<NewLogLine>,
}

fn job_status(status: JobStatus) -> StepStatus {
    match status {
        JobStatus::Passed => StepStatus::Passed,
        JobStatus::Failed | JobStatus::TimedOut => StepStatus::Failed,
        JobStatus::Skipped => StepStatus::Skipped,
        JobStatus::Cancelled => StepStatus::Cancelled,
    }
}

fn step_status(status: EngineStepStatus) -> StepStatus {
    match status {
        EngineStepStatus::Passed => StepStatus::Passed,
        EngineStepStatus::Failed | EngineStepStatus::TimedOut => StepStatus::Failed,
        EngineStepStatus::Skipped => StepStatus::Skipped,
        EngineStepStatus::Cancelled => StepStatus::Cancelled,
    }
}

impl EventSink {
    async fn consume(&mut self, mut rx: mpsc::UnboundedReceiver<Event>) -> Result<(), StoreError> {
        while let Some(event) = rx.recv().await {
            self.handle(event).await?;
            while let Ok(event) = rx.try_recv() {
                self.handle(event).await?;
            }
            self.flush().await?;
        }
        self.flush().await
    }

    async fn flush(&mut self) -> Result<(), StoreError> {
        if !self.pending.is_empty() {
            let lines = std::mem::take(&mut self.pending);
            self.store.append_log(self.run, &lines).await?;
        }
        Ok(())
    }

    fn line(&mut self, step: Option<StepId>, at: DateTime<Utc>, text: String) {
        self.pending.push(NewLogLine { step, at, text });
    }

    fn note(&mut self, text: String) {
        self.line(None, Utc::now(), text);
    }

    async fn step_id(&mut self, job: &str, step: usize, name: &str) -> Result<StepId, StoreError> {
        if let Some(id) = self.steps.get(&(job.to_string(), step)) {
            return Ok(*id);
        }
        let job_id = self.job_id(job).await?;
        let id = self
            .store
            .add_step(job_id, name, i64::try_from(step).unwrap_or(i64::MAX))
            .await?;
        self.steps.insert((job.to_string(), step), id);
        Ok(id)
    }

    async fn job_id(&mut self, job: &str) -> Result<JobId, StoreError> {
        if let Some(id) = self.jobs.get(job) {
            return Ok(*id);
        }
        let new = NewJob {
            name: job.to_string(),
            position: i64::try_from(self.jobs.len()).unwrap_or(i64::MAX),
            requires: self.requires.get(job).cloned().unwrap_or_default(),
        };
        let id = self.store.add_job(self.run, &new).await?;
        self.jobs.insert(job.to_string(), id);
        Ok(id)
    }

    async fn handle(&mut self, event: Event) -> Result<(), StoreError> {
        match event {
            Event::RunStarted {
                commit,
                branch,
                jobs,
                ..
            } => {
                for job in &jobs {
                    self.job_id(job).await?;
                }
                self.note(format!(
                    "running commit {commit} as branch {branch}: jobs {}",
                    jobs.join(", ")
                ));
            }
            Event::Warning { job, message } => match job {
                Some(job) => self.note(format!("warning: {job}: {message}")),
                None => self.note(format!("warning: {message}")),
            },
            Event::JobSkipped { job, reason } => {
                self.flush().await?;
                let id = self.job_id(&job).await?;
                self.store.set_job_status(id, StepStatus::Skipped).await?;
                self.note(format!("{job}: skipped: {reason}"));
            }
            Event::JobStarted { job } => {
                let id = self.job_id(&job).await?;
                self.store.set_job_status(id, StepStatus::Running).await?;
            }
            Event::ServiceStarted {
                job,
                service,
                port,
                millis,
            } => {
                self.note(format!(
                    "{job}: service {service} ready on 127.0.0.1:{port} ({millis} ms)"
                ));
                self.flush().await?;
                let started = NewService {
                    job,
                    service,
                    port: Some(port),
                    millis,
                    error: None,
                };
                self.store.record_service(self.run, &started).await?;
            }
            Event::ServiceFailed {
                job,
                service,
                message,
                log,
                millis,
            } => {
                self.note(format!("{job}: service {service} failed: {message}"));
                for line in log.lines() {
                    self.note(format!("{job}: {service} | {line}"));
                }
                self.flush().await?;
                let failed = NewService {
                    job,
                    service,
                    port: None,
                    millis,
                    error: Some(message),
                };
                self.store.record_service(self.run, &failed).await?;
            }
            Event::StepStarted { job, step, name } => {
                self.flush().await?;
                let id = self.step_id(&job, step, &name).await?;
                self.store.start_step(id).await?;
            }
            Event::Output {
                job,
                step,
                time,
                line,
                ..
            } => {
                let key = (job, step);
                let at = DateTime::parse_from_rfc3339(&time)
                    .map_or_else(|_| Utc::now(), |t| t.with_timezone(&Utc));
                if self.deploys.contains_key(&key) {
                    if let Some(report) = DeployReport::parse(&line) {
                        self.reports.insert(key.clone(), report);
                    } else if let Ok(event) = serde_json::from_str::<HostEvent>(&line) {
                        self.host_times
                            .entry(key.clone())
                            .or_default()
                            .entry(event.host)
                            .and_modify(|(_, last)| *last = at)
                            .or_insert((at, at));
                    }
                }
                let id = self.steps.get(&key).copied();
                self.line(id, at, line);
            }
            Event::StepNote {
                job,
                step,
                severity,
                message,
            } => {
                let id = self.steps.get(&(job, step)).copied();
                let line = match severity {
                    Severity::Warning => format!("warning: {message}"),
                    Severity::Info => message,
                };
                self.line(id, Utc::now(), line);
            }
            Event::StepFinished {
                job,
                step,
                name,
                status,
                exit_code,
                millis,
                cache,
            } => {
                self.flush().await?;
                let id = self.step_id(&job, step, &name).await?;
                if let Some(cache) = cache {
                    let save = self.saves.contains(&(job.clone(), step));
                    let used = cache_use(&job, Some(id), save, cache, millis);
                    self.store.record_cache(self.run, &used).await?;
                }
                self.store
                    .finish_step(
                        id,
                        step_status(status),
                        exit_code,
                        Duration::from_millis(millis),
                    )
                    .await?;
                self.record_deployments(&(job, step)).await?;
            }
            Event::JobFinished {
                job,
                status,
                reason,
                ..
            } => {
                self.flush().await?;
                let id = self.job_id(&job).await?;
                self.store.set_job_status(id, job_status(status)).await?;
                if let Some(reason) = reason {
                    self.note(format!("{job}: {}: {reason}", job_status(status)));
                }
            }
            Event::RunFinished { record } => {
                self.flush().await?;
                self.keep_results(&record).await?;
            }
        }
        Ok(())
    }

    /// A finished deploy step's per-host outcome, into the store's deployments of the run.
    async fn record_deployments(&mut self, key: &(String, usize)) -> Result<(), StoreError> {
        let (Some(environment), Some(report)) =
            (self.deploys.get(key).cloned(), self.reports.remove(key))
        else {
            return Ok(());
        };
        let step = self.steps.get(key).copied();
        let times = self.host_times.remove(key).unwrap_or_default();
        for host in report.hosts {
            self.note(format!(
                "deploy to {environment}: {}: {} ({}){}",
                host.host,
                host.result.replace('_', " "),
                host.release,
                host.detail
                    .as_deref()
                    .map(|d| format!(": {d}"))
                    .unwrap_or_default()
            ));
            let millis = times
                .get(&host.host)
                .and_then(|(first, last)| u64::try_from((*last - *first).num_milliseconds()).ok());
            let deployment = NewDeployment {
                run: Some(self.run),
                project: self.project.clone(),
                environment: environment.clone(),
                host: host.host,
                release: host.release,
                outcome: host.result,
                detail: host.detail,
                who: format!("run {}", self.run),
                step,
                millis,
            };
            self.store.record_deployment(&deployment).await?;
        }
        self.flush().await
    }

    /// The record's JUnit results and artifacts, into the store.
    async fn keep_results(&mut self, record: &RunRecord) -> Result<(), StoreError> {
        for job in &record.jobs {
            if let Some(report) = &job.tests {
                let count = |o: &Outcome| {
                    u32::try_from(report.cases.iter().filter(|c| &c.outcome == o).count())
                        .unwrap_or(u32::MAX)
                };
                let suite = TestSuite {
                    name: job.name.clone(),
                    step: None,
                    tests: u32::try_from(report.cases.len()).unwrap_or(u32::MAX),
                    failures: count(&Outcome::Failed),
                    errors: count(&Outcome::Error),
                    skipped: count(&Outcome::Skipped),
                    duration: Duration::from_secs_f64(report.seconds.max(0.0)),
                    cases: report
                        .cases
                        .iter()
                        .map(|c| TestCase {
                            classname: c.classname.clone(),
                            name: c.name.clone(),
                            outcome: match c.outcome {
                                Outcome::Passed => TestOutcome::Passed,
                                Outcome::Failed => TestOutcome::Failed,
                                Outcome::Error => TestOutcome::Error,
                                Outcome::Skipped => TestOutcome::Skipped,
                            },
                            duration: Duration::from_secs_f64(c.seconds.max(0.0)),
                            // The message's first line, then the traceback: the Tests tab
                            // shows both.
                            message: Some(if c.details.trim().is_empty() {
                                c.message.clone()
                            } else {
                                format!("{}\n{}", c.message, c.details.trim_end())
                            })
                            .filter(|m| !m.trim().is_empty()),
                        })
                        .collect(),
                };
                self.store.add_test_suite(self.run, &suite).await?;
            }
            for step in &job.steps {
                for artifact in &step.artifacts {
                    let full = record.dir.join(&artifact.stored);
                    let Ok(relative) = full.strip_prefix(&self.data_dir) else {
                        continue;
                    };
                    let name = Path::new(&artifact.stored)
                        .strip_prefix("artifacts")
                        .unwrap_or(Path::new(&artifact.stored))
                        .to_string_lossy()
                        .into_owned();
                    self.store
                        .add_artifact(self.run, &name, &relative.to_string_lossy(), artifact.bytes)
                        .await?;
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use hoist_pipeline::record::CacheRecord;

    fn outcome(save: bool, matched: Option<&str>, exact: bool, saved: bool) -> String {
        let record = CacheRecord {
            keys: vec!["deps-abc".into(), "deps-".into()],
            matched: matched.map(str::to_string),
            exact,
            saved,
            bytes: 10,
        };
        super::cache_use("test", None, save, record, 5).outcome
    }

    #[test]
    fn a_cache_step_is_a_hit_a_fallback_a_miss_a_save_or_an_existing_key() {
        assert_eq!(outcome(false, Some("deps-abc"), true, false), "hit");
        assert_eq!(outcome(false, Some("deps-old"), false, false), "fallback");
        assert_eq!(outcome(false, None, false, false), "miss");
        assert_eq!(outcome(true, None, false, true), "saved");
        // A save that found its key taken leaves the record an exact restore would.
        assert_eq!(outcome(true, Some("deps-abc"), true, false), "exists");
    }
}
