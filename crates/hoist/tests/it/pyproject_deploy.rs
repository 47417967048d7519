//! Deploying a project that declares its packages in pyproject.toml and pins them in uv.lock,
//! with no requirements file: the locked packages, nothing of the dev group, nothing pointing
//! into a release, and no Python work on a code-only deploy.

use std::fs;

use crate::support::*;

#[test]
fn a_uv_lock_project_deploys_and_a_code_only_redeploy_reuses_its_environment() {
    let site = Site::new();
    fs::write(
        site.project.join("pyproject.toml"),
        include_str!("fixtures/uv-example/pyproject.toml"),
    )
    .unwrap();
    fs::write(
        site.project.join("uv.lock"),
        include_str!("fixtures/uv-example/uv.lock"),
    )
    .unwrap();
    fs::remove_file(site.project.join("requirements.txt")).unwrap();
    let config = fs::read_to_string(&site.config).unwrap();
    let switched = config.replace(
        "requirements = [\"requirements.txt\"]\n",
        "dependencies = \"uv.lock\"\n",
    );
    assert_ne!(config, switched, "the site's hoist.toml lists requirements");
    fs::write(&site.config, switched).unwrap();
    site.commit("uv.lock instead of requirements.txt");

    let a = site.deploy_ok();
    site.assert_live(&a);
    let env = site
        .release_dir(&a)
        .join(fs::read_link(site.release_dir(&a).join(".venv")).unwrap());
    let installed = fs::read_to_string(env.join("hoist-requirements.txt")).unwrap();
    assert!(installed.contains("flask==3.1.3 \\\n"), "{installed}");
    assert!(installed.contains("gunicorn==27.0.1 \\\n"), "{installed}");
    assert!(
        !installed.contains("iniconfig"),
        "dev group installed:\n{installed}"
    );
    assert!(!installed.contains("-e "), "{installed}");

    site.change_code("b");
    let out = site.hoist(&["deploy", "--json"]);
    assert_exit(&out, EXIT_OK);
    let b = site.current().unwrap();
    assert_ne!(a, b);
    site.assert_live(&b);
    let done = stdout(&out)
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .find(|e| e["event"] == "deployed")
        .unwrap();
    assert_eq!(
        done["hosts"][0]["env_reused"], true,
        "a code-only deploy reuses the uv.lock environment"
    );
    assert_eq!(site.envs().len(), 1);
}

#[test]
fn an_out_of_date_uv_lock_stops_the_deploy_before_any_host_is_touched() {
    let site = Site::new();
    fs::write(
        site.project.join("pyproject.toml"),
        include_str!("fixtures/uv-example/pyproject.toml").replace(
            "\"psycopg[binary]==3.3.9\"]",
            "\"psycopg[binary]==3.3.9\", \"six\"]",
        ),
    )
    .unwrap();
    fs::write(
        site.project.join("uv.lock"),
        include_str!("fixtures/uv-example/uv.lock"),
    )
    .unwrap();
    let config = fs::read_to_string(&site.config).unwrap().replace(
        "requirements = [\"requirements.txt\"]\n",
        "dependencies = \"uv.lock\"\n",
    );
    fs::write(&site.config, config).unwrap();
    site.commit("six added without `uv lock`");

    let out = site.hoist(&["deploy"]);
    assert_exit(&out, EXIT_CONFIG);
    let err = stderr(&out);
    assert!(err.contains("`uv export --locked` failed:"), "{err}");
    assert!(
        err.contains("hint: when uv.lock is out of date with pyproject.toml, run `uv lock` and commit uv.lock"),
        "{err}"
    );
    assert_eq!(site.current(), None);
}

#[test]
fn a_pyproject_without_lock_deploys_with_a_warning_naming_the_fix() {
    let site = Site::new();
    fs::write(
        site.project.join("pyproject.toml"),
        include_str!("fixtures/uv-example/pyproject.toml"),
    )
    .unwrap();
    fs::remove_file(site.project.join("requirements.txt")).unwrap();
    let config = fs::read_to_string(&site.config).unwrap().replace(
        "requirements = [\"requirements.txt\"]\n",
        "dependencies = \"pyproject.toml\"\n",
    );
    fs::write(&site.config, config).unwrap();
    site.commit("pyproject.toml only");

    let out = site.hoist(&["deploy"]);
    assert_exit(&out, EXIT_OK);
    site.assert_live(&site.current().unwrap());
    assert!(
        stderr(&out).contains(
            "warning: local: pyproject.toml has no lock file, so two deploys of the same commit \
             can install different versions; for a reproducible environment run `uv lock`, \
             commit uv.lock and set `dependencies = \"uv.lock\"` in hoist.toml\n"
        ),
        "{}",
        stderr(&out)
    );
}

/// A src-layout package: `src/shop/__init__.py` serves `/health` and `/version` (from the
/// release's RELEASE.json, two folders up).
const SHOP: &str = r#"import json
from pathlib import Path

