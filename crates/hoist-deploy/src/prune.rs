//! Invariant 4: keep `keep_releases` good releases, never the live one, the rollback target or
//! one being built. A release is first recorded as pruned, then renamed out of the way
//! (atomic), then deleted: a good release never loses its directory before the journal says
//! it was pruned, and a half-deleted directory is never taken for a release.
//!
//! A deploy prunes beside its own work, while it prepares and activates its release (off the
//! critical path; with every process warm-reloaded, once the new workers import the app, while
//! the host's shell mostly waits for them: [`Gates`]): it removes what pruning would remove once the new release is live, less
//! what must stay while it is not live yet (the live release and its rollback target), so that
//! whichever way the deploy ends nothing it may still need is gone.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::{Condvar, Mutex, PoisonError};
use std::time::Instant;

use chrono::Utc;

use crate::event::{Step, Stepper};
use crate::host::Host;
use crate::record::Recorder;
use crate::state::HostState;
use crate::{fault, DeployError};
use hoist_config::Config;
use hoist_release::{
    prune_plan, History, JournalEntry, JournalEvent, PrunePlan, PruneReason, ReleaseId,
    ReleaseState,
};

/// Prefix of a release directory or environment being deleted.
const PRUNING: &str = ".pruning-";

/// The release a deploy is building while it prunes, and the environment it links to.
pub(crate) struct Deploying<'a> {
    pub release: &'a ReleaseId,
    pub dep_key: &'a str,
}

/// Per host, whether a deploy's pruning may start there. Opened when the host's new workers
/// import the app (a warm reload), when its activation ends without that, or when the deploy
/// ends; open from the start when not every process is warm-reloaded.
pub(crate) struct Gates {
    open: Mutex<Vec<bool>>,
    changed: Condvar,
}

impl Gates {
    pub fn new(hosts: usize, open: bool) -> Gates {
        Gates {
            open: Mutex::new(vec![open; hosts]),
            changed: Condvar::new(),
        }
    }

    fn set(&self, which: impl Fn(usize) -> bool) {
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        for (i, gate) in open.iter_mut().enumerate() {
            *gate |= which(i);
        }
        self.changed.notify_all();
    }

    pub fn open(&self, host: usize) {
        self.set(|i| i == host);
    }

    pub fn open_all(&self) {
        self.set(|_| true);
    }

    /// A guard that opens every gate when dropped: however the deploy ends, a panic included
    /// (which a scope would otherwise wait on, its pruning thread waiting on the gate).
    pub fn open_all_at_end(&self) -> impl Drop + '_ {
        struct OpenAll<'a>(&'a Gates);
        impl Drop for OpenAll<'_> {
            fn drop(&mut self) {
                self.0.open_all();
            }
        }
        OpenAll(self)
    }

    pub fn wait(&self, host: usize) {
        let open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        let _open = self
            .changed
            .wait_while(open, |open| !open[host])
            .unwrap_or_else(PoisonError::into_inner);
    }
}

/// Prunes `host` while the deploy of `deploying` runs (its `deploy_started` is in the journal).
pub(crate) fn prune(
    config: &Config,
    host: &Host,
    deploying: &Deploying<'_>,
    recorder: &Recorder<'_>,
    step: &Stepper<'_>,
) -> Result<Vec<ReleaseId>, DeployError> {
    let transport = host.transport();
    let layout = &host.layout;
    step.start(Step::Prune);
    let since = Instant::now();
    let state = HostState::read(transport, layout)?;
    let remove = beside_deploy(&state, config.release.keep_releases, deploying.release);
    for id in &remove {
        // Recorded before it goes: this runs beside the deploy, so a kill of hoist can land
        // between any two of these steps, and a good release must never be found without its
        // directory while the journal still calls it good. Killed after the record, its
        // directory stays until the next prune removes it (recorded already, not again).
        if state.history.state(id) != Some(ReleaseState::Pruned) {
            recorder.journal(JournalEvent::Pruned {
                release: id.clone(),
            })?;
        }
        fault::point("deploy:prune-recorded");
        let aside = layout.releases().join(format!("{PRUNING}{id}"));
        transport.rename(&layout.release(id), &aside)?;
        fault::point("deploy:pruning");
        transport.remove_all(&aside)?;
    }
    // Leftovers of a prune that was interrupted.
    for stray in &state.strays {
        if stray.starts_with(PRUNING) {
            transport.remove_all(&layout.releases().join(stray))?;
        }
    }
    fault::point("deploy:pruned");

    // Environments no remaining release links to; the new release's may not be linked yet
    // (or still be building).
    let mut in_use = BTreeSet::from([deploying.dep_key.to_string()]);
    let venvs: Vec<PathBuf> = state
        .existing
        .iter()
        .filter(|id| !remove.contains(id))
        .map(|id| layout.release(id).join(".venv"))
        .collect();
    let venvs: Vec<&Path> = venvs.iter().map(PathBuf::as_path).collect();
    for target in transport.read_links(&venvs)?.into_iter().flatten() {
        if let Some(name) = target.file_name() {
            in_use.insert(name.to_string_lossy().into_owned());
        }
    }
    let unused = hoist_pyenv::unused_envs(transport, &layout.root, &in_use)
        .map_err(|e| DeployError::internal(e.to_string()))?;
    // As releases are: renamed aside first, so an environment half deleted never keeps its
    // name (nor its completion mark) for the next deploy to trust.
    for env in &unused {
        let name = env
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let aside = env.with_file_name(format!("{PRUNING}{name}"));
        transport.rename(env, &aside)?;
        fault::point("deploy:pruning-env");
        transport.remove_all(&aside)?;
    }
    // Leftovers of an environment prune that was interrupted.
    let envs = layout.envs();
    for stray in transport.list_dir(&envs)? {
        if stray.starts_with(PRUNING) {
            transport.remove_all(&envs.join(stray))?;
        }
    }
    let kept = state.existing.len() - remove.len();
    let mut detail = format!("{} removed, {kept} kept", remove.len());
    if !unused.is_empty() {
        detail.push_str(&format!(", {} unused environments removed", unused.len()));
    }
    step.timed(Step::Prune, since, detail);
    Ok(remove)
}

