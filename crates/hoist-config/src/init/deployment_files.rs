//! Supervisor program files and systemd units that a repository ships for its own servers.

use std::path::Path;

/// How a program found in the repository is kept running.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Supervisor {
    /// A supervisord `[program:<name>]`.
    Program(String),
    /// A systemd unit, by its file name (`shop.service`).
    Unit(String),
}

/// One program a deployment file in the repository runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Deployed {
    pub by: Supervisor,
    /// Its `command=` (supervisor) or `ExecStart=` (systemd), as written.
    pub command: String,
    /// The file, relative to the project, with `/` separators.
    pub file: String,
}

impl Deployed {
    /// The program or unit name without `.service`.
    pub fn name(&self) -> &str {
        match &self.by {
            Supervisor::Program(name) => name,
            Supervisor::Unit(unit) => unit.strip_suffix(".service").unwrap_or(unit),
        }
    }
}

/// Folders never searched: they hold other projects' files, not this one's deployment.
const SKIPPED: &[&str] = &[
    "node_modules",
    "venv",
    "env",
    "site-packages",
    "__pycache__",
    "tests",
    "test",
];

/// How deep under the project deployment files are looked for (`deployment/supervisor/x.conf`
/// is depth 3).
const MAX_DEPTH: usize = 4;

/// Programs a repository's supervisor or systemd files often run beside the app, which a
/// deploy of the app must not restart.
const NOT_THE_APP: &[&str] = &[
    "nginx",
    "redis-server",
    "postgres",
    "memcached",
    "cron",
    "crond",
    "sshd",
    "supervisord",
    "caddy",
    "haproxy",
];

/// True when the command runs one of [`NOT_THE_APP`], by whatever path.
fn runs_something_else(command: &str) -> bool {
    command
        .split_whitespace()
        .next()
        .map(|program| program.rsplit('/').next().unwrap_or(program))
        .is_some_and(|program| NOT_THE_APP.contains(&program))
}

/// Every supervisor program (`[program:x]` in a `.conf`/`.ini` file) and systemd service unit
/// (`*.service` with an `ExecStart=`) in the project, sorted by file then order in the file,
/// leaving out web servers, databases and other daemons that are not the app.
pub(crate) fn find(project: &Path) -> Vec<Deployed> {
    let mut files = Vec::new();
    walk(project, "", 1, &mut files);
    files.sort();
    let mut found = Vec::new();
    for rel in files {
        let Ok(text) = std::fs::read_to_string(project.join(&rel)) else {
            continue;
        };
        if rel.ends_with(".service") {
            found.extend(systemd_unit(&rel, &text));
        } else {
            found.extend(supervisor_programs(&rel, &text));
        }
    }
    found.retain(|d| !runs_something_else(&d.command));
    found
}

fn walk(dir: &Path, rel: &str, depth: usize, out: &mut Vec<String>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.filter_map(Result::ok) {
        let name = entry.file_name().to_string_lossy().into_owned();
        let child = if rel.is_empty() {
            name.clone()
        } else {
            format!("{rel}/{name}")
        };
        let Ok(kind) = entry.file_type() else {
            continue;
        };
        if kind.is_dir() {
            if depth < MAX_DEPTH && !name.starts_with('.') && !SKIPPED.contains(&name.as_str()) {
                walk(&entry.path(), &child, depth + 1, out);
            }
        } else if kind.is_file()
            && [".conf", ".ini", ".service"]
                .iter()
                .any(|ext| name.ends_with(ext))
        {
            out.push(child);
        }
    }
}

/// The `[program:x]` sections of a supervisord configuration file with their `command`.
fn supervisor_programs(rel: &str, text: &str) -> Vec<Deployed> {
    let mut found = Vec::new();
    let mut program: Option<String> = None;
    for line in text.lines() {
        let line = line.trim();
        if let Some(section) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            program = section
                .strip_prefix("program:")
                .map(|name| name.trim().to_owned());
            continue;
        }
        let Some(name) = &program else { continue };
        if let Some((key, value)) = line.split_once('=') {
            if key.trim() == "command" {
                found.push(Deployed {
                    by: Supervisor::Program(name.clone()),
                    command: value.trim().to_owned(),
                    file: rel.to_owned(),
                });
                program = None;
            }
        }
    }
    found
}

/// A systemd service unit's `ExecStart=`.
fn systemd_unit(rel: &str, text: &str) -> Option<Deployed> {
    let unit = rel.rsplit('/').next().unwrap_or(rel).to_owned();
    let command = text.lines().find_map(|line| {
        let value = line.trim().strip_prefix("ExecStart")?.trim_start();
        value.strip_prefix('=').map(|v| v.trim().to_owned())
    })?;
    // `ExecStart=-/usr/bin/x` and `@`, `+`, `!` prefixes change how systemd runs it, not what.
    let command = command
        .trim_start_matches(['-', '@', '+', '!', ':'])
        .to_owned();
    Some(Deployed {
        by: Supervisor::Unit(unit),
        command,
        file: rel.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn supervisor_sections_give_programs_and_commands() {
        let text = "[program:microblog]\ncommand=/home/u/venv/bin/gunicorn -b localhost:8000 -w 4 microblog:app\n\
                    directory=/home/u/microblog\n\n[program:microblog-tasks]\ncommand = /home/u/venv/bin/rq worker microblog-tasks\n\
                    [group:x]\nprograms=a\n";
        let found = supervisor_programs("deployment/supervisor/microblog.conf", text);
        assert_eq!(found.len(), 2);
        assert_eq!(found[0].by, Supervisor::Program("microblog".into()));
        assert_eq!(
            found[0].command,
            "/home/u/venv/bin/gunicorn -b localhost:8000 -w 4 microblog:app"
        );
        assert_eq!(found[1].name(), "microblog-tasks");
        assert_eq!(
            found[1].command,
            "/home/u/venv/bin/rq worker microblog-tasks"
        );
    }

    #[test]
    fn daemons_beside_the_app_are_left_out() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("docker")).unwrap();
        std::fs::write(
            dir.path().join("docker/supervisord.conf"),
            "[supervisord]\nnodaemon=true\n[program:nginx]\ncommand=/usr/sbin/nginx -g 'daemon off;'\n\
             [program:app]\ncommand=gunicorn -b :8000 app:app\n",
        )
        .unwrap();
        let found = find(dir.path());
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].name(), "app");
        assert_eq!(found[0].file, "docker/supervisord.conf");
    }

    #[test]
    fn a_systemd_unit_gives_its_exec_start() {
        let text = "[Unit]\nDescription=shop\n[Service]\nExecStart=-/srv/shop/current/.venv/bin/gunicorn app:app\n";
        let found = systemd_unit("deploy/shop.service", text).unwrap();
        assert_eq!(found.by, Supervisor::Unit("shop.service".into()));
        assert_eq!(found.name(), "shop");
        assert_eq!(
            found.command,
            "/srv/shop/current/.venv/bin/gunicorn app:app"
        );
    }
}
