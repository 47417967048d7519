//! The foundation's story, end to end on this machine with real virtualenvs, real gunicorn
//! and real HTTP: deploy, code-only redeploy, requirements change, rollback, rollback --to.
//! After each step `current`, the journal, RELEASE.json and the app's answer agree.

use std::fs;
use std::os::unix::fs::MetadataExt;

use crate::support::*;

#[test]
fn deploy_redeploy_rollback_and_rollback_to_agree_everywhere() {
    let site = Site::new();

    // First deploy: a new environment, every file copied.
    let a = site.deploy_ok();
    site.assert_live(&a);
    assert_eq!(site.release_json(&a)["state"], "good");
    let commit_a = site.git(&["rev-parse", "HEAD"]);
    assert_eq!(site.release_json(&a)["commit"], commit_a.as_str());
    assert_eq!(
        site.journal_events_of(&a),
        [
            "deploy_started",
            "release_prepared",
            "switched",
            "deploy_succeeded"
        ]
    );
    assert_eq!(site.envs().len(), 1);
    let env_a = fs::read_link(site.release_dir(&a).join(".venv")).unwrap();

    // Code-only redeploy: the same environment, unchanged files hard-linked.
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
        "a code-only deploy reuses the environment"
    );
    assert_eq!(site.envs().len(), 1);
    assert_eq!(
        fs::read_link(site.release_dir(&b).join(".venv")).unwrap(),
        env_a
    );
    let ino = |id: &str, f: &str| fs::metadata(site.release_dir(id).join(f)).unwrap().ino();
    assert_eq!(
        ino(&a, "settings.py"),
        ino(&b, "settings.py"),
        "unchanged file hard-linked"
    );
    assert_ne!(ino(&a, "app.py"), ino(&b, "app.py"), "changed file copied");

    // A changed requirement: a new environment.
    site.add_requirement("six==1.16.0");
    let c = site.deploy_ok();
    site.assert_live(&c);
    assert_eq!(site.envs().len(), 2);
    assert_ne!(
        fs::read_link(site.release_dir(&c).join(".venv")).unwrap(),
        env_a
    );
    assert!(site
        .release_dir(&c)
        .join(".venv/lib/python3.11/site-packages/six.py")
        .exists());

    // Rollback: back to b, c is bad.
    let out = site.hoist(&["rollback"]);
    assert_exit(&out, EXIT_OK);
    assert_eq!(
        stdout(&out)
            .lines()
            .next()
            .unwrap()
            .split(" in ")
            .next()
            .unwrap(),
        format!("rolled back local from {c} to {b}")
    );
    site.assert_live(&b);
    assert_eq!(site.release_json(&c)["state"], "bad");
    assert_eq!(site.journal().last().unwrap()["event"], "rolled_back");

    // Rolling back again goes back one more good release.
    let out = site.hoist(&["rollback"]);
    assert_exit(&out, EXIT_OK);
    site.assert_live(&a);

    // rollback --to a named release (c is bad, but an explicit choice is allowed).
    let out = site.hoist(&["rollback", "--to", &c]);
    assert_exit(&out, EXIT_OK);
    site.assert_live(&c);
    assert_eq!(site.release_json(&c)["state"], "good");

    // The table says the same.
    let out = site.hoist(&["releases"]);
    assert_exit(&out, EXIT_OK);
    let table = stdout(&out);
    let row = |id: &str| {
        table
            .lines()
            .find(|l| l.starts_with(id))
            .unwrap()
            .to_string()
    };
    assert!(row(&c).ends_with("good   current"), "{table}");
    assert!(row(&b).contains(" bad"), "{table}");
    // Leaving a for c, deployed after it, was a roll forward, no verdict on a: it is still good,
    // and the rollback target (b is bad).
    assert!(row(&a).ends_with("good   rollback target"), "{table}");

    // The rollback did no Python work and copied nothing: no new environment, no new release.
    assert_eq!(site.envs().len(), 2);
    assert_eq!(site.release_ids(), {
        let mut v = vec![a.clone(), b.clone(), c.clone()];
        v.sort();
        v
    });
}

#[test]
fn the_pip_installer_builds_a_working_environment_too() {
    let site = Site::with(SiteOptions {
        installer: "pip",
        ..SiteOptions::default()
    });
    let a = site.deploy_ok();
    site.assert_live(&a);
    let env = site.root.join("envs").join(site.envs()[0].clone());
    assert!(env.join(".hoist-complete").exists());
    assert!(env.join("bin/pip").exists(), "a pip-built venv has pip");
    assert!(
        fs::read_dir(site.root.join("wheels")).unwrap().count() > 0,
        "pip builds wheels into the wheel cache"
    );
}

