//! Runs a pipeline: jobs in parallel (bounded) once the jobs they require passed, each job's
//! services started first and stopped last, its steps in order in a clean workspace.

use crate::cache_key::{self, KeyContext};
use crate::cache_store::{CacheStore, SaveOutcome};
use crate::event::{Event, Stream};
use crate::junit::TestReport;
use crate::mask::SecretMasker;
use crate::process::{supervise, Limits, ProcessEnd};
use crate::record::{
    ArtifactRecord, CacheRecord, JobRecord, JobStatus, RunRecord, ServiceRecord, StepRecord,
    StepStatus,
};
use crate::services::{self, RunningService};
use hoist_config::pipeline::{Job, Pipeline, RunStep, Step, StepKind, When};
use std::collections::HashMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

static CANCEL_ALL: AtomicBool = AtomicBool::new(false);

/// Cancels every run in this process (for a Ctrl-C handler): running steps are killed,
/// services stopped, nothing more starts.
pub fn request_cancel() {
    CANCEL_ALL.store(true, Ordering::SeqCst);
}

fn cancelled(opts: &RunOptions) -> bool {
    opts.cancel.load(Ordering::Relaxed) || CANCEL_ALL.load(Ordering::Relaxed)
}

/// How to run a pipeline.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// The project: a git repository whose commit is checked out.
    pub project_dir: PathBuf,
    /// The hoist.toml the pipeline came from (passed on to `hoist deploy`).
    pub config_path: PathBuf,
    /// The commit to run (anything `git rev-parse` takes); default `HEAD`.
    pub revision: Option<String>,
    /// The branch to run as; default the checked-out branch.
    pub branch: Option<String>,
    /// Run only these jobs (their `requires` are not run); empty for all.
    pub jobs: Vec<String>,
    /// Run records, logs and workspaces (`$HOIST_CI_DIR` or `<project>/.hoist-ci`).
    pub ci_dir: PathBuf,
    /// The cache store (`$HOIST_CACHE_DIR` or `~/.cache/hoist/ci`).
    pub cache_dir: PathBuf,
    /// The hoist binary that `deploy` steps run.
    pub hoist_exe: PathBuf,
    /// Whether `deploy` steps run (false: they are skipped, and say so).
    pub deploy: bool,
    /// Set to stop the run: running steps are killed, nothing more starts.
    pub cancel: Arc<AtomicBool>,
    /// Overrides the pipeline's `max_parallel`.
    pub max_parallel: Option<usize>,
}

impl RunOptions {
    /// Options for the project of `config_path` with the default directories.
    pub fn new(config_path: &Path) -> Self {
        let config_path =
            std::path::absolute(config_path).unwrap_or_else(|_| config_path.to_path_buf());
        let project_dir = config_path
            .parent()
            .map_or_else(|| PathBuf::from("."), Path::to_path_buf);
        let ci_dir = std::env::var_os("HOIST_CI_DIR")
            .filter(|d| !d.is_empty())
            .map_or_else(|| project_dir.join(".hoist-ci"), PathBuf::from);
        Self {
            ci_dir,
            cache_dir: CacheStore::default_dir(),
            hoist_exe: std::env::current_exe().unwrap_or_else(|_| PathBuf::from("hoist")),
            project_dir,
            config_path,
            revision: None,
            branch: None,
            jobs: Vec::new(),
            deploy: true,
            cancel: Arc::new(AtomicBool::new(false)),
            max_parallel: None,
        }
    }
}

