//! Preparing a release on one host, everything before the switch: upload, shared links,
//! environment, import check, per-host hooks. Failing here leaves the live release alone.

use std::path::{Path, PathBuf};
use std::time::Instant;

use hoist_config::{Config, HookWhen, SharedPath};
use hoist_transport::{FileKind, Transport, UploadStats};

use crate::app_env::{self, ResolvedEnv};
use crate::event::{Step, Stepper};
use crate::hooks;
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
    host_plan: &HostPlan,
    env: &ResolvedEnv,
    step: &Stepper<'_>,
) -> Result<Prepared, PrepareFailure> {
    let transport = host.transport();
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
    let link_dest = host_plan.previous.as_ref().map(|p| layout.release(p));
    // Files at shared paths are replaced by links into shared/: not shipped, and so never in
    // a manifest that a later release would link through such a link.
    let files: Vec<PathBuf> = plan
        .source
        .files
        .iter()
        .filter(|f| !is_shared(config, f))
        .cloned()
        .collect();
    let upload = transport
        .upload_tree(&plan.source.dir, &files, &release_dir, link_dest.as_deref())
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

    app_env::write(config, host, env).map_err(|e| fail(Step::Shared, e.nothing_switched()))?;
    if !config.release.shared.is_empty() {
        step.start(Step::Shared);
        let since = Instant::now();
        link_shared(config, transport, layout, &release_dir, step)
            .map_err(|e| fail(Step::Shared, e))?;
        step.timed(
            Step::Shared,
            since,
            format!("{} paths linked", config.release.shared.len()),
        );
    }

    cancelled(Step::Environment)?;
    step.start(Step::Environment);
    for warning in &plan.dependencies.warnings {
        step.warn(warning.clone());
    }
    let since = Instant::now();
    let mut log = |line: &str| step.output(Step::Environment, line);
    let env = hoist_pyenv::ensure_env(
        &app_env::installer_transport(config, host),
        &layout.root,
        &host_plan.dep_key,
        &release_dir,
        &plan.dependencies,
        &host_plan.interpreter,
        &host_plan.installer,
        &mut log,
    )
    .map_err(|e| {
        fail(
            Step::Environment,
            DeployError::before_switch(e.to_string())
                .hint("fix the requirements and deploy again; the live release was not touched"),
        )
    })?;
    transport
        .symlink(&env_link(&host_plan.dep_key), &release_dir.join(".venv"))
        .map_err(|e| fail(Step::Environment, e.into()))?;
    step.timed(
        Step::Environment,
        since,
        if env.reused {
            format!("reused envs/{}", host_plan.dep_key)
        } else {
            format!(
                "built envs/{} with {}",
                host_plan.dep_key,
                installer_name(&host_plan.installer)
            )
        },
    );
    fault::point("deploy:env");

    cancelled(Step::ImportCheck)?;
    if warm_reload_checks(config, host, host_plan, env.reused) {
        // The new workers import the app before any old one retires, and one that cannot
        // never takes a request: one cold import, not two.
        step.done(
            Step::ImportCheck,
            Some(
                "left to the warm reload: the new workers import the app while the old ones serve"
                    .into(),
            ),
        );
    } else {
        step.start(Step::ImportCheck);
        let since = Instant::now();
        hoist_pyenv::check_entry_imports(
            &app_env::app_transport(config, host),
            &env.path,
            &release_dir,
            &config.app.python_path,
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
    }

    let previous = host_plan.previous.as_ref();
    for hook in config
        .hooks
        .iter()
        .filter(|h| !h.once && hooks::runs(h, HookWhen::BeforeSwitch, previous))
    {
        cancelled(Step::Hook)?;
        hooks::run_hook(config, host, &plan.release, hook, step).map_err(|e| (Step::Hook, e))?;
    }
    fault::point("deploy:hooks");
    Ok(Prepared {
        upload,
        env_reused: env.reused,
    })
}

/// Whether every process restarts with a warm reload (`gunicorn-hup`).
pub(crate) fn every_process_warm(config: &Config) -> bool {
    !config.processes.is_empty()
        && config
            .processes
            .iter()
            .all(|p| matches!(p.restart, hoist_config::Restart::GunicornHup { .. }))
}

/// Whether the warm reload is the import check: every process is `gunicorn-hup` (whose new
/// workers load the release while the old ones serve, and keep out of the way when they
/// cannot), and the master will be reloaded rather than restarted (the environment is the
/// previous release's, so the running master can load the release), and the running workers'
/// loader keeps out of a warm reload it cannot load (it says so in `<ready dir>/loader`).
fn warm_reload_checks(
    config: &Config,
    host: &Host,
    host_plan: &HostPlan,
    env_reused: bool,
) -> bool {
    let all_warm = every_process_warm(config);
    let Some(previous) = host_plan.previous.as_ref() else {
        return false;
    };
    // Workers of a loader from before warm reloads would serve a release that fails to import
    // (503s until the health check switches back): with one, the import check stays.
    let loaders_keep_out = config.processes.iter().all(|p| match &p.restart {
        hoist_config::Restart::GunicornHup { pidfile } => host
            .transport()
            .read_file(&hoist_service::workers::ready_dir(pidfile).join("loader"))
            .ok()
            .flatten()
            .is_some_and(|text| text.starts_with(b"warm-reload ")),
        _ => false,
    });
    all_warm
        && loaders_keep_out
        && env_reused
        && host
            .transport()
            .read_link(&host.layout.release(previous).join(".venv"))
            .ok()
            .flatten()
            .is_some_and(|link| link == env_link(&host_plan.dep_key))
}

/// Replaces each shared path in the release with a link into `<root>/shared`.
///
/// The release's tree comes from the app, and a symlink in it may point anywhere: a shared path
/// is linked only when every parent of it that exists in the release is a real directory, so
/// that creating, removing and linking stay inside the release. All shared paths are checked
/// before any is linked; a symlinked parent refuses the release (before the switch). Two round
/// trips whatever the number of shared paths: one reads what is there, one makes the
/// directories and the links.
fn link_shared(
    config: &Config,
    transport: &dyn Transport,
    layout: &Layout,
    release_dir: &Path,
    step: &Stepper<'_>,
) -> Result<(), DeployError> {
    let before_switch =
        |e: hoist_transport::TransportError| DeployError::before_switch(e.to_string());
    let shared = &config.release.shared;
    if shared.is_empty() {
        return Ok(());
    }
    // Each shared path's parents inside the release, and where each shared file will point.
    let parents: Vec<Vec<PathBuf>> = shared
        .iter()
        .map(|s| release_parents(release_dir, s))
        .collect();
    let targets: Vec<PathBuf> = shared
        .iter()
        .map(|s| layout.shared().join(&s.path))
        .collect();
    let asked: Vec<&Path> = parents
        .iter()
        .flatten()
        .map(PathBuf::as_path)
        .chain(
            shared
                .iter()
                .zip(&targets)
                .filter(|(s, _)| !s.is_dir)
                .map(|(_, t)| t.as_path()),
        )
        .collect();
    let mut kinds = transport.kinds(&asked).map_err(before_switch)?.into_iter();
    for (s, dirs) in shared.iter().zip(&parents) {
        let found: Vec<FileKind> = kinds.by_ref().take(dirs.len()).collect();
        refuse_symlinked_parents(transport, release_dir, s, dirs, &found)?;
    }
    for (s, target) in shared.iter().zip(&targets) {
        if !s.is_dir && !kinds.next().is_some_and(FileKind::exists) {
            step.warn(format!(
                "shared file {} does not exist yet; the release links to it anyway — create it on the host",
                target.display()
            ));
        }
    }
    let mut dirs: Vec<&Path> = Vec::new();
    let mut links: Vec<(&Path, PathBuf)> = Vec::new();
    for (s, target) in shared.iter().zip(&targets) {
        if s.is_dir {
            dirs.push(target);
        } else if let Some(parent) = target.parent() {
            dirs.push(parent);
        }
        links.push((target, release_dir.join(&s.path)));
    }
    // The release directory itself exists: only a deeper parent may need making. The path
    // itself may be a symlink of the app's tree: `symlink` replaces what is there, removing a
    // link and never what it points to.
    let link_parents: Vec<&Path> = links
        .iter()
        .filter_map(|(_, link)| link.parent().filter(|p| *p != release_dir))
        .collect();
    dirs.extend(link_parents);
    let links: Vec<(&Path, &Path)> = links.iter().map(|(t, l)| (*t, l.as_path())).collect();
    transport
        .create_dirs_and_symlinks(&dirs, &links)
        .map_err(before_switch)
}

/// The directories between the release and `shared` (`a`, `a/b` for `a/b/c`), as paths in the
/// release, outermost first.
fn release_parents(release_dir: &Path, shared: &SharedPath) -> Vec<PathBuf> {
    let mut dir = release_dir.to_path_buf();
    shared
        .path
        .parent()
        .into_iter()
        .flat_map(Path::components)
        .map(|component| {
            dir.push(component);
            dir.clone()
        })
        .collect()
}

/// Fails when a parent of `shared` inside the release (`dirs`, whose kinds are `found`) is a
/// symlink or not a directory. Parents that do not exist yet are fine: they are created as
/// real directories.
fn refuse_symlinked_parents(
    transport: &dyn Transport,
    release_dir: &Path,
    shared: &SharedPath,
    dirs: &[PathBuf],
    found: &[FileKind],
) -> Result<(), DeployError> {
    let written = if shared.is_dir {
        format!("{}/", shared.path.display())
    } else {
        shared.path.display().to_string()
    };
    for (dir, kind) in dirs.iter().zip(found) {
        let what = match kind {
            FileKind::Dir => continue,
            FileKind::Missing => return Ok(()),
            FileKind::Symlink => match transport.read_link(dir) {
                Ok(Some(to)) => format!("is a symlink (to {})", to.display()),
                _ => "is a symlink".to_string(),
            },
            FileKind::File | FileKind::Other => "is not a directory".to_string(),
        };
        let rel = dir.strip_prefix(release_dir).unwrap_or(dir);
        return Err(DeployError::before_switch(format!(
            "{}: shared path \"{written}\" cannot be linked: {} {what} in the release (it comes from the app's files), and hoist never follows a symlink of the release's tree; nothing outside the release was touched",
            transport.host(),
            rel.display(),
        ))
        .hint(format!(
            "make {} a real folder in the app (or exclude it), or take \"{written}\" out of [release] shared",
            rel.display()
        )));
    }
    Ok(())
}

/// True for a file the release does not ship because a shared path replaces it with a link.
pub(crate) fn is_shared(config: &Config, file: &Path) -> bool {
    config.release.shared.iter().any(|shared| {
        if shared.is_dir {
            file.starts_with(&shared.path)
        } else {
            file == shared.path
        }
    })
}
