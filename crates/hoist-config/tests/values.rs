//! What a valid hoist.toml becomes: defaults, resolved paths, each restart strategy, health probes.

mod support;

use std::path::{Path, PathBuf};
use std::time::Duration;

use hoist_config::pipeline::StepKind;
use hoist_config::{HealthProbe, InstallerChoice, Restart, SharedPath};
use support::{minimal_with, Project, MINIMAL};

#[test]
fn a_minimal_file_gets_every_default() {
    let project = Project::new();
    let config = project.config(MINIMAL);

    assert_eq!(config.path, project.config_path());
    assert_eq!(config.dir, project.path());
    assert_eq!(config.app.name, "example");
    assert_eq!(config.app.source, project.path());
    assert_eq!(config.app.entry.module, "app");
    assert_eq!(config.app.entry.attribute, "app");
    assert_eq!(config.app.python, "python3");
    assert_eq!(config.app.requirements, Vec::<PathBuf>::new());
    assert_eq!(config.app.exclude, Vec::<String>::new());
    assert_eq!(config.app.installer, InstallerChoice::Auto);

    assert_eq!(config.release.root, Path::new("/srv/example"));
    assert_eq!(config.release.keep_releases, 5);
    assert_eq!(config.release.shared, vec![]);
    assert_eq!(config.release.releases_dir, "releases");
    assert_eq!(config.release.current_link, "current");
    assert_eq!(config.release.lock_wait, Duration::ZERO);

    assert!(config.hooks.is_empty());
    assert!(config.processes.is_empty());
    assert_eq!(config.health, None);
    assert_eq!(config.pipeline, None);
}

#[test]
fn requirements_default_to_requirements_txt_when_it_exists() {
    let project = Project::new();
    project.file("requirements.txt", "flask\n");
    let config = project.config(MINIMAL);
    assert_eq!(
        config.app.requirements,
        vec![PathBuf::from("requirements.txt")]
    );
}

#[test]
fn every_key_can_be_set() {
    let project = Project::new();
    project.file("web/requirements/prod.txt", "-r base.txt\n");
    project.file("web/requirements/base.txt", "flask\n");
    let config = project.config(
        r#"[app]
name = "shop_2"
source = "web"
entry = "shop.wsgi:application"
python = "python3.12"
requirements = ["requirements/prod.txt", "requirements/base.txt"]
exclude = ["tests/", "*.sqlite"]
installer = "uv"

[release]
root = "/var/www/shop/"
keep_releases = 3
shared = ["instance/settings.py", "logs/"]
releases_dir = "builds"
current_link = "live"
lock_wait = "1m30s"

[[hook]]
name = "migrate"
run = "flask db upgrade"
once = true
timeout = "5m"

[[hook]]
name = "assets"
run = "make assets"

[health]
url = "http://127.0.0.1:8000/health"
status = 204
body = "ok"
timeout = "1m"
interval = "100ms"

[pipeline.jobs.test]
steps = ["checkout", { run = "pytest", no_output_timeout = "2m" }]
"#,
    );
    assert_eq!(config.app.name, "shop_2");
    assert_eq!(config.app.source, project.path().join("web"));
    assert_eq!(config.app.entry.to_string(), "shop.wsgi:application");
    assert_eq!(config.app.python, "python3.12");
    assert_eq!(
        config.app.requirements,
        vec![
            PathBuf::from("requirements/prod.txt"),
            PathBuf::from("requirements/base.txt")
        ]
    );
    assert_eq!(
        config.app.exclude,
        vec!["tests/".to_owned(), "*.sqlite".to_owned()]
    );
    assert_eq!(config.app.installer, InstallerChoice::Uv);

    assert_eq!(config.release.root, Path::new("/var/www/shop"));
    assert_eq!(config.release.keep_releases, 3);
    assert_eq!(
        config.release.shared,
        vec![
            SharedPath {
                path: PathBuf::from("instance/settings.py"),
                is_dir: false
            },
            SharedPath {
                path: PathBuf::from("logs"),
                is_dir: true
            },
        ]
    );
    assert_eq!(config.release.releases_dir, "builds");
    assert_eq!(config.release.current_link, "live");
    assert_eq!(config.release.lock_wait, Duration::from_secs(90));

    assert_eq!(config.hooks.len(), 2);
    assert_eq!(config.hooks[0].name, "migrate");
    assert_eq!(config.hooks[0].run, "flask db upgrade");
    assert!(config.hooks[0].once);
    assert_eq!(config.hooks[0].timeout, Duration::from_secs(300));
    assert_eq!(config.hooks[1].name, "assets");
    assert!(!config.hooks[1].once);
    assert_eq!(config.hooks[1].timeout, Duration::from_secs(600));

    let health = config.health.expect("[health]");
    assert_eq!(
        health.probe,
        HealthProbe::Http {
            url: "http://127.0.0.1:8000/health".to_owned(),
            status: 204,
            body: Some("ok".to_owned()),
        }
    );
    assert_eq!(health.timeout, Duration::from_secs(60));
    assert_eq!(health.interval, Duration::from_millis(100));

    let pipeline = config.pipeline.expect("[pipeline] validated with the rest");
    assert_eq!(pipeline.jobs[0].name, "test");
    assert!(matches!(
        &pipeline.jobs[0].steps[1].kind,
        StepKind::Run(run) if run.no_output_timeout == Duration::from_secs(120)
    ));
}

