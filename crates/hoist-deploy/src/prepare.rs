//! Preparing a release on one host, everything before the switch: upload, shared links,
//! environment, import check, per-host hooks. Failing here leaves the live release alone.

use std::path::Path;
use std::time::Instant;

use hoist_config::{Config, Hook};
use hoist_transport::{Cmd, Transport, UploadStats};

use crate::event::{Step, Stepper};
use crate::host::Host;
use crate::plan::{env_link, installer_name, DeployPlan, HostPlan};
use crate::{fault, DeployError, Layout};

/// What preparing did on one host.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Prepared {
    pub upload: UploadStats,
    pub env_reused: bool,
}

/// A failure while preparing: the step it happened in, and the error.
pub(crate) type PrepareFailure = (Step, DeployError);

pub(crate) fn prepare_host(
    config: &Config,
    host: &Host,
    plan: &DeployPlan,
    hp: &HostPlan,
    step: &Stepper<'_>,
) -> Result<Prepared, PrepareFailure> {
    let t = host.t();
    let layout = &host.layout;
    let id = &plan.release;
    let release_dir = layout.release(id);
    let fail = |s: Step, e: DeployError| {
        step.fail(s, &e);
        (s, e)
    };
    let cancelled = |s: Step| {
        if crate::cancel::requested() {
            Err(fail(
                s,
                DeployError::before_switch("interrupted (Ctrl-C) before the switch"),
            ))
        } else {
            Ok(())
        }
    };

    cancelled(Step::Upload)?;
    step.start(Step::Upload);
    let since = Instant::now();
    let link_dest = hp.previous.as_ref().map(|p| layout.release(p));
    let upload = t
        .upload_tree(
            &plan.source.dir,
            &plan.source.files,
            &release_dir,
            link_dest.as_deref(),
        )
        .map_err(|e| fail(Step::Upload, DeployError::before_switch(e.to_string())))?;
    step.timed(
        Step::Upload,
        since,
        format!(
            "{} files: {} copied ({} bytes), {} hard-linked",
            upload.copied + upload.linked,
            upload.copied,
            upload.bytes,
            upload.linked
        ),
    );
    fault::point("deploy:uploaded");

    if !config.release.shared.is_empty() {
        step.start(Step::Shared);
        let since = Instant::now();
        link_shared(config, t, layout, &release_dir, step).map_err(|e| fail(Step::Shared, e))?;
        step.timed(
            Step::Shared,
            since,
            format!("{} paths linked", config.release.shared.len()),
        );
    }

    cancelled(Step::Environment)?;
    step.start(Step::Environment);
    let since = Instant::now();
    let mut log = |line: &str| step.output(Step::Environment, line);
    let env = hoist_pyenv::ensure_env(
        t,
        &layout.root,
        &hp.dep_key,
        &release_dir,
        &plan.requirement_files,
        &hp.interpreter,
        &hp.installer,
        &mut log,
    )
    .map_err(|e| {
        fail(
            Step::Environment,
            DeployError::before_switch(e.to_string())
                .hint("fix the requirements and deploy again; the live release was not touched"),
        )
    })?;
    t.symlink(&env_link(&hp.dep_key), &release_dir.join(".venv"))
        .map_err(|e| fail(Step::Environment, e.into()))?;
    step.timed(
        Step::Environment,
        since,
        if env.reused {
            format!("reused envs/{}", hp.dep_key)
        } else {
            format!(
                "built envs/{} with {}",
                hp.dep_key,
                installer_name(&hp.installer)
            )
        },
    );
    fault::point("deploy:env");

    cancelled(Step::ImportCheck)?;
    step.start(Step::ImportCheck);
    let since = Instant::now();
    hoist_pyenv::check_entry_imports(
        t,
        &env.path,
        &release_dir,
        &config.app.entry.module,
        &config.app.entry.attribute,
    )
    .map_err(|e| {
        fail(
            Step::ImportCheck,
            DeployError::before_switch(format!(
                "the new release cannot import its entry point {}: {e}",
                config.app.entry
            )),
        )
    })?;
    step.timed(
        Step::ImportCheck,
        since,
        format!("{} imports", config.app.entry),
    );

    for hook in config.hooks.iter().filter(|h| !h.once) {
        cancelled(Step::Hook)?;
        run_hook(config, host, &plan.release, hook, step).map_err(|e| (Step::Hook, e))?;
    }
    fault::point("deploy:hooks");
    Ok(Prepared {
        upload,
        env_reused: env.reused,
    })
}

/// Runs one pre-switch hook in the new release with its environment first on PATH.
pub(crate) fn run_hook(
    config: &Config,
    host: &Host,
    id: &hoist_release::ReleaseId,
    hook: &Hook,
    step: &Stepper<'_>,
) -> Result<(), DeployError> {
    let release_dir = host.layout.release(id);
    step.start(Step::Hook);
    let since = Instant::now();
    let script = format!("export PATH=\"$VIRTUAL_ENV/bin:$PATH\"\n{}", hook.run);
    let mut cmd = Cmd::new("timeout")
        .arg(format!("{}s", hook.timeout.as_secs().max(1)))
        .args(["bash", "-eo", "pipefail", "-c"])
        .arg(script)
        .cwd(&release_dir)
        .env(
            "VIRTUAL_ENV",
            release_dir.join(".venv").display().to_string(),
        )
        .env("HOIST_HOOK", hook.name.clone());
    for (k, v) in crate::activate::restart_context(config, host, id).env() {
        cmd = cmd.env(k, v);
    }
    let out = host.t().exec(&cmd).map_err(|e| {
        let e = DeployError::before_switch(e.to_string());
        step.fail(Step::Hook, &e);
        e
    })?;
    step.output(Step::Hook, &out.stdout_text());
    step.output(Step::Hook, &out.stderr_text());
    if !out.success() {
        let why = if out.status == 124 {
            format!("timed out after {}s", hook.timeout.as_secs())
        } else {
            format!("exited {}", out.status)
        };
        let e = DeployError::before_switch(format!(
            "{}: pre-switch hook {:?} {why}: {}",
            host.name,
            hook.name,
            out.tail(5)
        ));
        step.fail(Step::Hook, &e);
        return Err(e);
    }
    step.timed(Step::Hook, since, format!("{} passed", hook.name));
    Ok(())
}

/// Replaces each shared path in the release with a link into `<root>/shared`.
fn link_shared(
    config: &Config,
    t: &dyn Transport,
    layout: &Layout,
    release_dir: &Path,
    step: &Stepper<'_>,
) -> Result<(), DeployError> {
    for shared in &config.release.shared {
        let target = layout.shared().join(&shared.path);
        let link = release_dir.join(&shared.path);
        if shared.is_dir {
            t.create_dir_all(&target)?;
        } else {
            if let Some(parent) = target.parent() {
                t.create_dir_all(parent)?;
            }
            if !t.kind(&target)?.exists() {
                step.warn(format!(
                    "shared file {} does not exist yet; the release links to it anyway — create it on the host",
                    target.display()
                ));
            }
        }
        if let Some(parent) = link.parent() {
            t.create_dir_all(parent)?;
        }
        t.remove_all(&link)?;
        t.symlink(&target, &link)?;
    }
    Ok(())
}
