//! What `hoist init` learns from a project's files, without asking anything.

use std::path::{Path, PathBuf};

use super::deployment_files::{self, Deployed, Supervisor};
use super::procfile::{analyze, parse_procfile, split_chain, ProcfileLine, Server};
use super::InitError;
use crate::app::sanitize_app_name;
use crate::Entry;

/// Everything found in the project, and where it came from.
#[derive(Debug)]
pub(crate) struct Findings {
    pub name: String,
    pub entry: Option<(Entry, String)>,
    pub python: Option<(String, String)>,
    pub requirements: Requirements,
    pub dependencies: DependencyFinding,
    pub processes: Vec<ProcessFinding>,
    /// Hooks the project's own files run before the server starts.
    pub hooks: Vec<HookFinding>,
    /// Release steps its framework usually needs, offered commented out.
    pub suggested_hooks: Vec<HookFinding>,
    /// The port and where it was read.
    pub port: Option<(u16, String)>,
    /// `src` for a src-layout project ([`crate::detect_python_path`]).
    pub python_path: Vec<std::path::PathBuf>,
}

/// Where the environment's packages are declared.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum DependencyFinding {
    /// Requirements files (possibly none); `note` says what else was seen and not used.
    Requirements { note: Option<String> },
    /// `uv.lock`, `poetry.lock` or `pdm.lock` beside `pyproject.toml`, or `Pipfile.lock`
    /// beside `Pipfile`.
    Lock(&'static str),
    /// `[project] dependencies` of `pyproject.toml` without a lock.
    Pyproject,
}

/// A release step: a command run in the new release before it goes live.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct HookFinding {
    pub name: String,
    pub run: String,
    /// Once per deploy (a migration) rather than on every host (a build step).
    pub once: bool,
    /// Where it was read or why it is suggested, e.g. `Procfile web:` or `Flask-Migrate`.
    pub from: String,
}

/// Requirements files: the ones to install on servers and the ones left for development.
#[derive(Debug, Default)]
pub(crate) struct Requirements {
    pub install: Vec<String>,
    pub left_out: Vec<String>,
}

/// A process to restart after the switch, from a Procfile line or a guess.
#[derive(Debug)]
pub(crate) struct ProcessFinding {
    pub name: String,
    /// The command that runs it, when a Procfile or a deployment file says.
    pub command: Option<String>,
    /// Where the command was read: `Procfile web:`, `deployment/supervisor/app.conf`.
    pub from: Option<String>,
    pub restart: RestartFinding,
}

#[derive(Debug)]
pub(crate) enum RestartFinding {
    GunicornHup(String),
    UwsgiChain(String),
    /// A supervisor program the repository's own supervisor file (the second field) defines.
    Supervisor(String, String),
    /// A systemd unit the repository ships, and its file.
    Systemd(String, String),
    /// No graceful strategy could be read: a systemd unit whose name is a guess.
    GuessedSystemd(String),
}

