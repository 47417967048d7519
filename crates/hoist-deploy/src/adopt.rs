//! Adopting hosts deployed the seed's way (`builds/<timestamp>`, a `current` symlink, an `env`
//! inside each build): their builds become releases that `hoist releases` lists as adopted,
//! that can be rolled back to (with their own environment, as it is) and that are pruned by
//! the same rules. Nothing of theirs is moved or rewritten: adopting only writes the journal.

use std::time::Duration;

use hoist_release::{JournalEvent, ReleaseId};
use hoist_transport::FileKind;

use crate::event::{EventSink, Stepper};
use crate::host::{Fleet, Host};
use crate::lock::{lock_all, unlock_all};
use crate::plan::read_states;
use crate::record::Recorder;
use crate::state::HostState;
use crate::DeployError;

/// The builds of one host that were adopted.
#[derive(Debug, Clone)]
pub struct Adopted {
    pub host: String,
    pub releases: Vec<ReleaseId>,
}

/// `hoist adopt`: records every directory of the releases folder that the journal does not
/// know as an adopted release, oldest id first, on every host.
pub fn adopt(
    fleet: &Fleet,
    who: &str,
    app: &str,
    command: &str,
    events: EventSink<'_>,
) -> Result<Vec<Adopted>, DeployError> {
    read_states(fleet)?;
    let held = lock_all(fleet, who, command, Duration::ZERO, events)?;
    let result = fleet
        .each(|_, host| {
            let state = HostState::read(host.transport(), &host.layout)?;
            let step = Stepper {
                host: &host.name,
                events,
            };
            adopt_host(host, &state, who, app, &step).map(|releases| Adopted {
                host: host.name.clone(),
                releases,
            })
        })
        .into_iter()
        .collect();
    unlock_all(fleet, held, events);
    result
}

/// Adopts the unknown build directories of one host (with its lock held).
pub(crate) fn adopt_host(
    host: &Host,
    state: &HostState,
    who: &str,
    app: &str,
    step: &Stepper<'_>,
) -> Result<Vec<ReleaseId>, DeployError> {
    let recorder = Recorder::new(host, who, app);
    let mut adopted = Vec::new();
    for id in &state.existing {
        if state.history.contains(id) {
            continue;
        }
        if host.transport().kind(&host.layout.release(id))? != FileKind::Dir {
            continue;
        }
        recorder.journal(JournalEvent::Adopted {
            release: id.clone(),
        })?;
        adopted.push(id.clone());
    }
    if !adopted.is_empty() {
        step.warn(format!(
            "adopted {} existing build(s) of {}: {}",
            adopted.len(),
            host.layout.releases().display(),
            adopted
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    Ok(adopted)
}
