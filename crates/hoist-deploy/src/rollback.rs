//! `hoist rollback`: back to the previous good release (or a named one), with no Python work
//! and no file copy: a symlink switch, a restart and a health check. The release rolled away
//! from is marked bad and never chosen again automatically (invariant 3).

use std::time::{Duration, Instant};

use hoist_config::Config;
use hoist_release::{
    check_explicit_target, rollback_target, JournalEvent, ReleaseId, ReleaseState,
};
use hoist_transport::Transport;

use crate::deploy::{activate, Stepper};
use crate::event::{EventSink, Step};
use crate::lock::{self, LockRequest};
use crate::record::Recorder;
use crate::state::HostState;
use crate::{fault, DeployError, FailureKind, Layout};

/// What a rollback did.
#[derive(Debug, Clone)]
pub struct RollbackReport {
    pub host: String,
    pub from: ReleaseId,
    pub to: ReleaseId,
    pub elapsed: Duration,
}

/// Rolls back to `to`, or to the computed rollback target.
pub fn rollback(
    config: &Config,
    t: &dyn Transport,
    to: Option<&ReleaseId>,
    who: &str,
    command: &str,
    lock_wait: Duration,
    events: EventSink<'_>,
) -> Result<RollbackReport, DeployError> {
    let layout = Layout::new(&config.release);
    HostState::read(t, &layout)?;
    let started = Instant::now();
    let step = Stepper {
        host: t.host(),
        events,
    };
    step.start(Step::Lock);
    let held = lock::acquire(
        t,
        &layout,
        &LockRequest {
            who,
            command,
            release: to,
            message: None,
            wait: lock_wait,
            pid: std::process::id(),
        },
        events,
    )
    .inspect_err(|e| step.fail(Step::Lock, e))?;
    step.done(Step::Lock, None);
    fault::point("rollback:locked");
    let result = rollback_locked(config, t, &layout, to, who, &step, started);
    step.start(Step::Unlock);
    match held.release(t) {
        Ok(()) => step.done(Step::Unlock, None),
        Err(e) => step.warn(format!(
            "could not remove the lock: {e}; `hoist lock release` removes it"
        )),
    }
    result
}

fn rollback_locked(
    config: &Config,
    t: &dyn Transport,
    layout: &Layout,
    to: Option<&ReleaseId>,
    who: &str,
    step: &Stepper<'_>,
    started: Instant,
) -> Result<RollbackReport, DeployError> {
    let state = HostState::read(t, layout)?;
    let Some(from) = state.current.clone() else {
        return Err(DeployError::config(format!(
            "{}: nothing is deployed at {} yet, so there is nothing to roll back",
            t.host(),
            layout.root.display()
        )));
    };
    let target = match to {
        Some(id) => {
            check_explicit_target(&state.history, Some(&from), &state.existing, id).map_err(
                |e| {
                    DeployError::config(format!("{}: cannot roll back to {id}: {e}", t.host()))
                        .hint("`hoist releases` lists the releases and their states")
                },
            )?;
            id.clone()
        }
        None => rollback_target(&state.history, Some(&from), &state.existing).map_err(|e| {
            DeployError::config(format!("{}: {e}", t.host()))
                .hint("`hoist releases` lists the releases; `hoist rollback --to <id>` picks one")
        })?,
    };
    let rec = Recorder::new(t, layout, who, &config.app.name);
    rec.repair_torn(&state, step)?;

    step.start(Step::Switch);
    let since = Instant::now();
    t.switch_symlink(&layout.current(), &layout.current_target(&target))
        .map_err(|e| DeployError::before_switch(e.to_string()))?;
    step.timed(Step::Switch, since, format!("{from} -> {target}"));
    fault::point("rollback:switched");

    if let Err((failed_step, why)) =
        activate(config, t, layout, &target, step, "rollback:restarted")
    {
        // The target does not serve: return to where we were, and never pick it again.
        step.start(Step::SwitchBack);
        let back = t
            .switch_symlink(&layout.current(), &layout.current_target(&from))
            .map_err(|e| e.to_string())
            .and_then(|()| {
                activate(config, t, layout, &from, step, "rollback:switched-back")
                    .map_err(|(_, e)| e)
            });
        let _ = rec.journal(JournalEvent::RollbackFailed {
            from: from.clone(),
            to: target.clone(),
            reason: why.clone(),
        });
        rec.set_release_state(&target, ReleaseState::Bad);
        let where_now = match back {
            Ok(()) => {
                step.done(Step::SwitchBack, Some(format!("{from} serves again")));
                format!(
                    "switched back: {} serves {from} again; {target} is marked bad",
                    t.host()
                )
            }
            Err(e) => {
                step.fail(Step::SwitchBack, &e);
                format!("switched back to {from}, but it is not healthy either: {e}")
            }
        };
        return Err(DeployError::new(
            FailureKind::RolledBack,
            format!(
                "rollback to {target} failed on {}: {} failed: {why}\n{where_now}",
                t.host(),
                failed_step.name()
            ),
        ));
    }

    rec.journal(JournalEvent::RolledBack {
        from: from.clone(),
        to: target.clone(),
        reason: match to {
            Some(_) => "rollback --to".into(),
            None => "rollback".into(),
        },
    })?;
    rec.set_release_state(&from, ReleaseState::Bad);
    rec.set_release_state(&target, ReleaseState::Good);
    fault::point("rollback:recorded");
    Ok(RollbackReport {
        host: t.host().into(),
        from,
        to: target,
        elapsed: started.elapsed(),
    })
}
