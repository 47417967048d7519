//! `hoist init` on real project layouts: what it detects, and that what it writes loads.

mod support;

use std::path::{Path, PathBuf};

use hoist_config::{init_plan, Config, DependencyFormat, InitError, InitPlan, Restart};
use support::Project;

/// Runs init on `dir`, writes the result as `dir/hoist.toml` and loads it back.
fn init_and_load(dir: &Path) -> (InitPlan, Config) {
    let plan = init_plan(dir, None).expect("init plan");
    let path = dir.join("hoist.toml");
    std::fs::write(&path, &plan.text).unwrap();
    let config = hoist_config::load(&path)
        .unwrap_or_else(|err| panic!("generated hoist.toml does not load: {err}\n{}", plan.text));
    assert_every_key_is_commented(&plan.text);
    (plan, config)
}

/// Each `key = value` line has a comment line right above it.
fn assert_every_key_is_commented(text: &str) {
    let lines: Vec<&str> = text.lines().collect();
    for (i, line) in lines.iter().enumerate() {
        if line.starts_with('#') || line.starts_with('[') || line.trim().is_empty() {
            continue;
        }
        assert!(
            i > 0 && lines[i - 1].starts_with("# "),
            "key without a comment on line {}: {line:?}\n{text}",
            i + 1
        );
    }
}

#[test]
fn a_flask_project() {
    let project = Project::new();
    project
        .file(
            "Flask Shop/app.py",
            "from flask import Flask\n\napp = Flask(__name__)\n",
        )
        .file("Flask Shop/requirements.txt", "flask\n")
        .file("Flask Shop/requirements-dev.txt", "pytest\n")
        .file("Flask Shop/.python-version", "3.11.4\n");
    let dir = project.path().join("Flask Shop");
    let (plan, config) = init_and_load(&dir);

    assert_eq!(
        plan.detected,
        [
            "app name: flask-shop (from the directory name)",
            "entry point: app:app (from app.py)",
            "python: python3.11 (from .python-version)",
            "requirements: requirements.txt",
            "requirements also found, not listed: requirements-dev.txt",
            "release root: /srv/flask-shop (default)",
            "process web: placeholder restart = \"systemd\", unit = \"flask-shop.service\"; set how your servers run it",
            "health check: none configured; a commented [health] example is at the end of hoist.toml",
        ]
    );
    assert_eq!(config.app.name, "flask-shop");
    assert_eq!(config.app.source, dir);
    assert_eq!(config.app.entry.to_string(), "app:app");
    assert_eq!(config.app.python, "python3.11");
    assert_eq!(config.app.requirements, [PathBuf::from("requirements.txt")]);
    assert_eq!(config.release.root, Path::new("/srv/flask-shop"));
    assert_eq!(config.release.keep_releases, 5);
    assert_eq!(
        config.processes[0].restart,
        Restart::Systemd {
            unit: "flask-shop.service".to_owned()
        }
    );
    assert!(plan.text.contains(
        "# Also found, not listed (development/test, or included by the above with -r): requirements-dev.txt\n"
    ));
    assert!(plan.text.contains(
        "# PLACEHOLDER: the systemd unit that runs it; check the name on your servers.\nunit = \"flask-shop.service\"\n"
    ));
}

