//! `hoist deploy` on one host: plan, then prepare (upload, shared links, environment, import
//! check, hooks), switch, restart, verify, record, prune. Every failure before the switch
//! leaves the live release alone; every failure after it switches back (invariants 1, 6, 8).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use chrono::Utc;
use hoist_config::{Config, HealthProbe, InstallerChoice, Restart};
use hoist_pyenv::{DepKey, Installer, Interpreter};
use hoist_release::{
    prune_plan, History, JournalEntry, JournalEvent, PrunePlan, ReleaseId, ReleaseState,
};
use hoist_service::RestartContext;
use hoist_transport::{Cmd, Transport, UploadStats};

use crate::event::{Event, EventSink, Step, StepStatus};
use crate::lock::{self, LockRequest};
use crate::record::Recorder;
use crate::source::SourceTree;
use crate::state::HostState;
use crate::{fault, DeployError, FailureKind, Layout};

/// What the user asked for.
#[derive(Debug, Clone)]
pub struct DeployOptions {
    /// Recorded in the journal, the lock and RELEASE.json.
    pub who: String,
    /// Ship this commit's tree instead of the working directory.
    pub git_ref: Option<String>,
    /// How long to wait for another deploy's lock.
    pub lock_wait: Duration,
    /// The command line, recorded in the lock.
    pub command: String,
}

/// Everything a deploy will do, decided before doing any of it. `--plan` prints it.
#[derive(Debug)]
pub struct DeployPlan {
    pub host: String,
    pub release: ReleaseId,
    pub previous: Option<ReleaseId>,
    pub source: SourceTree,
    pub requirement_files: Vec<PathBuf>,
    pub interpreter: Interpreter,
    pub installer: Installer,
    pub dep_key: DepKey,
    pub env_ready: bool,
    /// What pruning will remove once this release is live.
    pub prune: PrunePlan,
    /// The actions in order, as shown by `--plan`.
    pub actions: Vec<(Step, String)>,
}

/// What a successful deploy did.
#[derive(Debug, Clone)]
pub struct DeployReport {
    pub host: String,
    pub release: ReleaseId,
    pub previous: Option<ReleaseId>,
    pub commit: Option<String>,
    pub upload: UploadStats,
    pub env_reused: bool,
    pub dep_key: String,
    pub pruned: Vec<ReleaseId>,
    pub elapsed: Duration,
}

/// Works out the deploy without changing anything on the host (`hoist deploy --plan`).
pub fn plan_deploy(
    config: &Config,
    t: &dyn Transport,
    opts: &DeployOptions,
) -> Result<DeployPlan, DeployError> {
    let layout = Layout::new(&config.release);
    let state = HostState::read(t, &layout)?;
    make_plan(config, t, opts, &layout, &state)
}

