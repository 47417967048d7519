//! Rendering the setup files: the embedded templates (or the user's overrides) and the values
//! they are given, all derived from hoist.toml.

use std::path::{Path, PathBuf};

use hoist_config::{AppServer, Config, Restart, Supervision};
use hoist_service::workers::ready_dir;
use hoist_transport::shell_quote;
use minijinja::{Environment, UndefinedBehavior};
use serde::Serialize;

use crate::SetupError;

/// The embedded templates, by name; a file of the same name in the override directory
/// replaces one.
pub const TEMPLATES: &[(&str, &str)] = &[
    (
        "hoist_loader.py",
        include_str!("../templates/hoist_loader.py"),
    ),
    (
        "gunicorn.conf.py",
        include_str!("../templates/gunicorn.conf.py"),
    ),
    ("uwsgi.ini", include_str!("../templates/uwsgi.ini")),
    (
        "supervisor.conf",
        include_str!("../templates/supervisor.conf"),
    ),
    (
        "systemd.service",
        include_str!("../templates/systemd.service"),
    ),
    ("nginx.conf", include_str!("../templates/nginx.conf")),
];

/// One rendered file and where it goes on the host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    pub template: String,
    pub path: PathBuf,
    pub contents: String,
}

/// The values every template sees. Paths are absolute and derived from `[release] root` and
/// `[setup]`; the pid file and FIFO are the ones `[[process]]` names, so setup and restart
/// agree. The supervisor program and systemd unit templates are rendered once per program,
/// with `program`, `unit`, `server_command`, `reload_command`, `directory` and `description`
/// set for it.
#[derive(Debug, Clone, Serialize)]
struct Values {
    app: String,
    root: String,
    entry: String,
    port: u16,
    workers: u32,
    static_dir: String,
    nginx_listen: String,
    server_name: String,
    config_dir: String,
    run_dir: String,
    log_dir: String,
    program_log_dir: String,
    ready_dir: String,
    /// `[app] python_path`, relative to a release: the loader puts them after the release.
    python_path: Vec<String>,
    pidfile: String,
    fifo: String,
    program: String,
    unit: String,
    upstream: String,
    server_command: String,
    reload_command: String,
    stop_signal: String,
    directory: String,
    description: String,
    user: String,
    uwsgi_plugin: bool,
}

/// One program (or unit) setup writes: the app server, or a `[[process]]` with `run`.
#[derive(Debug, Clone)]
pub(crate) struct Program {
    /// The `[[process]]` it runs, `None` for the default app server.
    pub process: Option<String>,
    pub program: String,
    pub unit: String,
    command: String,
    reload: String,
    directory: String,
    description: String,
}

/// The programs setup writes: the app server (the `gunicorn-hup` or `uwsgi-chain` process,
/// else the first `supervisor`/`systemd` process without `run`, else `<app>-web`) and one per
/// process with `run`. Two that would share a name are an error.
pub(crate) fn programs(config: &Config, root: &Path) -> Result<Vec<Program>, SetupError> {
    let values = base_values(config, root);
    let app = &config.app.name;
    let has_master = config.processes.iter().any(|p| {
        matches!(
            p.restart,
            Restart::GunicornHup { .. } | Restart::UwsgiChain { .. }
        )
    });
    let mut list: Vec<Program> = Vec::new();
    let mut server_written = false;
    for process in &config.processes {
        let is_server = match &process.restart {
            Restart::GunicornHup { .. } | Restart::UwsgiChain { .. } => true,
            Restart::Supervisor { .. } | Restart::Systemd { .. } => {
                process.run.is_none() && !has_master && !server_written
            }
            Restart::Command { .. } => false,
        };
        let own = format!("{app}-{}", process.name);
        let program = process
            .program()
            .map_or_else(|| own.clone(), str::to_string);
        let unit = process
            .unit()
            .map_or_else(|| format!("{program}.service"), str::to_string);
        if is_server {
            server_written = true;
            list.push(Program {
                process: Some(process.name.clone()),
                program,
                unit,
                command: values.server_command.clone(),
                reload: values.reload_command.clone(),
                directory: values.config_dir.clone(),
                description: format!("{app} web server (hoist)"),
            });
        } else if let Some(run) = &process.run {
            list.push(Program {
                process: Some(process.name.clone()),
                program,
                unit,
                command: format!(
                    "/bin/sh -c {}",
                    shell_quote(&format!(
                        "cd {} && {}exec {run}",
                        quote(&root.join("current")),
                        import_path(&config.app.python_path)
                    ))
                ),
                reload: String::new(),
                directory: root.display().to_string(),
                description: format!("{app} {} (hoist)", process.name),
            });
        }
    }
    if !server_written {
        list.insert(
            0,
            Program {
                process: None,
                program: format!("{app}-web"),
                unit: format!("{app}-web.service"),
                command: values.server_command.clone(),
                reload: values.reload_command.clone(),
                directory: values.config_dir.clone(),
                description: format!("{app} web server (hoist)"),
            },
        );
    }
    let systemd = config.setup.supervision == Supervision::Systemd;
    for (i, a) in list.iter().enumerate() {
        for b in &list[i + 1..] {
            let (kind, name) = if systemd {
                ("systemd unit", &a.unit)
            } else {
                ("supervisor program", &a.program)
            };
            if (systemd && a.unit == b.unit) || (!systemd && a.program == b.program) {
                let who = |p: &Program| {
                    p.process
                        .as_ref()
                        .map_or("the app server".to_string(), |n| format!("process {n:?}"))
                };
                return Err(SetupError::Clash(format!(
                    "{} and {} would both run as {kind} {name:?}; give each its own `{}` in hoist.toml",
                    who(a),
                    who(b),
                    if systemd { "unit" } else { "program" }
                )));
            }
        }
    }
    Ok(list)
}

