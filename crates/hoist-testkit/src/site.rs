//! [`Site`]: a copy of the example app in a temporary directory, one deploy root per host, a
//! loopback port per host, and a hoist.toml written from typed options ([`SiteBuilder`]), with
//! optional SSH hosts (one [`SshServer`], a host alias per inventory host).
//!
//! Each root holds its port in `<root>/port`; with one root the port is also written into the
//! config as a number (a health URL cannot run a shell).

use std::fs;
use std::path::{Path, PathBuf};

use crate::{free_port, SshServer};

/// The example Flask app every deploy test ships.
#[must_use]
pub fn example_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/flask-app")
}

/// Copies a directory tree, skipping what a developer's checkout may hold but a test must not.
///
/// # Panics
///
/// On any I/O error.
pub fn copy_tree(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for entry in fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name();
        if matches!(
            name.to_string_lossy().as_ref(),
            ".venv" | "__pycache__" | ".pytest_cache" | ".git"
        ) {
            continue;
        }
        let ty = entry.file_type().unwrap();
        let dest = to.join(&name);
        if ty.is_dir() {
            copy_tree(&entry.path(), &dest);
        } else if ty.is_file() {
            fs::copy(entry.path(), &dest).unwrap();
        }
    }
}

/// Where the site's hosts are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hosts {
    /// This machine, one root (`<dir>/root`), no `[hosts]`: the `local` environment.
    Local,
    /// Roots on this machine for `web1`..`webN` (`<dir>/webN`); `release.root` names the
    /// first. For engine tests that build their own `Fleet` over these roots.
    LocalRoots(usize),
    /// `web1`..`webN` over SSH through one sshd on 127.0.0.1 (roots `<dir>/srv webN`, with a
    /// space to keep quoting honest), in group `web`, environment `production`.
    Ssh(usize),
}

/// A `[[hook]]`.
#[derive(Debug, Clone)]
pub struct Hook {
    pub name: String,
    pub run: String,
    pub once: bool,
    pub timeout: Option<String>,
}

impl Hook {
    #[must_use]
    pub fn new(name: &str, run: &str) -> Hook {
        Hook {
            name: name.into(),
            run: run.into(),
            once: false,
            timeout: None,
        }
    }

    /// Runs only for a new environment (`once = true`).
    #[must_use]
    pub fn once(mut self) -> Hook {
        self.once = true;
        self
    }

    #[must_use]
    pub fn timeout(mut self, timeout: &str) -> Hook {
        self.timeout = Some(timeout.into());
        self
    }
}

/// The `[health]` check of the site.
#[derive(Debug, Clone)]
pub enum Health {
    /// GET `http://127.0.0.1:<port>/health`, expecting 200 and "ok" (one root only).
    Url,
    /// A shell command; `{port}` in it is the host's port.
    Command(String),
}

/// Typed options of a [`Site`]; `build` writes the files.
#[derive(Debug, Clone)]
pub struct SiteBuilder {
    prefix: String,
    hosts: Hosts,
    installer: String,
    exclude: Vec<String>,
    requirements: bool,
    keep_releases: Option<usize>,
    shared: Vec<String>,
    hooks: Vec<Hook>,
    raw_hooks: String,
    app_extra: String,
    restart_timeout: Option<String>,
    health: Health,
    health_timeout: String,
    extra: String,
}

impl Default for SiteBuilder {
    fn default() -> Self {
        SiteBuilder {
            prefix: "hoist-test-".into(),
            hosts: Hosts::Local,
            installer: "uv".into(),
            exclude: vec![
                "tests/".into(),
                "instance/settings.toml".into(),
                "instance/*.sqlite3".into(),
            ],
            requirements: false,
            keep_releases: None,
            shared: vec!["logs/".into(), "run/".into()],
            hooks: Vec::new(),
            raw_hooks: String::new(),
            app_extra: String::new(),
            restart_timeout: None,
            health: Health::Url,
            health_timeout: "10s".into(),
            extra: String::new(),
        }
    }
}

