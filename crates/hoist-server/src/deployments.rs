//! A project's deployments as its hosts tell them, read with the deploy engine (`hoist status`
//! for every environment of its hoist.toml): per host the live release, the rollback target
//! and the lock; drift between the hosts (different live releases, a release missing on some
//! host) and against what the server recorded; the hosts that
//! could not be read. Read at most once per [`FRESH_FOR`] per project. And the rollback of an
//! environment, as `hoist rollback` does it.
//!
//! The hosts are those of the hoist.toml at the head of the repository's default branch (the
//! mirror's `HEAD`), checked out into `<data dir>/deployments/<project>`.

use std::collections::{BTreeSet, HashMap};
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

/// A release this server last recorded live on some hosts of an environment.
pub struct RecordedLive {
    /// The environment.
    pub environment: String,
    /// The release.
    pub release: String,
    /// The hosts it was last recorded live on.
    pub hosts: Vec<String>,
    /// Who made it live there (the newest of those records).
    pub who: String,
    /// The run that did, if a run did.
    pub run: Option<hoist_store::RunId>,
    /// When (the newest of those records).
    pub at: DateTime<Utc>,
}

/// Per environment, what the server last recorded live on each host (a run's deploy or a
/// rollback from the dashboard or API), hosts of one release together: not read from the hosts.
/// `recorded` is newest first, as [`hoist_store::Store::deployments`] gives it.
#[must_use]
pub fn recorded_live(recorded: &[Deployment]) -> Vec<RecordedLive> {
    let mut seen: Vec<(&str, &str)> = Vec::new();
    let mut live: Vec<RecordedLive> = Vec::new();
    for d in recorded.iter().filter(|d| leaves_live(&d.outcome)) {
        if seen.contains(&(d.environment.as_str(), d.host.as_str())) {
            continue;
        }
        seen.push((&d.environment, &d.host));
        match live
            .iter_mut()
            .find(|l| l.environment == d.environment && l.release == d.release)
        {
            Some(l) => l.hosts.push(d.host.clone()),
            None => live.push(RecordedLive {
                environment: d.environment.clone(),
                release: d.release.clone(),
                hosts: vec![d.host.clone()],
                who: d.who.clone(),
                run: d.run,
                at: d.at,
            }),
        }
    }
    for l in &mut live {
        l.hosts.sort();
    }
    live.sort_by(|a, b| {
        a.environment
            .cmp(&b.environment)
            .then(b.release.cmp(&a.release))
    });
    live
}

/// What was read of one host: its status and its releases, or why it could not be read.
type HostRead = Result<(hoist_deploy::Status, Releases), String>;

/// What a host's journal and releases folder say besides its status.
#[derive(Default)]
struct Releases {
    /// The latest deploys, rollbacks and failures, newest first.
    journal: Vec<Value>,
    /// Every release directory present.
    on_disk: BTreeSet<String>,
    /// The good releases present: those a rollback may go to.
    good: BTreeSet<String>,
}

/// How many of a host's latest journal events a read shows.
pub const JOURNAL_TAIL: usize = 20;

/// The host's latest deploys, rollbacks and failures from its journal, newest first, as the
/// journal writes them (`ts`, `who`, `event` and the event's fields), and its releases on disk.
/// Builds and switches are left out: each deploy or rollback ends in one of the events kept. A
/// journal that cannot be read gives none (`status` has already said why).
fn host_releases(host: &Host) -> Releases {
    let Ok(state) = hoist_deploy::HostState::read(host.transport(), &host.layout) else {
        return Releases::default();
    };
    let on_disk: BTreeSet<String> = state.existing.iter().map(ToString::to_string).collect();
    let good = state
        .history
        .releases()
        .into_iter()
        .filter(|r| r.state == hoist_release::ReleaseState::Good)
        .map(|r| r.id.to_string())
        .filter(|id| on_disk.contains(id))
        .collect();
    let journal = state
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
        .collect();
    Releases {
        journal,
        on_disk,
        good,
    }
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
                                Ok((status, host_releases(&host)))
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
    let read: Vec<(&String, &Releases)> = statuses
        .iter()
        .filter_map(|(host, status)| status.as_ref().ok().map(|(_, r)| (host, r)))
        .collect();
    for (host, status) in statuses {
        let (status, releases) = match status {
            Ok((status, releases)) => (status, releases),
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
            "missing": missing_here(host, &read),
            "journal": releases.journal,
        }));
    }
    drift.extend(missing_releases(statuses, &read));
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

