//! `hoist init`: a commented hoist.toml for a project, from what its files say.

mod deployment_files;
mod detect;
mod procfile;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use detect::{detect, DependencyFinding, Findings, HookFinding, ProcessFinding, RestartFinding};

/// The hoist.toml that `hoist init` proposes, and what it was based on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InitPlan {
    /// The commented hoist.toml, meant for `<project_dir>/hoist.toml`. Guesses that need a
    /// person's check are marked `PLACEHOLDER` on their comment line.
    pub text: String,
    /// One human line per finding, e.g. `entry point: app:app (from Procfile)`; guesses say so.
    pub detected: Vec<String>,
}

/// A guess `hoist init` marked for a person's check and that is still there: a `# PLACEHOLDER:`
/// comment and the setting under it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placeholder {
    /// 1-based line of the setting (the comment is on the line before).
    pub line: usize,
    /// The setting as written, e.g. `entry = "app:app"`.
    pub setting: String,
    /// The comment's advice, without `# PLACEHOLDER:`.
    pub advice: String,
}

/// The `# PLACEHOLDER:` comments of a hoist.toml written by `hoist init` that are still there,
/// each with the first setting after it.
pub fn placeholders(text: &str) -> Vec<Placeholder> {
    let lines: Vec<&str> = text.lines().collect();
    let mut found = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let Some(advice) = line.trim_start().strip_prefix("# PLACEHOLDER:") else {
            continue;
        };
        let setting = lines[i + 1..]
            .iter()
            .enumerate()
            .find(|(_, l)| {
                let l = l.trim();
                !l.is_empty() && !l.starts_with('#')
            })
            .map(|(j, l)| (i + 1 + j, l.trim().to_string()));
        if let Some((index, setting)) = setting {
            found.push(Placeholder {
                line: index + 1,
                setting,
                advice: advice.trim().to_string(),
            });
        }
    }
    found
}

/// Why `hoist init` could not look at the project.
#[derive(Debug, thiserror::Error)]
pub enum InitError {
    /// The project directory is missing or is a file.
    #[error("project directory {} does not exist or is not a directory", path.display())]
    NotADirectory {
        /// The directory given.
        path: PathBuf,
    },
    /// A file of the project exists but cannot be read.
    #[error("cannot read {}: {source}", path.display())]
    Read {
        /// The file or directory.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The release root given is not usable.
    #[error("{message}")]
    InvalidRoot {
        /// The root given.
        root: PathBuf,
        /// What is wrong with it.
        message: String,
        /// How to fix it.
        hint: String,
    },
}

impl InitError {
    /// How to fix it, for the CLI's `hint:` line.
    #[must_use]
    pub fn hint(&self) -> Option<&str> {
        match self {
            Self::InvalidRoot { hint, .. } => Some(hint),
            Self::NotADirectory { .. } | Self::Read { .. } => None,
        }
    }
}

/// Proposes a hoist.toml for the project in `project_dir`, asking nothing.
///
/// Detects the app name (the directory's, sanitised), where the packages are declared
/// (`uv.lock`/`poetry.lock` beside pyproject.toml, requirements files — production ones;
/// development and test ones are listed in a comment — or pyproject.toml's `[project]`), the
/// entry point (Procfile `web:` line, a server program in the repository's supervisor files or
/// systemd units, wsgi.py/asgi.py/app.py/main.py, a Django project, a package's `__init__.py`),
/// the interpreter (`.python-version`, `runtime.txt`), processes (Procfile lines, restarted as
/// the repository's supervisor programs or systemd units say), hooks (Procfile `release:` and
/// the commands chained before the server in `web:`) and the release steps of Django,
/// Flask-Migrate and Alembic, offered commented out.
/// `root` defaults to `/srv/<name>`. The caller writes the file; this function writes nothing.
///
/// # Errors
///
/// When `project_dir` is not a directory, a project file cannot be read, or `root` is not a
/// usable release root.
pub fn init_plan(project_dir: &Path, root: Option<&Path>) -> Result<InitPlan, InitError> {
    if !project_dir.is_dir() {
        return Err(InitError::NotADirectory {
            path: project_dir.to_path_buf(),
        });
    }
    // The directory's own name is the app's name, also when it is given as ".".
    let project = std::fs::canonicalize(project_dir).map_err(|source| InitError::Read {
        path: project_dir.to_path_buf(),
        source,
    })?;
    let findings = detect(&project)?;
    let (root, root_from) = match root {
        Some(root) => {
            let text = root.to_string_lossy();
            let clean = crate::release::check_root(&text).map_err(|(message, hint)| {
                InitError::InvalidRoot {
                    root: root.to_path_buf(),
                    message,
                    hint,
                }
            })?;
            (clean.to_string_lossy().into_owned(), "given")
        }
        None => (format!("/srv/{}", findings.name), "default"),
    };
    Ok(Writer::new(&findings).write(&root, root_from))
}

/// Builds the text and the `detected` lines together, so they cannot disagree.
struct Writer<'a> {
    findings: &'a Findings,
    text: String,
    detected: Vec<String>,
}