#[test]
fn plan_prints_every_action_and_changes_nothing() {
    let site = Site::new();
    let a = site.deploy_ok();
    site.change_code("plan");
    let before = snapshot(&site.root);
    let out = site.hoist(&["deploy", "--plan"]);
    assert_exit(&out, EXIT_OK);
    assert_eq!(
        snapshot(&site.root),
        before,
        "--plan must not touch the root"
    );
    let text = stdout(&out);
    for step in [
        "lock",
        "upload",
        "shared",
        "environment",
        "import check",
        "hook",
        "switch",
        "restart",
        "health",
        "prune",
        "unlock",
    ] {
        assert!(
            text.lines()
                .any(|l| l.starts_with(&format!("local  {step}"))),
            "no {step} line in\n{text}"
        );
    }
    assert!(
        text.contains("reuse"),
        "code-only plan reuses the env:\n{text}"
    );
    assert!(text.contains(&format!("(was {a})")), "{text}");
    site.assert_live(&a);
}

#[test]
fn json_events_are_one_object_per_line_with_the_host() {
    let site = Site::new();
    let out = site.hoist(&["deploy", "--json"]);
    assert_exit(&out, EXIT_OK);
    let events: Vec<serde_json::Value> = stdout(&out)
        .lines()
        .map(|l| serde_json::from_str(l).expect("each line is JSON"))
        .collect();
    let (last, progress) = events.split_last().unwrap();
    assert!(
        progress.iter().all(|e| e["host"] == "local"),
        "{progress:?}"
    );
    assert_eq!(last["event"], "deployed");
    assert_eq!(last["hosts"][0]["host"], "local");
    assert_eq!(last["hosts"][0]["result"], "live");
    let steps: Vec<&str> = events
        .iter()
        .filter(|e| e["event"] == "step" && e["status"] == "done")
        .map(|e| e["step"].as_str().unwrap())
        .collect();
    // Pruning runs beside the deploy, from its start to the unlock at the latest.
    let prune = steps
        .iter()
        .position(|s| *s == "prune")
        .expect("a prune step");
    assert!(prune > 0 && prune < steps.len() - 1, "{steps:?}");
    let mut in_order = steps.clone();
    in_order.remove(prune);
    assert_eq!(
        in_order,
        [
            "lock",
            "upload",
            "shared",
            "environment",
            "import_check",
            "hook",
            "switch",
            "restart",
            "health",
            "unlock"
        ]
    );
}

#[test]
fn deploy_ref_ships_the_commit_not_the_dirty_working_tree() {
    let site = Site::new();
    let committed = site.git(&["rev-parse", "HEAD"]);
    fs::write(site.project.join("uncommitted.txt"), "dirty").unwrap();
    let out = site.hoist(&["deploy", "--ref", "HEAD"]);
    assert_exit(&out, EXIT_OK);
    let id = site.current().unwrap();
    assert!(!site.release_dir(&id).join("uncommitted.txt").exists());
    assert_eq!(site.release_json(&id)["commit"], committed.as_str());
    assert_eq!(site.release_json(&id)["branch"], "main");
    site.assert_live(&id);

    let out = site.hoist(&["deploy", "--ref", "no-such-branch"]);
    assert_exit(&out, EXIT_CONFIG);
    assert!(
        stderr(&out).contains("\"no-such-branch\" is not a commit"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn shared_paths_persist_across_releases() {
    let site = Site::new();
    fs::create_dir_all(site.root.join("shared/instance")).unwrap();
    fs::write(
        site.root.join("shared/instance/settings.toml"),
        "greeting = \"Hello from shared\"\n",
    )
    .unwrap();
    let a = site.deploy_ok();
    assert!(http_get(site.port, "/")
        .unwrap()
        .contains("Hello from shared"));
    let link = fs::read_link(site.release_dir(&a).join("instance/settings.toml")).unwrap();
    assert_eq!(link, site.root.join("shared/instance/settings.toml"));
    site.change_code("shared");
    let b = site.deploy_ok();
    assert_eq!(
        fs::read_link(site.release_dir(&b).join("logs")).unwrap(),
        site.root.join("shared/logs")
    );
    assert!(site.root.join("shared/logs/gunicorn-error.log").exists());
}
