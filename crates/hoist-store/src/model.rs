//! The records the store keeps, as the server and runners see them.

use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::StoreError;

/// A run's id: increasing, so the oldest queued run has the smallest.
pub type RunId = i64;
/// A job's id.
pub type JobId = i64;
/// A step's id.
pub type StepId = i64;

/// Text enums stored as their lower-case names; an unknown name read back is
/// [`StoreError::UnknownValue`] (a database written by a newer hoist).
macro_rules! text_enum {
    ($(#[$meta:meta])* $name:ident, $column:literal { $($(#[$vmeta:meta])* $variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name {
            $($(#[$vmeta])* $variant),+
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The name stored in the database and shown to users.
            #[must_use]
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text),+
                }
            }

            pub(crate) fn from_db(text: &str) -> Result<$name, StoreError> {
                match text {
                    $($text => Ok($name::$variant),)+
                    other => Err(StoreError::UnknownValue {
                        column: $column,
                        value: other.to_string(),
                    }),
                }
            }
        }

        impl std::str::FromStr for $name {
            type Err = StoreError;

            fn from_str(text: &str) -> Result<$name, StoreError> {
                $name::from_db(text).map_err(|_| StoreError::Invalid {
                    what: $column,
                    reason: format!(
                        "`{text}`; expected one of {}",
                        $name::ALL.iter().map(|v| v.as_str()).collect::<Vec<_>>().join(", ")
                    ),
                })
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

text_enum!(
    /// Where a run is: `queued → running → passed | failed | cancelled | interrupted`.
    RunStatus, "run status" {
        /// Waiting for a runner.
        Queued = "queued",
        /// Claimed by a runner, which sends heartbeats.
        Running = "running",
        /// Every job passed.
        Passed = "passed",
        /// A job failed.
        Failed = "failed",
        /// Cancelled by a user or superseded by a newer push to its branch.
        Cancelled = "cancelled",
        /// Its runner went away (killed, restarted, heartbeat stale); it can be re-run.
        Interrupted = "interrupted",
    }
);

impl RunStatus {
    /// True once the run can no longer change.
    #[must_use]
    pub fn is_finished(self) -> bool {
        !matches!(self, RunStatus::Queued | RunStatus::Running)
    }
}

text_enum!(
    /// What started a run.
    TriggerKind, "trigger" {
        /// A forge's webhook delivery.
        Webhook = "webhook",
        /// `git ls-remote` polling saw a new commit.
        Poll = "poll",
        /// A user asked for it (API or CLI).
        Manual = "manual",
        /// A re-run of an earlier run's commit.
        Rerun = "rerun",
    }
);

text_enum!(
    /// What a user or API token may do: viewers read; deployers also trigger, cancel, deploy and
    /// roll back; admins also manage users and tokens.
    Role, "role" {
        /// Reads everything.
        Viewer = "viewer",
        /// Also triggers, cancels, deploys and rolls back.
        Deployer = "deployer",
        /// Also manages users and tokens.
        Admin = "admin",
    }
);

impl Role {
    /// True when this role may do what `needed` may.
    #[must_use]
    pub fn allows(self, needed: Role) -> bool {
        self.rank() >= needed.rank()
    }

    fn rank(self) -> u8 {
        match self {
            Role::Viewer => 0,
            Role::Deployer => 1,
            Role::Admin => 2,
        }
    }
}

text_enum!(
    /// A job's or a step's state.
    StepStatus, "step status" {
        /// Not started yet.
        Pending = "pending",
        /// Started.
        Running = "running",
        /// Finished with success.
        Passed = "passed",
        /// Finished with failure.
        Failed = "failed",
        /// Not run (a job it requires failed, or a filter excluded it).
        Skipped = "skipped",
        /// Stopped because its run was cancelled or interrupted.
        Cancelled = "cancelled",
    }
);

text_enum!(
    /// One test case's result in a JUnit report.
    TestOutcome, "test outcome" {
        /// Passed.
        Passed = "passed",
        /// An assertion failed.
        Failed = "failed",
        /// The test raised an error.
        Error = "error",
        /// Skipped.
        Skipped = "skipped",
    }
);

/// A project the server knows, by name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Project {
    /// Its id in the store.
    pub id: i64,
    /// Its name, as in `hoist-server.toml` and `/hooks/<name>`.
    pub name: String,
    /// When it was first seen.
    pub created_at: DateTime<Utc>,
}

/// Who or what started a run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Trigger {
    /// Webhook, poll, manual or re-run.
    pub kind: TriggerKind,
    /// The forge user who pushed, the user or token who asked, or `poll`.
    pub by: String,
}

/// A run to enqueue: one pipeline for one commit of one branch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewRun {
    /// The project's name (created when new).
    pub project: String,
    /// The branch pushed to.
    pub branch: String,
    /// The commit to run (the head commit of a push).
    pub commit: String,
    /// The commit's message.
    pub message: String,
    /// The commit's author.
    pub author: String,
    /// What started it.
    pub trigger: Trigger,
    /// Cancel the queued runs of the same project and branch (`auto_cancel`).
    pub auto_cancel: bool,
}

