use std::collections::BTreeMap;
use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::{JournalEntry, JournalEvent, ReleaseId};

/// Where a release stands, derived from the journal alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReleaseState {
    /// Started, not yet prepared, not failed: being built, or abandoned by a killed deploy.
    Building,
    /// Files, environment and hooks are done; not (yet) confirmed healthy.
    Prepared,
    /// Passed its health check after a deploy or a rollback to it, or adopted: a rollback target.
    Good,
    /// Its deploy failed.
    Failed,
    /// Rolled away from, or unhealthy when rolled back to.
    Bad,
    /// Its directory was removed.
    Pruned,
}

impl ReleaseState {
    /// The lowercase name used in RELEASE.json and in messages.
    pub fn name(self) -> &'static str {
        match self {
            ReleaseState::Building => "building",
            ReleaseState::Prepared => "prepared",
            ReleaseState::Good => "good",
            ReleaseState::Failed => "failed",
            ReleaseState::Bad => "bad",
            ReleaseState::Pruned => "pruned",
        }
    }
}

impl fmt::Display for ReleaseState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Why `hoist releases mark-good` refuses a release.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NotMarkable {
    /// The journal does not know it.
    #[error(
        "release {0} is not in this host's journal (.hoist/journal.jsonl); pick a release `hoist releases` lists"
    )]
    Unknown(ReleaseId),
    /// Only a Bad release can be marked good.
    #[error("release {id} is {state}, not bad: {}", not_bad(*.state))]
    NotBad {
        /// The release.
        id: ReleaseId,
        /// Its state.
        state: ReleaseState,
    },
}

fn not_bad(state: ReleaseState) -> &'static str {
    match state {
        ReleaseState::Good => "nothing to do",
        ReleaseState::Failed => {
            "its deploy failed and it never passed a health check; deploy it again instead"
        }
        ReleaseState::Building | ReleaseState::Prepared => {
            "it never passed a health check; deploy it instead"
        }
        ReleaseState::Pruned => "its directory was removed",
        ReleaseState::Bad => "it can be marked good",
    }
}

/// What the journal says about one release.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReleaseSummary {
    /// The release.
    pub id: ReleaseId,
    /// Its state after the last event about it.
    pub state: ReleaseState,
    /// The commit deployed, when known.
    pub commit: Option<String>,
    /// The branch deployed, when known.
    pub branch: Option<String>,
    /// The files shipped were not exactly `commit`'s.
    pub dirty: bool,
    /// Who started the deploy or adopted the build.
    pub who: String,
    /// The host named by `deploy_started`; `None` for adopted builds.
    pub host: Option<String>,
    /// The environment key recorded when it was prepared.
    pub dep_key: Option<String>,
    /// When its `deploy_started` or `adopted` line was written.
    pub started: DateTime<Utc>,
    /// When the last event about it was written.
    pub last_change: DateTime<Utc>,
    /// Whether `current` was ever switched to it.
    pub switched: bool,
}

/// A journal event about a release that no `deploy_started` or `adopted` line introduced.
/// It is left out of the history (it has no place in deploy order); the engine should warn.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StrayEvent {
    /// 0-based index of the entry in the slice given to [`History::from_entries`].
    pub index: usize,
    /// The release the event names.
    pub release: ReleaseId,
    /// The event's name, e.g. `deploy_succeeded`.
    pub event: &'static str,
}

impl fmt::Display for StrayEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "journal entry {} ({}) names release {}, which no deploy_started or adopted entry \
             introduced before it; ignored",
            self.index + 1,
            self.event,
            self.release
        )
    }
}

