//! `hoist import circleci`: a CircleCI 2.0/2.1 config (without orbs) to hoist's `[pipeline]`.
//!
//! What converts: `run`, `checkout`, cache, artifact and test-result steps; workflows with
//! branch filters and `requires`; the primary Docker image becomes the host's toolchain, and a
//! `postgres` or `redis` secondary image becomes a native service with its environment. A run
//! step that deploys with Ansible becomes hoist's deploy step. Every change is a note and
//! everything that cannot be converted is listed; nothing is dropped silently.

use indexmap::IndexMap;
use serde::{Deserialize, Serialize};
use std::path::Path;

/// A config that cannot be imported.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// The file is not YAML.
    #[error("{file}:{line}:{column}: not valid YAML: {message}")]
    Yaml {
        /// The file, as named by the user.
        file: String,
        /// 1-based line.
        line: u64,
        /// 1-based column.
        column: u64,
        /// The parser's message.
        message: String,
    },
    /// YAML, but not a config hoist can convert.
    #[error("{file}: {message}")]
    Unsupported {
        /// The file.
        file: String,
        /// What and why.
        message: String,
        /// What to do.
        hint: String,
    },
}

impl ImportError {
    /// How to fix it.
    pub fn hint(&self) -> String {
        match self {
            Self::Yaml { line, .. } => format!("fix the indentation or syntax at line {line} (CircleCI would refuse this file too), then import again"),
            Self::Unsupported { hint, .. } => hint.clone(),
        }
    }
}

/// The result of an import.
#[derive(Debug, Clone)]
pub struct Conversion {
    /// The `[pipeline]` table, as TOML text to add to hoist.toml.
    pub toml: String,
    /// What was converted with a change, and why.
    pub notes: Vec<String>,
    /// What was not converted at all.
    pub unconverted: Vec<String>,
}

#[derive(Deserialize, Debug, Clone)]
#[serde(untagged)]
enum Yaml {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    List(Vec<Yaml>),
    Map(IndexMap<String, Yaml>),
}

impl Yaml {
    fn get(&self, key: &str) -> Option<&Yaml> {
        match self {
            Self::Map(m) => m.get(key),
            _ => None,
        }
    }
    fn str(&self) -> Option<&str> {
        match self {
            Self::Str(s) => Some(s),
            _ => None,
        }
    }
    fn scalar(&self) -> Option<String> {
        match self {
            Self::Str(s) => Some(s.clone()),
            Self::Bool(b) => Some(b.to_string()),
            Self::Int(i) => Some(i.to_string()),
            Self::Float(f) => Some(f.to_string()),
            _ => None,
        }
    }
    fn strings(&self) -> Vec<String> {
        match self {
            Self::List(items) => items.iter().filter_map(Yaml::scalar).collect(),
            other => other.scalar().into_iter().collect(),
        }
    }
    /// `{A: 1}` or `[{A: 1}, {B: 2}]` (CircleCI accepts both for `environment`).
    fn env(&self) -> Vec<(String, String)> {
        match self {
            Self::Map(m) => m
                .iter()
                .map(|(k, v)| (k.clone(), v.scalar().unwrap_or_default()))
                .collect(),
            Self::List(items) => items.iter().flat_map(Yaml::env).collect(),
            _ => Vec::new(),
        }
    }
}

#[derive(Debug, Clone, Default)]
struct OutStep {
    kind: &'static str,
    main: String,
    main_list: Vec<String>,
    name: Option<String>,
    when: Option<String>,
    extra: Vec<(String, String)>,
    environment: Vec<(String, String)>,
    unless_cache_hit: bool,
}

#[derive(Debug, Default)]
struct OutJob {
    name: String,
    requires: Vec<String>,
    only: Vec<String>,
    ignore: Vec<String>,
    environment: Vec<(String, String)>,
    services: Vec<(String, Vec<(String, String)>)>,
    steps: Vec<OutStep>,
}

