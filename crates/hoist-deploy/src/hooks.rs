//! Running `[[hook]]`s: before the switch (a failure stops the deploy, nothing switched), after
//! the switch once every host is healthy, and after a rollback (a failure there is reported, and
//! the release that serves stays: switching again would undo a healthy switch to repair a side
//! task). A `first_deploy_only` hook runs only where no release has gone live yet.

use std::time::Instant;

use hoist_config::{Config, Hook, HookWhen};
use hoist_release::ReleaseId;
use hoist_transport::{Cmd, Transport};

use crate::event::{EventSink, Step, Stepper};
use crate::host::{Fleet, Host};
use crate::{DeployError, FailureKind};

/// True when `hook` runs at `when` on a host whose live release before this deploy was
/// `previous` (`None`: the root's first deploy).
pub(crate) fn runs(hook: &Hook, when: HookWhen, previous: Option<&ReleaseId>) -> bool {
    hook.when == when && (!hook.first_deploy_only || previous.is_none())
}

/// The hook's moment as its messages say it.
fn moment(when: HookWhen) -> &'static str {
    match when {
        HookWhen::BeforeSwitch => "pre-switch",
        HookWhen::AfterSwitch => "after-switch",
        HookWhen::AfterRollback => "after-rollback",
    }
}

/// `script` as a command in release `id`: `bash -eo pipefail -c` in the release directory, its
/// `.venv/bin` first on PATH, the restart context's variables set, stopped after `timeout`
/// (exit 124) and by Ctrl-C. Run it through [`crate::app_env::app_transport`] for the app's
/// `[env]`.
pub(crate) fn in_release(
    config: &Config,
    host: &Host,
    id: &ReleaseId,
    script: &str,
    timeout: std::time::Duration,
) -> Cmd {
    let release_dir = host.layout.release(id);
    let script = format!("export PATH=\"$VIRTUAL_ENV/bin:$PATH\"\n{script}");
    let mut cmd = Cmd::new("timeout")
        .interruptible()
        .arg(format!("{}s", timeout.as_secs().max(1)))
        .args(["bash", "-eo", "pipefail", "-c"])
        .arg(script)
        .cwd(&release_dir)
        .env(
            "VIRTUAL_ENV",
            release_dir.join(".venv").display().to_string(),
        );
    // A src-layout project's package is imported from the release, never installed into the
    // environment that releases share.
    if let Some(dirs) = hoist_pyenv::import_path(&release_dir, &config.app.python_path) {
        cmd = cmd.env("PYTHONPATH", dirs);
    }
    for (key, value) in crate::activate::restart_context(config, host, id).env() {
        cmd = cmd.env(key, value);
    }
    cmd
}

/// Runs one hook in release `id` with its environment first on PATH. A failure is
/// [`FailureKind::BeforeSwitch`] for a pre-switch hook, else [`FailureKind::LeftAsIs`]: the
/// release it ran in stays live.
pub(crate) fn run_hook(
    config: &Config,
    host: &Host,
    id: &ReleaseId,
    hook: &Hook,
    step: &Stepper<'_>,
) -> Result<(), DeployError> {
    let kind = match hook.when {
        HookWhen::BeforeSwitch => FailureKind::BeforeSwitch,
        HookWhen::AfterSwitch | HookWhen::AfterRollback => FailureKind::LeftAsIs,
    };
    step.start(Step::Hook);
    let since = Instant::now();
    let cmd =
        in_release(config, host, id, &hook.run, hook.timeout).env("HOIST_HOOK", hook.name.clone());
    // What the hook says is shown as it comes: a migration that runs for minutes must not
    // look hung.
    let out = crate::app_env::app_transport(config, host)
        .exec_streaming(&cmd, &|_, line| step.line(Step::Hook, line))
        .map_err(|e| {
            let e = DeployError::new(kind, e.to_string());
            step.fail(Step::Hook, &e);
            e
        })?;
    if !out.success() {
        let why = if crate::cancel::requested() {
            format!("was interrupted (Ctrl-C) and exited {}", out.status)
        } else if out.status == 124 {
            format!("timed out after {}s", hook.timeout.as_secs())
        } else {
            format!("exited {}", out.status)
        };
        let e = DeployError::new(
            kind,
            format!(
                "{}: {} hook {:?} {why}: {}",
                host.name,
                moment(hook.when),
                hook.name,
                out.tail(5)
            ),
        );
        step.fail(Step::Hook, &e);
        return Err(e);
    }
    step.timed(Step::Hook, since, format!("{} passed", hook.name));
    Ok(())
}

/// Runs the hooks of `when` (after-switch or after-rollback) on a fleet that serves `id`: each
/// host's own hooks on every host, `once` hooks on the first host. `previous(i)` is what host
/// `i` served before. On each host the hooks stop at the first failure; the failures are
/// returned, in host order.
pub(crate) fn run_after(
    config: &Config,
    fleet: &Fleet,
    id: &ReleaseId,
    when: HookWhen,
    previous: &(dyn Fn(usize) -> Option<ReleaseId> + Sync),
    events: EventSink<'_>,
) -> Vec<(usize, DeployError)> {
    if !config.hooks.iter().any(|h| h.when == when) {
        return Vec::new();
    }
    fleet
        .each(|i, host| {
            let step = Stepper {
                host: &host.name,
                events,
            };
            let previous = previous(i);
            config
                .hooks
                .iter()
                .filter(|h| (i == 0 || !h.once) && runs(h, when, previous.as_ref()))
                .find_map(|hook| run_hook(config, host, id, hook, &step).err())
        })
        .into_iter()
        .enumerate()
        .filter_map(|(i, failure)| failure.map(|e| (i, e)))
        .collect()
}

/// The error for hooks that failed after a healthy switch (or rollback) to `id`: the release
/// stays live, and the command exits non-zero ([`FailureKind::LeftAsIs`]).
pub(crate) fn after_failure(
    fleet: &Fleet,
    id: &ReleaseId,
    when: HookWhen,
    failures: &[(usize, DeployError)],
) -> DeployError {
    let messages: Vec<&str> = failures.iter().map(|(_, e)| e.message.as_str()).collect();
    let serving = if fleet.hosts.len() == 1 {
        format!("{} serves {id}", fleet.hosts[0].name)
    } else {
        format!("every host serves {id}")
    };
    DeployError::new(
        FailureKind::LeftAsIs,
        format!(
            "{}\n{serving} and passed its health check: a failed {} hook never switches back",
            messages.join("\n"),
            moment(when)
        ),
    )
    .hint("fix what the hook does and run it by hand in the live release (`hoist status` names it)")
}
