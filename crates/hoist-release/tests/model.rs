//! Property tests: random histories of deploys, rollbacks, prunes and adoptions, played by a
//! small interpreter that does what the deploy engine does on one host (journal lines, release
//! directories, the `current` link) and keeps its own model of each release's state. After every
//! step the release logic must agree with the model and keep invariants 3, 4 and 5.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Duration, TimeZone, Utc};
use hoist_release::{
    check_explicit_target, parse_journal, prune_plan, rollback_target, History, Journal,
    JournalEntry, JournalEvent, NoRollbackTarget, ReleaseId, ReleaseState,
};
use proptest::prelude::*;

/// How a deploy ends.
#[derive(Debug, Clone, Copy)]
enum Outcome {
    /// Healthy after the switch.
    Success,
    /// Building failed (rsync, venv, hooks): never switched.
    FailBuild,
    /// Unhealthy after the switch; with `auto_rollback`, switched back to the rollback target.
    FailHealth { auto_rollback: bool },
    /// The process was killed, before or after the release was prepared.
    Killed { after_prepare: bool },
}

/// One thing that happens to the host.
#[derive(Debug, Clone)]
enum Op {
    /// `hoist deploy`, `clock_step` seconds after the previous event (negative: the clock went
    /// back). With `prune_during`, prunes with that `keep_releases` while the release is built.
    Deploy {
        outcome: Outcome,
        clock_step: i64,
        prune_during: Option<usize>,
    },
    /// `hoist rollback`, to the computed target; the target's health check passes or not.
    Rollback { healthy: bool },
    /// `hoist rollback --to <id>`, with the id picked among every name the host has seen.
    RollbackTo { pick: usize, healthy: bool },
    /// `hoist prune` with this `keep_releases`.
    Prune { keep: usize },
    /// `hoist releases mark-good <id>`, with the id picked among every name the host has seen.
    MarkGood { pick: usize },
    /// A build from the old layout taken over.
    Adopt,
    /// A directory under releases/ that hoist did not make.
    StrayDir,
    /// Someone deletes a release directory by hand (never the current one).
    RemoveByHand { pick: usize },
    /// Someone points `current` at another directory by hand.
    SwitchByHand { pick: usize },
}

/// One host as the engine would leave it, plus the model's own view of each release.
struct Host {
    clock: DateTime<Utc>,
    entries: Vec<JournalEntry>,
    existing: BTreeSet<ReleaseId>,
    current: Option<ReleaseId>,
    model_state: BTreeMap<ReleaseId, ReleaseState>,
    model_order: Vec<ReleaseId>,
    issued: BTreeSet<ReleaseId>,
    names_seen: Vec<ReleaseId>,
    counter: usize,
    /// Rollbacks away from a hand-made `current`, which the history reports as stray events.
    expected_stray: usize,
}

fn id(s: &str) -> ReleaseId {
    ReleaseId::parse(s).unwrap()
}

impl Host {
    fn new() -> Host {
        Host {
            clock: Utc.with_ymd_and_hms(2026, 11, 26, 16, 18, 45).unwrap(),
            entries: Vec::new(),
            existing: BTreeSet::new(),
            current: None,
            model_state: BTreeMap::new(),
            model_order: Vec::new(),
            issued: BTreeSet::new(),
            names_seen: Vec::new(),
            counter: 0,
            expected_stray: 0,
        }
    }

    fn history(&self) -> History {
        History::from_entries(&self.entries)
    }

    fn log(&mut self, event: JournalEvent) {
        self.entries.push(JournalEntry {
            ts: self.clock,
            who: "alice".into(),
            event,
        });
    }

    fn set(&mut self, release: &ReleaseId, state: ReleaseState) {
        self.model_state.insert(release.clone(), state);
    }

    fn introduce(&mut self, release: &ReleaseId, state: ReleaseState) {
        assert!(
            self.issued.insert(release.clone()),
            "release id {release} was used twice"
        );
        self.model_order.push(release.clone());
        self.names_seen.push(release.clone());
        self.existing.insert(release.clone());
        self.set(release, state);
    }