fn base_values(config: &Config, root: &Path) -> Values {
    let setup = &config.setup;
    let shared = root.join("shared");
    let config_dir = setup
        .config_dir
        .clone()
        .unwrap_or_else(|| shared.join("setup"));
    let run_dir = shared.join("run");
    let log_dir = shared.join("logs");
    let app = config.app.name.clone();
    let mut pidfile = run_dir.join("gunicorn.pid");
    let mut fifo = run_dir.join("uwsgi.fifo");
    for process in &config.processes {
        match &process.restart {
            Restart::GunicornHup { pidfile: p } => pidfile.clone_from(p),
            Restart::UwsgiChain { fifo: f } => fifo.clone_from(f),
            _ => {}
        }
    }
    let ready_dir = match setup.server {
        AppServer::Gunicorn => ready_dir(&pidfile),
        AppServer::Uwsgi => ready_dir(&fifo),
    };
    let (server_command, reload_command) = match setup.server {
        AppServer::Gunicorn => {
            let venv = setup
                .server_venv
                .clone()
                .unwrap_or_else(|| root.join("current/.venv"));
            (
                format!(
                    "{} --config {}",
                    quote(&venv.join("bin/gunicorn")),
                    quote(&config_dir.join("gunicorn.conf.py"))
                ),
                "/bin/kill -HUP $MAINPID".to_string(),
            )
        }
        AppServer::Uwsgi => {
            let uwsgi = setup
                .uwsgi
                .as_ref()
                .map_or_else(|| "uwsgi".to_string(), |path| quote(path));
            (
                format!("{uwsgi} --ini {}", quote(&config_dir.join("uwsgi.ini"))),
                format!(
                    "/bin/sh -c {}",
                    shell_quote(&format!("printf c > {}", quote(&fifo)))
                ),
            )
        }
    };
    let upstream: String = app
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    Values {
        root: root.display().to_string(),
        entry: config.app.entry.to_string(),
        port: setup.port,
        workers: setup.workers,
        static_dir: setup.static_dir.clone(),
        nginx_listen: setup.nginx_listen.clone(),
        server_name: setup.server_name.clone(),
        config_dir: config_dir.display().to_string(),
        run_dir: run_dir.display().to_string(),
        log_dir: log_dir.display().to_string(),
        program_log_dir: setup.program_log_dir.display().to_string(),
        ready_dir: ready_dir.display().to_string(),
        python_path: config
            .app
            .python_path
            .iter()
            .map(|dir| dir.display().to_string())
            .collect(),
        pidfile: pidfile.display().to_string(),
        fifo: fifo.display().to_string(),
        program: format!("{app}-web"),
        unit: format!("{app}-web.service"),
        upstream: format!("{upstream}_app"),
        server_command,
        reload_command,
        stop_signal: "TERM".into(),
        directory: config_dir.display().to_string(),
        description: format!("{app} web server (hoist)"),
        user: setup.user.clone().unwrap_or_default(),
        uwsgi_plugin: setup.uwsgi.is_none(),
        app,
    }
}

