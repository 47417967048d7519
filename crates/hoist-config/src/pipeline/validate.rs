//! From [`RawPipeline`] to [`Pipeline`]: every check, each error at the line of the value it is
//! about.

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::Path;
use std::time::Duration;

use indexmap::IndexMap;
use toml::Spanned;

use super::raw::{
    DeployTarget, OneOrMany, PipelineDocument, RawJob, RawPipeline, RawService, RawStep,
    RawStepTable, Scalar,
};
use super::{
    BranchFilter, BranchPattern, CacheLimits, Job, Pipeline, RunStep, ServiceSpec, Step, StepKind,
    When,
};
use crate::check::Checker;
use crate::ConfigError;

const DEFAULT_NO_OUTPUT_TIMEOUT: Duration = Duration::from_secs(600);

const STEP_KINDS: &str =
    "checkout, run, restore_cache, save_cache, artifacts, test_results, deploy";

/// Parses `500MB`, `5GB`, `1024` (bytes).
#[must_use]
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

pub(super) fn pipeline(
    check: &Checker<'_>,
    dir: &Path,
    raw: &RawPipeline,
) -> Result<Pipeline, ConfigError> {
    let Some(file) = &raw.file else {
        return defined_here(check, dir, raw);
    };
    if !raw.jobs.is_empty() || !raw.environment.is_empty() || !raw.secrets.is_empty() {
        return Err(check
            .error(
                file.span(),
                "[pipeline] names a file and also defines the pipeline here",
            )
            .with_hint("keep either `file = ...` or the pipeline's tables, not both"));
    }
    // Errors in the other file name it as the user would: next to the config file.
    let shown = check
        .path
        .parent()
        .unwrap_or(Path::new(""))
        .join(file.get_ref());
    let text = crate::config::read_config_text(&dir.join(file.get_ref())).map_err(|err| {
        check
            .error(
                file.span(),
                format!(
                    "cannot read the pipeline file {}: {}",
                    file.get_ref(),
                    err.message
                ),
            )
            .with_hint("create it, or remove `file` and define [pipeline.jobs.<name>] here")
    })?;
    let document: PipelineDocument =
        toml::from_str(&text).map_err(|err| ConfigError::from_toml(&shown, &text, err))?;
    let Some(other) = document.pipeline else {
        return Err(super::missing(&shown));
    };
    let other_check = Checker {
        path: &shown,
        text: &text,
    };
    if let Some(nested) = &other.file {
        return Err(other_check
            .error(nested.span(), "a pipeline file cannot name another file")
            .with_hint("define [pipeline.jobs.<name>] in this file"));
    }
    let mut pipeline = defined_here(&other_check, dir, &other)?;
    pipeline.source = dir.join(file.get_ref());
    Ok(pipeline)
}

fn defined_here(
    check: &Checker<'_>,
    dir: &Path,
    raw: &RawPipeline,
) -> Result<Pipeline, ConfigError> {
    let mut cache = CacheLimits::default();
    if let Some(raw_cache) = &raw.cache {
        if let Some(size) = &raw_cache.max_size {
            cache.max_bytes = parse_size(size.get_ref()).ok_or_else(|| {
                check
                    .error(
                        size.span(),
                        format!("cache max_size {:?} is not a size", size.get_ref()),
                    )
                    .with_hint("write e.g. \"500MB\" or \"5GB\"")
            })?;
        }
        if let Some(age) = &raw_cache.max_age {
            cache.max_age = check.duration_value(age, "max_age")?;
        }
    }
    let max_parallel = match &raw.max_parallel {
        Some(n) => usize::try_from(*n.get_ref())
            .ok()
            .filter(|n| *n > 0)
            .ok_or_else(|| {
                check
                    .error(
                        n.span(),
                        format!("max_parallel = {} would run no job", n.get_ref()),
                    )
                    .with_hint("use 1 or more")
            })?,
        None => std::thread::available_parallelism().map_or(2, std::num::NonZero::get),
    };
    let names: Vec<&str> = raw.jobs.keys().map(|n| n.get_ref().as_str()).collect();
    let jobs = raw
        .jobs
        .iter()
        .map(|(name, job)| self::job(check, name, job, &names))
        .collect::<Result<Vec<_>, _>>()?;
    check_cycles(check, &jobs, &raw.jobs)?;
    Ok(Pipeline {
        source: check.path.to_path_buf(),
        jobs,
        environment: env_pairs(&raw.environment),
        secrets: raw.secrets.clone(),
        secrets_file: raw.secrets_file.as_ref().map(|f| dir.join(f.get_ref())),
        max_parallel,
        cache,
    })
}

fn env_pairs(map: &IndexMap<String, Scalar>) -> Vec<(String, String)> {
    map.iter()
        .map(|(key, value)| (key.clone(), value.clone().into_string()))
        .collect()
}

