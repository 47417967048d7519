//! Kill hoist (SIGKILL, via the test-only HOIST_FAIL_AT failure points) at every step of a
//! deploy and of a rollback. Afterwards invariants 1, 3, 4 and 7 hold, and the next deploy
//! succeeds without any manual repair.

mod support;

use std::collections::BTreeSet;
use std::path::Path;

use serde_json::Value;
use support::*;

/// The failure points a deploy or a rollback passes when nothing fails (the `switched-back`
/// ones are only reached on the way back from a failure).
fn points(prefix: &str) -> Vec<&'static str> {
    let list: Vec<&'static str> = hoist_deploy::FAILURE_POINTS
        .iter()
        .copied()
        .filter(|p| p.starts_with(prefix) && !p.ends_with("switched-back"))
        .collect();
    assert!(
        list.len() >= 4,
        "too few failure points for {prefix}: {list:?}"
    );
    list
}

fn releases_json(site: &Site) -> Vec<Value> {
    let out = site.hoist(&["releases", "--json"]);
    assert_exit(&out, EXIT_OK);
    serde_json::from_str::<Value>(&stdout(&out))
        .unwrap()
        .as_array()
        .unwrap()
        .clone()
}

/// Invariants 1, 3 and 4 after a kill; returns the live release.
fn assert_invariants(site: &Site, point: &str, good_before: &BTreeSet<String>) -> String {
    // 1: current resolves to a complete, verified release.
    let current = site
        .current()
        .unwrap_or_else(|| panic!("{point}: current is gone"));
    let dir = site.release_dir(&current);
    assert!(
        dir.join("RELEASE.json").exists(),
        "{point}: current {current} has no RELEASE.json"
    );
    assert!(
        dir.join(".venv/.hoist-complete").exists(),
        "{point}: current {current} has no complete environment"
    );
    assert!(
        dir.join("app.py").exists(),
        "{point}: current {current} is not a whole release"
    );

    // 3: the rollback target is never current, and is a good release on disk.
    let rows = releases_json(site);
    for row in &rows {
        if row["rollback_target"] == true {
            assert_ne!(row["id"], current.as_str(), "{point}: target is current");
            assert_eq!(row["state"], "good", "{point}: target {row}");
            assert!(site.release_dir(row["id"].as_str().unwrap()).exists());
        }
    }
    // 4: no release that was good before the kill has lost its directory unless it was
    // legitimately pruned (the newest good ones are always kept with keep_releases = 5).
    for id in good_before {
        assert!(
            site.release_dir(id).exists()
                || site.journal_events_of(id).contains(&"pruned".to_string()),
            "{point}: good release {id} vanished"
        );
    }
    current
}

fn good_releases(site: &Site) -> BTreeSet<String> {
    releases_json(site)
        .iter()
        .filter(|r| r["state"] == "good")
        .map(|r| r["id"].as_str().unwrap().to_string())
        .collect()
}

fn killed(out: &std::process::Output) -> bool {
    use std::os::unix::process::ExitStatusExt;
    out.status.signal() == Some(9)
}

#[test]
fn killing_a_deploy_at_any_step_breaks_nothing_and_the_next_deploy_just_works() {
    let site = Site::new();
    site.deploy_ok();
    for (i, point) in points("deploy:").iter().enumerate() {
        site.change_code(&format!("before {point}"));
        let good = good_releases(&site);
        let out = site.hoist_env(&["deploy"], &[("HOIST_FAIL_AT", point)]);
        assert!(
            killed(&out),
            "{point}: hoist was not killed: {}",
            stderr(&out)
        );
        assert_invariants(&site, point, &good);

        // 7: the lock is left behind by the dead process, reported as stale, and reclaimed.
        if *point != "deploy:pruned" || site.lock_exists() {
            let status = site.hoist(&["status"]);
            assert!(
                stdout(&status).contains("[stale: that process is gone"),
                "{point}: {}",
                stdout(&status)
            );
        }
        site.change_code(&format!("after {point}"));
        let out = site.hoist(&["deploy"]);
        assert_exit(&out, EXIT_OK);
        assert!(
            stderr(&out).contains("reclaiming a stale lock"),
            "{point}: {}",
            stderr(&out)
        );
        let live = site.current().unwrap();
        site.assert_live(&live);
        assert!(
            !site.lock_exists(),
            "{point}: lock left after a good deploy"
        );
        // No release is left "unfinished" after the next deploy has run.
        assert!(
            releases_json(&site)
                .iter()
                .all(|r| r["state"] != "unfinished" && r["state"] != "prepared"),
            "{point} (#{i}): {:?}",
            releases_json(&site)
        );
        assert!(
            !Path::new(&site.root.join("releases"))
                .read_dir()
                .unwrap()
                .any(|e| e
                    .unwrap()
                    .file_name()
                    .to_string_lossy()
                    .starts_with(".pruning-")),
            "{point}: a half-pruned release was left behind"
        );
    }
}