/// The state of every release known to the journal, in deploy order.
///
/// Rules, applied entry by entry so that later events win:
/// - Deploy order is the order of each release's first `deploy_started` or `adopted`.
/// - `deploy_started` makes a release Building; `release_prepared` makes it Prepared.
/// - It is Good after `deploy_succeeded` or `adopted`, or after a `rolled_back` *to* it (an
///   explicit, healthy return makes it good again).
/// - It is Bad after a `rolled_back` *from* it to a release deployed before it, or a
///   `rollback_failed` *to* it. Rolling forward (to a release deployed after it) keeps its state:
///   leaving a release for a newer one is no verdict on it.
/// - `marked_good` makes a Bad release Good; it changes no other state.
/// - It is Failed after `deploy_failed`, Pruned after `pruned`.
/// - `switched` changes no state: a release is only Good once its health check passed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct History {
    order: Vec<ReleaseId>,
    releases: BTreeMap<ReleaseId, ReleaseSummary>,
    stray: Vec<StrayEvent>,
    /// A `rollback_started` not yet settled: `(from, to)`.
    pending_rollback: Option<(ReleaseId, ReleaseId)>,
}

impl History {
    /// Replays `entries` in order.
    pub fn from_entries(entries: &[JournalEntry]) -> History {
        let mut history = History::default();
        for (index, entry) in entries.iter().enumerate() {
            history.apply(index, entry);
        }
        history
    }

    fn apply(&mut self, index: usize, entry: &JournalEntry) {
        match &entry.event {
            JournalEvent::DeployStarted {
                release,
                commit,
                branch,
                host,
                dirty,
            } => {
                let summary = self.introduce(release, entry);
                summary.state = ReleaseState::Building;
                summary.commit.clone_from(commit);
                summary.branch.clone_from(branch);
                summary.dirty = *dirty;
                summary.host = Some(host.clone());
            }
            JournalEvent::Adopted { release } => {
                self.introduce(release, entry).state = ReleaseState::Good;
            }
            JournalEvent::ReleasePrepared { release, dep_key } => {
                if let Some(summary) = self.touch(index, entry, release) {
                    summary.state = ReleaseState::Prepared;
                    summary.dep_key.clone_from(dep_key);
                }
            }
            JournalEvent::Switched { release, .. } => {
                if let Some(summary) = self.touch(index, entry, release) {
                    summary.switched = true;
                }
            }
            JournalEvent::DeploySucceeded { release } => {
                self.set(index, entry, release, ReleaseState::Good);
            }
            JournalEvent::DeployFailed { release, .. } => {
                self.set(index, entry, release, ReleaseState::Failed);
            }
            JournalEvent::RollbackStarted { from, to } => {
                self.pending_rollback = Some((from.clone(), to.clone()));
            }
            JournalEvent::RollbackInterrupted { from, to, switched } => {
                self.pending_rollback = None;
                // As for a finished rollback: rolling forward is no verdict on `from`.
                if *switched && !self.deployed_after(to, from) {
                    self.set(index, entry, from, ReleaseState::Bad);
                }
            }
            JournalEvent::RolledBack { from, to, .. } => {
                self.pending_rollback = None;
                if self.deployed_after(to, from) {
                    self.touch(index, entry, from);
                } else {
                    self.set(index, entry, from, ReleaseState::Bad);
                }
                if let Some(summary) = self.touch(index, entry, to) {
                    summary.state = ReleaseState::Good;
                    summary.switched = true;
                }
            }
            JournalEvent::RollbackFailed { to, .. } => {
                self.pending_rollback = None;
                self.set(index, entry, to, ReleaseState::Bad);
            }
            JournalEvent::Pruned { release } => {
                self.set(index, entry, release, ReleaseState::Pruned);
            }
            JournalEvent::MarkedGood { release } => {
                if let Some(summary) = self.touch(index, entry, release) {
                    if summary.state == ReleaseState::Bad {
                        summary.state = ReleaseState::Good;
                    }
                }
            }
        }
    }

    /// True when both releases are known and `later` comes after `earlier` in deploy order.
    pub fn deployed_after(&self, later: &ReleaseId, earlier: &ReleaseId) -> bool {
        let position = |id: &ReleaseId| self.order.iter().position(|r| r == id);
        matches!((position(later), position(earlier)), (Some(l), Some(e)) if l > e)
    }

    /// Checks `hoist releases mark-good <id>`: only a Bad release can be cleared.
    ///
    /// # Errors
    ///
    /// When the journal does not know `id`, or its state is not Bad (the error says why
    /// marking it would be wrong or useless).
    pub fn check_mark_good(&self, id: &ReleaseId) -> Result<(), NotMarkable> {
        match self.state(id) {
            None => Err(NotMarkable::Unknown(id.clone())),
            Some(ReleaseState::Bad) => Ok(()),
            Some(state) => Err(NotMarkable::NotBad {
                id: id.clone(),
                state,
            }),
        }
    }