/// A TOML literal for `value` (quoted and escaped as TOML requires).
fn literal(value: impl Into<toml::Value>) -> String {
    value.into().to_string()
}

impl<'a> Writer<'a> {
    fn new(findings: &'a Findings) -> Self {
        Self {
            findings,
            text: String::new(),
            detected: Vec::new(),
        }
    }

    fn line(&mut self, line: &str) {
        self.text.push_str(line);
        self.text.push('\n');
    }

    /// One key with its one-line comment above it.
    fn key(&mut self, comment: &str, key: &str, value: &str) {
        let _ = writeln!(self.text, "# {comment}\n{key} = {value}");
    }

    fn write(mut self, root: &str, root_from: &str) -> InitPlan {
        let f = self.findings;
        self.line("# hoist.toml: how hoist deploys this app. docs/config.md describes every key.");
        self.line(
            "# Written by `hoist init`. Comments starting with PLACEHOLDER mark guesses to check.",
        );
        self.line("");
        self.app();
        self.line("");
        self.release(root);
        self.detected
            .push(format!("release root: {root} ({root_from})"));
        self.hooks();
        self.processes();
        self.health();
        if let DependencyFinding::Requirements { note: Some(note) } = &f.dependencies {
            self.detected.push(note.clone());
        }
        InitPlan {
            text: self.text,
            detected: self.detected,
        }
    }

    fn app(&mut self) {
        let f = self.findings;
        self.line("[app]");
        self.key(
            "The app's name, used in messages and on the servers (lowercase, digits, - and _).",
            "name",
            &literal(f.name.as_str()),
        );
        self.detected
            .push(format!("app name: {} (from the directory name)", f.name));
        self.key(
            "The project directory to deploy, relative to this file.",
            "source",
            &literal("."),
        );
        match &f.entry {
            Some((entry, from)) => {
                self.key(
                    &format!("The WSGI/ASGI application as \"module:attribute\" (from {from})."),
                    "entry",
                    &literal(entry.to_string()),
                );
                self.detected
                    .push(format!("entry point: {entry} (from {from})"));
            }
            None => {
                self.key(
                    "PLACEHOLDER: no WSGI/ASGI app found; set \"module:attribute\", e.g. \"app:app\" for app.py defining `app`.",
                    "entry",
                    &literal("app:app"),
                );
                self.detected.push(
                    "entry point: not found; wrote the placeholder app:app, set `entry` in hoist.toml".to_owned(),
                );
            }
        }
        match &f.python {
            Some((python, from)) => {
                self.key(
                    &format!("The Python interpreter command on the servers (from {from})."),
                    "python",
                    &literal(python.as_str()),
                );
                self.detected
                    .push(format!("python: {python} (from {from})"));
            }
            None => {
                self.key(
                    "The Python interpreter command on the servers, e.g. \"python3.12\".",
                    "python",
                    &literal("python3"),
                );
                self.detected
                    .push("python: python3 (default; no .python-version)".to_owned());
            }
        }
        match &f.dependencies {
            DependencyFinding::Requirements { .. } => self.requirements(),
            DependencyFinding::Lock(lock) => {
                let manifest = if *lock == "Pipfile.lock" {
                    "Pipfile"
                } else {
                    "pyproject.toml"
                };
                self.key(
                    &format!("Where the packages are declared: {lock} with {manifest}, installed as locked (see docs/config.md)."),
                    "dependencies",
                    &literal(*lock),
                );
                self.selection();
                self.detected.push(format!(
                    "dependencies: {lock} (with {manifest}), installed as locked without the dev group"
                ));
                self.requirements_not_used(lock);
            }
            DependencyFinding::Pyproject => {
                self.key(
                    "Where the packages are declared: [project] dependencies of pyproject.toml, unpinned (no lock file).",
                    "dependencies",
                    &literal("pyproject.toml"),
                );
                self.selection();
                self.detected.push(
                    "dependencies: pyproject.toml [project] dependencies, no lock file: deploys are not reproducible; run `uv lock`, commit uv.lock and set `dependencies = \"uv.lock\"`".to_owned(),
                );
            }
        }
        if !f.python_path.is_empty() {
            let dirs: Vec<String> = f
                .python_path
                .iter()
                .map(|d| d.display().to_string())
                .collect();
            self.key(
                "The package lives under src/: imported from the release's src/, never installed into the shared environment.",
                "python_path",
                &literal(dirs.iter().map(String::as_str).collect::<Vec<_>>()),
            );
            self.detected
                .push(format!("python_path: {} (a src/ layout)", dirs.join(", ")));
        }
        self.key(
            "Extra gitignore-style patterns left out of the upload, e.g. [\"tests/\", \"*.sqlite\"].",
            "exclude",
            "[]",
        );
        self.key(
            "Installer: \"auto\" (uv when the server has it, else pip), \"uv\" or \"pip\".",
            "installer",
            &literal("auto"),
        );
    }