impl SiteBuilder {
    #[must_use]
    pub fn new() -> SiteBuilder {
        SiteBuilder::default()
    }

    /// The temporary directory's name prefix (shows whose leftovers a directory is).
    #[must_use]
    pub fn prefix(mut self, prefix: &str) -> Self {
        prefix.clone_into(&mut self.prefix);
        self
    }

    #[must_use]
    pub fn hosts(mut self, hosts: Hosts) -> Self {
        self.hosts = hosts;
        self
    }

    #[must_use]
    pub fn installer(mut self, installer: &str) -> Self {
        installer.clone_into(&mut self.installer);
        self
    }

    /// Adds to `[app] exclude`.
    #[must_use]
    pub fn exclude(mut self, pattern: &str) -> Self {
        self.exclude.push(pattern.into());
        self
    }

    /// Writes `requirements = ["requirements.txt"]` (else hoist's default).
    #[must_use]
    pub fn requirements(mut self) -> Self {
        self.requirements = true;
        self
    }

    #[must_use]
    pub fn keep_releases(mut self, n: usize) -> Self {
        self.keep_releases = Some(n);
        self
    }

    /// Adds to `[release] shared`.
    #[must_use]
    pub fn shared(mut self, path: &str) -> Self {
        self.shared.push(path.into());
        self
    }

    #[must_use]
    pub fn hook(mut self, hook: Hook) -> Self {
        self.hooks.push(hook);
        self
    }

    /// Keys written as TOML at the end of `[app]` (e.g. `installer_env = ...`).
    #[must_use]
    pub fn app_extra(mut self, toml: &str) -> Self {
        self.app_extra.push_str(toml);
        self
    }

    /// `[[hook]]` tables written as TOML, after the typed ones.
    #[must_use]
    pub fn extra_hooks(mut self, toml: &str) -> Self {
        self.raw_hooks.push_str(toml);
        self
    }

    #[must_use]
    pub fn restart_timeout(mut self, timeout: &str) -> Self {
        self.restart_timeout = Some(timeout.into());
        self
    }

    #[must_use]
    pub fn health(mut self, health: Health) -> Self {
        self.health = health;
        self
    }

    #[must_use]
    pub fn health_timeout(mut self, timeout: &str) -> Self {
        timeout.clone_into(&mut self.health_timeout);
        self
    }

    /// TOML appended as is (more hosts, a `[pipeline]`, ...).
    #[must_use]
    pub fn extra(mut self, toml: &str) -> Self {
        self.extra.push_str(toml);
        self
    }

    /// Copies the example app, makes the roots, starts sshd for SSH hosts, writes hoist.toml.
    ///
    /// # Panics
    ///
    /// On any I/O error, or when sshd does not start.
    #[must_use]
    pub fn build(self) -> Site {
        let dir = tempfile::Builder::new()
            .prefix(&self.prefix)
            .tempdir()
            .unwrap();
        let project = dir.path().join("project");
        copy_tree(&example_dir(), &project);
        let (names, server): (Vec<String>, _) = match self.hosts {
            Hosts::Local => (vec!["root".into()], None),
            Hosts::LocalRoots(n) => ((1..=n).map(|i| format!("web{i}")).collect(), None),
            Hosts::Ssh(n) => (
                (1..=n).map(|i| format!("srv web{i}")).collect(),
                Some(SshServer::start()),
            ),
        };
        let mut roots = Vec::new();
        let mut ports = Vec::new();
        for name in &names {
            let root = dir.path().join(name);
            let port = free_port();
            if self.hosts != Hosts::Local {
                fs::create_dir_all(&root).unwrap();
                fs::write(root.join("port"), port.to_string()).unwrap();
            }
            roots.push(root);
            ports.push(port);
        }
        let config = project.join("hoist.toml");
        fs::write(&config, self.toml(&roots, &ports, server.as_ref())).unwrap();
        Site {
            dir,
            project,
            config,
            roots,
            ports,
            server,
        }
    }

