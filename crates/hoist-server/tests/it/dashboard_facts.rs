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