/// Converts the text of a CircleCI config. `project_dir` (where the app's requirements files
/// are) lets the importer check that the tests' runner gets installed.
pub fn circleci(
    yaml: &str,
    file: &str,
    project_dir: Option<&Path>,
) -> Result<Conversion, ImportError> {
    let doc: Yaml = serde_saphyr::from_str(yaml).map_err(|e| {
        let (line, column) = e.location().map_or((0, 0), |l| (l.line(), l.column()));
        let shown = e.to_string();
        let first = shown.lines().next().unwrap_or_default();
        let message = first
            .rsplit_once(&format!("column {column}: "))
            .map_or(first, |(_, m)| m)
            .to_string();
        ImportError::Yaml {
            file: file.into(),
            line,
            column,
            message,
        }
    })?;
    let unsupported = |message: String, hint: &str| ImportError::Unsupported {
        file: file.into(),
        message,
        hint: hint.into(),
    };
    let Yaml::Map(top) = &doc else {
        return Err(unsupported(
            "the file is not a CircleCI config (its top level is not a mapping)".into(),
            "import .circleci/config.yml",
        ));
    };
    let version = top
        .get("version")
        .and_then(Yaml::scalar)
        .unwrap_or_default();
    if !["2", "2.0", "2.1"].contains(&version.as_str()) {
        return Err(unsupported(
            format!("version {version:?} is not supported"),
            "hoist imports CircleCI configs of version 2, 2.0 and 2.1",
        ));
    }
    if let Some(orbs) = top.get("orbs") {
        let names: Vec<String> = match orbs {
            Yaml::Map(m) => m.keys().cloned().collect(),
            _ => Vec::new(),
        };
        return Err(unsupported(
            format!(
                "the config uses orbs ({}), which hoist cannot convert",
                names.join(", ")
            ),
            "replace each orb's jobs and commands with plain run steps, then import again",
        ));
    }
    let Some(Yaml::Map(jobs)) = top.get("jobs") else {
        return Err(unsupported(
            "the config has no jobs".into(),
            "a CircleCI config lists its jobs under `jobs:`",
        ));
    };
    let mut notes = Vec::new();
    let mut unconverted = Vec::new();
    for key in top.keys() {
        if !["version", "jobs", "workflows"].contains(&key.as_str()) {
            unconverted.push(format!(
                "top-level `{key}` (2.1 commands, executors and parameters are not expanded)"
            ));
        }
    }
    let mut out: Vec<OutJob> = Vec::new();
    for (name, job) in jobs {
        out.push(convert_job(
            name,
            job,
            project_dir,
            &mut notes,
            &mut unconverted,
        ));
    }
    convert_workflows(top.get("workflows"), &mut out, &mut notes, &mut unconverted);
    Ok(Conversion {
        toml: render(&out, file),
        notes,
        unconverted,
    })
}

fn convert_job(
    name: &str,
    job: &Yaml,
    project_dir: Option<&Path>,
    notes: &mut Vec<String>,
    unconverted: &mut Vec<String>,
) -> OutJob {
    let mut out = OutJob {
        name: name.into(),
        ..OutJob::default()
    };
    let Yaml::Map(fields) = job else {
        unconverted.push(format!("job {name}: not a mapping"));
        return out;
    };
    for (key, value) in fields {
        match key.as_str() {
            "docker" => convert_images(name, value, &mut out, notes, unconverted),
            "environment" => out.environment = value.env(),
            "steps" => {}
            "working_directory" => notes.push(format!("job {name}: working_directory {} is not needed: each job runs in its own workspace, where checkout puts the code", value.scalar().unwrap_or_default())),
            "resource_class" | "shell" => notes.push(format!("job {name}: `{key}` dropped: hoist runs on this machine with bash")),
            other => unconverted.push(format!("job {name}: `{other}` (hoist runs jobs on the host, without executors or parallelism)")),
        }
    }
    let steps: Vec<Yaml> = match fields.get("steps") {
        Some(Yaml::List(items)) => items.clone(),
        _ => {
            unconverted.push(format!("job {name}: no steps"));
            Vec::new()
        }
    };
    for (i, step) in steps.iter().enumerate() {
        if let Some(s) = convert_step(name, i + 1, step, unconverted) {
            out.steps.push(s);
        }
    }
    adapt_for_hoist(&mut out, project_dir, notes);
    out
}