fn make_plan(
    config: &Config,
    t: &dyn Transport,
    opts: &DeployOptions,
    layout: &Layout,
    state: &HostState,
) -> Result<DeployPlan, DeployError> {
    let host = t.host().to_string();
    let release = ReleaseId::generate(Utc::now(), |id| {
        state.history.contains(id) || state.existing.contains(id)
    });
    let previous = state.current.clone();
    let source = SourceTree::collect(
        &config.app.source,
        &config.app.exclude,
        opts.git_ref.as_deref(),
    )?;
    let requirement_files = hoist_pyenv::requirement_files(&source.dir, &config.app.requirements)
        .map_err(|e| DeployError::config(e.to_string()))?;
    let interpreter = hoist_pyenv::probe_interpreter(t, &config.app.python)
        .map_err(|e| DeployError::before_switch(e.to_string()))?;
    let choice = match config.app.installer {
        InstallerChoice::Auto => hoist_pyenv::InstallerChoice::Auto,
        InstallerChoice::Uv => hoist_pyenv::InstallerChoice::Uv,
        InstallerChoice::Pip => hoist_pyenv::InstallerChoice::Pip,
    };
    let installer = hoist_pyenv::probe_installer(t, &interpreter, choice)
        .map_err(|e| DeployError::before_switch(e.to_string()))?;
    let dep_key = hoist_pyenv::dep_key(&source.dir, &requirement_files, &interpreter, &installer)
        .map_err(|e| DeployError::before_switch(e.to_string()))?;
    let env_dir = layout.envs().join(dep_key.to_string());
    let env_ready = t.kind(&env_dir.join(".hoist-complete"))?.exists();

    // Pruning is planned as if the new release had gone live.
    let mut entries = state.entries.clone();
    for event in [
        JournalEvent::DeployStarted {
            release: release.clone(),
            commit: None,
            branch: None,
            host: host.clone(),
        },
        JournalEvent::DeploySucceeded {
            release: release.clone(),
        },
    ] {
        entries.push(JournalEntry {
            ts: Utc::now(),
            who: opts.who.clone(),
            event,
        });
    }
    let mut existing = state.existing.clone();
    existing.insert(release.clone());
    let prune = prune_plan(
        &History::from_entries(&entries),
        Some(&release),
        &existing,
        config.release.keep_releases,
        None,
    );

    let mut actions = vec![(
        Step::Lock,
        format!(
            "take {} (wait up to {:?})",
            layout.lock().display(),
            opts.lock_wait
        ),
    )];
    let link = match &previous {
        Some(prev) => format!(", unchanged files hard-linked to {prev}"),
        None => String::new(),
    };
    actions.push((
        Step::Upload,
        format!(
            "copy {} files of {} into {}{link}",
            source.files.len(),
            source.commit.as_deref().unwrap_or("the working directory"),
            layout.release(&release).display()
        ),
    ));
    for shared in &config.release.shared {
        actions.push((
            Step::Shared,
            format!(
                "link {} -> {}",
                shared.path.display(),
                layout.shared().join(&shared.path).display()
            ),
        ));
    }
    let env_action = if env_ready {
        format!("reuse {} (no Python work)", env_dir.display())
    } else {
        format!(
            "build {} with {} for Python {} from {}",
            env_dir.display(),
            installer_name(&installer),
            interpreter.version,
            join_paths(&requirement_files)
        )
    };
    actions.push((Step::Environment, env_action));
    actions.push((
        Step::ImportCheck,
        format!("import {} with the release's interpreter", config.app.entry),
    ));
    for hook in &config.hooks {
        let once = if hook.once { " (once per deploy)" } else { "" };
        actions.push((Step::Hook, format!("{}: {}{once}", hook.name, hook.run)));
    }
    actions.push((
        Step::Switch,
        format!(
            "{} -> {} (was {})",
            layout.current().display(),
            layout.current_target(&release).display(),
            previous
                .as_ref()
                .map_or("nothing".into(), ToString::to_string)
        ),
    ));
    for process in &config.processes {
        actions.push((
            Step::Restart,
            format!("{}: {}", process.name, describe_restart(&process.restart)),
        ));
    }
    match &config.health {
        Some(health) => {
            actions.push((Step::Health, describe_health(&health.probe, health.timeout)))
        }
        None => actions.push((
            Step::Health,
            "no health check configured: a restart that exits 0 is trusted".into(),
        )),
    }
    let prune_action = if prune.remove.is_empty() {
        format!(
            "nothing to remove (keep {} good releases)",
            config.release.keep_releases
        )
    } else {
        format!(
            "remove {} (keep {} good releases)",
            prune
                .remove
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", "),
            config.release.keep_releases
        )
    };
    actions.push((Step::Prune, prune_action));
    actions.push((Step::Unlock, format!("remove {}", layout.lock().display())));

    Ok(DeployPlan {
        host,
        release,
        previous,
        source,
        requirement_files,
        interpreter,
        installer,
        dep_key,
        env_ready,
        prune,
        actions,
    })
}

fn installer_name(installer: &Installer) -> String {
    match installer {
        Installer::Uv { version } => format!("uv {version}"),
        Installer::Pip { version } => format!("pip {version}"),
    }
}

