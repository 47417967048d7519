//! `hoist deploy` across a fleet (one host or many): lock every host, plan once, prepare
//! everywhere, and only when every host is ready switch — all at once, rolling or canary —
//! restart and verify. A failure before the switch leaves every host on its live release; a
//! failure after it switches back the hosts already switched (invariants 1, 5, 6, 8).

use std::time::{Duration, Instant};

use hoist_config::{Config, HookWhen};
use hoist_release::{JournalEvent, ReleaseId, ReleaseState};
use hoist_transport::UploadStats;
use serde::Serialize;

use crate::activate::{activate, describe_back_result, switch_back};
use crate::app_env;
use crate::event::{EventSink, Step, Stepper};
use crate::hooks;
use crate::host::{Fleet, Host};
use crate::lock::{self, ensure_all_ours, lock_all, unlock_all, HeldLock};
use crate::outcome::{HostOutcome, HostResult};
use crate::plan::{make_plan, read_states, DeployPlan};
use crate::prepare::{prepare_host, Prepared};
use crate::prune::Gates;
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
    /// The tree to ship when the caller collected it already (`hoist deploy` does, while it
    /// connects to the hosts); else it is collected when the deploy makes its plan.
    pub source: Option<std::sync::Arc<crate::SourceTree>>,
}

/// What a successful deploy did.
#[derive(Debug, Clone)]
pub struct DeployReport {
    pub release: ReleaseId,
    pub commit: Option<String>,
    /// One per host, in fleet order.
    pub hosts: Vec<HostReport>,
    pub elapsed: Duration,
}

/// What a successful deploy did on one host.
#[derive(Debug, Clone, Serialize)]
pub struct HostReport {
    /// Where the host stands: its row of the per-host table.
    #[serde(flatten)]
    pub outcome: HostOutcome,
    #[serde(skip)]
    pub upload: UploadStats,
    /// True when the release reused an environment built before (no Python work).
    pub env_reused: bool,
    pub dep_key: String,
    /// The releases pruned after the deploy.
    pub pruned: Vec<ReleaseId>,
}

/// One deploy's inputs, shared by its phases.
struct DeployRun<'a> {
    config: &'a Config,
    fleet: &'a Fleet,
    opts: &'a DeployOptions,
    events: EventSink<'a>,
}

impl DeployRun<'_> {
    fn recorder<'h>(&'h self, host: &'h Host) -> Recorder<'h> {
        Recorder::new(host, &self.opts.who, &self.config.app.name)
    }

    fn stepper<'h>(&'h self, host: &'h Host) -> Stepper<'h> {
        Stepper {
            host: &host.name,
            events: self.events,
        }
    }
}

/// A switch, restart or health check that failed on one host during activation.
struct SwitchFailure<'a> {
    /// Indexes of the hosts switched so far (the failed one included when its switch worked).
    switched: &'a [usize],
    /// Indexes of the switched hosts that passed their health check.
    healthy: &'a [usize],
    /// Index of the host where it failed.
    host: usize,
    step: Step,
    why: String,
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
    let run = DeployRun {
        config,
        fleet,
        opts,
        events,
    };
    let result = lock::while_held(fleet, &held, || run.locked(started, &held));
    unlock_all(fleet, held, events);
    result
}