fn convert_images(
    job: &str,
    value: &Yaml,
    out: &mut OutJob,
    notes: &mut Vec<String>,
    unconverted: &mut Vec<String>,
) {
    let Yaml::List(images) = value else { return };
    for (i, image) in images.iter().enumerate() {
        let name = image
            .get("image")
            .and_then(Yaml::str)
            .unwrap_or_default()
            .to_string();
        let env = image.get("environment").map(Yaml::env).unwrap_or_default();
        if i == 0 {
            notes.push(format!("job {job}: primary image {name} becomes this machine's own toolchain (python3, pip, git on PATH); install what it provided on the host"));
            continue;
        }
        let base = name.rsplit('/').next().unwrap_or(&name);
        let kind = if base.starts_with("postgres") || base.starts_with("postgis") {
            "postgres"
        } else if base.starts_with("redis") {
            "redis"
        } else {
            unconverted.push(format!(
                "job {job}: service image {name} (hoist starts only postgres and redis natively)"
            ));
            continue;
        };
        if kind == "postgres" {
            let (known, other): (Vec<_>, Vec<_>) = env.into_iter().partition(|(k, _)| {
                [
                    "POSTGRES_USER",
                    "POSTGRES_DB",
                    "POSTGRES_PASSWORD",
                    "PGPASSWORD",
                ]
                .contains(&k.as_str())
            });
            for (k, _) in other {
                unconverted.push(format!("job {job}: {name} environment {k} (the native service reads POSTGRES_USER, POSTGRES_DB, POSTGRES_PASSWORD)"));
            }
            notes.push(format!("job {job}: image {name} becomes a native PostgreSQL service (this machine's version); the job gets DATABASE_URL and PGHOST, PGPORT, PGUSER, PGDATABASE{}", if known.iter().any(|(k, _)| k.contains("PASSWORD")) { ", PGPASSWORD" } else { "" }));
            out.services.push((kind.into(), known));
        } else {
            notes.push(format!(
                "job {job}: image {name} becomes a native Redis service; the job gets REDIS_URL"
            ));
            out.services.push((kind.into(), Vec::new()));
        }
    }
}

