use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use crate::{rollback_target, History, ReleaseId, ReleaseState};

/// The smallest `keep_releases` hoist accepts: the current release and one to roll back to.
pub const MIN_KEEP_RELEASES: usize = 2;

/// `keep_releases` below [`MIN_KEEP_RELEASES`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "keep_releases = {0} is too low: hoist keeps at least 2 good releases (the current one and one \
     to roll back to); set keep_releases to 2 or more"
)]
pub struct KeepReleasesTooLow(pub usize);

/// Refuses `keep_releases < 2` (invariant 4), for configuration checks before any prune.
pub fn check_keep_releases(keep_releases: usize) -> Result<(), KeepReleasesTooLow> {
    if keep_releases < MIN_KEEP_RELEASES {
        return Err(KeepReleasesTooLow(keep_releases));
    }
    Ok(())
}

/// Why a release directory is kept or removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PruneReason {
    /// Kept: `current` points at it.
    Current,
    /// Kept: the deploy in progress is building it.
    InProgress,
    /// Kept: `hoist rollback` would go to it.
    RollbackTarget,
    /// Kept: one of the newest `keep_releases` good releases.
    NewestGood,
    /// Removed: a good release older than the newest `keep_releases`.
    OlderGood,
    /// Removed: its deploy failed.
    Failed,
    /// Removed: rolled away from, or unhealthy when rolled back to.
    Bad,
    /// Removed: started by a deploy that never finished preparing it.
    Unfinished,
    /// Removed: prepared but never confirmed healthy.
    NeverConfirmed,
    /// Removed: the journal says it was pruned already, yet its directory is still there.
    AlreadyPruned,
}

impl PruneReason {
    /// Whether a release with this reason stays on disk.
    pub fn keeps(self) -> bool {
        matches!(
            self,
            PruneReason::Current
                | PruneReason::InProgress
                | PruneReason::RollbackTarget
                | PruneReason::NewestGood
        )
    }
}

impl fmt::Display for PruneReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PruneReason::Current => "current",
            PruneReason::InProgress => "being deployed",
            PruneReason::RollbackTarget => "rollback target",
            PruneReason::NewestGood => "among the newest good releases",
            PruneReason::OlderGood => "older than the newest good releases kept",
            PruneReason::Failed => "deploy failed",
            PruneReason::Bad => "rolled away from or unhealthy",
            PruneReason::Unfinished => "never finished building",
            PruneReason::NeverConfirmed => "prepared but never confirmed healthy",
            PruneReason::AlreadyPruned => "pruned before, directory still present",
        })
    }
}

/// Which release directories to remove and which to keep. `remove`, `keep` and `unknown`
/// partition the existing directories.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PrunePlan {
    /// Releases to delete, oldest first in deploy order.
    pub remove: Vec<ReleaseId>,
    /// Releases to keep, oldest first in deploy order.
    pub keep: Vec<ReleaseId>,
    /// Directories the journal does not know: left alone, for the engine to warn about.
    pub unknown: Vec<ReleaseId>,
    /// Why each release in `remove` and `keep` is there.
    pub reasons: BTreeMap<ReleaseId, PruneReason>,
}

impl PrunePlan {
    /// Why `id` is kept or removed; `None` for unknown directories.
    pub fn reason(&self, id: &ReleaseId) -> Option<PruneReason> {
        self.reasons.get(id).copied()
    }
}