#[test]
fn a_procfile_project() {
    let project = Project::new();
    project
        .file(
            "Procfile",
            "release: flask db upgrade\nweb: gunicorn shop.wsgi:app --bind 0.0.0.0:8000 --pid /run/shop/gunicorn.pid\nworker: celery -A shop.tasks worker\n",
        )
        .file("shop/__init__.py", "")
        .file("shop/wsgi.py", "from shop import create_app\napp = create_app()\n")
        .file("requirements/base.txt", "flask\n")
        .file("requirements/prod.txt", "-r base.txt\ngunicorn\n")
        .file("requirements/dev.txt", "-r base.txt\npytest\n")
        .file("requirements/test.txt", "pytest\n");
    let (plan, config) = init_and_load(project.path());

    assert!(
        plan.detected
            .contains(&"entry point: shop.wsgi:app (from Procfile)".to_owned()),
        "{:?}",
        plan.detected
    );
    assert!(plan
        .detected
        .contains(&"requirements: requirements/prod.txt".to_owned()));
    assert!(plan.detected.contains(
        &"requirements also found, not listed: requirements/base.txt, requirements/dev.txt, requirements/test.txt".to_owned()
    ));
    assert!(plan.detected.contains(
        &"process web: gunicorn-hup with pidfile /run/shop/gunicorn.pid (from Procfile web:)"
            .to_owned()
    ));
    assert!(plan.detected.contains(
        &"hook release: `flask db upgrade`, once per deploy (from Procfile release:)".to_owned()
    ));
    assert_eq!(config.app.entry.to_string(), "shop.wsgi:app");
    assert_eq!(
        config.app.requirements,
        [PathBuf::from("requirements/prod.txt")]
    );

    let processes: Vec<(&str, &Restart)> = config
        .processes
        .iter()
        .map(|p| (p.name.as_str(), &p.restart))
        .collect();
    let name = &config.app.name;
    assert_eq!(
        processes,
        [
            (
                "web",
                &Restart::GunicornHup {
                    pidfile: PathBuf::from("/run/shop/gunicorn.pid")
                }
            ),
            (
                "worker",
                &Restart::Systemd {
                    unit: format!("{name}-worker.service")
                }
            ),
        ]
    );
    assert_eq!(config.hooks.len(), 1);
    assert_eq!(config.hooks[0].name, "release");
    assert_eq!(config.hooks[0].run, "flask db upgrade");
    assert!(config.hooks[0].once);
    assert!(plan.text.contains("# url = \"http://127.0.0.1:8000/\"\n"));
}

#[test]
fn a_procfile_with_uwsgi_and_its_master_fifo() {
    let project = Project::new();
    project
        .file("Procfile", "web: uwsgi --ini deploy/uwsgi.ini\n")
        .file(
            "deploy/uwsgi.ini",
            "[uwsgi]\nmodule = blog.wsgi\nmaster-fifo = /run/blog/uwsgi.fifo\n",
        )
        .file("blog/wsgi.py", "application = object()\n");
    let (plan, config) = init_and_load(project.path());
    assert!(plan
        .detected
        .contains(&"entry point: blog.wsgi:application (from Procfile)".to_owned()));
    assert_eq!(
        config.processes[0].restart,
        Restart::UwsgiChain {
            fifo: PathBuf::from("/run/blog/uwsgi.fifo")
        }
    );
}

#[test]
fn a_django_layout() {
    let project = Project::new();
    project
        .file(
            "manage.py",
            "import os, sys\nos.environ.setdefault(\"DJANGO_SETTINGS_MODULE\", \"mysite.settings\")\n",
        )
        .file("mysite/__init__.py", "")
        .file("mysite/settings.py", "DEBUG = False\n")
        .file("mysite/wsgi.py", "from django.core.wsgi import get_wsgi_application\napplication = get_wsgi_application()\n")
        .file("polls/__init__.py", "")
        .file("requirements/base.txt", "django\n")
        .file("requirements/local.txt", "-r base.txt\ndjango-debug-toolbar\n")
        .file("runtime.txt", "python-3.12.1\n");
    let (plan, config) = init_and_load(project.path());

    assert!(
        plan.detected.contains(
            &"entry point: mysite.wsgi:application (from mysite/wsgi.py, a Django project)"
                .to_owned()
        ),
        "{:?}",
        plan.detected
    );
    assert_eq!(config.app.entry.module, "mysite.wsgi");
    assert_eq!(config.app.entry.attribute, "application");
    assert_eq!(config.app.python, "python3.12");
    assert_eq!(
        config.app.requirements,
        [PathBuf::from("requirements/base.txt")]
    );
    assert!(plan
        .detected
        .contains(&"requirements also found, not listed: requirements/local.txt".to_owned()));
    // Migrations are offered, not switched on: the database may not be reachable from every host.
    assert!(plan
        .text
        .contains("# run = \"python manage.py migrate --noinput\"\n"));
    assert!(config.hooks.is_empty());
}

#[test]
fn a_fastapi_main_py() {
    let project = Project::new();
    project
        .file("main.py", "from fastapi import FastAPI\n\napp = FastAPI()\n\n@app.get(\"/\")\ndef root():\n    return {}\n")
        .file("requirements.txt", "fastapi\nuvicorn\n");
    let (plan, config) = init_and_load(project.path());
    assert!(plan
        .detected
        .contains(&"entry point: main:app (from main.py)".to_owned()));
    assert_eq!(config.app.entry.to_string(), "main:app");
}