fn join_paths(paths: &[PathBuf]) -> String {
    if paths.is_empty() {
        return "no requirements files".into();
    }
    paths
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

fn describe_restart(restart: &Restart) -> String {
    match restart {
        Restart::Command { command } => format!("run `{command}`"),
        Restart::Supervisor { program } => format!("supervisorctl restart {program}"),
        Restart::Systemd { unit } => format!("systemctl reload-or-restart {unit}"),
        Restart::UwsgiChain { fifo } => format!("chain reload through {}", fifo.display()),
        Restart::GunicornHup { pidfile } => format!("SIGHUP to the pid in {}", pidfile.display()),
    }
}

fn describe_health(probe: &HealthProbe, timeout: Duration) -> String {
    match probe {
        HealthProbe::Http { url, status, body } => {
            let body = body
                .as_ref()
                .map_or(String::new(), |b| format!(" containing {b:?}"));
            format!("GET {url} until it answers {status}{body}, at most {timeout:?}")
        }
        HealthProbe::Command { command } => {
            format!("run `{command}` until it exits 0, at most {timeout:?}")
        }
    }
}

/// Deploys to one host. On failure the error's kind says whether the old release still
/// serves ([`FailureKind::BeforeSwitch`]) or was switched back to ([`FailureKind::RolledBack`]).
pub fn deploy(
    config: &Config,
    t: &dyn Transport,
    opts: &DeployOptions,
    events: EventSink<'_>,
) -> Result<DeployReport, DeployError> {
    let layout = Layout::new(&config.release);
    // Refuse a root that cannot be a deploy root before touching anything.
    HostState::read(t, &layout)?;
    let started = Instant::now();
    let step = Stepper {
        host: t.host(),
        events,
    };
    step.start(Step::Lock);
    let held = lock::acquire(
        t,
        &layout,
        &LockRequest {
            who: &opts.who,
            command: &opts.command,
            release: None,
            message: None,
            wait: opts.lock_wait,
            pid: std::process::id(),
        },
        events,
    )
    .inspect_err(|e| step.fail(Step::Lock, e))?;
    step.done(Step::Lock, None);
    fault::point("deploy:locked");
    let result = deploy_locked(config, t, opts, &layout, &step, started);
    step.start(Step::Unlock);
    match held.release(t) {
        Ok(()) => step.done(Step::Unlock, None),
        Err(e) => events(Event::Warning {
            host: t.host().into(),
            message: format!("could not remove the lock: {e}; `hoist lock release` removes it"),
        }),
    }
    result
}

/// Emits step events with timings.
pub(crate) struct Stepper<'a> {
    pub host: &'a str,
    pub events: EventSink<'a>,
}

impl Stepper<'_> {
    pub fn start(&self, step: Step) {
        (self.events)(Event::Step {
            host: self.host.into(),
            step,
            status: StepStatus::Started,
            detail: None,
            ms: None,
        });
    }

    pub fn done(&self, step: Step, detail: Option<String>) {
        (self.events)(Event::Step {
            host: self.host.into(),
            step,
            status: StepStatus::Done,
            detail,
            ms: None,
        });
    }

    pub fn timed(&self, step: Step, since: Instant, detail: impl Into<String>) {
        (self.events)(Event::Step {
            host: self.host.into(),
            step,
            status: StepStatus::Done,
            detail: Some(detail.into()),
            ms: Some(since.elapsed().as_millis() as u64),
        });
    }

    pub fn fail(&self, step: Step, error: &dyn std::fmt::Display) {
        (self.events)(Event::Step {
            host: self.host.into(),
            step,
            status: StepStatus::Failed,
            detail: Some(error.to_string()),
            ms: None,
        });
    }

    pub fn output(&self, step: Step, text: &str) {
        for line in text.lines() {
            (self.events)(Event::Output {
                host: self.host.into(),
                step,
                line: line.to_string(),
            });
        }
    }

    pub fn warn(&self, message: String) {
        (self.events)(Event::Warning {
            host: self.host.into(),
            message,
        });
    }
}