fn convert_step(
    job: &str,
    number: usize,
    step: &Yaml,
    unconverted: &mut Vec<String>,
) -> Option<OutStep> {
    let (kind, body) = match step {
        Yaml::Str(s) => (s.as_str(), Yaml::Null),
        Yaml::Map(m) if m.len() == 1 => {
            let (k, v) = m.iter().next()?;
            (k.as_str(), v.clone())
        }
        _ => {
            unconverted.push(format!("job {job}, step {number}: not a step"));
            return None;
        }
    };
    let name = body.get("name").and_then(Yaml::scalar);
    let when = body.get("when").and_then(Yaml::scalar);
    let mut out = OutStep {
        name: name.clone(),
        when,
        ..OutStep::default()
    };
    match kind {
        "checkout" => out.kind = "checkout",
        "run" => {
            out.kind = "run";
            out.main = match &body {
                Yaml::Str(s) => s.clone(),
                _ => body
                    .get("command")
                    .and_then(Yaml::scalar)
                    .unwrap_or_default(),
            };
            if let Some(t) = body.get("no_output_timeout").and_then(Yaml::scalar) {
                // CircleCI reads a bare number as seconds; hoist wants the unit written.
                let t = if !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()) {
                    format!("{t}s")
                } else {
                    t
                };
                out.extra.push(("no_output_timeout".into(), t));
            }
            if let Some(d) = body.get("working_directory").and_then(Yaml::scalar) {
                out.extra.push(("working_directory".into(), d));
            }
            if let Some(s) = body.get("shell").and_then(Yaml::scalar) {
                out.extra.push(("shell".into(), s));
            }
            out.environment = body.get("environment").map(Yaml::env).unwrap_or_default();
            if body
                .get("background")
                .is_some_and(|b| matches!(b, Yaml::Bool(true)))
            {
                unconverted.push(format!("job {job}, step {number}: background = true (run it with `&` and stop it in a later step)"));
            }
        }
        "restore_cache" => {
            out.kind = "restore_cache";
            out.main_list = body.get("keys").map(Yaml::strings).unwrap_or_default();
            out.main_list
                .extend(body.get("key").map(Yaml::strings).unwrap_or_default());
        }
        "save_cache" => {
            out.kind = "save_cache";
            out.main = body.get("key").and_then(Yaml::scalar).unwrap_or_default();
            out.main_list = body.get("paths").map(Yaml::strings).unwrap_or_default();
        }
        "store_artifacts" => {
            out.kind = "artifacts";
            out.main = body.get("path").and_then(Yaml::scalar).unwrap_or_default();
            if let Some(d) = body.get("destination").and_then(Yaml::scalar) {
                out.extra.push(("destination".into(), d));
            }
        }
        "store_test_results" => {
            out.kind = "test_results";
            out.main = body.get("path").and_then(Yaml::scalar).unwrap_or_default();
        }
        other => {
            let label = name.map_or_else(String::new, |n| format!(" ({n})"));
            unconverted.push(format!(
                "job {job}, step {number}{label}: `{other}` has no hoist equivalent"
            ));
            return None;
        }
    }
    Some(out)
}

fn is_pytest(line: &str) -> bool {
    let words: Vec<&str> = line.split_whitespace().collect();
    words
        .first()
        .is_some_and(|w| *w == "pytest" || w.ends_with("/pytest"))
        || line.contains("-m pytest")
}

/// The requirements files a script installs with `pip install -r FILE`.
fn requirement_files(script: &str) -> Vec<String> {
    let mut files = Vec::new();
    for line in script.lines().filter(|l| l.contains("pip install")) {
        let words: Vec<&str> = line.split_whitespace().collect();
        for pair in words.windows(2) {
            if pair[0] == "-r" || pair[0] == "--requirement" {
                files.push(pair[1].to_string());
            }
        }
    }
    files
}

fn lists_pytest(project: &Path, file: &str) -> bool {
    std::fs::read_to_string(project.join(file)).is_ok_and(|t| {
        t.lines().any(|l| {
            let l = l.trim().to_ascii_lowercase();
            l.starts_with("pytest") && !l.starts_with("pytest-") && !l.starts_with("pytest_")
        })
    })
}

/// The changes that make a hosted-CI job run on a bare host with hoist: five rules, applied in
/// this order (a later rule sees what an earlier one changed).
fn adapt_for_hoist(job: &mut OutJob, project: Option<&Path>, notes: &mut Vec<String>) {
    let deploys = deploy_with_hoist(job, notes);
    drop_hosted_image_lines(job, deploys, notes);
    write_junit_reports(job, notes);
    if let Some(project) = project {
        install_pytest(job, project, notes);
    }
    skip_install_on_exact_hit(job, notes);
}

/// How notes name a step: `job build, step 3 (Set up the virtualenv)`.
fn step_label(job: &str, step: &OutStep, index: usize) -> String {
    format!(
        "job {job}, step {} ({})",
        index + 1,
        step.name.clone().unwrap_or_else(|| step.kind.into())
    )
}

