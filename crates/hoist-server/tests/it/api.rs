//! The JSON API as a client sees it: tokens and roles, runs and logs, SSE with resume,
//! artifacts without path traversal, the public badge, the audit log.

use std::time::Duration;

use hoist_store::{Role, RunStatus};

use crate::support::*;

const LONG: Duration = Duration::from_secs(60);

async fn token(server: &TestServer, name: &str, role: Role) -> String {
    server
        .store()
        .create_token(name, role, "tests")
        .await
        .unwrap()
        .secret
}

async fn get(server: &TestServer, path: &str, token: &str) -> Answer {
    request(
        server.addr(),
        "GET",
        path,
        &[("Authorization", format!("Bearer {token}"))],
        b"",
        None,
    )
    .await
}

async fn post(server: &TestServer, path: &str, token: &str, body: &str) -> Answer {
    request(
        server.addr(),
        "POST",
        path,
        &[
            ("Authorization", format!("Bearer {token}")),
            ("Content-Type", "application/json".into()),
        ],
        body.as_bytes(),
        None,
    )
    .await
}

const PIPELINE: &str = r#"[pipeline.jobs.test]
steps = [
  "checkout",
  { run = "for i in 1 2 3 4 5; do echo line $i; done; mkdir -p out/sub && echo report > out/sub/report.txt", name = "lines" },
  { artifacts = "out", destination = "out" },
]
"#;

