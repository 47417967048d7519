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

/// `hoist deploy production` of the project's working tree, with the deploy engine.
async fn deploy(config: PathBuf) -> String {
    tokio::task::spawn_blocking(move || {
        let config = hoist_config::load(&config).unwrap();
        let env = config.environment(Some("production")).unwrap();
        let hosts: Vec<Host> = env
            .hosts
            .iter()
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
        };
        hoist_deploy::deploy(&config, &fleet, &options, &|_| {})
            .unwrap_or_else(|e| panic!("deploy: {} {:?}", e.message, e.hints))
            .release
            .to_string()
    })
    .await
    .unwrap()
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
    let first = deploy(site.config.clone()).await;
    let app = site.project.join("app.py");
    let mut code = std::fs::read_to_string(&app).unwrap();
    code.push_str("\n# second\n");
    std::fs::write(&app, code).unwrap();
    git(&site.project, &["commit", "-qam", "second version"]);
    let second = deploy(site.config.clone()).await;
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
    browser.screenshot("deployments").await;

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

    browser.press(&format!("Roll back to {first}")).await;
    assert_eq!(
        browser.text("h1").await,
        format!("✓ done app production rolled back to {first}")
    );
    let outcome = browser.texts(".outcome tbody tr").await;
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

    // A viewer sees the same page without a Roll back button, and is refused the form.
    browser.press("Sign out").await;
    browser.open("/projects/app/deployments").await;
    browser.sign_in("vic", PASSWORD).await;
    assert!(browser
        .texts("#env-production .grid tbody tr")
        .await
        .iter()
        .all(|r| r.contains(&first)));
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
    for root in &site.roots {
        assert_eq!(current(root), first);
    }

    browser.close().await;
    server.stop().await;
    drop(apps);
}