#[test]
fn source_can_point_to_a_sibling_folder() {
    let project = Project::new();
    project.file("app/app.py", "app = 1\n");
    project.file("deploy/hoist.toml", "");
    let path = project.path().join("deploy/hoist.toml");
    let text = "[app]\nname = \"example\"\nsource = \"../app\"\nentry = \"app:app\"\n\n[release]\nroot = \"/srv/example\"\n";
    let config = hoist_config::parse(&path, text).unwrap();
    assert_eq!(config.dir, project.path().join("deploy"));
    assert_eq!(config.app.source, project.path().join("app"));
}

#[test]
fn each_installer_choice() {
    for (written, choice) in [
        ("auto", InstallerChoice::Auto),
        ("uv", InstallerChoice::Uv),
        ("pip", InstallerChoice::Pip),
    ] {
        let text = MINIMAL.replace(
            "entry = \"app:app\"\n",
            &format!("entry = \"app:app\"\ninstaller = \"{written}\"\n"),
        );
        assert_eq!(
            Project::new().config(&text).app.installer,
            choice,
            "{written}"
        );
    }
}

fn restart_of(process: &str) -> (Restart, Duration) {
    let config = Project::new().config(&minimal_with(&format!(
        "\n[[process]]\nname = \"web\"\n{process}"
    )));
    assert_eq!(config.processes.len(), 1);
    assert_eq!(config.processes[0].name, "web");
    (
        config.processes[0].restart.clone(),
        config.processes[0].timeout,
    )
}

#[test]
fn restart_supervisor() {
    let (restart, timeout) = restart_of("restart = \"supervisor\"\nprogram = \"uwsgi\"\n");
    assert_eq!(
        restart,
        Restart::Supervisor {
            program: "uwsgi".to_owned()
        }
    );
    assert_eq!(restart.strategy(), "supervisor");
    assert_eq!(timeout, Duration::from_secs(60));
}

#[test]
fn restart_systemd() {
    let (restart, _) = restart_of("restart = \"systemd\"\nunit = \"example.service\"\n");
    assert_eq!(
        restart,
        Restart::Systemd {
            unit: "example.service".to_owned()
        }
    );
    assert_eq!(restart.strategy(), "systemd");
}

#[test]
fn restart_uwsgi_chain() {
    let (restart, timeout) = restart_of(
        "restart = \"uwsgi-chain\"\nfifo = \"/run/example/uwsgi.fifo\"\ntimeout = \"2m\"\n",
    );
    assert_eq!(
        restart,
        Restart::UwsgiChain {
            fifo: PathBuf::from("/run/example/uwsgi.fifo")
        }
    );
    assert_eq!(restart.strategy(), "uwsgi-chain");
    assert_eq!(timeout, Duration::from_secs(120));
}