/// What [`crate::Store::enqueue`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Enqueued {
    /// The new run.
    pub run: RunId,
    /// The queued runs of the same branch that it cancelled (`auto_cancel`), oldest first.
    pub cancelled: Vec<RunId>,
}

/// A forge's webhook delivery: its id is the idempotency key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewDelivery {
    /// `github`, `gitea`, `gitlab`…
    pub provider: String,
    /// The delivery id header (`X-GitHub-Delivery`, `X-Gitea-Delivery`, `X-Gitlab-Event-UUID`).
    pub delivery_id: String,
}

/// What [`crate::Store::record_delivery`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeliveryOutcome {
    /// A new delivery: its run is committed and queued.
    Created(Enqueued),
    /// A redelivery: nothing was created; this is the first delivery's run.
    Duplicate(RunId),
}

impl DeliveryOutcome {
    /// The run of this delivery, new or first.
    #[must_use]
    pub fn run(&self) -> RunId {
        match self {
            DeliveryOutcome::Created(e) => e.run,
            DeliveryOutcome::Duplicate(run) => *run,
        }
    }
}

/// A run as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Run {
    /// Its id.
    pub id: RunId,
    /// The project's name.
    pub project: String,
    /// The branch.
    pub branch: String,
    /// The commit run.
    pub commit: String,
    /// The commit's message.
    pub message: String,
    /// The commit's author.
    pub author: String,
    /// What started it.
    pub trigger: Trigger,
    /// The run this one re-runs.
    pub rerun_of: Option<RunId>,
    /// Where it is.
    pub status: RunStatus,
    /// When it was queued.
    pub queued_at: DateTime<Utc>,
    /// When a runner claimed it.
    pub started_at: Option<DateTime<Utc>>,
    /// When it finished.
    pub finished_at: Option<DateTime<Utc>>,
    /// The runner that claimed it.
    pub runner: Option<String>,
    /// That runner's last heartbeat for it.
    pub heartbeat_at: Option<DateTime<Utc>>,
    /// Who cancelled it, or which run superseded it.
    pub cancelled_by: Option<String>,
}

/// Which runs [`crate::Store::runs`] lists: newest first, `limit` at a time, older than `before`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunQuery {
    /// Only this project's runs.
    pub project: Option<String>,
    /// Only this branch's runs.
    pub branch: Option<String>,
    /// Only runs in this state.
    pub status: Option<RunStatus>,
    /// Only runs with a smaller id (the next page).
    pub before: Option<RunId>,
    /// At most this many.
    pub limit: u32,
}

impl Default for RunQuery {
    fn default() -> RunQuery {
        RunQuery {
            project: None,
            branch: None,
            status: None,
            before: None,
            limit: 50,
        }
    }
}

/// A job of a run's pipeline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewJob {
    /// The job's name in the pipeline.
    pub name: String,
    /// Its place in the pipeline's order.
    pub position: i64,
    /// The jobs it requires.
    pub requires: Vec<String>,
}

