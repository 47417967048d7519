//! `hoist deploy` across a fleet (one host or many): lock every host, plan once, prepare
//! everywhere, and only when every host is ready switch — all at once, rolling or canary —
//! restart and verify. A failure before the switch leaves every host on its live release; a
//! failure after it switches back the hosts already switched (invariants 1, 5, 6, 8).

use std::time::{Duration, Instant};

use hoist_config::Config;
use hoist_release::{JournalEvent, ReleaseId, ReleaseState};
use hoist_transport::UploadStats;

use crate::activate::{activate, describe_back_result, switch_back};
use crate::event::{EventSink, Step, Stepper};
use crate::host::{Fleet, Host};
use crate::lock::{self, HeldLock, LockRequest};
use crate::outcome::{HostOutcome, HostResult};
use crate::plan::{make_plan, read_states, DeployPlan};
use crate::prepare::{prepare_host, run_hook, Prepared};
use crate::record::Recorder;
use crate::{fault, DeployError, FailureKind};

/// What the user asked for.
#[derive(Debug, Clone)]
pub struct DeployOptions {
    /// Recorded in the journal, the lock and RELEASE.json.
    pub who: String,
    /// Ship this commit's tree instead of the working directory.
    pub git_ref: Option<String>,
    /// How long to wait for another deploy's lock.
    pub lock_wait: Duration,
    /// The command line, recorded in the lock.
    pub command: String,
    /// Switch back the hosts already switched when a later switch, restart or health check
    /// fails (the default).
    pub rollback_on_failure: bool,
}

/// What a successful deploy did.
#[derive(Debug, Clone)]
pub struct DeployReport {
    pub release: ReleaseId,
    pub commit: Option<String>,
    pub hosts: Vec<HostOutcome>,
    /// Per host, in fleet order.
    pub uploads: Vec<UploadStats>,
    pub env_reused: Vec<bool>,
    pub dep_keys: Vec<String>,
    pub pruned: Vec<Vec<ReleaseId>>,
    pub elapsed: Duration,
}

/// Takes the lock on every host, or none: on any failure the locks taken are released.
pub(crate) fn lock_all(
    fleet: &Fleet,
    who: &str,
    command: &str,
    wait: Duration,
    events: EventSink<'_>,
) -> Result<Vec<HeldLock>, DeployError> {
    let results = fleet.each(|_, host| {
        let step = Stepper {
            host: &host.name,
            events,
        };
        step.start(Step::Lock);
        let r = lock::acquire(
            host.t(),
            &host.layout,
            &LockRequest {
                who,
                command,
                release: None,
                message: None,
                wait,
                pid: std::process::id(),
            },
            events,
        );
        match &r {
            Ok(_) => step.done(Step::Lock, None),
            Err(e) => step.fail(Step::Lock, e),
        }
        r
    });
    let mut held = Vec::new();
    let mut first_error: Option<DeployError> = None;
    for r in results {
        match r {
            Ok(l) => held.push(l),
            Err(e) => {
                if first_error
                    .as_ref()
                    .is_none_or(|f| f.kind != FailureKind::LockHeld)
                {
                    first_error = Some(e);
                }
            }
        }
    }
    match first_error {
        None => Ok(held),
        Some(e) => {
            unlock_all(fleet, held, events);
            Err(e)
        }
    }
}

pub(crate) fn unlock_all(fleet: &Fleet, held: Vec<HeldLock>, events: EventSink<'_>) {
    for (host, lock) in fleet.hosts.iter().zip(held) {
        let step = Stepper {
            host: &host.name,
            events,
        };
        step.start(Step::Unlock);
        match lock.release(host.t()) {
            Ok(()) => step.done(Step::Unlock, None),
            Err(e) if e.kind == FailureKind::LockHeld => {
                step.warn(format!("{e}; left it to its holder"));
            }
            Err(e) => step.warn(format!(
                "could not remove the lock: {e}; `hoist lock release` removes it"
            )),
        }
    }
}

