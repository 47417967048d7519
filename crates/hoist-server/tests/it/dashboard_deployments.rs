//! The Deployments page in a real browser: two hosts (two roots on this machine, each with its
//! own gunicorn) deployed twice by the deploy engine, one environment whose host cannot be
//! reached; the page shows the live release on every host, Roll back asks for confirmation
//! naming the target on each host, then rolls back with the engine, and `current` on disk
//! agrees. A viewer gets no Roll back button and is refused the form.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use fantoccini::Locator;
use hoist_deploy::{DeployOptions, Fleet, Host, Layout, Rollout};
use hoist_testkit::{example_dir, Health, Hosts, SiteBuilder};
use hoist_transport::HostKeyPolicy;

use super::{users, Browser, PASSWORD};
use crate::support::*;

/// The two roots' gunicorns, stopped when the test ends (also when it fails).
struct Apps(Vec<PathBuf>);

impl Drop for Apps {
    fn drop(&mut self) {
        for root in &self.0 {
            let _ = Command::new(example_dir().join("bin/stop-web"))
                .env("HOIST_ROOT", root)
                .env("HOIST_STOP_TIMEOUT", "10")
                .output();
        }
    }
}

fn git(dir: &std::path::Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .args(["-c", "user.name=Ada", "-c", "user.email=ada@example.com"])
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// `hoist deploy production` of the project's working tree to the hosts named `only` (all when
/// empty), with the deploy engine.
async fn deploy(config: PathBuf, only: &'static [&'static str]) -> String {
    tokio::task::spawn_blocking(move || {
        let config = hoist_config::load(&config).unwrap();
        let env = config.environment(Some("production")).unwrap();
        let hosts: Vec<Host> = env
            .hosts
            .iter()
            .filter(|spec| only.is_empty() || only.contains(&spec.name.as_str()))
            .map(|spec| Host {
                name: spec.name.clone(),
                transport: hoist_deploy::connect(spec, HostKeyPolicy::Strict).unwrap(),
                layout: Layout::with_root(&config.release, spec.root.clone()),
                python: spec.python.clone(),
                vars: spec.vars.clone(),
            })
            .collect();
        let fleet = Fleet {
            name: env.name.clone(),
            rollout: Rollout::from_config(&env.activation, hosts.len()),
            hosts,
            forks: 4,
        };
        let options = DeployOptions {
            who: "ada@laptop".into(),
            git_ref: None,
            lock_wait: Duration::ZERO,
            command: "hoist deploy production".into(),
            rollback_on_failure: true,
            source: None,
        };
        hoist_deploy::deploy(&config, &fleet, &options, &|_| {})
            .unwrap_or_else(|e| panic!("deploy: {} {:?}", e.message, e.hints))
            .release
            .to_string()
    })
    .await
    .unwrap()
}

/// Takes (`hold`) or releases the deploy lock of the root of production's host `host`, as
/// `hoist lock acquire|release` does.
async fn lock(config: PathBuf, host: &'static str, hold: bool) {
    tokio::task::spawn_blocking(move || {
        let config = hoist_config::load(&config).unwrap();
        let env = config.environment(Some("production")).unwrap();
        let spec = env.hosts.iter().find(|h| h.name == host).unwrap();
        let transport = hoist_deploy::connect(spec, HostKeyPolicy::Strict).unwrap();
        let layout = Layout::with_root(&config.release, spec.root.clone());
        if hold {
            hoist_deploy::acquire_manual_lock(
                transport.as_ref(),
                &layout,
                "dora@ops",
                Some("database maintenance"),
                &|_| {},
            )
            .unwrap();
        } else {
            hoist_deploy::release_lock(transport.as_ref(), &layout, false).unwrap();
        }
    })
    .await
    .unwrap();
}