    /// The summary for `release`, adding it to deploy order if this is its first appearance.
    fn introduce(&mut self, release: &ReleaseId, entry: &JournalEntry) -> &mut ReleaseSummary {
        if !self.releases.contains_key(release) {
            self.order.push(release.clone());
        }
        let summary = self
            .releases
            .entry(release.clone())
            .or_insert_with(|| ReleaseSummary {
                id: release.clone(),
                state: ReleaseState::Building,
                commit: None,
                branch: None,
                dirty: false,
                who: entry.who.clone(),
                host: None,
                dep_key: None,
                started: entry.ts,
                last_change: entry.ts,
                switched: false,
            });
        summary.last_change = entry.ts;
        summary
    }

    /// The summary for a release already introduced, or `None` after noting a stray event.
    fn touch(
        &mut self,
        index: usize,
        entry: &JournalEntry,
        release: &ReleaseId,
    ) -> Option<&mut ReleaseSummary> {
        match self.releases.get_mut(release) {
            Some(summary) => {
                summary.last_change = entry.ts;
                Some(summary)
            }
            None => {
                self.stray.push(StrayEvent {
                    index,
                    release: release.clone(),
                    event: entry.event.name(),
                });
                None
            }
        }
    }

    fn set(&mut self, index: usize, entry: &JournalEntry, release: &ReleaseId, to: ReleaseState) {
        if let Some(summary) = self.touch(index, entry, release) {
            summary.state = to;
        }
    }

    /// The state of `id`, or `None` when the journal does not know it.
    pub fn state(&self, id: &ReleaseId) -> Option<ReleaseState> {
        self.releases.get(id).map(|summary| summary.state)
    }

    /// Everything the journal says about `id`.
    pub fn get(&self, id: &ReleaseId) -> Option<&ReleaseSummary> {
        self.releases.get(id)
    }

    /// Every release, oldest first in deploy order.
    pub fn releases(&self) -> Vec<ReleaseSummary> {
        self.order
            .iter()
            .map(|id| self.releases[id].clone())
            .collect()
    }

    /// Release ids in deploy order, oldest first.
    pub fn deploy_order(&self) -> &[ReleaseId] {
        &self.order
    }

    /// Whether the journal knows `id`, in any state including Pruned. Pass this to
    /// [`ReleaseId::generate`] so that no id is ever reused.
    pub fn contains(&self, id: &ReleaseId) -> bool {
        self.releases.contains_key(id)
    }

    /// A rollback that wrote `rollback_started` and nothing after it (it was killed):
    /// `(from, to)`.
    pub fn interrupted_rollback(&self) -> Option<(&ReleaseId, &ReleaseId)> {
        self.pending_rollback.as_ref().map(|(from, to)| (from, to))
    }

    /// Reads an interrupted rollback against `readlink current` before it is written down:
    /// when `current` is its target, the release it left is Bad, as `rollback_interrupted`
    /// with `switched` will record.
    pub fn settle_interrupted_rollback(&mut self, current: Option<&ReleaseId>) {
        if let Some((from, to)) = self.pending_rollback.clone() {
            if current == Some(&to) {
                if let Some(summary) = self.releases.get_mut(&from) {
                    summary.state = ReleaseState::Bad;
                }
            }
        }
    }