impl Values {
    fn for_program(&self, program: &Program) -> Values {
        Values {
            program: program.program.clone(),
            unit: program.unit.clone(),
            server_command: program.command.clone(),
            reload_command: program.reload.clone(),
            directory: program.directory.clone(),
            description: program.description.clone(),
            ..self.clone()
        }
    }
}

/// For a program of `run`: the release's `[app] python_path` folders (a src layout's `src`)
/// put before the inherited `PYTHONPATH`, resolved in the release the program started in (`cd
/// -P` semantics: `pwd -P`), so that a worker imports the project's package from its own
/// release, as the loader does for the web server. Empty without `python_path`.
fn import_path(python_path: &[PathBuf]) -> String {
    if python_path.is_empty() {
        return String::new();
    }
    let dirs: Vec<String> = python_path
        .iter()
        .map(|dir| format!("\"$r\"/{}", quote(dir)))
        .collect();
    format!(
        "r=$(pwd -P) && PYTHONPATH={}${{PYTHONPATH:+:$PYTHONPATH}} ",
        dirs.join(":")
    )
}

fn quote(path: &Path) -> String {
    shell_quote(&path.display().to_string())
}

/// The directory whose templates replace the embedded ones: `[setup] templates`, else
/// `deploy/templates/` beside hoist.toml when it exists.
fn override_dir(config: &Config) -> Result<Option<PathBuf>, SetupError> {
    match &config.setup.templates {
        Some(dir) if dir.is_dir() => Ok(Some(dir.clone())),
        Some(dir) => Err(SetupError::Template {
            name: dir.display().to_string(),
            detail: "the templates directory named in [setup] templates does not exist; create it or remove the key".into(),
        }),
        None => {
            let dir = config.dir.join("deploy/templates");
            Ok(dir.is_dir().then_some(dir))
        }
    }
}

/// Renders every file for a host whose root is `[release] root`.
pub fn render_all(config: &Config) -> Result<Vec<Rendered>, SetupError> {
    render_for(config, &config.release.root)
}

/// Renders every file for a host whose deploy root is `root` (a host may have its own).
pub fn render_for(config: &Config, root: &Path) -> Result<Vec<Rendered>, SetupError> {
    let overrides = override_dir(config)?;
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env.set_keep_trailing_newline(true);
    // A Python literal: JSON strings (and lists of them) are valid Python.
    env.add_filter("py", |value: minijinja::Value| {
        serde_json::to_string(&value).unwrap_or_default()
    });
    env.add_filter("sh", |value: String| shell_quote(&value));
    for (name, embedded) in TEMPLATES {
        let source = match &overrides {
            Some(dir) if dir.join(name).is_file() => std::fs::read_to_string(dir.join(name))
                .map_err(|e| SetupError::Template {
                    name: dir.join(name).display().to_string(),
                    detail: format!("cannot read the override: {e}"),
                })?,
            _ => (*embedded).to_string(),
        };
        env.add_template_owned(*name, source)
            .map_err(|e| template_error(&overrides, name, &e))?;
    }
    let values = base_values(config, root);
    let programs = programs(config, root)?;
    let setup = &config.setup;
    let render = |name: &str, values: &Values| -> Result<String, SetupError> {
        env.get_template(name)
            .and_then(|t| t.render(values))
            .map_err(|e| template_error(&overrides, name, &e))
    };
    let config_dir = PathBuf::from(&values.config_dir);
    let mut all = Vec::new();
    let mut push = |template: &str, path: PathBuf, contents: String| {
        all.push(Rendered {
            template: template.to_string(),
            path,
            contents,
        });
    };
    push(
        "hoist_loader.py",
        config_dir.join("hoist_loader.py"),
        render("hoist_loader.py", &values)?,
    );
    match setup.server {
        AppServer::Gunicorn => push(
            "gunicorn.conf.py",
            config_dir.join("gunicorn.conf.py"),
            render("gunicorn.conf.py", &values)?,
        ),
        AppServer::Uwsgi => push(
            "uwsgi.ini",
            config_dir.join("uwsgi.ini"),
            render("uwsgi.ini", &values)?,
        ),
    }
    match setup.supervision {
        // One file per app, one `[program:…]` per program: a file supervisord reads whole.
        Supervision::Supervisor => {
            let mut text = String::new();
            for program in &programs {
                if !text.is_empty() {
                    text.push('\n');
                }
                text.push_str(&render("supervisor.conf", &values.for_program(program))?);
            }
            push(
                "supervisor.conf",
                setup.supervisor_dir.join(format!("{}.conf", values.app)),
                text,
            );
        }
        Supervision::Systemd => {
            for program in &programs {
                push(
                    "systemd.service",
                    setup.systemd_dir.join(&program.unit),
                    render("systemd.service", &values.for_program(program))?,
                );
            }
        }
    }
    if setup.nginx {
        push(
            "nginx.conf",
            setup.nginx_dir.join(format!("{}.conf", values.app)),
            render("nginx.conf", &values)?,
        );
    }
    Ok(all)
}