fn deploy_locked(
    config: &Config,
    t: &dyn Transport,
    opts: &DeployOptions,
    layout: &Layout,
    step: &Stepper<'_>,
    started: Instant,
) -> Result<DeployReport, DeployError> {
    let state = HostState::read(t, layout)?;
    let rec = Recorder::new(t, layout, &opts.who, &config.app.name);
    rec.repair_torn(&state, step)?;
    rec.close_interrupted(&state, step)?;
    let plan = make_plan(config, t, opts, layout, &state)?;
    let id = plan.release.clone();
    t.create_dir_all(&layout.releases())?;
    rec.journal(JournalEvent::DeployStarted {
        release: id.clone(),
        commit: plan.source.commit.clone(),
        branch: plan.source.branch.clone(),
        host: t.host().into(),
    })?;
    fault::point("deploy:started");

    let prepared = prepare(config, t, layout, &plan, &rec, step);
    let (upload, env_reused) = match prepared {
        Ok(done) => done,
        Err((stage, e)) => {
            let e = e.hint(format!(
                "nothing was switched: {} still serves {}",
                t.host(),
                plan.previous
                    .as_ref()
                    .map_or("nothing (first deploy)".into(), ToString::to_string)
            ));
            rec.failed(&id, &plan, stage.name(), &e.message, None);
            return Err(e);
        }
    };

    step.start(Step::Switch);
    let since = Instant::now();
    t.switch_symlink(&layout.current(), &layout.current_target(&id))
        .map_err(|e| {
            let e = DeployError::before_switch(e.to_string());
            rec.failed(&id, &plan, "switch", &e.message, None);
            step.fail(Step::Switch, &e);
            e
        })?;
    rec.journal(JournalEvent::Switched {
        release: id.clone(),
        from: plan.previous.clone(),
    })?;
    step.timed(
        Step::Switch,
        since,
        format!(
            "{} -> {}",
            layout.current().display(),
            layout.current_target(&id).display()
        ),
    );
    fault::point("deploy:switched");

    if let Err(failure) = activate(config, t, layout, &id, step, "deploy:restarted") {
        return Err(switch_back(config, t, layout, &plan, &rec, step, failure));
    }
    fault::point("deploy:healthy");

    rec.journal(JournalEvent::DeploySucceeded {
        release: id.clone(),
    })?;
    rec.write_release_json(&id, &plan, ReleaseState::Good);
    fault::point("deploy:recorded");

    let pruned = match crate::prune::prune(config, t, layout, &rec, step) {
        Ok(pruned) => pruned,
        Err(e) => {
            step.warn(format!("pruning failed (the deploy itself succeeded): {e}"));
            Vec::new()
        }
    };
    Ok(DeployReport {
        host: t.host().into(),
        release: id,
        previous: plan.previous.clone(),
        commit: plan.source.commit.clone(),
        upload,
        env_reused,
        dep_key: plan.dep_key.to_string(),
        pruned,
        elapsed: started.elapsed(),
    })
}