/// The releases a deploy of `new` removes while it runs: those that pruning would remove once
/// `new` is live (the plan `hoist deploy --plan` shows), less those that must stay while it
/// is not live yet — the live release and its rollback target — so that nothing the host may
/// still need is gone whichever way the deploy ends. (Such a target is pruned by the next
/// deploy: with `keep_releases = 2` a third release stays on disk until then.)
fn beside_deploy(state: &HostState, keep: usize, new: &ReleaseId) -> Vec<ReleaseId> {
    let now = prune_plan(
        &state.history,
        state.current.as_ref(),
        &state.existing,
        keep,
        Some(new),
    );
    let needed_now = |id: &ReleaseId| {
        matches!(
            now.reason(id),
            Some(PruneReason::Current | PruneReason::RollbackTarget | PruneReason::InProgress)
        )
    };
    let once_live = plan_once_live(state, keep, new);
    once_live
        .remove
        .into_iter()
        .filter(|id| id != new && !needed_now(id))
        .collect()
}

/// The prune plan of `state` as if `new` had gone live (deployed and confirmed): what a
/// deploy's plan shows it will remove, and what a deploy prunes beside its work.
pub(crate) fn plan_once_live(state: &HostState, keep: usize, new: &ReleaseId) -> PrunePlan {
    let mut entries = state.entries.clone();
    let mut events = Vec::new();
    if !state.history.contains(new) {
        events.push(JournalEvent::DeployStarted {
            release: new.clone(),
            commit: None,
            branch: None,
            host: String::new(),
            dirty: false,
        });
    }
    events.push(JournalEvent::DeploySucceeded {
        release: new.clone(),
    });
    entries.extend(events.into_iter().map(|event| JournalEntry {
        ts: Utc::now(),
        who: String::new(),
        event,
    }));
    let mut existing = state.existing.clone();
    existing.insert(new.clone());
    prune_plan(
        &History::from_entries(&entries),
        Some(new),
        &existing,
        keep,
        None,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(s: &str) -> ReleaseId {
        ReleaseId::parse(s).unwrap()
    }

    /// A host where `good` were deployed one after another, the last one live.
    fn host_with(good: &[&str]) -> HostState {
        let mut entries = Vec::new();
        for release in good {
            for event in [
                JournalEvent::DeployStarted {
                    release: id(release),
                    commit: None,
                    branch: None,
                    host: "web1".into(),
                    dirty: false,
                },
                JournalEvent::DeploySucceeded {
                    release: id(release),
                },
            ] {
                entries.push(JournalEntry {
                    ts: Utc::now(),
                    who: "t".into(),
                    event,
                });
            }
        }
        HostState {
            history: History::from_entries(&entries),
            entries,
            current: good.last().map(|r| id(r)),
            existing: good.iter().map(|r| id(r)).collect(),
            strays: Vec::new(),
            torn: None,
        }
    }

    const A: &str = "20260101T000000Z";
    const B: &str = "20260102T000000Z";
    const C: &str = "20260103T000000Z";
    const D: &str = "20260104T000000Z";
    const E: &str = "20260105T000000Z";

    #[test]
    fn the_new_release_takes_one_of_the_kept_slots() {
        // keep 3: once E is live, E, D and C stay; A and B go now.
        let host = host_with(&[A, B, C, D]);
        assert_eq!(beside_deploy(&host, 3, &id(E)), vec![id(A), id(B)]);
    }

    #[test]
    fn the_live_release_and_its_rollback_target_stay_while_the_deploy_runs() {
        // keep 2: once E is live, C would go; it is D's rollback target, so it stays for now.
        let host = host_with(&[A, B, C, D]);
        assert_eq!(beside_deploy(&host, 2, &id(E)), vec![id(A), id(B)]);
        let host = host_with(&[C, D]);
        assert!(beside_deploy(&host, 2, &id(E)).is_empty());
    }

    /// A host's pruning starts when its own gate opens, not another host's.
    #[test]
    fn a_host_waits_for_its_own_gate() {
        let gates = Gates::new(2, false);
        std::thread::scope(|scope| {
            let waiting = scope.spawn(|| gates.wait(1));
            gates.open(0);
            std::thread::sleep(std::time::Duration::from_millis(50));
            assert!(!waiting.is_finished());
            gates.open(1);
            waiting.join().unwrap();
        });
    }

    /// A deploy that panics while its pruning waits does not hang: the guard opens every gate
    /// as the panic unwinds, so the scope can join the pruning thread and pass the panic on.
    #[test]
    fn a_panic_opens_every_gate() {
        let (done, finished) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let gates = Gates::new(2, false);
            let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                std::thread::scope(|scope| {
                    scope.spawn(|| {
                        gates.wait(0);
                        gates.wait(1);
                    });
                    let _at_end = gates.open_all_at_end();
                    panic!("the deploy failed");
                })
            }));
            let _ = done.send(outcome.is_err());
        });
        let panicked = finished
            .recv_timeout(std::time::Duration::from_secs(10))
            .expect("the scope hung on its pruning thread");
        assert!(panicked);
    }
}