#[test]
fn restart_gunicorn_hup() {
    let (restart, _) =
        restart_of("restart = \"gunicorn-hup\"\npidfile = \"/run/example/gunicorn.pid\"\n");
    assert_eq!(
        restart,
        Restart::GunicornHup {
            pidfile: PathBuf::from("/run/example/gunicorn.pid")
        }
    );
    assert_eq!(restart.strategy(), "gunicorn-hup");
}

#[test]
fn restart_command() {
    let (restart, _) = restart_of("restart = \"command\"\ncommand = \"bin/restart-web\"\n");
    assert_eq!(
        restart,
        Restart::Command {
            command: "bin/restart-web".to_owned()
        }
    );
    assert_eq!(restart.strategy(), "command");
}

#[test]
fn processes_keep_file_order() {
    let config = Project::new().config(&minimal_with(
        "\n[[process]]\nname = \"web\"\nrestart = \"systemd\"\nunit = \"web.service\"\n\n[[process]]\nname = \"worker\"\nrestart = \"supervisor\"\nprogram = \"worker\"\n",
    ));
    let names: Vec<&str> = config.processes.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["web", "worker"]);
}

#[test]
fn health_by_command_with_defaults() {
    let config = Project::new().config(&minimal_with(
        "\n[health]\ncommand = \"curl -fsS http://127.0.0.1:8000/\"\n",
    ));
    let health = config.health.unwrap();
    assert_eq!(
        health.probe,
        HealthProbe::Command {
            command: "curl -fsS http://127.0.0.1:8000/".to_owned()
        }
    );
    assert_eq!(health.timeout, Duration::from_secs(30));
    assert_eq!(health.interval, Duration::from_millis(250));
}

#[test]
fn health_by_url_expects_200_by_default() {
    let config = Project::new().config(&minimal_with(
        "\n[health]\nurl = \"http://127.0.0.1:8000/\"\n",
    ));
    assert_eq!(
        config.health.unwrap().probe,
        HealthProbe::Http {
            url: "http://127.0.0.1:8000/".to_owned(),
            status: 200,
            body: None
        }
    );
}

#[test]
fn find_walks_up_to_the_nearest_hoist_toml() {
    let project = Project::new();
    project.file("hoist.toml", MINIMAL);
    project.file("app/templates/base.html", "");
    let found = hoist_config::find(&project.path().join("app/templates"));
    assert_eq!(found, Some(project.config_path()));
    let nested = Project::new();
    nested.file("inner/hoist.toml", MINIMAL);
    assert_eq!(
        hoist_config::find(&nested.path().join("inner")),
        Some(nested.path().join("inner/hoist.toml"))
    );
}

#[test]
fn find_does_not_invent_a_hoist_toml() {
    let project = Project::new();
    project.file("app/app.py", "");
    // Whatever lies above the temporary directory is found the same from outside the project.
    let above = hoist_config::find(project.path().parent().unwrap());
    assert_eq!(hoist_config::find(&project.path().join("app")), above);
}

#[test]
fn parse_duration_serves_cli_flags() {
    assert_eq!(
        hoist_config::parse_duration("5m"),
        Ok(Duration::from_secs(300))
    );
    assert_eq!(
        hoist_config::parse_duration("5 minutes").map_err(|e| e.to_string()),
        Err("invalid duration \"5 minutes\": expected a duration like 30s, 5m, 250ms".to_owned())
    );
}

#[test]
fn from_toml_locates_errors_of_other_schemas() {
    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Step {
        run: String,
    }
    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Pipeline {
        step: Vec<Step>,
    }
    let text = "[[step]]\nrun = \"pytest\"\n\n[[step]]\nrn = \"ruff check\"\n";
    let err = toml::from_str::<Pipeline>(text).unwrap_err();
    let error = hoist_config::ConfigError::from_toml(Path::new("hoist.toml"), text, err);
    assert_eq!(
        error.to_string(),
        "hoist.toml:5:1: unknown key `rn` in [[step]]; did you mean `run`? valid keys are run"
    );
}