pub(crate) fn detect(project: &Path) -> Result<Findings, InitError> {
    let dir_name = project
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let name = sanitize_app_name(&dir_name);

    let procfile = read_text(&project.join("Procfile"))?
        .map(|text| parse_procfile(&text))
        .unwrap_or_default();
    let web = procfile.iter().find(|line| line.kind == "web");
    // `web: flask db upgrade; flask translate compile; gunicorn app:app`: the commands before
    // the server are release steps, the server is the process.
    let mut hooks: Vec<HookFinding> = procfile
        .iter()
        .filter(|line| line.kind == "release")
        .map(|line| HookFinding {
            name: "release".to_owned(),
            run: line.command.clone(),
            once: true,
            from: "Procfile release:".to_owned(),
        })
        .collect();
    let mut web_command = web.map(|line| line.command.clone());
    if let Some(line) = web {
        let chain = split_chain(&line.command);
        if let Some(at) = chain.iter().position(|c| analyze(c, project).is_some()) {
            for run in &chain[..at] {
                hooks.push(HookFinding {
                    name: unique_hook_name(&hooks, run),
                    run: run.clone(),
                    once: changes_the_database(run),
                    from: "Procfile web:".to_owned(),
                });
            }
            web_command = Some(chain[at..].join("; "));
        }
    }
    let web_server = web_command
        .as_deref()
        .and_then(|command| analyze(command, project));

    let deployed = deployment_files::find(project);
    let deployed_server = deployed
        .iter()
        .find_map(|d| analyze(&d.command, project).map(|server| (d, server)));

    let mut entry = web_server
        .as_ref()
        .and_then(|server| server.entry.clone())
        .map(|entry| (entry, "Procfile".to_owned()));
    if entry.is_none() {
        entry = deployed_server
            .as_ref()
            .and_then(|(d, server)| Some((server.entry.clone()?, d.file.clone())));
    }
    let django = django_entry(project)?;
    if entry.is_none() {
        entry = top_level_entry(project)?;
    }
    if entry.is_none() {
        entry.clone_from(&django);
    }
    if entry.is_none() {
        entry = package_entry(project)?;
    }
    let python_path = crate::detect_python_path(project);
    for dir in &python_path {
        if entry.is_some() {
            break;
        }
        // A src layout's package (`src/shop/__init__.py`): importable once python_path is set.
        let folder = project.join(dir);
        if folder.is_dir() {
            entry = package_entry(&folder)?
                .map(|(entry, file)| (entry, format!("{}/{file}", dir.display())));
        }
    }

    let mut processes = processes(project, &name, &procfile, web_command.as_deref());
    merge_deployed(&mut processes, &deployed, project);
    let port = web_server
        .and_then(|server| server.port)
        .map(|port| (port, "Procfile web:".to_owned()))
        .or_else(|| {
            let (d, server) = deployed_server.as_ref()?;
            Some((server.port?, d.file.clone()))
        });

    let requirements = requirements(project)?;
    let dependencies = dependencies(project, &requirements)?;
    let suggested_hooks = suggested_hooks(
        project,
        django.is_some(),
        entry.as_ref().map(|(e, _)| e),
        &hooks,
    )?;

    Ok(Findings {
        name,
        entry,
        python: python_version(project)?,
        requirements,
        dependencies,
        processes,
        hooks,
        suggested_hooks,
        port,
        python_path,
    })
}

/// True for a command that migrates a database: it runs on one host per deploy.
fn changes_the_database(run: &str) -> bool {
    ["migrate", "db upgrade", "alembic upgrade", "upgrade head"]
        .iter()
        .any(|word| run.contains(word))
}

/// A hook name from its command's words (`flask db upgrade` → `flask-db-upgrade`), unique
/// among `hooks`.
fn unique_hook_name(hooks: &[HookFinding], run: &str) -> String {
    let words: Vec<&str> = run
        .split_whitespace()
        .filter(|w| !w.starts_with('-') && !w.contains('='))
        .filter(|w| {
            !matches!(
                *w,
                "python" | "python3" | "manage.py" | "exec" | "uv" | "run"
            )
        })
        .take(3)
        .collect();
    let base = sanitize_app_name(&words.join("-"));
    let mut name = base.clone();
    let mut n = 2;
    while hooks.iter().any(|h| h.name == name) {
        name = format!("{base}-{n}");
        n += 1;
    }
    name
}

/// Where the packages are declared: a lock beside pyproject.toml wins over requirements files
/// (they are usually exported from it); a pyproject.toml with `[project]` and no lock is used
/// when there are no requirements files.
fn dependencies(
    project: &Path,
    requirements: &Requirements,
) -> Result<DependencyFinding, InitError> {
    if project.join("Pipfile").is_file() && project.join("Pipfile.lock").is_file() {
        return Ok(DependencyFinding::Lock("Pipfile.lock"));
    }
    let Some(pyproject) = read_text(&project.join("pyproject.toml"))? else {
        return Ok(DependencyFinding::Requirements { note: None });
    };
    for lock in ["uv.lock", "poetry.lock", "pdm.lock"] {
        if project.join(lock).is_file() {
            return Ok(DependencyFinding::Lock(lock));
        }
    }
    if !requirements.install.is_empty() {
        return Ok(DependencyFinding::Requirements { note: None });
    }
    let doc: Option<toml::Table> = toml::from_str(&pyproject).ok();
    let table = |key: &str| doc.as_ref().and_then(|d| d.get(key));
    if table("project").is_some() {
        return Ok(DependencyFinding::Pyproject);
    }
    let note = if table("tool").and_then(|t| t.get("poetry")).is_some() {
        "pyproject.toml declares Poetry dependencies without poetry.lock: run `poetry lock`, commit poetry.lock and set `dependencies = \"poetry.lock\"`"
    } else {
        "pyproject.toml has no [project] table: list requirements files in `requirements`, or declare [project] dependencies and set `dependencies = \"pyproject.toml\"`"
    };
    Ok(DependencyFinding::Requirements {
        note: Some(note.to_owned()),
    })
}