/// Rule 1: an Ansible deploy becomes hoist's deploy step, and the job's Ansible settings go.
/// Returns whether the job deploys.
fn deploy_with_hoist(job: &mut OutJob, notes: &mut Vec<String>) -> bool {
    let name = job.name.clone();
    let label = |s: &OutStep, i: usize| step_label(&name, s, i);
    let mut deploys = false;
    for (i, step) in job.steps.iter_mut().enumerate() {
        if step.kind == "run"
            && step
                .main
                .lines()
                .any(|l| l.trim_start().starts_with("ansible-playbook"))
        {
            notes.push(format!("{}: `{}` becomes hoist's deploy step (hoist deploy --ref <the pipeline's commit>); import the inventory with hoist import ansible", label(step, i), step.main.lines().find(|l| l.contains("ansible-playbook")).unwrap_or_default().trim()));
            *step = OutStep {
                kind: "deploy",
                name: step.name.clone(),
                when: step.when.clone(),
                ..OutStep::default()
            };
            deploys = true;
        }
    }
    if deploys {
        let (ansible, rest): (Vec<_>, Vec<_>) = std::mem::take(&mut job.environment)
            .into_iter()
            .partition(|(k, _)| k.starts_with("ANSIBLE_"));
        job.environment = rest;
        if !ansible.is_empty() {
            let names: Vec<String> = ansible.into_iter().map(|(k, _)| k).collect();
            notes.push(format!("job {name}: environment {} dropped: Ansible settings, unused once the deploy is hoist's", names.join(", ")));
        }
    }
    deploys
}

/// Rule 2: lines that only served Ansible, or that install system packages inside the hosted
/// image, are removed (with what to install on the host instead).
fn drop_hosted_image_lines(job: &mut OutJob, deploys: bool, notes: &mut Vec<String>) {
    let name = job.name.clone();
    let label = |s: &OutStep, i: usize| step_label(&name, s, i);
    for (i, step) in job.steps.iter_mut().enumerate() {
        if step.kind != "run" {
            continue;
        }
        let mut kept = Vec::new();
        for line in step.main.lines() {
            let t = line.trim();
            let words: Vec<&str> = t.split_whitespace().collect();
            let pip_ansible = deploys
                && words.len() >= 3
                && words[0].ends_with("pip")
                && words[1] == "install"
                && words[2..].iter().all(|w| w.starts_with("ansible"));
            let apt = matches!(
                words.as_slice(),
                ["sudo", "apt" | "apt-get", ..] | ["apt" | "apt-get", ..]
            );
            if pip_ansible {
                notes.push(format!(
                    "{}: removed `{t}`: only the Ansible deploy needed it",
                    label(step, i)
                ));
            } else if apt {
                let pkgs: Vec<&str> = words
                    .iter()
                    .skip_while(|w| **w != "install")
                    .skip(1)
                    .filter(|w| !w.starts_with('-'))
                    .copied()
                    .collect();
                let advice = if pkgs.is_empty() {
                    String::new()
                } else {
                    format!(
                        "; install {} on this machine once (apt-get install {})",
                        pkgs.join(" "),
                        pkgs.join(" ")
                    )
                };
                notes.push(format!(
                    "{}: removed `{t}`: jobs run on the host, not in a disposable image{advice}",
                    label(step, i)
                ));
            } else {
                kept.push(line);
            }
        }
        let trailing = if step.main.ends_with('\n') { "\n" } else { "" };
        step.main = format!("{}{trailing}", kept.join("\n"));
    }
}

