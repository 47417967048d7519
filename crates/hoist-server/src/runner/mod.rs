//! Runners: each claims the oldest queued run from the store, brings the project's mirror up to
//! date, checks the commit out into the run's directory and runs its pipeline, its events
//! stored as they come. `max_concurrent_runs` runners work at once.

pub mod checkout;
pub mod job_process;
pub mod job_user;
pub mod pipeline;
pub mod poll;
pub mod retention;
pub mod strays;

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use hoist_store::{NewLogLine, Run, RunId, RunStatus};
use tokio::sync::{watch, Mutex};

use crate::state::AppState;

/// How often a runner with nothing to do looks at the queue (runs queued by another process
/// of a shared PostgreSQL store; this process's own wake its runners at once).
const IDLE_POLL: Duration = Duration::from_secs(1);
/// How often a running run's cancellation is looked up, and heartbeats sent.
const WATCH_EVERY: Duration = Duration::from_millis(500);
/// On a shared PostgreSQL store, a run whose runner sent no heartbeat for this long (its
/// process was killed, or its machine is gone) is marked `interrupted` by another replica.
pub const STALE_AFTER: Duration = Duration::from_secs(30);

/// What the runners of one server share.
pub struct Runners {
    app: Arc<AppState>,
    /// This process's runner id in the store (`<host>:<pid>`).
    pub id: String,
    /// One lock per project: one mirror fetch at a time.
    mirrors: Mutex<std::collections::HashMap<String, Arc<Mutex<()>>>>,
    /// `[runner] user`: runs' processes run as this user (`None`: as the server's).
    job_user: Option<job_user::JobUser>,
}

/// `auto_cancel_running`: cancels the running runs of `branch` older than `newer` (their
/// runners see it within half a second and kill their steps and services); returns them.
pub async fn supersede_running(
    app: &AppState,
    project: &crate::config::ProjectConfig,
    branch: &str,
    newer: RunId,
) -> Vec<RunId> {
    if !project.auto_cancel_running {
        return Vec::new();
    }
    let query = hoist_store::RunQuery {
        project: Some(project.name.clone()),
        branch: Some(branch.to_string()),
        status: Some(RunStatus::Running),
        before: Some(newer),
        limit: 200,
    };
    let mut cancelled = Vec::new();
    for run in app.store.runs(&query).await.unwrap_or_default() {
        let who = format!("superseded by run {newer}");
        if app.store.cancel(run.id, &who).await.unwrap_or(false) {
            cancelled.push(run.id);
        }
    }
    cancelled.sort_unstable();
    cancelled
}

/// The run directory: `<data dir>/runs/<id>`.
#[must_use]
pub fn run_dir(app: &AppState, run: RunId) -> PathBuf {
    app.config.data_dir.join("runs").join(run.to_string())
}

/// Where a shutdown is: `Running`, then `Draining` (claim nothing more, let runs finish),
/// then `Cancelling` (the grace period is over: stop the runs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Claim and run.
    Running,
    /// Claim nothing more; running runs go on.
    Draining,
    /// Cancel running runs.
    Cancelling,
}