fn job(
    check: &Checker<'_>,
    name: &Spanned<String>,
    raw: &RawJob,
    names: &[&str],
) -> Result<Job, ConfigError> {
    let job_name = name.get_ref().as_str();
    if job_name.is_empty()
        || !job_name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
    {
        return Err(check
            .error(
                name.span(),
                format!("job name {job_name:?} may only hold letters, digits, '-', '_' and '.'"),
            )
            .with_hint("rename the job"));
    }
    let requires = raw
        .requires
        .as_ref()
        .map(|r| r.get_ref().clone().into_vec())
        .unwrap_or_default();
    let requires_span = raw.requires.as_ref().map_or(name.span(), Spanned::span);
    for required in &requires {
        if required == job_name {
            return Err(check
                .error(requires_span, format!("job {job_name:?} requires itself"))
                .with_hint("remove it from requires"));
        }
        if !names.contains(&required.as_str()) {
            return Err(check
                .error(
                    requires_span,
                    format!(
                        "job {job_name:?} requires {required:?}, which is not a job of this pipeline"
                    ),
                )
                .with_hint(format!("jobs are: {}", names.join(", "))));
        }
    }
    let filter = BranchFilter {
        only: patterns(check, raw.only.as_ref())?,
        ignore: patterns(check, raw.ignore.as_ref())?,
    };
    let services = raw
        .services
        .iter()
        .map(|(kind, spec)| service(check, kind, spec))
        .collect::<Result<_, _>>()?;
    let steps = raw
        .steps
        .iter()
        .enumerate()
        .map(|(i, s)| step(check, job_name, i + 1, s))
        .collect::<Result<Vec<_>, _>>()?;
    if steps.is_empty() {
        return Err(check
            .error(name.span(), format!("job {job_name:?} has no steps"))
            .with_hint("add steps = [\"checkout\", { run = \"pytest\" }]"));
    }
    let timeout = raw
        .timeout
        .as_ref()
        .map(|t| check.positive_duration_value(t, "timeout"))
        .transpose()?;
    Ok(Job {
        name: job_name.to_owned(),
        requires,
        filter,
        environment: env_pairs(&raw.environment),
        services,
        steps,
        timeout,
    })
}

fn patterns(
    check: &Checker<'_>,
    value: Option<&Spanned<OneOrMany>>,
) -> Result<Vec<BranchPattern>, ConfigError> {
    let Some(value) = value else {
        return Ok(Vec::new());
    };
    value
        .get_ref()
        .clone()
        .into_vec()
        .iter()
        .map(|pattern| {
            BranchPattern::parse(pattern).map_err(|err| {
                check
                    .error(
                        value.span(),
                        format!("branch pattern {pattern:?} is not a valid regular expression: {err}"),
                    )
                    .with_hint("a pattern between slashes is a regex that must match the whole branch name, e.g. \"/release-.*/\"")
            })
        })
        .collect()
}

const POSTGRES_VARIABLES: [&str; 4] = [
    "POSTGRES_USER",
    "POSTGRES_DB",
    "POSTGRES_PASSWORD",
    "PGPASSWORD",
];

fn service(
    check: &Checker<'_>,
    kind: &Spanned<String>,
    spec: &RawService,
) -> Result<ServiceSpec, ConfigError> {
    match kind.get_ref().as_str() {
        "postgres" | "postgresql" => {
            let env: BTreeMap<String, String> = env_pairs(&spec.environment).into_iter().collect();
            if let Some(unknown) = env
                .keys()
                .find(|k| !POSTGRES_VARIABLES.contains(&k.as_str()))
            {
                return Err(check
                    .error(
                        kind.span(),
                        format!("postgres service: unknown environment variable {unknown}"),
                    )
                    .with_hint("the service reads POSTGRES_USER, POSTGRES_DB and POSTGRES_PASSWORD (or PGPASSWORD)"));
            }
            let user = env
                .get("POSTGRES_USER")
                .cloned()
                .unwrap_or_else(|| "postgres".into());
            Ok(ServiceSpec::Postgres {
                db: env
                    .get("POSTGRES_DB")
                    .cloned()
                    .unwrap_or_else(|| user.clone()),
                user,
                password: env
                    .get("POSTGRES_PASSWORD")
                    .or_else(|| env.get("PGPASSWORD"))
                    .cloned(),
                settings: env_pairs(&spec.settings).into_iter().collect(),
            })
        }
        "redis" => Ok(ServiceSpec::Redis),
        other => Err(check
            .error(kind.span(), format!("unknown service {other:?}"))
            .with_hint("hoist starts these natively: postgres, redis")),
    }
}