/// Rule 3: pytest writes JUnit XML, and the job keeps it as test results.
fn write_junit_reports(job: &mut OutJob, notes: &mut Vec<String>) {
    let name = job.name.clone();
    let label = |s: &OutStep, i: usize| step_label(&name, s, i);
    let report_dir = job
        .steps
        .iter()
        .find(|s| s.kind == "test_results" || s.kind == "artifacts")
        .map_or_else(
            || "test-reports".to_string(),
            |s| s.main.trim_end_matches('/').to_string(),
        );
    let has_results = job.steps.iter().any(|s| s.kind == "test_results");
    let mut insert_results_after = None;
    for (i, step) in job.steps.iter_mut().enumerate() {
        if step.kind != "run" || !step.main.lines().any(is_pytest) {
            continue;
        }
        let mut changed = false;
        let lines: Vec<String> = step
            .main
            .lines()
            .map(|l| {
                if is_pytest(l) && !l.contains("--junitxml") && !l.contains("--junit-xml") {
                    changed = true;
                    format!("{} --junitxml={report_dir}/junit.xml", l.trim_end())
                } else {
                    l.to_string()
                }
            })
            .collect();
        if changed {
            step.main = format!("{}\n", lines.join("\n"));
            notes.push(format!(
                "{}: pytest writes JUnit XML to {report_dir}/junit.xml (added --junitxml)",
                label(step, i)
            ));
            if !has_results && insert_results_after.is_none() {
                insert_results_after = Some(i);
            }
        }
    }
    if let Some(i) = insert_results_after {
        job.steps.insert(
            i + 1,
            OutStep {
                kind: "test_results",
                main: report_dir.clone(),
                ..OutStep::default()
            },
        );
        notes.push(format!("job {name}: added a test_results step for {report_dir} (failures, counts and slowest tests in the run's summary)"));
    }
}

/// Rule 4: whatever runs pytest must have it installed: the last install step gets it (from a
/// dev requirements file when one lists it, whose checksum then joins the cache keys).
fn install_pytest(job: &mut OutJob, project: &Path, notes: &mut Vec<String>) {
    let name = job.name.clone();
    let label = |s: &OutStep, i: usize| step_label(&name, s, i);
    let runs_pytest = job
        .steps
        .iter()
        .any(|s| s.kind == "run" && s.main.lines().any(is_pytest));
    let installs: Vec<usize> = job
        .steps
        .iter()
        .enumerate()
        .filter(|(_, s)| s.kind == "run" && s.main.contains("pip install"))
        .map(|(i, _)| i)
        .collect();
    if let (true, Some(&at)) = (runs_pytest, installs.last()) {
        let script = &job.steps[at].main;
        let files = requirement_files(script);
        let installed = script.lines().any(|l| {
            l.contains("pip install")
                && l.split_whitespace()
                    .any(|w| w == "pytest" || w.starts_with("pytest="))
        }) || files.iter().any(|f| lists_pytest(project, f));
        if !installed {
            let dev = [
                "requirements-dev.txt",
                "requirements-test.txt",
                "dev-requirements.txt",
                "test-requirements.txt",
                "requirements/dev.txt",
                "requirements/test.txt",
            ]
            .into_iter()
            .find(|f| lists_pytest(project, f));
            let step = &mut job.steps[at];
            let (line, why) = match dev {
                Some(dev) => (format!("pip install -r {dev}"), format!("{dev} lists it")),
                None => (
                    "pip install pytest".to_string(),
                    "no requirements file lists it".to_string(),
                ),
            };
            let mut lines: Vec<String> = step.main.lines().map(str::to_string).collect();
            let pos = lines
                .iter()
                .rposition(|l| l.contains("pip install"))
                .map_or(lines.len(), |p| p + 1);
            lines.insert(pos, line.clone());
            step.main = format!("{}\n", lines.join("\n"));
            notes.push(format!(
                "{}: added `{line}`: a later step runs pytest, which {} does not install ({why})",
                label(step, at),
                if files.is_empty() {
                    "this step".to_string()
                } else {
                    files.join(", ")
                }
            ));
            if let Some(dev) = dev {
                // The cached environment now depends on the dev requirements too.
                for s in job
                    .steps
                    .iter_mut()
                    .filter(|s| s.kind == "restore_cache" || s.kind == "save_cache")
                {
                    let add = |k: &str| {
                        if k.contains("checksum") {
                            format!("{k}-{{{{ checksum \"{dev}\" }}}}")
                        } else {
                            k.to_string()
                        }
                    };
                    if s.kind == "save_cache" {
                        s.main = add(&s.main);
                    } else if let Some(first) = s.main_list.first_mut() {
                        *first = add(first);
                    }
                }
                notes.push(format!("job {name}: cache keys include the checksum of {dev}, which the cached environment now depends on"));
            }
        }
    }
}

