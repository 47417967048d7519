//! The dashboard in a real browser: Debian's Chromium, headless, driven through chromedriver
//! (WebDriver) by fantoccini. Sign-in, a run's log arriving live, the Tests and Artifacts tabs,
//! a re-run, a forged form refused, a viewer refused a deployer's action, slowed sign-ins; and,
//! over raw HTTP, the cookies' attributes and the pages without JavaScript.
//!
//! Each test saves screenshots of the pages it visits into `target/dashboard-screenshots/`.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use hoist_store::{Role, RunQuery, RunStatus};
use hoist_testkit::{free_port, ProcessGuard};
use hyper_util::client::legacy::connect::HttpConnector;

use crate::support::*;

const LONG: Duration = Duration::from_secs(60);
const PASSWORD: &str = "correct horse battery";

/// A headless Chromium under chromedriver, both stopped when dropped.
struct Browser {
    client: Client,
    base: String,
    _profile: tempfile::TempDir,
    _driver: ProcessGuard,
}

impl Browser {
    async fn start(server: &TestServer) -> Browser {
        let port = free_port();
        let driver = ProcessGuard::spawn(
            Command::new("chromedriver")
                .arg(format!("--port={port}"))
                .stdout(Stdio::null())
                .stderr(Stdio::null()),
            "chromedriver",
            "chromium-driver and chromium",
        )
        .grace(Duration::from_secs(5));
        let profile = tempfile::tempdir().unwrap();
        let mut capabilities = serde_json::Map::new();
        capabilities.insert(
            "goog:chromeOptions".into(),
            serde_json::json!({
                "binary": "/usr/bin/chromium",
                "args": [
                    "--headless=new",
                    // Tests run as root in CI, where Chromium's sandbox cannot start.
                    "--no-sandbox",
                    "--disable-gpu",
                    "--disable-dev-shm-usage",
                    "--window-size=1280,900",
                    format!("--user-data-dir={}", profile.path().display()),
                ],
            }),
        );
        let deadline = Instant::now() + Duration::from_secs(30);
        let client = loop {
            match ClientBuilder::new(HttpConnector::new())
                .capabilities(capabilities.clone())
                .connect(&format!("http://127.0.0.1:{port}"))
                .await
            {
                Ok(client) => break client,
                Err(e) => {
                    assert!(
                        Instant::now() < deadline,
                        "chromedriver on port {port} gave no browser: {e} \
                         (install chromium and chromium-driver: scripts/install-deps does)"
                    );
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            }
        };
        Browser {
            client,
            base: format!("http://{}", server.addr()),
            _profile: profile,
            _driver: driver,
        }
    }

    async fn open(&self, path: &str) {
        self.client
            .goto(&format!("{}{path}", self.base))
            .await
            .unwrap();
    }

    async fn path(&self) -> String {
        let url = self.client.current_url().await.unwrap();
        match url.query() {
            Some(q) => format!("{}?{q}", url.path()),
            None => url.path().to_string(),
        }
    }

    async fn text(&self, css: &str) -> String {
        self.client
            .find(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("no {css} on the page: {e}"))
            .text()
            .await
            .unwrap()
    }

    async fn texts(&self, css: &str) -> Vec<String> {
        let mut texts = Vec::new();
        for element in self.client.find_all(Locator::Css(css)).await.unwrap() {
            texts.push(element.text().await.unwrap());
        }
        texts
    }

    /// Marks the page the browser is on, so that [`Browser::wait_new_page`] can tell it went.
    async fn mark_page(&self) {
        self.client
            .execute("window.hoistOldPage = true;", vec![])
            .await
            .unwrap();
    }

    /// Waits until the browser shows a new, loaded page (after [`Browser::mark_page`]).
    async fn wait_new_page(&self) {
        let deadline = Instant::now() + LONG;
        loop {
            let ready = self
                .client
                .execute(
                    "return window.hoistOldPage !== true && document.readyState === 'complete';",
                    vec![],
                )
                .await;
            if matches!(ready, Ok(serde_json::Value::Bool(true))) {
                return;
            }
            assert!(Instant::now() < deadline, "no new page after {LONG:?}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Clicks the button labelled `label` and waits for the page it leads to.
    async fn press(&self, label: &str) {
        self.mark_page().await;
        self.client
            .find(Locator::XPath(&format!("//button[text()='{label}']")))
            .await
            .unwrap_or_else(|e| panic!("no button {label:?}: {e}"))
            .click()
            .await
            .unwrap();
        self.wait_new_page().await;
    }

    /// Fills the sign-in form the browser is on and submits it.
    async fn sign_in(&self, user: &str, password: &str) {
        let form = self.client.form(Locator::Css("form.signin")).await.unwrap();
        form.set_by_name("user", user).await.unwrap();
        form.set_by_name("password", password).await.unwrap();
        self.mark_page().await;
        form.submit().await.unwrap();
        self.wait_new_page().await;
    }

    /// Submits, from the page the browser is on, a form to `action` with this `csrf` value:
    /// what a page of another site (or a script of its own) would do.
    async fn post_form(&self, action: &str, csrf: &str) {
        self.mark_page().await;
        self.client
            .execute(
                "const f = document.createElement('form');
                 f.method = 'post'; f.action = arguments[0];
                 const i = document.createElement('input');
                 i.type = 'hidden'; i.name = 'csrf'; i.value = arguments[1];
                 f.appendChild(i); document.body.appendChild(f); f.submit();",
                vec![action.into(), csrf.into()],
            )
            .await
            .unwrap();
        self.wait_new_page().await;
        assert_eq!(self.path().await, action);
    }

    /// Saves a PNG of the page as `target/dashboard-screenshots/<name>.png`; returns its path.
    async fn screenshot(&self, name: &str) -> PathBuf {
        let dir = screenshots();
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(format!("{name}.png"));
        std::fs::write(&path, self.client.screenshot().await.unwrap()).unwrap();
        eprintln!("screenshot: {}", path.display());
        path
    }

    async fn close(self) {
        self.client.close().await.unwrap();
    }
}

fn screenshots() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(
            || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target"),
            PathBuf::from,
        )
        .join("dashboard-screenshots")
}

async fn users(server: &TestServer) {
    let store = server.store();
    store
        .add_user("ada", Role::Deployer, PASSWORD)
        .await
        .unwrap();
    store.add_user("vic", Role::Viewer, PASSWORD).await.unwrap();
}

async fn push(server: &TestServer, repo: &Repo, delivery: &str, message: &str) -> i64 {
    let commit = repo.commit(message);
    let body = github_push("master", &[(commit.as_str(), message)]);
    let answer = post_github(server.addr(), "push", delivery, SECRET, &body).await;
    assert_eq!(answer.status, 202, "{}", answer.body);
    answer.json()["run"].as_i64().unwrap()
}

async fn run_count(server: &TestServer) -> usize {
    server
        .store()
        .runs(&RunQuery {
            project: Some("app".into()),
            branch: None,
            status: None,
            before: None,
            limit: 100,
        })
        .await
        .unwrap()
        .len()
}

/// A step that prints a red bold line, then a line every 0.3 s for 18 s.
const TICKS: &str = r"printf '\033[1;31mred alert\033[0m\n'; for i in $(seq 1 60); do echo tick $i; sleep 0.3; done";

#[tokio::test(flavor = "multi_thread")]
async fn a_signed_in_reader_watches_a_run_log_arrive_live_with_its_colours() {
    let repo = Repo::new(&pipeline(TICKS));
    let mut server = TestServer::start(&repo.path(), "", "").await;
    users(&server).await;
    let id = push(&server, &repo, "d-1", "tick sixty times").await;
    server.wait_status(id, RunStatus::Running, LONG).await;
    let browser = Browser::start(&server).await;

    // Not signed in: the run page sends the reader to sign in, then back to the run.
    browser.open(&format!("/runs/{id}")).await;
    assert_eq!(browser.path().await, format!("/signin?next=%2Fruns%2F{id}"));
    browser.sign_in("ada", "wrong").await;
    assert_eq!(browser.text(".error").await, "Wrong user name or password.");
    browser.sign_in("ada", PASSWORD).await;
    assert_eq!(browser.path().await, format!("/runs/{id}"));
    assert_eq!(browser.text(".who").await, "ada (deployer)");

    // The lines written after the page loaded arrive without a reload.
    let loaded = browser.texts("#lines .line code").await;
    assert!(
        !loaded.contains(&"tick 60".to_string()),
        "the run had already ended: {loaded:?}"
    );
    browser
        .client
        .execute("window.sameDocument = true;", vec![])
        .await
        .unwrap();
    let line = |n: u32| {
        let browser = &browser;
        async move {
            browser
                .client
                .wait()
                .at_most(LONG)
                .for_element(Locator::XPath(&format!(
                    "//div[@id='lines']/div[code='tick {n}']"
                )))
                .await
                .unwrap_or_else(|e| panic!("tick {n} never arrived on the open page: {e}"))
        }
    };
    let scroll = |script: &'static str| {
        let browser = &browser;
        async move { browser.client.execute(script, vec![]).await.unwrap() }
    };
    // The log follows new lines while the reader is at its end…
    line(45).await;
    let at_end = scroll(
        "const l = document.getElementById('log');
         return l.scrollHeight > l.clientHeight
             && l.scrollHeight - l.scrollTop - l.clientHeight < 40;",
    )
    .await;
    assert_eq!(at_end, serde_json::json!(true), "the log is not at its end");
    // …and stays where the reader scrolled up to.
    scroll("document.getElementById('log').scrollTop = 0;").await;
    let last = line(60).await;
    let top = scroll("return document.getElementById('log').scrollTop;").await;
    assert_eq!(top, serde_json::json!(0), "the log moved under the reader");
    let same = browser
        .client
        .execute("return window.sameDocument === true;", vec![])
        .await
        .unwrap();
    assert_eq!(same, serde_json::json!(true), "the page was not reloaded");

    // Each line links to itself; ANSI colours are rendered, not printed.
    let anchor = last.attr("id").await.unwrap().unwrap();
    let link = last.find(Locator::Css("a")).await.unwrap();
    assert_eq!(link.attr("href").await.unwrap(), Some(format!("#{anchor}")));
    let red = browser.text("#lines span.b.f1").await;
    assert_eq!(red, "red alert");
    assert!(!browser.client.source().await.unwrap().contains("[1;31m"));

    // When the run ends, its status and steps on the page follow.
    let status = browser
        .client
        .wait()
        .at_most(LONG)
        .for_element(Locator::XPath(
            "//span[@id='run-status']/span[contains(., 'passed')]",
        ))
        .await
        .expect("the page shows the run passed");
    assert_eq!(status.text().await.unwrap(), "✓ passed");
    let steps = browser.texts(".jobs .steps tr").await;
    assert!(
        steps
            .iter()
            .any(|s| s.contains("script") && s.contains("exit 0")),
        "{steps:?}"
    );
    // The README's picture: the start of the log, with its colours.
    browser
        .client
        .execute("document.getElementById('log').scrollTop = 0;", vec![])
        .await
        .unwrap();
    browser.screenshot("run").await;

    // A deep link to a line opens at that line, marked.
    let tick = browser
        .client
        .find(Locator::XPath("//div[@id='lines']/div[code='tick 2']"))
        .await
        .unwrap()
        .attr("id")
        .await
        .unwrap()
        .unwrap();
    browser.open(&format!("/runs/{id}#{tick}")).await;
    let target = browser
        .client
        .execute(
            "return document.querySelector(':target').textContent;",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(target, serde_json::json!(format!("{}tick 2", &tick[1..])));

    browser.open("/").await;
    let projects = browser.texts(".runs tbody tr").await;
    assert!(
        projects[0].starts_with(&format!("master #{id} ✓ passed")),
        "{projects:?}"
    );
    browser.screenshot("projects").await;
    browser.open("/projects/app?status=failed").await;
    assert_eq!(browser.texts(".runs tbody tr").await, ["No runs match."]);
    browser.open("/projects/app?status=passed").await;
    assert_eq!(browser.texts(".runs tbody tr").await.len(), 1);
    let snippet = browser
        .client
        .find(Locator::Css(".badge pre"))
        .await
        .unwrap()
        .html(true)
        .await
        .unwrap();
    let base = &browser.base;
    assert_eq!(
        snippet,
        format!("[![hoist]({base}/badge/app.svg)]({base}/projects/app)")
    );
    browser.screenshot("runs").await;

    // At 360 px wide (a phone), the pages fit: nothing scrolls sideways but the log itself.
    browser.client.set_window_size(360, 800).await.unwrap();
    for path in [
        "/".to_string(),
        "/projects/app".to_string(),
        format!("/runs/{id}"),
    ] {
        browser.open(&path).await;
        let fits = browser
            .client
            .execute(
                "return document.documentElement.scrollWidth <= document.documentElement.clientWidth;",
                vec![],
            )
            .await
            .unwrap();
        assert_eq!(fits, serde_json::json!(true), "{path} is wider than 360 px");
    }
    browser.screenshot("run-narrow").await;

    browser.close().await;
    server.stop().await;
}

/// A pipeline that reports the JUnit file the commit holds (as pytest would have written it).
const TESTS_PIPELINE: &str = r#"
[[pipeline.jobs.test.steps]]
checkout = true

[[pipeline.jobs.test.steps]]
name = "pytest"
run = "mkdir -p reports && cp junit.xml reports/ && echo tests ran"

[[pipeline.jobs.test.steps]]
test_results = "reports"

[[pipeline.jobs.test.steps]]
artifacts = "reports"
destination = "reports"
"#;

const PASSING: &str = r#"<?xml version="1.0" encoding="utf-8"?>
<testsuites><testsuite name="pytest" tests="3" failures="0" errors="0" skipped="0" time="1.35">
<testcase classname="tests.test_notes" name="test_create" time="0.2"/>
<testcase classname="tests.test_notes" name="test_slow_export" time="1.1"/>
<testcase classname="tests.test_notes" name="test_title_is_required" time="0.05"/>
</testsuite></testsuites>
"#;

const FAILING: &str = r#"<?xml version="1.0" encoding="utf-8"?>
<testsuites><testsuite name="pytest" tests="3" failures="1" errors="0" skipped="0" time="1.35">
<testcase classname="tests.test_notes" name="test_create" time="0.2"/>
<testcase classname="tests.test_notes" name="test_slow_export" time="1.1"/>
<testcase classname="tests.test_notes" name="test_title_is_required" time="0.05"><failure message="AssertionError: assert 200 == 400">client = &lt;FlaskClient&gt;

    def test_title_is_required(client):
&gt;       assert client.post("/notes", data={}).status_code == 400
E       AssertionError: assert 200 == 400

tests/test_notes.py:31: AssertionError</failure></testcase>
</testsuite></testsuites>
"#;

#[tokio::test(flavor = "multi_thread")]
async fn the_tests_tab_lists_a_failure_with_its_traceback_and_a_forged_form_is_refused() {
    let repo = Repo::new(TESTS_PIPELINE);
    let mut server = TestServer::start(&repo.path(), "", "").await;
    users(&server).await;
    std::fs::write(repo.path().join("junit.xml"), PASSING).unwrap();
    let passed = push(&server, &repo, "d-2a", "all green").await;
    server.wait_finished(passed, LONG).await;
    std::fs::write(repo.path().join("junit.xml"), FAILING).unwrap();
    let id = push(&server, &repo, "d-2b", "a failing test").await;
    server.wait_finished(id, LONG).await;
    let browser = Browser::start(&server).await;
    browser.open(&format!("/runs/{id}/tests")).await;
    browser.sign_in("ada", PASSWORD).await;
    assert_eq!(browser.path().await, format!("/runs/{id}/tests"));

    assert_eq!(
        browser.text(".counts").await,
        "3 tests: 2 passed, 1 failed, 0 errors, 0 skipped"
    );
    assert_eq!(
        browser.text(".failure h3").await,
        "✗ failed tests.test_notes::test_title_is_required new failure"
    );
    assert_eq!(
        browser.text(".failure .message").await,
        "AssertionError: assert 200 == 400"
    );
    let traceback = browser.text(".failure pre.traceback").await;
    assert!(
        traceback.contains("tests/test_notes.py:31: AssertionError")
            && traceback.contains("assert client.post(\"/notes\", data={}).status_code == 400"),
        "{traceback}"
    );
    let slowest = browser.texts("table.steps tr").await;
    assert!(
        slowest[0].contains("tests.test_notes::test_slow_export"),
        "{slowest:?}"
    );
    browser.screenshot("tests").await;

    // The artifacts tab lists the report with its size; the link downloads it.
    browser.open(&format!("/runs/{id}/artifacts")).await;
    let files = browser.texts("table.files tr").await;
    assert_eq!(files.len(), 1, "{files:?}");
    assert!(files[0].starts_with("test/reports/junit.xml"), "{files:?}");
    let href = browser
        .client
        .find(Locator::Css("table.files a"))
        .await
        .unwrap()
        .attr("href")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(href, format!("/runs/{id}/files/test/reports/junit.xml"));
    browser.screenshot("artifacts").await;

    // A form whose CSRF token is not the session's changes nothing.
    browser.open(&format!("/runs/{id}")).await;
    browser
        .post_form(&format!("/runs/{id}/rerun"), "forged-token")
        .await;
    assert_eq!(browser.text("h1").await, "403");
    assert_eq!(
        browser.text(".error").await,
        "the form's CSRF token is missing or stale: reload the page and try again"
    );
    assert_eq!(run_count(&server).await, 2);

    // The page's own Re-run button does it.
    browser.open(&format!("/runs/{id}")).await;
    browser.press("Re-run").await;
    assert_eq!(run_count(&server).await, 3);
    let rerun = browser.path().await;
    assert_ne!(rerun, format!("/runs/{id}"));
    assert!(
        browser.text(".meta").await.contains("rerun by user ada"),
        "{}",
        browser.text(".meta").await
    );

    // A deployer runs a branch's head from the project's page.
    browser.open("/projects/app").await;
    browser.press("Run").await;
    assert_eq!(run_count(&server).await, 4);
    assert_ne!(browser.path().await, rerun);
    let meta = browser.text(".meta").await;
    assert!(
        meta.starts_with("master · ") && meta.contains("a failing test · Ada · manual by user ada"),
        "{meta}"
    );

    browser.close().await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_viewer_reads_but_is_refused_a_deployer_action_and_failed_sign_ins_are_slowed() {
    let repo = Repo::new(&pipeline("echo done"));
    let mut server = TestServer::start(&repo.path(), "", "").await;
    users(&server).await;
    let id = push(&server, &repo, "d-3", "something to read").await;
    server.wait_finished(id, LONG).await;
    let browser = Browser::start(&server).await;
    browser.open(&format!("/runs/{id}")).await;
    browser.sign_in("vic", PASSWORD).await;
    assert_eq!(browser.text(".who").await, "vic (viewer)");
    assert!(browser
        .texts("#lines code")
        .await
        .contains(&"done".to_string()));
    assert!(
        browser.texts(".actions button").await.is_empty(),
        "a viewer gets no buttons"
    );

    // With the session's own CSRF token, the role still decides.
    let csrf = browser
        .client
        .find(Locator::Css("form.signout input[name=csrf]"))
        .await
        .unwrap()
        .attr("value")
        .await
        .unwrap()
        .unwrap();
    browser.post_form(&format!("/runs/{id}/rerun"), &csrf).await;
    assert_eq!(browser.text("h1").await, "403");
    assert_eq!(
        browser.text(".error").await,
        "vic is a viewer; this needs deployer"
    );
    assert_eq!(run_count(&server).await, 1);
    browser.open("/projects/app").await;
    assert!(
        browser.texts("button").await.iter().all(|b| b != "Run"),
        "a viewer gets no Run button"
    );

    // Signed out, the pages ask for a sign-in again.
    browser.open("/").await;
    browser.press("Sign out").await;
    assert_eq!(browser.path().await, "/signin");
    browser.open(&format!("/runs/{id}")).await;
    assert!(browser.path().await.starts_with("/signin"));

    // Wrong passwords: the first few are answered, then every attempt must wait, even one with
    // the right password.
    let mut slowed = false;
    for _ in 0..8 {
        browser.sign_in("vic", "guess").await;
        if browser
            .text(".error")
            .await
            .starts_with("Too many failed sign-ins for vic")
        {
            slowed = true;
            break;
        }
    }
    assert!(slowed, "repeated failures were never slowed down");
    browser.sign_in("vic", PASSWORD).await;
    assert!(
        browser
            .text(".error")
            .await
            .starts_with("Too many failed sign-ins for vic: try again in"),
        "{}",
        browser.text(".error").await
    );
    browser.screenshot("signin-slowed").await;

    browser.close().await;
    server.stop().await;
}

/// The sign-in form over raw HTTP: its token, the cookies it sets.
async fn sign_in_raw(server: &TestServer, user: &str, next: &str) -> Answer {
    let form = request(server.addr(), "GET", "/signin", &[], b"", None).await;
    assert_eq!(form.status, 200);
    let cookie = form.header("set-cookie").unwrap().to_string();
    let token = cookie
        .strip_prefix("hoist_signin=")
        .and_then(|c| c.split(';').next())
        .unwrap()
        .to_string();
    assert!(
        form.body
            .contains(&format!("name=\"csrf\" value=\"{token}\"")),
        "{}",
        form.body
    );
    let next: String = form_urlencoded::byte_serialize(next.as_bytes()).collect();
    let body = format!("csrf={token}&next={next}&user={user}&password=correct+horse+battery");
    request(
        server.addr(),
        "POST",
        "/signin",
        &[
            ("Cookie", format!("hoist_signin={token}")),
            (
                "Content-Type",
                "application/x-www-form-urlencoded".to_string(),
            ),
        ],
        body.as_bytes(),
        None,
    )
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn session_cookies_are_http_only_same_site_lax_and_secure_behind_https_and_pages_need_no_javascript(
) {
    let repo = Repo::new(&pipeline("printf '<b>not markup</b>\\n'"));
    let mut server = TestServer::start(&repo.path(), "", "").await;
    users(&server).await;
    let id = push(&server, &repo, "d-4", "plain").await;
    server.wait_finished(id, LONG).await;

    let signed_in = sign_in_raw(&server, "ada", &format!("/runs/{id}")).await;
    assert_eq!(signed_in.status, 303, "{}", signed_in.body);
    assert_eq!(
        signed_in.header("location"),
        Some(format!("/runs/{id}").as_str())
    );
    // After signing in, only a page of this site: never another site's.
    for elsewhere in [
        "//evil.example/x",
        "https://evil.example/",
        "/\\evil.example",
    ] {
        let answer = sign_in_raw(&server, "ada", elsewhere).await;
        assert_eq!(answer.header("location"), Some("/"), "{elsewhere}");
    }
    let cookie = signed_in.header("set-cookie").unwrap();
    assert!(
        cookie.starts_with("hoist_session=")
            && cookie.ends_with("; Path=/; HttpOnly; SameSite=Lax"),
        "{cookie}"
    );
    let session = cookie.split(';').next().unwrap().to_string();

    // The run page, read without any script: its jobs and its log, escaped.
    let page = request(
        server.addr(),
        "GET",
        &format!("/runs/{id}"),
        &[("Cookie", session.clone())],
        b"",
        None,
    )
    .await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("&lt;b&gt;not markup&lt;/b&gt;"));
    assert!(page.body.contains("<td>script</td>"), "{}", page.body);
    assert!(page
        .header("content-security-policy")
        .unwrap()
        .starts_with("default-src 'self'"));

    // Without the token, the same POST is refused and changes nothing.
    let forged = request(
        server.addr(),
        "POST",
        &format!("/runs/{id}/rerun"),
        &[
            ("Cookie", session),
            (
                "Content-Type",
                "application/x-www-form-urlencoded".to_string(),
            ),
        ],
        b"",
        None,
    )
    .await;
    assert_eq!(forged.status, 403);
    assert_eq!(run_count(&server).await, 1);
    server.stop().await;

    let mut behind_https =
        TestServer::start(&repo.path(), "", "public_url = \"https://ci.example.com\"").await;
    users(&behind_https).await;
    let signed_in = sign_in_raw(&behind_https, "ada", "/").await;
    assert_eq!(signed_in.status, 303, "{}", signed_in.body);
    assert!(signed_in
        .header("set-cookie")
        .unwrap()
        .ends_with("; HttpOnly; SameSite=Lax; Secure"));
    behind_https.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_200000_line_log_opens_at_its_tail_and_earlier_lines_come_on_demand() {
    let repo = Repo::new(&pipeline("seq 1 200000"));
    let mut server = TestServer::start(&repo.path(), "", "").await;
    users(&server).await;
    let id = push(&server, &repo, "d-5", "a long log").await;
    assert_eq!(
        server.wait_finished(id, Duration::from_secs(300)).await,
        RunStatus::Passed
    );
    let browser = Browser::start(&server).await;
    browser.open(&format!("/runs/{id}")).await;
    browser.sign_in("ada", PASSWORD).await;

    let shown = browser.texts("#lines .line code").await;
    assert_eq!(shown.len(), 500);
    let last_number = shown.iter().rposition(|l| l == "200000").unwrap();
    assert_eq!(shown[last_number - 1], "199999");
    let first = shown[0].clone();

    // "Earlier lines" inserts the 500 before, above, without leaving the page.
    browser.mark_page().await;
    browser
        .client
        .find(Locator::Id("earlier"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let deadline = Instant::now() + LONG;
    while browser
        .client
        .find_all(Locator::Css("#lines .line"))
        .await
        .unwrap()
        .len()
        < 1000
    {
        assert!(Instant::now() < deadline, "no earlier lines came");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let shown = browser.texts("#lines .line code").await;
    assert_eq!(shown.len(), 1000);
    assert_eq!(shown[500], first);
    let before: u32 = first.parse().unwrap();
    assert_eq!(shown[499], (before - 1).to_string());
    let same = browser
        .client
        .execute("return window.hoistOldPage === true;", vec![])
        .await
        .unwrap();
    assert_eq!(same, serde_json::json!(true), "the page was not reloaded");
    browser.screenshot("long-log").await;
    browser.close().await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_admin_manages_users_and_tokens_on_the_settings_page_and_a_deployer_may_not() {
    let repo = Repo::new(&pipeline("true"));
    let mut server = TestServer::start(&repo.path(), "", "").await;
    users(&server).await;
    server
        .store()
        .add_user("root", Role::Admin, PASSWORD)
        .await
        .unwrap();
    let browser = Browser::start(&server).await;

    // A deployer is refused the page.
    browser.open("/settings").await;
    browser.sign_in("ada", PASSWORD).await;
    assert_eq!(browser.text("h1").await, "403");
    assert_eq!(
        browser.text(".error").await,
        "ada is a deployer; this needs admin"
    );
    browser.open("/").await;
    assert!(browser
        .client
        .find(Locator::LinkText("Settings"))
        .await
        .is_err());
    browser.press("Sign out").await;

    browser.open("/settings").await;
    browser.sign_in("root", PASSWORD).await;
    assert_eq!(browser.path().await, "/settings");
    let fill = |form: &'static str, fields: Vec<(&'static str, &'static str)>| {
        let browser = &browser;
        async move {
            let form = browser.client.form(Locator::Css(form)).await.unwrap();
            for (name, value) in fields {
                form.set_by_name(name, value).await.unwrap();
            }
            browser.mark_page().await;
            form.submit().await.unwrap();
            browser.wait_new_page().await;
        }
    };

    // A user added here signs in with that password.
    fill(
        "form[action='/settings/users/add']",
        vec![
            ("name", "dora"),
            ("role", "deployer"),
            ("password", "dora's password"),
        ],
    )
    .await;
    assert!(
        browser
            .texts("table.users tbody tr")
            .await
            .iter()
            .any(|r| r.starts_with("dora")),
        "{:?}",
        browser.texts("table.users tbody tr").await
    );
    assert!(server
        .store()
        .login("dora", "dora's password")
        .await
        .unwrap()
        .is_some_and(|u| u.role == Role::Deployer));

    // A token's secret is shown once and works on the API.
    fill(
        "form[action='/settings/tokens/create']",
        vec![("name", "ci-bot"), ("role", "viewer")],
    )
    .await;
    let secret = browser.text("#secret").await;
    let api = request(
        server.addr(),
        "GET",
        "/api/projects",
        &[("Authorization", format!("Bearer {secret}"))],
        b"",
        None,
    )
    .await;
    assert_eq!(api.status, 200, "{}", api.body);
    browser.screenshot("settings").await;
    browser.open("/settings").await;
    assert!(!browser.client.source().await.unwrap().contains(&secret));

    // Revoked, it is refused.
    fill("form[action='/settings/tokens/revoke']", vec![]).await;
    assert_eq!(browser.texts("table.tokens tbody tr").await, ["No tokens."]);
    let api = request(
        server.addr(),
        "GET",
        "/api/projects",
        &[("Authorization", format!("Bearer {secret}"))],
        b"",
        None,
    )
    .await;
    assert_eq!(api.status, 401);

    // Another user's role is changed, then the user removed.
    fill(
        "form[action='/settings/users/role']:has(input[value='dora'])",
        vec![("role", "viewer")],
    )
    .await;
    assert_eq!(
        server
            .store()
            .login("dora", "dora's password")
            .await
            .unwrap()
            .map(|u| u.role),
        Some(Role::Viewer)
    );
    fill(
        "form[action='/settings/users/remove']:has(input[value='dora'])",
        vec![],
    )
    .await;
    assert!(server
        .store()
        .login("dora", "dora's password")
        .await
        .unwrap()
        .is_none());

    // The admin's own row has no Change or Remove; another user's has.
    let own = browser
        .texts("table.users tbody tr")
        .await
        .into_iter()
        .find(|r| r.starts_with("root"))
        .unwrap();
    assert!(
        own.contains("admin (you)") && !own.contains("Remove"),
        "{own}"
    );
    let audit: Vec<String> = server
        .store()
        .audit_log(10)
        .await
        .unwrap()
        .iter()
        .map(|e| format!("{} {} {}", e.who, e.action, e.target))
        .collect();
    for expected in [
        "user root user.add user dora",
        "user root token.create token ci-bot",
        "user root token.revoke token ci-bot",
        "user root user.role user dora",
        "user root user.remove user dora",
    ] {
        assert!(
            audit.iter().any(|a| a == expected),
            "{expected}: {audit:#?}"
        );
    }

    browser.close().await;
    server.stop().await;
}

#[path = "dashboard_deployments.rs"]
mod deployments;

#[path = "dashboard_facts.rs"]
mod facts;