from flask import Flask

RELEASE_DIR = Path(__file__).resolve().parents[2]
app = Flask(__name__)


@app.get("/health")
def health():
    return "ok"


@app.get("/version")
def version():
    return {"release": json.loads((RELEASE_DIR / "RELEASE.json").read_text())["id"]}
"#;

#[test]
fn a_src_layout_package_is_imported_from_the_release_by_the_check_the_hooks_and_the_loader() {
    use std::process::{Command, Stdio};
    use std::time::{Duration, Instant};

    let site = Site::new();
    let base = site.dir.path().to_path_buf();
    fs::create_dir_all(site.project.join("src/shop")).unwrap();
    fs::write(site.project.join("src/shop/__init__.py"), SHOP).unwrap();
    fs::write(site.project.join("src/shop/worker.py"), WORKER).unwrap();
    fs::write(
        site.project.join("pyproject.toml"),
        "[project]\nname = \"shop\"\nversion = \"1.0\"\ndependencies = [\"flask\"]\n\n\
         [build-system]\nrequires = [\"setuptools\"]\nbuild-backend = \"setuptools.build_meta\"\n\n\
         [tool.setuptools]\npackage-dir = {\"\" = \"src\"}\n",
    )
    .unwrap();
    for dir in ["supervisor.d", "program-logs"] {
        fs::create_dir_all(base.join(dir)).unwrap();
    }
    let port = free_port();
    // No python_path: hoist sees the src layout in pyproject.toml.
    fs::write(
        &site.config,
        format!(
            r#"[app]
name = "shop"
entry = "shop:app"
requirements = ["requirements.txt"]
exclude = ["tests/", "requirements-dev.txt", "instance/"]
installer = "uv"

[release]
root = "{root}"
shared = ["logs/", "run/"]

[[hook]]
name = "imports"
run = "python -c 'import shop; print(\"hook imports\", shop.__file__)'"

[[process]]
name = "web"
restart = "supervisor"
program = "shop-web"
settle = "0s"

# A worker beside the web server, started by supervisord in the release (not by the loader).
[[process]]
name = "worker"
restart = "supervisor"
program = "shop-worker"
run = ".venv/bin/python -m shop.worker"

[health]
url = "http://127.0.0.1:{port}/health"
status = 200
body = "ok"
timeout = "30s"
interval = "100ms"

[setup]
server = "gunicorn"
port = {port}
workers = 1
nginx = false
supervisor_dir = "{b}/supervisor.d"
program_log_dir = "{b}/program-logs"
supervisor_conf = "{b}/supervisord.conf"
"#,
            root = site.root.display(),
            b = base.display(),
        ),
    )
    .unwrap();
    site.commit("a src-layout package");
    let conf = base.join("supervisord.conf");
    fs::write(
        &conf,
        format!(
            "[unix_http_server]\nfile={b}/supervisor.sock\nchmod=0700\n\n[supervisord]\nlogfile={b}/supervisord.log\npidfile={b}/supervisord.pid\nnodaemon=true\n\n[rpcinterface:supervisor]\nsupervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface\n\n[supervisorctl]\nserverurl=unix://{b}/supervisor.sock\n\n[include]\nfiles = {b}/supervisor.d/*.conf\n",
            b = base.display()
        ),
    )
    .unwrap();
    let _supervisord = hoist_testkit::ProcessGuard::spawn(
        Command::new("supervisord")
            .arg("-c")
            .arg(&conf)
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
        "supervisord",
        "supervisor",
    )
    .grace(Duration::from_secs(40));
    let deadline = Instant::now() + Duration::from_secs(30);
    while !Command::new("supervisorctl")
        .arg("-c")
        .arg(&conf)
        .arg("pid")
        .output()
        .is_ok_and(|o| {
            String::from_utf8_lossy(&o.stdout)
                .trim()
                .parse::<u32>()
                .is_ok()
        })
    {
        assert!(Instant::now() < deadline, "supervisord did not start");
        std::thread::sleep(Duration::from_millis(100));
    }

    let out = site.hoist(&["setup", "--apply"]);
    assert_exit(&out, EXIT_OK);
    let out = site.hoist(&["deploy"]);
    assert_exit(&out, EXIT_OK);
    let a = site.current().unwrap();
    let release = site.release_dir(&a);
    let said = format!("{}{}", stdout(&out), stderr(&out));
    assert!(
        said.contains(&format!(
            "hook imports {}/src/shop/__init__.py",
            release.display()
        )),
        "{said}"
    );
    let answer: serde_json::Value =
        serde_json::from_str(&http_get(port, "/version").expect("the app answers")).unwrap();
    assert_eq!(answer["release"], a.as_str(), "served by hoist's loader");
    assert_eq!(
        worker_imported(&site.root),
        format!("{}/src/shop/__init__.py", release.display()),
        "the worker imports the package from its release's src/"
    );

    // The shared environment knows nothing of the project: outside a release, no `shop`.
    let env = release.join(fs::read_link(release.join(".venv")).unwrap());
    let outside = Command::new(env.join("bin/python"))
        .args(["-c", "import shop"])
        .current_dir(&base)
        .output()
        .unwrap();
    assert!(!outside.status.success(), "the environment imports shop");

    // A second release serves its own code, from its own src/.
    fs::write(
        site.project.join("src/shop/__init__.py"),
        format!("{SHOP}\n# b\n"),
    )
    .unwrap();
    site.commit("b");
    let out = site.hoist(&["deploy"]);
    assert_exit(&out, EXIT_OK);
    let b = site.current().unwrap();
    assert_ne!(a, b);
    let answer: serde_json::Value =
        serde_json::from_str(&http_get(port, "/version").unwrap()).unwrap();
    assert_eq!(answer["release"], b.as_str());
    assert_eq!(
        worker_imported(&site.root),
        format!("{}/src/shop/__init__.py", site.release_dir(&b).display()),
        "the restarted worker imports the new release's package"
    );
}

