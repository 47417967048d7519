//! Deciding a deploy before doing any of it: the release id (once, for every host), the files,
//! and per host the previous release, the environment and what pruning will remove.
//! `hoist deploy --plan` prints it; `hoist deploy` carries it out.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use hoist_config::{Config, DependencyFormat, HealthProbe, InstallerChoice, Restart};
use hoist_pyenv::{DepKey, Dependencies, DependencySource, Installer, Interpreter, Selection};
use hoist_release::{PrunePlan, ReleaseId};

use crate::event::Step;
use crate::host::{Fleet, Host};
use crate::source::SourceTree;
use crate::state::HostState;
use crate::{DeployError, DeployOptions};

/// Everything a deploy will do, decided before doing any of it.
#[derive(Debug)]
pub struct DeployPlan {
    /// The one release id of this deploy, the same on every host (invariant 5).
    pub release: ReleaseId,
    pub source: Arc<SourceTree>,
    /// What decides the environment: requirements files (relative to the source, includes
    /// followed), or pyproject.toml and its lock with the requirements exported from them.
    pub dependencies: Dependencies,
    /// One per host, in the fleet's order.
    pub hosts: Vec<HostPlan>,
}

/// The plan for one host.
#[derive(Debug)]
pub struct HostPlan {
    pub host: String,
    pub previous: Option<ReleaseId>,
    pub interpreter: Interpreter,
    pub installer: Installer,
    pub dep_key: DepKey,
    pub env_ready: bool,
    /// What pruning will remove once the new release is live.
    pub prune: PrunePlan,
    /// The actions in order, as shown by `--plan`.
    pub actions: Vec<(Step, String)>,
}

/// Works out the deploy without changing anything on any host (`hoist deploy --plan`).
pub fn plan_deploy(
    config: &Config,
    fleet: &Fleet,
    opts: &DeployOptions,
) -> Result<DeployPlan, DeployError> {
    let states = read_states(fleet)?;
    make_plan(config, fleet, opts, &states, false)
}

/// Reads every host's state; the first error wins (a broken host is refused before anything
/// is touched anywhere).
pub(crate) fn read_states(fleet: &Fleet) -> Result<Vec<HostState>, DeployError> {
    fleet
        .each(|_, h| HostState::read(h.transport(), &h.layout))
        .into_iter()
        .collect()
}

pub(crate) fn make_plan(
    config: &Config,
    fleet: &Fleet,
    opts: &DeployOptions,
    states: &[HostState],
    // Whether the interpreter probe may be remembered on the hosts (not for `--plan`).
    remember: bool,
) -> Result<DeployPlan, DeployError> {
    let release = ReleaseId::generate(Utc::now(), |id| {
        states
            .iter()
            .any(|s| s.history.contains(id) || s.existing.contains(id))
    });
    let source = match &opts.source {
        Some(source) => Arc::clone(source),
        None => Arc::new(SourceTree::collect(
            &config.app.source,
            &config.app.exclude,
            opts.git_ref.as_deref(),
        )?),
    };
    let dependencies = hoist_pyenv::read_dependencies(&source.dir, &dependency_source(config))
        .map_err(|e| with_hint(&e.to_string()))?;
    let hosts = fleet
        .each(|i, host| {
            plan_host(
                config,
                host,
                opts,
                &states[i],
                Planned {
                    release: &release,
                    source: &source,
                    dependencies: &dependencies,
                },
                remember,
            )
        })
        .into_iter()
        .collect::<Result<Vec<_>, _>>()?;
    Ok(DeployPlan {
        release,
        source,
        dependencies,
        hosts,
    })
}

/// What the deploy brings to every host.
struct Planned<'a> {
    release: &'a ReleaseId,
    source: &'a SourceTree,
    dependencies: &'a Dependencies,
}

