//! Writing down what happened: the journal (append-only, one JSON line per event) and each
//! release's RELEASE.json.

use chrono::Utc;
use hoist_release::{JournalEntry, JournalEvent, ReleaseId, ReleaseRecord, ReleaseState};
use hoist_transport::Transport;

use crate::event::Stepper;
use crate::host::Host;
use crate::plan::{DeployPlan, HostPlan};
use crate::state::HostState;
use crate::{DeployError, Layout};

/// Writes one host's journal and RELEASE.json files.
pub(crate) struct Recorder<'a> {
    transport: &'a dyn Transport,
    layout: &'a Layout,
    who: &'a str,
    app: &'a str,
}

impl<'a> Recorder<'a> {
    pub fn new(host: &'a Host, who: &'a str, app: &'a str) -> Self {
        Recorder {
            transport: host.transport(),
            layout: &host.layout,
            who,
            app,
        }
    }

    /// Appends one event to the journal.
    pub fn journal(&self, event: JournalEvent) -> Result<(), DeployError> {
        let entry = JournalEntry {
            ts: Utc::now(),
            who: self.who.to_string(),
            event,
        };
        let line = entry.to_line();
        // One round trip where the state folder exists (it holds the lock, so always during a
        // deploy or a rollback); made first only when the append could not be done.
        if self
            .transport
            .append_line(&self.layout.journal(), &line)
            .is_ok()
        {
            return Ok(());
        }
        self.transport.create_dir_all(&self.layout.state_dir())?;
        self.transport
            .append_line(&self.layout.journal(), &line)
            .map_err(|e| DeployError::internal(format!("writing the journal: {e}")))
    }

    /// Records a failed deploy. Best effort: the failure being reported matters more than a
    /// second failure while writing it down, which becomes part of the message instead.
    pub fn failed(
        &self,
        id: &ReleaseId,
        plan: &DeployPlan,
        host_plan: &HostPlan,
        stage: &str,
        reason: &str,
        rolled_back_to: Option<&ReleaseId>,
    ) {
        let _ = self.journal(JournalEvent::DeployFailed {
            release: id.clone(),
            stage: stage.to_string(),
            reason: reason.to_string(),
            rolled_back_to: rolled_back_to.cloned(),
        });
        if self
            .transport
            .kind(&self.layout.release(id))
            .is_ok_and(|k| k.exists())
        {
            self.write_release_json(id, plan, host_plan, ReleaseState::Failed);
        }
    }

    /// Writes `<release>/RELEASE.json` atomically (a new inode, so a file hard-linked from an
    /// older release is never modified in place).
    pub fn write_release_json(
        &self,
        id: &ReleaseId,
        plan: &DeployPlan,
        host_plan: &HostPlan,
        state: ReleaseState,
    ) {
        let record = ReleaseRecord {
            id: id.clone(),
            commit: plan.source.commit.clone(),
            branch: plan.source.branch.clone(),
            dirty: plan.source.dirty,
            who: self.who.to_string(),
            created: Utc::now(),
            dep_key: Some(host_plan.dep_key.to_string()),
            python: Some(host_plan.interpreter.version.clone()),
            state,
            app: self.app.to_string(),
        };
        let json = serde_json::to_vec_pretty(&record).expect("release record serialises");
        let _ = self
            .transport
            .write_file_atomic(&self.layout.release(id).join("RELEASE.json"), &json);
    }

    /// Sets the state in an existing RELEASE.json (rollback marks releases good or bad).
    pub fn set_release_state(&self, id: &ReleaseId, state: ReleaseState) {
        self.set_release_states(&[(id, state)]);
    }

    /// [`Recorder::set_release_state`] of several releases: one read and one write for all.
    /// Best effort, as the journal is what decides: a file missing or unreadable is left.
    pub fn set_release_states(&self, states: &[(&ReleaseId, ReleaseState)]) {
        let paths: Vec<_> = states
            .iter()
            .map(|(id, _)| self.layout.release(id).join("RELEASE.json"))
            .collect();
        let path_refs: Vec<&std::path::Path> = paths.iter().map(|p| p.as_path()).collect();
        let Ok(found) = self.transport.read_files(&path_refs) else {
            return;
        };
        let mut updated = Vec::new();
        for ((path, (_, state)), bytes) in path_refs.iter().zip(states).zip(found) {
            let Some(mut record) =
                bytes.and_then(|b| serde_json::from_slice::<ReleaseRecord>(&b).ok())
            else {
                continue;
            };
            record.state = *state;
            let json = serde_json::to_vec_pretty(&record).expect("release record serialises");
            updated.push((*path, json));
        }
        let files: Vec<(&std::path::Path, &[u8])> = updated
            .iter()
            .map(|(path, json)| (*path, json.as_slice()))
            .collect();
        let _ = self.transport.write_files_atomic(&files);
    }

    /// Cuts a journal line torn by a killed process, so the next append starts on a line of
    /// its own. Called with the lock held.
    /// Returns whether it wrote anything.
    pub fn repair_torn(&self, state: &HostState, step: &Stepper<'_>) -> Result<bool, DeployError> {
        if let Some((torn, kept)) = &state.torn {
            step.warn(format!("{torn}; removing it"));
            self.transport
                .write_file_atomic(&self.layout.journal(), kept)?;
            return Ok(true);
        }
        Ok(false)
    }

    /// A rollback that was killed between its `rollback_started` and its result: write down
    /// where it got to (`current` on its target or not), so the release it left is never
    /// chosen again when it was left. Called with the lock held. Returns whether it wrote.
    pub fn close_interrupted_rollback(
        &self,
        state: &HostState,
        step: &Stepper<'_>,
    ) -> Result<bool, DeployError> {
        let Some((from, to)) = state.history.interrupted_rollback() else {
            return Ok(false);
        };
        let switched = state.current.as_ref() == Some(to);
        step.warn(format!(
            "a rollback from {from} to {to} was interrupted {}; recording it",
            if switched {
                format!("after its switch: {from} is marked bad")
            } else {
                "before its switch".to_string()
            }
        ));
        self.journal(JournalEvent::RollbackInterrupted {
            from: from.clone(),
            to: to.clone(),
            switched,
        })?;
        Ok(true)
    }

    /// A deploy that was killed left its release unfinished: say so in the journal, so it is
    /// never mistaken for a good one. Called with the lock held, so no deploy is running.
    /// Returns whether it wrote anything.
    pub fn close_interrupted(
        &self,
        state: &HostState,
        step: &Stepper<'_>,
    ) -> Result<bool, DeployError> {
        let mut wrote = false;
        for summary in state.history.releases() {
            if matches!(
                summary.state,
                ReleaseState::Building | ReleaseState::Prepared
            ) {
                step.warn(format!(
                    "release {} was left unfinished by an interrupted deploy; marking it failed",
                    summary.id
                ));
                self.journal(JournalEvent::DeployFailed {
                    release: summary.id.clone(),
                    stage: "interrupted".into(),
                    reason: "the deploy that was building it stopped before finishing".into(),
                    rolled_back_to: None,
                })?;
                wrote = true;
            }
        }
        Ok(wrote)
    }
}