    fn run(&mut self, op: &Op) {
        match *op {
            Op::Deploy {
                outcome,
                clock_step,
                prune_during,
            } => self.deploy(outcome, clock_step, prune_during),
            Op::Rollback { healthy } => {
                let Some(from) = self.current.clone() else {
                    return;
                };
                if let Ok(to) = rollback_target(&self.history(), Some(&from), &self.existing) {
                    self.switch_back(&from, &to, healthy);
                }
            }
            Op::RollbackTo { pick, healthy } => {
                let Some(from) = self.current.clone() else {
                    return;
                };
                let to = self.names_seen[pick % self.names_seen.len()].clone();
                let verdict =
                    check_explicit_target(&self.history(), Some(&from), &self.existing, &to);
                let allowed = to != from
                    && self.existing.contains(&to)
                    && matches!(
                        self.model_state.get(&to),
                        Some(ReleaseState::Good | ReleaseState::Bad)
                    );
                assert_eq!(verdict.is_ok(), allowed, "--to {to}: {verdict:?}");
                if verdict.is_ok() {
                    self.switch_back(&from, &to, healthy);
                }
            }
            Op::Prune { keep } => self.prune(keep, None),
            Op::MarkGood { pick } => {
                if self.names_seen.is_empty() {
                    return;
                }
                let release = self.names_seen[pick % self.names_seen.len()].clone();
                let verdict = self.history().check_mark_good(&release);
                let allowed = self.model_state.get(&release) == Some(&ReleaseState::Bad);
                assert_eq!(verdict.is_ok(), allowed, "mark-good {release}: {verdict:?}");
                if allowed {
                    self.log(JournalEvent::MarkedGood {
                        release: release.clone(),
                    });
                    self.set(&release, ReleaseState::Good);
                }
            }
            Op::Adopt => {
                self.counter += 1;
                let release = id(&format!("2018071812{:04}", self.counter));
                self.log(JournalEvent::Adopted {
                    release: release.clone(),
                });
                self.introduce(&release, ReleaseState::Good);
            }
            Op::StrayDir => {
                self.counter += 1;
                let stray = id(&format!("stray-{}", self.counter));
                self.existing.insert(stray.clone());
                self.names_seen.push(stray);
            }
            Op::RemoveByHand { pick } => {
                let candidates: Vec<ReleaseId> = self
                    .existing
                    .iter()
                    .filter(|r| Some(*r) != self.current.as_ref())
                    .cloned()
                    .collect();
                if !candidates.is_empty() {
                    let gone = &candidates[pick % candidates.len()];
                    self.existing.remove(gone);
                }
            }
            Op::SwitchByHand { pick } => {
                if !self.existing.is_empty() {
                    let all: Vec<&ReleaseId> = self.existing.iter().collect();
                    self.current = Some(all[pick % all.len()].clone());
                }
            }
        }
    }

    fn deploy(&mut self, outcome: Outcome, clock_step: i64, prune_during: Option<usize>) {
        self.clock += Duration::seconds(clock_step);
        let history = self.history();
        let existing = &self.existing;
        let release = ReleaseId::generate(self.clock, |candidate| {
            history.contains(candidate) || existing.contains(candidate)
        });
        self.log(JournalEvent::DeployStarted {
            release: release.clone(),
            commit: Some(format!("c{}", self.entries.len())),
            branch: Some("main".into()),
            host: "web1".into(),
            dirty: false,
        });
        self.introduce(&release, ReleaseState::Building);
        if let Some(keep) = prune_during {
            self.prune(keep, Some(&release));
        }
        match outcome {
            Outcome::Killed {
                after_prepare: false,
            } => return,
            Outcome::FailBuild => {
                self.log(JournalEvent::DeployFailed {
                    release: release.clone(),
                    stage: "build".into(),
                    reason: "pip install failed".into(),
                    rolled_back_to: None,
                });
                self.set(&release, ReleaseState::Failed);
                return;
            }
            _ => {}
        }
        self.log(JournalEvent::ReleasePrepared {
            release: release.clone(),
            dep_key: Some("k".into()),
        });
        self.set(&release, ReleaseState::Prepared);
        if let Outcome::Killed {
            after_prepare: true,
        } = outcome
        {
            return;
        }
        self.log(JournalEvent::Switched {
            release: release.clone(),
            from: self.current.clone(),
        });
        self.current = Some(release.clone());
        match outcome {
            Outcome::Success => {
                self.log(JournalEvent::DeploySucceeded {
                    release: release.clone(),
                });
                self.set(&release, ReleaseState::Good);
            }
            Outcome::FailHealth { auto_rollback } => {
                let target = if auto_rollback {
                    rollback_target(&self.history(), Some(&release), &self.existing).ok()
                } else {
                    None
                };
                if let Some(target) = &target {
                    self.current = Some(target.clone());
                }
                self.log(JournalEvent::DeployFailed {
                    release: release.clone(),
                    stage: "health".into(),
                    reason: "GET /health answered 502".into(),
                    rolled_back_to: target,
                });
                self.set(&release, ReleaseState::Failed);
            }
            _ => unreachable!("handled above"),
        }
    }

