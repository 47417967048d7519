//! `hoist init` on real project layouts: what it detects, and that what it writes loads.

mod support;

use std::path::{Path, PathBuf};

use hoist_config::{init_plan, Config, InitError, InitPlan, Restart};
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
fn a_pyproject_only_project_is_told_to_export_requirements() {
    let project = Project::new();
    project.file("pyproject.toml", "[project]\nname = \"x\"\n");
    let plan = init_plan(project.path(), None).unwrap();
    assert!(plan
        .detected
        .iter()
        .any(|line| line.starts_with("pyproject.toml: hoist installs from requirements files")));
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