/// What the src-layout app's worker wrote when it started: the file its `shop` came from.
fn worker_imported(root: &std::path::Path) -> String {
    let file = root.join("shared/run/worker-imported");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        // The worker renames its file into place: a read sees all of it or the older one.
        if let Ok(text) = fs::read_to_string(&file) {
            return text;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the worker never wrote {}",
            file.display()
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

/// The src-layout app's worker: records where `shop` was imported from, then waits for work.
const WORKER: &str = r#"import os
import time
from pathlib import Path

import shop

out = Path("run/worker-imported")
tmp = out.with_name(f"worker-imported.{os.getpid()}")
tmp.write_text(shop.__file__)
os.replace(tmp, out)
while True:
    time.sleep(3600)
"#;

#[test]
fn without_its_import_path_a_src_layout_release_never_goes_live() {
    let site = Site::new();
    fs::create_dir_all(site.project.join("src/shop")).unwrap();
    fs::write(site.project.join("src/shop/__init__.py"), SHOP).unwrap();
    let config = fs::read_to_string(&site.config).unwrap().replace(
        "entry = \"app:app\"\n",
        "entry = \"shop:app\"\npython_path = []\n",
    );
    fs::write(&site.config, config).unwrap();
    site.commit("python_path turned off");
    let out = site.hoist(&["deploy"]);
    assert_exit(&out, EXIT_BEFORE_SWITCH);
    assert!(
        stderr(&out).contains("ModuleNotFoundError: No module named 'shop'"),
        "{}",
        stderr(&out)
    );
    assert_eq!(site.current(), None);
}

#[test]
fn a_pipfile_lock_project_deploys_with_pip_and_no_pipenv_anywhere() {
    let site = Site::with(SiteOptions {
        installer: "pip",
        ..SiteOptions::default()
    });
    fs::write(
        site.project.join("Pipfile"),
        include_str!("fixtures/pipenv-example/Pipfile"),
    )
    .unwrap();
    fs::write(
        site.project.join("Pipfile.lock"),
        include_str!("fixtures/pipenv-example/Pipfile.lock"),
    )
    .unwrap();
    fs::remove_file(site.project.join("requirements.txt")).unwrap();
    let config = fs::read_to_string(&site.config).unwrap().replace(
        "requirements = [\"requirements.txt\"]\n",
        "dependencies = \"Pipfile.lock\"\n",
    );
    fs::write(&site.config, config).unwrap();
    site.commit("Pipfile.lock instead of requirements.txt");

    let a = site.deploy_ok();
    site.assert_live(&a);
    let env = site
        .release_dir(&a)
        .join(fs::read_link(site.release_dir(&a).join(".venv")).unwrap());
    let installed = fs::read_to_string(env.join("hoist-requirements.txt")).unwrap();
    assert!(installed.contains("flask==3.1.3 \\\n"), "{installed}");
    assert!(
        installed.contains("psycopg[binary]==3.3.9 \\\n"),
        "{installed}"
    );
    assert!(!installed.contains("iniconfig"), "{installed}");
    let mark = fs::read_to_string(env.join(".hoist-complete")).unwrap();
    assert!(mark.contains("\"name\": \"pip\""), "{mark}");

    // A code-only change reuses the environment; a changed Pipfile is another one.
    site.change_code("b");
    let b = site.deploy_ok();
    site.assert_live(&b);
    assert_eq!(site.envs().len(), 1);
    let pipfile = fs::read_to_string(site.project.join("Pipfile")).unwrap();
    fs::write(
        site.project.join("Pipfile"),
        format!("{pipfile}\n# edited\n"),
    )
    .unwrap();
    site.commit("Pipfile edited");
    let c = site.deploy_ok();
    site.assert_live(&c);
    assert_eq!(site.envs().len(), 2, "the Pipfile is part of the dep-key");
}
