//! `hoist rollback` across a fleet: back to the previous good release (or a named one), with
//! no Python work and no file copy — a symlink switch, a restart and a health check on each
//! host. The target is computed on every host; if the hosts do not all have the same one,
//! nothing is switched anywhere. The release rolled away from is marked bad (invariant 3),
//! unless the target was deployed after it: rolling forward is no verdict on it.

use std::time::{Duration, Instant};

use hoist_config::{Config, HookWhen};
use hoist_release::{
    check_explicit_target, rollback_target, JournalEvent, ReleaseId, ReleaseState,
};
use hoist_transport::{Cmd, Output};

use crate::activate::{activate, describe_back_result, switch_back};
use crate::event::{EventSink, Step, Stepper};
use crate::host::{Fleet, Host};
use crate::lock::HeldLock;
use crate::lock::{ensure_all_ours, lock_all, unlock_all};
use crate::outcome::{HostOutcome, HostResult};
use crate::plan::read_states;
use crate::record::Recorder;
use crate::{fault, DeployError, FailureKind};

/// What a rollback did.
#[derive(Debug, Clone)]
pub struct RollbackReport {
    pub to: ReleaseId,
    /// Per host: `previous` is the release rolled away from.
    pub hosts: Vec<HostOutcome>,
    pub elapsed: Duration,
    /// False when the target was deployed after the release left (a roll forward), which is then
    /// not marked bad.
    pub left_marked_bad: bool,
}

/// Rolls every host of `fleet` back to `to`, or to the computed rollback target.
pub fn rollback(
    config: &Config,
    fleet: &Fleet,
    to: Option<&ReleaseId>,
    who: &str,
    command: &str,
    lock_wait: Duration,
    events: EventSink<'_>,
) -> Result<RollbackReport, DeployError> {
    read_states(fleet)?;
    let started = Instant::now();
    let held = lock_all(fleet, who, command, lock_wait, events)?;
    fault::point("rollback:locked");
    let result = crate::lock::while_held(fleet, &held, || {
        rollback_locked(config, fleet, to, who, events, started, &held)
    });
    unlock_all(fleet, held, events);
    result
}

