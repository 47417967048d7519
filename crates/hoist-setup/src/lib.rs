//! `hoist setup`: what a server needs before hoist can deploy to it with a graceful restart,
//! rendered from templates and compared with what the host has.
//!
//! [`plan`] renders every file for the `[setup]` table and one host's root (hoist's loader,
//! gunicorn.conf.py or uwsgi.ini, a supervisor program or systemd unit per process, an nginx
//! server block), reads the host's current copies through the [`Transport`], and lists the
//! commands the host lacks; nothing is written. [`apply`] writes the files that differ and
//! creates the server's directories (owned by `[setup] user`); [`reload`] has the host's
//! supervisor load the programs. Templates are minijinja in strict mode (an unknown variable is
//! an error, not an empty string); a file of the same name in the override directory replaces
//! an embedded one.

mod files;
mod render;

pub use files::{Change, PlannedFile, SetupPlan};
pub use render::{render_all, render_for, Rendered, TEMPLATES};

use std::path::{Path, PathBuf};

use hoist_config::{Config, Supervision};
use hoist_transport::{Cmd, Transport};

/// Why setup could not plan or apply.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    /// A template failed to render (or an override could not be read).
    #[error("template {name}: {detail}")]
    Template { name: String, detail: String },
    /// The directories could not be given to `[setup] user`.
    #[error("{0}")]
    Owner(String),
    /// The supervisor did not load the programs.
    #[error("{0}")]
    Reload(String),
    /// Two programs would share a name.
    #[error("{0}")]
    Clash(String),
    /// A file could not be read or written on the host.
    #[error(transparent)]
    Transport(#[from] hoist_transport::TransportError),
}

/// Renders every file for the host behind `t`, whose deploy root is `root`, and compares it
/// with the host's copy; writes nothing.
pub fn plan(config: &Config, root: &Path, t: &dyn Transport) -> Result<SetupPlan, SetupError> {
    let mut files = Vec::new();
    for rendered in render_for(config, root)? {
        let current = t
            .read_file(&rendered.path)?
            .map(|bytes| String::from_utf8_lossy(&bytes).into_owned());
        files.push(PlannedFile {
            template: rendered.template,
            path: rendered.path,
            contents: rendered.contents,
            current,
        });
    }
    let shared = root.join("shared");
    let supervision = config.setup.supervision;
    Ok(SetupPlan {
        host: t.host().to_string(),
        root: root.to_path_buf(),
        dirs: vec![shared.join("run"), shared.join("logs")],
        owner: config.setup.user.clone(),
        programs: render::programs(config, root)?
            .into_iter()
            .map(|p| match supervision {
                Supervision::Supervisor => p.program,
                Supervision::Systemd => p.unit,
            })
            .collect(),
        supervision,
        supervisor_conf: config.setup.supervisor_conf.clone(),
        files,
        missing: missing_packages(config, t)?,
    })
}

/// Writes every file of the plan that differs from the host's copy (atomically, creating
/// directories), and creates the directories the server writes into, owned by `[setup] user`
/// when there is one (so that setup run as root leaves nothing the server cannot write).
/// Returns the paths written.
pub fn apply(plan: &SetupPlan, t: &dyn Transport) -> Result<Vec<PathBuf>, SetupError> {
    let mut written = Vec::new();
    if let Some(user) = &plan.owner {
        // The root and shared/ too, when setup creates them: the deploy user writes there.
        let made = t.exec(
            &Cmd::new("sh")
                .arg("-c")
                .arg(
                    r#"u=$1; shift; for d; do if [ ! -d "$d" ]; then mkdir -p "$d" && chown "$u:" "$d" || exit 1; fi; done"#,
                )
                .arg("hoist-setup")
                .arg(user.clone())
                .path_arg(&plan.root)
                .path_arg(&plan.root.join("shared")),
        )?;
        if !made.success() {
            return Err(SetupError::Owner(format!(
                "cannot create {} for user {user}: {}",
                plan.root.display(),
                made.tail(2)
            )));
        }
    }
    for dir in &plan.dirs {
        t.create_dir_all(dir)?;
    }
    if let Some(user) = &plan.owner {
        let owned = t.exec(
            &Cmd::new("chown")
                .arg(format!("{user}:"))
                .args(plan.dirs.iter().map(|d| d.display().to_string())),
        )?;
        if !owned.success() {
            return Err(SetupError::Owner(format!(
                "cannot give {} to user {user}: {}",
                plan.dirs
                    .iter()
                    .map(|d| d.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", "),
                owned.tail(2)
            )));
        }
    }
    for file in plan
        .files
        .iter()
        .filter(|f| f.change() != Change::Unchanged)
    {
        if let Some(dir) = file.path.parent() {
            t.create_dir_all(dir)?;
        }
        t.write_file_atomic(&file.path, file.contents.as_bytes())?;
        written.push(file.path.clone());
    }
    Ok(written)
}