/// Which release directories to delete (invariant 4).
///
/// Keeps `current`, the rollback target (if any), `in_progress`, and the newest `keep_releases`
/// GOOD releases in deploy order that exist on disk. FAILED, BAD, Building (unless in progress),
/// Prepared-but-never-confirmed and already-pruned releases use no slot and are removed; older
/// GOOD ones are removed. Only ids in `existing` are ever removed, and directories the journal
/// does not know are left alone and listed in [`PrunePlan::unknown`].
///
/// # Panics
///
/// When `keep_releases < 2`; check it first with [`check_keep_releases`].
pub fn prune_plan(
    history: &History,
    current: Option<&ReleaseId>,
    existing: &BTreeSet<ReleaseId>,
    keep_releases: usize,
    in_progress: Option<&ReleaseId>,
) -> PrunePlan {
    if let Err(too_low) = check_keep_releases(keep_releases) {
        panic!("{too_low}");
    }
    let target = rollback_target(history, current, existing).ok();
    let on_disk: Vec<&ReleaseId> = history
        .deploy_order()
        .iter()
        .filter(|id| existing.contains(*id))
        .collect();
    let newest_good: BTreeSet<&ReleaseId> = on_disk
        .iter()
        .rev()
        .filter(|id| history.state(id) == Some(ReleaseState::Good))
        .take(keep_releases)
        .copied()
        .collect();

    let mut plan = PrunePlan::default();
    for id in on_disk {
        let reason = if Some(id) == current {
            PruneReason::Current
        } else if Some(id) == in_progress {
            PruneReason::InProgress
        } else if Some(id) == target.as_ref() {
            PruneReason::RollbackTarget
        } else {
            match history.state(id).expect("ids in deploy order are known") {
                ReleaseState::Good if newest_good.contains(id) => PruneReason::NewestGood,
                ReleaseState::Good => PruneReason::OlderGood,
                ReleaseState::Failed => PruneReason::Failed,
                ReleaseState::Bad => PruneReason::Bad,
                ReleaseState::Building => PruneReason::Unfinished,
                ReleaseState::Prepared => PruneReason::NeverConfirmed,
                ReleaseState::Pruned => PruneReason::AlreadyPruned,
            }
        };
        if reason.keeps() {
            plan.keep.push(id.clone());
        } else {
            plan.remove.push(id.clone());
        }
        plan.reasons.insert(id.clone(), reason);
    }
    plan.unknown = existing
        .iter()
        .filter(|id| !history.contains(id))
        .cloned()
        .collect();
    plan
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{JournalEntry, JournalEvent};
    use chrono::{TimeZone, Utc};

    fn id(s: &str) -> ReleaseId {
        ReleaseId::parse(s).unwrap()
    }

    fn names(list: &[ReleaseId]) -> Vec<&str> {
        list.iter().map(ReleaseId::as_str).collect()
    }

    /// A history from `(release, outcome)` pairs: "good", "failed", "building", "prepared",
    /// "bad" (deployed, then rolled away from to the previous release).
    fn history(deploys: &[(&str, &str)]) -> History {
        let mut events = Vec::new();
        let mut previous: Option<&str> = None;
        for (release, outcome) in deploys {
            events.push(JournalEvent::DeployStarted {
                release: id(release),
                commit: None,
                branch: None,
                host: "web1".into(),
                dirty: false,
            });
            match *outcome {
                "good" | "bad" => {
                    events.push(JournalEvent::DeploySucceeded {
                        release: id(release),
                    });
                }
                "failed" => events.push(JournalEvent::DeployFailed {
                    release: id(release),
                    stage: "health".into(),
                    reason: "502".into(),
                    rolled_back_to: None,
                }),
                "prepared" => events.push(JournalEvent::ReleasePrepared {
                    release: id(release),
                    dep_key: None,
                }),
                "building" => {}
                other => panic!("unknown outcome {other}"),
            }
            if *outcome == "bad" {
                events.push(JournalEvent::RolledBack {
                    from: id(release),
                    to: id(previous.expect("a release before a bad one")),
                    reason: "manual".into(),
                });
            }
            if *outcome == "good" {
                previous = Some(release);
            }
        }
        let ts = Utc.with_ymd_and_hms(2026, 11, 26, 16, 18, 45).unwrap();
        let entries: Vec<JournalEntry> = events
            .into_iter()
            .map(|event| JournalEntry {
                ts,
                who: "alice".into(),
                event,
            })
            .collect();
        History::from_entries(&entries)
    }

    fn all(deploys: &[(&str, &str)]) -> BTreeSet<ReleaseId> {
        deploys.iter().map(|(r, _)| id(r)).collect()
    }

    #[test]
    fn keeps_the_newest_good_releases_and_removes_older_ones() {
        let deploys = [("a", "good"), ("b", "good"), ("c", "good"), ("d", "good")];
        let plan = prune_plan(&history(&deploys), Some(&id("d")), &all(&deploys), 3, None);
        assert_eq!(names(&plan.keep), ["b", "c", "d"]);
        assert_eq!(names(&plan.remove), ["a"]);
        assert_eq!(plan.reason(&id("a")), Some(PruneReason::OlderGood));
        assert_eq!(plan.reason(&id("c")), Some(PruneReason::RollbackTarget));
        assert_eq!(plan.reason(&id("d")), Some(PruneReason::Current));
        assert_eq!(plan.reason(&id("b")), Some(PruneReason::NewestGood));
    }

    #[test]
    fn five_failed_deploys_do_not_push_out_the_previous_good_release() {
        let deploys = [
            ("old", "good"),
            ("prev", "good"),
            ("f1", "failed"),
            ("f2", "failed"),
            ("f3", "failed"),
            ("f4", "failed"),
            ("f5", "failed"),
            ("new", "good"),
        ];
        let history = history(&deploys);
        let existing = all(&deploys);
        let current = id("new");
        let plan = prune_plan(&history, Some(&current), &existing, 3, None);
        assert_eq!(names(&plan.keep), ["old", "prev", "new"]);
        assert_eq!(names(&plan.remove), ["f1", "f2", "f3", "f4", "f5"]);
        assert_eq!(
            crate::rollback_target(&history, Some(&current), &existing),
            Ok(id("prev"))
        );
    }

    #[test]
    fn unfinished_unconfirmed_and_bad_releases_use_no_slot() {
        let deploys = [
            ("a", "good"),
            ("b", "good"),
            ("x", "building"),
            ("y", "prepared"),
            ("z", "bad"),
            ("c", "good"),
        ];
        let plan = prune_plan(&history(&deploys), Some(&id("c")), &all(&deploys), 2, None);
        assert_eq!(names(&plan.keep), ["b", "c"]);
        assert_eq!(names(&plan.remove), ["a", "x", "y", "z"]);
        assert_eq!(plan.reason(&id("x")), Some(PruneReason::Unfinished));
        assert_eq!(plan.reason(&id("y")), Some(PruneReason::NeverConfirmed));
        assert_eq!(plan.reason(&id("z")), Some(PruneReason::Bad));
    }

    #[test]
    fn keeps_the_release_in_progress_and_an_old_current() {
        let deploys = [
            ("a", "good"),
            ("b", "good"),
            ("c", "good"),
            ("d", "good"),
            ("e", "building"),
        ];
        // `current` went back to a by hand: a is kept though it is not among the newest good.
        let plan = prune_plan(
            &history(&deploys),
            Some(&id("a")),
            &all(&deploys),
            2,
            Some(&id("e")),
        );
        assert_eq!(names(&plan.keep), ["a", "c", "d", "e"]);
        assert_eq!(names(&plan.remove), ["b"]);
        assert_eq!(plan.reason(&id("e")), Some(PruneReason::InProgress));
    }

    #[test]
    fn never_removes_what_is_not_on_disk_and_leaves_unknown_dirs_alone() {
        let deploys = [("a", "good"), ("b", "good"), ("c", "good"), ("d", "good")];
        let mut existing: BTreeSet<ReleaseId> = [id("c"), id("d")].into();
        existing.insert(id("handmade"));
        let plan = prune_plan(&history(&deploys), Some(&id("d")), &existing, 2, None);
        assert_eq!(names(&plan.keep), ["c", "d"]);
        assert!(plan.remove.is_empty());
        assert_eq!(names(&plan.unknown), ["handmade"]);
        assert_eq!(plan.reason(&id("handmade")), None);
    }

    #[test]
    fn keep_releases_below_two_is_refused() {
        assert_eq!(
            check_keep_releases(1).unwrap_err().to_string(),
            "keep_releases = 1 is too low: hoist keeps at least 2 good releases (the current one \
             and one to roll back to); set keep_releases to 2 or more"
        );
        assert!(check_keep_releases(0).is_err());
        assert_eq!(check_keep_releases(2), Ok(()));
    }

    #[test]
    #[should_panic(expected = "keep_releases = 1 is too low")]
    fn prune_plan_panics_on_keep_releases_below_two() {
        prune_plan(&History::default(), None, &BTreeSet::new(), 1, None);
    }
}