/// Reports a step's problems as `job "t", step 2: …`, at the value they are about.
struct StepCheck<'a> {
    check: &'a Checker<'a>,
    job: &'a str,
    number: usize,
}

impl StepCheck<'_> {
    fn error(&self, span: Range<usize>, message: &str, hint: &str) -> ConfigError {
        self.check
            .error(
                span,
                format!("job {:?}, step {}: {message}", self.job, self.number),
            )
            .with_hint(hint)
    }
}

fn step(
    check: &Checker<'_>,
    job: &str,
    number: usize,
    raw: &Spanned<RawStep>,
) -> Result<Step, ConfigError> {
    let line = crate::error::line_and_column(check.text, raw.span().start).0;
    let table = match raw.get_ref() {
        RawStep::Checkout => {
            return Ok(Step {
                name: "checkout".into(),
                when: When::OnSuccess,
                kind: StepKind::Checkout,
                line,
            })
        }
        RawStep::Table(table) => table,
    };
    let step_check = StepCheck { check, job, number };
    let (kind, default_name, default_when) = step_kind(&step_check, raw.span(), table)?;
    let allowed: &[&str] = match &kind {
        StepKind::Run(_) => &[
            "shell",
            "environment",
            "working_directory",
            "no_output_timeout",
            "unless_cache_hit",
        ],
        StepKind::SaveCache { .. } => &["paths"],
        StepKind::Artifacts { .. } => &["destination"],
        _ => &[],
    };
    if let Some((extra, span)) = option_keys(table)
        .into_iter()
        .find(|(key, _)| !allowed.contains(key))
    {
        let mut takes = vec!["name", "when"];
        takes.extend(allowed);
        return Err(step_check.error(
            span,
            &format!("unknown key {extra:?} in a {} step", kind.key()),
            &format!("a {} step takes: {}", kind.key(), takes.join(", ")),
        ));
    }
    let when = match &table.when {
        None => default_when,
        Some(when) => match when.get_ref().as_str() {
            "on_success" => When::OnSuccess,
            "always" => When::Always,
            "on_fail" => When::OnFail,
            other => {
                return Err(step_check.error(
                    when.span(),
                    &format!("unknown when = {other:?}"),
                    "use on_success, always or on_fail",
                ))
            }
        },
    };
    Ok(Step {
        name: table
            .name
            .as_ref()
            .map_or(default_name, |n| n.get_ref().clone()),
        when,
        kind,
        line,
    })
}

/// The step-specific keys present besides the kind's own, with their spans.
fn option_keys(table: &RawStepTable) -> Vec<(&'static str, Range<usize>)> {
    [
        ("shell", table.shell.as_ref().map(Spanned::span)),
        ("environment", table.environment.as_ref().map(Spanned::span)),
        (
            "working_directory",
            table.working_directory.as_ref().map(Spanned::span),
        ),
        (
            "no_output_timeout",
            table.no_output_timeout.as_ref().map(Spanned::span),
        ),
        (
            "unless_cache_hit",
            table.unless_cache_hit.as_ref().map(Spanned::span),
        ),
        ("paths", table.paths.as_ref().map(Spanned::span)),
        ("destination", table.destination.as_ref().map(Spanned::span)),
    ]
    .into_iter()
    .filter_map(|(key, span)| span.map(|span| (key, span)))
    .collect()
}