    fn requirements(&mut self) {
        let f = self.findings;
        let install: Vec<&str> = f.requirements.install.iter().map(String::as_str).collect();
        self.key(
            "Requirements files installed into each release's environment, relative to source.",
            "requirements",
            &literal(install.clone()),
        );
        if install.is_empty() {
            self.detected
                .push("requirements: none found; wrote requirements = []".to_owned());
        } else {
            self.detected
                .push(format!("requirements: {}", install.join(", ")));
        }
        if !f.requirements.left_out.is_empty() {
            let left_out = f.requirements.left_out.join(", ");
            self.line(&format!(
                "# Also found, not listed (development/test, or included by the above with -r): {left_out}"
            ));
            self.detected
                .push(format!("requirements also found, not listed: {left_out}"));
        }
    }

    fn selection(&mut self) {
        self.key(
            "Optional dependencies installed too, e.g. [\"postgres\"].",
            "extras",
            "[]",
        );
        self.key(
            "Dependency groups installed too, e.g. [\"prod\"]; the dev group never is unless listed.",
            "groups",
            "[]",
        );
    }

    fn requirements_not_used(&mut self, lock: &str) {
        let f = self.findings;
        let files: Vec<&str> = f
            .requirements
            .install
            .iter()
            .chain(&f.requirements.left_out)
            .map(String::as_str)
            .collect();
        if !files.is_empty() {
            let files = files.join(", ");
            self.line(&format!("# Also found, not used ({lock} decides): {files}"));
            self.detected.push(format!(
                "requirements files found, not used: {files} ({lock} decides)"
            ));
        }
    }

    fn release(&mut self, root: &str) {
        self.line("[release]");
        self.key(
            "Absolute directory on each server that holds the releases, shared files and `current`.",
            "root",
            &literal(root),
        );
        self.key(
            "How many good releases to keep; at least 2, so that there is one to roll back to.",
            "keep_releases",
            "5",
        );
        self.key(
            "Files and folders kept across releases in <root>/shared, e.g. [\"instance/\", \"logs/\"] (trailing / = folder).",
            "shared",
            "[]",
        );
        self.key(
            "Folder under root with one folder per release (\"builds\" to adopt an existing layout).",
            "releases_dir",
            &literal("releases"),
        );
        self.key(
            "Symlink under root that points at the live release.",
            "current_link",
            &literal("current"),
        );
        self.key(
            "How long a deploy waits for another deploy's lock before giving up, e.g. \"5m\".",
            "lock_wait",
            &literal("0s"),
        );
    }

    fn hooks(&mut self) {
        let f = self.findings;
        if !f.hooks.is_empty() {
            self.line("");
            self.line("# Hooks run in order inside the new release, before it goes live.");
        }
        for hook in &f.hooks {
            self.line("[[hook]]");
            self.hook_keys(&hook.name, &hook.run, hook.once, &hook.from);
            let hosts = if hook.once {
                "once per deploy"
            } else {
                "on every host"
            };
            self.detected.push(format!(
                "hook {}: `{}`, {hosts} (from {})",
                hook.name, hook.run, hook.from
            ));
        }
        if !f.suggested_hooks.is_empty() {
            self.line("");
            self.line("# Release steps this project's framework usually needs; they need the database (or the");
            self.line("# static root) reachable from the hosts. Uncomment to use:");
        }
        for hook in &f.suggested_hooks {
            self.suggested_hook(hook);
        }
    }

    fn suggested_hook(&mut self, hook: &HookFinding) {
        self.line("# [[hook]]");
        self.line(&format!("# name = {}", literal(hook.name.as_str())));
        self.line(&format!("# run = {}", literal(hook.run.as_str())));
        self.line(&format!("# once = {}", literal(hook.once)));
        self.detected.push(format!(
            "suggested hook {}: `{}` ({}), commented out in hoist.toml",
            hook.name, hook.run, hook.from
        ));
    }

