//! What the engine reports while it runs. Front ends render these; the engine never prints.

use crate::record::{CacheRecord, JobStatus, RunRecord, Severity, StepStatus};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// Which output stream a line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stream {
    /// Standard output.
    Out,
    /// Standard error.
    Err,
}

/// One thing that happened. Serialized with an `event` tag, one JSON object per line.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// The run began.
    RunStarted {
        /// Run id.
        run_id: String,
        /// Commit.
        commit: String,
        /// Branch.
        branch: String,
        /// Jobs selected, in definition order.
        jobs: Vec<String>,
        /// The run's directory.
        dir: PathBuf,
    },
    /// Something the user should know that is not a failure.
    Warning {
        /// The job concerned.
        job: Option<String>,
        /// What.
        message: String,
    },
    /// A job will not run.
    JobSkipped {
        /// The job.
        job: String,
        /// Why.
        reason: String,
    },
    /// A job began.
    JobStarted {
        /// The job.
        job: String,
    },
    /// A service is ready.
    ServiceStarted {
        /// The job.
        job: String,
        /// `postgres` or `redis`.
        service: String,
        /// Its loopback port.
        port: u16,
        /// Time to ready.
        millis: u64,
    },
    /// A service did not start; the job fails.
    ServiceFailed {
        /// The job.
        job: String,
        /// `postgres` or `redis`.
        service: String,
        /// What failed.
        message: String,
        /// The service's log.
        log: String,
        /// Time from starting it to giving up on it.
        #[serde(default)]
        millis: u64,
    },
    /// A step began.
    StepStarted {
        /// The job.
        job: String,
        /// 1-based step number.
        step: usize,
        /// Its name.
        name: String,
    },
    /// A line of a step's output (secrets masked).
    Output {
        /// The job.
        job: String,
        /// 1-based step number.
        step: usize,
        /// RFC 3339 with milliseconds.
        time: String,
        /// Which stream.
        stream: Stream,
        /// The line, without its newline.
        line: String,
    },
    /// What a step did besides its output: cache hit or miss, artifacts kept, ...
    StepNote {
        /// The job.
        job: String,
        /// 1-based step number.
        step: usize,
        /// Information or a warning.
        severity: Severity,
        /// What.
        message: String,
    },
    /// A step ended (or was skipped).
    StepFinished {
        /// The job.
        job: String,
        /// 1-based step number.
        step: usize,
        /// Its name.
        name: String,
        /// How it ended.
        status: StepStatus,
        /// Exit code of its process.
        exit_code: Option<i32>,
        /// Wall time.
        millis: u64,
        /// What a cache step restored or saved (the server keeps it with the run).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        cache: Option<CacheRecord>,
    },
    /// A job ended.
    JobFinished {
        /// The job.
        job: String,
        /// How.
        status: JobStatus,
        /// Why, when it did not pass.
        reason: Option<String>,
        /// Wall time.
        millis: u64,
    },
    /// The run ended; the record is also in `<dir>/record.json`.
    RunFinished {
        /// Everything.
        record: Box<RunRecord>,
    },
}
