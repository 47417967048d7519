//! The store of `hoist serve`: runs and their queue, webhook deliveries, jobs and steps, log
//! lines, test results, artifacts, users, API tokens, the audit log and deployments.
//!
//! One [`Store`] trait, two implementations over `sqlx`: [`SqliteStore`] (the embedded default:
//! one file in the data dir, WAL, one process) and [`PostgresStore`] (several `hoist serve`
//! processes and runners sharing one queue). [`open`] picks one from the URL and applies the
//! backend's embedded migrations. Both keep the same schema (`migrations/<backend>/`); times are
//! stored as milliseconds since the Unix epoch.
//!
//! The queue's guarantees, on both backends: [`Store::enqueue`] and [`Store::record_delivery`]
//! are committed before they return; a delivery id is recorded once (a redelivery returns the
//! first run); [`Store::claim`] gives each queued run to exactly one runner, oldest first.
//! New log lines wake [`Store::subscribe`] streams: across processes through PostgreSQL's
//! `LISTEN/NOTIFY`, within the process on SQLite.

mod error;
mod model;
mod postgres;
mod queries;
pub mod secret;
mod sqlite;
mod subscription;

use std::sync::Arc;
use std::time::Duration;

pub use error::{redact_url, StoreError};
pub use model::*;
pub use postgres::PostgresStore;
pub use sqlite::SqliteStore;
pub use subscription::LogStream;

/// Which database a store uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// One SQLite file (WAL), one process.
    Sqlite,
    /// A PostgreSQL database, shared by any number of processes.
    Postgres,
}

/// Opens the store at `url` (`sqlite://PATH` or `postgres://…`/`postgresql://…`), creating a
/// SQLite file when missing, and applies the backend's migrations.
///
/// # Errors
///
/// [`StoreError::UnsupportedUrl`] for another scheme; [`StoreError::Open`] or
/// [`StoreError::MissingDirectory`] when the database cannot be reached;
/// [`StoreError::Migrate`] when its schema cannot be brought up to date.
pub async fn open(url: &str) -> Result<Arc<dyn Store>, StoreError> {
    if url.starts_with("sqlite:") {
        Ok(Arc::new(SqliteStore::open(url).await?))
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Ok(Arc::new(PostgresStore::connect(url).await?))
    } else {
        Err(StoreError::UnsupportedUrl {
            url: redact_url(url),
        })
    }
}