/// Everything before the switch. Returns the upload statistics and whether the environment
/// was reused.
fn prepare(
    config: &Config,
    t: &dyn Transport,
    layout: &Layout,
    plan: &DeployPlan,
    rec: &Recorder<'_>,
    step: &Stepper<'_>,
) -> Result<(UploadStats, bool), (Step, DeployError)> {
    let id = &plan.release;
    let release_dir = layout.release(id);
    let fail = |s: Step, e: DeployError| {
        step.fail(s, &e);
        (s, e)
    };
    let cancelled = |s: Step| {
        if crate::cancel::requested() {
            Err(fail(
                s,
                DeployError::before_switch("interrupted (Ctrl-C) before the switch"),
            ))
        } else {
            Ok(())
        }
    };

    cancelled(Step::Upload)?;
    step.start(Step::Upload);
    let since = Instant::now();
    let link_dest = plan.previous.as_ref().map(|p| layout.release(p));
    let upload = t
        .upload_tree(
            &plan.source.dir,
            &plan.source.files,
            &release_dir,
            link_dest.as_deref(),
        )
        .map_err(|e| fail(Step::Upload, DeployError::before_switch(e.to_string())))?;
    step.timed(
        Step::Upload,
        since,
        format!(
            "{} files: {} copied ({} bytes), {} hard-linked",
            upload.copied + upload.linked,
            upload.copied,
            upload.bytes,
            upload.linked
        ),
    );
    fault::point("deploy:uploaded");

    if !config.release.shared.is_empty() {
        step.start(Step::Shared);
        let since = Instant::now();
        link_shared(config, t, layout, &release_dir, step).map_err(|e| fail(Step::Shared, e))?;
        step.timed(
            Step::Shared,
            since,
            format!("{} paths linked", config.release.shared.len()),
        );
    }

    cancelled(Step::Environment)?;
    step.start(Step::Environment);
    let since = Instant::now();
    let mut log = |line: &str| step.output(Step::Environment, line);
    let env = hoist_pyenv::ensure_env(
        t,
        &layout.root,
        &plan.dep_key,
        &release_dir,
        &plan.requirement_files,
        &plan.interpreter,
        &plan.installer,
        &mut log,
    )
    .map_err(|e| {
        fail(
            Step::Environment,
            DeployError::before_switch(e.to_string())
                .hint("fix the requirements and deploy again; the live release was not touched"),
        )
    })?;
    let env_link = Path::new("../..")
        .join("envs")
        .join(plan.dep_key.to_string());
    t.symlink(&env_link, &release_dir.join(".venv"))
        .map_err(|e| fail(Step::Environment, e.into()))?;
    step.timed(
        Step::Environment,
        since,
        if env.reused {
            format!("reused envs/{}", plan.dep_key)
        } else {
            format!(
                "built envs/{} with {}",
                plan.dep_key,
                installer_name(&plan.installer)
            )
        },
    );
    fault::point("deploy:env");

    cancelled(Step::ImportCheck)?;
    step.start(Step::ImportCheck);
    let since = Instant::now();
    hoist_pyenv::check_entry_imports(
        t,
        &env.path,
        &release_dir,
        &config.app.entry.module,
        &config.app.entry.attribute,
    )
    .map_err(|e| {
        fail(
            Step::ImportCheck,
            DeployError::before_switch(format!(
                "the new release cannot import its entry point {}: {e}",
                config.app.entry
            )),
        )
    })?;
    step.timed(
        Step::ImportCheck,
        since,
        format!("{} imports", config.app.entry),
    );

    let ctx_env = restart_context(config, layout, id).env();
    for hook in &config.hooks {
        cancelled(Step::Hook)?;
        step.start(Step::Hook);
        let since = Instant::now();
        let script = format!("export PATH=\"$VIRTUAL_ENV/bin:$PATH\"\n{}", hook.run);
        let mut cmd = Cmd::new("timeout")
            .arg(format!("{}s", hook.timeout.as_secs().max(1)))
            .args(["bash", "-eo", "pipefail", "-c"])
            .arg(script)
            .cwd(&release_dir)
            .env(
                "VIRTUAL_ENV",
                release_dir.join(".venv").display().to_string(),
            )
            .env("HOIST_HOOK", hook.name.clone());
        for (k, v) in &ctx_env {
            cmd = cmd.env(k.clone(), v.clone());
        }
        let out = t.exec(&cmd).map_err(|e| fail(Step::Hook, e.into()))?;
        step.output(Step::Hook, &out.stdout_text());
        step.output(Step::Hook, &out.stderr_text());
        if !out.success() {
            let why = if out.status == 124 {
                format!("timed out after {:?}", hook.timeout)
            } else {
                format!("exited {}", out.status)
            };
            return Err(fail(
                Step::Hook,
                DeployError::before_switch(format!(
                    "pre-switch hook {:?} {why}: {}",
                    hook.name,
                    out.tail(5)
                )),
            ));
        }
        step.timed(Step::Hook, since, format!("{} passed", hook.name));
    }
    fault::point("deploy:hooks");

    rec.write_release_json(id, plan, ReleaseState::Prepared);
    rec.journal(JournalEvent::ReleasePrepared {
        release: id.clone(),
        dep_key: Some(plan.dep_key.to_string()),
    })
    .map_err(|e| fail(Step::Record, e))?;
    fault::point("deploy:prepared");
    cancelled(Step::Switch)?;
    Ok((upload, env.reused))
}

/// Replaces each shared path in the release with a link into `<root>/shared`.
fn link_shared(
    config: &Config,
    t: &dyn Transport,
    layout: &Layout,
    release_dir: &Path,
    step: &Stepper<'_>,
) -> Result<(), DeployError> {
    for shared in &config.release.shared {
        let target = layout.shared().join(&shared.path);
        let link = release_dir.join(&shared.path);
        if shared.is_dir {
            t.create_dir_all(&target)?;
        } else {
            if let Some(parent) = target.parent() {
                t.create_dir_all(parent)?;
            }
            if !t.kind(&target)?.exists() {
                step.warn(format!(
                    "shared file {} does not exist yet; the release links to it anyway — create it on the host",
                    target.display()
                ));
            }
        }
        if let Some(parent) = link.parent() {
            t.create_dir_all(parent)?;
        }
        t.remove_all(&link)?;
        t.symlink(&target, &link)?;
    }
    Ok(())
}

