use std::collections::BTreeSet;

use crate::{History, ReleaseId, ReleaseState};

const HINT: &str = "`hoist rollback --to <id>` picks one explicitly";

/// Why there is nothing to roll back to, or why an explicit target is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NoRollbackTarget {
    /// `current` is known and no good release before it, in deploy order, is on disk.
    #[error(
        "no good release before {current}{}; {HINT}",
        removed_note(*.good_but_removed)
    )]
    NoneBefore {
        /// The release `current` points at.
        current: ReleaseId,
        /// Good releases before it whose directories are gone.
        good_but_removed: usize,
    },
    /// `current` is missing or unknown to the journal, and no other good release is on disk.
    #[error("{}no good release on this host to roll back to; {HINT}", current_note(.current.as_ref()))]
    NoGoodRelease {
        /// What `current` points at, when it exists.
        current: Option<ReleaseId>,
    },
    /// The explicit target is what `current` already points at.
    #[error("release {0} is already current; nothing to roll back")]
    IsCurrent(ReleaseId),
    /// The explicit target is not in the journal.
    #[error(
        "release {0} is not in this host's journal (.hoist/journal.jsonl); pick a release it lists"
    )]
    Unknown(ReleaseId),
    /// The explicit target's directory is not on the host.
    #[error("release {0} is no longer on this host: its directory under releases/ is gone")]
    Missing(ReleaseId),
    /// The explicit target's state forbids switching to it.
    #[error("release {id} cannot be rolled back to: {}", refusal(*.state))]
    NotUsable {
        /// The refused release.
        id: ReleaseId,
        /// Its state.
        state: ReleaseState,
    },
}

fn removed_note(count: usize) -> String {
    match count {
        0 => String::new(),
        1 => " left on this host (1 good one before it was removed)".to_owned(),
        n => format!(" left on this host ({n} good ones before it were removed)"),
    }
}

fn current_note(current: Option<&ReleaseId>) -> String {
    match current {
        Some(id) => format!("`current` points at {id}, which the journal does not know, and "),
        None => String::new(),
    }
}

fn refusal(state: ReleaseState) -> &'static str {
    match state {
        ReleaseState::Building => "it never finished building",
        ReleaseState::Failed => "its deploy failed",
        ReleaseState::Prepared => {
            "it was prepared but never passed a health check; deploy it instead"
        }
        ReleaseState::Pruned => "it was pruned",
        ReleaseState::Good | ReleaseState::Bad => "it is usable",
    }
}

/// Where `hoist rollback` goes (invariant 3): the last GOOD release, in deploy order, that comes
/// before `current`, is not `current` and exists on disk.
///
/// `current` is what `readlink current` says and `existing` the release directories on the host;
/// directory order and mtimes play no part. When `current` is `None` or unknown to the journal,
/// the target is the last GOOD existing release that is not `current`. A rollback marks the
/// release it leaves BAD, so rolling back twice goes back two good releases.
pub fn rollback_target(
    history: &History,
    current: Option<&ReleaseId>,
    existing: &BTreeSet<ReleaseId>,
) -> Result<ReleaseId, NoRollbackTarget> {
    let order = history.deploy_order();
    let candidates = match current.and_then(|c| order.iter().position(|id| id == c)) {
        Some(position) => &order[..position],
        None => order,
    };
    let is_good = |id: &&ReleaseId| history.state(id) == Some(ReleaseState::Good);
    let target = candidates
        .iter()
        .rev()
        .filter(is_good)
        .find(|id| Some(*id) != current && existing.contains(*id));
    if let Some(target) = target {
        return Ok(target.clone());
    }
    match current.filter(|c| history.contains(c)) {
        Some(current) => Err(NoRollbackTarget::NoneBefore {
            current: current.clone(),
            good_but_removed: candidates.iter().filter(is_good).count(),
        }),
        None => Err(NoRollbackTarget::NoGoodRelease {
            current: current.cloned(),
        }),
    }
}

