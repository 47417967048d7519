//! `hoist setup`: what a server needs before hoist can deploy to it with a graceful restart,
//! rendered from templates and compared with what the host has.
//!
//! [`plan`] renders every file for the `[setup]` table (hoist's loader, gunicorn.conf.py or
//! uwsgi.ini, a supervisor program or systemd unit, an nginx server block), reads the host's
//! current copies through the [`Transport`], and lists the commands the host lacks; nothing is
//! written. [`apply`] writes the files that differ. Templates are minijinja in strict mode (an
//! unknown variable is an error, not an empty string); a file of the same name in the override
//! directory replaces an embedded one.

mod files;
mod render;

pub use files::{Change, PlannedFile, SetupPlan};
pub use render::{render_all, Rendered, TEMPLATES};

use std::path::PathBuf;

use hoist_config::Config;
use hoist_transport::{Cmd, Transport};

/// Why setup could not plan or apply.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    /// A template failed to render (or an override could not be read).
    #[error("template {name}: {detail}")]
    Template { name: String, detail: String },
    /// A file could not be read or written on the host.
    #[error(transparent)]
    Transport(#[from] hoist_transport::TransportError),
}

/// Renders every file and compares it with the host's copy; writes nothing.
pub fn plan(config: &Config, t: &dyn Transport) -> Result<SetupPlan, SetupError> {
    let mut files = Vec::new();
    for rendered in render_all(config)? {
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
    let shared = config.release.root.join("shared");
    Ok(SetupPlan {
        host: t.host().to_string(),
        dirs: vec![shared.join("run"), shared.join("logs")],
        files,
        missing: missing_packages(config, t)?,
    })
}

/// Writes every file of the plan that differs from the host's copy (atomically, creating
/// directories). Returns the paths written.
pub fn apply(plan: &SetupPlan, t: &dyn Transport) -> Result<Vec<PathBuf>, SetupError> {
    let mut written = Vec::new();
    for dir in &plan.dirs {
        t.create_dir_all(dir)?;
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

/// A command the host lacks, and the Debian package that provides it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Missing {
    pub command: String,
    pub package: String,
}

fn missing_packages(config: &Config, t: &dyn Transport) -> Result<Vec<Missing>, SetupError> {
    use hoist_config::{AppServer, Supervision};
    let setup = &config.setup;
    let mut needs: Vec<(&str, &str)> = vec![("nginx", "nginx")];
    match setup.supervision {
        Supervision::Supervisor => needs.push(("supervisorctl", "supervisor")),
        Supervision::Systemd => needs.push(("systemctl", "systemd")),
    }
    if setup.server == AppServer::Uwsgi {
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
    if setup.server == AppServer::Uwsgi {
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