/// The good releases of other hosts of the environment that `host` does not have on disk.
fn missing_here(host: &str, read: &[(&String, &Releases)]) -> Vec<String> {
    let Some((_, mine)) = read.iter().find(|(h, _)| *h == host) else {
        return Vec::new();
    };
    let present: BTreeSet<&String> = read.iter().flat_map(|(_, r)| &r.good).collect();
    present
        .into_iter()
        .filter(|id| !mine.on_disk.contains(*id))
        .cloned()
        .collect()
}

/// A release that is good on some hosts but missing on others, one line each, newest first:
/// rolling back to it would fail where it is missing. A host's rollback target is named as such.
fn missing_releases(statuses: &[(String, HostRead)], read: &[(&String, &Releases)]) -> Vec<String> {
    let present: BTreeSet<&String> = read.iter().flat_map(|(_, r)| &r.good).collect();
    let mut lines = Vec::new();
    for id in present.into_iter().rev() {
        let missing: Vec<&str> = read
            .iter()
            .filter(|(_, r)| !r.on_disk.contains(id))
            .map(|(h, _)| h.as_str())
            .collect();
        if missing.is_empty() {
            continue;
        }
        let having: Vec<&str> = read
            .iter()
            .filter(|(_, r)| r.good.contains(id))
            .map(|(h, _)| h.as_str())
            .collect();
        let target_of: Vec<&str> = statuses
            .iter()
            .filter_map(|(h, s)| s.as_ref().ok().map(|(s, _)| (h, s)))
            .filter(|(_, s)| s.rollback_target.as_deref() == Some(id.as_str()))
            .map(|(h, _)| h.as_str())
            .collect();
        let what = if target_of.is_empty() {
            format!("release {id} is on {}", having.join(", "))
        } else {
            format!(
                "release {id}, the rollback target of {}, is on {}",
                target_of.join(", "),
                having.join(", ")
            )
        };
        lines.push(format!(
            "{what} but missing on {}: rolling back to it would fail there",
            missing.join(", ")
        ));
    }
    lines
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

#[cfg(test)]
mod tests {
    use super::*;

    fn host(target: Option<&str>, good: &[&str], on_disk: &[&str]) -> HostRead {
        let status = hoist_deploy::Status {
            host: String::new(),
            root: "/srv/app".into(),
            current: None,
            rollback_target: target.map(str::to_string),
            lock: None,
            lock_stale: false,
            lock_stale_reason: None,
        };
        let releases = Releases {
            journal: Vec::new(),
            on_disk: on_disk.iter().map(|r| (*r).to_string()).collect(),
            good: good.iter().map(|r| (*r).to_string()).collect(),
        };
        Ok((status, releases))
    }

    #[test]
    fn a_rollback_target_missing_on_one_host_is_named_with_the_hosts_that_lack_it() {
        let statuses = vec![
            (
                "web1".to_string(),
                host(Some("2"), &["1", "2", "3"], &["1", "2", "3"]),
            ),
            // Someone deleted release 2 on web2; release 1 failed there but is on disk.
            ("web2".to_string(), host(None, &["3"], &["1", "3"])),
            ("web3".to_string(), Err("cannot connect".into())),
        ];
        let json = environment_json("production", &statuses, &[]);
        assert_eq!(
            json["drift"],
            serde_json::json!([
                "release 2, the rollback target of web1, is on web1 but missing on web2: rolling back to it would fail there"
            ])
        );
        assert_eq!(json["hosts"][0]["missing"], serde_json::json!([]));
        assert_eq!(json["hosts"][1]["missing"], serde_json::json!(["2"]));
    }

    #[test]
    fn hosts_with_the_same_good_releases_have_no_drift() {
        let statuses = vec![
            (
                "web1".to_string(),
                host(Some("1"), &["1", "2"], &["1", "2"]),
            ),
            (
                "web2".to_string(),
                host(Some("1"), &["1", "2"], &["0", "1", "2"]),
            ),
        ];
        let json = environment_json("production", &statuses, &[]);
        assert_eq!(json["drift"], serde_json::json!([]));
    }
}