/// Checks the target of `hoist rollback --to <id>`. Refuses `current`, releases unknown to the
/// journal, releases missing from disk, and Building, Prepared, Failed and Pruned ones. Good and
/// Bad releases are allowed: naming one is an explicit choice.
pub fn check_explicit_target(
    history: &History,
    current: Option<&ReleaseId>,
    existing: &BTreeSet<ReleaseId>,
    to: &ReleaseId,
) -> Result<(), NoRollbackTarget> {
    if current == Some(to) {
        return Err(NoRollbackTarget::IsCurrent(to.clone()));
    }
    let Some(state) = history.state(to) else {
        return Err(NoRollbackTarget::Unknown(to.clone()));
    };
    if !matches!(state, ReleaseState::Good | ReleaseState::Bad) {
        return Err(NoRollbackTarget::NotUsable {
            id: to.clone(),
            state,
        });
    }
    if !existing.contains(to) {
        return Err(NoRollbackTarget::Missing(to.clone()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{JournalEntry, JournalEvent};
    use chrono::{TimeZone, Utc};

    fn id(s: &str) -> ReleaseId {
        ReleaseId::parse(s).unwrap()
    }

    fn ids(list: &[&str]) -> BTreeSet<ReleaseId> {
        list.iter().map(|s| id(s)).collect()
    }

    /// A journal written from a compact script: `+a` deployed fine, `!a` failed, `~a` building,
    /// `p:a` prepared only, `=a` adopted, `a>b` rolled back from a to b, `a>!b` rollback to b
    /// failed, `-a` pruned.
    fn history(script: &str) -> History {
        let mut events = Vec::new();
        let start = |r: &str| JournalEvent::DeployStarted {
            release: id(r),
            commit: None,
            branch: None,
            host: "web1".into(),
            dirty: false,
        };
        for word in script.split_whitespace() {
            if let Some((from, to)) = word.split_once(">!") {
                events.push(JournalEvent::RollbackFailed {
                    from: id(from),
                    to: id(to),
                    reason: "unhealthy".into(),
                });
            } else if let Some((from, to)) = word.split_once('>') {
                events.push(JournalEvent::RolledBack {
                    from: id(from),
                    to: id(to),
                    reason: "manual".into(),
                });
            } else if let Some(r) = word.strip_prefix("p:") {
                events.push(start(r));
                events.push(JournalEvent::ReleasePrepared {
                    release: id(r),
                    dep_key: None,
                });
            } else {
                let (sigil, r) = word.split_at(1);
                match sigil {
                    "+" => {
                        events.push(start(r));
                        events.push(JournalEvent::DeploySucceeded { release: id(r) });
                    }
                    "!" => {
                        events.push(start(r));
                        events.push(JournalEvent::DeployFailed {
                            release: id(r),
                            stage: "health".into(),
                            reason: "502".into(),
                            rolled_back_to: None,
                        });
                    }
                    "~" => events.push(start(r)),
                    "=" => events.push(JournalEvent::Adopted { release: id(r) }),
                    "-" => events.push(JournalEvent::Pruned { release: id(r) }),
                    _ => panic!("unknown script word {word}"),
                }
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

    fn target(script: &str, current: Option<&str>, existing: &[&str]) -> Result<String, String> {
        let current = current.map(id);
        rollback_target(&history(script), current.as_ref(), &ids(existing))
            .map(|target| target.to_string())
            .map_err(|e| e.to_string())
    }

    #[test]
    fn goes_to_the_last_good_release_before_current() {
        assert_eq!(
            target("+a +b +c", Some("c"), &["a", "b", "c"]),
            Ok("b".into())
        );
    }

    #[test]
    fn skips_failed_unfinished_bad_and_missing_releases() {
        assert_eq!(
            target("+a +b !c ~d p:e", Some("b"), &["a", "b", "c", "d", "e"]),
            Ok("a".into())
        );
        assert_eq!(
            target(
                "+a +b !x ~y p:z +c",
                Some("c"),
                &["a", "b", "x", "y", "z", "c"]
            ),
            Ok("b".into())
        );
        assert_eq!(target("+a +b +c", Some("c"), &["a", "c"]), Ok("a".into()));
    }

    #[test]
    fn rolling_back_twice_goes_back_two_good_releases() {
        let existing = ["a", "b", "c"];
        assert_eq!(target("+a +b +c c>b", Some("b"), &existing), Ok("a".into()));
        assert_eq!(
            target("+a +b +c c>b b>a", Some("a"), &existing),
            Err("no good release before a; `hoist rollback --to <id>` picks one explicitly".into())
        );
    }

    #[test]
    fn does_not_go_forward_past_current() {
        // After `rollback --to a`, the newer good b is not a rollback target from a.
        assert_eq!(
            target("+a +b +c c>a", Some("a"), &["a", "b", "c"]),
            Err("no good release before a; `hoist rollback --to <id>` picks one explicitly".into())
        );
    }

    #[test]
    fn a_failed_rollback_target_is_not_offered_again() {
        assert_eq!(
            target("+a +b +c c>!b", Some("c"), &["a", "b", "c"]),
            Ok("a".into())
        );
    }

    #[test]
    fn adopted_builds_are_targets() {
        assert_eq!(
            target("=old1 =old2 +a", Some("a"), &["old1", "old2", "a"]),
            Ok("old2".into())
        );
    }

    #[test]
    fn current_is_taken_from_readlink_not_from_the_newest_release() {
        // The journal's newest good release is c, but `current` says b (someone switched by hand).
        assert_eq!(
            target("+a +b +c", Some("b"), &["a", "b", "c"]),
            Ok("a".into())
        );
    }

    #[test]
    fn without_a_known_current_takes_the_last_good_existing_release() {
        assert_eq!(target("+a +b !c", None, &["a", "b", "c"]), Ok("b".into()));
        assert_eq!(
            target("+a +b", Some("handmade"), &["a", "b", "handmade"]),
            Ok("b".into())
        );
        assert_eq!(
            target("!a", Some("handmade"), &["a", "handmade"]),
            Err(
                "`current` points at handmade, which the journal does not know, and no good \
                 release on this host to roll back to; `hoist rollback --to <id>` picks one \
                 explicitly"
                    .into()
            )
        );
        assert_eq!(
            target("", None, &[]),
            Err(
                "no good release on this host to roll back to; `hoist rollback --to <id>` picks \
                 one explicitly"
                    .into()
            )
        );
    }

    #[test]
    fn says_when_good_releases_were_removed_from_disk() {
        assert_eq!(
            target("+a +b +c", Some("c"), &["c"]),
            Err(
                "no good release before c left on this host (2 good ones before it were \
                 removed); `hoist rollback --to <id>` picks one explicitly"
                    .into()
            )
        );
        assert_eq!(
            target("+a -a +c", Some("c"), &["c"]),
            Err("no good release before c; `hoist rollback --to <id>` picks one explicitly".into())
        );
    }

    fn explicit(script: &str, current: &str, existing: &[&str], to: &str) -> Result<(), String> {
        check_explicit_target(
            &history(script),
            Some(&id(current)),
            &ids(existing),
            &id(to),
        )
        .map_err(|e| e.to_string())
    }

    #[test]
    fn an_explicit_target_may_be_good_or_bad() {
        let script = "+a +b +c c>b";
        let all = ["a", "b", "c"];
        assert_eq!(explicit(script, "b", &all, "a"), Ok(()));
        assert_eq!(explicit(script, "b", &all, "c"), Ok(()));
    }

    #[test]
    fn an_explicit_target_is_refused_with_a_reason() {
        let script = "+a !f ~u p:p +x -x +b";
        let all = ["a", "f", "u", "p", "b", "x", "stray"];
        assert_eq!(
            explicit(script, "b", &all, "b"),
            Err("release b is already current; nothing to roll back".into())
        );
        assert_eq!(
            explicit(script, "b", &all, "stray"),
            Err(
                "release stray is not in this host's journal (.hoist/journal.jsonl); pick a \
                 release it lists"
                    .into()
            )
        );
        assert_eq!(
            explicit(script, "b", &["b"], "a"),
            Err(
                "release a is no longer on this host: its directory under releases/ is gone".into()
            )
        );
        assert_eq!(
            explicit(script, "b", &all, "f"),
            Err("release f cannot be rolled back to: its deploy failed".into())
        );
        assert_eq!(
            explicit(script, "b", &all, "u"),
            Err("release u cannot be rolled back to: it never finished building".into())
        );
        assert_eq!(
            explicit(script, "b", &all, "p"),
            Err(
                "release p cannot be rolled back to: it was prepared but never passed a health \
                 check; deploy it instead"
                    .into()
            )
        );
        assert_eq!(
            explicit(script, "b", &all, "x"),
            Err("release x cannot be rolled back to: it was pruned".into())
        );
    }
}
