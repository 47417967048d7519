//! `[pipeline]`: the CI pipeline's jobs, services, steps and caches, validated.
//!
//! The table is read like the rest of hoist.toml — raw structs that keep spans, then validation —
//! so its errors read like every other config error (`hoist.toml:LINE:COL: message` and a
//! `hint:`) and its durations follow the one grammar of [`crate::parse_duration`]. The table may
//! live in hoist.toml or in a file it names (`[pipeline] file = "ci.toml"`). docs/pipeline.md
//! documents every key; `hoist-pipeline` runs what this module returns.

mod filter;
pub(crate) mod raw;
mod validate;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use filter::{BranchFilter, BranchPattern};
pub use validate::parse_size;

use crate::check::Checker;
use crate::ConfigError;
use raw::PipelineDocument;

/// When a step runs, relative to the job's earlier steps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum When {
    /// Only while every earlier step succeeded (the default for most steps).
    OnSuccess,
    /// Whether or not an earlier step failed (not after a timeout or cancel).
    Always,
    /// Only once an earlier step failed.
    OnFail,
}

/// A native service a job needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServiceSpec {
    /// A throwaway PostgreSQL cluster.
    Postgres {
        /// `POSTGRES_USER` (default `postgres`).
        user: String,
        /// `POSTGRES_DB` (default: the user's name).
        db: String,
        /// `POSTGRES_PASSWORD` (or `PGPASSWORD`); none means trust authentication.
        password: Option<String>,
        /// Server settings (`postgresql.conf` lines), e.g. `max_connections = "20"`.
        settings: BTreeMap<String, String>,
    },
    /// A Redis server (when `redis-server` is installed).
    Redis,
}

impl ServiceSpec {
    /// `postgres` or `redis`.
    #[must_use]
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Postgres { .. } => "postgres",
            Self::Redis => "redis",
        }
    }
}

/// A `run` step.
#[derive(Debug, Clone, PartialEq)]
pub struct RunStep {
    /// The script.
    pub command: String,
    /// The shell and its options; the script's path is appended. Default `bash -eo pipefail`.
    pub shell: Vec<String>,
    /// Extra environment for this step.
    pub environment: Vec<(String, String)>,
    /// Relative to the job's workspace.
    pub working_directory: Option<String>,
    /// The step is killed after this long without output.
    pub no_output_timeout: Duration,
    /// Skip the step when the job's last `restore_cache` restored its first key exactly.
    pub unless_cache_hit: bool,
}

/// What a step does.
#[derive(Debug, Clone, PartialEq)]
pub enum StepKind {
    /// A clean worktree of the pipeline's commit.
    Checkout,
    /// A shell script.
    Run(RunStep),
    /// Restore the newest cache matching the first key (as a prefix) that matches any.
    RestoreCache {
        /// Key templates, tried in order.
        keys: Vec<String>,
    },
    /// Save paths under a key, unless the key exists.
    SaveCache {
        /// Key template.
        key: String,
        /// Paths relative to the workspace (or absolute, or `~/...`).
        paths: Vec<String>,
    },
    /// Keep a file or directory with the run's record.
    Artifacts {
        /// Relative to the workspace.
        path: String,
        /// Name under the run's artifacts (defaults to `path`).
        destination: String,
    },
    /// Parse JUnit XML found at a file or under a directory.
    TestResults {
        /// Relative to the workspace.
        path: String,
    },
    /// `hoist deploy [environment] --ref <commit>`.
    Deploy {
        /// The environment to deploy to, when the config has several.
        environment: Option<String>,
    },
}

impl StepKind {
    /// The kind's key as written in the definition, e.g. `restore_cache`.
    #[must_use]
    pub fn key(&self) -> &'static str {
        match self {
            Self::Checkout => "checkout",
            Self::Run(_) => "run",
            Self::RestoreCache { .. } => "restore_cache",
            Self::SaveCache { .. } => "save_cache",
            Self::Artifacts { .. } => "artifacts",
            Self::TestResults { .. } => "test_results",
            Self::Deploy { .. } => "deploy",
        }
    }
}