/// Rule 5: the one install step between a restore_cache and the save_cache of the same key is
/// skipped on an exact hit: the cache holds what it would build.
fn skip_install_on_exact_hit(job: &mut OutJob, notes: &mut Vec<String>) {
    let name = job.name.clone();
    let label = |s: &OutStep, i: usize| step_label(&name, s, i);
    for r in 0..job.steps.len() {
        if job.steps[r].kind != "restore_cache" {
            continue;
        }
        let Some(first) = job.steps[r].main_list.first().cloned() else {
            continue;
        };
        let Some(s) = (r + 1..job.steps.len())
            .find(|&s| job.steps[s].kind == "save_cache" && job.steps[s].main == first)
        else {
            continue;
        };
        let runs: Vec<usize> = (r + 1..s).filter(|&i| job.steps[i].kind == "run").collect();
        if let [only] = runs.as_slice() {
            job.steps[*only].unless_cache_hit = true;
            notes.push(format!("{}: skipped when the cache is restored from exactly {first} (unless_cache_hit): the cache holds what it builds, so a warm run does no Python work", label(&job.steps[*only], *only)));
        }
    }
}

fn convert_workflows(
    workflows: Option<&Yaml>,
    jobs: &mut [OutJob],
    notes: &mut Vec<String>,
    unconverted: &mut Vec<String>,
) {
    let Some(Yaml::Map(workflows)) = workflows else {
        return;
    };
    let mut seen: Vec<String> = Vec::new();
    for (wf, body) in workflows {
        if wf == "version" {
            continue;
        }
        if body.get("triggers").is_some() {
            unconverted.push(format!(
                "workflow {wf}: triggers (schedules): run hoist ci run from cron instead"
            ));
        }
        let Some(Yaml::List(entries)) = body.get("jobs") else {
            continue;
        };
        for entry in entries {
            let (name, spec) = match entry {
                Yaml::Str(s) => (s.clone(), Yaml::Null),
                Yaml::Map(m) if m.len() == 1 => {
                    let (k, v) = m
                        .iter()
                        .next()
                        .map_or((String::new(), Yaml::Null), |(k, v)| (k.clone(), v.clone()));
                    (k, v)
                }
                _ => continue,
            };
            let Some(job) = jobs.iter_mut().find(|j| j.name == name) else {
                unconverted.push(format!(
                    "workflow {wf}: job {name} is not defined under jobs"
                ));
                continue;
            };
            if seen.contains(&name) {
                notes.push(format!("workflow {wf}: job {name} is also in an earlier workflow; the first one's requires and filters are kept"));
                continue;
            }
            seen.push(name.clone());
            job.requires = spec.get("requires").map(Yaml::strings).unwrap_or_default();
            if let Some(branches) = spec.get("filters").and_then(|f| f.get("branches")) {
                job.only = branches.get("only").map(Yaml::strings).unwrap_or_default();
                job.ignore = branches
                    .get("ignore")
                    .map(Yaml::strings)
                    .unwrap_or_default();
            }
            if spec.get("filters").and_then(|f| f.get("tags")).is_some() {
                unconverted.push(format!(
                    "workflow {wf}, job {name}: tag filters (hoist ci runs branches)"
                ));
            }
            for key in [
                "context",
                "type",
                "name",
                "matrix",
                "pre-steps",
                "post-steps",
            ] {
                if spec.get(key).is_some() {
                    unconverted.push(format!("workflow {wf}, job {name}: `{key}`"));
                }
            }
        }
    }
    for job in jobs.iter() {
        if !seen.contains(&job.name) {
            notes.push(format!("job {} is in no workflow (CircleCI never ran it); it is kept and runs on every branch", job.name));
        }
    }
}