/// The one kind the step's table gives, with its default name and `when`.
fn step_kind(
    check: &StepCheck<'_>,
    at: Range<usize>,
    table: &RawStepTable,
) -> Result<(StepKind, String, When), ConfigError> {
    let given: Vec<&str> = [
        ("checkout", table.checkout.is_some()),
        ("run", table.run.is_some()),
        ("restore_cache", table.restore_cache.is_some()),
        ("save_cache", table.save_cache.is_some()),
        ("artifacts", table.artifacts.is_some()),
        ("test_results", table.test_results.is_some()),
        ("deploy", table.deploy.is_some()),
    ]
    .into_iter()
    .filter_map(|(key, present)| present.then_some(key))
    .collect();
    match given.as_slice() {
        [_] => {}
        [] => {
            return Err(check.error(
                at,
                "the step has no kind",
                &format!("give it one of: {STEP_KINDS}"),
            ))
        }
        many => {
            return Err(check.error(
                at,
                &format!("the step has several kinds ({})", many.join(", ")),
                "split it into one step per kind",
            ))
        }
    }
    if let Some(run) = &table.run {
        return Ok((
            StepKind::Run(run_step(check.check, run.get_ref(), table)?),
            first_line(run.get_ref()),
            When::OnSuccess,
        ));
    }
    if let Some(keys) = &table.restore_cache {
        let keys = keys.get_ref().clone().into_vec();
        if keys.is_empty() {
            return Err(check.error(at, "restore_cache has no keys", "write restore_cache = [\"deps-{{ checksum \\\"requirements.txt\\\" }}\", \"deps-\"]"));
        }
        return Ok((
            StepKind::RestoreCache { keys },
            "restore cache".into(),
            When::OnSuccess,
        ));
    }
    if let Some(key) = &table.save_cache {
        let paths = table
            .paths
            .as_ref()
            .map(|p| p.get_ref().clone().into_vec())
            .unwrap_or_default();
        if paths.is_empty() {
            return Err(check.error(at, "save_cache has no paths", "add paths = [\"env\"]"));
        }
        return Ok((
            StepKind::SaveCache {
                key: key.get_ref().clone(),
                paths,
            },
            "save cache".into(),
            When::OnSuccess,
        ));
    }
    if let Some(path) = &table.artifacts {
        let destination = table.destination.as_ref().unwrap_or(path).get_ref().clone();
        return Ok((
            StepKind::Artifacts {
                path: path.get_ref().clone(),
                destination,
            },
            "store artifacts".into(),
            When::Always,
        ));
    }
    if let Some(path) = &table.test_results {
        return Ok((
            StepKind::TestResults {
                path: path.get_ref().clone(),
            },
            "store test results".into(),
            When::Always,
        ));
    }
    if let Some(deploy) = &table.deploy {
        let environment = match deploy.get_ref() {
            DeployTarget::Default(true) => None,
            DeployTarget::Environment(name) => Some(name.clone()),
            DeployTarget::Default(false) => {
                return Err(check.error(
                    deploy.span(),
                    "deploy = false is not a step",
                    "write deploy = true or deploy = \"production\", or remove the step",
                ))
            }
        };
        let name = environment
            .as_ref()
            .map_or_else(|| "deploy".into(), |e| format!("deploy to {e}"));
        return Ok((StepKind::Deploy { environment }, name, When::OnSuccess));
    }
    // The one kind left is `checkout = true`.
    if let Some(checkout) = table.checkout.as_ref().filter(|c| !*c.get_ref()) {
        return Err(check.error(
            checkout.span(),
            "checkout = false is not a step",
            "write \"checkout\" or checkout = true, or remove the step",
        ));
    }
    Ok((StepKind::Checkout, "checkout".into(), When::OnSuccess))
}

fn first_line(script: &str) -> String {
    script
        .lines()
        .find(|line| !line.trim().is_empty())
        .unwrap_or("run")
        .trim()
        .to_owned()
}

fn run_step(
    check: &Checker<'_>,
    command: &str,
    table: &RawStepTable,
) -> Result<RunStep, ConfigError> {
    let shell = table.shell.as_ref().map_or_else(
        || vec!["bash".into(), "-eo".into(), "pipefail".into()],
        |s| s.get_ref().split_whitespace().map(str::to_owned).collect(),
    );
    if shell.is_empty() {
        let span = table.shell.as_ref().map(Spanned::span).unwrap_or_default();
        return Err(check
            .error(span, "`shell` must not be empty")
            .with_hint("remove it for bash -eo pipefail, or write e.g. shell = \"sh -e\""));
    }
    let no_output_timeout = table
        .no_output_timeout
        .as_ref()
        .map(|t| check.positive_duration_value(t, "no_output_timeout"))
        .transpose()?
        .unwrap_or(DEFAULT_NO_OUTPUT_TIMEOUT);
    Ok(RunStep {
        command: command.to_owned(),
        shell,
        environment: table
            .environment
            .as_ref()
            .map(|e| env_pairs(e.get_ref()))
            .unwrap_or_default(),
        working_directory: table
            .working_directory
            .as_ref()
            .map(|d| d.get_ref().clone()),
        no_output_timeout,
        unless_cache_hit: table
            .unless_cache_hit
            .as_ref()
            .is_some_and(|b| *b.get_ref()),
    })
}

fn check_cycles(
    check: &Checker<'_>,
    jobs: &[Job],
    raw: &IndexMap<Spanned<String>, RawJob>,
) -> Result<(), ConfigError> {
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
            let mut cycle: Vec<String> = path[start..].iter().map(|s| (*s).to_owned()).collect();
            cycle.push(job.name.clone());
            return Some(cycle);
        }
        path.push(&job.name);
        for required in &job.requires {
            if let Some(next) = jobs.iter().find(|j| &j.name == required) {
                if let Some(cycle) = visit(next, jobs, path, done) {
                    return Some(cycle);
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
            let span = raw
                .keys()
                .find(|name| *name.get_ref() == cycle[0])
                .map(Spanned::span)
                .unwrap_or_default();
            return Err(check
                .error(
                    span,
                    format!("jobs require each other in a cycle: {}", cycle.join(" -> ")),
                )
                .with_hint("remove one of these requires"));
        }
    }
    Ok(())
}