impl Runners {
    /// Runners for `app`, with this process's id; their runs run as `job_user` when given.
    #[must_use]
    pub fn new(app: Arc<AppState>, job_user: Option<job_user::JobUser>) -> Arc<Runners> {
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_string())
            .unwrap_or_else(|_| "localhost".into());
        Arc::new(Runners {
            app,
            id: format!("{host}:{}", std::process::id()),
            mirrors: Mutex::new(std::collections::HashMap::new()),
            job_user,
        })
    }

    /// Starts `max_concurrent_runs` runners and the heartbeat (which, on PostgreSQL, also marks
    /// the runs of replicas gone quiet `interrupted`); they stop once `phase` leaves `Running`
    /// and their runs are over. `poll`: whether this process polls the projects that say so
    /// (a `--runner-only` replica leaves that to the server).
    pub fn spawn(
        self: &Arc<Self>,
        phase: &watch::Receiver<Phase>,
        poll: bool,
    ) -> Vec<tokio::task::JoinHandle<()>> {
        let mut handles = Vec::new();
        for _ in 0..self.app.config.max_concurrent_runs {
            let runners = Arc::clone(self);
            let phase = phase.clone();
            handles.push(tokio::spawn(async move { runners.work(phase).await }));
        }
        for project in &self.app.config.projects {
            if poll && project.poll.is_some() {
                let app = Arc::clone(&self.app);
                tokio::spawn(poll::poll(app, project.clone(), phase.clone()));
            }
        }
        let app = Arc::clone(&self.app);
        let mut phase_rt = phase.clone();
        tokio::spawn(async move {
            loop {
                let config = &app.config;
                retention::prune(&*app.store, &config.data_dir, config.retention).await;
                tokio::select! {
                    () = tokio::time::sleep(retention::EVERY) => {}
                    changed = phase_rt.changed() => if changed.is_err() || *phase_rt.borrow() != Phase::Running { break },
                }
            }
        });
        let runners = Arc::clone(self);
        let mut phase_hb = phase.clone();
        tokio::spawn(async move {
            loop {
                let _ = runners.app.store.heartbeat(&runners.id).await;
                if runners.app.store.backend() == hoist_store::Backend::Postgres {
                    let _ = runners.app.store.interrupt_stale(STALE_AFTER).await;
                }
                tokio::select! {
                    () = tokio::time::sleep(WATCH_EVERY * 10) => {}
                    changed = phase_hb.changed() => if changed.is_err() { break },
                }
            }
        });
        handles
    }

    async fn work(&self, mut phase: watch::Receiver<Phase>) {
        loop {
            if *phase.borrow() != Phase::Running {
                return;
            }
            // Registered before the claim, so a run queued meanwhile still wakes this runner.
            let queued = self.app.queued.notified();
            match self.app.store.claim(&self.id).await {
                Ok(Some(run)) => self.execute(run, phase.clone()).await,
                Ok(None) => {
                    tokio::select! {
                        () = queued => {}
                        () = tokio::time::sleep(IDLE_POLL) => {}
                        _ = phase.changed() => {}
                    }
                }
                Err(_) => tokio::time::sleep(IDLE_POLL).await,
            }
        }
    }

    async fn log(&self, run: RunId, text: String) {
        let line = NewLogLine {
            step: None,
            at: chrono::Utc::now(),
            text,
        };
        let _ = self.app.store.append_log(run, &[line]).await;
    }

    /// Runs one claimed run to its end, then records how it ended.
    async fn execute(&self, run: Run, mut phase: watch::Receiver<Phase>) {
        let cancel = Arc::new(AtomicBool::new(false));
        let store = Arc::clone(&self.app.store);
        let watched = run.id;
        let flag = Arc::clone(&cancel);
        let shutdown_cancel = Arc::new(AtomicBool::new(false));
        let by_shutdown = Arc::clone(&shutdown_cancel);
        // Cancels the run when a user cancels it in the store or the grace period is over.
        let watcher = tokio::spawn(async move {
            loop {
                if *phase.borrow() == Phase::Cancelling {
                    by_shutdown.store(true, Ordering::SeqCst);
                    flag.store(true, Ordering::SeqCst);
                    return;
                }
                if let Ok(Some(r)) = store.run(watched).await {
                    if r.status.is_finished() {
                        flag.store(true, Ordering::SeqCst);
                        return;
                    }
                }
                tokio::select! {
                    () = tokio::time::sleep(WATCH_EVERY) => {}
                    _ = phase.changed() => {}
                }
            }
        });
        let passed = match self.prepare_and_run(&run, &cancel).await {
            Ok(passed) => passed,
            Err(message) => {
                self.log(run.id, format!("error: {message}")).await;
                false
            }
        };
        watcher.abort();
        if shutdown_cancel.load(Ordering::SeqCst) {
            let _ = self.app.store.cancel(run.id, "server shutdown").await;
        } else {
            let status = if passed {
                RunStatus::Passed
            } else {
                RunStatus::Failed
            };
            // False when the run was cancelled meanwhile: it stays cancelled.
            let _ = self.app.store.finish(run.id, &self.id, status).await;
        }
    }

    async fn prepare_and_run(&self, run: &Run, cancel: &Arc<AtomicBool>) -> Result<bool, String> {
        let project = self.app.project(&run.project).cloned().ok_or_else(|| {
            format!(
                "project {:?} is no longer in hoist-server.toml",
                run.project
            )
        })?;
        let data_dir = self.app.config.data_dir.clone();
        let dir = run_dir(&self.app, run.id);
        self.log(run.id, format!("fetching {}", project.repository))
            .await;
        let lock = {
            let mut locks = self.mirrors.lock().await;
            Arc::clone(locks.entry(project.name.clone()).or_default())
        };
        let mirror = {
            let _held = lock.lock().await;
            let (data, name, repo) = (
                data_dir.clone(),
                project.name.clone(),
                project.repository.clone(),
            );
            tokio::task::spawn_blocking(move || checkout::update_mirror(&data, &name, &repo))
                .await
                .map_err(|e| e.to_string())??
        };
        let src = dir.join("src");
        let (m, commit, s) = (mirror.clone(), run.commit.clone(), src.clone());
        let user = self.job_user.clone();
        tokio::task::spawn_blocking(move || {
            if !checkout::has_commit(&m, &commit) {
                return Err(format!("the repository has no commit {commit}"));
            }
            match &user {
                // The run's directory is the job user's; so is everything the run writes.
                Some(user) => user.own_dir(s.parent().unwrap_or(&s), false)?,
                None => std::fs::create_dir_all(s.parent().unwrap_or(&s))
                    .map_err(|e| format!("cannot create the run's directory: {e}"))?,
            }
            checkout::checkout(&m, &commit, &s, user.as_ref())
        })
        .await
        .map_err(|e| e.to_string())??;
        self.log(
            run.id,
            format!("checked out {} ({})", run.commit, run.branch),
        )
        .await;
        let config = src.join(&project.config);
        if !config.is_file() {
            return Err(format!(
                "commit {} has no {} (set `config` of project {:?} in hoist-server.toml)",
                run.commit, project.config, project.name
            ));
        }
        pipeline::run(
            Arc::clone(&self.app.store),
            pipeline::PipelineRun {
                run: run.id,
                project: project.name.clone(),
                job: job_process::JobSpec {
                    checkout: src,
                    config,
                    commit: run.commit.clone(),
                    branch: run.branch.clone(),
                    ci_dir: dir.join("ci"),
                    cache_dir: data_dir.join("cache"),
                    deploy: project.may_deploy(&run.branch),
                },
                data_dir,
                cancel: Arc::clone(cancel),
                user: self.job_user.clone(),
            },
        )
        .await
    }
}