fn rollback_locked(
    config: &Config,
    fleet: &Fleet,
    to: Option<&ReleaseId>,
    who: &str,
    events: EventSink<'_>,
    started: Instant,
    held: &[HeldLock],
) -> Result<RollbackReport, DeployError> {
    let states = read_states(fleet)?;
    let mut froms = Vec::new();
    let mut problems = Vec::new();
    let mut targets = Vec::new();
    for (host, state) in fleet.hosts.iter().zip(&states) {
        let step = Stepper {
            host: &host.name,
            events,
        };
        let recorder = Recorder::new(host, who, &config.app.name);
        recorder.repair_torn(state, &step)?;
        recorder.close_interrupted_rollback(state, &step)?;
        let Some(from) = state.current.clone() else {
            problems.push(format!(
                "{}: nothing is deployed at {} yet, so there is nothing to roll back",
                host.name,
                host.layout.root.display()
            ));
            continue;
        };
        let target = match to {
            Some(id) => check_explicit_target(&state.history, Some(&from), &state.existing, id)
                .map(|()| id.clone())
                .map_err(|e| format!("{}: cannot roll back to {id}: {e}", host.name)),
            None => rollback_target(&state.history, Some(&from), &state.existing)
                .map_err(|e| format!("{}: {e}", host.name)),
        };
        match target {
            Ok(target) => targets.push((host.name.clone(), target)),
            Err(p) => problems.push(p),
        }
        froms.push(from);
    }
    if !problems.is_empty() {
        let mut e = DeployError::config(problems.join("\n"));
        if fleet.hosts.len() > 1 {
            e = e.hint("nothing was switched on any host");
        }
        return Err(
            e.hint("`hoist releases` lists the releases; `hoist rollback --to <id>` picks one")
        );
    }
    let target = targets[0].1.clone();
    if targets.iter().any(|(_, other)| *other != target) {
        let list = targets
            .iter()
            .map(|(host, target)| format!("{host} -> {target}"))
            .collect::<Vec<_>>()
            .join(", ");
        return Err(DeployError::config(format!(
            "the hosts do not agree on the rollback target ({list}); nothing was switched"
        ))
        .hint("pick one that every host has: hoist rollback --to <id>"));
    }

    // The restarts after the switch run through sudo (`become`): a host that refuses is
    // refused now, before anything is switched, as a deploy does while it plans.
    let refused: Vec<String> = fleet
        .each(|_, host| host.transport().check_become().err())
        .into_iter()
        .flatten()
        .map(|e| e.to_string())
        .collect();
    if !refused.is_empty() {
        return Err(DeployError::before_switch(refused.join("\n"))
            .hint("nothing was switched: every host still serves the release it served before")
            .hint(
                "add that line, or set become = false for this host if its login user may \
                 restart the app's processes itself",
            ));
    }
    // No switch to a release whose environment is gone or broken (invariant 1).
    let broken: Vec<String> = fleet
        .each(|_, host| environment_problem(host, &target))
        .into_iter()
        .flatten()
        .collect();
    if !broken.is_empty() {
        let commit = states[0]
            .history
            .get(&target)
            .and_then(|s| s.commit.clone());
        let mut e = DeployError::before_switch(broken.join("\n"))
            .hint("nothing was switched: every host still serves the release it served before");
        e = e.hint(match commit {
            Some(commit) => format!(
                "to rebuild it, deploy that commit again: hoist deploy --ref {commit}; or pick \
                 another release: hoist rollback --to <id>"
            ),
            None => "pick another release (hoist rollback --to <id>), or deploy again".into(),
        });
        return Err(e);
    }
    ensure_all_ours(fleet, held)?;
    // The intent first: a rollback killed after its switch is then known to the next command.
    fleet
        .each(|i, host| {
            Recorder::new(host, who, &config.app.name)
                .journal(JournalEvent::RollbackStarted {
                    from: froms[i].clone(),
                    to: target.clone(),
                })
                .map_err(|e| {
                    DeployError::before_switch(format!("{}: {e}", host.name))
                        .hint("nothing was switched")
                })
        })
        .into_iter()
        .collect::<Result<Vec<()>, DeployError>>()?;
    let switched = fleet.each(|i, host| {
        let step = Stepper {
            host: &host.name,
            events,
        };
        step.start(Step::Switch);
        let since = Instant::now();
        let layout = &host.layout;
        match host
            .transport()
            .switch_symlink(&layout.current(), &layout.current_target(&target))
        {
            Ok(()) => {
                step.timed(Step::Switch, since, format!("{} -> {target}", froms[i]));
                Ok(())
            }
            Err(e) => {
                step.fail(Step::Switch, &e);
                Err((Step::Switch, e.to_string()))
            }
        }
    });
    fault::point("rollback:switched");
    let activated = fleet.each(|i, host| {
        switched[i].clone()?;
        let step = Stepper {
            host: &host.name,
            events,
        };
        activate(
            config,
            host,
            &target,
            &step,
            "rollback:restarted",
            true,
            &|| (),
        )
    });

    let failure = activated
        .iter()
        .enumerate()
        .find_map(|(i, r)| r.as_ref().err().map(|e| (i, e.clone())));
    if let Some((failed, (failed_step, why))) = failure {
        // The target does not serve somewhere: it is bad, written down before the switch back
        // so that a rollback killed on its way back never picks it again.
        let recorder = Recorder::new(&fleet.hosts[failed], who, &config.app.name);
        let _ = recorder.journal(JournalEvent::RollbackFailed {
            from: froms[failed].clone(),
            to: target.clone(),
            reason: why.clone(),
        });
        recorder.set_release_state(&target, ReleaseState::Bad);
        // Then return every switched host to where it was.
        let indexes: Vec<usize> = (0..fleet.hosts.len())
            .filter(|&i| switched[i].is_ok())
            .collect();
        let back = fleet.each_of(&indexes, |i, host| {
            let step = Stepper {
                host: &host.name,
                events,
            };
            switch_back(
                config,
                host,
                Some(&froms[i]),
                &step,
                "rollback:switched-back",
            )
        });
        let mut results = vec![(HostResult::NotSwitched, None); fleet.hosts.len()];
        for (&i, row) in indexes.iter().zip(back) {
            results[i] = row;
        }
        let host = &fleet.hosts[failed];
        let where_now = match &results[failed] {
            (HostResult::SwitchedBack, _) if fleet.hosts.len() == 1 => format!(
                "switched back: {} serves {} again; {target} is marked bad",
                host.name, froms[failed]
            ),
            (HostResult::SwitchedBack, _) => format!(
                "every host was switched back to the release it served; {target} is marked bad on {}",
                host.name
            ),
            (result @ (HostResult::SwitchedBackUnhealthy | HostResult::SwitchedBackNotRestarted), detail) => describe_back_result(
                froms[failed].as_ref(),
                *result,
                detail.as_deref().unwrap_or_default(),
            ),
            (result, detail) => format!(
                "{}: {}: {}",
                host.name,
                result.describe(),
                detail.clone().unwrap_or_default()
            ),
        };
        let mut e = DeployError::new(
            FailureKind::RolledBack,
            format!(
                "rollback to {target} failed on {}: {} failed: {why}\n{where_now}",
                host.name,
                failed_step.name()
            ),
        );
        e.hosts = rollback_rows(fleet, &froms, &target, |i| results[i].clone());
        return Err(e);
    }

    fleet
        .each(|i, host| {
            let recorder = Recorder::new(host, who, &config.app.name);
            recorder.journal(JournalEvent::RolledBack {
                from: froms[i].clone(),
                to: target.clone(),
                reason: match to {
                    Some(_) => "rollback --to".into(),
                    None => "rollback".into(),
                },
            })?;
            // Rolling forward is no verdict on the release left (the journal's rule, see
            // History).
            let mut marks = vec![(&target, ReleaseState::Good)];
            if !states[i].history.deployed_after(&target, &froms[i]) {
                marks.push((&froms[i], ReleaseState::Bad));
            }
            recorder.set_release_states(&marks);
            Ok::<(), DeployError>(())
        })
        .into_iter()
        .collect::<Result<Vec<()>, DeployError>>()?;
    fault::point("rollback:recorded");
    let previous = |i: usize| Some(froms[i].clone());
    let hook_failures = crate::hooks::run_after(
        config,
        fleet,
        &target,
        HookWhen::AfterRollback,
        &previous,
        events,
    );
    if !hook_failures.is_empty() {
        let mut e =
            crate::hooks::after_failure(fleet, &target, HookWhen::AfterRollback, &hook_failures);
        e.hosts = rollback_rows(fleet, &froms, &target, |i| {
            let failed = hook_failures.iter().any(|(host, _)| *host == i);
            (
                HostResult::Live,
                failed.then(|| "after-rollback hook failed".to_string()),
            )
        });
        return Err(e);
    }
    let left_marked_bad = fleet
        .hosts
        .iter()
        .enumerate()
        .any(|(i, _)| !states[i].history.deployed_after(&target, &froms[i]));
    Ok(RollbackReport {
        hosts: rollback_rows(fleet, &froms, &target, |_| (HostResult::Live, None)),
        to: target,
        elapsed: started.elapsed(),
        left_marked_bad,
    })
}