impl DeployRun<'_> {
    /// The deploy, with every host's lock held.
    fn locked(&self, started: Instant, held: &[HeldLock]) -> Result<DeployReport, DeployError> {
        // Whatever fails before the switch (a full disk, a read-only root, a lost connection) left
        // every host serving its old release.
        let (plan, env) = self.start_fleet().map_err(DeployError::nothing_switched)?;
        // Pruning runs beside the rest of the deploy, off its critical path; the lock is held
        // until both are done. When every process is warm-reloaded, the host's shell is mostly
        // idle while the new workers import: a host's pruning waits for that, so that its
        // commands do not come between the preparation's, the switch's and the reload's.
        let warm = crate::prepare::every_process_warm(self.config);
        let gates = Gates::new(self.fleet.hosts.len(), !warm);
        let plan = &plan;
        std::thread::scope(|scope| {
            let pruning = scope.spawn(|| self.prune_fleet(plan, held, &gates));
            let at_end = gates.open_all_at_end();
            let result = self.started(started, held, plan, &env, &gates);
            drop(at_end);
            let pruned = pruning
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
            result.map(|mut report| {
                for (host, pruned) in report.hosts.iter_mut().zip(pruned) {
                    host.pruned = pruned;
                }
                report
            })
        })
    }

    /// Removes old releases on every host while the deploy of `plan` runs ([`crate::prune`]);
    /// what each host removed. A failure is a warning: it never fails the deploy.
    fn prune_fleet(
        &self,
        plan: &DeployPlan,
        held: &[HeldLock],
        gates: &Gates,
    ) -> Vec<Vec<ReleaseId>> {
        let (config, fleet, opts, events) = (self.config, self.fleet, self.opts, self.events);
        fleet.each(|i, host| {
            gates.wait(i);
            let step = Stepper {
                host: &host.name,
                events,
            };
            if let Err(e) = held[i].ensure_ours(host.transport()) {
                step.warn(format!("not pruning: {e}"));
                return Vec::new();
            }
            let recorder = Recorder::new(host, &opts.who, &config.app.name);
            let deploying = crate::prune::Deploying {
                release: &plan.release,
                dep_key: plan.hosts[i].dep_key.as_str(),
            };
            crate::prune::prune(config, host, &deploying, &recorder, &step).unwrap_or_else(|e| {
                step.warn(format!("pruning failed (it does not fail the deploy): {e}"));
                Vec::new()
            })
        })
    }

    /// The deploy once its start is recorded on every host: prepare, switch, activate, record.
    fn started(
        &self,
        started: Instant,
        held: &[HeldLock],
        plan: &DeployPlan,
        env: &app_env::ResolvedEnv,
        prune_gates: &Gates,
    ) -> Result<DeployReport, DeployError> {
        let (config, fleet, opts, events) = (self.config, self.fleet, self.opts, self.events);
        let ready = self
            .prepare_hosts(plan, env)
            .map_err(DeployError::nothing_switched)?;
        let id = plan.release.clone();

        // A deploy that lost its lock must not switch over the one that holds it now.
        ensure_all_ours(fleet, held).map_err(DeployError::nothing_switched)?;
        self.activate_fleet(plan, prune_gates)?;
        fault::point("deploy:healthy");

        fleet
            .each(|i, host| {
                let recorder = Recorder::new(host, &opts.who, &config.app.name);
                recorder.journal(JournalEvent::DeploySucceeded {
                    release: id.clone(),
                })?;
                recorder.write_release_json(&id, plan, &plan.hosts[i], ReleaseState::Good);
                Ok::<(), DeployError>(())
            })
            .into_iter()
            .collect::<Result<Vec<()>, DeployError>>()?;
        fault::point("deploy:recorded");
        let previous = |i: usize| plan.hosts[i].previous.clone();
        let hook_failures =
            hooks::run_after(config, fleet, &id, HookWhen::AfterSwitch, &previous, events);

        if !hook_failures.is_empty() {
            let mut e = hooks::after_failure(fleet, &id, HookWhen::AfterSwitch, &hook_failures);
            e.hosts = outcomes(fleet, plan, |i| {
                let failed = hook_failures.iter().any(|(host, _)| *host == i);
                (
                    HostResult::Live,
                    failed.then(|| "after-switch hook failed".to_string()),
                )
            });
            return Err(e);
        }
        let hosts = outcomes(fleet, plan, |_| (HostResult::Live, None))
            .into_iter()
            .zip(&ready)
            .zip(&plan.hosts)
            .map(
                |((outcome, prepared), host_plan): ((_, &Prepared), _)| HostReport {
                    outcome,
                    upload: prepared.upload,
                    env_reused: prepared.env_reused,
                    dep_key: host_plan.dep_key.to_string(),
                    pruned: Vec::new(),
                },
            )
            .collect();
        Ok(DeployReport {
            release: id.clone(),
            commit: plan.source.commit.clone(),
            hosts,
            elapsed: started.elapsed(),
        })
    }

    /// The deploy's start: repairs, the plan, the app's `[env]`, the journal's `deploy_started`
    /// on every host. On failure no host has switched.
    fn start_fleet(&self) -> Result<(DeployPlan, app_env::ResolvedEnv), DeployError> {
        let (config, fleet, opts, events) = (self.config, self.fleet, self.opts, self.events);
        let states = read_states(fleet)?;
        // Each host's repairs are its own: done on every host at once.
        let repaired = fleet.each(|i, host| {
            let state = &states[i];
            let recorder = Recorder::new(host, &opts.who, &config.app.name);
            let step = Stepper {
                host: &host.name,
                events,
            };
            let mut wrote = recorder.repair_torn(state, &step)?;
            wrote |= recorder.close_interrupted(state, &step)?;
            wrote |= recorder.close_interrupted_rollback(state, &step)?;
            // A host deployed the seed's way: its builds become releases on the first deploy.
            if state.entries.is_empty() {
                wrote |=
                    !crate::adopt::adopt_host(host, state, &opts.who, &config.app.name, &step)?
                        .is_empty();
            }
            Ok::<bool, DeployError>(wrote)
        });
        let mut wrote = false;
        for r in repaired {
            wrote |= r?;
        }
        if wrote {
            fault::point("deploy:repaired");
        }
        // What was just recorded must be part of the plan.
        let states = if wrote { read_states(fleet)? } else { states };
        let plan = make_plan(config, fleet, opts, &states, true)?;
        let id = plan.release.clone();
        // Every secret is read before anything is written anywhere.
        let env = app_env::resolve(config, &fleet.name, &plan.source.files, &plan.source.dir)?;
        fleet
            .each(|_, host| {
                host.transport().create_dir_all(&host.layout.releases())?;
                Recorder::new(host, &opts.who, &config.app.name).journal(
                    JournalEvent::DeployStarted {
                        release: id.clone(),
                        commit: plan.source.commit.clone(),
                        branch: plan.source.branch.clone(),
                        host: host.name.clone(),
                        dirty: plan.source.dirty,
                    },
                )
            })
            .into_iter()
            .collect::<Result<Vec<()>, DeployError>>()?;
        fault::point("deploy:started");
        Ok((plan, env))
    }

    /// Everything else before the switch: every host prepared, the once-per-deploy hooks, the
    /// releases recorded as prepared. On failure no host has switched.
    fn prepare_hosts(
        &self,
        plan: &DeployPlan,
        env: &app_env::ResolvedEnv,
    ) -> Result<Vec<Prepared>, DeployError> {
        let (config, fleet, opts, events) = (self.config, self.fleet, self.opts, self.events);
        let id = plan.release.clone();
        // Prepare everywhere; nothing switches anywhere until every host is ready.
        let prepared = fleet.each(|i, host| {
            let step = Stepper {
                host: &host.name,
                events,
            };
            prepare_host(config, host, plan, &plan.hosts[i], env, &step)
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
            return Err(self.abort_before_switch(plan, failures));
        }
        // Hooks that run once per deploy (a migration): on the first host, before any switch.
        let first_previous = plan.hosts[0].previous.as_ref();
        for hook in config
            .hooks
            .iter()
            .filter(|h| h.once && hooks::runs(h, HookWhen::BeforeSwitch, first_previous))
        {
            let host = &fleet.hosts[0];
            let step = Stepper {
                host: &host.name,
                events,
            };
            if let Err(e) = hooks::run_hook(config, host, &id, hook, &step) {
                return Err(self.abort_before_switch(plan, vec![(0, Step::Hook, e)]));
            }
        }
        fault::point("deploy:once-hooks");
        fleet
            .each(|i, host| {
                let recorder = Recorder::new(host, &opts.who, &config.app.name);
                recorder.write_release_json(&id, plan, &plan.hosts[i], ReleaseState::Prepared);
                recorder.journal(JournalEvent::ReleasePrepared {
                    release: id.clone(),
                    dep_key: Some(plan.hosts[i].dep_key.to_string()),
                })
            })
            .into_iter()
            .collect::<Result<Vec<()>, DeployError>>()?;
        fault::point("deploy:prepared");
        if crate::cancel::requested() {
            let e = DeployError::before_switch("interrupted (Ctrl-C) before the switch");
            return Err(self.abort_before_switch(plan, vec![(0, Step::Switch, e)]));
        }
        Ok(ready)
    }

    /// Some host could not be prepared: mark the release failed on every host (the others'
    /// prepared releases are left unswitched), and say where everything stands.
    fn abort_before_switch(
        &self,
        plan: &DeployPlan,
        failures: Vec<(usize, Step, DeployError)>,
    ) -> DeployError {
        let fleet = self.fleet;
        let failed_names: Vec<&str> = failures
            .iter()
            .map(|(i, ..)| fleet.hosts[*i].name.as_str())
            .collect();
        for (i, (host, host_plan)) in fleet.hosts.iter().zip(&plan.hosts).enumerate() {
            let recorder = self.recorder(host);
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
            recorder.failed(&plan.release, plan, host_plan, &stage, &reason, None);
        }
        let hosts = outcomes(fleet, plan, |i| {
            match failures.iter().find(|(f, ..)| *f == i) {
                Some((_, stage, _)) => {
                    (HostResult::Failed, Some(format!("{} failed", stage.name())))
                }
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
    fn activate_fleet(&self, plan: &DeployPlan, prune_gates: &Gates) -> Result<(), DeployError> {
        let (config, fleet) = (self.config, self.fleet);
        let id = &plan.release;
        let batches = fleet.rollout.batches(fleet.hosts.len());
        let mut switched: Vec<usize> = Vec::new();
        let mut healthy: Vec<usize> = Vec::new();
        for (b, batch) in batches.iter().enumerate() {
            if b > 0 && !fleet.rollout.pause().is_zero() {
                std::thread::sleep(fleet.rollout.pause());
            }
            let results = fleet.each_of(batch, |_, host| {
                let step = self.stepper(host);
                self.switch(host, id, plan, &step)
                    .map_err(|e| (Step::Switch, e))?;
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
                let results = fleet.each_of(batch, |i, host| {
                    let step = self.stepper(host);
                    let warming = || prune_gates.open(i);
                    let result =
                        activate(config, host, id, &step, "deploy:restarted", true, &warming);
                    prune_gates.open(i);
                    result
                });
                for (&i, r) in batch.iter().zip(results) {
                    match r {
                        Ok(()) => healthy.push(i),
                        Err(f) => failure = failure.or(Some((i, f))),
                    }
                }
            }
            if let Some((host, (step, why))) = failure {
                return Err(self.after_switch_failure(
                    plan,
                    &SwitchFailure {
                        switched: &switched,
                        healthy: &healthy,
                        host,
                        step,
                        why,
                    },
                ));
            }
        }
        Ok(())
    }

    fn switch(
        &self,
        host: &Host,
        id: &ReleaseId,
        plan: &DeployPlan,
        step: &Stepper<'_>,
    ) -> Result<(), String> {
        let layout = &host.layout;
        step.start(Step::Switch);
        let since = Instant::now();
        if let Err(e) = host
            .transport()
            .switch_symlink(&layout.current(), &layout.current_target(id))
        {
            step.fail(Step::Switch, &e);
            return Err(e.to_string());
        }
        fault::point("deploy:renamed");
        let previous = plan
            .hosts
            .iter()
            .find(|host_plan| host_plan.host == host.name)
            .and_then(|host_plan| host_plan.previous.clone());
        self.recorder(host)
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

    /// After a failure past the switch: switches back the hosts already switched (unless told
    /// not to), records the release failed where it is not left live, and builds the error with
    /// the per-host table.
    fn after_switch_failure(&self, plan: &DeployPlan, failure: &SwitchFailure<'_>) -> DeployError {
        let (config, fleet, opts) = (self.config, self.fleet, self.opts);
        let SwitchFailure {
            switched,
            healthy,
            host: failed_host,
            step: failed_step,
            why,
        } = failure;
        let (failed_host, failed_step) = (*failed_host, *failed_step);
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
                let step = self.stepper(host);
                let prev = plan.hosts[i].previous.as_ref();
                switch_back(config, host, prev, &step, "deploy:switched-back")
            });
            for (&i, row) in switched.iter().zip(back) {
                results[i] = row;
            }
        } else {
            for &i in *switched {
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
        for (i, (host, host_plan)) in fleet.hosts.iter().zip(&plan.hosts).enumerate() {
            let recorder = Recorder::new(host, &opts.who, &config.app.name);
            let left = results[i].0 == HostResult::LeftSwitched && healthy.contains(&i);
            if left {
                // Left live and healthy, as asked: it is a good release on this host.
                let _ = recorder.journal(JournalEvent::DeploySucceeded {
                    release: id.clone(),
                });
                recorder.write_release_json(id, plan, host_plan, ReleaseState::Good);
                continue;
            }
            let rolled_back_to = match results[i].0 {
                HostResult::SwitchedBack => host_plan.previous.as_ref(),
                _ => None,
            };
            let stage = if i == failed_host {
                failed_step.name()
            } else {
                "aborted"
            };
            recorder.failed(id, plan, host_plan, stage, why, rolled_back_to);
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
        .map(|(i, (host, host_plan))| {
            let (result, detail) = result(i);
            HostOutcome {
                host: host.name.clone(),
                previous: host_plan.previous.as_ref().map(ToString::to_string),
                release: plan.release.to_string(),
                result,
                detail,
            }
        })
        .collect()
}