fn plan_host(
    config: &Config,
    host: &Host,
    opts: &DeployOptions,
    state: &HostState,
    planned: Planned<'_>,
    remember: bool,
) -> Result<HostPlan, DeployError> {
    let Planned {
        release,
        source,
        dependencies,
    } = planned;
    let transport = host.transport();
    let layout = &host.layout;
    let in_host = |e: &dyn std::fmt::Display| format!("{}: {e}", host.name);
    // The restarts after the switch run through sudo: a host that refuses is refused now,
    // before its lock holder touches anything, not after `current` has moved.
    transport.check_become().map_err(|e| {
        DeployError::before_switch(e.to_string()).hint(
            "add that line, or set become = false for this host if its login user may restart \
             the app's processes itself",
        )
    })?;
    let (interpreter, installer) = hoist_pyenv::probe_python(
        transport,
        &host.python,
        installer_choice(config.app.installer),
        &layout.probe_cache(),
        remember,
    )
    .map_err(|e| DeployError::before_switch(in_host(&e)))?;
    let dep_key = hoist_pyenv::dep_key(&source.dir, dependencies, &interpreter, &installer)
        .map_err(|e| DeployError::before_switch(in_host(&e)))?;
    let env_dir = layout.envs().join(dep_key.to_string());
    let env_ready = transport.kind(&env_dir.join(".hoist-complete"))?.exists();
    let previous = state.current.clone();

    // Pruning is planned as if the new release had gone live.
    let prune = crate::prune::plan_once_live(state, config.release.keep_releases, release);

    let mut actions = vec![(
        Step::Lock,
        format!(
            "take {} (wait up to {})",
            layout.lock().display(),
            human(opts.lock_wait)
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
            layout.release(release).display()
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
    actions.push((
        Step::Environment,
        if env_ready {
            format!("reuse {} (no Python work)", env_dir.display())
        } else {
            format!(
                "build {} with {} for Python {} from {}",
                env_dir.display(),
                installer_name(&installer),
                interpreter.version,
                dependencies.describe()
            )
        },
    ));
    actions.push((
        Step::ImportCheck,
        format!("import {} with the release's interpreter", config.app.entry),
    ));
    for hook in &config.hooks {
        let once = if hook.once {
            " (once per deploy, on the first host, after every host is prepared)"
        } else {
            ""
        };
        actions.push((Step::Hook, format!("{}: {}{once}", hook.name, hook.run)));
    }
    actions.push((
        Step::Switch,
        format!(
            "{} -> {} (was {})",
            layout.current().display(),
            layout.current_target(release).display(),
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
    actions.push((
        Step::Health,
        match &config.health {
            Some(health) => describe_health(&health.probe, health.timeout),
            None => "no health check configured: a restart that exits 0 is trusted".into(),
        },
    ));
    actions.push((
        Step::Prune,
        if prune.remove.is_empty() {
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
        },
    ));
    actions.push((Step::Unlock, format!("remove {}", layout.lock().display())));

    Ok(HostPlan {
        host: host.name.clone(),
        previous,
        interpreter,
        installer,
        dep_key,
        env_ready,
        prune,
        actions,
    })
}

pub(crate) fn installer_name(installer: &Installer) -> String {
    match installer {
        Installer::Uv { version } => format!("uv {version}"),
        Installer::Pip { version } => format!("pip {version}"),
    }
}

/// "30s", "5m", "250ms".
fn human(d: Duration) -> String {
    if d.is_zero() {
        "0s".into()
    } else if d.subsec_millis() != 0 || d.as_secs() == 0 {
        format!("{}ms", d.as_millis())
    } else if d.as_secs().is_multiple_of(60) {
        format!("{}m", d.as_secs() / 60)
    } else {
        format!("{}s", d.as_secs())
    }
}

fn describe_restart(restart: &Restart) -> String {
    match restart {
        Restart::Command { command } => format!("run `{command}`"),
        Restart::Supervisor { program } => format!("supervisorctl restart {program}"),
        Restart::Systemd { unit } => format!("systemctl reload-or-restart {unit}"),
        Restart::UwsgiChain { fifo } => format!("chain reload through {}", fifo.display()),
        Restart::GunicornHup { pidfile } => {
            format!("SIGHUP to the pid in {}", pidfile.display())
        }
    }
}

fn describe_health(probe: &HealthProbe, timeout: Duration) -> String {
    match probe {
        HealthProbe::Http { url, status, body } => {
            let body = body
                .as_ref()
                .map_or(String::new(), |b| format!(" containing {b:?}"));
            format!(
                "GET {url} until it answers {status}{body}, at most {}",
                human(timeout)
            )
        }
        HealthProbe::Command { command } => {
            format!(
                "run `{command}` until it exits 0, at most {}",
                human(timeout)
            )
        }
    }
}

/// The `.venv` link target of a release: relative, so the root can move.
pub(crate) fn env_link(key: &DepKey) -> PathBuf {
    Path::new("../..").join("envs").join(key.to_string())
}

/// A configuration error whose text ends in `\nhint: ...` (hoist-pyenv writes its fixes that
/// way), with the hint as the error's own, so it is printed as a `hint:` line.
fn with_hint(text: &str) -> DeployError {
    match text.rsplit_once("\nhint: ") {
        Some((message, hint)) => DeployError::config(message).hint(hint),
        None => DeployError::config(text),
    }
}

/// The config's `[app]` dependency keys in hoist-pyenv's terms.
fn dependency_source(config: &Config) -> DependencySource {
    let app = &config.app;
    let selection = || Selection {
        extras: app.extras.clone(),
        groups: app.groups.clone(),
    };
    match app.dependencies {
        DependencyFormat::Requirements => DependencySource::Requirements(app.requirements.clone()),
        DependencyFormat::UvLock => DependencySource::UvLock(selection()),
        DependencyFormat::PoetryLock => DependencySource::PoetryLock(selection()),
        DependencyFormat::PdmLock => DependencySource::PdmLock(selection()),
        DependencyFormat::PipfileLock => DependencySource::PipfileLock(selection()),
        DependencyFormat::Pyproject => DependencySource::Pyproject(selection()),
    }
}

/// The config's installer choice in hoist-pyenv's terms.
pub(crate) fn installer_choice(choice: InstallerChoice) -> hoist_pyenv::InstallerChoice {
    match choice {
        InstallerChoice::Auto => hoist_pyenv::InstallerChoice::Auto,
        InstallerChoice::Uv => hoist_pyenv::InstallerChoice::Uv,
        InstallerChoice::Pip => hoist_pyenv::InstallerChoice::Pip,
    }
}