/// Release steps the project's framework usually needs, offered commented out (a migration
/// needs the database reachable from the host that runs it): Django's migrate and
/// collectstatic, Flask-Migrate's `flask db upgrade`, Alembic's `alembic upgrade head`. A step
/// the project's own hooks already run is not offered again.
fn suggested_hooks(
    project: &Path,
    django: bool,
    entry: Option<&Entry>,
    hooks: &[HookFinding],
) -> Result<Vec<HookFinding>, InitError> {
    let mut suggested = Vec::new();
    let mut offer = |name: &str, run: String, once: bool, from: &str| {
        let covered = hooks
            .iter()
            .any(|h| h.run.contains(name) || (once && changes_the_database(&h.run)));
        if !covered {
            suggested.push(HookFinding {
                name: name.to_owned(),
                run,
                once,
                from: from.to_owned(),
            });
        }
    };
    if django || project.join("manage.py").is_file() {
        offer(
            "migrate",
            "python manage.py migrate --noinput".to_owned(),
            true,
            "Django",
        );
        offer(
            "collectstatic",
            "python manage.py collectstatic --noinput".to_owned(),
            false,
            "Django",
        );
        return Ok(suggested);
    }
    let declared = declared_dependencies(project)?.to_ascii_lowercase();
    let flask_migrate = declared.contains("flask-migrate")
        || declared.contains("flask_migrate")
        || (project.join("migrations/env.py").is_file()
            && project.join("migrations/alembic.ini").is_file());
    if flask_migrate {
        let app = entry.map_or_else(String::new, |e| format!(" --app '{e}'"));
        offer(
            "db-upgrade",
            format!("flask{app} db upgrade"),
            true,
            "Flask-Migrate",
        );
    } else if project.join("alembic.ini").is_file() {
        offer(
            "alembic-upgrade",
            "alembic upgrade head".to_owned(),
            true,
            "Alembic (alembic.ini)",
        );
    }
    Ok(suggested)
}

/// The text of every file that may name the project's packages: requirements files and
/// pyproject.toml.
fn declared_dependencies(project: &Path) -> Result<String, InitError> {
    let mut text = read_text(&project.join("pyproject.toml"))?.unwrap_or_default();
    for dir in [project.to_path_buf(), project.join("requirements")] {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.filter_map(Result::ok) {
            let name = entry.file_name().to_string_lossy().to_ascii_lowercase();
            if name.ends_with(".txt") && (name.contains("requirements") || dir != project) {
                text.push_str(&read_text(&entry.path())?.unwrap_or_default());
            }
        }
    }
    Ok(text)
}

/// Deployment files in the repository say how its programs are kept running: a program whose
/// command runs the app's server restarts `web`; the others match a process by command or
/// name, or become processes of their own. Only guesses are replaced: a graceful strategy
/// read from the Procfile stays.
fn merge_deployed(processes: &mut Vec<ProcessFinding>, deployed: &[Deployed], project: &Path) {
    for d in deployed {
        let is_server = analyze(&d.command, project).is_some();
        let restart = || match &d.by {
            Supervisor::Program(program) => {
                RestartFinding::Supervisor(program.clone(), d.file.clone())
            }
            Supervisor::Unit(unit) => RestartFinding::Systemd(unit.clone(), d.file.clone()),
        };
        let matching = processes.iter_mut().find(|p| {
            if is_server {
                p.name == "web"
            } else {
                p.command.as_deref() == Some(d.command.as_str())
                    || (p.name != "web" && d.name().contains(p.name.as_str()))
                    || p.command
                        .as_deref()
                        .is_some_and(|c| same_program(c, &d.command))
            }
        });
        match matching {
            Some(process) => {
                if matches!(process.restart, RestartFinding::GuessedSystemd(_)) {
                    process.restart = restart();
                    if process.command.is_none() {
                        process.command = Some(d.command.clone());
                        process.from = Some(d.file.clone());
                    }
                }
            }
            None => {
                let mut name = sanitize_app_name(d.name());
                if processes.iter().any(|p| p.name == name) {
                    name = format!("{name}-{}", processes.len() + 1);
                }
                processes.push(ProcessFinding {
                    name,
                    command: Some(d.command.clone()),
                    from: Some(d.file.clone()),
                    restart: restart(),
                });
            }
        }
    }
}

