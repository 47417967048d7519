//! A project's deployments as its hosts tell them, read with the deploy engine (`hoist status`
//! for every environment of its hoist.toml): per host the live release, the rollback target
//! and the lock; drift between the hosts and against what the server recorded; the hosts that
//! could not be read. Read at most once per [`FRESH_FOR`] per project. And the rollback of an
//! environment, as `hoist rollback` does it.
//!
//! The hosts are those of the hoist.toml at the head of the repository's default branch (the
//! mirror's `HEAD`), checked out into `<data dir>/deployments/<project>`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, SecondsFormat, Utc};
use hoist_config::Config;
use hoist_deploy::{DeployError, FailureKind, Fleet, Host, Layout, RollbackReport, Rollout};
use hoist_release::ReleaseId;
use hoist_store::Deployment;
use hoist_transport::HostKeyPolicy;
use serde_json::{json, Value};
use tokio::sync::Mutex;

use crate::config::ProjectConfig;
use crate::runner::checkout;

/// How long a read of the hosts is served again before they are read anew.
pub const FRESH_FOR: Duration = Duration::from_secs(10);

/// The last read of each project's hosts. One read or rollback of a project at a time: a
/// request that comes while the hosts are being read waits for that read and gets it.
#[derive(Default)]
pub struct Cache {
    projects: std::sync::Mutex<HashMap<String, Arc<Mutex<Option<Read>>>>>,
}

/// One read of a project's hosts.
#[derive(Clone)]
struct Read {
    at: Instant,
    body: Value,
}

impl Cache {
    fn slot(&self, project: &str) -> Arc<Mutex<Option<Read>>> {
        let mut projects = self
            .projects
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        Arc::clone(projects.entry(project.to_string()).or_default())
    }
}

/// The deployments of `project` (see the module doc); `fresh` reads the hosts even when the
/// last read is recent. `recorded` is what the store holds of the project's deployments, newest
/// first. The body says when the hosts were read and whether it is served from the cache.
///
/// # Errors
///
/// The repository cannot be fetched, or its hoist.toml is missing or invalid.
pub async fn read(
    cache: &Cache,
    data_dir: &Path,
    project: &ProjectConfig,
    recorded: Vec<Deployment>,
    fresh: bool,
) -> Result<Value, String> {
    let slot = cache.slot(&project.name);
    let mut last = slot.lock().await;
    if let Some(read) = last
        .as_ref()
        .filter(|r| !fresh && r.at.elapsed() < FRESH_FOR)
    {
        let mut body = read.body.clone();
        body["cached"] = Value::Bool(true);
        return Ok(body);
    }
    let (data_dir, project) = (data_dir.to_path_buf(), project.clone());
    let body = tokio::task::spawn_blocking(move || -> Result<Value, String> {
        let (config, commit) = project_config(&data_dir, &project)?;
        Ok(read_hosts(&config, &commit, &project.name, &recorded))
    })
    .await
    .map_err(|e| e.to_string())??;
    *last = Some(Read {
        at: Instant::now(),
        body: body.clone(),
    });
    Ok(body)
}

/// The project's hoist.toml at the head of its default branch, and that commit.
fn project_config(data_dir: &Path, project: &ProjectConfig) -> Result<(Config, String), String> {
    let mirror = checkout::update_mirror(data_dir, &project.name, &project.repository)?;
    let commit = checkout::head(&mirror)?;
    let dir: PathBuf = data_dir.join("deployments").join(&project.name);
    if checkout::head(&dir).ok().as_deref() != Some(commit.as_str()) {
        checkout::checkout(&mirror, &commit, &dir, None)?;
    }
    let config = hoist_config::load(&dir.join(&project.config)).map_err(|e| {
        let hint = e
            .hint
            .as_ref()
            .map(|h| format!(" (hint: {h})"))
            .unwrap_or_default();
        format!("{e}{hint}")
    })?;
    Ok((config, commit))
}

