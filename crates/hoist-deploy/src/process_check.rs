//! A process's own verdict after its restart: it stayed up for its `settle` time from the new
//! release (`supervisor` and `systemd` processes), and its `check` command passed. Either
//! failing fails the host as a failed health check does: it is switched back.

use std::time::Instant;

use hoist_config::{Config, Process};
use hoist_release::ReleaseId;
use hoist_service::RestartContext;
use hoist_transport::Transport;

use crate::event::{Step, Stepper};
use crate::host::Host;

/// Watches and checks `process`, restarted for release `id` at `restarted`.
pub(crate) fn verify(
    config: &Config,
    host: &Host,
    id: &ReleaseId,
    process: &Process,
    ctx: &RestartContext<'_>,
    restarted: Instant,
    step: &Stepper<'_>,
) -> Result<(), (Step, String)> {
    let transport = crate::app_env::app_transport(config, host);
    // supervisorctl and systemctl are asked as the restart asked them (`become`).
    let privileged = hoist_transport::Privileged(&transport);
    if let Err(e) = hoist_service::wait_settled(&privileged, process, ctx, restarted) {
        step.fail(Step::Health, &e);
        return Err((Step::Health, e.to_string()));
    }
    let Some(check) = &process.check else {
        return Ok(());
    };
    step.start(Step::Health);
    let since = Instant::now();
    let cmd = crate::hooks::in_release(config, host, id, check, process.timeout);
    let out = transport.exec(&cmd).map_err(|e| {
        step.fail(Step::Health, &e);
        (Step::Health, e.to_string())
    })?;
    if out.success() {
        step.timed(
            Step::Health,
            since,
            format!("{}: `{check}` passed", process.name),
        );
        return Ok(());
    }
    let why = if out.status == 124 {
        format!("timed out after {}s", process.timeout.as_secs())
    } else {
        format!("exited {}", out.status)
    };
    let message = format!(
        "{}: the check of {} (`{check}`) {why}: {}",
        host.name,
        process.name,
        out.tail(5)
    );
    step.fail(Step::Health, &message);
    Err((Step::Health, message))
}