/// The imported pipeline as hoist.toml spells it: serialised with `toml`, never assembled by
/// hand, so keys and strings are quoted by the one writer.
#[derive(Serialize)]
struct PipelineFile<'a> {
    pipeline: PipelineTable<'a>,
}

#[derive(Serialize)]
struct PipelineTable<'a> {
    jobs: IndexMap<&'a str, JobTable<'a>>,
}

#[derive(Serialize)]
struct JobTable<'a> {
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    requires: &'a [String],
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    only: &'a [String],
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    ignore: &'a [String],
    #[serde(skip_serializing_if = "IndexMap::is_empty")]
    environment: IndexMap<&'a str, &'a str>,
    #[serde(skip_serializing_if = "IndexMap::is_empty")]
    services: IndexMap<&'a str, ServiceTable<'a>>,
    steps: Vec<StepTable<'a>>,
}

#[derive(Serialize)]
struct ServiceTable<'a> {
    #[serde(skip_serializing_if = "IndexMap::is_empty")]
    environment: IndexMap<&'a str, &'a str>,
}

/// One step: its name, the one key of its kind, then its options (as docs/pipeline.md lists them).
#[derive(Serialize, Default)]
struct StepTable<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    checkout: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    deploy: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    run: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    restore_cache: Option<&'a [String]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    save_cache: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    paths: Option<&'a [String]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    artifacts: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    destination: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    test_results: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    when: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    working_directory: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    shell: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    no_output_timeout: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    unless_cache_hit: Option<bool>,
    #[serde(skip_serializing_if = "IndexMap::is_empty")]
    environment: IndexMap<&'a str, &'a str>,
}

fn env_table(env: &[(String, String)]) -> IndexMap<&str, &str> {
    env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect()
}

fn step_table(step: &OutStep) -> StepTable<'_> {
    let extra = |key: &str| {
        step.extra
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    };
    let main = Some(step.main.as_str());
    let mut table = StepTable {
        name: step.name.as_deref(),
        when: step.when.as_deref(),
        working_directory: extra("working_directory"),
        shell: extra("shell"),
        no_output_timeout: extra("no_output_timeout"),
        destination: extra("destination"),
        unless_cache_hit: step.unless_cache_hit.then_some(true),
        environment: env_table(&step.environment),
        ..StepTable::default()
    };
    match step.kind {
        "checkout" => table.checkout = Some(true),
        "deploy" => table.deploy = Some(true),
        "run" => table.run = main,
        "restore_cache" => table.restore_cache = Some(&step.main_list),
        "save_cache" => {
            table.save_cache = main;
            table.paths = Some(&step.main_list);
        }
        "artifacts" => table.artifacts = main,
        _ => table.test_results = main,
    }
    table
}

fn render(jobs: &[OutJob], file: &str) -> String {
    let pipeline = PipelineFile {
        pipeline: PipelineTable {
            jobs: jobs
                .iter()
                .map(|job| {
                    let table = JobTable {
                        requires: &job.requires,
                        only: &job.only,
                        ignore: &job.ignore,
                        environment: env_table(&job.environment),
                        services: job
                            .services
                            .iter()
                            .map(|(kind, env)| {
                                (
                                    kind.as_str(),
                                    ServiceTable {
                                        environment: env_table(env),
                                    },
                                )
                            })
                            .collect(),
                        steps: job.steps.iter().map(step_table).collect(),
                    };
                    (job.name.as_str(), table)
                })
                .collect(),
        },
    };
    // Strings, lists and maps of strings always serialise; an error here would be a bug in the
    // types above, and the text says so rather than writing half a pipeline.
    let body = toml::to_string(&pipeline)
        .unwrap_or_else(|e| format!("# hoist could not write the pipeline: {e}\n"));
    format!("# Imported from {file} by `hoist import circleci`; see docs/pipeline.md.\n{body}")
}