/// Deploys to every host of `fleet`. On failure the error's kind says whether every host still
/// serves its old release ([`FailureKind::BeforeSwitch`]), switched hosts were switched back
/// ([`FailureKind::RolledBack`]) or were left as they were ([`FailureKind::LeftAsIs`]); its
/// `hosts` say where each host stands.
pub fn deploy(
    config: &Config,
    fleet: &Fleet,
    opts: &DeployOptions,
    events: EventSink<'_>,
) -> Result<DeployReport, DeployError> {
    // Refuse a root that cannot be a deploy root before touching anything anywhere.
    read_states(fleet).map_err(DeployError::nothing_switched)?;
    let started = Instant::now();
    let held = lock_all(fleet, &opts.who, &opts.command, opts.lock_wait, events)
        .map_err(DeployError::nothing_switched)?;
    fault::point("deploy:locked");
    let result = lock::while_held(fleet, &held, || {
        deploy_locked(config, fleet, opts, events, started, &held)
    });
    unlock_all(fleet, held, events);
    result
}

/// Fails before the switch when the lock of some host was taken from this deploy.
pub(crate) fn ensure_all_ours(fleet: &Fleet, held: &[HeldLock]) -> Result<(), DeployError> {
    for (host, lock) in fleet.hosts.iter().zip(held) {
        lock.ensure_ours(host.t()).map_err(|e| {
            DeployError::before_switch(e.message)
                .hint("nothing was switched by this deploy; the one holding the lock now goes on")
        })?;
    }
    Ok(())
}

fn deploy_locked(
    config: &Config,
    fleet: &Fleet,
    opts: &DeployOptions,
    events: EventSink<'_>,
    started: Instant,
    held: &[HeldLock],
) -> Result<DeployReport, DeployError> {
    // Whatever fails before the switch (a full disk, a read-only root, a lost connection) left
    // every host serving its old release.
    let (plan, ready) =
        prepare_fleet(config, fleet, opts, events).map_err(DeployError::nothing_switched)?;
    let id = plan.release.clone();

    // A deploy that lost its lock must not switch over the one that holds it now.
    ensure_all_ours(fleet, held).map_err(DeployError::nothing_switched)?;
    activate_fleet(config, fleet, opts, &plan, events)?;
    fault::point("deploy:healthy");

    for (host, hp) in fleet.hosts.iter().zip(&plan.hosts) {
        let rec = Recorder::new(host, &opts.who, &config.app.name);
        rec.journal(JournalEvent::DeploySucceeded {
            release: id.clone(),
        })?;
        rec.write_release_json(&id, &plan, hp, ReleaseState::Good);
    }
    fault::point("deploy:recorded");

    let pruned = fleet.each(|i, host| {
        let step = Stepper {
            host: &host.name,
            events,
        };
        if let Err(e) = held[i].ensure_ours(host.t()) {
            step.warn(format!("not pruning: {e}"));
            return Vec::new();
        }
        let rec = Recorder::new(host, &opts.who, &config.app.name);
        crate::prune::prune(config, host, &rec, &step).unwrap_or_else(|e| {
            step.warn(format!("pruning failed (the deploy itself succeeded): {e}"));
            Vec::new()
        })
    });
    Ok(DeployReport {
        release: id.clone(),
        commit: plan.source.commit.clone(),
        hosts: outcomes(fleet, &plan, |_| (HostResult::Live, None)),
        uploads: ready.iter().map(|p: &Prepared| p.upload).collect(),
        env_reused: ready.iter().map(|p| p.env_reused).collect(),
        dep_keys: plan.hosts.iter().map(|h| h.dep_key.to_string()).collect(),
        pruned,
        elapsed: started.elapsed(),
    })
}