/// A job as stored, with its steps in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Job {
    /// Its id.
    pub id: JobId,
    /// Its run.
    pub run: RunId,
    /// Its name.
    pub name: String,
    /// Its place in the pipeline's order.
    pub position: i64,
    /// The jobs it requires.
    pub requires: Vec<String>,
    /// Where it is.
    pub status: StepStatus,
    /// When it started.
    pub started_at: Option<DateTime<Utc>>,
    /// When it finished.
    pub finished_at: Option<DateTime<Utc>>,
    /// Its steps, in order.
    pub steps: Vec<Step>,
}

/// A step as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    /// Its id.
    pub id: StepId,
    /// Its job.
    pub job: JobId,
    /// Its name.
    pub name: String,
    /// Its place in the job.
    pub position: i64,
    /// Where it is.
    pub status: StepStatus,
    /// Its command's exit code, once finished.
    pub exit_code: Option<i32>,
    /// How long it took, once finished.
    pub duration: Option<Duration>,
    /// When it started.
    pub started_at: Option<DateTime<Utc>>,
}

/// A log line to append.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewLogLine {
    /// The step that printed it (`None`: the run's own lines, e.g. the checkout).
    pub step: Option<StepId>,
    /// When it was printed.
    pub at: DateTime<Utc>,
    /// The line, already masked, without its newline.
    pub text: String,
}

/// A stored log line; `seq` counts from 1 within its run (an SSE event id).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLine {
    /// Its run.
    pub run: RunId,
    /// Its place in the run's log, from 1.
    pub seq: i64,
    /// The step that printed it.
    pub step: Option<StepId>,
    /// When it was printed (milliseconds kept).
    pub at: DateTime<Utc>,
    /// The line.
    pub text: String,
}

/// One JUnit test suite of a run, with its cases.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestSuite {
    /// The suite's name.
    pub name: String,
    /// The step whose report it came from.
    pub step: Option<StepId>,
    /// Tests run.
    pub tests: u32,
    /// Tests failed.
    pub failures: u32,
    /// Tests errored.
    pub errors: u32,
    /// Tests skipped.
    pub skipped: u32,
    /// The suite's time.
    pub duration: Duration,
    /// Its cases.
    pub cases: Vec<TestCase>,
}

/// One test case's result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestCase {
    /// The JUnit classname.
    pub classname: String,
    /// The test's name.
    pub name: String,
    /// Its outcome.
    pub outcome: TestOutcome,
    /// Its time.
    pub duration: Duration,
    /// The failure, error or skip message.
    pub message: Option<String>,
}

/// The totals of a run's test suites.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TestSummary {
    /// Tests run.
    pub tests: u32,
    /// Tests failed.
    pub failures: u32,
    /// Tests errored.
    pub errors: u32,
    /// Tests skipped.
    pub skipped: u32,
}

/// A file a run kept; the file itself lives in the data dir.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Artifact {
    /// Its run.
    pub run: RunId,
    /// Its name (unique within the run).
    pub name: String,
    /// Its path, relative to the server's data dir.
    pub path: String,
    /// Its size in bytes.
    pub size: u64,
    /// When it was stored.
    pub created_at: DateTime<Utc>,
}

/// A person who logs in to the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// Their login name.
    pub name: String,
    /// What they may do.
    pub role: Role,
    /// When they were added.
    pub created_at: DateTime<Utc>,
}

/// An API token as stored: its secret is not kept, only its SHA-256.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiToken {
    /// Its name (`ci-bot`).
    pub name: String,
    /// What it may do.
    pub role: Role,
    /// Who created it.
    pub created_by: String,
    /// When.
    pub created_at: DateTime<Utc>,
}

/// A token just created: the secret is shown once and cannot be read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreatedToken {
    /// The stored token.
    pub token: ApiToken,
    /// The secret to give the client (`Authorization: Bearer <secret>`).
    pub secret: String,
}

