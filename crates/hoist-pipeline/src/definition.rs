//! The pipeline definition: the `[pipeline]` table of hoist.toml (or the file it names).
//!
//! Parsed from the file's text with our own serde structs so that every error names
//! `file:LINE:` and says how to fix it. The schema is documented in docs/pipeline.md.

use crate::filter::{BranchFilter, BranchPattern};
use indexmap::IndexMap;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;
use toml::Spanned;

/// A definition that cannot be used, with the place and a fix.
#[derive(Debug, thiserror::Error)]
pub enum DefinitionError {
    /// The file cannot be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file has no `[pipeline]` table.
    #[error("{file}: no [pipeline] table")]
    Missing {
        /// The file.
        file: String,
    },
    /// Something in the file is wrong.
    #[error("{file}:{line}: {message}")]
    Invalid {
        /// The file, as the user named it.
        file: String,
        /// 1-based line.
        line: usize,
        /// What is wrong.
        message: String,
        /// How to fix it.
        hint: Option<String>,
    },
}

impl DefinitionError {
    /// The fix, when there is one to suggest.
    pub fn hint(&self) -> Option<&str> {
        match self {
            Self::Missing { .. } => Some("add [pipeline.jobs.<name>] with steps = [...] (see docs/pipeline.md), or import one: hoist import circleci .circleci/config.yml"),
            Self::Invalid { hint, .. } => hint.as_deref(),
            Self::Read { .. } => None,
        }
    }
}

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
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Postgres { .. } => "postgres",
            Self::Redis => "redis",
        }
    }
}

/// A `run` step.
#[derive(Debug, Clone)]
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
#[derive(Debug, Clone)]
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

/// One step of a job.
#[derive(Debug, Clone)]
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
#[derive(Debug, Clone)]
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
#[derive(Debug, Clone)]
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
    pub fn job(&self, name: &str) -> Option<&Job> {
        self.jobs.iter().find(|j| j.name == name)
    }
}

#[derive(Deserialize)]
struct FileDoc {
    // Other tables of hoist.toml belong to the config crate and are not looked at here.
    pipeline: Option<RawPipeline>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPipeline {
    file: Option<Spanned<String>>,
    max_parallel: Option<Spanned<usize>>,
    #[serde(default)]
    environment: IndexMap<String, Scalar>,
    #[serde(default)]
    secrets: Vec<String>,
    secrets_file: Option<String>,
    cache: Option<RawCache>,
    #[serde(default)]
    jobs: IndexMap<String, Spanned<RawJob>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCache {
    max_size: Option<Spanned<String>>,
    max_age: Option<Spanned<DurationValue>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawJob {
    #[serde(default)]
    steps: Vec<Spanned<toml::Value>>,
    requires: Option<OneOrMany>,
    only: Option<Spanned<OneOrMany>>,
    ignore: Option<Spanned<OneOrMany>>,
    #[serde(default)]
    environment: IndexMap<String, Scalar>,
    #[serde(default)]
    services: IndexMap<String, Spanned<RawService>>,
    timeout: Option<Spanned<DurationValue>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawService {
    #[serde(default)]
    environment: IndexMap<String, Scalar>,
    #[serde(default)]
    settings: IndexMap<String, Scalar>,
}

#[derive(Deserialize, Clone)]
#[serde(untagged)]
enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    fn into_vec(self) -> Vec<String> {
        match self {
            Self::One(s) => vec![s],
            Self::Many(v) => v,
        }
    }
}

/// An environment value: TOML strings, numbers and booleans are all accepted.
#[derive(Deserialize, Clone)]
#[serde(untagged)]
enum Scalar {
    Str(String),
    Int(i64),
    Float(f64),
    Bool(bool),
}

impl Scalar {
    fn into_string(self) -> String {
        match self {
            Self::Str(s) => s,
            Self::Int(i) => i.to_string(),
            Self::Float(f) => f.to_string(),
            Self::Bool(b) => b.to_string(),
        }
    }
}

#[derive(Deserialize, Clone)]
#[serde(untagged)]
enum DurationValue {
    Seconds(u64),
    Text(String),
}

/// Parses `90`, `"90s"`, `"10m"`, `"1h30m"`, `"2d"`.
pub fn parse_duration(text: &str) -> Option<Duration> {
    let text = text.trim();
    if let Ok(secs) = text.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let mut total = 0u64;
    let mut number = String::new();
    for c in text.chars() {
        if c.is_ascii_digit() {
            number.push(c);
            continue;
        }
        let unit = match c {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => 86400,
            _ => return None,
        };
        total += number.parse::<u64>().ok()? * unit;
        number.clear();
    }
    (number.is_empty() && !text.is_empty()).then(|| Duration::from_secs(total))
}

/// Parses `500MB`, `5GB`, `1024` (bytes).
pub fn parse_size(text: &str) -> Option<u64> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: u64 = number.parse().ok()?;
    let factor: u64 = match unit.trim().to_ascii_uppercase().as_str() {
        "" | "B" => 1,
        "K" | "KB" | "KIB" => 1 << 10,
        "M" | "MB" | "MIB" => 1 << 20,
        "G" | "GB" | "GIB" => 1 << 30,
        _ => return None,
    };
    number.checked_mul(factor)
}

struct Source<'a> {
    label: String,
    text: &'a str,
}

impl Source<'_> {
    fn line(&self, offset: usize) -> usize {
        let offset = offset.min(self.text.len());
        self.text[..offset].bytes().filter(|b| *b == b'\n').count() + 1
    }