/// Everything before the switch: repairs, the plan, the journal's start, every host prepared,
/// the once-per-deploy hooks. On failure no host has switched.
fn prepare_fleet(
    config: &Config,
    fleet: &Fleet,
    opts: &DeployOptions,
    events: EventSink<'_>,
) -> Result<(DeployPlan, Vec<Prepared>), DeployError> {
    let states = read_states(fleet)?;
    let mut wrote = false;
    for (host, state) in fleet.hosts.iter().zip(&states) {
        let rec = Recorder::new(host, &opts.who, &config.app.name);
        let step = Stepper {
            host: &host.name,
            events,
        };
        wrote |= rec.repair_torn(state, &step)?;
        wrote |= rec.close_interrupted(state, &step)?;
        wrote |= rec.close_interrupted_rollback(state, &step)?;
        // A host deployed the seed's way: its builds become releases on the first deploy.
        if state.entries.is_empty() {
            wrote |= !crate::adopt::adopt_host(host, state, &opts.who, &config.app.name, &step)?
                .is_empty();
        }
    }
    if wrote {
        fault::point("deploy:repaired");
    }
    // What was just recorded must be part of the plan.
    let states = if wrote { read_states(fleet)? } else { states };
    let plan = make_plan(config, fleet, opts, &states)?;
    let id = plan.release.clone();
    for host in &fleet.hosts {
        host.t().create_dir_all(&host.layout.releases())?;
        Recorder::new(host, &opts.who, &config.app.name).journal(JournalEvent::DeployStarted {
            release: id.clone(),
            commit: plan.source.commit.clone(),
            branch: plan.source.branch.clone(),
            host: host.name.clone(),
        })?;
    }
    fault::point("deploy:started");

    // Prepare everywhere; nothing switches anywhere until every host is ready.
    let prepared = fleet.each(|i, host| {
        let step = Stepper {
            host: &host.name,
            events,
        };
        prepare_host(config, host, &plan, &plan.hosts[i], &step)
    });
    let mut ready = Vec::new();
    let mut failures = Vec::new();
    for (i, r) in prepared.into_iter().enumerate() {
        match r {
            Ok(p) => ready.push(p),
            Err((stage, e)) => failures.push((i, stage, e)),
        }
    }
    if !failures.is_empty() {
        return Err(abort_before_switch(config, fleet, opts, &plan, failures));
    }
    // Hooks that run once per deploy (a migration): on the first host, before any switch.
    for hook in config.hooks.iter().filter(|h| h.once) {
        let host = &fleet.hosts[0];
        let step = Stepper {
            host: &host.name,
            events,
        };
        if let Err(e) = run_hook(config, host, &id, hook, &step) {
            return Err(abort_before_switch(
                config,
                fleet,
                opts,
                &plan,
                vec![(0, Step::Hook, e)],
            ));
        }
    }
    fault::point("deploy:once-hooks");
    for (host, hp) in fleet.hosts.iter().zip(&plan.hosts) {
        let rec = Recorder::new(host, &opts.who, &config.app.name);
        rec.write_release_json(&id, &plan, hp, ReleaseState::Prepared);
        rec.journal(JournalEvent::ReleasePrepared {
            release: id.clone(),
            dep_key: Some(hp.dep_key.to_string()),
        })?;
    }
    fault::point("deploy:prepared");
    if crate::cancel::requested() {
        let e = DeployError::before_switch("interrupted (Ctrl-C) before the switch");
        return Err(abort_before_switch(
            config,
            fleet,
            opts,
            &plan,
            vec![(0, Step::Switch, e)],
        ));
    }
    Ok((plan, ready))
}

fn outcomes(
    fleet: &Fleet,
    plan: &DeployPlan,
    result: impl Fn(usize) -> (HostResult, Option<String>),
) -> Vec<HostOutcome> {
    fleet
        .hosts
        .iter()
        .zip(&plan.hosts)
        .enumerate()
        .map(|(i, (host, hp))| {
            let (result, detail) = result(i);
            HostOutcome {
                host: host.name.clone(),
                previous: hp.previous.as_ref().map(ToString::to_string),
                release: plan.release.to_string(),
                result,
                detail,
            }
        })
        .collect()
}

