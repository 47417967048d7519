//! The example Flask app pushed to the server: its real pytest suite against a real PostgreSQL
//! service, the JUnit results and the report artifact in the store.

use std::path::Path;
use std::time::Duration;

use hoist_store::{RunStatus, TestOutcome};

use crate::support::*;

/// The pipeline `hoist import circleci` makes of the original hosted-CI config (the deploy step
/// left out: this server deploys nothing).
const PIPELINE: &str = r#"
[pipeline.jobs.build]
only = ["master"]

[pipeline.jobs.build.services.postgres]
environment = { POSTGRES_USER = "notes", POSTGRES_DB = "notes_test", PGPASSWORD = "notes-secret" }

[[pipeline.jobs.build.steps]]
checkout = true

[[pipeline.jobs.build.steps]]
name = "Set up the virtualenv"
run = '''
python3 -m venv venv
. venv/bin/activate
pip install -q -r requirements.txt
pip install -q pytest
'''

[[pipeline.jobs.build.steps]]
name = "Unit tests"
run = '''
. venv/bin/activate
export PYTHONPATH=.
pytest -q --junitxml=test-reports/junit.xml
'''

[[pipeline.jobs.build.steps]]
test_results = "test-reports"

[[pipeline.jobs.build.steps]]
artifacts = "test-reports"
destination = "test-reports"
"#;

#[tokio::test(flavor = "multi_thread")]
async fn a_push_of_the_example_app_runs_its_pytest_suite_against_postgresql() {
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/flask-app");
    let repo = Repo::new("");
    let copy = std::process::Command::new("sh")
        .arg("-ec")
        .arg(format!(
            "cp -r {}/. . && rm -rf .venv venv instance/*.sqlite3 && find . -name __pycache__ -prune -exec rm -rf {{}} +",
            example.display()
        ))
        .current_dir(repo.path())
        .status()
        .unwrap();
    assert!(copy.success());
    let app_config = std::fs::read_to_string(example.join("hoist.toml")).unwrap();
    std::fs::write(
        repo.path().join("hoist.toml"),
        format!("{app_config}\n{PIPELINE}"),
    )
    .unwrap();
    let commit = repo.commit("the example app");
    let mut server = TestServer::start(&repo.path(), "", "").await;
    let body = github_push("master", &[(commit.as_str(), "the example app")]);
    let answer = post_github(server.addr(), "push", "ex-1", SECRET, &body).await;
    assert_eq!(answer.status, 202, "{}", answer.body);
    let id = answer.json()["run"].as_i64().unwrap();
    let status = server.wait_finished(id, Duration::from_secs(600)).await;
    let log = server.log(id).await;
    assert_eq!(status, RunStatus::Passed, "{}", log.join("\n"));
    assert!(
        log.iter()
            .any(|l| l.starts_with("build: service postgres ready on 127.0.0.1:")),
        "{log:#?}"
    );
    let suites = server.store().test_suites(id).await.unwrap();
    let cases: Vec<_> = suites.iter().flat_map(|s| s.cases.iter()).collect();
    let pg = cases
        .iter()
        .find(|c| c.name == "test_notes_are_stored_in_postgresql")
        .expect("the PostgreSQL test ran");
    assert_eq!(pg.outcome, TestOutcome::Passed, "it talked to the service");
    assert!(cases.iter().all(|c| c.outcome != TestOutcome::Failed));
    let summary = server.store().test_summary(id).await.unwrap();
    assert_eq!(summary.tests as usize, cases.len());
    let artifacts = server.store().artifacts(id).await.unwrap();
    assert_eq!(artifacts[0].name, "build/test-reports");
    assert!(server
        .config
        .data_dir
        .join(&artifacts[0].path)
        .join("junit.xml")
        .is_file());
    server.stop().await;
}