#[test]
fn a_uvicorn_procfile_gives_the_port_to_the_health_example() {
    let project = Project::new();
    project
        .file(
            "Procfile",
            "web: uvicorn api.main:create_app --factory --host 0.0.0.0 --port 9000\n",
        )
        .file("api/main.py", "def create_app():\n    ...\n");
    let (plan, config) = init_and_load(project.path());
    assert_eq!(config.app.entry.to_string(), "api.main:create_app()");
    assert!(plan.text.contains("# url = \"http://127.0.0.1:9000/\"\n"));
}

#[test]
fn a_project_with_nothing_to_detect_gets_marked_placeholders() {
    let project = Project::new();
    project.file("Empty/README.md", "nothing here\n");
    let dir = project.path().join("Empty");
    let (plan, config) = init_and_load(&dir);

    assert_eq!(
        plan.detected,
        [
            "app name: empty (from the directory name)",
            "entry point: not found; wrote the placeholder app:app, set `entry` in hoist.toml",
            "python: python3 (default; no .python-version)",
            "requirements: none found; wrote requirements = []",
            "release root: /srv/empty (default)",
            "process web: placeholder restart = \"systemd\", unit = \"empty.service\"; set how your servers run it",
            "health check: none configured; a commented [health] example is at the end of hoist.toml",
        ]
    );
    assert!(plan.text.contains(
        "# PLACEHOLDER: no WSGI/ASGI app found; set \"module:attribute\", e.g. \"app:app\" for app.py defining `app`.\nentry = \"app:app\"\n"
    ));
    assert_eq!(config.app.requirements, Vec::<PathBuf>::new());
    assert_eq!(config.app.python, "python3");
}

#[test]
fn a_uv_project_is_deployed_from_its_lock() {
    let project = Project::new();
    project
        .file(
            "pyproject.toml",
            "[project]\nname = \"shop\"\nversion = \"1\"\ndependencies = [\"flask\"]\n",
        )
        .file("uv.lock", "version = 1\n")
        // Exported from the lock for another tool: the lock decides.
        .file("requirements.txt", "flask==3.0.0\n")
        .file("app.py", "from flask import Flask\napp = Flask(__name__)\n");
    let (plan, config) = init_and_load(project.path());
    assert_eq!(config.app.dependencies, DependencyFormat::UvLock);
    assert_eq!(config.app.requirements, Vec::<PathBuf>::new());
    assert!(config.app.extras.is_empty() && config.app.groups.is_empty());
    assert!(
        plan.detected.contains(
            &"dependencies: uv.lock (with pyproject.toml), installed as locked without the dev group"
                .to_owned()
        ),
        "{:?}",
        plan.detected
    );
    assert!(plan.detected.contains(
        &"requirements files found, not used: requirements.txt (uv.lock decides)".to_owned()
    ));
    assert!(plan.text.contains("dependencies = \"uv.lock\"\n"));
}

#[test]
fn a_poetry_project_is_deployed_from_its_lock() {
    let project = Project::new();
    project
        .file(
            "pyproject.toml",
            "[tool.poetry]\nname = \"shop\"\n[tool.poetry.dependencies]\nflask = \"^3\"\n",
        )
        .file("poetry.lock", "")
        .file("app.py", "app = 1\n");
    let (_, config) = init_and_load(project.path());
    assert_eq!(config.app.dependencies, DependencyFormat::PoetryLock);
}

#[test]
fn a_pyproject_without_lock_is_used_with_a_warning() {
    let project = Project::new();
    project
        .file(
            "pyproject.toml",
            "[project]\nname = \"x\"\ndependencies = [\"flask\"]\n",
        )
        .file("app.py", "app = 1\n");
    let (plan, config) = init_and_load(project.path());
    assert_eq!(config.app.dependencies, DependencyFormat::Pyproject);
    assert!(plan.detected.contains(
        &"dependencies: pyproject.toml [project] dependencies, no lock file: deploys are not reproducible; run `uv lock`, commit uv.lock and set `dependencies = \"uv.lock\"`".to_owned()
    ));
}

