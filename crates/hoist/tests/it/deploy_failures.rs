//! Every failure leaves the old release serving and the new one marked failed; a health check
//! that never passes after the switch is undone by switching back. Real gunicorn, real HTTP.

use std::fs;

use crate::support::*;

/// Asserts the failed deploy's release is recorded as failed at `stage`.
fn assert_failed(site: &Site, before: &[String], stage: &str) -> String {
    let new: Vec<String> = site
        .release_ids()
        .into_iter()
        .filter(|id| !before.contains(id))
        .collect();
    assert_eq!(new.len(), 1, "one new (failed) release dir: {new:?}");
    let id = new[0].clone();
    let failed = site
        .journal()
        .into_iter()
        .find(|e| e["event"] == "deploy_failed" && e["release"] == id.as_str())
        .expect("the journal records the failure");
    assert_eq!(failed["stage"], stage);
    assert_eq!(site.release_json(&id)["state"], "failed");
    assert!(!site.lock_exists(), "the lock is released");
    id
}

#[test]
fn an_uninstallable_requirement_fails_before_the_switch() {
    let site = Site::new();
    let a = site.deploy_ok();
    site.add_requirement("this-package-does-not-exist-hoist==1.0");
    let before = site.release_ids();
    let out = site.hoist(&["deploy"]);
    assert_exit(&out, EXIT_BEFORE_SWITCH);
    let err = stderr(&out);
    assert!(err.contains("this-package-does-not-exist-hoist"), "{err}");
    assert!(
        err.contains(&format!("nothing was switched: local still serves {a}")),
        "{err}"
    );
    site.assert_live(&a);
    assert_failed(&site, &before, "environment");
    assert_eq!(site.envs().len(), 1, "the half-built environment is gone");
}

#[test]
fn an_entry_point_that_fails_to_import_fails_before_the_switch() {
    let site = Site::new();
    let a = site.deploy_ok();
    let app = site.project.join("app.py");
    let text = fs::read_to_string(&app).unwrap();
    fs::write(
        &app,
        format!("{text}\nraise RuntimeError('boom at import')\n"),
    )
    .unwrap();
    site.commit("break the import");
    let before = site.release_ids();
    let out = site.hoist(&["deploy"]);
    assert_exit(&out, EXIT_BEFORE_SWITCH);
    let err = stderr(&out);
    assert!(
        err.contains("the new release cannot import its entry point app:app"),
        "{err}"
    );
    assert!(err.contains("boom at import"), "{err}");
    site.assert_live(&a);
    assert_failed(&site, &before, "import check");
}

#[test]
fn a_failing_pre_switch_hook_fails_before_the_switch() {
    let site = Site::with(SiteOptions {
        extra_hooks:
            "[[hook]]\nname = \"check-db\"\nrun = \"echo checking; echo no database >&2; exit 7\"\n"
                .into(),
        ..SiteOptions::default()
    });
    // The first deploy fails too (nothing was live): nothing is switched, no `current`.
    let out = site.hoist(&["deploy"]);
    assert_exit(&out, EXIT_BEFORE_SWITCH);
    let err = stderr(&out);
    assert!(
        err.contains("pre-switch hook \"check-db\" exited 7"),
        "{err}"
    );
    assert!(err.contains("no database"), "{err}");
    assert!(
        err.contains("nothing was switched: local still serves nothing (first deploy)"),
        "{err}"
    );
    assert_eq!(site.current(), None);
    assert_failed(&site, &[], "hook");
}

#[test]
fn a_health_check_that_never_passes_is_switched_back() {
    let site = Site::with(SiteOptions {
        health_timeout: "3s",
        ..SiteOptions::default()
    });
    let a = site.deploy_ok();
    let app = site.project.join("app.py");
    let text = fs::read_to_string(&app).unwrap();
    fs::write(
        &app,
        format!("{text}\n\n@app.before_request\ndef _broken():\n    return ('broken', 500)\n"),
    )
    .unwrap();
    site.commit("break /health at runtime");
    let before = site.release_ids();
    let out = site.hoist(&["deploy"]);
    assert_exit(&out, EXIT_ROLLED_BACK);
    let err = stderr(&out);
    assert!(
        err.contains("health failed on local after the switch"),
        "{err}"
    );
    assert!(err.contains("answered 500 (expected 200)"), "{err}");
    assert!(
        err.contains(&format!(
            "switched back: local serves {a} again (health check passed)"
        )),
        "{err}"
    );
    site.assert_live(&a);
    let b = assert_failed(&site, &before, "health");
    let failed = site
        .journal()
        .into_iter()
        .find(|e| e["event"] == "deploy_failed")
        .unwrap();
    assert_eq!(failed["rolled_back_to"], a.as_str());
    // The failed release is never a rollback target.
    let out = site.hoist(&["releases", "--json"]);
    let rows: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    let row = rows
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == b.as_str())
        .unwrap();
    assert_eq!(row["state"], "failed");
    assert_eq!(row["rollback_target"], false);
}

/// An app that answers 500 has answered: users get errors, so the deploy does not wait the
/// whole health timeout (60 s here) before switching back.
#[test]
fn a_release_that_answers_500_is_switched_back_without_waiting_the_timeout() {
    let site = Site::with(SiteOptions {
        health_timeout: "60s",
        ..SiteOptions::default()
    });
    let a = site.deploy_ok();
    let app = site.project.join("app.py");
    let text = fs::read_to_string(&app).unwrap();
    fs::write(
        &app,
        format!("{text}\n\n@app.before_request\ndef _broken():\n    return ('broken', 500)\n"),
    )
    .unwrap();
    site.commit("break every request");
    let started = std::time::Instant::now();
    let out = site.hoist(&["deploy"]);
    let took = started.elapsed();
    assert_exit(&out, EXIT_ROLLED_BACK);
    let err = stderr(&out);
    assert!(
        err.contains("/health answered 500 (expected 200); "),
        "{err}"
    );
    assert!(err.contains(" server errors in a row over "), "{err}");
    assert!(err.contains("s are final, not waited out"), "{err}");
    assert!(
        took < std::time::Duration::from_secs(30),
        "the deploy took {took:?}, waiting out the 60 s timeout: {err}"
    );
    site.assert_live(&a);
}

#[test]
fn a_first_deploy_that_never_gets_healthy_leaves_no_current() {
    let site = Site::with(SiteOptions {
        health_timeout: "2s",
        ..SiteOptions::default()
    });
    let config = fs::read_to_string(&site.config).unwrap();
    fs::write(
        &site.config,
        config.replace("body = \"ok\"", "body = \"never in the body\""),
    )
    .unwrap();
    let out = site.hoist(&["deploy"]);
    assert_exit(&out, EXIT_ROLLED_BACK);
    let err = stderr(&out);
    assert!(
        err.contains("answered without \"never in the body\" in its body"),
        "{err}"
    );
    assert!(
        err.contains("this was the first deploy, so there is no earlier release to return to"),
        "{err}"
    );
    assert_eq!(
        site.current(),
        None,
        "current never points at a failed release"
    );
    assert_failed(&site, &[], "health");
}