    /// Events that named a release the journal had not introduced; the engine should warn.
    pub fn stray_events(&self) -> &[StrayEvent] {
        &self.stray
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn id(s: &str) -> ReleaseId {
        ReleaseId::parse(s).unwrap()
    }

    fn entries(events: Vec<JournalEvent>) -> Vec<JournalEntry> {
        events
            .into_iter()
            .enumerate()
            .map(|(second, event)| JournalEntry {
                ts: Utc
                    .with_ymd_and_hms(2026, 11, 26, 16, 0, u32::try_from(second).unwrap())
                    .unwrap(),
                who: "alice".into(),
                event,
            })
            .collect()
    }

    fn started(release: &str) -> JournalEvent {
        JournalEvent::DeployStarted {
            release: id(release),
            commit: Some(format!("commit-{release}")),
            branch: Some("main".into()),
            host: "web1".into(),
            dirty: false,
        }
    }

    fn prepared(release: &str) -> JournalEvent {
        JournalEvent::ReleasePrepared {
            release: id(release),
            dep_key: Some("k1".into()),
        }
    }

    fn succeeded(release: &str) -> JournalEvent {
        JournalEvent::DeploySucceeded {
            release: id(release),
        }
    }

    fn state(history: &History, release: &str) -> Option<ReleaseState> {
        history.state(&id(release))
    }

    #[test]
    fn a_deploy_goes_building_prepared_good() {
        let mut events = vec![started("a")];
        assert_eq!(
            state(&History::from_entries(&entries(events.clone())), "a"),
            Some(ReleaseState::Building)
        );
        events.push(prepared("a"));
        assert_eq!(
            state(&History::from_entries(&entries(events.clone())), "a"),
            Some(ReleaseState::Prepared)
        );
        events.push(JournalEvent::Switched {
            release: id("a"),
            from: None,
        });
        let history = History::from_entries(&entries(events.clone()));
        assert_eq!(state(&history, "a"), Some(ReleaseState::Prepared));
        assert!(history.get(&id("a")).unwrap().switched);
        events.push(succeeded("a"));
        assert_eq!(
            state(&History::from_entries(&entries(events)), "a"),
            Some(ReleaseState::Good)
        );
    }

    #[test]
    fn failures_rollbacks_adoption_and_pruning_set_states() {
        let history = History::from_entries(&entries(vec![
            JournalEvent::Adopted { release: id("old") },
            started("a"),
            prepared("a"),
            succeeded("a"),
            started("b"),
            JournalEvent::DeployFailed {
                release: id("b"),
                stage: "prepare".into(),
                reason: "pip".into(),
                rolled_back_to: None,
            },
            started("c"),
            prepared("c"),
            succeeded("c"),
            JournalEvent::RolledBack {
                from: id("c"),
                to: id("a"),
                reason: "manual".into(),
            },
            JournalEvent::RollbackFailed {
                from: id("a"),
                to: id("old"),
                reason: "unhealthy".into(),
            },
            JournalEvent::Pruned { release: id("b") },
        ]));
        assert_eq!(state(&history, "old"), Some(ReleaseState::Bad));
        assert_eq!(state(&history, "a"), Some(ReleaseState::Good));
        assert_eq!(state(&history, "b"), Some(ReleaseState::Pruned));
        assert_eq!(state(&history, "c"), Some(ReleaseState::Bad));
        assert_eq!(state(&history, "d"), None);
        assert!(history.contains(&id("b")));
        assert!(!history.contains(&id("d")));
    }

    #[test]
    fn a_rollback_to_a_bad_release_makes_it_good_and_rolling_forward_judges_nothing() {
        let history = History::from_entries(&entries(vec![
            started("a"),
            prepared("a"),
            succeeded("a"),
            started("b"),
            prepared("b"),
            succeeded("b"),
            JournalEvent::RolledBack {
                from: id("b"),
                to: id("a"),
                reason: "r".into(),
            },
            JournalEvent::RolledBack {
                from: id("a"),
                to: id("b"),
                reason: "r".into(),
            },
        ]));
        // b was left for a, which is older: b is bad, until the explicit return makes it good.
        // a was left for b, which is newer: a roll forward, no verdict on a.
        assert_eq!(state(&history, "a"), Some(ReleaseState::Good));
        assert_eq!(state(&history, "b"), Some(ReleaseState::Good));
    }

    #[test]
    fn marked_good_clears_only_a_bad_release() {
        let history = History::from_entries(&entries(vec![
            started("a"),
            prepared("a"),
            succeeded("a"),
            started("b"),
            JournalEvent::DeployFailed {
                release: id("b"),
                stage: "health".into(),
                reason: "r".into(),
                rolled_back_to: None,
            },
            started("c"),
            prepared("c"),
            succeeded("c"),
            JournalEvent::RolledBack {
                from: id("c"),
                to: id("a"),
                reason: "r".into(),
            },
            JournalEvent::MarkedGood { release: id("c") },
            JournalEvent::MarkedGood { release: id("b") },
        ]));
        assert_eq!(state(&history, "c"), Some(ReleaseState::Good));
        assert_eq!(state(&history, "b"), Some(ReleaseState::Failed));
        assert_eq!(
            history.check_mark_good(&id("b")).unwrap_err().to_string(),
            "release b is failed, not bad: its deploy failed and it never passed a health check; \
             deploy it again instead"
        );
        assert_eq!(
            history.check_mark_good(&id("zz")).unwrap_err(),
            NotMarkable::Unknown(id("zz"))
        );
    }

    #[test]
    fn releases_come_in_deploy_order_with_their_details() {
        let history = History::from_entries(&entries(vec![
            started("zzz"),
            JournalEvent::Adopted { release: id("aaa") },
            prepared("zzz"),
            succeeded("zzz"),
        ]));
        let releases = history.releases();
        let ids: Vec<&str> = releases.iter().map(|r| r.id.as_str()).collect();
        assert_eq!(ids, ["zzz", "aaa"]);
        let zzz = &releases[0];
        assert_eq!(zzz.state, ReleaseState::Good);
        assert_eq!(zzz.commit.as_deref(), Some("commit-zzz"));
        assert_eq!(zzz.branch.as_deref(), Some("main"));
        assert_eq!(zzz.host.as_deref(), Some("web1"));
        assert_eq!(zzz.dep_key.as_deref(), Some("k1"));
        assert_eq!(zzz.who, "alice");
        assert_eq!(zzz.started.format("%S").to_string(), "00");
        assert_eq!(zzz.last_change.format("%S").to_string(), "03");
        assert_eq!(releases[1].host, None);
    }

    #[test]
    fn events_about_unintroduced_releases_are_stray() {
        let history = History::from_entries(&entries(vec![started("a"), succeeded("ghost")]));
        assert!(!history.contains(&id("ghost")));
        let stray = history.stray_events();
        assert_eq!(stray.len(), 1);
        assert_eq!(
            stray[0].to_string(),
            "journal entry 2 (deploy_succeeded) names release ghost, which no deploy_started or \
             adopted entry introduced before it; ignored"
        );
    }

    #[test]
    fn a_rollback_killed_after_its_switch_leaves_the_release_it_left_bad() {
        let rollback_started = JournalEvent::RollbackStarted {
            from: id("20261126T000002Z"),
            to: id("20261126T000001Z"),
        };
        let mut events = vec![
            started("20261126T000001Z"),
            succeeded("20261126T000001Z"),
            started("20261126T000002Z"),
            succeeded("20261126T000002Z"),
            rollback_started,
        ];
        let mut history = History::from_entries(&entries(events.clone()));
        assert!(history.interrupted_rollback().is_some());
        // Killed before the switch: current is still the release it would have left.
        history.settle_interrupted_rollback(Some(&id("20261126T000002Z")));
        assert_eq!(
            state(&history, "20261126T000002Z"),
            Some(ReleaseState::Good)
        );
        // Killed after it: current is the target.
        history.settle_interrupted_rollback(Some(&id("20261126T000001Z")));
        assert_eq!(state(&history, "20261126T000002Z"), Some(ReleaseState::Bad));

        events.push(JournalEvent::RollbackInterrupted {
            from: id("20261126T000002Z"),
            to: id("20261126T000001Z"),
            switched: true,
        });
        let history = History::from_entries(&entries(events));
        assert!(history.interrupted_rollback().is_none());
        assert_eq!(state(&history, "20261126T000002Z"), Some(ReleaseState::Bad));
        assert_eq!(
            state(&history, "20261126T000001Z"),
            Some(ReleaseState::Good)
        );
    }

    #[test]
    fn state_names_are_lowercase_in_json_and_messages() {
        assert_eq!(
            serde_json::to_string(&ReleaseState::Good).unwrap(),
            "\"good\""
        );
        assert_eq!(ReleaseState::Building.to_string(), "building");
    }
}
