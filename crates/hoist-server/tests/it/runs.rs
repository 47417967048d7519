//! Runs: a push to a real repository, its webhook, the pipeline run by the runners, what the
//! store keeps of it; auto-cancel, cancel, the jobs' environment.

use std::time::Duration;

use hoist_store::{RunStatus, StepStatus};

use crate::support::*;

const LONG: Duration = Duration::from_secs(60);

async fn push(server: &TestServer, repo: &Repo, delivery: &str, message: &str) -> i64 {
    let commit = repo.commit(message);
    let body = github_push("master", &[(commit.as_str(), message)]);
    let answer = post_github(server.addr(), "push", delivery, SECRET, &body).await;
    assert_eq!(answer.status, 202, "{}", answer.body);
    answer.json()["run"].as_i64().unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_push_runs_its_pipeline_and_the_store_keeps_steps_and_log_lines() {
    let repo = Repo::new(&pipeline(
        "echo hello from $(git log -1 --format=%s)\necho second line",
    ));
    let mut server = TestServer::start(&repo.path(), "", "").await;
    let id = push(&server, &repo, "r-1", "add the greeting").await;
    assert_eq!(
        server.wait_finished(id, LONG).await,
        RunStatus::Passed,
        "{:#?}",
        server.log(id).await
    );
    let log = server.log(id).await;
    assert!(
        log.contains(&"hello from add the greeting".to_string()),
        "{log:#?}"
    );
    assert!(log.contains(&"second line".to_string()), "{log:#?}");
    let jobs = server.store().jobs(id).await.unwrap();
    assert_eq!(jobs.len(), 1);
    assert_eq!(jobs[0].name, "test");
    assert_eq!(jobs[0].status, StepStatus::Passed);
    let steps: Vec<(&str, StepStatus, Option<i32>)> = jobs[0]
        .steps
        .iter()
        .map(|s| (s.name.as_str(), s.status, s.exit_code))
        .collect();
    assert_eq!(steps[1], ("script", StepStatus::Passed, Some(0)));
    // The step's lines are the step's.
    let lines = server.store().log_after(id, 0, 1000).await.unwrap();
    let hello = lines.iter().find(|l| l.text == "second line").unwrap();
    assert_eq!(hello.step, Some(jobs[0].steps[1].id));
    // The mirror is bare, in the data dir; the run's checkout is its own.
    assert!(server
        .config
        .data_dir
        .join("mirrors/app.git/HEAD")
        .is_file());
    assert!(server
        .config
        .data_dir
        .join(format!("runs/{id}/src/hoist.toml"))
        .is_file());
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failing_step_fails_the_run_with_its_exit_code() {
    let repo = Repo::new(&pipeline("echo about to fail; exit 3"));
    let mut server = TestServer::start(&repo.path(), "", "").await;
    let id = push(&server, &repo, "r-2", "break it").await;
    assert_eq!(server.wait_finished(id, LONG).await, RunStatus::Failed);
    let jobs = server.store().jobs(id).await.unwrap();
    assert_eq!(jobs[0].status, StepStatus::Failed);
    assert_eq!(jobs[0].steps[1].exit_code, Some(3));
    assert!(server.log(id).await.contains(&"about to fail".to_string()));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_commit_without_hoist_toml_fails_with_the_reason_in_its_log() {
    let repo = Repo::new(&pipeline("true"));
    let mut server = TestServer::start(&repo.path(), "config = \"ci/hoist.toml\"", "").await;
    let id = push(&server, &repo, "r-3", "no config here").await;
    assert_eq!(server.wait_finished(id, LONG).await, RunStatus::Failed);
    let log = server.log(id).await;
    let last = log.last().unwrap();
    assert!(
        last.starts_with("error: commit ")
            && last.ends_with(
                " has no ci/hoist.toml (set `config` of project \"app\" in hoist-server.toml)"
            ),
        "{log:#?}"
    );
    server.stop().await;
}

/// `hoist serve cancel N`, as a user types it while the server runs.
async fn cancel(server: &TestServer, run: i64) -> bool {
    let config = server.config.clone();
    tokio::task::spawn_blocking(move || hoist_server::admin::cancel_run(&config, run).unwrap())
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_newer_push_cancels_the_branchs_queued_runs_and_cancel_stops_a_running_one() {
    let repo = Repo::new(&pipeline("echo started; sleep 30"));
    let mut server = TestServer::start(&repo.path(), "", "max_concurrent_runs = 1").await;
    let first = push(&server, &repo, "a-1", "one").await;
    server.wait_status(first, RunStatus::Running, LONG).await;
    let second = push(&server, &repo, "a-2", "two").await;
    let third = push(&server, &repo, "a-3", "three").await;
    let store = server.store();
    let superseded = store.run(second).await.unwrap().unwrap();
    assert_eq!(superseded.status, RunStatus::Cancelled);
    assert_eq!(
        superseded.cancelled_by.as_deref(),
        Some(format!("superseded by run {third}").as_str())
    );
    // The running one is left alone by a push, and stopped by a cancel: its sleep is killed.
    assert_eq!(
        store.run(first).await.unwrap().unwrap().status,
        RunStatus::Running
    );
    let started = std::time::Instant::now();
    loop {
        if server.log(first).await.contains(&"started".to_string()) {
            break;
        }
        assert!(started.elapsed() < LONG);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(cancel(&server, first).await);
    assert_eq!(
        server.wait_finished(first, Duration::from_secs(10)).await,
        RunStatus::Cancelled
    );
    // The runner is free again and takes the newest push.
    server.wait_status(third, RunStatus::Running, LONG).await;
    assert!(cancel(&server, third).await);
    server.wait_finished(third, Duration::from_secs(10)).await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_webhook_secret_from_the_environment_never_reaches_a_job() {
    let secret = "env-secret-4f2a9c";
    std::env::set_var("HOIST_TEST_ENV_SECRET_RUNS", secret);
    let repo = Repo::new(&pipeline("env | sort"));
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("hoist-server.toml");
    std::fs::write(
        &path,
        format!(
            "listen = \"127.0.0.1:0\"\nallow_root = true\n[[project]]\nname = \"app\"\nrepository = \"{}\"\nsecret_env = \"HOIST_TEST_ENV_SECRET_RUNS\"\n",
            repo.path().display()
        ),
    )
    .unwrap();
    let config = hoist_server::config::load(&path).unwrap();
    let server = hoist_server::start(config).await.unwrap();
    assert!(
        std::env::var_os("HOIST_TEST_ENV_SECRET_RUNS").is_none(),
        "read, then removed"
    );
    let commit = repo.commit("print the environment");
    let body = github_push("master", &[(commit.as_str(), "env")]);
    let answer = post_github(server.addr(), "push", "e-1", secret, &body).await;
    assert_eq!(answer.status, 202, "{}", answer.body);
    let id = answer.json()["run"].as_i64().unwrap();
    let store = server.store();
    let deadline = std::time::Instant::now() + LONG;
    while !store.run(id).await.unwrap().unwrap().status.is_finished() {
        assert!(std::time::Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let log: Vec<String> = store
        .log_after(id, 0, 10_000)
        .await
        .unwrap()
        .into_iter()
        .map(|l| l.text)
        .collect();
    assert!(log.iter().any(|l| l.starts_with("PATH=")), "{log:#?}");
    assert!(!log.iter().any(|l| l.contains(secret)), "{log:#?}");
    server.shutdown(Duration::from_secs(5)).await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn the_server_refuses_root_unless_allowed() {
    if !rustix_is_root() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("hoist-server.toml");
    std::fs::write(&path, "listen = \"127.0.0.1:0\"\n").unwrap();
    let config = hoist_server::config::load(&path).unwrap();
    let Err(error) = hoist_server::start(config).await else {
        panic!("started as root");
    };
    assert_eq!(
        error.to_string(),
        "hoist serve runs pipelines (the repositories' own code) and refuses to run them as root"
    );
}

fn rustix_is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("Uid:"))
        .is_some_and(|l| l.split_whitespace().nth(1) == Some("0"))
}

#[tokio::test(flavor = "multi_thread")]
async fn on_a_postgresql_store_a_push_runs_and_its_log_streams_the_same() {
    let postgres = tokio::task::spawn_blocking(hoist_testkit::PostgresServer::start)
        .await
        .unwrap();
    let url = postgres.create_database("hoist_server_runs");
    let repo = Repo::new(&pipeline("echo on postgres; exit 0"));
    let mut server = TestServer::start(&repo.path(), "", &format!("database = \"{url}\"")).await;
    assert_eq!(server.store().backend(), hoist_store::Backend::Postgres);
    let id = push(&server, &repo, "pg-1", "on postgres").await;
    // A redelivery is recognised on PostgreSQL too.
    let commit = repo.git(&["rev-parse", "HEAD"]);
    let again = post_github(
        server.addr(),
        "push",
        "pg-1",
        SECRET,
        &github_push("master", &[(commit.as_str(), "on postgres")]),
    )
    .await;
    assert_eq!(
        (again.status, again.json()["run"].as_i64()),
        (200, Some(id))
    );
    assert_eq!(server.wait_finished(id, LONG).await, RunStatus::Passed);
    assert!(server.log(id).await.contains(&"on postgres".to_string()));
    let mut stream = server.store().subscribe(id, 0).await.unwrap();
    let mut streamed = Vec::new();
    while let Some(line) = stream.next().await {
        streamed.push(line.unwrap().text);
    }
    assert_eq!(streamed, server.log(id).await);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn runs_older_than_retention_go_with_their_directories_but_the_branchs_last_stays() {
    let repo = Repo::new(&pipeline("echo short-lived"));
    let mut server = TestServer::start(&repo.path(), "", "retention = \"1ms\"").await;
    let old = push(&server, &repo, "ret-1", "short-lived").await;
    assert_eq!(server.wait_finished(old, LONG).await, RunStatus::Passed);
    let last = push(&server, &repo, "ret-2", "the branch's last").await;
    assert_eq!(server.wait_finished(last, LONG).await, RunStatus::Passed);
    let dir = |id: i64| server.config.data_dir.join(format!("runs/{id}"));
    assert!(dir(old).is_dir(), "kept until the next look");
    let store = server.store();
    // A long retention keeps everything.
    let none = hoist_server::runner::retention::prune(
        &*store,
        &server.config.data_dir,
        Duration::from_secs(3600),
    )
    .await;
    assert!(none.is_empty());
    let deleted = hoist_server::runner::retention::prune(
        &*store,
        &server.config.data_dir,
        Duration::from_millis(1),
    )
    .await;
    assert_eq!(deleted, vec![old]);
    assert!(!dir(old).exists());
    assert!(store.run(old).await.unwrap().is_none());
    assert!(server.log(old).await.is_empty());
    // master's last run stays, directory and all, however old.
    assert!(dir(last).is_dir());
    assert!(server.log(last).await.contains(&"short-lived".to_string()));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn polling_runs_a_branch_whose_head_moved_and_a_new_branch() {
    let repo = Repo::new(&pipeline("echo polled"));
    let mut server = TestServer::start(&repo.path(), "poll = \"100ms\"", "").await;
    let store = server.store();
    // The first look only notes the heads.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(store
        .runs(&hoist_store::RunQuery::default())
        .await
        .unwrap()
        .is_empty());
    let moved = repo.commit("moved on");
    // The new branch appears with its commit at once (made on a detached HEAD first): a
    // poll between `checkout -b` and the commit would rightly run the branch at `moved`.
    let new_branch = {
        repo.git(&["checkout", "-q", "--detach"]);
        let id = repo.commit("a feature");
        repo.git(&["branch", "feature", &id]);
        id
    };
    let deadline = std::time::Instant::now() + LONG;
    let runs = loop {
        let runs = store.runs(&hoist_store::RunQuery::default()).await.unwrap();
        if runs.len() >= 2 {
            break runs;
        }
        assert!(std::time::Instant::now() < deadline, "{runs:#?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let mut seen: Vec<(String, String, String)> = runs
        .iter()
        .map(|r| {
            (
                r.branch.clone(),
                r.commit.clone(),
                r.trigger.kind.to_string(),
            )
        })
        .collect();
    seen.sort();
    assert_eq!(
        seen,
        vec![
            ("feature".to_string(), new_branch, "poll".to_string()),
            ("master".to_string(), moved, "poll".to_string()),
        ]
    );
    for run in &runs {
        assert_eq!(server.wait_finished(run.id, LONG).await, RunStatus::Passed);
    }
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(
        store
            .runs(&hoist_store::RunQuery::default())
            .await
            .unwrap()
            .len(),
        2,
        "nothing moved: nothing more runs"
    );
    server.stop().await;
}