    fn error(
        &self,
        offset: usize,
        message: impl Into<String>,
        hint: Option<&str>,
    ) -> DefinitionError {
        DefinitionError::Invalid {
            file: self.label.clone(),
            line: self.line(offset),
            message: message.into(),
            hint: hint.map(str::to_string),
        }
    }
}

const DEFAULT_NO_OUTPUT_TIMEOUT: Duration = Duration::from_secs(600);

/// Loads the pipeline of the config file at `config` (hoist.toml), following `file = "..."`.
///
/// `label` is how errors name the file (e.g. `hoist.toml`).
pub fn load(config: &Path) -> Result<Pipeline, DefinitionError> {
    let text = std::fs::read_to_string(config).map_err(|source| DefinitionError::Read {
        path: config.to_path_buf(),
        source,
    })?;
    let label = config.file_name().map_or_else(
        || config.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    );
    let base = config.parent().unwrap_or(Path::new("."));
    let raw = parse_raw(&text, &label)?;
    let Some(raw) = raw else {
        return Err(DefinitionError::Missing { file: label });
    };
    if let Some(file) = &raw.file {
        let src = Source {
            label: label.clone(),
            text: &text,
        };
        if raw.jobs.len() + raw.environment.len() + raw.secrets.len() > 0 {
            return Err(src.error(
                file.span().start,
                "[pipeline] names a file and also defines the pipeline here",
                Some("keep either `file = ...` or the pipeline's tables, not both"),
            ));
        }
        let path = base.join(file.get_ref());
        let other = std::fs::read_to_string(&path).map_err(|e| {
            src.error(
                file.span().start,
                format!("cannot read the pipeline file {}: {e}", path.display()),
                Some("create it, or remove `file` and define [pipeline.jobs.<name>] here"),
            )
        })?;
        let other_label = file.get_ref().clone();
        let raw = parse_raw(&other, &other_label)?.ok_or(DefinitionError::Missing {
            file: other_label.clone(),
        })?;
        return build(
            raw,
            &Source {
                label: other_label,
                text: &other,
            },
            base,
            path,
        );
    }
    build(
        raw,
        &Source { label, text: &text },
        base,
        config.to_path_buf(),
    )
}

/// Parses a pipeline from a file's text; `Ok(None)` when it has no `[pipeline]` table.
///
/// `base` is the project directory (relative `secrets_file` is resolved against it).
pub fn parse(text: &str, label: &str, base: &Path) -> Result<Option<Pipeline>, DefinitionError> {
    let Some(raw) = parse_raw(text, label)? else {
        return Ok(None);
    };
    build(
        raw,
        &Source {
            label: label.into(),
            text,
        },
        base,
        base.join(label),
    )
    .map(Some)
}