/// The per-host table of a rollback from `froms[i]` to `target`: each host's result and detail.
fn rollback_rows(
    fleet: &Fleet,
    froms: &[ReleaseId],
    target: &ReleaseId,
    row: impl Fn(usize) -> (HostResult, Option<String>),
) -> Vec<HostOutcome> {
    fleet
        .hosts
        .iter()
        .enumerate()
        .map(|(i, h)| {
            let (result, detail) = row(i);
            HostOutcome {
                host: h.name.clone(),
                previous: Some(froms[i].to_string()),
                release: target.to_string(),
                result,
                detail,
            }
        })
        .collect()
}

/// For release directory `$1`, NUL-ended fields: how its environment is found — `L<target>`
/// (`.venv` links to a shared environment), `D` (`.venv` is a directory), `E` (no `.venv`, an
/// `env/bin/python` of its own: a build adopted from a `builds/<timestamp>` layout) or `N`
/// (none); then, unless `N` or a link without the completion mark `$2` in its environment,
/// `P<status>` of the interpreter run with `-c ''` (its output on stderr); then for a link `N`
/// (no mark) or `F` and the mark's contents. One command: three round trips before.
const CHECK_ENV: &str = r#"r=$1 v="$1/.venv"
if [ -L "$v" ]; then
  printf L; readlink -z -- "$v" || exit 1
  [ -e "$v/$2" ] || { printf N; exit 0; }
  py="$v/bin/python"