#[test]
fn killing_a_rollback_at_any_step_breaks_nothing() {
    let site = Site::new();
    site.deploy_ok();
    for point in &points("rollback:") {
        site.change_code(&format!("for {point}"));
        site.deploy_ok();
        let good = good_releases(&site);
        let out = site.hoist_env(&["rollback"], &[("HOIST_FAIL_AT", point)]);
        assert!(
            killed(&out),
            "{point}: hoist was not killed: {}",
            stderr(&out)
        );
        assert_invariants(&site, point, &good);

        let out = site.hoist(&["rollback"]);
        assert_exit(&out, EXIT_OK);
        site.assert_live(&site.current().unwrap());
        site.change_code(&format!("after {point}"));
        site.deploy_ok();
        site.assert_live(&site.current().unwrap());
    }
}

fn rollback_target_of(site: &Site) -> Option<String> {
    releases_json(site)
        .iter()
        .find(|r| r["rollback_target"] == true)
        .map(|r| r["id"].as_str().unwrap().to_string())
}

fn state_of(site: &Site, id: &str) -> String {
    releases_json(site)
        .iter()
        .find(|r| r["id"] == id)
        .map(|r| r["state"].as_str().unwrap().to_string())
        .unwrap_or_default()
}

#[test]
fn a_rollback_killed_after_its_switch_is_known_and_the_next_rollback_skips_the_release_it_left() {
    let site = Site::new();
    let a = site.deploy_ok();
    site.change_code("b");
    let b = site.deploy_ok();

    let out = site.hoist_env(&["rollback"], &[("HOIST_FAIL_AT", "rollback:switched")]);
    assert!(killed(&out), "hoist was not killed: {}", stderr(&out));
    assert_eq!(site.current().as_deref(), Some(a.as_str()));
    // The switch happened: b was rolled away from, so it is bad, at once.
    assert_eq!(state_of(&site, &b), "bad");

    site.change_code("c");
    let out = site.hoist(&["deploy"]);
    assert_exit(&out, EXIT_OK);
    assert!(
        stderr(&out).contains(&format!(
            "a rollback from {b} to {a} was interrupted after its switch: {b} is marked bad"
        )),
        "{}",
        stderr(&out)
    );
    assert!(
        site.journal_events_of(&b)
            .contains(&"rollback_interrupted".to_string())
            || site
                .journal()
                .iter()
                .any(|e| e["event"] == "rollback_interrupted" && e["from"] == b.as_str())
    );
    let c = site.current().unwrap();
    assert_eq!(rollback_target_of(&site).as_deref(), Some(a.as_str()));

    let out = site.hoist(&["rollback"]);
    assert_exit(&out, EXIT_OK);
    site.assert_live(&a);
    assert_ne!(c, a);
}

#[test]
fn a_rollback_to_a_release_whose_environment_is_gone_switches_nothing_and_says_how_to_rebuild() {
    let site = Site::new();
    let a = site.deploy_ok();
    let commit_a = site.release_json(&a)["commit"]
        .as_str()
        .unwrap()
        .to_string();
    site.add_requirement("# a comment is enough for a new environment");
    let b = site.deploy_ok();
    let env_of = |id: &str| std::fs::read_link(site.release_dir(id).join(".venv")).unwrap();
    assert_ne!(env_of(&a), env_of(&b), "the test needs two environments");
    let env_a = site.release_dir(&a).join(env_of(&a));
    std::fs::remove_dir_all(&env_a).unwrap();

    let out = site.hoist(&["rollback"]);
    assert_exit(&out, EXIT_BEFORE_SWITCH);
    let err = stderr(&out);
    assert!(
        err.contains(&format!(
            "error: local: cannot roll back to {a}: its environment "
        )) && err.contains("is gone or incomplete (no .hoist-complete mark)"),
        "{err}"
    );
    assert!(
        err.contains(&format!(
            "hint: to rebuild it, deploy that commit again: hoist deploy --ref {commit_a}"
        )),
        "{err}"
    );
    site.assert_live(&b);
    assert_eq!(state_of(&site, &b), "good");
    assert!(!site.lock_exists());
}