    fn switch_back(&mut self, from: &ReleaseId, to: &ReleaseId, healthy: bool) {
        if healthy {
            self.log(JournalEvent::RolledBack {
                from: from.clone(),
                to: to.clone(),
                reason: "rollback".into(),
            });
            self.current = Some(to.clone());
            let rank = |r: &ReleaseId| self.model_order.iter().position(|m| m == r);
            let forward = matches!((rank(to), rank(from)), (Some(t), Some(f)) if t > f);
            // Only releases the journal knows change state; a hand-made `current` has none.
            // Rolling forward is no verdict on the release left.
            if !self.model_state.contains_key(from) {
                self.expected_stray += 1;
            } else if !forward {
                self.set(from, ReleaseState::Bad);
            }
            self.set(to, ReleaseState::Good);
        } else {
            self.log(JournalEvent::RollbackFailed {
                from: from.clone(),
                to: to.clone(),
                reason: "unhealthy".into(),
            });
            self.set(to, ReleaseState::Bad);
        }
    }

    fn prune(&mut self, keep: usize, in_progress: Option<&ReleaseId>) {
        let history = self.history();
        let plan = prune_plan(
            &history,
            self.current.as_ref(),
            &self.existing,
            keep,
            in_progress,
        );
        check_prune_plan(self, &history, keep, in_progress);
        for release in plan.remove {
            self.existing.remove(&release);
            self.log(JournalEvent::Pruned {
                release: release.clone(),
            });
            self.set(&release, ReleaseState::Pruned);
        }
    }
}

fn position(history: &History, release: &ReleaseId) -> Option<usize> {
    history.deploy_order().iter().position(|r| r == release)
}

/// Releases a rollback could go to: GOOD, on disk, not current, and before a known current.
fn eligible(host: &Host, history: &History) -> Vec<ReleaseId> {
    let limit = host
        .current
        .as_ref()
        .and_then(|c| position(history, c))
        .unwrap_or(usize::MAX);
    history
        .deploy_order()
        .iter()
        .enumerate()
        .filter(|(i, r)| {
            *i < limit
                && history.state(r) == Some(ReleaseState::Good)
                && host.existing.contains(*r)
                && Some(*r) != host.current.as_ref()
        })
        .map(|(_, r)| r.clone())
        .collect()
}

fn check_rollback_target(host: &Host, history: &History) {
    let target = rollback_target(history, host.current.as_ref(), &host.existing);
    let eligible = eligible(host, history);
    match &target {
        Ok(target) => {
            assert_ne!(Some(target), host.current.as_ref(), "target is current");
            assert_eq!(history.state(target), Some(ReleaseState::Good));
            assert!(host.existing.contains(target), "{target} is not on disk");
            // The latest eligible one: none of the others comes after it.
            assert_eq!(eligible.last(), Some(target));
        }
        Err(NoRollbackTarget::NoneBefore { .. } | NoRollbackTarget::NoGoodRelease { .. }) => {
            assert!(
                eligible.is_empty(),
                "no target found, yet {eligible:?} qualify"
            );
        }
        Err(other) => panic!("rollback_target gave an explicit-target error: {other}"),
    }
}