#[tokio::test(flavor = "multi_thread")]
async fn viewers_read_deployers_act_and_every_change_is_audited() {
    let repo = Repo::new(PIPELINE);
    let mut server = TestServer::start(&repo.path(), "", "").await;
    let viewer = token(&server, "watcher", Role::Viewer).await;
    let deployer = token(&server, "ci-bot", Role::Deployer).await;

    let anonymous = request(server.addr(), "GET", "/api/projects", &[], b"", None).await;
    assert_eq!(anonymous.status, 401);
    assert_eq!(
        anonymous.json()["error"],
        "send an API token: Authorization: Bearer <token>"
    );
    assert_eq!(
        get(&server, "/api/projects", "hoist_forged").await.status,
        401
    );
    let projects = get(&server, "/api/projects", &viewer).await;
    assert_eq!(projects.status, 200);
    assert_eq!(projects.json()["projects"][0]["name"], "app");

    let refused = post(&server, "/api/projects/app/runs", &viewer, "{}").await;
    assert_eq!(refused.status, 403);
    assert_eq!(
        refused.json()["error"],
        "token watcher is a viewer; this needs deployer"
    );

    let triggered = post(
        &server,
        "/api/projects/app/runs",
        &deployer,
        r#"{"branch":"master"}"#,
    )
    .await;
    assert_eq!(triggered.status, 202, "{}", triggered.body);
    let id = triggered.json()["run"].as_i64().unwrap();
    assert_eq!(server.wait_finished(id, LONG).await, RunStatus::Passed);

    let run = get(&server, &format!("/api/runs/{id}"), &viewer)
        .await
        .json();
    assert_eq!(run["status"], "passed");
    assert_eq!(run["trigger"], "manual");
    assert_eq!(run["triggered_by"], "token ci-bot");
    assert_eq!(run["commit"], repo.git(&["rev-parse", "HEAD"]));
    assert_eq!(run["jobs"][0]["steps"][1]["name"], "lines");
    assert_eq!(run["jobs"][0]["steps"][1]["exit_code"], 0);

    let rerun = post(&server, &format!("/api/runs/{id}/rerun"), &deployer, "").await;
    assert_eq!(rerun.status, 202);
    let again = rerun.json()["run"].as_i64().unwrap();
    let cancelled = post(&server, &format!("/api/runs/{again}/cancel"), &deployer, "").await;
    assert_eq!(cancelled.status, 200);
    assert_eq!(
        get(&server, "/api/runs/999/cancel", &deployer).await.status,
        405
    );
    assert_eq!(
        post(&server, "/api/runs/999/cancel", &deployer, "")
            .await
            .status,
        404
    );

    let audit = server.store().audit_log(10).await.unwrap();
    let actions: Vec<(&str, &str, &str)> = audit
        .iter()
        .map(|a| (a.who.as_str(), a.action.as_str(), a.target.as_str()))
        .collect();
    let expected_rerun = format!("run {again}");
    let expected_trigger = format!("run {id}");
    assert!(
        actions.contains(&("token ci-bot", "run.trigger", expected_trigger.as_str())),
        "{actions:?}"
    );
    assert!(
        actions.contains(&("token ci-bot", "run.rerun", expected_rerun.as_str())),
        "{actions:?}"
    );
    // The re-run may have finished before the cancel came: then nothing changed, nothing is audited.
    let was_cancelled = cancelled.json()["cancelled"] == true;
    let cancel_audited = actions.contains(&("token ci-bot", "run.cancel", expected_rerun.as_str()));
    assert_eq!(cancel_audited, was_cancelled, "{actions:?}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn runs_are_listed_newest_first_filtered_and_paged() {
    let repo = Repo::new(&pipeline("true"));
    let mut server = TestServer::start(&repo.path(), "", "").await;
    let viewer = token(&server, "v", Role::Viewer).await;
    let mut ids = Vec::new();
    for n in 0..3 {
        let commit = repo.commit(&format!("c{n}"));
        let body = github_push("master", &[(commit.as_str(), "c")]);
        ids.push(
            post_github(server.addr(), "push", &format!("p-{n}"), SECRET, &body)
                .await
                .json()["run"]
                .as_i64()
                .unwrap(),
        );
    }
    for id in &ids {
        server.wait_finished(*id, LONG).await;
    }
    let page = get(&server, "/api/projects/app/runs?limit=2", &viewer)
        .await
        .json();
    let listed: Vec<i64> = page["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_i64().unwrap())
        .collect();
    assert_eq!(listed, vec![ids[2], ids[1]]);
    let next = page["next_before"].as_i64().unwrap();
    let rest = get(
        &server,
        &format!("/api/projects/app/runs?limit=2&before={next}"),
        &viewer,
    )
    .await
    .json();
    assert_eq!(rest["runs"][0]["id"], ids[0]);
    let none = get(&server, "/api/projects/app/runs?branch=other", &viewer)
        .await
        .json();
    assert_eq!(none["runs"].as_array().unwrap().len(), 0);
    let bad = get(&server, "/api/projects/app/runs?status=green", &viewer).await;
    assert_eq!(bad.status, 400);
    assert_eq!(
        get(&server, "/api/projects/nope/runs", &viewer)
            .await
            .status,
        404
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_log_streams_as_sse_and_resumes_after_last_event_id() {
    let repo = Repo::new(PIPELINE);
    let mut server = TestServer::start(&repo.path(), "", "").await;
    let viewer = token(&server, "v", Role::Viewer).await;
    let id = post(
        &server,
        "/api/projects/app/runs",
        &token(&server, "d", Role::Deployer).await,
        "{}",
    )
    .await
    .json()["run"]
        .as_i64()
        .unwrap();
    // Subscribed while the run may still be going: the stream ends once it has finished.
    let all = get(&server, &format!("/api/runs/{id}/events"), &viewer).await;
    assert_eq!(all.status, 200);
    assert_eq!(all.header("content-type"), Some("text/event-stream"));
    let events = sse_events(&all.body);
    let texts: Vec<&str> = events.iter().map(|(_, t)| t.as_str()).collect();
    assert!(
        texts.contains(&"line 1") && texts.contains(&"line 5"),
        "{texts:?}"
    );
    let ids: Vec<i64> = events.iter().map(|(id, _)| *id).collect();
    assert_eq!(
        ids,
        (1..=ids.len() as i64).collect::<Vec<_>>(),
        "every line once, in order"
    );
    let third = events.iter().position(|(_, t)| t == "line 3").unwrap();
    let resumed = request(
        server.addr(),
        "GET",
        &format!("/api/runs/{id}/events"),
        &[
            ("Authorization", format!("Bearer {viewer}")),
            ("Last-Event-ID", events[third].0.to_string()),
        ],
        b"",
        None,
    )
    .await;
    let after = sse_events(&resumed.body);
    assert_eq!(after, events[third + 1..].to_vec());
    // The same lines, paged as JSON.
    let paged = get(
        &server,
        &format!("/api/runs/{id}/log?after=1&limit=2"),
        &viewer,
    )
    .await
    .json();
    assert_eq!(paged["lines"][0]["seq"], 2);
    assert_eq!(paged["next_after"], 3);
    server.stop().await;
}

/// `(id, data)` of each SSE event in a chunked body (keep-alive comments skipped).
fn sse_events(body: &str) -> Vec<(i64, String)> {
    let mut events = Vec::new();
    let mut id = None;
    for line in body.lines() {
        if let Some(v) = line
            .strip_prefix("id: ")
            .or_else(|| line.strip_prefix("id:"))
        {
            id = v.trim().parse().ok();
        } else if let Some(v) = line
            .strip_prefix("data: ")
            .or_else(|| line.strip_prefix("data:"))
        {
            events.push((id.take().unwrap(), v.to_string()));
        }
    }
    events
}

#[tokio::test(flavor = "multi_thread")]
async fn artifacts_download_and_no_path_leaves_them() {
    let repo = Repo::new(PIPELINE);
    let mut server = TestServer::start(&repo.path(), "", "").await;
    let viewer = token(&server, "v", Role::Viewer).await;
    let id = post(
        &server,
        "/api/projects/app/runs",
        &token(&server, "d", Role::Deployer).await,
        "{}",
    )
    .await
    .json()["run"]
        .as_i64()
        .unwrap();
    assert_eq!(server.wait_finished(id, LONG).await, RunStatus::Passed);
    let run = get(&server, &format!("/api/runs/{id}"), &viewer)
        .await
        .json();
    assert_eq!(run["artifacts"][0]["name"], "test/out");
    let file = get(
        &server,
        &format!("/api/runs/{id}/artifacts/test/out/sub/report.txt"),
        &viewer,
    )
    .await;
    assert_eq!(file.status, 200, "{}", file.body);
    assert_eq!(file.body, "report\n");
    for escape in [
        "test/out/../../../../hoist-server.toml",
        "test/out/%2e%2e/%2e%2e/record.json",
        "test/out/sub/..%2f..%2f..%2frecord.json",
        "..%2f..%2fhoist.db",
        "test/out/sub",
    ] {
        let answer = get(
            &server,
            &format!("/api/runs/{id}/artifacts/{escape}"),
            &viewer,
        )
        .await;
        assert_eq!(answer.status, 404, "{escape}: {}", answer.body);
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_badge_is_public_and_shows_the_last_finished_run() {
    let repo = Repo::new(&pipeline("exit 1"));
    let mut server = TestServer::start(&repo.path(), "", "").await;
    let unknown = request(server.addr(), "GET", "/badge/app.svg", &[], b"", None).await;
    assert_eq!(unknown.status, 200);
    assert_eq!(unknown.header("content-type"), Some("image/svg+xml"));
    assert!(
        unknown.body.contains("aria-label=\"hoist: unknown\""),
        "{}",
        unknown.body
    );
    let commit = repo.commit("fails");
    let body = github_push("master", &[(commit.as_str(), "fails")]);
    let id = post_github(server.addr(), "push", "b-1", SECRET, &body)
        .await
        .json()["run"]
        .as_i64()
        .unwrap();
    server.wait_finished(id, LONG).await;
    let failed = request(
        server.addr(),
        "GET",
        "/badge/app.svg?branch=master",
        &[],
        b"",
        None,
    )
    .await;
    assert!(
        failed.body.contains("aria-label=\"hoist: failed\""),
        "{}",
        failed.body
    );
    assert_eq!(
        request(server.addr(), "GET", "/badge/other.svg", &[], b"", None)
            .await
            .status,
        404
    );
    server.stop().await;
}