/// Everything the server and its runners keep. Implemented by [`SqliteStore`] and
/// [`PostgresStore`] with the same behaviour; see the crate documentation for the guarantees.
#[async_trait::async_trait]
pub trait Store: Send + Sync + 'static {
    /// Which database this is.
    fn backend(&self) -> Backend;

    /// The project named `name`, created when new.
    async fn ensure_project(&self, name: &str) -> Result<Project, StoreError>;

    /// Every project, by name.
    async fn projects(&self) -> Result<Vec<Project>, StoreError>;

    /// Records a webhook delivery and queues its run, in one transaction. A delivery whose
    /// `(provider, delivery_id)` is already recorded creates nothing and returns the first run,
    /// also when the two arrive at once.
    async fn record_delivery(
        &self,
        delivery: &NewDelivery,
        run: &NewRun,
    ) -> Result<DeliveryOutcome, StoreError>;

    /// Queues a run (committed when this returns); with `auto_cancel`, the queued runs of the
    /// same project and branch are cancelled in the same transaction.
    async fn enqueue(&self, run: &NewRun) -> Result<Enqueued, StoreError>;

    /// The run `id`.
    async fn run(&self, id: RunId) -> Result<Option<Run>, StoreError>;

    /// Runs, newest first, filtered and paged by `query`.
    async fn runs(&self, query: &RunQuery) -> Result<Vec<Run>, StoreError>;

    /// Takes the oldest queued run for `runner` (it becomes `running`), or `None` when the queue
    /// is empty. No run is ever given to two claimers.
    async fn claim(&self, runner: &str) -> Result<Option<Run>, StoreError>;

    /// Marks `runner` alive for each run it is running; returns how many.
    async fn heartbeat(&self, runner: &str) -> Result<u64, StoreError>;

    /// Finishes a run that `runner` is running with `status` (passed or failed); false when the
    /// run is no longer that runner's (cancelled or interrupted meanwhile).
    async fn finish(&self, run: RunId, runner: &str, status: RunStatus)
        -> Result<bool, StoreError>;

    /// Cancels a queued or running run; false when it had already finished.
    async fn cancel(&self, run: RunId, who: &str) -> Result<bool, StoreError>;

    /// Queues a new run of `run`'s commit, trigger `rerun` by `who`.
    async fn rerun(&self, run: RunId, who: &str) -> Result<RunId, StoreError>;

    /// Marks the running runs of `runner` `interrupted` (at a runner's start: what it was running
    /// before it was killed). Returns their ids.
    async fn interrupt_runner(&self, runner: &str) -> Result<Vec<RunId>, StoreError>;

    /// Marks `interrupted` the running runs whose runner's last heartbeat is older than
    /// `older_than` (zero: every running run, as a single-process server does at start).
    async fn interrupt_stale(&self, older_than: Duration) -> Result<Vec<RunId>, StoreError>;

    // Retention (`retention` of hoist-server.toml).

    /// The finished runs that finished before `before`, oldest first, except the newest
    /// finished run of each branch of each project (the branch's badge) and every run that deployed what a host serves as the store
    /// knows it (its release is the one the newest deployment recorded for that host names).
    async fn expired_runs(
        &self,
        before: chrono::DateTime<chrono::Utc>,
    ) -> Result<Vec<RunId>, StoreError>;

    /// Deletes a run and everything recorded of it — jobs, steps, log lines, test suites and
    /// cases, artifacts, its webhook deliveries; the deployments it made stay, without their
    /// run, and a re-run of it forgets what it re-ran. False when there was no such run.
    async fn delete_run(&self, run: RunId) -> Result<bool, StoreError>;

    /// Adds a job to a run (status `pending`).
    async fn add_job(&self, run: RunId, job: &NewJob) -> Result<JobId, StoreError>;

    /// Sets a job's status; `running` sets its start, a finished status its end.
    async fn set_job_status(&self, job: JobId, status: StepStatus) -> Result<(), StoreError>;

    /// Adds a step to a job (status `pending`).
    async fn add_step(&self, job: JobId, name: &str, position: i64) -> Result<StepId, StoreError>;

    /// Marks a step `running`, now.
    async fn start_step(&self, step: StepId) -> Result<(), StoreError>;

    /// Records a step's end.
    async fn finish_step(
        &self,
        step: StepId,
        status: StepStatus,
        exit_code: Option<i32>,
        duration: Duration,
    ) -> Result<(), StoreError>;

    /// A run's jobs with their steps, in order.
    async fn jobs(&self, run: RunId) -> Result<Vec<Job>, StoreError>;

    /// Appends lines to a run's log in one transaction, numbering them on from the last; returns
    /// the last line's `seq`. Wakes the run's subscribers.
    async fn append_log(&self, run: RunId, lines: &[NewLogLine]) -> Result<i64, StoreError>;

    /// At most `limit` lines of a run's log with `seq` above `after`, in order (`after` = 0 from
    /// the start; an SSE client's `Last-Event-ID` to resume).
    async fn log_after(
        &self,
        run: RunId,
        after: i64,
        limit: u32,
    ) -> Result<Vec<LogLine>, StoreError>;

    /// A stream of a run's log lines with `seq` above `after`: those stored, then new ones as
    /// they are appended (by any process, on PostgreSQL). It ends once the run has finished and
    /// every line has been given.
    async fn subscribe(&self, run: RunId, after: i64) -> Result<LogStream, StoreError>;

    /// Stores a JUnit suite of a run, with its cases.
    async fn add_test_suite(&self, run: RunId, suite: &TestSuite) -> Result<(), StoreError>;

    /// A run's test suites with their cases.
    async fn test_suites(&self, run: RunId) -> Result<Vec<TestSuite>, StoreError>;

    /// The totals of a run's test suites.
    async fn test_summary(&self, run: RunId) -> Result<TestSummary, StoreError> {
        let mut summary = TestSummary::default();
        for suite in self.test_suites(run).await? {
            summary.tests += suite.tests;
            summary.failures += suite.failures;
            summary.errors += suite.errors;
            summary.skipped += suite.skipped;
        }
        Ok(summary)
    }

    /// Records an artifact of a run (the file is already in the data dir at `path`).
    async fn add_artifact(
        &self,
        run: RunId,
        name: &str,
        path: &str,
        size: u64,
    ) -> Result<(), StoreError>;

    /// A run's artifacts, by name.
    async fn artifacts(&self, run: RunId) -> Result<Vec<Artifact>, StoreError>;

    /// Adds a user; the password is kept as an argon2id hash.
    async fn add_user(&self, name: &str, role: Role, password: &str) -> Result<User, StoreError>;

    /// Changes a user's role; false when there is no such user.
    async fn set_user_role(&self, name: &str, role: Role) -> Result<bool, StoreError>;

    /// Removes a user; false when there was no such user.
    async fn remove_user(&self, name: &str) -> Result<bool, StoreError>;

    /// Every user, by name.
    async fn users(&self) -> Result<Vec<User>, StoreError>;

    /// The user, when `name` and `password` match (the same work is done for an unknown name).
    async fn login(&self, name: &str, password: &str) -> Result<Option<User>, StoreError>;

    /// Creates an API token; its secret is in the answer and nowhere else.
    async fn create_token(
        &self,
        name: &str,
        role: Role,
        created_by: &str,
    ) -> Result<CreatedToken, StoreError>;

    /// The token whose secret this is (looked up by its SHA-256).
    async fn token_by_secret(&self, secret: &str) -> Result<Option<ApiToken>, StoreError>;

    /// Deletes a token; false when there was none of that name.
    async fn revoke_token(&self, name: &str) -> Result<bool, StoreError>;

    /// Every token, by name (without secrets: they are not kept).
    async fn tokens(&self) -> Result<Vec<ApiToken>, StoreError>;

    /// Adds an audit log entry, now.
    async fn audit(&self, entry: &NewAudit) -> Result<(), StoreError>;

    /// The newest `limit` audit entries, newest first.
    async fn audit_log(&self, limit: u32) -> Result<Vec<AuditEntry>, StoreError>;

    /// Records a deployment to one host, now.
    async fn record_deployment(&self, deployment: &NewDeployment) -> Result<(), StoreError>;

    /// A project's deployments, newest first.
    async fn deployments(&self, project: &str) -> Result<Vec<Deployment>, StoreError>;

    /// The deployments a run made, in the order they were recorded.
    async fn run_deployments(&self, run: RunId) -> Result<Vec<Deployment>, StoreError>;

    // Run facts and dashboard sessions (migration 0004).

    /// Records a service a job of the run started or failed to start.
    async fn record_service(&self, run: RunId, service: &NewService) -> Result<(), StoreError>;

    /// A run's services, in the order they were recorded.
    async fn run_services(&self, run: RunId) -> Result<Vec<RunService>, StoreError>;

    /// Records what a cache step of the run did.
    async fn record_cache(&self, run: RunId, cache: &NewCacheUse) -> Result<(), StoreError>;

    /// A run's cache uses, in the order they were recorded.
    async fn run_caches(&self, run: RunId) -> Result<Vec<CacheUse>, StoreError>;

    /// Stores a new dashboard session under the SHA-256 of `id` (the id itself is not kept),
    /// and deletes the sessions unused since `expired_before`.
    async fn create_session(
        &self,
        id: &str,
        user: &str,
        csrf: &str,
        expired_before: chrono::DateTime<chrono::Utc>,
    ) -> Result<(), StoreError>;

    /// The session whose id this is (looked up by its SHA-256), if it was used since
    /// `expired_before`.
    async fn session(
        &self,
        id: &str,
        expired_before: chrono::DateTime<chrono::Utc>,
    ) -> Result<Option<Session>, StoreError>;

    /// Marks the session `id` used now.
    async fn touch_session(&self, id: &str) -> Result<(), StoreError>;

    /// Deletes the session `id`; false when there was none.
    async fn delete_session(&self, id: &str) -> Result<bool, StoreError>;
}

/// Refuses empty names and names with control characters or surrounding spaces.
pub(crate) fn check_name(what: &'static str, name: &str) -> Result<(), StoreError> {
    if name.is_empty() || name.trim() != name || name.chars().any(char::is_control) {
        return Err(StoreError::Invalid {
            what,
            reason: format!(
                "{name:?}: it must be non-empty, without control characters or surrounding spaces"
            ),
        });
    }
    Ok(())
}
