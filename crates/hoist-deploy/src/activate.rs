//! Making a release serve on one host: restart every process for it and wait for the health
//! check (invariant 8), and the switch back when that fails.

use std::path::{Path, PathBuf};
use std::time::Instant;

use hoist_config::Config;
use hoist_release::ReleaseId;
use hoist_service::RestartContext;

use crate::event::{Step, Stepper};
use crate::fault;
use crate::host::Host;
use crate::outcome::HostResult;

pub(crate) fn restart_context<'a>(
    config: &'a Config,
    host: &'a Host,
    id: &ReleaseId,
) -> OwnedContext<'a> {
    OwnedContext {
        app: &config.app.name,
        root: &host.layout.root,
        release_path: host.layout.release(id),
        id: id.to_string(),
        vars: host
            .vars
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
    }
}

/// A [`RestartContext`] that owns its computed parts.
pub(crate) struct OwnedContext<'a> {
    app: &'a str,
    root: &'a Path,
    release_path: PathBuf,
    id: String,
    vars: Vec<(String, String)>,
}

impl OwnedContext<'_> {
    pub fn get(&self) -> RestartContext<'_> {
        RestartContext {
            app: self.app,
            root: self.root,
            release_path: &self.release_path,
            release_id: &self.id,
            vars: &self.vars,
        }
    }

    pub fn env(&self) -> Vec<(String, String)> {
        self.get().env()
    }
}

/// Restarts every process for release `id` and waits for the health check. The error names
/// the step that failed and why. `interruptible`: Ctrl-C may end the health wait (as a
/// failure); false for a switch back, which must see its health check through. `warming` is
/// called when a warm reload's new workers import the app ([`hoist_service::restart`]).
pub(crate) fn activate(
    config: &Config,
    host: &Host,
    id: &ReleaseId,
    step: &Stepper<'_>,
    after_restart: &str,
    interruptible: bool,
    warming: &dyn Fn(),
) -> Result<(), (Step, String)> {
    // Restart and health commands run with the app's [env] (a `command` restart starts the
    // app with it).
    let transport = &crate::app_env::app_transport(config, host);
    let ctx = restart_context(config, host, id);
    let mut restarted = Vec::new();
    for process in &config.processes {
        step.start(Step::Restart);
        let since = Instant::now();
        // `become = true` applies to restart commands (supervisorctl, systemctl, ...), and
        // what a `command` restart or supervisorctl says is shown as it comes.
        let privileged = hoist_transport::Privileged(transport);
        let streamed = hoist_transport::Streamed {
            inner: &privileged,
            on_line: &|_, line| step.line(Step::Restart, line),
        };
        if let Err(e) = hoist_service::restart(&streamed, process, &ctx.get(), warming) {
            step.fail(Step::Restart, &e);
            return Err((Step::Restart, e.to_string()));
        }
        step.timed(Step::Restart, since, format!("{} restarted", process.name));
        restarted.push(Instant::now());
    }
    fault::point(after_restart);
    for (process, restarted) in config.processes.iter().zip(restarted) {
        crate::process_check::verify(config, host, id, process, &ctx.get(), restarted, step)?;
    }
    if let Some(health) = &config.health {
        step.start(Step::Health);
        let since = Instant::now();
        // Ctrl-C ends the wait of a forward switch (which is then switched back); the health
        // check of a switch back is always waited out.
        let interrupted = || interruptible && crate::cancel::requested();
        // Each attempt that did not pass, when it finds something new: a slow start shows
        // what the probe gets meanwhile, not a silence.
        let last_said = std::sync::Mutex::new(String::new());
        let on_attempt = |attempt: u32, found: &str| {
            let mut last = last_said
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if *last != found {
                found.clone_into(&mut last);
                step.line(Step::Health, &format!("attempt {attempt}: {found}"));
            }
        };
        match hoist_service::wait_healthy_reporting(
            transport,
            health,
            &ctx.env(),
            &interrupted,
            &on_attempt,
        ) {
            Ok(report) => step.timed(
                Step::Health,
                since,
                format!("healthy after {} attempt(s)", report.attempts),
            ),
            Err(e) => {
                step.fail(Step::Health, &e);
                return Err((Step::Health, e.to_string()));
            }
        }
    }
    Ok(())
}

/// The sentence for a host whose switch back to `prev` ended with `result` (a failed one).
pub(crate) fn describe_back_result(prev: &str, result: HostResult, detail: &str) -> String {
    match result {
        HostResult::SwitchedBackNotRestarted => format!(
            "switched back to {prev}, but restarting it failed (its health was not checked): {detail}"
        ),
        _ => format!("switched back to {prev}, but it is not healthy either: {detail}"),
    }
}

/// Points `current` back at `previous` and makes it serve again. With no previous release
/// (a first deploy) `current` is removed rather than left on a failed release (invariant 1).
/// Returns the host's row for the per-host table: what was done and read, never assumed — a
/// failed restart is not called unhealthy, and a host that stopped answering is `Unknown`.
pub(crate) fn switch_back(
    config: &Config,
    host: &Host,
    previous: Option<&ReleaseId>,
    step: &Stepper<'_>,
    after_restart: &str,
) -> (HostResult, Option<String>) {
    let transport = host.transport();
    let layout = &host.layout;
    step.start(Step::SwitchBack);
    let Some(prev) = previous else {
        if let Err(e) = transport.remove_all(&layout.current()) {
            step.fail(Step::SwitchBack, &e);
            return where_current_stands(host, None, &e.to_string());
        }
        step.done(
            Step::SwitchBack,
            Some(format!(
                "no earlier release; {} removed",
                layout.current().display()
            )),
        );
        return (HostResult::CurrentRemoved, None);
    };
    if let Err(e) = transport.switch_symlink(&layout.current(), &layout.current_target(prev)) {
        step.fail(Step::SwitchBack, &e);
        return where_current_stands(host, Some(prev), &e.to_string());
    }
    match activate(config, host, prev, step, after_restart, false, &|| ()) {
        Ok(()) => {
            step.done(Step::SwitchBack, Some(format!("{prev} serves again")));
            (HostResult::SwitchedBack, None)
        }
        Err((failed, e)) => {
            step.fail(Step::SwitchBack, &e);
            let result = if failed == Step::Restart {
                HostResult::SwitchedBackNotRestarted
            } else {
                HostResult::SwitchedBackUnhealthy
            };
            (result, Some(e))
        }
    }
}

/// After a switch back failed: reads `current` to say where the host stands.
fn where_current_stands(
    host: &Host,
    previous: Option<&ReleaseId>,
    why: &str,
) -> (HostResult, Option<String>) {
    let layout = &host.layout;
    match host.transport().read_link(&layout.current()) {
        Ok(target) => {
            let back = match (previous, target) {
                (Some(prev), Some(target)) => target == layout.current_target(prev),
                (None, None) => true,
                _ => false,
            };
            if back {
                (
                    HostResult::SwitchedBackNotRestarted,
                    Some(format!("switched back, but not restarted: {why}")),
                )
            } else {
                (
                    HostResult::SwitchBackFailed,
                    Some(format!("could not switch back: {why}")),
                )
            }
        }
        Err(read) => (
            HostResult::Unknown,
            Some(format!(
                "could not switch back ({why}), and current could not be read: {read}"
            )),
        ),
    }
}