fn parse_raw(text: &str, label: &str) -> Result<Option<RawPipeline>, DefinitionError> {
    let src = Source {
        label: label.into(),
        text,
    };
    let doc: FileDoc = toml::from_str(text).map_err(|e| {
        let offset = e.span().map_or(0, |s| s.start);
        src.error(
            offset,
            e.message().trim().to_string(),
            Some("see docs/pipeline.md for the [pipeline] schema"),
        )
    })?;
    Ok(doc.pipeline)
}

fn env_pairs(map: IndexMap<String, Scalar>) -> Vec<(String, String)> {
    map.into_iter().map(|(k, v)| (k, v.into_string())).collect()
}

fn build(
    raw: RawPipeline,
    src: &Source<'_>,
    base: &Path,
    source: PathBuf,
) -> Result<Pipeline, DefinitionError> {
    let mut cache = CacheLimits::default();
    if let Some(c) = raw.cache {
        if let Some(size) = c.max_size {
            cache.max_bytes = parse_size(size.get_ref()).ok_or_else(|| {
                src.error(
                    size.span().start,
                    format!("cache max_size {:?} is not a size", size.get_ref()),
                    Some("write e.g. \"500MB\" or \"5GB\""),
                )
            })?;
        }
        if let Some(age) = c.max_age {
            cache.max_age = duration(&age, src)?;
        }
    }
    let max_parallel = match raw.max_parallel {
        Some(n) if *n.get_ref() == 0 => {
            return Err(src.error(
                n.span().start,
                "max_parallel = 0 would run no job",
                Some("use 1 or more"),
            ));
        }
        Some(n) => *n.get_ref(),
        None => std::thread::available_parallelism().map_or(2, std::num::NonZero::get),
    };
    let mut jobs = Vec::new();
    let names: Vec<String> = raw.jobs.keys().cloned().collect();
    for (name, job) in raw.jobs {
        let offset = job.span().start;
        jobs.push(build_job(name, job.into_inner(), offset, &names, src)?);
    }
    check_cycles(&jobs, src)?;
    Ok(Pipeline {
        source,
        jobs,
        environment: env_pairs(raw.environment),
        secrets: raw.secrets,
        secrets_file: raw.secrets_file.map(|f| base.join(f)),
        max_parallel,
        cache,
    })
}

fn duration(value: &Spanned<DurationValue>, src: &Source<'_>) -> Result<Duration, DefinitionError> {
    match value.get_ref() {
        DurationValue::Seconds(s) => Ok(Duration::from_secs(*s)),
        DurationValue::Text(t) => parse_duration(t).ok_or_else(|| {
            src.error(
                value.span().start,
                format!("{t:?} is not a duration"),
                Some("write seconds (90) or a string like \"90s\", \"10m\", \"1h30m\""),
            )
        }),
    }
}

fn patterns(
    value: Option<Spanned<OneOrMany>>,
    src: &Source<'_>,
) -> Result<Vec<BranchPattern>, DefinitionError> {
    let Some(value) = value else {
        return Ok(Vec::new());
    };
    let offset = value.span().start;
    value
        .into_inner()
        .into_vec()
        .iter()
        .map(|p| {
            BranchPattern::parse(p).map_err(|e| {
                src.error(offset, format!("branch pattern {p:?} is not a valid regular expression: {e}"), Some("a pattern between slashes is a regex that must match the whole branch name, e.g. \"/release-.*/\""))
            })
        })
        .collect()
}