/// The names of the environments of `config`: `local` when it lists no hosts, `all` when it
/// lists hosts but no environments.
fn environment_names(config: &Config) -> Vec<String> {
    let inventory = &config.inventory;
    if inventory.hosts.is_empty() {
        vec![hoist_config::LOCAL.to_string()]
    } else if inventory.environments.is_empty() {
        vec![hoist_config::ALL_HOSTS.to_string()]
    } else {
        inventory
            .environments
            .iter()
            .map(|e| e.name.clone())
            .collect()
    }
}

/// Connects one host of an environment, as `hoist` does (host keys checked strictly unless
/// the inventory says otherwise).
fn connect(config: &Config, spec: &hoist_config::HostSpec) -> Result<Host, String> {
    let transport =
        hoist_deploy::connect(spec, HostKeyPolicy::Strict).map_err(|e| e.to_string())?;
    Ok(Host {
        name: spec.name.clone(),
        transport,
        layout: Layout::with_root(&config.release, spec.root.clone()),
        python: spec.python.clone(),
        vars: spec.vars.clone(),
    })
}

fn time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// What a recorded outcome leaves live on its host.
fn leaves_live(outcome: &str) -> bool {
    matches!(outcome, "live" | "rolled_back" | "left_switched")
}

/// What was read of one host: its status and the tail of its journal, or why it could not be.
type HostRead = Result<(hoist_deploy::Status, Vec<Value>), String>;

/// How many of a host's latest journal events a read shows.
pub const JOURNAL_TAIL: usize = 20;

/// The host's latest deploys, rollbacks and failures from its journal, newest first, as the
/// journal writes them (`ts`, `who`, `event` and the event's fields). Builds and switches are
/// left out: each deploy or rollback ends in one of the events kept. A journal that
/// cannot be read gives none (`status` has already said why).
fn journal_tail(host: &Host) -> Vec<Value> {
    let Ok(state) = hoist_deploy::HostState::read(host.transport(), &host.layout) else {
        return Vec::new();
    };
    state
        .entries
        .iter()
        .rev()
        .filter(|e| {
            matches!(
                e.event.name(),
                "deploy_succeeded"
                    | "deploy_failed"
                    | "rolled_back"
                    | "rollback_failed"
                    | "rollback_interrupted"
                    | "adopted"
                    | "marked_good"
                    | "pruned"
            )
        })
        .take(JOURNAL_TAIL)
        .filter_map(|e| serde_json::to_value(e).ok())
        .collect()
}

/// Every environment's hosts, read in parallel.
fn read_hosts(config: &Config, commit: &str, project: &str, recorded: &[Deployment]) -> Value {
    let environments: Vec<Value> = environment_names(config)
        .iter()
        .map(|name| {
            let env = match config.environment(Some(name)) {
                Ok(env) => env,
                Err(e) => return json!({ "name": name, "error": e.to_string() }),
            };
            let statuses: Vec<(String, HostRead)> = std::thread::scope(|scope| {
                let reads: Vec<_> = env
                    .hosts
                    .iter()
                    .map(|spec| {
                        scope.spawn(move || {
                            let status = connect(config, spec).and_then(|host| {
                                let status = hoist_deploy::status(&host).map_err(|e| e.message)?;
                                Ok((status, journal_tail(&host)))
                            });
                            (spec.name.clone(), status)
                        })
                    })
                    .collect();
                reads
                    .into_iter()
                    .map(|r| r.join().expect("a host read does not panic"))
                    .collect()
            });
            environment_json(&env.name, &statuses, recorded)
        })
        .collect();
    json!({
        "project": project,
        "config_commit": commit,
        "read_at": time(Utc::now()),
        "cached": false,
        "environments": environments,
    })
}

