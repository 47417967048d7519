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