fn check_prune_plan(host: &Host, history: &History, keep: usize, in_progress: Option<&ReleaseId>) {
    let plan = prune_plan(
        history,
        host.current.as_ref(),
        &host.existing,
        keep,
        in_progress,
    );
    let target = rollback_target(history, host.current.as_ref(), &host.existing).ok();
    // (1) never removes current, the rollback target or the release in progress.
    for protected in [host.current.as_ref(), target.as_ref(), in_progress]
        .into_iter()
        .flatten()
    {
        assert!(!plan.remove.contains(protected), "removes {protected}");
    }
    // remove, keep and unknown partition the directories; only known ones are touched.
    let mut all: Vec<&ReleaseId> = plan
        .remove
        .iter()
        .chain(&plan.keep)
        .chain(&plan.unknown)
        .collect();
    all.sort();
    assert_eq!(all, host.existing.iter().collect::<Vec<_>>());
    for unknown in &plan.unknown {
        assert!(!history.contains(unknown));
    }
    for release in plan.remove.iter().chain(&plan.keep) {
        assert!(history.contains(release));
    }
    let good_on_disk: Vec<&ReleaseId> = history
        .deploy_order()
        .iter()
        .filter(|r| history.state(r) == Some(ReleaseState::Good) && host.existing.contains(*r))
        .collect();
    // (3) keeps at least min(keep, good releases on disk) good ones.
    let good_kept = plan
        .keep
        .iter()
        .filter(|r| history.state(r) == Some(ReleaseState::Good))
        .count();
    assert!(good_kept >= keep.min(good_on_disk.len()));
    // (4) a good release is only removed when `keep` newer good ones stay: failed, bad and
    // unfinished releases never push one out.
    for removed in plan
        .remove
        .iter()
        .filter(|r| history.state(r) == Some(ReleaseState::Good))
    {
        let index = good_on_disk.iter().position(|r| *r == removed).unwrap();
        let newer_good = good_on_disk.len() - index - 1;
        assert!(
            newer_good >= keep,
            "good {removed} removed with {newer_good} newer"
        );
        let newer_kept = good_on_disk[index + 1..]
            .iter()
            .filter(|r| plan.keep.contains(r))
            .count();
        assert!(newer_kept >= keep);
    }
    // And nothing that is not good lingers unless it is protected.
    for kept in &plan.keep {
        let protected = [host.current.as_ref(), target.as_ref(), in_progress].contains(&Some(kept));
        assert!(protected || history.state(kept) == Some(ReleaseState::Good));
    }
}

fn check_host(host: &Host) {
    // (6) the journal round-trips through its text.
    let text = Journal::render(&host.entries);
    assert_eq!(parse_journal(&text).unwrap(), host.entries);
    let history = host.history();
    // The history agrees with the model, release by release and in deploy order.
    assert_eq!(history.deploy_order(), host.model_order.as_slice());
    for (release, state) in &host.model_state {
        assert_eq!(history.state(release), Some(*state), "state of {release}");
    }
    assert_eq!(history.stray_events().len(), host.expected_stray);
    // (2) the rollback target is good, on disk, not current, and the latest such.
    check_rollback_target(host, &history);
    // (1), (3), (4) for several keep_releases.
    for keep in 2..=4 {
        check_prune_plan(host, &history, keep, None);
    }
}