/// An audit log entry to add: who changed what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewAudit {
    /// The user or token name.
    pub who: String,
    /// What they did (`run.cancel`, `token.create`…).
    pub action: String,
    /// What it was done to (`run 12`, `token ci-bot`…).
    pub target: String,
    /// Anything else worth keeping.
    pub detail: String,
}

/// A stored audit log entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEntry {
    /// Its id, increasing.
    pub id: i64,
    /// When.
    pub at: DateTime<Utc>,
    /// Who.
    pub who: String,
    /// What.
    pub action: String,
    /// To what.
    pub target: String,
    /// Details.
    pub detail: String,
}

/// A deployment to record: one host of one environment, by a run or by a user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewDeployment {
    /// The run that deployed (`None` for a rollback asked through the API).
    pub run: Option<RunId>,
    /// The project.
    pub project: String,
    /// The environment deployed to.
    pub environment: String,
    /// The host.
    pub host: String,
    /// The release id made live (or tried).
    pub release: String,
    /// What happened on that host (`switched`, `switched back`, `failed`…).
    pub outcome: String,
    /// The deploy engine's detail for that host (why it failed, what was switched back).
    pub detail: Option<String>,
    /// Who asked.
    pub who: String,
    /// The run's deploy step that deployed (`None` for a rollback).
    pub step: Option<StepId>,
    /// How long that host took, when known.
    pub millis: Option<u64>,
}

/// A stored deployment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deployment {
    /// Its id, increasing.
    pub id: i64,
    /// The run that deployed.
    pub run: Option<RunId>,
    /// The project.
    pub project: String,
    /// The environment.
    pub environment: String,
    /// The host.
    pub host: String,
    /// The release.
    pub release: String,
    /// What happened.
    pub outcome: String,
    /// The deploy engine's detail, if any.
    pub detail: Option<String>,
    /// Who asked.
    pub who: String,
    /// The run's deploy step that deployed, if any.
    pub step: Option<StepId>,
    /// How long that host took, when known.
    pub millis: Option<u64>,
    /// When.
    pub at: DateTime<Utc>,
}

/// A service a job of a run started (or failed to start).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewService {
    /// The job.
    pub job: String,
    /// `postgres` or `redis`.
    pub service: String,
    /// Its loopback port, once ready.
    pub port: Option<u16>,
    /// Time to ready (or to failing).
    pub millis: u64,
    /// Why it did not start.
    pub error: Option<String>,
}

/// A stored service of a run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunService {
    /// The run.
    pub run: RunId,
    /// The job, the service, its port, time to ready and error, as recorded.
    pub service: NewService,
    /// When it was recorded.
    pub at: DateTime<Utc>,
}

/// What a `restore_cache` or `save_cache` step of a run did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewCacheUse {
    /// The job.
    pub job: String,
    /// The step.
    pub step: Option<StepId>,
    /// `restore` or `save`.
    pub action: String,
    /// Restore: `hit` (the first key), `fallback` (a later key or prefix), `miss`; save:
    /// `saved` or `exists` (a key is never overwritten).
    pub outcome: String,
    /// The rendered keys tried (restore) or the key (save).
    pub keys: Vec<String>,
    /// The key of the cache restored, or of the existing one.
    pub matched: Option<String>,
    /// The archive's size.
    pub bytes: u64,
    /// The step's wall time (restoring or saving).
    pub millis: u64,
}

/// A stored cache use of a run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheUse {
    /// The run.
    pub run: RunId,
    /// What was done, as recorded.
    pub cache: NewCacheUse,
    /// When it was recorded.
    pub at: DateTime<Utc>,
}

/// A dashboard session, as the store keeps it (under the SHA-256 of its id).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// The signed-in user's name.
    pub user: String,
    /// The session's CSRF token.
    pub csrf: String,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When it was last used (as of the last [`crate::Store::touch_session`]).
    pub last_used_at: DateTime<Utc>,
}

pub(crate) fn millis(at: DateTime<Utc>) -> i64 {
    at.timestamp_millis()
}

pub(crate) fn from_millis(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or_default()
}

pub(crate) fn now_ms() -> i64 {
    Utc::now().timestamp_millis()
}