/// Two commands that run the same program with the same first argument (`rq worker`,
/// `celery -A x worker`), whatever path the program is called by.
fn same_program(a: &str, b: &str) -> bool {
    let key = |c: &str| {
        let mut words = c.split_whitespace();
        let program = words
            .next()
            .map(|p| p.rsplit('/').next().unwrap_or(p).to_owned());
        (program, words.next().map(str::to_owned))
    };
    key(a) == key(b)
}

/// A file's text, `None` when it does not exist; undecodable bytes are replaced, not fatal.
fn read_text(path: &Path) -> Result<Option<String>, InitError> {
    match std::fs::read(path) {
        Ok(bytes) => Ok(Some(String::from_utf8_lossy(&bytes).into_owned())),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(err) if err.kind() == std::io::ErrorKind::IsADirectory => Ok(None),
        Err(source) => Err(InitError::Read {
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// `app`/`application` (or a `create_app` factory) in wsgi.py, asgi.py, app.py or main.py.
fn top_level_entry(project: &Path) -> Result<Option<(Entry, String)>, InitError> {
    for (file, names) in [
        ("wsgi.py", ["application", "app"]),
        ("asgi.py", ["application", "app"]),
        ("app.py", ["app", "application"]),
        ("main.py", ["app", "application"]),
    ] {
        if let Some(text) = read_text(&project.join(file))? {
            let module = file.trim_end_matches(".py");
            if let Some(entry) = entry_in(module, &text, &names) {
                return Ok(Some((entry, file.to_owned())));
            }
        }
    }
    Ok(None)
}

/// `<pkg>.wsgi:application` for a Django project: the package named by manage.py's
/// DJANGO_SETTINGS_MODULE, else any folder with both wsgi.py and settings.py.
fn django_entry(project: &Path) -> Result<Option<(Entry, String)>, InitError> {
    let from_manage = read_text(&project.join("manage.py"))?.and_then(|text| {
        let at = text.find("DJANGO_SETTINGS_MODULE")?;
        let rest = &text[at..];
        let quoted = rest.split(['"', '\'']).nth(2)?;
        quoted.split('.').next().map(str::to_owned)
    });
    let mut candidates: Vec<String> = from_manage.into_iter().collect();
    candidates.extend(
        subdirectories(project)?
            .into_iter()
            .filter(|dir| dir.join("settings.py").is_file() || dir.join("settings").is_dir())
            .filter_map(|dir| dir.file_name().map(|n| n.to_string_lossy().into_owned())),
    );
    for package in candidates {
        for (file, module) in [("wsgi.py", "wsgi"), ("asgi.py", "asgi")] {
            if project.join(&package).join(file).is_file() {
                if let Ok(entry) = Entry::parse(&format!("{package}.{module}:application")) {
                    return Ok(Some((entry, format!("{package}/{file}, a Django project"))));
                }
            }
        }
    }
    Ok(None)
}

/// `app`/`application` or a `create_app` factory in a top-level package's `__init__.py`.
fn package_entry(project: &Path) -> Result<Option<(Entry, String)>, InitError> {
    for dir in subdirectories(project)? {
        let Some(package) = dir.file_name().map(|n| n.to_string_lossy().into_owned()) else {
            continue;
        };
        if let Some(text) = read_text(&dir.join("__init__.py"))? {
            if let Some(entry) = entry_in(&package, &text, &["app", "application"]) {
                return Ok(Some((entry, format!("{package}/__init__.py"))));
            }
        }
    }
    Ok(None)
}

/// The project's folders in name order, leaving out hidden ones, virtualenvs and tests.
fn subdirectories(project: &Path) -> Result<Vec<PathBuf>, InitError> {
    let entries = std::fs::read_dir(project).map_err(|source| InitError::Read {
        path: project.to_path_buf(),
        source,
    })?;
    let mut dirs: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|path| path.is_dir())
        .filter(|path| {
            let name = path.file_name().unwrap_or_default().to_string_lossy();
            !name.starts_with('.')
                && ![
                    "venv",
                    "env",
                    "node_modules",
                    "tests",
                    "test",
                    "__pycache__",
                ]
                .contains(&name.as_ref())
        })
        .collect();
    dirs.sort();
    Ok(dirs)
}

/// The entry point `module` defines: the first of `names` bound at module level, else a
/// `create_app` factory.
fn entry_in(module: &str, text: &str, names: &[&str]) -> Option<Entry> {
    let attribute = names
        .iter()
        .find(|name| binds(text, name))
        .map(|name| (*name).to_owned())
        .or_else(|| defines_function(text, "create_app").then(|| "create_app()".to_owned()))?;
    Entry::parse(&format!("{module}:{attribute}")).ok()
}

/// True when `name` is bound at module level: `name = …`, `name: T = …` or an import `as name`.
fn binds(text: &str, name: &str) -> bool {
    text.lines().any(|line| {
        if let Some(rest) = line.strip_prefix(name) {
            let rest_trimmed = rest.trim_start();
            let next_is_word = rest.starts_with(|c: char| c.is_alphanumeric() || c == '_');
            if !next_is_word
                && ((rest_trimmed.starts_with('=') && !rest_trimmed.starts_with("=="))
                    || (rest_trimmed.starts_with(':') && rest_trimmed.contains('=')))
            {
                return true;
            }
        }
        imports(line).iter().any(|bound| bound == name)
    })
}

/// Names bound by a module-level `from x import a, b as c` line.
fn imports(line: &str) -> Vec<String> {
    let Some(rest) = line.strip_prefix("from ") else {
        return Vec::new();
    };
    let Some((_, names)) = rest.split_once(" import ") else {
        return Vec::new();
    };
    names
        .trim_matches(|c: char| c == '(' || c == ')' || c.is_whitespace())
        .split(',')
        .filter_map(|item| item.split_whitespace().last())
        .map(str::to_owned)
        .collect()
}

fn defines_function(text: &str, name: &str) -> bool {
    text.lines().any(|line| {
        line.strip_prefix("def ")
            .and_then(|rest| rest.strip_prefix(name))
            .is_some_and(|rest| rest.trim_start().starts_with('('))
    })
}

/// `python3.X` from `.python-version` (pyenv, uv) or `runtime.txt` (Heroku's `python-3.X.Y`).
fn python_version(project: &Path) -> Result<Option<(String, String)>, InitError> {
    for (file, prefix) in [(".python-version", ""), ("runtime.txt", "python-")] {
        let Some(text) = read_text(&project.join(file))? else {
            continue;
        };
        let line = text
            .lines()
            .map(str::trim)
            .find(|line| !line.is_empty() && !line.starts_with('#'));
        let Some(version) = line.and_then(|line| line.strip_prefix(prefix)) else {
            continue;
        };
        let mut parts = version.split('.');
        let (Some("3"), Some(minor)) = (parts.next(), parts.next()) else {
            continue;
        };
        if !minor.is_empty() && minor.chars().all(|c| c.is_ascii_digit()) {
            return Ok(Some((format!("python3.{minor}"), file.to_owned())));
        }
    }
    Ok(None)
}

/// How a requirements file's name reads: for servers, for development, or unclear.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Production,
    Base,
    Development,
    Unclear,
}

fn role_of(stem: &str) -> Role {
    let words: Vec<&str> = stem.split(['-', '_', '.']).collect();
    let has = |list: &[&str]| words.iter().any(|w| list.contains(w));
    if has(&[
        "dev",
        "develop",
        "development",
        "test",
        "tests",
        "testing",
        "local",
        "ci",
        "lint",
        "docs",
        "doc",
        "tox",
        "typing",
    ]) {
        Role::Development
    } else if has(&["prod", "production", "deploy", "release", "live", "server"]) {
        Role::Production
    } else if has(&["base", "common", "main", "core", "requirements"]) {
        Role::Base
    } else {
        Role::Unclear
    }
}

/// requirements.txt when present; else requirements/*.txt (or requirements-*.txt) production
/// files, else base ones. Development and test files are never installed, only listed.
fn requirements(project: &Path) -> Result<Requirements, InitError> {
    let mut files: Vec<String> = Vec::new();
    let names = |dir: &Path| -> Result<Vec<String>, InitError> {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return Ok(Vec::new());
        };
        let mut names: Vec<String> = entries
            .filter_map(Result::ok)
            .filter(|e| e.path().is_file())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.to_ascii_lowercase().ends_with(".txt"))
            .collect();
        names.sort();
        Ok(names)
    };
    files.extend(
        names(project)?
            .into_iter()
            .filter(|n| n.to_ascii_lowercase().contains("requirements")),
    );
    files.extend(
        names(&project.join("requirements"))?
            .into_iter()
            .map(|n| format!("requirements/{n}")),
    );

    let role = |file: &str| {
        let stem = file
            .rsplit('/')
            .next()
            .unwrap_or(file)
            .trim_end_matches(".txt");
        if file == "requirements.txt" {
            Role::Base
        } else {
            role_of(&stem.to_ascii_lowercase())
        }
    };
    let install: Vec<String> = if files.iter().any(|f| f == "requirements.txt") {
        vec!["requirements.txt".to_owned()]
    } else {
        let production: Vec<String> = files
            .iter()
            .filter(|f| role(f) == Role::Production)
            .cloned()
            .collect();
        if production.is_empty() {
            files
                .iter()
                .filter(|f| role(f) == Role::Base)
                .cloned()
                .collect()
        } else {
            production
        }
    };
    let left_out = files.into_iter().filter(|f| !install.contains(f)).collect();
    Ok(Requirements { install, left_out })
}