/// Some host could not be prepared: mark the release failed on every host (the others'
/// prepared releases are left unswitched), and say where everything stands.
fn abort_before_switch(
    config: &Config,
    fleet: &Fleet,
    opts: &DeployOptions,
    plan: &DeployPlan,
    failures: Vec<(usize, Step, DeployError)>,
) -> DeployError {
    let failed_names: Vec<&str> = failures
        .iter()
        .map(|(i, ..)| fleet.hosts[*i].name.as_str())
        .collect();
    for (i, (host, hp)) in fleet.hosts.iter().zip(&plan.hosts).enumerate() {
        let rec = Recorder::new(host, &opts.who, &config.app.name);
        let (stage, reason) = match failures.iter().find(|(f, ..)| *f == i) {
            Some((_, stage, e)) => (stage.name().to_string(), e.message.clone()),
            None => (
                "aborted".to_string(),
                format!(
                    "not switched: {} failed to prepare",
                    failed_names.join(", ")
                ),
            ),
        };
        rec.failed(&plan.release, plan, hp, &stage, &reason, None);
    }
    let hosts = outcomes(fleet, plan, |i| {
        match failures.iter().find(|(f, ..)| *f == i) {
            Some((_, stage, _)) => (HostResult::Failed, Some(format!("{} failed", stage.name()))),
            None => (HostResult::NotSwitched, None),
        }
    });
    let (_, _, first) = failures.into_iter().next().expect("at least one failure");
    let serving = if fleet.hosts.len() == 1 {
        format!(
            "nothing was switched: {} still serves {}",
            fleet.hosts[0].name,
            plan.hosts[0]
                .previous
                .as_ref()
                .map_or("nothing (first deploy)".into(), ToString::to_string)
        )
    } else {
        "nothing was switched: every host still serves the release it served before".to_string()
    };
    let mut e = DeployError::before_switch(first.message);
    e.hints = first.hints;
    e.hints.push(serving);
    e.hosts = hosts;
    e
}

/// Switches, restarts and checks the fleet batch by batch. On a failure, switches back every
/// host already switched (unless told not to) and returns the error with the per-host table.
fn activate_fleet(
    config: &Config,
    fleet: &Fleet,
    opts: &DeployOptions,
    plan: &DeployPlan,
    events: EventSink<'_>,
) -> Result<(), DeployError> {
    let id = &plan.release;
    let batches = fleet.activation.batches(fleet.hosts.len());
    let mut switched: Vec<usize> = Vec::new();
    let mut healthy: Vec<usize> = Vec::new();
    for (b, batch) in batches.iter().enumerate() {
        if b > 0 && !fleet.activation.pause().is_zero() {
            std::thread::sleep(fleet.activation.pause());
        }
        let results = fleet.each_of(batch, |_, host| {
            let step = Stepper {
                host: &host.name,
                events,
            };
            switch(config, host, opts, id, plan, &step).map_err(|e| (Step::Switch, e))?;
            Ok::<(), (Step, String)>(())
        });
        let mut failure = None;
        for (&i, r) in batch.iter().zip(results) {
            match r {
                Ok(()) => switched.push(i),
                Err(f) => failure = failure.or(Some((i, f))),
            }
        }
        if failure.is_none() {
            fault::point("deploy:switched");
            let results = fleet.each_of(batch, |_, host| {
                let step = Stepper {
                    host: &host.name,
                    events,
                };
                activate(config, host, id, &step, "deploy:restarted", true)
            });
            for (&i, r) in batch.iter().zip(results) {
                match r {
                    Ok(()) => healthy.push(i),
                    Err(f) => failure = failure.or(Some((i, f))),
                }
            }
        }
        if let Some((i, (failed_step, why))) = failure {
            return Err(after_switch_failure(
                config,
                fleet,
                opts,
                plan,
                events,
                &switched,
                &healthy,
                i,
                failed_step,
                &why,
            ));
        }
    }
    Ok(())
}