elif [ -d "$v" ]; then printf 'D\0'; py="$v/bin/python"
elif [ -e "$r/env/bin/python" ] || [ -L "$r/env/bin/python" ]; then printf 'E\0'; py="$r/env/bin/python"
else printf 'N\0'; exit 0; fi
"$py" -c '' </dev/null >&2 2>&1
printf 'P%s\0' "$?"
[ -L "$v" ] || exit 0
printf F; exec cat -- "$v/$2""#;

/// Why release `id` on `host` could not serve: its environment gone, without its completion
/// mark, or its interpreter not running. `None` when it is fine. A build adopted from a
/// `builds/<timestamp>` layout keeps its own `env/`, which has no mark: its interpreter decides.
fn environment_problem(host: &Host, id: &ReleaseId) -> Option<String> {
    let transport = host.transport();
    let release = host.layout.release(id);
    let venv = release.join(".venv");
    let fail = |what: String| Some(format!("{}: cannot roll back to {id}: {what}", host.name));
    let out = match transport.exec(
        &Cmd::new("sh")
            .arg("-c")
            .arg(CHECK_ENV)
            .arg("hoist-check-env")
            .path_arg(&release)
            .arg(hoist_pyenv::COMPLETE_MARK),
    ) {
        Ok(out) if out.success() => out,
        Ok(out) => return fail(format!("reading {}: {}", venv.display(), out.tail(3))),
        Err(e) => return fail(format!("reading {}: {e}", venv.display())),
    };
    let mut fields = out.stdout.splitn(3, |b| *b == 0);
    let (how, ran, mark) = (
        fields.next().unwrap_or_default(),
        fields.next(),
        fields.next(),
    );
    let python = match how.split_first() {
        Some((b'L', target)) => {
            let env = release.join(String::from_utf8_lossy(target).as_ref());
            let marked = mark
                .and_then(|m| m.strip_prefix(b"F"))
                .and_then(|json| serde_json::from_slice::<hoist_pyenv::EnvMark>(json).ok());
            if ran.is_none() || marked.is_none() {
                return fail(format!(
                    "its environment {} is gone or incomplete (no {} mark)",
                    env.display(),
                    hoist_pyenv::COMPLETE_MARK
                ));
            }
            venv.join("bin/python")
        }
        Some((b'D', [])) => venv.join("bin/python"),
        Some((b'E', [])) => release.join("env/bin/python"),
        _ => {
            return fail(format!(
                "it has no environment ({} is missing)",
                venv.display()
            ))
        }
    };
    // What the interpreter said is the command's stderr.
    let said = Output {
        stdout: Vec::new(),
        ..out.clone()
    };
    match ran.and_then(|r| r.strip_prefix(b"P")) {
        Some(b"0") => None,
        _ => fail(format!(
            "its interpreter {} does not run: {}",
            python.display(),
            said.tail(3)
        )),
    }
}
