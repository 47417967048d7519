//! Runs a pipeline: jobs in parallel (bounded) once the jobs they require passed, each job's
//! services started first and stopped last, its steps in order in a clean workspace.
//!
//! [`run`] is the entry point every front end uses (`hoist ci run`, the server): it resolves
//! the commit, loads secrets, opens the cache store and the run's directory, then lets the
//! [`scheduler`] decide which job runs next; [`job`] runs one job, [`workspace`] holds its
//! directory, and [`steps`] has one module per step kind, each returning its outcome.

mod job;
mod scheduler;
mod step;
mod steps;
mod workspace;

use crate::cache_store::CacheStore;
use crate::event::Event;
use crate::mask::SecretMasker;
use crate::record::{JobRecord, JobStatus, RunRecord};
use hoist_config::pipeline::{Job, Pipeline};
use scheduler::{Decision, Scheduler};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Instant;

static CANCEL_ALL: AtomicBool = AtomicBool::new(false);

/// Cancels every run in this process (for a Ctrl-C handler): running steps are killed,
/// services stopped, nothing more starts.
pub fn request_cancel() {
    CANCEL_ALL.store(true, Ordering::SeqCst);
}

pub(crate) fn cancelled(opts: &RunOptions) -> bool {
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

pub(crate) fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

pub(crate) fn millis(since: Instant) -> u64 {
    since.elapsed().as_millis() as u64
}

/// Everything the jobs of one run share.
pub(crate) struct RunCtx<'a> {
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
    pub(crate) fn send(&self, event: Event) {
        match self.masker.mask_value(event, "an event") {
            Ok(event) => (self.emit)(event),
            Err(e) => (self.emit)(Event::Warning {
                job: None,
                message: format!("an event was withheld: {e}"),
            }),
        }
    }
}

/// Runs the pipeline for the commit `opts.revision` of the checked-out project and returns its
/// record (also written to `<run dir>/record.json`); every event goes to `emit` as it happens
/// (secrets masked). The pipeline comes from `hoist_config::pipeline::load`.
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

/// Starts each job once its required jobs passed, at most `max_parallel` at a time, as the
/// [`Scheduler`] decides; returns the jobs' records in definition order.
fn schedule(ctx: &RunCtx<'_>, jobs: &[&Job]) -> Vec<JobRecord> {
    let max = ctx.opts.max_parallel.unwrap_or(ctx.pipeline.max_parallel);
    let mut scheduler = Scheduler::new(
        jobs.iter()
            .map(|j| (j.name.as_str(), j.requires.as_slice())),
        max,
    );
    let mut records: Vec<Option<JobRecord>> = vec![None; jobs.len()];
    for (index, job) in jobs.iter().enumerate() {
        if let Some(reason) = job.filter.refusal(&ctx.branch) {
            ctx.send(Event::JobSkipped {
                job: job.name.clone(),
                reason: reason.clone(),
            });
            records[index] = Some(job::not_started(job, JobStatus::Skipped, reason));
            scheduler.finish(index, JobStatus::Skipped);
        }
    }
    std::thread::scope(|scope| {
        let (tx, rx) = mpsc::channel::<(usize, JobRecord)>();
        loop {
            for decision in scheduler.next(cancelled(ctx.opts)) {
                match decision {
                    Decision::Start(index) => {
                        let tx = tx.clone();
                        let job = jobs[index];
                        scope.spawn(move || {
                            let _ = tx.send((index, job::run(ctx, job)));
                        });
                    }
                    Decision::Skip(index, reason) => {
                        ctx.send(Event::JobSkipped {
                            job: jobs[index].name.clone(),
                            reason: reason.clone(),
                        });
                        records[index] =
                            Some(job::not_started(jobs[index], JobStatus::Skipped, reason));
                    }
                    Decision::Cancel(index) => {
                        let reason = "the run was cancelled before the job started".to_string();
                        ctx.send(Event::JobFinished {
                            job: jobs[index].name.clone(),
                            status: JobStatus::Cancelled,
                            reason: Some(reason.clone()),
                            millis: 0,
                        });
                        records[index] =
                            Some(job::not_started(jobs[index], JobStatus::Cancelled, reason));
                    }
                }
            }
            if scheduler.running() == 0 {
                break;
            }
            let Ok((index, record)) = rx.recv() else {
                break;
            };
            scheduler.finish(index, record.status);
            records[index] = Some(record);
        }
    });
    records.into_iter().flatten().collect()
}