fn current(root: &std::path::Path) -> String {
    std::fs::read_link(root.join("current"))
        .unwrap()
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_deployer_sees_every_hosts_live_release_and_rolls_back_from_the_page_and_a_viewer_may_not(
) {
    let site = SiteBuilder::new()
        .prefix("hoist-dash-")
        .hosts(Hosts::LocalRoots(2))
        .health(Health::Command(
            "curl -fsS \"http://127.0.0.1:{port}/health\"".into(),
        ))
        .health_timeout("30s")
        .build();
    let apps = Apps(site.roots.clone());
    let mut toml = std::fs::read_to_string(&site.config).unwrap();
    for (i, root) in site.roots.iter().enumerate() {
        toml.push_str(&format!(
            "\n[hosts.web{n}]\naddress = \"local\"\nroot = \"{}\"\n",
            root.display(),
            n = i + 1
        ));
    }
    toml.push_str(
        "\n[hosts.gone]\naddress = \"gone.invalid\"\n\n[ssh]\nconnect_timeout = \"2s\"\n\n[environments.production]\nhosts = [\"web1\", \"web2\"]\n\n[environments.staging]\nhosts = [\"gone\"]\n",
    );
    std::fs::write(&site.config, toml).unwrap();
    git(&site.project, &["init", "-q", "-b", "master", "."]);
    git(&site.project, &["add", "-A"]);
    git(&site.project, &["commit", "-qm", "first version"]);
    let change = |version: &str| {
        let app = site.project.join("app.py");
        let mut code = std::fs::read_to_string(&app).unwrap();
        code.push_str(&format!("\n# {version}\n"));
        std::fs::write(&app, code).unwrap();
        git(&site.project, &["commit", "-qam", version]);
    };
    let first = deploy(site.config.clone(), &[]).await;
    change("second version");
    let second = deploy(site.config.clone(), &[]).await;
    assert_ne!(first, second);

    let mut server = TestServer::start(&site.project, "", "").await;
    users(&server).await;
    let browser = Browser::start(&server).await;
    browser.open("/projects/app/deployments").await;
    browser.sign_in("ada", PASSWORD).await;
    assert_eq!(browser.path().await, "/projects/app/deployments");

    // Every host of production serves the second release; its rollback target is the first.
    let rows = browser.texts("#env-production .grid tbody tr").await;
    assert_eq!(rows.len(), 2, "{rows:?}");
    for (row, host) in rows.iter().zip(["web1", "web2"]) {
        assert!(row.starts_with(host), "{row}");
        assert!(
            row.contains(&second) && row.contains("second version") && row.contains("ada@laptop"),
            "{row}"
        );
        assert!(row.contains(&first), "the rollback target: {row}");
    }
    assert!(
        browser.texts(".drift").await.is_empty(),
        "{:?}",
        browser.texts(".drift").await
    );
    // A host that cannot be reached is said to be so, and nothing is claimed of it.
    let unreachable = browser.text("#env-staging .unreachable").await;
    assert!(
        unreachable.starts_with("✗ gone could not be read:"),
        "{unreachable}"
    );
    assert!(browser.text("#read").await.starts_with("Hosts read "));
    // The history, from the hosts' journals: one row per deploy, naming its hosts.
    let journal = browser.texts(".journal tbody tr").await;
    assert_eq!(journal.len(), 2, "{journal:?}");
    for (row, release) in journal.iter().zip([&second, &first]) {
        assert!(
            row.contains("production web1, web2 ✓ deploy succeeded")
                && row.contains(release.as_str())
                && row.contains("ada@laptop"),
            "{row}"
        );
    }
    assert!(
        journal[1].ends_with("Roll back to this") && !journal[0].contains("Roll back"),
        "only a release not live can be gone back to: {journal:?}"
    );
    browser.screenshot("deployments-before").await;

    // A forged form (not this session's CSRF token) rolls nothing back, even confirmed.
    browser
        .client
        .execute(
            "const f = document.createElement('form');
             f.method = 'post'; f.action = '/projects/app/rollback';
             for (const [k, v] of [['csrf', 'forged'], ['environment', 'production'], ['confirm', 'yes']]) {
               const i = document.createElement('input');
               i.type = 'hidden'; i.name = k; i.value = v; f.appendChild(i);
             }
             window.hoistOldPage = true; document.body.appendChild(f); f.submit();",
            vec![],
        )
        .await
        .unwrap();
    browser.wait_new_page().await;
    assert_eq!(browser.text("h1").await, "403");
    assert_eq!(current(&site.roots[0]), second);
    browser.open("/projects/app/deployments").await;

    // Roll back: first a confirmation naming the target on every host; nothing changed yet.
    browser.press("Roll back").await;
    assert_eq!(browser.path().await, "/projects/app/rollback");
    let confirm = browser.texts(".confirm tbody tr").await;
    assert_eq!(
        confirm,
        [
            format!("web1 {second} → {first}"),
            format!("web2 {second} → {first}")
        ]
    );
    assert_eq!(current(&site.roots[0]), second);
    browser.screenshot("rollback-confirm").await;

    // Someone takes web2's lock meanwhile: the rollback is refused at once, nothing changes,
    // and the page says why.
    lock(site.config.clone(), "web2", true).await;
    browser.press(&format!("Roll back to {first}")).await;
    assert_eq!(
        browser.text("h1").await,
        "✗ failed Rollback of app production"
    );
    let refused = browser.text(".error").await;
    assert!(refused.contains("database maintenance"), "{refused}");
    for root in &site.roots {
        assert_eq!(current(root), second);
    }
    browser.open("/projects/app/deployments").await;
    let locked = browser.texts("#env-production .grid tbody tr").await;
    assert!(
        locked[1].contains("🔒 locked by dora@") && locked[1].contains("database maintenance"),
        "{locked:?}"
    );
    lock(site.config.clone(), "web2", false).await;

    // "Roll back to this" on the first release in the history asks the same confirmation.
    browser.press("Roll back to this").await;
    assert_eq!(
        browser.texts(".confirm tbody tr").await,
        [
            format!("web1 {second} → {first}"),
            format!("web2 {second} → {first}")
        ]
    );
    browser.press(&format!("Roll back to {first}")).await;
    assert_eq!(
        browser.text("h1").await,
        format!("✓ done app production rolled back to {first}")
    );
    let outcome = browser.texts(".outcome .hosts tbody tr").await;
    assert_eq!(
        outcome,
        [
            format!("web1 {second} {first} ✓ live"),
            format!("web2 {second} {first} ✓ live")
        ]
    );
    for root in &site.roots {
        assert_eq!(
            current(root),
            first,
            "current on disk in {}",
            root.display()
        );
    }
    // Each host's steps, as the engine reported them while the page was loading.
    let progress = browser.texts("#progress li").await;
    for expected in [
        "web1: ✓ switch",
        "web2: ✓ switch",
        "web1: ✓ health",
        "web2: ✓ health",
    ] {
        assert!(
            progress.iter().any(|l| l.starts_with(expected)),
            "{expected}: {progress:#?}"
        );
    }
    browser.screenshot("rollback-done").await;

    // The page reads the hosts anew: the first release is live everywhere, and the rollback is
    // in the history with who did it.
    browser.open("/projects/app/deployments").await;
    for row in browser.texts("#env-production .grid tbody tr").await {
        assert!(
            row.contains(&first) && row.contains("first version"),
            "{row}"
        );
        assert!(row.contains("rolled_back · user ada"), "{row}");
    }
    let history = browser.texts(".history tbody tr").await;
    assert!(
        history
            .iter()
            .any(|h| h.contains(&first) && h.contains("rolled_back") && h.contains("user ada")),
        "{history:?}"
    );
    let journal = browser.texts(".journal tbody tr").await;
    assert!(
        journal[0].contains(&format!(
            "production web1, web2 ✓ rolled back from {second}"
        )) && journal[0].contains("user ada (hoist serve)"),
        "{journal:?}"
    );
    assert!(
        journal.iter().all(|r| !r.contains("Roll back to this")),
        "the release rolled away from is bad, the other one live: {journal:?}"
    );

    // Someone deploys to web1 alone: the hosts now serve different releases, and web1 is not
    // on what the server last recorded there. Both rows are marked (no majority of two).
    change("third version");
    let third = deploy(site.config.clone(), &["web1"]).await;
    browser.open("/projects/app/deployments?fresh=1").await;
    let drift = browser.texts("#env-production .drift").await;
    assert_eq!(
        drift,
        [
            format!("⚠ hosts serve different releases: web1 -> {third}, web2 -> {first}"),
            format!("⚠ web1 serves {third}, but the last deploy or rollback recorded here left {first} (user ada)"),
            format!("⚠ release {third} is on web1 but missing on web2: rolling back to it would fail there"),
        ]
    );
    let web2 = browser
        .text("#env-production .grid tbody tr:nth-child(2)")
        .await;
    assert!(web2.contains(&format!("⚠ missing {third}")), "{web2}");
    // The API says the same, and which host lacks which release.
    let token = server
        .store()
        .create_token("reader", hoist_store::Role::Viewer, "tests")
        .await
        .unwrap()
        .secret;
    let answer = request(
        server.addr(),
        "GET",
        "/api/projects/app/deployments",
        &[("Authorization", format!("Bearer {token}"))],
        b"",
        None,
    )
    .await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    let production = &answer.json()["environments"][0];
    assert_eq!(production["name"], "production");
    assert_eq!(
        production["drift"][2],
        format!(
            "release {third} is on web1 but missing on web2: rolling back to it would fail there"
        )
    );
    assert_eq!(production["hosts"][0]["missing"], serde_json::json!([]));
    assert_eq!(
        production["hosts"][1]["missing"],
        serde_json::json!([third])
    );
    let drifted = browser
        .texts("#env-production .grid tbody tr.drifted")
        .await;
    assert_eq!(drifted.len(), 2, "{drifted:?}");
    assert!(
        drifted[0].contains(&format!("{third} ⚠ differs")),
        "{drifted:?}"
    );
    // The README's picture.
    browser.screenshot("deployments").await;

    // At 360 px wide (a phone) the page fits: only its tables scroll sideways.
    browser.client.set_window_size(360, 800).await.unwrap();
    browser.open("/projects/app/deployments").await;
    let fits = browser
        .client
        .execute(
            "return document.documentElement.scrollWidth <= document.documentElement.clientWidth;",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(
        fits,
        serde_json::json!(true),
        "the page is wider than 360 px"
    );
    browser.screenshot("deployments-narrow").await;
    browser.client.set_window_size(1280, 900).await.unwrap();

    // A viewer sees the same page without a Roll back button, and is refused the form.
    browser.press("Sign out").await;
    browser.open("/projects/app/deployments").await;
    browser.sign_in("vic", PASSWORD).await;
    assert_eq!(
        browser.texts("#env-production .grid tbody tr").await.len(),
        2
    );
    assert!(
        browser
            .texts("button")
            .await
            .iter()
            .all(|b| !b.starts_with("Roll back")),
        "a viewer gets no Roll back button"
    );
    let csrf = browser
        .client
        .find(Locator::Css("form.signout input[name=csrf]"))
        .await
        .unwrap()
        .attr("value")
        .await
        .unwrap()
        .unwrap();
    browser.post_form("/projects/app/rollback", &csrf).await;
    assert_eq!(browser.text("h1").await, "403");
    assert_eq!(
        browser.text(".error").await,
        "vic is a viewer; this needs deployer"
    );
    assert_eq!(current(&site.roots[0]), third);
    assert_eq!(current(&site.roots[1]), first);

    browser.close().await;
    server.stop().await;
    drop(apps);
}
