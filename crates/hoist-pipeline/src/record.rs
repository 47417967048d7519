//! The record every run leaves: what ran, how it ended, how long it took, what it kept.
//! The CLI prints it; the server stores it.

use crate::junit::TestReport;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// How a step ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepStatus {
    /// It ran and succeeded.
    Passed,
    /// It ran and failed.
    Failed,
    /// It did not run (its `when`, a cache hit, `--no-deploy`, or the job stopped).
    Skipped,
    /// It produced no output for `no_output_timeout`, or the job ran out of time.
    TimedOut,
    /// The run was cancelled while it ran.
    Cancelled,
}

/// How a job ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobStatus {
    /// Every step that ran succeeded.
    Passed,
    /// A step or a service failed.
    Failed,
    /// Not run: its branch filter, a required job that did not pass, or not selected.
    Skipped,
    /// The job ran past its `timeout`.
    TimedOut,
    /// The run was cancelled.
    Cancelled,
}

impl JobStatus {
    /// Whether the job counts against the run.
    pub fn is_failure(self) -> bool {
        matches!(self, Self::Failed | Self::TimedOut | Self::Cancelled)
    }
}

/// What a cache step did.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct CacheRecord {
    /// The rendered keys (restore) or key (save).
    pub keys: Vec<String>,
    /// The key of the cache restored or of the existing cache, if any.
    pub matched: Option<String>,
    /// Restore: the restored key is exactly the first key.
    pub exact: bool,
    /// Save: a new cache was written.
    pub saved: bool,
    /// The archive's size.
    pub bytes: u64,
}

/// A file or directory kept with the run.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ArtifactRecord {
    /// Where it was, relative to the workspace.
    pub source: String,
    /// Where it is, relative to the run's directory.
    pub stored: String,
    /// Regular files.
    pub files: u64,
    /// Their total size.
    pub bytes: u64,
}

/// One step of a job.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StepRecord {
    /// Its name.
    pub name: String,
    /// `run`, `checkout`, ...
    pub kind: String,
    /// How it ended.
    pub status: StepStatus,
    /// The process's exit code (run, checkout, deploy).
    pub exit_code: Option<i32>,
    /// Wall time.
    pub millis: u64,
    /// Why it was skipped or failed, and notes (cache misses...).
    pub notes: Vec<Note>,
    /// Its output, one time-stamped line each.
    pub log: Option<PathBuf>,
    /// For cache steps.
    pub cache: Option<CacheRecord>,
    /// For artifacts steps.
    pub artifacts: Vec<ArtifactRecord>,
}

/// Something a step reports besides its output, and how much it matters.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Note {
    /// Whether it is plain information or a warning.
    pub severity: Severity,
    /// What, in one line.
    pub message: String,
}

impl Note {
    /// Plain information, e.g. a cache restored.
    pub fn info(message: impl Into<String>) -> Self {
        Self {
            severity: Severity::Info,
            message: message.into(),
        }
    }

    /// Something the user should look at that does not fail the step, e.g. a cache miss.
    pub fn warning(message: impl Into<String>) -> Self {
        Self {
            severity: Severity::Warning,
            message: message.into(),
        }
    }
}

/// How much a note matters: front ends render warnings as warnings.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// Information.
    Info,
    /// A warning: not a failure, but worth reading.
    Warning,
}

/// A service of a job.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ServiceRecord {
    /// `postgres` or `redis`.
    pub kind: String,
    /// Its port, once started.
    pub port: Option<u16>,
    /// Time to ready.
    pub millis: u64,
    /// Why it did not start.
    pub error: Option<String>,
    /// Its log, when it did not start.
    pub log: Option<String>,
}

/// One job.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct JobRecord {
    /// Its name.
    pub name: String,
    /// How it ended.
    pub status: JobStatus,
    /// Why it was skipped, failed or stopped.
    pub reason: Option<String>,
    /// Wall time.
    pub millis: u64,
    /// Its services.
    pub services: Vec<ServiceRecord>,
    /// Its steps, in order (those that did not run are `skipped`).
    pub steps: Vec<StepRecord>,
    /// Parsed JUnit reports, when it stored any.
    pub tests: Option<TestReport>,
}

/// The whole run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunRecord {
    /// Unique id, also its directory's name.
    pub id: String,
    /// The commit run.
    pub commit: String,
    /// The branch it ran as.
    pub branch: String,
    /// RFC 3339 start time.
    pub started_at: String,
    /// Wall time.
    pub millis: u64,
    /// Whether every job that ran passed.
    pub passed: bool,
    /// Logs, artifacts, test reports and `record.json` are here.
    pub dir: PathBuf,
    /// Jobs, in definition order.
    pub jobs: Vec<JobRecord>,
}