fn build_job(
    name: String,
    raw: RawJob,
    offset: usize,
    names: &[String],
    src: &Source<'_>,
) -> Result<Job, DefinitionError> {
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
    {
        return Err(src.error(
            offset,
            format!("job name {name:?} may only hold letters, digits, '-', '_' and '.'"),
            Some("rename the job"),
        ));
    }
    let requires = raw.requires.map(OneOrMany::into_vec).unwrap_or_default();
    for r in &requires {
        if !names.contains(r) {
            return Err(src.error(
                offset,
                format!("job {name:?} requires {r:?}, which is not a job of this pipeline"),
                Some(&format!("jobs are: {}", names.join(", "))),
            ));
        }
        if r == &name {
            return Err(src.error(
                offset,
                format!("job {name:?} requires itself"),
                Some("remove it from requires"),
            ));
        }
    }
    let filter = BranchFilter {
        only: patterns(raw.only, src)?,
        ignore: patterns(raw.ignore, src)?,
    };
    let mut services = Vec::new();
    for (kind, spec) in raw.services {
        let at = spec.span().start;
        let spec = spec.into_inner();
        services.push(match kind.as_str() {
            "postgres" | "postgresql" => {
                let env: BTreeMap<String, String> = env_pairs(spec.environment).into_iter().collect();
                if let Some(unknown) = env.keys().find(|k| !["POSTGRES_USER", "POSTGRES_DB", "POSTGRES_PASSWORD", "PGPASSWORD"].contains(&k.as_str())) {
                    return Err(src.error(at, format!("postgres service: unknown environment variable {unknown}"), Some("the service reads POSTGRES_USER, POSTGRES_DB and POSTGRES_PASSWORD (or PGPASSWORD)")));
                }
                let user = env.get("POSTGRES_USER").cloned().unwrap_or_else(|| "postgres".into());
                ServiceSpec::Postgres {
                    db: env.get("POSTGRES_DB").cloned().unwrap_or_else(|| user.clone()),
                    user,
                    password: env.get("POSTGRES_PASSWORD").or_else(|| env.get("PGPASSWORD")).cloned(),
                    settings: env_pairs(spec.settings).into_iter().collect(),
                }
            }
            "redis" => ServiceSpec::Redis,
            other => {
                return Err(src.error(at, format!("unknown service {other:?}"), Some("hoist starts these natively: postgres, redis")));
            }
        });
    }
    let mut steps = Vec::new();
    for (i, step) in raw.steps.into_iter().enumerate() {
        let at = step.span().start;
        steps.push(build_step(&name, i + 1, step.into_inner(), at, src)?);
    }
    if steps.is_empty() {
        return Err(src.error(
            offset,
            format!("job {name:?} has no steps"),
            Some("add steps = [\"checkout\", { run = \"pytest\" }]"),
        ));
    }
    let timeout = raw.timeout.as_ref().map(|t| duration(t, src)).transpose()?;
    Ok(Job {
        name,
        requires,
        filter,
        environment: env_pairs(raw.environment),
        services,
        steps,
        timeout,
    })
}

const KINDS: &str = "checkout, run, restore_cache, save_cache, artifacts, test_results, deploy";