fn template_error(overrides: &Option<PathBuf>, name: &str, e: &minijinja::Error) -> SetupError {
    let origin = match overrides {
        Some(dir) if dir.join(name).is_file() => dir.join(name).display().to_string(),
        _ => format!("{name} (embedded)"),
    };
    let mut detail = e.to_string();
    if e.kind() == minijinja::ErrorKind::UndefinedError {
        detail.push_str(&format!("; the variables are: {}", VARIABLES.join(", ")));
    }
    SetupError::Template {
        name: origin,
        detail,
    }
}

/// Every variable a template may use, for the error when one uses another.
const VARIABLES: &[&str] = &[
    "app",
    "root",
    "entry",
    "port",
    "workers",
    "static_dir",
    "nginx_listen",
    "server_name",
    "config_dir",
    "run_dir",
    "log_dir",
    "program_log_dir",
    "ready_dir",
    "pidfile",
    "fifo",
    "program",
    "unit",
    "upstream",
    "server_command",
    "reload_command",
    "stop_signal",
    "directory",
    "description",
    "user",
    "uwsgi_plugin",
];

#[cfg(test)]
mod tests {
    use super::*;

    fn config(extra: &str) -> Config {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("app.py"), "app = None\n").unwrap();
        std::fs::write(dir.path().join("requirements.txt"), "").unwrap();
        let path = dir.path().join("hoist.toml");
        let text = format!(
            "[app]\nname = \"shop\"\nentry = \"app:app\"\n\n[release]\nroot = \"/srv/shop\"\n\n{extra}"
        );
        let config = hoist_config::parse(&path, &text).unwrap();
        drop(dir);
        config
    }

    fn file<'a>(all: &'a [Rendered], template: &str) -> &'a Rendered {
        all.iter().find(|r| r.template == template).unwrap()
    }

    #[test]
    fn systemd_unit_reloads_gunicorn_with_hup_and_is_named_by_the_process() {
        let all = render_all(&config(
            "[[process]]\nname = \"web\"\nrestart = \"systemd\"\nunit = \"shop-web.service\"\n\n[setup]\nsupervisor = \"systemd\"\n",
        ))
        .unwrap();
        let unit = file(&all, "systemd.service");
        assert_eq!(
            unit.path,
            PathBuf::from("/etc/systemd/system/shop-web.service")
        );
        assert!(unit.contents.contains(
            "ExecStart=/srv/shop/current/.venv/bin/gunicorn --config /srv/shop/shared/setup/gunicorn.conf.py\n"
        ));
        assert!(unit
            .contents
            .contains("ExecReload=/bin/kill -HUP $MAINPID\n"));
        assert!(all.iter().all(|r| r.template != "supervisor.conf"));
    }

    #[test]
    fn uwsgi_fifo_and_pidfile_follow_the_process_keys() {
        let all = render_all(&config(
            "[[process]]\nname = \"web\"\nrestart = \"uwsgi-chain\"\nfifo = \"/run/shop/master.fifo\"\n\n[setup]\nserver = \"uwsgi\"\nsupervisor = \"systemd\"\n",
        ))
        .unwrap();
        let ini = file(&all, "uwsgi.ini");
        assert!(ini
            .contents
            .contains("master-fifo = /run/shop/master.fifo\n"));
        let unit = file(&all, "systemd.service");
        assert!(unit
            .contents
            .contains("ExecReload=/bin/sh -c 'printf c > /run/shop/master.fifo'\n"));
        let nginx = file(&all, "nginx.conf");
        assert_eq!(
            nginx.path,
            PathBuf::from("/etc/nginx/sites-enabled/shop.conf")
        );
        assert!(nginx.contents.contains("alias /srv/shop/current/static/;"));
        assert!(nginx.contents.contains("listen 80;"));
    }

    #[test]
    fn a_worker_gets_a_unit_of_its_own_and_the_units_run_as_the_user() {
        let all = render_all(&config(
            "[[process]]\nname = \"web\"\nrestart = \"uwsgi-chain\"\nfifo = \"/srv/shop/shared/run/uwsgi.fifo\"\n\n[[process]]\nname = \"queue\"\nrestart = \"systemd\"\nunit = \"shop-queue.service\"\nrun = \".venv/bin/rq worker\"\n\n[setup]\nserver = \"uwsgi\"\nuwsgi = \"/opt/uwsgi/bin/uwsgi\"\nsupervisor = \"systemd\"\nuser = \"deploy\"\nnginx = false\n",
        ))
        .unwrap();
        let units: Vec<&Rendered> = all
            .iter()
            .filter(|r| r.template == "systemd.service")
            .collect();
        assert_eq!(units.len(), 2);
        assert_eq!(
            units[0].path,
            PathBuf::from("/etc/systemd/system/shop-web.service")
        );
        assert!(units[0]
            .contents
            .contains("ExecStart=/opt/uwsgi/bin/uwsgi --ini /srv/shop/shared/setup/uwsgi.ini\n"));
        assert!(units[0].contents.contains("User=deploy\n"));
        assert_eq!(
            units[1].path,
            PathBuf::from("/etc/systemd/system/shop-queue.service")
        );
        assert!(units[1]
            .contents
            .contains("ExecStart=/bin/sh -c 'cd /srv/shop/current && exec .venv/bin/rq worker'\n"));
        assert!(!units[1].contents.contains("ExecReload"));
        assert!(units[1].contents.contains("User=deploy\n"));
        // A uWSGI with Python built in loads no plugin; no nginx block.
        assert!(!file(&all, "uwsgi.ini").contents.contains("plugins"));
        assert!(all.iter().all(|r| r.template != "nginx.conf"));
    }

    #[test]
    fn the_loader_quotes_paths_as_python_strings() {
        let all = render_all(&config("")).unwrap();
        let loader = file(&all, "hoist_loader.py");
        assert_eq!(
            loader.path,
            PathBuf::from("/srv/shop/shared/setup/hoist_loader.py")
        );
        assert!(loader.contents.contains("ROOT = \"/srv/shop\"\n"));
        assert!(loader.contents.contains("ENTRY = \"app:app\"\n"));
    }

    /// The rendered loader, run by the real Python: the variables of `shared/env` (as
    /// `hoist deploy` writes them, shell-quoted) are in `os.environ` when the app is imported.
    #[test]
    fn the_loader_exports_shared_env_before_the_app_is_imported() {
        let root = tempfile::tempdir().unwrap();
        let release = root.path().join("releases/1");
        std::fs::create_dir_all(&release).unwrap();
        std::fs::create_dir_all(root.path().join("shared")).unwrap();
        std::fs::write(release.join("RELEASE.json"), "{}").unwrap();
        std::fs::write(
            release.join("app.py"),
            "import os\napp = (os.environ['APP_MODE'], os.environ['QUOTED'], os.environ['EMPTY'])\n",
        )
        .unwrap();
        std::os::unix::fs::symlink(&release, root.path().join("current")).unwrap();
        std::fs::write(
            root.path().join("shared/env"),
            "# Written by `hoist deploy`\nAPP_MODE=production\nQUOTED='it'\\''s $HOME'\nEMPTY=''\n",
        )
        .unwrap();
        let text = format!(
            "[app]\nname = \"shop\"\nentry = \"app:app\"\n\n[release]\nroot = \"{}\"\n",
            root.path().display()
        );
        let config = hoist_config::parse(&release.join("hoist.toml"), &text).unwrap();
        let all = render_all(&config).unwrap();
        let loader = file(&all, "hoist_loader.py");
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("hoist_loader.py"), &loader.contents).unwrap();
        let out = std::process::Command::new("python3")
            .args(["-c", "import hoist_loader; print(hoist_loader.application)"])
            .current_dir(dir.path())
            .env_remove("APP_MODE")
            .output()
            .expect("python3 runs");
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            "('production', \"it's $HOME\", '')\n",
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
