//! `hoist releases mark-good`: clears the bad mark of a release on every host of a fleet, so it
//! is a rollback target again and pruning counts it as good. Under the deploy lock; nothing is
//! written anywhere unless every host can take it.

use std::time::Duration;

use hoist_config::Config;
use hoist_release::{JournalEvent, ReleaseId, ReleaseState};

use crate::event::EventSink;
use crate::host::Fleet;
use crate::lock::{lock_all, unlock_all};
use crate::plan::read_states;
use crate::record::Recorder;
use crate::DeployError;

/// Marks `id` good on every host of `fleet` where it is bad; returns the hosts that changed.
///
/// # Errors
///
/// When a host's journal does not know `id`, or it is neither bad nor already good there
/// (failed, never finished, pruned): then nothing is written on any host.
pub fn mark_good(
    config: &Config,
    fleet: &Fleet,
    id: &ReleaseId,
    who: &str,
    command: &str,
    lock_wait: Duration,
    events: EventSink<'_>,
) -> Result<Vec<String>, DeployError> {
    let held = lock_all(fleet, who, command, lock_wait, events)?;
    let result = mark_good_locked(config, fleet, id, who);
    unlock_all(fleet, held, events);
    result
}

fn mark_good_locked(
    config: &Config,
    fleet: &Fleet,
    id: &ReleaseId,
    who: &str,
) -> Result<Vec<String>, DeployError> {
    let states = read_states(fleet)?;
    let mut problems = Vec::new();
    let mut already_good = Vec::new();
    let mut to_mark = Vec::new();
    for (i, (host, state)) in fleet.hosts.iter().zip(&states).enumerate() {
        match state.history.check_mark_good(id) {
            Ok(()) => to_mark.push(i),
            Err(e) if state.history.state(id) == Some(ReleaseState::Good) => {
                already_good.push(format!("{}: {e}", host.name));
            }
            Err(e) => problems.push(format!("{}: {e}", host.name)),
        }
    }
    if to_mark.is_empty() && problems.is_empty() {
        problems = already_good;
    }
    if !problems.is_empty() {
        let mut e = DeployError::config(problems.join("\n"));
        if fleet.hosts.len() > 1 {
            e = e.hint("nothing was marked on any host");
        }
        return Err(e.hint("`hoist releases` lists each release's state"));
    }
    let mut marked = Vec::new();
    for i in to_mark {
        let host = &fleet.hosts[i];
        let recorder = Recorder::new(host, who, &config.app.name);
        recorder.journal(JournalEvent::MarkedGood {
            release: id.clone(),
        })?;
        recorder.set_release_state(id, ReleaseState::Good);
        marked.push(host.name.clone());
    }
    Ok(marked)
}