/// One step of a job.
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    /// What the run's output calls it.
    pub name: String,
    /// When it runs.
    pub when: When,
    /// What it does.
    pub kind: StepKind,
    /// Its line in the definition.
    pub line: usize,
}

/// A job: services, then steps in order, in its own workspace.
#[derive(Debug, Clone, PartialEq)]
pub struct Job {
    /// Its name.
    pub name: String,
    /// Jobs that must succeed first.
    pub requires: Vec<String>,
    /// The branches it runs on.
    pub filter: BranchFilter,
    /// Job-level environment.
    pub environment: Vec<(String, String)>,
    /// Native services, started before the first step.
    pub services: Vec<ServiceSpec>,
    /// Its steps.
    pub steps: Vec<Step>,
    /// The whole job is stopped after this long.
    pub timeout: Option<Duration>,
}

/// Bounds of the cache store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CacheLimits {
    /// Total size of the stored archives.
    pub max_bytes: u64,
    /// Caches older than this are pruned.
    pub max_age: Duration,
}

impl Default for CacheLimits {
    fn default() -> Self {
        Self {
            max_bytes: 5 << 30,
            max_age: Duration::from_secs(15 * 24 * 3600),
        }
    }
}

/// A whole pipeline.
#[derive(Debug, Clone, PartialEq)]
pub struct Pipeline {
    /// The file that defines it.
    pub source: PathBuf,
    /// Jobs, in definition order.
    pub jobs: Vec<Job>,
    /// Pipeline-level environment.
    pub environment: Vec<(String, String)>,
    /// Names of secrets: read from the environment or `secrets_file`, masked in all output.
    pub secrets: Vec<String>,
    /// A `KEY=value` file (never committed) that secrets are read from.
    pub secrets_file: Option<PathBuf>,
    /// How many jobs may run at once.
    pub max_parallel: usize,
    /// Bounds of the cache store.
    pub cache: CacheLimits,
}

impl Pipeline {
    /// The job called `name`.
    #[must_use]
    pub fn job(&self, name: &str) -> Option<&Job> {
        self.jobs.iter().find(|job| job.name == name)
    }
}

/// Reads the `[pipeline]` of the config file at `path`, following `file = "…"`. The file's
/// other tables are not looked at, so `hoist ci` runs in a project whose deploy settings are
/// not written yet.
///
/// # Errors
///
/// When the file cannot be read, has no `[pipeline]`, or for anything [`parse`] refuses.
pub fn load(path: &Path) -> Result<Pipeline, ConfigError> {
    let text = crate::config::read_config_text(path)?;
    parse(path, &text)?.ok_or_else(|| missing(path))
}

/// Parses the `[pipeline]` of `text`, the contents of the config file at `path`; `Ok(None)` when
/// it has none. Relative paths (`file`, `secrets_file`) start at `path`'s directory.
///
/// # Errors
///
/// The first problem found, with its line and column.
pub fn parse(path: &Path, text: &str) -> Result<Option<Pipeline>, ConfigError> {
    let document: PipelineDocument =
        toml::from_str(text).map_err(|err| ConfigError::from_toml(path, text, err))?;
    let Some(raw) = document.pipeline else {
        return Ok(None);
    };
    let check = Checker { path, text };
    validate::pipeline(&check, &crate::config::config_dir(path), &raw).map(Some)
}

/// The error for a file without a `[pipeline]` table.
fn missing(path: &Path) -> ConfigError {
    ConfigError::new(path, "no [pipeline] table").with_hint(
        "add [pipeline.jobs.<name>] with steps = [...] (see docs/pipeline.md), or import one: hoist import circleci .circleci/config.yml",
    )
}

/// Validates a `[pipeline]` read as part of the whole hoist.toml.
pub(crate) fn validate(
    check: &Checker<'_>,
    dir: &Path,
    raw: &raw::RawPipeline,
) -> Result<Pipeline, ConfigError> {
    validate::pipeline(check, dir, raw)
}