/// A run that could not start.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// git could not tell the commit or branch.
    #[error("{0}")]
    Git(String),
    /// A secret is missing or its file is unsafe.
    #[error(transparent)]
    Secret(#[from] crate::secrets::SecretError),
    /// `--job` names no job.
    #[error("no job named {0:?} in the pipeline")]
    UnknownJob(String),
    /// The run's directories cannot be written.
    #[error("{path}: {source}")]
    Io {
        /// Where.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The cache store cannot be opened.
    #[error(transparent)]
    Cache(#[from] crate::cache_store::CacheError),
    /// The run's record could not be checked for secrets, so it is not written.
    #[error(transparent)]
    Mask(#[from] crate::mask::MaskError),
}

impl RunError {
    /// How to fix it.
    pub fn hint(&self) -> Option<String> {
        match self {
            Self::Git(_) => Some("run hoist ci run inside a git repository with at least one commit, or pass --revision".into()),
            Self::Secret(e) => Some(e.hint()),
            Self::UnknownJob(_) => Some("hoist ci jobs lists the pipeline's jobs".into()),
            Self::Io { .. } => Some("set HOIST_CI_DIR to a writable directory".into()),
            Self::Cache(_) => Some("set HOIST_CACHE_DIR to a writable directory".into()),
            Self::Mask(_) => Some("use a HOIST_CI_DIR whose path is valid UTF-8, and secrets that are not words of the record itself (such as \"passed\")".into()),
        }
    }
}

fn git(project: &Path, args: &[&str]) -> Result<String, String> {
    let out = Command::new("git")
        .arg("-C")
        .arg(project)
        .args(args)
        .output()
        .map_err(|e| format!("cannot run git: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "git {} failed in {}: {}",
            args.join(" "),
            project.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

fn millis(since: Instant) -> u64 {
    since.elapsed().as_millis() as u64
}

/// Everything the jobs of one run share.
struct RunCtx<'a> {
    pipeline: &'a Pipeline,
    opts: &'a RunOptions,
    commit: String,
    branch: String,
    run_id: String,
    run_dir: PathBuf,
    store: CacheStore,
    masker: SecretMasker,
    secrets: Vec<(String, String)>,
    emit: &'a (dyn Fn(Event) + Sync),
}

impl RunCtx<'_> {
    /// Emits an event: the one way out for events, so every string in it — whatever the field —
    /// is masked here.
    fn send(&self, event: Event) {
        match self.masker.mask_value(event, "an event") {
            Ok(event) => (self.emit)(event),
            Err(e) => (self.emit)(Event::Warning {
                job: None,
                message: format!("an event was withheld: {e}"),
            }),
        }
    }
}

/// Runs the pipeline and returns its record (also written to `<run dir>/record.json`).
///
/// `Err` only when the run cannot start; failing jobs are in the record.
pub fn run(
    pipeline: &Pipeline,
    opts: &RunOptions,
    emit: &(dyn Fn(Event) + Sync),
) -> Result<RunRecord, RunError> {
    let started = Instant::now();
    let started_at = now_rfc3339();
    for name in &opts.jobs {
        if pipeline.job(name).is_none() {
            return Err(RunError::UnknownJob(name.clone()));
        }
    }
    let revision = opts.revision.as_deref().unwrap_or("HEAD");
    let commit = git(
        &opts.project_dir,
        &[
            "rev-parse",
            "--verify",
            "--quiet",
            &format!("{revision}^{{commit}}"),
        ],
    )
    .map_err(|e| RunError::Git(format!("cannot resolve revision {revision:?}: {e}")))?;
    let branch = match &opts.branch {
        Some(b) => b.clone(),
        None => git(
            &opts.project_dir,
            &["symbolic-ref", "--short", "-q", "HEAD"],
        )
        .unwrap_or_default(),
    };
    let secrets = crate::secrets::load(
        &pipeline.secrets,
        pipeline.secrets_file.as_deref(),
        &opts.project_dir,
    )?;
    let masker = SecretMasker::new(secrets.iter().map(|(_, v)| v));
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| RunError::Io { path, source }
    };
    fs::create_dir_all(&opts.ci_dir).map_err(io(&opts.ci_dir))?;
    // The directory ignores itself, so a project need not edit its .gitignore.
    let ignore = opts.ci_dir.join(".gitignore");
    if !ignore.exists() {
        fs::write(&ignore, "*\n").map_err(io(&ignore))?;
    }
    let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%S%.3fZ");
    let run_id = format!(
        "{stamp}-{}-{}",
        &commit[..commit.len().min(8)],
        std::process::id()
    );
    let run_dir = opts.ci_dir.join("runs").join(&run_id);
    fs::create_dir_all(&run_dir).map_err(io(&run_dir))?;
    let store = CacheStore::open(&opts.cache_dir)?;
    let selected: Vec<&Job> = pipeline
        .jobs
        .iter()
        .filter(|j| opts.jobs.is_empty() || opts.jobs.contains(&j.name))
        .collect();
    let ctx = RunCtx {
        pipeline,
        opts,
        commit: commit.clone(),
        branch: branch.clone(),
        run_id: run_id.clone(),
        run_dir: run_dir.clone(),
        store,
        masker,
        secrets,
        emit,
    };
    ctx.send(Event::RunStarted {
        run_id: run_id.clone(),
        commit: commit.clone(),
        branch: branch.clone(),
        jobs: selected.iter().map(|j| j.name.clone()).collect(),
        dir: run_dir.clone(),
    });
    if branch.is_empty() {
        ctx.send(Event::Warning {
            job: None,
            message:
                "HEAD is detached and no --branch was given: jobs with `only` filters will not run"
                    .into(),
        });
    }
    if git(
        &opts.project_dir,
        &["status", "--porcelain", "--untracked-files=no"],
    )
    .is_ok_and(|s| !s.is_empty())
    {
        ctx.send(Event::Warning {
            job: None,
            message: format!(
                "the working tree has uncommitted changes; the run uses commit {} as committed",
                &commit[..commit.len().min(12)]
            ),
        });
    }
    let jobs = schedule(&ctx, &selected);
    let passed = !jobs.iter().any(|j| j.status.is_failure());
    let record = RunRecord {
        id: run_id,
        commit,
        branch,
        started_at,
        millis: millis(started),
        passed,
        dir: run_dir.clone(),
        jobs,
    };
    // The one way out for the record (record.json, the last event, the caller's summary).
    let record = ctx.masker.mask_value(record, "the run's record")?;
    let path = run_dir.join("record.json");
    fs::write(
        &path,
        serde_json::to_vec_pretty(&record).unwrap_or_default(),
    )
    .map_err(io(&path))?;
    ctx.send(Event::RunFinished {
        record: Box::new(record.clone()),
    });
    Ok(record)
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum State {
    Pending,
    Running,
    Done(JobStatus),
}

fn skipped(job: &Job, reason: String) -> JobRecord {
    JobRecord {
        name: job.name.clone(),
        status: JobStatus::Skipped,
        reason: Some(reason),
        millis: 0,
        services: Vec::new(),
        steps: Vec::new(),
        tests: None,
    }
}

/// Starts each job once its required jobs are done, at most `max_parallel` at a time.
fn schedule(ctx: &RunCtx<'_>, jobs: &[&Job]) -> Vec<JobRecord> {
    let max = ctx
        .opts
        .max_parallel
        .unwrap_or(ctx.pipeline.max_parallel)
        .max(1);
    let mut state: HashMap<&str, State> = jobs
        .iter()
        .map(|j| (j.name.as_str(), State::Pending))
        .collect();
    let records: Mutex<HashMap<String, JobRecord>> = Mutex::new(HashMap::new());
    let finish = |job: &Job, record: JobRecord| {
        records
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(job.name.clone(), record);
    };
    for job in jobs {
        if let Some(reason) = job.filter.refusal(&ctx.branch) {
            ctx.send(Event::JobSkipped {
                job: job.name.clone(),
                reason: reason.clone(),
            });
            finish(job, skipped(job, reason));
            state.insert(&job.name, State::Done(JobStatus::Skipped));
        }
    }
    std::thread::scope(|scope| {
        let (tx, rx) = mpsc::channel::<(String, JobStatus)>();
        let mut running = 0;
        loop {
            for job in jobs {
                if state[job.name.as_str()] != State::Pending {
                    continue;
                }
                // Requires on jobs outside the selection (--job) are taken as met.
                let required: Vec<(&String, State)> = job
                    .requires
                    .iter()
                    .filter_map(|r| state.get(r.as_str()).map(|s| (r, *s)))
                    .collect();
                if let Some((r, State::Done(status))) = required
                    .iter()
                    .find(|(_, s)| matches!(s, State::Done(st) if *st != JobStatus::Passed))
                {
                    let reason = format!(
                        "required job {r:?} {}",
                        match status {
                            JobStatus::Skipped => "was skipped",
                            JobStatus::Failed => "failed",
                            JobStatus::TimedOut => "timed out",
                            JobStatus::Cancelled => "was cancelled",
                            JobStatus::Passed => "passed",
                        }
                    );
                    ctx.send(Event::JobSkipped {
                        job: job.name.clone(),
                        reason: reason.clone(),
                    });
                    finish(job, skipped(job, reason));
                    state.insert(&job.name, State::Done(JobStatus::Skipped));
                    continue;
                }
                if cancelled(ctx.opts) {
                    let reason = "the run was cancelled before the job started".to_string();
                    ctx.send(Event::JobFinished {
                        job: job.name.clone(),
                        status: JobStatus::Cancelled,
                        reason: Some(reason.clone()),
                        millis: 0,
                    });
                    finish(
                        job,
                        JobRecord {
                            status: JobStatus::Cancelled,
                            ..skipped(job, reason)
                        },
                    );
                    state.insert(&job.name, State::Done(JobStatus::Cancelled));
                    continue;
                }
                if running < max
                    && required
                        .iter()
                        .all(|(_, s)| *s == State::Done(JobStatus::Passed))
                {
                    state.insert(&job.name, State::Running);
                    running += 1;
                    let tx = tx.clone();
                    let finish = &finish;
                    scope.spawn(move || {
                        let record = run_job(ctx, job);
                        let status = record.status;
                        finish(job, record);
                        let _ = tx.send((job.name.clone(), status));
                    });
                }
            }
            if running == 0 {
                break;
            }
            let Ok((name, status)) = rx.recv() else { break };
            running -= 1;
            if let Some(s) = state.get_mut(name.as_str()) {
                *s = State::Done(status);
            }
        }
    });
    let mut records = records
        .into_inner()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    jobs.iter()
        .filter_map(|j| records.remove(&j.name))
        .collect()
}

/// A job's workspace, held exclusively for the job's duration.
struct Workspace {
    dir: PathBuf,
    lock: PathBuf,
}

impl Drop for Workspace {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.lock);
    }
}

/// Takes `<ci_dir>/work/<job>` for this run, empty. The path is stable so that cached
/// virtualenvs (which hold absolute paths) work when restored.
fn take_workspace(ci_dir: &Path, job: &str) -> Result<Workspace, String> {
    let work = ci_dir.join("work");
    fs::create_dir_all(&work).map_err(|e| format!("cannot create {}: {e}", work.display()))?;
    let dir = work.join(job);
    let lock = work.join(format!("{job}.lock"));
    for _ in 0..2 {
        match fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&lock)
        {
            Ok(mut f) => {
                let _ = write!(f, "{}", std::process::id());
                if dir.exists() {
                    fs::remove_dir_all(&dir).map_err(|e| {
                        format!("cannot empty the workspace {}: {e}", dir.display())
                    })?;
                }
                fs::create_dir_all(&dir)
                    .map_err(|e| format!("cannot create the workspace {}: {e}", dir.display()))?;
                return Ok(Workspace { dir, lock });
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                let owner = fs::read_to_string(&lock).unwrap_or_default();
                let alive = owner
                    .trim()
                    .parse::<u32>()
                    .is_ok_and(|pid| Path::new(&format!("/proc/{pid}")).exists());
                if alive {
                    return Err(format!("the workspace {} is in use by another run (pid {}); wait for it, or use another HOIST_CI_DIR", dir.display(), owner.trim()));
                }
                // Left by a run that died: reclaim it.
                let _ = fs::remove_file(&lock);
            }
            Err(e) => return Err(format!("cannot lock {}: {e}", lock.display())),
        }
    }
    Err(format!("cannot lock {}", lock.display()))
}

struct JobRun<'a, 'b> {
    ctx: &'a RunCtx<'b>,
    job: &'a Job,
    workspace: PathBuf,
    env: Vec<(String, String)>,
    deadline: Option<Instant>,
    /// The job's last restore_cache restored its first key exactly.
    exact_hit: bool,
    tests: Option<TestReport>,
}

fn run_job(ctx: &RunCtx<'_>, job: &Job) -> JobRecord {
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
    let end = |ctx: &RunCtx<'_>, mut record: JobRecord| {
        record.millis = millis(started);
        ctx.send(Event::JobFinished {
            job: record.name.clone(),
            status: record.status,
            reason: record.reason.clone(),
            millis: record.millis,
        });
        record
    };
    let workspace = match take_workspace(&ctx.opts.ci_dir, &job.name) {
        Ok(w) => w,
        Err(reason) => {
            record.status = JobStatus::Failed;
            record.reason = Some(reason);
            return end(ctx, record);
        }
    };
    // Services live until this function returns: dropping them stops them, whatever happened.
    let mut running: Vec<RunningService> = Vec::new();
    let scratch = services::scratch_root();
    for spec in &job.services {
        match services::start(spec, &scratch) {
            Ok(service) => {
                ctx.send(Event::ServiceStarted {
                    job: job.name.clone(),
                    service: service.kind.into(),
                    port: service.port,
                    millis: service.startup.as_millis() as u64,
                });
                record.services.push(ServiceRecord {
                    kind: service.kind.into(),
                    port: Some(service.port),
                    millis: service.startup.as_millis() as u64,
                    error: None,
                    log: None,
                });
                running.push(service);
            }
            Err(e) => {
                ctx.send(Event::ServiceFailed {
                    job: job.name.clone(),
                    service: e.service.clone(),
                    message: e.message.clone(),
                    log: e.log.clone(),
                });
                record.services.push(ServiceRecord {
                    kind: e.service.clone(),
                    port: None,
                    millis: 0,
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
                drop(running);
                drop(workspace);
                return end(ctx, record);
            }
        }
    }
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
    let mut jr = JobRun {
        ctx,
        job,
        workspace: workspace.dir.clone(),
        env,
        deadline: job.timeout.map(|t| started + t),
        exact_hit: false,
        tests: None,
    };
    let mut failing = false;
    let mut stopped: Option<(JobStatus, String)> = None;
    for (i, step) in job.steps.iter().enumerate() {
        let number = i + 1;
        if stopped.is_none() {
            if cancelled(ctx.opts) {
                stopped = Some((JobStatus::Cancelled, "the run was cancelled".into()));
            } else if jr.deadline.is_some_and(|d| Instant::now() >= d) {
                stopped = Some((JobStatus::TimedOut, timeout_reason(job)));
            }
        }
        if let Some((_, reason)) = &stopped {
            // A cancelled or timed-out job runs nothing more, not even `always` steps.
            let rec = not_run(step, reason);
            ctx.send(Event::StepFinished {
                job: job.name.clone(),
                step: number,
                name: step.name.clone(),
                status: StepStatus::Skipped,
                exit_code: None,
                millis: 0,
            });
            record.steps.push(rec);
            continue;
        }
        let runs = match step.when {
            When::OnSuccess => !failing,
            When::Always => true,
            When::OnFail => failing,
        };
        if !runs {
            let reason = if failing {
                "an earlier step failed"
            } else {
                "no earlier step failed (when = on_fail)"
            };
            ctx.send(Event::StepFinished {
                job: job.name.clone(),
                step: number,
                name: step.name.clone(),
                status: StepStatus::Skipped,
                exit_code: None,
                millis: 0,
            });
            record.steps.push(not_run(step, reason));
            continue;
        }
        let rec = jr.run_step(number, step);
        match rec.status {
            StepStatus::Failed => failing = true,
            StepStatus::TimedOut if jr.deadline.is_some_and(|d| Instant::now() >= d) => {
                stopped = Some((JobStatus::TimedOut, timeout_reason(job)))
            }
            StepStatus::TimedOut => failing = true,
            StepStatus::Cancelled => {
                stopped = Some((JobStatus::Cancelled, "the run was cancelled".into()))
            }
            StepStatus::Passed | StepStatus::Skipped => {}
        }
        if failing && record.reason.is_none() {
            record.reason = Some(format!("step {number} ({}) failed", rec.name));
        }
        record.steps.push(rec);
    }
    if let Some((status, reason)) = stopped {
        record.status = status;
        record.reason = Some(reason);
    } else if failing {
        record.status = JobStatus::Failed;
    }
    record.tests = jr.tests.take();
    drop(running);
    drop(workspace);
    end(ctx, record)
}

fn timeout_reason(job: &Job) -> String {
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
        notes: vec![reason.to_string()],
        log: None,
        cache: None,
        artifacts: Vec::new(),
    }
}

/// A step's log file: one `<time> <out|err> <line>` per line, secrets masked.
struct StepLog {
    file: Option<fs::File>,
}

impl JobRun<'_, '_> {
    fn note(&self, number: usize, rec: &mut StepRecord, message: String) {
        self.ctx.send(Event::StepNote {
            job: self.job.name.clone(),
            step: number,
            message: message.clone(),
        });
        rec.notes.push(message);
    }

    fn env_lookup(&self, extra: &[(String, String)]) -> impl Fn(&str) -> Option<String> + '_ {
        let extra = extra.to_vec();
        move |name: &str| {
            extra
                .iter()
                .rev()
                .chain(self.env.iter().rev())
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
                .or_else(|| std::env::var(name).ok())
        }
    }

    fn render(&self, template: &str) -> Result<String, cache_key::KeyError> {
        let lookup = self.env_lookup(&[]);
        let epoch = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let key = cache_key::render(
            template,
            &KeyContext {
                branch: &self.ctx.branch,
                revision: &self.ctx.commit,
                epoch,
                base_dir: &self.workspace,
                env: &lookup,
            },
        )?;
        if self.ctx.masker.reveals(&key) {
            let name = self
                .ctx
                .secrets
                .iter()
                .find(|(_, value)| SecretMasker::new([value]).reveals(&key))
                .map_or_else(|| "?".to_string(), |(name, _)| name.clone());
            return Err(cache_key::KeyError::Secret {
                template: template.into(),
                name,
            });
        }
        Ok(key)
    }

    fn run_step(&mut self, number: usize, step: &Step) -> StepRecord {
        let started = Instant::now();
        let job = self.job.name.clone();
        self.ctx.send(Event::StepStarted {
            job: job.clone(),
            step: number,
            name: step.name.clone(),
        });
        let mut rec = StepRecord {
            name: step.name.clone(),
            kind: step.kind.key().into(),
            status: StepStatus::Passed,
            exit_code: None,
            millis: 0,
            notes: Vec::new(),
            log: None,
            cache: None,
            artifacts: Vec::new(),
        };
        match &step.kind {
            StepKind::Checkout => self.checkout(number, &mut rec),
            StepKind::Run(run) => self.run_script(number, run, &mut rec),
            StepKind::RestoreCache { keys } => self.restore_cache(number, keys, &mut rec),
            StepKind::SaveCache { key, paths } => self.save_cache(number, key, paths, &mut rec),
            StepKind::Artifacts { path, destination } => {
                self.artifacts(number, path, destination, &mut rec)
            }
            StepKind::TestResults { path } => self.test_results(number, path, &mut rec),
            StepKind::Deploy { environment } => {
                self.deploy(number, environment.as_deref(), &mut rec)
            }
        }
        rec.millis = millis(started);
        self.ctx.send(Event::StepFinished {
            job,
            step: number,
            name: rec.name.clone(),
            status: rec.status,
            exit_code: rec.exit_code,
            millis: rec.millis,
        });
        rec
    }

    fn open_log(&self, number: usize, rec: &mut StepRecord) -> StepLog {
        let dir = self.ctx.run_dir.join("logs").join(&self.job.name);
        let path = dir.join(format!("{number:02}.log"));
        let file = fs::create_dir_all(&dir)
            .and_then(|()| fs::File::create(&path))
            .ok();
        if file.is_some() {
            rec.log = Some(path);
        }
        StepLog { file }
    }

    /// Runs a process as a step's body, logging and emitting each line.
    fn process(
        &self,
        number: usize,
        cmd: Command,
        no_output: Option<std::time::Duration>,
        rec: &mut StepRecord,
    ) -> Option<ProcessEnd> {
        self.process_observed(number, cmd, no_output, rec, &mut |_, _| {})
    }

    /// [`Self::process`], showing each line (unmasked) to `observe` as well.
    fn process_observed(
        &self,
        number: usize,
        cmd: Command,
        no_output: Option<std::time::Duration>,
        rec: &mut StepRecord,
        observe: &mut dyn FnMut(Stream, &str),
    ) -> Option<ProcessEnd> {
        let mut log = self.open_log(number, rec);
        let mut writer = log.file.as_mut().map(std::io::BufWriter::new);
        let opts = self.ctx.opts;
        let is_cancelled = move || cancelled(opts);
        let limits = Limits {
            no_output,
            deadline: self.deadline,
            cancelled: &is_cancelled,
        };
        let mut on_line = |stream: Stream, line: String| {
            observe(stream, &line);
            // The log file is written here, not through `send`: mask it on the way in.
            let line = self.ctx.masker.mask(&line);
            let time = now_rfc3339();
            if let Some(w) = writer.as_mut() {
                let tag = if stream == Stream::Out { "out" } else { "err" };
                let _ = writeln!(w, "{time} {tag} {line}");
            }
            self.ctx.send(Event::Output {
                job: self.job.name.clone(),
                step: number,
                time,
                stream,
                line,
            });
        };
        let result = supervise(cmd, &limits, &mut on_line);
        if let Some(w) = writer.as_mut() {
            let _ = w.flush();
        }
        match result {
            Ok(end) => Some(end),
            Err(e) => {
                rec.status = StepStatus::Failed;
                self.note(number, rec, format!("cannot start the step's process: {e}"));
                None
            }
        }
    }

    fn finish_process(
        &self,
        number: usize,
        end: Option<ProcessEnd>,
        no_output: Option<std::time::Duration>,
        rec: &mut StepRecord,
    ) {
        match end {
            None => {}
            Some(ProcessEnd::Exited(0)) => rec.exit_code = Some(0),
            Some(ProcessEnd::Exited(code)) => {
                rec.exit_code = Some(code);
                rec.status = StepStatus::Failed;
                self.note(number, rec, format!("exited with code {code}"));
            }
            Some(ProcessEnd::NoOutput) => {
                rec.status = StepStatus::TimedOut;
                self.note(
                    number,
                    rec,
                    format!(
                        "killed after {}s without output (no_output_timeout)",
                        no_output.map_or(0, |d| d.as_secs())
                    ),
                );
            }
            Some(ProcessEnd::Deadline) => {
                rec.status = StepStatus::TimedOut;
                self.note(number, rec, timeout_reason(self.job));
            }
            Some(ProcessEnd::Cancelled) => {
                rec.status = StepStatus::Cancelled;
                self.note(number, rec, "killed: the run was cancelled".into());
            }
        }
    }

    fn command(
        &self,
        program: impl AsRef<std::ffi::OsStr>,
        cwd: &Path,
        extra: &[(String, String)],
    ) -> Command {
        let mut cmd = Command::new(program);
        cmd.current_dir(cwd);
        cmd.envs(self.env.iter().map(|(k, v)| (k, v)));
        cmd.envs(extra.iter().map(|(k, v)| (k, v)));
        cmd
    }

    fn checkout(&self, number: usize, rec: &mut StepRecord) {
        let ws = &self.workspace;
        // Restored caches may already be in the workspace: clear everything, then clone into it.
        if let Ok(entries) = fs::read_dir(ws) {
            for entry in entries.flatten() {
                let path = entry.path();
                let _ = if path.is_dir() && !path.is_symlink() {
                    fs::remove_dir_all(&path)
                } else {
                    fs::remove_file(&path)
                };
            }
        }
        let script = "git clone --quiet --shared --no-checkout \"$1\" . && git -c advice.detachedHead=false checkout --quiet --detach \"$2\" && git log -1 --format='checked out %H (%s)'";
        let mut cmd = self.command("sh", ws, &[]);
        cmd.args(["-ec", script, "checkout"])
            .arg(&self.ctx.opts.project_dir)
            .arg(&self.ctx.commit);
        let end = self.process(number, cmd, None, rec);
        self.finish_process(number, end, None, rec);
    }

    fn run_script(&mut self, number: usize, run: &RunStep, rec: &mut StepRecord) {
        if run.unless_cache_hit && self.exact_hit {
            rec.status = StepStatus::Skipped;
            self.note(
                number,
                rec,
                "skipped: the cache was restored from its exact key (unless_cache_hit)".into(),
            );
            return;
        }
        let scripts = self.ctx.run_dir.join("scripts");
        let script = scripts.join(format!("{}-{number:02}.sh", self.job.name));
        if let Err(e) = fs::create_dir_all(&scripts).and_then(|()| fs::write(&script, &run.command))
        {
            rec.status = StepStatus::Failed;
            self.note(
                number,
                rec,
                format!("cannot write the step's script {}: {e}", script.display()),
            );
            return;
        }
        let cwd = run
            .working_directory
            .as_ref()
            .map_or_else(|| self.workspace.clone(), |d| self.workspace.join(d));
        let Some((program, args)) = run.shell.split_first() else {
            rec.status = StepStatus::Failed;
            self.note(number, rec, "the step's shell is empty".into());
            return;
        };
        let mut cmd = self.command(program, &cwd, &run.environment);
        cmd.args(args).arg(&script);
        let end = self.process(number, cmd, Some(run.no_output_timeout), rec);
        self.finish_process(number, end, Some(run.no_output_timeout), rec);
    }

    fn restore_cache(&mut self, number: usize, templates: &[String], rec: &mut StepRecord) {
        self.exact_hit = false;
        let mut keys = Vec::new();
        for template in templates {
            match self.render(template) {
                Ok(key) => keys.push(key),
                Err(e) => {
                    rec.status = StepStatus::Failed;
                    self.note(number, rec, e.to_string());
                    return;
                }
            }
        }
        match self.ctx.store.restore(&keys, &self.workspace) {
            Ok(Some(restored)) => {
                self.exact_hit = restored.entry.key == keys[0];
                self.note(
                    number,
                    rec,
                    format!(
                        "restored cache {} ({} bytes, {} entries) for key {}",
                        restored.entry.key, restored.entry.bytes, restored.files, restored.prefix
                    ),
                );
                rec.cache = Some(CacheRecord {
                    keys,
                    matched: Some(restored.entry.key),
                    exact: self.exact_hit,
                    saved: false,
                    bytes: restored.entry.bytes,
                });
            }
            Ok(None) => {
                self.note(
                    number,
                    rec,
                    format!("warning: no cache found for keys: {}", keys.join(", ")),
                );
                rec.cache = Some(CacheRecord {
                    keys,
                    matched: None,
                    exact: false,
                    saved: false,
                    bytes: 0,
                });
            }
            Err(e) => {
                rec.status = StepStatus::Failed;
                self.note(number, rec, e.to_string());
            }
        }
    }

    fn save_cache(&self, number: usize, template: &str, paths: &[String], rec: &mut StepRecord) {
        let key = match self.render(template) {
            Ok(k) => k,
            Err(e) => {
                rec.status = StepStatus::Failed;
                self.note(number, rec, e.to_string());
                return;
            }
        };
        match self.ctx.store.save(&key, paths, &self.workspace) {
            Ok(SaveOutcome::Saved(entry)) => {
                self.note(
                    number,
                    rec,
                    format!(
                        "saved cache {key} ({} bytes: {})",
                        entry.bytes,
                        entry.paths.join(", ")
                    ),
                );
                rec.cache = Some(CacheRecord {
                    keys: vec![key],
                    matched: None,
                    exact: false,
                    saved: true,
                    bytes: entry.bytes,
                });
                // Keep the store within its bounds; a failure here must not fail the job.
                let limits = self.ctx.pipeline.cache;
                if let Err(e) = self.ctx.store.prune(limits.max_bytes, limits.max_age) {
                    self.note(
                        number,
                        rec,
                        format!("warning: pruning the cache store failed: {e}"),
                    );
                }
            }
            Ok(SaveOutcome::Exists(entry)) => {
                self.note(
                    number,
                    rec,
                    format!("cache {key} already exists, not saved (a key is never overwritten)"),
                );
                rec.cache = Some(CacheRecord {
                    keys: vec![key.clone()],
                    matched: Some(key),
                    exact: true,
                    saved: false,
                    bytes: entry.bytes,
                });
            }
            Err(e) => {
                rec.status = StepStatus::Failed;
                self.note(number, rec, e.to_string());
            }
        }
    }

    fn artifacts(&self, number: usize, path: &str, destination: &str, rec: &mut StepRecord) {
        let source = self.workspace.join(path);
        if !source.exists() {
            self.note(
                number,
                rec,
                format!("warning: no artifacts: {path} does not exist in the workspace"),
            );
            return;
        }
        let stored = Path::new("artifacts")
            .join(&self.job.name)
            .join(destination.trim_start_matches('/'));
        let target = self.ctx.run_dir.join(&stored);
        let copied = target
            .parent()
            .map_or(Ok(()), fs::create_dir_all)
            .and_then(|()| {
                let out = Command::new("cp")
                    .arg("-a")
                    .arg(&source)
                    .arg(&target)
                    .output()?;
                if out.status.success() {
                    Ok(())
                } else {
                    Err(std::io::Error::other(
                        String::from_utf8_lossy(&out.stderr).trim().to_string(),
                    ))
                }
            });
        if let Err(e) = copied {
            rec.status = StepStatus::Failed;
            self.note(
                number,
                rec,
                format!("cannot copy {path} to {}: {e}", target.display()),
            );
            return;
        }
        let (files, bytes) = count_files(&target);
        self.note(
            number,
            rec,
            format!(
                "stored {files} file(s), {bytes} bytes from {path} as {}",
                stored.display()
            ),
        );
        rec.artifacts.push(ArtifactRecord {
            source: path.into(),
            stored: stored.display().to_string(),
            files,
            bytes,
        });
    }

    fn test_results(&mut self, number: usize, path: &str, rec: &mut StepRecord) {
        let source = self.workspace.join(path);
        let mut files = Vec::new();
        collect_xml(&source, &mut files);
        files.sort();
        if files.is_empty() {
            self.note(
                number,
                rec,
                format!("warning: no JUnit XML found at {path}"),
            );
            return;
        }
        let report = self.tests.get_or_insert_with(TestReport::default);
        let mut errors = Vec::new();
        let dest = self.ctx.run_dir.join("tests").join(&self.job.name);
        for file in &files {
            let shown = file
                .strip_prefix(&self.workspace)
                .unwrap_or(file)
                .to_path_buf();
            match fs::read_to_string(file) {
                Ok(xml) => {
                    if let Err(e) = report.add_xml(&xml, &shown) {
                        errors.push(e.to_string());
                    }
                    // The copy is a file the run keeps: secrets masked, as in the logs.
                    let target = dest.join(&shown);
                    let _ = target
                        .parent()
                        .map_or(Ok(()), fs::create_dir_all)
                        .and_then(|()| fs::write(&target, self.ctx.masker.mask(&xml)));
                }
                Err(e) => errors.push(format!("{}: {e}", shown.display())),
            }
        }
        let summary = format!(
            "{} test(s) from {} file(s): {} failed, {} errors, {} skipped",
            report.cases.len(),
            files.len(),
            report.count(&crate::junit::Outcome::Failed),
            report.count(&crate::junit::Outcome::Error),
            report.count(&crate::junit::Outcome::Skipped)
        );
        self.note(number, rec, summary);
        for e in errors {
            self.note(number, rec, format!("warning: {e}"));
        }
    }

    fn deploy(&self, number: usize, environment: Option<&str>, rec: &mut StepRecord) {
        if !self.ctx.opts.deploy {
            rec.status = StepStatus::Skipped;
            self.note(
                number,
                rec,
                "skipped: deploy steps are off for this run (--no-deploy)".into(),
            );
            return;
        }
        let mut cmd = self.command(&self.ctx.opts.hoist_exe, &self.ctx.opts.project_dir, &[]);
        cmd.arg("--config")
            .arg(&self.ctx.opts.config_path)
            .arg("deploy");
        if let Some(env) = environment {
            cmd.arg(env);
        }
        // The deploy's outcome is read from its last JSON event, not decoded from its exit
        // code: hoist deploy says itself what happened and where each host stands.
        cmd.arg("--ref").arg(&self.ctx.commit).arg("--json");
        let mut outcome: Option<DeployOutcome> = None;
        let end = self.process_observed(number, cmd, None, rec, &mut |stream, line| {
            if stream == Stream::Out {
                if let Ok(event) = serde_json::from_str::<DeployOutcome>(line) {
                    outcome = Some(event);
                }
            }
        });
        match outcome {
            Some(DeployOutcome::Deployed { release, hosts }) => self.note(
                number,
                rec,
                format!("deployed release {release} to {} host(s)", hosts.len()),
            ),
            Some(DeployOutcome::Failed { message, hints }) => {
                self.note(number, rec, format!("hoist deploy failed: {message}"));
                for hint in hints {
                    self.note(number, rec, format!("hint: {hint}"));
                }
            }
            None if matches!(end, Some(ProcessEnd::Exited(_))) => self.note(
                number,
                rec,
                "hoist deploy reported no outcome; its output above says why".into(),
            ),
            None => {}
        }
        self.finish_process(number, end, None, rec);
    }
}

/// The last event of `hoist deploy --json`: what happened, in its own words.
#[derive(serde::Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
enum DeployOutcome {
    /// Every host serves the new release.
    Deployed {
        release: String,
        hosts: Vec<serde_json::Value>,
    },
    /// The deploy failed; the message says where each host stands.
    Failed {
        message: String,
        #[serde(default)]
        hints: Vec<String>,
    },
}

fn collect_xml(path: &Path, out: &mut Vec<PathBuf>) {
    if path.is_file() {
        if path.extension().is_some_and(|e| e == "xml") {
            out.push(path.to_path_buf());
        }
        return;
    }
    if let Ok(entries) = fs::read_dir(path) {
        for entry in entries.flatten() {
            collect_xml(&entry.path(), out);
        }
    }
}

fn count_files(path: &Path) -> (u64, u64) {
    let Ok(meta) = path.symlink_metadata() else {
        return (0, 0);
    };
    if meta.is_file() {
        return (1, meta.len());
    }
    let mut total = (0, 0);
    if meta.is_dir() {
        for entry in fs::read_dir(path).into_iter().flatten().flatten() {
            let (f, b) = count_files(&entry.path());
            total.0 += f;
            total.1 += b;
        }
    }
    total
}