    fn toml(&self, roots: &[PathBuf], ports: &[u16], server: Option<&SshServer>) -> String {
        let list = |items: &[String]| {
            items
                .iter()
                .map(|i| format!("{i:?}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let port = if roots.len() == 1 && self.hosts != Hosts::Ssh(1) {
            ports[0].to_string()
        } else {
            "$(cat \"$HOIST_ROOT/port\")".to_string()
        };
        let mut text = format!(
            "[app]\nname = \"example\"\nentry = \"app:app\"\ninstaller = \"{}\"\nexclude = [{}]\n",
            self.installer,
            list(&self.exclude)
        );
        if self.requirements {
            text.push_str("requirements = [\"requirements.txt\"]\n");
        }
        if !self.app_extra.is_empty() {
            text.push_str(&self.app_extra);
            text.push('\n');
        }
        let root = match self.hosts {
            Hosts::Ssh(_) => "/srv/unused".to_string(),
            _ => roots[0].display().to_string(),
        };
        text.push_str(&format!("\n[release]\nroot = \"{root}\"\n"));
        if let Some(keep) = self.keep_releases {
            text.push_str(&format!("keep_releases = {keep}\n"));
        }
        text.push_str(&format!("shared = [{}]\n", list(&self.shared)));
        for hook in &self.hooks {
            text.push_str(&format!(
                "\n[[hook]]\nname = {:?}\nrun = {:?}\n",
                hook.name, hook.run
            ));
            if hook.once {
                text.push_str("once = true\n");
            }
            if let Some(timeout) = &hook.timeout {
                text.push_str(&format!("timeout = \"{timeout}\"\n"));
            }
        }
        if !self.raw_hooks.is_empty() {
            text.push('\n');
            text.push_str(&self.raw_hooks);
        }
        text.push_str(&format!(
            "\n[[process]]\nname = \"web\"\nrestart = \"command\"\ncommand = {:?}\n",
            format!("HOIST_PORT={port} bin/restart-web")
        ));
        if let Some(timeout) = &self.restart_timeout {
            text.push_str(&format!("timeout = \"{timeout}\"\n"));
        }
        match &self.health {
            Health::Url => text.push_str(&format!(
                "\n[health]\nurl = \"http://127.0.0.1:{port}/health\"\nstatus = 200\nbody = \"ok\"\n"
            )),
            Health::Command(command) => text.push_str(&format!(
                "\n[health]\ncommand = {:?}\n",
                command.replace("{port}", &port)
            )),
        }
        text.push_str(&format!(
            "timeout = \"{}\"\ninterval = \"100ms\"\n",
            self.health_timeout
        ));
        if let Some(server) = server {
            text.push_str(&format!(
                "\n[ssh]\nconfig_file = \"{}\"\nconnect_timeout = \"2s\"\n\n",
                server.client_config.display()
            ));
            for (i, root) in roots.iter().enumerate() {
                text.push_str(&format!(
                    "[hosts.web{n}]\naddress = \"web{n}\"\nroot = \"{}\"\ngroups = [\"web\"]\n\n",
                    root.display(),
                    n = i + 1
                ));
            }
        }
        text.push_str(&self.extra);
        if matches!(self.hosts, Hosts::Ssh(_)) {
            text.push_str("\n[environments.production]\ngroups = [\"web\"]\n");
        }
        text
    }
}

/// A built site. Stopping what its deploys started is the test's business (its `Drop`).
pub struct Site {
    pub dir: tempfile::TempDir,
    /// The app's source: the example's copy, with hoist.toml.
    pub project: PathBuf,
    pub config: PathBuf,
    /// One deploy root per host (`<root>/port` holds its port, except for [`Hosts::Local`]).
    pub roots: Vec<PathBuf>,
    pub ports: Vec<u16>,
    /// The sshd of [`Hosts::Ssh`]; stopped when dropped.
    pub server: Option<SshServer>,
}