/// One process per Procfile line other than `release`, `web` first (its command without the
/// release steps chained before the server). Without a `web` line, a `web` process whose
/// systemd unit is a guess comes first all the same: the app must restart.
fn processes(
    project: &Path,
    app: &str,
    procfile: &[ProcfileLine],
    web_command: Option<&str>,
) -> Vec<ProcessFinding> {
    let mut found = Vec::new();
    if web_command.is_none() {
        found.push(ProcessFinding {
            name: "web".to_owned(),
            command: None,
            from: None,
            restart: RestartFinding::GuessedSystemd(format!("{app}.service")),
        });
    }
    let mut lines: Vec<&ProcfileLine> = procfile.iter().filter(|l| l.kind != "release").collect();
    lines.sort_by_key(|line| line.kind != "web");
    for line in lines {
        if found.iter().any(|p: &ProcessFinding| p.name == line.kind) {
            continue;
        }
        let command = match (line.kind.as_str(), web_command) {
            ("web", Some(web)) => web.to_owned(),
            _ => line.command.clone(),
        };
        let unit = if line.kind == "web" {
            format!("{app}.service")
        } else {
            format!("{app}-{}.service", sanitize_app_name(&line.kind))
        };
        let restart = match analyze(&command, project) {
            Some(s) if s.server == Server::Gunicorn => {
                s.pidfile.filter(|p| p.starts_with('/')).map_or(
                    RestartFinding::GuessedSystemd(unit),
                    RestartFinding::GunicornHup,
                )
            }
            Some(s) if s.server == Server::Uwsgi => s.fifo.filter(|f| f.starts_with('/')).map_or(
                RestartFinding::GuessedSystemd(unit),
                RestartFinding::UwsgiChain,
            ),
            _ => RestartFinding::GuessedSystemd(unit),
        };
        found.push(ProcessFinding {
            name: line.kind.clone(),
            command: Some(command),
            from: Some(format!("Procfile {}:", line.kind)),
            restart,
        });
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binds_sees_assignments_and_imports_at_module_level() {
        assert!(binds(
            "from flask import Flask\napp = Flask(__name__)\n",
            "app"
        ));
        assert!(binds("app: FastAPI = FastAPI()\n", "app"));
        assert!(binds("from myapp import create_app as app\n", "app"));
        assert!(binds("from .main import (app, other)\n", "app"));
        assert!(!binds("    app = Flask(__name__)\n", "app"));
        assert!(!binds("apple = 1\napp == 2\n", "app"));
        assert!(!binds("application = 1\n", "app"));
    }

    #[test]
    fn factories_are_called() {
        let entry = entry_in(
            "app",
            "def create_app():\n    return Flask(__name__)\n",
            &["app"],
        );
        assert_eq!(entry.unwrap().to_string(), "app:create_app()");
    }

    #[test]
    fn requirement_roles_follow_the_file_name() {
        assert_eq!(role_of("prod"), Role::Production);
        assert_eq!(role_of("requirements-production"), Role::Production);
        assert_eq!(role_of("base"), Role::Base);
        assert_eq!(role_of("dev"), Role::Development);
        assert_eq!(role_of("requirements-dev"), Role::Development);
        assert_eq!(role_of("test"), Role::Development);
        assert_eq!(role_of("extras"), Role::Unclear);
    }
}
