//! Invariant 4: keep `keep_releases` good releases, never the live one, the rollback target or
//! one being built. A release is first renamed out of the way (atomic), then recorded as
//! pruned, then deleted, so a half-deleted directory is never taken for a release.

use std::collections::BTreeSet;
use std::time::Instant;

use crate::event::{Step, Stepper};
use crate::host::Host;
use crate::record::Recorder;
use crate::state::HostState;
use crate::{fault, DeployError};
use hoist_config::Config;
use hoist_release::{prune_plan, JournalEvent, ReleaseId};

/// Prefix of a release directory or environment being deleted.
const PRUNING: &str = ".pruning-";

pub(crate) fn prune(
    config: &Config,
    host: &Host,
    recorder: &Recorder<'_>,
    step: &Stepper<'_>,
) -> Result<Vec<ReleaseId>, DeployError> {
    let transport = host.transport();
    let layout = &host.layout;
    step.start(Step::Prune);
    let since = Instant::now();
    let state = HostState::read(transport, layout)?;
    let plan = prune_plan(
        &state.history,
        state.current.as_ref(),
        &state.existing,
        config.release.keep_releases,
        None,
    );
    for id in &plan.remove {
        let aside = layout.releases().join(format!("{PRUNING}{id}"));
        transport.rename(&layout.release(id), &aside)?;
        recorder.journal(JournalEvent::Pruned {
            release: id.clone(),
        })?;
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

    // Environments no remaining release links to.
    let mut in_use = BTreeSet::new();
    for id in state.existing.iter().filter(|id| !plan.remove.contains(id)) {
        if let Some(target) = transport.read_link(&layout.release(id).join(".venv"))? {
            if let Some(name) = target.file_name() {
                in_use.insert(name.to_string_lossy().into_owned());
            }
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
    let mut detail = format!("{} removed, {} kept", plan.remove.len(), plan.keep.len());
    if !unused.is_empty() {
        detail.push_str(&format!(", {} unused environments removed", unused.len()));
    }
    step.timed(Step::Prune, since, detail);
    Ok(plan.remove)
}