fn build_step(
    job: &str,
    number: usize,
    value: toml::Value,
    at: usize,
    src: &Source<'_>,
) -> Result<Step, DefinitionError> {
    let line = src.line(at);
    let fail = |message: String, hint: &str| {
        src.error(
            at,
            format!("job {job:?}, step {number}: {message}"),
            Some(hint),
        )
    };
    let mut table = match value {
        toml::Value::String(s) if s == "checkout" => {
            return Ok(Step {
                name: "checkout".into(),
                when: When::OnSuccess,
                kind: StepKind::Checkout,
                line,
            });
        }
        toml::Value::Table(t) => t,
        other => {
            return Err(fail(
                format!(
                    "a step is \"checkout\" or a table, not {}",
                    other.type_str()
                ),
                "write e.g. { run = \"pytest\" }",
            ));
        }
    };
    let kinds: Vec<&str> = KINDS
        .split(", ")
        .filter(|k| table.contains_key(*k))
        .collect();
    let kind = match kinds.as_slice() {
        [one] => (*one).to_string(),
        [] => {
            return Err(fail(
                "the step has no kind".into(),
                &format!("give it one of: {KINDS}"),
            ))
        }
        many => {
            return Err(fail(
                format!("the step has several kinds ({})", many.join(", ")),
                "split it into one step per kind",
            ))
        }
    };
    let main = table.remove(&kind).unwrap_or(toml::Value::Boolean(true));
    let take_str =
        |table: &mut toml::Table, key: &str| -> Result<Option<String>, DefinitionError> {
            match table.remove(key) {
                None => Ok(None),
                Some(toml::Value::String(s)) => Ok(Some(s)),
                Some(other) => Err(fail(
                    format!("{key} must be a string, not {}", other.type_str()),
                    "quote it",
                )),
            }
        };
    let name = take_str(&mut table, "name")?;
    let when = match take_str(&mut table, "when")?.as_deref() {
        None => None,
        Some("on_success") => Some(When::OnSuccess),
        Some("always") => Some(When::Always),
        Some("on_fail") => Some(When::OnFail),
        Some(other) => {
            return Err(fail(
                format!("unknown when = {other:?}"),
                "use on_success, always or on_fail",
            ))
        }
    };
    let strings = |value: toml::Value, what: &str| -> Result<Vec<String>, DefinitionError> {
        match value {
            toml::Value::String(s) => Ok(vec![s]),
            toml::Value::Array(items) => items
                .into_iter()
                .map(|i| match i {
                    toml::Value::String(s) => Ok(s),
                    other => Err(fail(
                        format!("{what} must be strings, not {}", other.type_str()),
                        "quote each one",
                    )),
                })
                .collect(),
            other => Err(fail(
                format!(
                    "{what} must be a string or a list of strings, not {}",
                    other.type_str()
                ),
                "quote it",
            )),
        }
    };
    let (kind, default_name, default_when): (StepKind, String, When) = match kind.as_str() {
        "checkout" => (StepKind::Checkout, "checkout".into(), When::OnSuccess),
        "run" => {
            let toml::Value::String(command) = main else {
                return Err(fail(
                    "run must be the script, a string".into(),
                    "write run = \"pytest\" (use ''' for several lines)",
                ));
            };
            let shell = match take_str(&mut table, "shell")? {
                Some(s) => s.split_whitespace().map(str::to_string).collect(),
                None => vec!["bash".into(), "-eo".into(), "pipefail".into()],
            };
            let environment = match table.remove("environment") {
                None => Vec::new(),
                Some(toml::Value::Table(t)) => t
                    .into_iter()
                    .map(|(k, v)| match v {
                        toml::Value::String(s) => Ok((k, s)),
                        toml::Value::Integer(_)
                        | toml::Value::Float(_)
                        | toml::Value::Boolean(_) => Ok((k, v.to_string())),
                        other => Err(fail(
                            format!("environment {k} must be a string, not {}", other.type_str()),
                            "quote it",
                        )),
                    })
                    .collect::<Result<_, _>>()?,
                Some(other) => {
                    return Err(fail(
                        format!("environment must be a table, not {}", other.type_str()),
                        "write environment = { NAME = \"value\" }",
                    ))
                }
            };
            let no_output_timeout = match table.remove("no_output_timeout") {
                None => DEFAULT_NO_OUTPUT_TIMEOUT,
                Some(toml::Value::Integer(s)) if s > 0 => Duration::from_secs(s.unsigned_abs()),
                Some(toml::Value::String(s)) => parse_duration(&s).ok_or_else(|| {
                    fail(
                        format!("no_output_timeout {s:?} is not a duration"),
                        "write \"90s\", \"10m\" or a number of seconds",
                    )
                })?,
                Some(other) => {
                    return Err(fail(
                        format!("no_output_timeout must be a duration, not {other}"),
                        "write \"90s\", \"10m\" or a number of seconds",
                    ))
                }
            };
            let unless_cache_hit = match table.remove("unless_cache_hit") {
                None => false,
                Some(toml::Value::Boolean(b)) => b,
                Some(other) => {
                    return Err(fail(
                        format!("unless_cache_hit must be true or false, not {other}"),
                        "write unless_cache_hit = true",
                    ))
                }
            };
            let working_directory = take_str(&mut table, "working_directory")?;
            let first = command
                .lines()
                .find(|l| !l.trim().is_empty())
                .unwrap_or("run")
                .trim()
                .to_string();
            (
                StepKind::Run(RunStep {
                    command,
                    shell,
                    environment,
                    working_directory,
                    no_output_timeout,
                    unless_cache_hit,
                }),
                first,
                When::OnSuccess,
            )
        }
        "restore_cache" => {
            let keys = strings(main, "restore_cache keys")?;
            if keys.is_empty() {
                return Err(fail("restore_cache has no keys".into(), "write restore_cache = [\"deps-{{ checksum \\\"requirements.txt\\\" }}\", \"deps-\"]"));
            }
            (
                StepKind::RestoreCache { keys },
                "restore cache".into(),
                When::OnSuccess,
            )
        }
        "save_cache" => {
            let toml::Value::String(key) = main else {
                return Err(fail("save_cache must be the key template, a string".into(), "write save_cache = \"deps-{{ checksum \\\"requirements.txt\\\" }}\", paths = [\"env\"]"));
            };
            let paths = strings(
                table
                    .remove("paths")
                    .unwrap_or(toml::Value::Array(Vec::new())),
                "save_cache paths",
            )?;
            if paths.is_empty() {
                return Err(fail(
                    "save_cache has no paths".into(),
                    "add paths = [\"env\"]",
                ));
            }
            (
                StepKind::SaveCache { key, paths },
                "save cache".into(),
                When::OnSuccess,
            )
        }
        "artifacts" => {
            let toml::Value::String(path) = main else {
                return Err(fail(
                    "artifacts must be a path, a string".into(),
                    "write artifacts = \"test-reports\"",
                ));
            };
            let destination = take_str(&mut table, "destination")?.unwrap_or_else(|| path.clone());
            (
                StepKind::Artifacts { path, destination },
                "store artifacts".into(),
                When::Always,
            )
        }
        "test_results" => {
            let toml::Value::String(path) = main else {
                return Err(fail(
                    "test_results must be a path, a string".into(),
                    "write test_results = \"test-reports\"",
                ));
            };
            (
                StepKind::TestResults { path },
                "store test results".into(),
                When::Always,
            )
        }
        _ => {
            let environment = match main {
                toml::Value::Boolean(true) => None,
                toml::Value::String(s) => Some(s),
                other => {
                    return Err(fail(
                        format!("deploy must be true or an environment's name, not {other}"),
                        "write deploy = true or deploy = \"production\"",
                    ))
                }
            };
            let name = environment
                .as_ref()
                .map_or_else(|| "deploy".into(), |e| format!("deploy to {e}"));
            (StepKind::Deploy { environment }, name, When::OnSuccess)
        }
    };
    if let Some(extra) = table.keys().next() {
        let known = match &kind {
            StepKind::Run(_) => "name, when, shell, environment, working_directory, no_output_timeout, unless_cache_hit",
            StepKind::SaveCache { .. } => "name, when, paths",
            StepKind::Artifacts { .. } => "name, when, destination",
            _ => "name, when",
        };
        return Err(fail(
            format!("unknown key {extra:?} in a {} step", kind_name(&kind)),
            &format!("a {} step takes: {known}", kind_name(&kind)),
        ));
    }
    Ok(Step {
        name: name.unwrap_or(default_name),
        when: when.unwrap_or(default_when),
        kind,
        line,
    })
}

