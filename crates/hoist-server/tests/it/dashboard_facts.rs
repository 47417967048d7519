//! What a run did besides its log, on the run page and in the API: the services its jobs
//! started (a real PostgreSQL) with their ports, its cache steps' hits and misses with the key
//! and size, and its deploy steps' per-host table. And sessions that survive a restart of the server, until signed out.

use hoist_store::{Role, RunStatus};

use super::{push, sign_in_raw, users, Browser, LONG, PASSWORD};
use crate::support::*;

/// A job with PostgreSQL that restores a cache, builds what it caches, and saves it.
const CACHED_WITH_POSTGRES: &str = r#"
[pipeline.jobs.test]
services.postgres = {}
steps = [
  "checkout",
  { restore_cache = ['deps-{{ checksum "deps.txt" }}', "deps-"], name = "restore deps" },
  { run = '''echo "postgres on port $PGPORT"; psql -X -A -t -c 'select 40 + 2'; mkdir -p deps; head -c 20000 /dev/urandom > deps/blob''', name = "build deps" },
  { save_cache = 'deps-{{ checksum "deps.txt" }}', paths = ["deps"], name = "save deps" },
]
"#;

/// The port the job's script saw in `PGPORT`, from its log.
async fn postgres_port(server: &TestServer, run: i64) -> u16 {
    let log = server.log(run).await;
    log.iter()
        .find_map(|l| l.strip_prefix("postgres on port "))
        .unwrap_or_else(|| panic!("the job printed no port: {log:#?}"))
        .trim()
        .parse()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_run_page_shows_the_services_started_with_their_ports_and_each_cache_hit_or_miss() {
    assert!(
        hoist_pipeline::services::postgres_bindir().is_some(),
        "PostgreSQL (initdb, pg_ctl, postgres) is not installed: run scripts/install-deps (or apt-get install postgresql)"
    );
    let repo = Repo::new(CACHED_WITH_POSTGRES);
    std::fs::write(repo.path().join("deps.txt"), "flask==3.0.3\n").unwrap();
    let mut server = TestServer::start(&repo.path(), "", "").await;
    users(&server).await;
    let first = push(&server, &repo, "d-facts-1", "first build").await;
    assert_eq!(server.wait_finished(first, LONG).await, RunStatus::Passed);
    let second = push(&server, &repo, "d-facts-2", "second build").await;
    assert_eq!(server.wait_finished(second, LONG).await, RunStatus::Passed);
    let log = server.log(second).await;
    assert!(log.iter().any(|l| l == "42"), "psql answered: {log:#?}");

    let browser = Browser::start(&server).await;
    browser.open(&format!("/runs/{first}")).await;
    browser.sign_in("ada", PASSWORD).await;
    let port = postgres_port(&server, first).await;
    let services = browser.texts(".job .services tr").await;
    assert_eq!(services.len(), 2, "{services:?}");
    assert!(
        services[1].starts_with(&format!("postgres 127.0.0.1:{port} ")),
        "{services:?}"
    );
    // The first run finds no cache under either key, then saves one.
    let caches = browser.texts(".job .caches tr").await;
    assert_eq!(caches.len(), 3, "{caches:?}");
    assert!(
        caches[1].starts_with("restore deps ∅ restore miss deps-")
            && caches[1].contains(", deps- —"),
        "both keys tried: {caches:?}"
    );
    assert!(
        caches[2].starts_with("save deps ✓ save saved deps-") && caches[2].contains("KiB"),
        "{caches:?}"
    );
    let saved_key = caches[2].split_whitespace().nth(5).unwrap().to_string();

    // The second run restores that very cache, with its size, and does not save it again.
    browser.open(&format!("/runs/{second}")).await;
    let port = postgres_port(&server, second).await;
    let services = browser.texts(".job .services tr").await;
    assert!(
        services[1].starts_with(&format!("postgres 127.0.0.1:{port} ")),
        "{services:?}"
    );
    let caches = browser.texts(".job .caches tr").await;
    assert!(
        caches[1].starts_with(&format!("restore deps ✓ restore hit {saved_key} "))
            && caches[1].contains("KiB"),
        "{caches:?}"
    );
    assert!(
        caches[2].starts_with(&format!("save deps ✓ save exists {saved_key} ")),
        "{caches:?}"
    );
    browser.screenshot("run-facts").await;

    // A deploy step's per-host table, from what the runner records for each host (a real
    // deploy step is run by the `hoist` binary: crates/hoist/tests/it/serve.rs checks that the
    // runner records these rows, with the step and the host's duration).
    let store = server.store();
    let ship = store
        .add_job(
            second,
            &hoist_store::NewJob {
                name: "ship".into(),
                position: 1,
                requires: vec!["test".into()],
            },
        )
        .await
        .unwrap();
    let step = store.add_step(ship, "deploy", 1).await.unwrap();
    for (host, outcome, detail, millis) in [
        ("web1", "live", None, Some(2300)),
        (
            "web2",
            "switched_back",
            Some("the health check failed: HTTP 502"),
            Some(31_000),
        ),
    ] {
        store
            .record_deployment(&hoist_store::NewDeployment {
                run: Some(second),
                project: "app".into(),
                environment: "production".into(),
                host: host.into(),
                release: "20261201T120000Z".into(),
                outcome: outcome.into(),
                detail: detail.map(str::to_string),
                who: format!("run {second}"),
                step: Some(step),
                millis,
            })
            .await
            .unwrap();
    }
    browser.open(&format!("/runs/{second}")).await;
    assert_eq!(
        browser.texts(".job .deployed tr").await,
        [
            "host environment release outcome took error",
            "web1 production 20261201T120000Z ✓ live 2.3 s",
            "web2 production 20261201T120000Z ✗ switched back 31.0 s the health check failed: HTTP 502",
        ]
    );
    browser.close().await;

    // The same facts in the run's JSON.
    let token = server
        .store()
        .create_token("reader", Role::Viewer, "tests")
        .await
        .unwrap()
        .secret;
    let answer = request(
        server.addr(),
        "GET",
        &format!("/api/runs/{second}"),
        &[("Authorization", format!("Bearer {token}"))],
        b"",
        None,
    )
    .await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    let run = answer.json();
    assert_eq!(run["services"][0]["service"], "postgres");
    assert_eq!(run["services"][0]["job"], "test");
    assert_eq!(run["services"][0]["port"], port);
    assert!(run["services"][0]["error"].is_null(), "{run:#}");
    let outcomes: Vec<(&str, &str)> = run["caches"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["action"].as_str().unwrap(),
                c["outcome"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(outcomes, [("restore", "hit"), ("save", "exists")]);
    assert_eq!(run["caches"][0]["matched"], saved_key.as_str());
    assert!(
        run["caches"][0]["bytes"].as_u64().unwrap() > 10_000,
        "{run:#}"
    );
    server.stop().await;
}

/// A job whose PostgreSQL cannot start (an invalid setting): it fails, no step runs.
const FAILING_POSTGRES: &str = r#"
[pipeline.jobs.test]
services.postgres = { settings = { shared_buffers = "lots" } }
steps = ["checkout", { run = "echo never", name = "never" }]
"#;

#[tokio::test(flavor = "multi_thread")]
async fn a_service_that_does_not_start_shows_its_error_and_its_time_to_failing_on_the_run_page() {
    assert!(
        hoist_pipeline::services::postgres_bindir().is_some(),
        "PostgreSQL (initdb, pg_ctl, postgres) is not installed: run scripts/install-deps (or apt-get install postgresql)"
    );
    let repo = Repo::new(FAILING_POSTGRES);
    let mut server = TestServer::start(&repo.path(), "", "").await;
    users(&server).await;
    let run = push(&server, &repo, "d-facts-failed-service", "bad setting").await;
    assert_eq!(server.wait_finished(run, LONG).await, RunStatus::Failed);

    // initdb alone takes a while: the time to failing is measured, not left at zero.
    let token = server
        .store()
        .create_token("reader", Role::Viewer, "tests")
        .await
        .unwrap()
        .secret;
    let answer = api_get(&server, &format!("/api/runs/{run}"), &token).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    let facts = answer.json();
    let service = &facts["services"][0];
    assert_eq!(service["service"], "postgres", "{facts:#}");
    assert!(service["port"].is_null(), "{facts:#}");
    assert!(
        service["error"]
            .as_str()
            .unwrap()
            .starts_with("PostgreSQL exited during startup"),
        "{facts:#}"
    );
    let millis = service["millis"].as_u64().unwrap();
    assert!(millis > 0, "{facts:#}");

    // The run page's row of that service: no port, the error and how long it took to fail.
    let signed_in = sign_in_raw(&server, "ada", "/").await;
    let session = signed_in
        .header("set-cookie")
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    let page = request(
        server.addr(),
        "GET",
        &format!("/runs/{run}"),
        &[("Cookie", session)],
        b"",
        None,
    )
    .await;
    assert_eq!(page.status, 200, "{}", page.body);
    let row = page
        .body
        .lines()
        .find(|l| l.contains("<tr><td>postgres</td>"))
        .unwrap_or_else(|| panic!("no row for postgres: {}", page.body));
    let error = service["error"].as_str().unwrap();
    let took = if millis < 1000 {
        format!("{millis} ms")
    } else {
        format!("{:.1} s", millis as f64 / 1000.0)
    };
    assert_eq!(
        row.trim(),
        format!(
            "<tr><td>postgres</td><td>—</td><td><span class=\"status s-failed\">✗ failed</span> after {took}: {}</td></tr>",
            html_escape(error)
        )
    );
    server.stop().await;
}

/// What minijinja's HTML auto-escaping makes of `text`.
fn html_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#x27;")
        .replace('/', "&#x2f;")
}

/// The CSRF token of the sign-out form of a page.
fn csrf_of(page: &str) -> String {
    let at = page
        .find("name=\"csrf\" value=\"")
        .unwrap_or_else(|| panic!("no CSRF token in {page}"))
        + "name=\"csrf\" value=\"".len();
    page[at..].split('"').next().unwrap().to_string()
}

async fn get_page(server: &TestServer, session: &str) -> Answer {
    request(
        server.addr(),
        "GET",
        "/",
        &[("Cookie", session.to_string())],
        b"",
        None,
    )
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn a_session_survives_a_restart_of_the_server_and_a_signed_out_one_is_refused() {
    let repo = Repo::new(&pipeline("echo hello"));
    let mut server = TestServer::start(&repo.path(), "", "").await;
    users(&server).await;
    let signed_in = sign_in_raw(&server, "ada", "/").await;
    assert_eq!(signed_in.status, 303, "{}", signed_in.body);
    let session = signed_in
        .header("set-cookie")
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    assert_eq!(get_page(&server, &session).await.status, 200);

    // The server restarts on the same data dir: the session is still good.
    server.stop().await;
    server.server = Some(hoist_server::start(server.config.clone()).await.unwrap());
    let page = get_page(&server, &session).await;
    assert_eq!(page.status, 200, "signed out by the restart: {page:?}");
    assert!(
        page.body.contains("ada <small>(deployer)</small>"),
        "{}",
        page.body
    );

    // Signing out ends it for good: its id is refused, also after another restart.
    let signout = request(
        server.addr(),
        "POST",
        "/signout",
        &[
            ("Cookie", session.clone()),
            (
                "Content-Type",
                "application/x-www-form-urlencoded".to_string(),
            ),
        ],
        format!("csrf={}", csrf_of(&page.body)).as_bytes(),
        None,
    )
    .await;
    assert_eq!(signout.status, 303, "{}", signout.body);
    assert_eq!(signout.header("location"), Some("/signin"));
    for restart in [false, true] {
        if restart {
            server.stop().await;
            server.server = Some(hoist_server::start(server.config.clone()).await.unwrap());
        }
        let refused = get_page(&server, &session).await;
        assert_eq!(refused.status, 303, "{refused:?}");
        assert_eq!(refused.header("location"), Some("/signin?next=%2F"));
    }
    server.stop().await;
}

async fn api_get(server: &TestServer, path: &str, token: &str) -> Answer {
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

#[tokio::test(flavor = "multi_thread")]
async fn every_pages_data_is_in_the_api_the_projects_branches_the_tests_tab_the_artifacts_and_settings(
) {
    let repo = Repo::new(super::TESTS_PIPELINE);
    let mut server = TestServer::start(&repo.path(), "", "").await;
    users(&server).await;
    std::fs::write(repo.path().join("junit.xml"), super::PASSING).unwrap();
    let passed = push(&server, &repo, "d-api-1", "all green").await;
    server.wait_finished(passed, LONG).await;
    std::fs::write(repo.path().join("junit.xml"), super::FAILING).unwrap();
    let id = push(&server, &repo, "d-api-2", "a failing test").await;
    server.wait_finished(id, LONG).await;
    let store = server.store();
    let viewer = store
        .create_token("viewer", Role::Viewer, "tests")
        .await
        .unwrap()
        .secret;
    let admin = store
        .create_token("admin", Role::Admin, "tests")
        .await
        .unwrap()
        .secret;

    // What the server recorded live per environment (a failed deploy leaves the release before).
    for (host, release, outcome) in [
        ("web1", "20261201T100000Z", "live"),
        ("web1", "20261201T110000Z", "live"),
        ("web2", "20261201T110000Z", "live"),
        ("web2", "20261201T120000Z", "switched_back"),
    ] {
        store
            .record_deployment(&hoist_store::NewDeployment {
                run: Some(id),
                project: "app".into(),
                environment: "production".into(),
                host: host.into(),
                release: release.into(),
                outcome: outcome.into(),
                detail: None,
                who: format!("run {id}"),
                step: None,
                millis: None,
            })
            .await
            .unwrap();
    }

    // The projects page: each branch's last run, and what was last recorded live.
    let projects = api_get(&server, "/api/projects", &viewer).await.json();
    let live = &projects["projects"][0]["recorded_live"];
    assert_eq!(live.as_array().unwrap().len(), 1, "{live:#}");
    assert_eq!(
        (
            &live[0]["environment"],
            &live[0]["release"],
            &live[0]["run"]
        ),
        (&"production".into(), &"20261201T110000Z".into(), &id.into())
    );
    assert_eq!(live[0]["hosts"], serde_json::json!(["web1", "web2"]));
    let signed_in = sign_in_raw(&server, "ada", "/").await;
    let session = signed_in
        .header("set-cookie")
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    let page = get_page(&server, &session).await;
    assert!(
        page.body
            .contains("<strong>production</strong>: <code>20261201T110000Z</code> on web1, web2"),
        "{}",
        page.body
    );
    let branches = projects["projects"][0]["branches"].as_array().unwrap();
    assert_eq!(branches.len(), 1, "{projects:#}");
    assert_eq!(
        (
            &branches[0]["id"],
            &branches[0]["branch"],
            &branches[0]["status"]
        ),
        (&id.into(), &"master".into(), &"passed".into())
    );

    // The Tests tab: counts, the failure with its traceback, new since the last run, the slowest.
    let tests = api_get(&server, &format!("/api/runs/{id}/tests"), &viewer)
        .await
        .json();
    assert_eq!(
        (&tests["tests"], &tests["passed"], &tests["failures"]),
        (&3.into(), &2.into(), &1.into())
    );
    let failed = &tests["failed"][0];
    assert_eq!(failed["name"], "test_title_is_required");
    assert_eq!(failed["message"], "AssertionError: assert 200 == 400");
    assert!(
        failed["traceback"]
            .as_str()
            .unwrap()
            .ends_with("tests/test_notes.py:31: AssertionError"),
        "{tests:#}"
    );
    assert_eq!(failed["new_failure"], true);
    assert_eq!(tests["slowest"][0]["name"], "test_slow_export");
    assert_eq!(tests["slowest"][0]["millis"], 1100);

    // The Artifacts tab: every file with its size, and where to download it.
    let artifacts = api_get(&server, &format!("/api/runs/{id}/artifacts"), &viewer)
        .await
        .json();
    let file = &artifacts["files"][0];
    assert_eq!(file["name"], "test/reports/junit.xml");
    assert_eq!(file["size"], super::FAILING.len());
    let url = file["url"].as_str().unwrap();
    let path = &url[url.find("/api/").unwrap()..];
    let download = api_get(&server, path, &viewer).await;
    assert_eq!(download.body, super::FAILING);

    // The settings page: users and tokens, for admins only.
    let users = api_get(&server, "/api/users", &admin).await.json();
    let names: Vec<(&str, &str)> = users["users"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| (u["name"].as_str().unwrap(), u["role"].as_str().unwrap()))
        .collect();
    assert_eq!(names, [("ada", "deployer"), ("vic", "viewer")]);
    let tokens = api_get(&server, "/api/tokens", &admin).await;
    assert_eq!(tokens.status, 200);
    assert!(
        !tokens.body.contains(&viewer[6..]),
        "no secret is ever shown again"
    );
    let tokens = tokens.json();
    let names: Vec<&str> = tokens["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["admin", "viewer"]);
    for path in ["/api/users", "/api/tokens"] {
        assert_eq!(api_get(&server, path, &viewer).await.status, 403, "{path}");
    }
    server.stop().await;
}