fn switch(
    config: &Config,
    host: &Host,
    opts: &DeployOptions,
    id: &ReleaseId,
    plan: &DeployPlan,
    step: &Stepper<'_>,
) -> Result<(), String> {
    let layout = &host.layout;
    step.start(Step::Switch);
    let since = Instant::now();
    if let Err(e) = host
        .t()
        .switch_symlink(&layout.current(), &layout.current_target(id))
    {
        step.fail(Step::Switch, &e);
        return Err(e.to_string());
    }
    fault::point("deploy:renamed");
    let previous = plan
        .hosts
        .iter()
        .find(|hp| hp.host == host.name)
        .and_then(|hp| hp.previous.clone());
    Recorder::new(host, &opts.who, &config.app.name)
        .journal(JournalEvent::Switched {
            release: id.clone(),
            from: previous,
        })
        .map_err(|e| e.to_string())?;
    step.timed(
        Step::Switch,
        since,
        format!(
            "{} -> {}",
            layout.current().display(),
            layout.current_target(id).display()
        ),
    );
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn after_switch_failure(
    config: &Config,
    fleet: &Fleet,
    opts: &DeployOptions,
    plan: &DeployPlan,
    events: EventSink<'_>,
    switched: &[usize],
    healthy: &[usize],
    failed_host: usize,
    failed_step: Step,
    why: &str,
) -> DeployError {
    let id = &plan.release;
    let failed_name = fleet.hosts[failed_host].name.clone();
    let headline = format!(
        "{} failed on {failed_name} after the switch: {why}",
        failed_step.name()
    );
    let mut results: Vec<(HostResult, Option<String>)> =
        vec![(HostResult::NotSwitched, None); fleet.hosts.len()];
    if opts.rollback_on_failure {
        let back = fleet.each_of(switched, |i, host| {
            let step = Stepper {
                host: &host.name,
                events,
            };
            let prev = plan.hosts[i].previous.as_ref();
            switch_back(config, host, prev, &step, "deploy:switched-back")
        });
        for (&i, row) in switched.iter().zip(back) {
            results[i] = row;
        }
    } else {
        for &i in switched {
            results[i] = if healthy.contains(&i) {
                (HostResult::LeftSwitched, Some("healthy".into()))
            } else {
                (HostResult::LeftSwitched, Some("unhealthy".into()))
            };
        }
    }
    if let Some(r) = results.get_mut(failed_host) {
        if r.1.is_none() {
            r.1 = Some(format!("{} failed", failed_step.name()));
        }
    }
    for (i, (host, hp)) in fleet.hosts.iter().zip(&plan.hosts).enumerate() {
        let rec = Recorder::new(host, &opts.who, &config.app.name);
        let left = results[i].0 == HostResult::LeftSwitched && healthy.contains(&i);
        if left {
            // Left live and healthy, as asked: it is a good release on this host.
            let _ = rec.journal(JournalEvent::DeploySucceeded {
                release: id.clone(),
            });
            rec.write_release_json(id, plan, hp, ReleaseState::Good);
            continue;
        }
        let rolled_back_to = match results[i].0 {
            HostResult::SwitchedBack => hp.previous.as_ref(),
            _ => None,
        };
        let stage = if i == failed_host {
            failed_step.name()
        } else {
            "aborted"
        };
        rec.failed(id, plan, hp, stage, why, rolled_back_to);
    }
    let hosts = outcomes(fleet, plan, |i| results[i].clone());
    let single = fleet.hosts.len() == 1;
    let mut e = if !opts.rollback_on_failure {
        DeployError::new(
            FailureKind::LeftAsIs,
            format!("{headline}\nhosts were left as they were (--no-rollback-on-failure): they may serve different releases"),
        )
    } else if single {
        let host = &fleet.hosts[0];
        match (&plan.hosts[0].previous, results[0].0) {
            (Some(prev), HostResult::SwitchedBack) => DeployError::new(
                FailureKind::RolledBack,
                format!("{headline}\nswitched back: {} serves {prev} again (health check passed); {id} is marked failed", host.name),
            ),
            (Some(prev), result @ (HostResult::SwitchedBackUnhealthy | HostResult::SwitchedBackNotRestarted)) => DeployError::new(
                FailureKind::RolledBack,
                format!(
                    "{headline}\n{}",
                    describe_back_result(
                        prev.as_ref(),
                        result,
                        results[0].1.as_deref().unwrap_or_default()
                    )
                ),
            )
            .hint("look at the app's own logs; `hoist rollback --to <id>` picks another release"),
            (Some(_), result) => DeployError::new(
                FailureKind::RolledBack,
                format!(
                    "{headline}\n{}: {}: {}",
                    host.name,
                    result.describe(),
                    results[0].1.clone().unwrap_or_default()
                ),
            )
            .hint("`hoist status` reads where the host stands once it answers"),
            (None, _) => DeployError::new(FailureKind::RolledBack, headline).hint(format!(
                "this was the first deploy, so there is no earlier release to return to; {} was removed and release {id} is marked failed",
                host.layout.current().display()
            )),
        }
    } else {
        let all_back = results.iter().all(|(r, _)| {
            matches!(
                r,
                HostResult::SwitchedBack | HostResult::NotSwitched | HostResult::CurrentRemoved
            )
        });
        DeployError::new(
            FailureKind::RolledBack,
            if all_back {
                format!("{headline}\nevery switched host was switched back and serves its previous release again; {id} is marked failed")
            } else {
                format!("{headline}\nnot every host could be switched back: see the table")
            },
        )
    };
    e.hosts = hosts;
    e
}