/// The step kind's name as written in the definition.
pub fn kind_name(kind: &StepKind) -> &'static str {
    match kind {
        StepKind::Checkout => "checkout",
        StepKind::Run(_) => "run",
        StepKind::RestoreCache { .. } => "restore_cache",
        StepKind::SaveCache { .. } => "save_cache",
        StepKind::Artifacts { .. } => "artifacts",
        StepKind::TestResults { .. } => "test_results",
        StepKind::Deploy { .. } => "deploy",
    }
}

fn check_cycles(jobs: &[Job], src: &Source<'_>) -> Result<(), DefinitionError> {
    // Depth-first search; a job seen again on the current path closes a cycle.
    fn visit<'a>(
        job: &'a Job,
        jobs: &'a [Job],
        path: &mut Vec<&'a str>,
        done: &mut Vec<&'a str>,
    ) -> Option<Vec<String>> {
        if done.contains(&job.name.as_str()) {
            return None;
        }
        if let Some(start) = path.iter().position(|n| *n == job.name) {
            let mut cycle: Vec<String> = path[start..].iter().map(|s| s.to_string()).collect();
            cycle.push(job.name.clone());
            return Some(cycle);
        }
        path.push(&job.name);
        for r in &job.requires {
            if let Some(next) = jobs.iter().find(|j| &j.name == r) {
                if let Some(c) = visit(next, jobs, path, done) {
                    return Some(c);
                }
            }
        }
        path.pop();
        done.push(&job.name);
        None
    }
    let mut done = Vec::new();
    for job in jobs {
        if let Some(cycle) = visit(job, jobs, &mut Vec::new(), &mut done) {
            let at = src.text.find(&format!("jobs.{}", cycle[0])).unwrap_or(0);
            return Err(src.error(
                at,
                format!("jobs require each other in a cycle: {}", cycle.join(" -> ")),
                Some("remove one of these requires"),
            ));
        }
    }
    Ok(())
}