/// One environment: its hosts, those that could not be read, and drift.
fn environment_json(name: &str, statuses: &[(String, HostRead)], recorded: &[Deployment]) -> Value {
    let mut hosts = Vec::new();
    let mut unreachable = Vec::new();
    let mut drift = Vec::new();
    let mut lives: Vec<(String, Option<String>)> = Vec::new();
    for (host, status) in statuses {
        let (status, journal) = match status {
            Ok((status, journal)) => (status, journal),
            Err(error) => {
                unreachable.push(json!({ "host": host, "error": error }));
                continue;
            }
        };
        let live = status.current.as_ref().map(|r| r.id.clone());
        let last = recorded
            .iter()
            .find(|d| d.environment == name && d.host == *host && leaves_live(&d.outcome));
        if let (Some(last), Some(live)) = (last, &live) {
            if last.release != *live {
                drift.push(format!(
                    "{host} serves {live}, but the last deploy or rollback recorded here left {} ({})",
                    last.release, last.who
                ));
            }
        }
        lives.push((host.clone(), live));
        hosts.push(json!({
            "host": host,
            "root": status.root,
            "live": status.current,
            "rollback_target": status.rollback_target,
            "lock": status.lock,
            "lock_stale": status.lock_stale,
            "recorded": last.map(|d| json!({
                "release": d.release,
                "outcome": d.outcome,
                "who": d.who,
                "run": d.run,
                "at": time(d.at),
            })),
            "journal": journal,
        }));
    }
    if lives.iter().any(|(_, live)| *live != lives[0].1) {
        drift.insert(
            0,
            format!(
                "hosts serve different releases: {}",
                lives
                    .iter()
                    .map(|(h, l)| format!("{h} -> {}", l.as_deref().unwrap_or("nothing")))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        );
    }
    json!({ "name": name, "hosts": hosts, "unreachable": unreachable, "drift": drift })
}

/// Why a rollback asked through the API did not happen, or failed.
pub struct RollbackError {
    /// What went wrong; where each host stands when it got that far.
    pub error: DeployError,
}

impl RollbackError {
    fn config(message: impl Into<String>) -> RollbackError {
        RollbackError {
            error: DeployError::new(FailureKind::Config, message),
        }
    }
}

/// The engine's events of a rollback as they happen (each host's steps), for a page that shows
/// its progress.
pub type Progress = Box<dyn Fn(hoist_deploy::Event) + Send + Sync>;

/// Rolls `environment` (the only one when `None`) of `project` back, to `to` or to the
/// rollback target, as `hoist rollback` does; `who` goes into the journal and the lock, the
/// engine's events to `progress`. A
/// deploy holding a host's lock makes it fail at once (`LockHeld`): nothing is changed.
/// The next read of the project's deployments reads the hosts anew.
///
/// # Errors
///
/// The config cannot be read, the environment or `to` is unknown, a host cannot be reached
/// (nothing is changed then), or the engine's rollback failed.
pub async fn rollback(
    cache: &Cache,
    data_dir: &Path,
    project: &ProjectConfig,
    environment: Option<String>,
    to: Option<String>,
    who: String,
    progress: Progress,
) -> Result<(String, RollbackReport), RollbackError> {
    let slot = cache.slot(&project.name);
    let mut last = slot.lock().await;
    *last = None;
    let (data_dir, project) = (data_dir.to_path_buf(), project.clone());
    tokio::task::spawn_blocking(move || {
        let (config, _) = project_config(&data_dir, &project).map_err(RollbackError::config)?;
        let to = to
            .as_deref()
            .map(ReleaseId::parse)
            .transpose()
            .map_err(|e| RollbackError::config(format!("to: {e}")))?;
        let env = config
            .environment(environment.as_deref())
            .map_err(|e| RollbackError::config(e.to_string()))?;
        let mut hosts = Vec::new();
        for spec in &env.hosts {
            hosts.push(connect(&config, spec).map_err(|e| RollbackError {
                error: DeployError::new(
                    FailureKind::BeforeSwitch,
                    format!("cannot reach {}: {e}; nothing was rolled back", spec.name),
                ),
            })?);
        }
        let fleet = Fleet {
            name: env.name.clone(),
            rollout: Rollout::from_config(&env.activation, hosts.len()),
            hosts,
            forks: env.forks.max(1),
        };
        hoist_deploy::rollback(
            &config,
            &fleet,
            to.as_ref(),
            &who,
            &format!("hoist serve: rollback of {} {}", project.name, env.name),
            Duration::ZERO,
            &|event| progress(event),
        )
        .map(|report| (env.name.clone(), report))
        .map_err(|error| RollbackError { error })
    })
    .await
    .map_err(|e| RollbackError {
        error: DeployError::new(FailureKind::Internal, e.to_string()),
    })?
}