pub(crate) fn restart_context<'a>(
    config: &'a Config,
    layout: &'a Layout,
    id: &'a ReleaseId,
) -> OwnedContext<'a> {
    OwnedContext {
        app: &config.app.name,
        root: &layout.root,
        release_path: layout.release(id),
        id: id.to_string(),
    }
}

/// A [`RestartContext`] that owns its computed parts.
pub(crate) struct OwnedContext<'a> {
    app: &'a str,
    root: &'a Path,
    release_path: PathBuf,
    id: String,
}

impl OwnedContext<'_> {
    pub fn get(&self) -> RestartContext<'_> {
        RestartContext {
            app: self.app,
            root: self.root,
            release_path: &self.release_path,
            release_id: &self.id,
        }
    }

    pub fn env(&self) -> Vec<(String, String)> {
        self.get().env()
    }
}

/// Restarts every process for release `id` and waits for the health check.
pub(crate) fn activate(
    config: &Config,
    t: &dyn Transport,
    layout: &Layout,
    id: &ReleaseId,
    step: &Stepper<'_>,
    after_restart: &str,
) -> Result<(), (Step, String)> {
    let ctx = restart_context(config, layout, id);
    for process in &config.processes {
        step.start(Step::Restart);
        let since = Instant::now();
        if let Err(e) = hoist_service::restart(t, process, &ctx.get()) {
            step.fail(Step::Restart, &e);
            return Err((Step::Restart, e.to_string()));
        }
        step.timed(Step::Restart, since, format!("{} restarted", process.name));
    }
    fault::point(after_restart);
    if let Some(health) = &config.health {
        step.start(Step::Health);
        let since = Instant::now();
        match hoist_service::wait_healthy(t, health, &ctx.env()) {
            Ok(report) => step.timed(
                Step::Health,
                since,
                format!("healthy after {} attempt(s)", report.attempts),
            ),
            Err(e) => {
                step.fail(Step::Health, &e);
                return Err((Step::Health, e.to_string()));
            }
        }
    }
    Ok(())
}

/// After a failed restart or health check: point `current` back at the previous release,
/// restart it and check it, and build the error that says where things stand.
fn switch_back(
    config: &Config,
    t: &dyn Transport,
    layout: &Layout,
    plan: &DeployPlan,
    rec: &Recorder<'_>,
    step: &Stepper<'_>,
    (failed_step, why): (Step, String),
) -> DeployError {
    let id = &plan.release;
    let host = t.host();
    let Some(prev) = &plan.previous else {
        // First deploy: there is nothing to return to. Take `current` away rather than leave
        // it on a release that failed (invariant 1).
        let _ = t.remove_all(&layout.current());
        rec.failed(id, plan, failed_step.name(), &why, None);
        return DeployError::new(
            FailureKind::RolledBack,
            format!("{} failed on {host}: {why}", failed_step.name()),
        )
        .hint(format!(
            "this was the first deploy, so there is no earlier release to return to; {} was removed and release {id} is marked failed",
            layout.current().display()
        ));
    };
    step.start(Step::SwitchBack);
    let back = t
        .switch_symlink(&layout.current(), &layout.current_target(prev))
        .map_err(|e| e.to_string())
        .and_then(|()| {
            activate(config, t, layout, prev, step, "deploy:switched-back").map_err(|(_, e)| e)
        });
    rec.failed(id, plan, failed_step.name(), &why, Some(prev));
    match back {
        Ok(()) => {
            step.done(Step::SwitchBack, Some(format!("{prev} serves again")));
            DeployError::new(
                FailureKind::RolledBack,
                format!(
                    "{} failed on {host} after the switch: {why}\nswitched back: {host} serves {prev} again (health check passed); {id} is marked failed",
                    failed_step.name()
                ),
            )
        }
        Err(e) => {
            step.fail(Step::SwitchBack, &e);
            DeployError::new(
                FailureKind::RolledBack,
                format!(
                    "{} failed on {host} after the switch: {why}\nswitched back to {prev}, but it is not healthy either: {e}",
                    failed_step.name()
                ),
            )
            .hint("look at the app's own logs; `hoist rollback --to <id>` picks another release")
        }
    }
}