/// What reloading the supervisor found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reloaded {
    /// Loaded; each program with its state (`example-web RUNNING`, or BACKOFF until the
    /// first release exists when the server runs from it).
    Loaded(Vec<String>),
    /// supervisord does not run (or supervisorctl is missing): the files load when it starts.
    NotRunning(String),
}

/// Makes the host's supervisor load the programs: `supervisorctl reread` and `update` of
/// setup's programs only (never another app's), or `systemctl daemon-reload` and `enable
/// --now` of the units.
pub fn reload(plan: &SetupPlan, t: &dyn Transport) -> Result<Reloaded, SetupError> {
    let fail = |what: &str, out: &hoist_transport::Output| {
        SetupError::Reload(format!("`{what}` failed on {}: {}", plan.host, out.tail(3)))
    };
    match plan.supervision {
        Supervision::Supervisor => {
            use hoist_service::supervisor::{query_status_in, supervisorctl, Unreachable};
            if plan.missing.iter().any(|m| m.command == "supervisorctl") {
                return Ok(Reloaded::NotRunning(
                    "supervisorctl is not installed".into(),
                ));
            }
            let conf = plan.supervisor_conf.as_deref();
            let reread = t.exec(&supervisorctl(conf, "reread", &[]))?;
            let said = reread.tail(3);
            if let Some(problem) = Unreachable::from_output(&said) {
                return match problem {
                    Unreachable::NotRunning(_) => Ok(Reloaded::NotRunning(problem.detail())),
                    Unreachable::PermissionDenied(_) => Err(SetupError::Reload(format!(
                        "{}\nhint: {}",
                        problem.detail(),
                        problem.hint()
                    ))),
                };
            }
            if !reread.success() || said.contains("ERROR") {
                return Err(fail("supervisorctl reread", &reread));
            }
            let update = t.exec(&supervisorctl(conf, "update", &plan.programs))?;
            if !update.success() || update.tail(3).contains("ERROR") {
                return Err(fail("supervisorctl update", &update));
            }
            let states = match query_status_in(t, conf, &plan.programs)? {
                Ok(found) => found
                    .into_iter()
                    .map(|s| format!("{} {}", s.name, s.state))
                    .collect(),
                Err(problem) => vec![problem.detail()],
            };
            Ok(Reloaded::Loaded(states))
        }
        Supervision::Systemd => {
            let daemon = t.exec(&Cmd::new("systemctl").arg("daemon-reload"))?;
            if !daemon.success() {
                return Err(fail("systemctl daemon-reload", &daemon));
            }
            let enable = t.exec(
                &Cmd::new("systemctl")
                    .args(["enable", "--now", "--"])
                    .args(plan.programs.iter().cloned()),
            )?;
            if !enable.success() {
                return Err(fail("systemctl enable --now", &enable));
            }
            Ok(Reloaded::Loaded(
                plan.programs
                    .iter()
                    .map(|u| format!("{u} enabled"))
                    .collect(),
            ))
        }
    }
}

/// A command the host lacks, and the Debian package that provides it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Missing {
    pub command: String,
    pub package: String,
}

fn missing_packages(config: &Config, t: &dyn Transport) -> Result<Vec<Missing>, SetupError> {
    use hoist_config::AppServer;
    let setup = &config.setup;
    let mut needs: Vec<(&str, &str)> = Vec::new();
    if setup.nginx {
        needs.push(("nginx", "nginx"));
    }
    match setup.supervision {
        Supervision::Supervisor => needs.push(("supervisorctl", "supervisor")),
        Supervision::Systemd => needs.push(("systemctl", "systemd")),
    }
    if setup.server == AppServer::Uwsgi && setup.uwsgi.is_none() {
        needs.push(("uwsgi", "uwsgi-core uwsgi-plugin-python3"));
    }
    let mut missing = Vec::new();
    for (command, package) in needs {
        let probe = Cmd::new("sh")
            .arg("-c")
            .arg("command -v \"$1\" >/dev/null 2>&1 || [ -x \"/usr/sbin/$1\" ]")
            .arg("hoist-setup")
            .arg(command);
        if !t.exec(&probe)?.success() {
            missing.push(Missing {
                command: command.into(),
                package: package.into(),
            });
        }
    }
    if setup.server == AppServer::Uwsgi && setup.uwsgi.is_none() {
        let plugin = Cmd::new("sh")
            .arg("-c")
            .arg("ls /usr/lib/uwsgi/plugins/python3*_plugin.so >/dev/null 2>&1");
        if !t.exec(&plugin)?.success() && !missing.iter().any(|m| m.command == "uwsgi") {
            missing.push(Missing {
                command: "uwsgi python3 plugin".into(),
                package: "uwsgi-plugin-python3".into(),
            });
        }
    }
    Ok(missing)
}