#[test]
fn pdm_and_pipenv_locks_are_installed_as_locked() {
    let project = Project::new();
    project
        .file("pyproject.toml", "[project]\nname = \"shop\"\n[tool.pdm]\n")
        .file("pdm.lock", "")
        .file("app.py", "app = 1\n");
    let (plan, config) = init_and_load(project.path());
    assert_eq!(config.app.dependencies, DependencyFormat::PdmLock);
    assert!(plan.text.contains("dependencies = \"pdm.lock\"\n"));

    let project = Project::new();
    project
        .file("Pipfile", "[packages]\nflask = \"*\"\n")
        .file("Pipfile.lock", "{}")
        .file("requirements.txt", "flask\n")
        .file("app.py", "app = 1\n");
    let (plan, config) = init_and_load(project.path());
    assert_eq!(config.app.dependencies, DependencyFormat::PipfileLock);
    assert!(plan.detected.contains(
        &"dependencies: Pipfile.lock (with Pipfile), installed as locked without the dev group"
            .to_owned()
    ));
}

/// A Flask app that ships its own deployment files, as the Flask Mega-Tutorial's microblog
/// does: supervisor programs for the web server and a task queue worker, and a Procfile whose
/// `web:` line runs release steps before the server.
#[test]
fn a_repository_with_supervisor_files_and_a_chained_procfile() {
    let project = Project::new();
    project
        .file(
            "Procfile",
            "web: flask db upgrade; flask translate compile; gunicorn microblog:app\n",
        )
        .file(
            "deployment/supervisor/microblog.conf",
            "[program:microblog]\ncommand=/home/ubuntu/microblog/venv/bin/gunicorn -b localhost:8000 -w 4 microblog:app\n\
             directory=/home/ubuntu/microblog\nuser=ubuntu\nautostart=true\n",
        )
        .file(
            "deployment/supervisor/microblog-tasks.conf",
            "[program:microblog-tasks]\ncommand=/home/ubuntu/microblog/venv/bin/rq worker microblog-tasks\nnumprocs=1\n",
        )
        .file("microblog.py", "from app import create_app\napp = create_app()\n")
        .file("migrations/env.py", "")
        .file("migrations/alembic.ini", "")
        .file("requirements.txt", "flask\nflask-migrate\ngunicorn\nrq\n");
    let (plan, config) = init_and_load(project.path());

    let hooks: Vec<(&str, &str, bool)> = config
        .hooks
        .iter()
        .map(|h| (h.name.as_str(), h.run.as_str(), h.once))
        .collect();
    assert_eq!(
        hooks,
        [
            ("flask-db-upgrade", "flask db upgrade", true),
            ("flask-translate-compile", "flask translate compile", false),
        ]
    );
    let processes: Vec<(&str, &Restart)> = config
        .processes
        .iter()
        .map(|p| (p.name.as_str(), &p.restart))
        .collect();
    assert_eq!(
        processes,
        [
            (
                "web",
                &Restart::Supervisor {
                    program: "microblog".to_owned()
                }
            ),
            (
                "microblog-tasks",
                &Restart::Supervisor {
                    program: "microblog-tasks".to_owned()
                }
            ),
        ]
    );
    assert_eq!(config.app.entry.to_string(), "microblog:app");
    for line in [
        "hook flask-db-upgrade: `flask db upgrade`, once per deploy (from Procfile web:)",
        "hook flask-translate-compile: `flask translate compile`, on every host (from Procfile web:)",
        "process web: supervisor program microblog (from deployment/supervisor/microblog.conf)",
        "process microblog-tasks: supervisor program microblog-tasks (from deployment/supervisor/microblog-tasks.conf)",
    ] {
        assert!(
            plan.detected.contains(&line.to_owned()),
            "{line}\n{:?}",
            plan.detected
        );
    }
    // The web process runs the server alone; the release steps are hooks.
    assert!(plan.text.contains(
        "# A name for this process, unique among processes; it runs `gunicorn microblog:app` (Procfile web:).\n"
    ));
    // gunicorn's bind in the supervisor program is the health URL's port.
    assert!(plan
        .text
        .contains("# The app listens on port 8000 (from deployment/supervisor/microblog.conf).\n"));
    assert!(plan.text.contains("# url = \"http://127.0.0.1:8000/\"\n"));
    // Flask-Migrate's upgrade already runs as a hook: not offered again.
    assert!(!plan.text.contains("# run = \"flask"), "{}", plan.text);
    assert!(!plan.text.contains("# PLACEHOLDER:"), "{}", plan.text);
}