fn outcome() -> impl Strategy<Value = Outcome> {
    prop_oneof![
        4 => Just(Outcome::Success),
        2 => Just(Outcome::FailBuild),
        2 => any::<bool>().prop_map(|auto_rollback| Outcome::FailHealth { auto_rollback }),
        1 => any::<bool>().prop_map(|after_prepare| Outcome::Killed { after_prepare }),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        8 => (outcome(), -3i64..=3, proptest::option::weighted(0.2, 2usize..=4)).prop_map(
            |(outcome, clock_step, prune_during)| Op::Deploy { outcome, clock_step, prune_during }
        ),
        2 => any::<bool>().prop_map(|healthy| Op::Rollback { healthy }),
        2 => (any::<usize>(), any::<bool>())
            .prop_map(|(pick, healthy)| Op::RollbackTo { pick, healthy }),
        2 => (2usize..=5).prop_map(|keep| Op::Prune { keep }),
        1 => any::<usize>().prop_map(|pick| Op::MarkGood { pick }),
        1 => Just(Op::Adopt),
        1 => Just(Op::StrayDir),
        1 => any::<usize>().prop_map(|pick| Op::RemoveByHand { pick }),
        1 => any::<usize>().prop_map(|pick| Op::SwitchByHand { pick }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn random_histories_keep_the_invariants(ops in proptest::collection::vec(op(), 1..40)) {
        let mut host = Host::new();
        for op in &ops {
            host.run(op);
            check_host(&host);
        }
    }
}

fn deploy(outcome: Outcome) -> Op {
    Op::Deploy {
        outcome,
        clock_step: 60,
        prune_during: None,
    }
}

#[test]
fn five_failed_deploys_then_a_good_one_keep_the_previous_good_release() {
    let mut host = Host::new();
    host.run(&deploy(Outcome::Success));
    host.run(&deploy(Outcome::Success));
    let previous_good = host.current.clone().unwrap();
    for auto_rollback in [true, false, true, false, true] {
        host.run(&deploy(Outcome::FailHealth { auto_rollback }));
        check_host(&host);
    }
    host.run(&deploy(Outcome::Success));
    host.run(&Op::Prune { keep: 3 });
    check_host(&host);
    assert!(host.existing.contains(&previous_good));
    let history = host.history();
    assert_eq!(
        rollback_target(&history, host.current.as_ref(), &host.existing),
        Ok(previous_good)
    );
    // All five failed releases were removed; the three good ones remain.
    assert_eq!(host.existing.len(), 3);
}

#[test]
fn deploys_in_the_same_second_or_after_the_clock_went_back_get_new_ids() {
    let mut host = Host::new();
    for clock_step in [0, 0, 0, -1, 1, 0] {
        host.run(&Op::Deploy {
            outcome: Outcome::Success,
            clock_step,
            prune_during: Some(2),
        });
        check_host(&host);
    }
    let names: Vec<&str> = host.model_order.iter().map(ReleaseId::as_str).collect();
    assert_eq!(
        names,
        [
            "20261126T161845Z",
            "20261126T161845Z-2",
            "20261126T161845Z-3",
            "20261126T161844Z",
            "20261126T161845Z-4",
            "20261126T161845Z-5",
        ]
    );
}

#[test]
fn rolling_back_twice_goes_back_two_good_releases() {
    let mut host = Host::new();
    for _ in 0..3 {
        host.run(&deploy(Outcome::Success));
    }
    let order = host.model_order.clone();
    host.run(&Op::Rollback { healthy: true });
    assert_eq!(host.current.as_ref(), Some(&order[1]));
    host.run(&Op::Rollback { healthy: true });
    assert_eq!(host.current.as_ref(), Some(&order[0]));
    check_host(&host);
    assert_eq!(host.history().state(&order[2]), Some(ReleaseState::Bad));
    assert_eq!(host.history().state(&order[1]), Some(ReleaseState::Bad));
}

#[test]
fn rolling_forward_leaves_the_release_it_left_good() {
    let mut host = Host::new();
    for _ in 0..3 {
        host.run(&deploy(Outcome::Success));
    }
    let order = host.model_order.clone();
    host.run(&Op::RollbackTo {
        pick: 0,
        healthy: true,
    });
    assert_eq!(host.current.as_ref(), Some(&order[0]));
    assert_eq!(host.history().state(&order[2]), Some(ReleaseState::Bad));
    // Forward again, to the newest: a choice of release, not a verdict on the one left.
    host.run(&Op::RollbackTo {
        pick: 2,
        healthy: true,
    });
    assert_eq!(host.current.as_ref(), Some(&order[2]));
    let history = host.history();
    for release in &order {
        assert_eq!(
            history.state(release),
            Some(ReleaseState::Good),
            "{release}"
        );
    }
    // So pruning keeps the good releases it has room for and removes none as bad.
    let plan = prune_plan(&history, host.current.as_ref(), &host.existing, 3, None);
    assert!(plan.remove.is_empty(), "{plan:?}");
    check_host(&host);
}

#[test]
fn a_bad_release_marked_good_is_a_rollback_target_again() {
    let mut host = Host::new();
    for _ in 0..3 {
        host.run(&deploy(Outcome::Success));
    }
    let order = host.model_order.clone();
    host.run(&Op::Rollback { healthy: true });
    host.run(&Op::Rollback { healthy: true });
    assert_eq!(host.current.as_ref(), Some(&order[0]));
    let history = host.history();
    assert_eq!(history.state(&order[1]), Some(ReleaseState::Bad));
    assert_eq!(
        history.check_mark_good(&order[0]).unwrap_err().to_string(),
        format!("release {} is good, not bad: nothing to do", order[0])
    );
    host.run(&Op::MarkGood { pick: 1 });
    let history = host.history();
    assert_eq!(history.state(&order[1]), Some(ReleaseState::Good));
    // The newest release is still bad: only the one named was cleared.
    assert_eq!(history.state(&order[2]), Some(ReleaseState::Bad));
    check_host(&host);
}