    fn hook_keys(&mut self, name: &str, run: &str, once: bool, from: &str) {
        self.key(
            "A name for this hook, unique among hooks.",
            "name",
            &literal(name),
        );
        self.key(
            &format!("The command, run with bash in the new release with its .venv on PATH (from {from})."),
            "run",
            &literal(run),
        );
        self.key(
            "true: run on one host per deploy (e.g. migrations); false: on every host.",
            "once",
            &literal(once),
        );
        self.key(
            "How long the hook may run before the deploy fails.",
            "timeout",
            &literal("10m"),
        );
    }

    fn processes(&mut self) {
        let f = self.findings;
        for (i, process) in f.processes.iter().enumerate() {
            self.line("");
            if i == 0 {
                self.line("# Processes restarted in order after the switch to the new release.");
            }
            self.line("[[process]]");
            self.process(process);
        }
    }

    fn process(&mut self, process: &ProcessFinding) {
        let name = &process.name;
        let from = process.from.as_deref().unwrap_or("Procfile");
        let source = process
            .command
            .as_ref()
            .map_or_else(String::new, |command| format!(" runs `{command}` ({from})"));
        self.key(
            &format!("A name for this process, unique among processes; it{source}."),
            "name",
            &literal(name.as_str()),
        );
        match &process.restart {
            RestartFinding::GunicornHup(pidfile) => {
                self.key(
                    "Graceful reload: SIGHUP to the gunicorn master (from its --pid).",
                    "restart",
                    &literal("gunicorn-hup"),
                );
                self.key(
                    "gunicorn's pid file (from --pid).",
                    "pidfile",
                    &literal(pidfile.as_str()),
                );
                self.detected.push(format!(
                    "process {name}: gunicorn-hup with pidfile {pidfile} (from {from})"
                ));
            }
            RestartFinding::UwsgiChain(fifo) => {
                self.key(
                    "Graceful reload: uWSGI chain reload through its master FIFO (from --master-fifo).",
                    "restart",
                    &literal("uwsgi-chain"),
                );
                self.key(
                    "uWSGI's master FIFO (from --master-fifo).",
                    "fifo",
                    &literal(fifo.as_str()),
                );
                self.detected.push(format!(
                    "process {name}: uwsgi-chain with fifo {fifo} (from {from})"
                ));
            }
            RestartFinding::Supervisor(program, from) => {
                self.key(
                    &format!("Restarted with supervisorctl (from {from})."),
                    "restart",
                    &literal("supervisor"),
                );
                self.key(
                    &format!("The supervisor program (from {from})."),
                    "program",
                    &literal(program.as_str()),
                );
                self.detected.push(format!(
                    "process {name}: supervisor program {program} (from {from})"
                ));
            }
            RestartFinding::Systemd(unit, from) => {
                self.key(
                    &format!("Restarted with systemctl (from {from})."),
                    "restart",
                    &literal("systemd"),
                );
                self.key(
                    &format!("The systemd unit (from {from})."),
                    "unit",
                    &literal(unit.as_str()),
                );
                self.detected
                    .push(format!("process {name}: systemd unit {unit} (from {from})"));
            }
            RestartFinding::GuessedSystemd(unit) => {
                self.key(
                    "PLACEHOLDER: how it restarts: supervisor, systemd, uwsgi-chain, gunicorn-hup or command.",
                    "restart",
                    &literal("systemd"),
                );
                self.key(
                    "PLACEHOLDER: the systemd unit that runs it; check the name on your servers.",
                    "unit",
                    &literal(unit.as_str()),
                );
                let from = process
                    .from
                    .as_ref()
                    .map_or_else(String::new, |from| format!(" (from {from})"));
                self.detected.push(format!(
                    "process {name}{from}: placeholder restart = \"systemd\", unit = \"{unit}\"; set how your servers run it"
                ));
            }
        }
        self.key(
            "How long the restart may take before it counts as failed.",
            "timeout",
            &literal("60s"),
        );
    }

    fn health(&mut self) {
        let port = self.findings.port.as_ref().map_or(8000, |(port, _)| *port);
        self.line("");
        self.line(
            "# Health check after each restart: uncomment and point it at a URL the app serves.",
        );
        if let Some((port, from)) = &self.findings.port {
            self.line(&format!("# The app listens on port {port} (from {from})."));
        }
        self.line("# [health]");
        self.line("# # An http:// URL on the server that must answer `status` (exactly one of url or command).");
        self.line(&format!("# url = \"http://127.0.0.1:{port}/\""));
        self.line("# # The expected HTTP status.");
        self.line("# status = 200");
        self.line("# # How long to wait in total for a passing check.");
        self.line("# timeout = \"30s\"");
        self.line("# # Time between attempts.");
        self.line("# interval = \"250ms\"");
        self.detected.push(
            "health check: none configured; a commented [health] example is at the end of hoist.toml".to_owned(),
        );
    }
}