#[test]
fn a_systemd_unit_in_the_repository_and_alembic() {
    let project = Project::new();
    project
        .file(
            "deploy/shop.service",
            "[Unit]\nDescription=shop\n[Service]\nExecStart=/srv/shop/current/.venv/bin/gunicorn --bind 127.0.0.1:8100 app:app\n",
        )
        .file("alembic.ini", "[alembic]\n")
        .file("app.py", "app = 1\n");
    let (plan, config) = init_and_load(project.path());
    assert_eq!(
        config.processes[0].restart,
        Restart::Systemd {
            unit: "shop.service".to_owned()
        }
    );
    assert_eq!(config.processes.len(), 1);
    assert!(config.hooks.is_empty());
    assert!(plan.text.contains(
        "# [[hook]]\n# name = \"alembic-upgrade\"\n# run = \"alembic upgrade head\"\n# once = true\n"
    ));
    assert!(plan.detected.contains(
        &"suggested hook alembic-upgrade: `alembic upgrade head` (Alembic (alembic.ini)), commented out in hoist.toml".to_owned()
    ));
    assert!(plan.text.contains("# url = \"http://127.0.0.1:8100/\"\n"));
}

#[test]
fn flask_migrate_is_offered_with_the_app() {
    let project = Project::new();
    project
        .file(
            "app.py",
            "from flask import Flask\ndef create_app():\n    return Flask(__name__)\n",
        )
        .file("requirements.txt", "Flask-Migrate==4.0\n");
    let (plan, config) = init_and_load(project.path());
    assert!(config.hooks.is_empty());
    assert!(
        plan.text
            .contains("# run = \"flask --app 'app:create_app()' db upgrade\"\n"),
        "{}",
        plan.text
    );
}

#[test]
fn a_given_root_is_used_and_checked() {
    let project = Project::new();
    project.file("app.py", "app = 1\n");
    let (plan, _) = {
        let plan = init_plan(project.path(), Some(Path::new("/var/www/shop/"))).unwrap();
        std::fs::write(project.config_path(), &plan.text).unwrap();
        let config = hoist_config::load(&project.config_path()).unwrap();
        assert_eq!(config.release.root, Path::new("/var/www/shop"));
        (plan, config)
    };
    assert!(plan
        .detected
        .contains(&"release root: /var/www/shop (given)".to_owned()));

    let err = init_plan(project.path(), Some(Path::new("/"))).unwrap_err();
    assert!(matches!(err, InitError::InvalidRoot { .. }));
    assert_eq!(
        err.to_string(),
        "release root \"/\" is the file system root; hoist needs a directory of its own"
    );
    assert_eq!(
        err.hint(),
        Some("hoist creates and prunes folders under the root; e.g. root = \"/srv/example\"")
    );
}

#[test]
fn a_missing_project_directory_is_an_error() {
    let project = Project::new();
    let missing = project.path().join("nope");
    let err = init_plan(&missing, None).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "project directory {} does not exist or is not a directory",
            missing.display()
        )
    );
}

#[test]
fn commands_with_quotes_survive_the_round_trip() {
    let project = Project::new();
    project.file(
        "Procfile",
        "release: bash -c \"echo 'it\\'s' && flask db upgrade\"\nweb: gunicorn app:app\n",
    );
    project.file("app.py", "app = 1\n");
    let (_, config) = init_and_load(project.path());
    assert_eq!(
        config.hooks[0].run,
        "bash -c \"echo 'it\\'s' && flask db upgrade\""
    );
}

#[test]
fn a_src_layout_gets_its_python_path() {
    let project = Project::new();
    project
        .file(
            "pyproject.toml",
            "[project]\nname = \"shop\"\ndependencies = [\"flask\"]\n\n[tool.setuptools.packages.find]\nwhere = [\"src\"]\n",
        )
        .file("src/shop/__init__.py", "from flask import Flask\napp = Flask(__name__)\n");
    let (plan, config) = init_and_load(project.path());
    assert_eq!(config.app.python_path, vec![PathBuf::from("src")]);
    assert!(
        plan.text.contains("python_path = [\"src\"]\n"),
        "{}",
        plan.text
    );
    assert!(plan
        .detected
        .contains(&"python_path: src (a src/ layout)".to_owned()));
    // The entry point is found in the package under src/, not left a placeholder.
    assert_eq!(config.app.entry.to_string(), "shop:app");
    assert!(
        plan.detected
            .contains(&"entry point: shop:app (from src/shop/__init__.py)".to_owned()),
        "{:?}",
        plan.detected
    );
}
