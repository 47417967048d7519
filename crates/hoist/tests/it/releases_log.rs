//! `hoist releases` says what each release is and who deployed it: the commit's first line and
//! the deployer, as a reader of the table expects.

use crate::support::*;

#[test]
fn releases_show_the_commit_message_and_who_deployed() {
    let site = Site::new();
    site.change_code("v2");
    site.commit("Fix the login form\n\nThe long explanation stays out of the table.");
    let id = site.deploy_ok();
    let out = site.hoist(&["releases"]);
    assert_exit(&out, EXIT_OK);
    let table = stdout(&out);
    let mut lines = table.lines();
    let header = lines.next().unwrap();
    assert!(
        header.starts_with("RELEASE") && header.contains("COMMIT") && header.contains("MESSAGE"),
        "{table}"
    );
    let row = lines.find(|l| l.starts_with(&id)).unwrap();
    let commit = site.git(&["rev-parse", "HEAD"]);
    assert!(row.contains(&commit[..10]), "{table}");
    assert!(row.contains("Fix the login form"), "{table}");
    assert!(!row.contains("long explanation"), "{table}");
    assert!(row.contains("tester@ci"), "{table}");

    let json = site.hoist(&["releases", "--json"]);
    let rows: serde_json::Value = serde_json::from_str(stdout(&json).trim()).unwrap();
    assert_eq!(rows[0]["message"], "Fix the login form");
    assert_eq!(rows[0]["who"], "tester@ci");
}

#[test]
fn history_lists_deploys_failures_and_rollbacks_with_reasons_and_timings() {
    let site = Site::with(SiteOptions {
        extra_hooks:
            "[[hook]]\nname = \"gate\"\nrun = \"test ! -e \\\"$HOIST_ROOT/../closed\\\"\"\n".into(),
        ..SiteOptions::default()
    });
    let a = site.deploy_ok();
    site.change_code("b");
    let b = site.deploy_ok();
    std::fs::write(site.dir.path().join("closed"), "").unwrap();
    site.change_code("c");
    assert_exit(&site.hoist(&["deploy"]), EXIT_BEFORE_SWITCH);
    std::fs::remove_file(site.dir.path().join("closed")).unwrap();
    assert_exit(&site.hoist(&["rollback"]), EXIT_OK);

    let out = site.hoist(&["releases", "--history"]);
    assert_exit(&out, EXIT_OK);
    let table = stdout(&out);
    let mut lines = table.lines();
    let header = lines.next().unwrap();
    assert_eq!(
        header.split_whitespace().collect::<Vec<_>>(),
        ["TIME", "(UTC)", "WHO", "EVENT", "RELEASE", "TOOK", "DETAIL"],
        "{table}"
    );
    // Cells are separated by two spaces or more.
    let rows: Vec<Vec<&str>> = lines
        .map(|l| {
            l.split("  ")
                .map(str::trim)
                .filter(|c| !c.is_empty())
                .collect()
        })
        .collect();
    let events: Vec<(&str, &str, &str)> = rows.iter().map(|r| (r[1], r[2], r[3])).collect();
    let c = &rows[2][3];
    assert_eq!(
        events,
        [
            ("tester@ci", "deployed", a.as_str()),
            ("tester@ci", "deployed", b.as_str()),
            ("tester@ci", "deploy failed", *c),
            ("tester@ci", "rolled back", a.as_str()),
        ],
        "{table}"
    );
    assert!(
        rows[0][4].ends_with(" s") || rows[0][4].ends_with(" ms"),
        "{table}"
    );
    assert!(
        rows[2][5].starts_with("hook: local: pre-switch hook \"gate\" exited 1"),
        "{table}"
    );
    assert_eq!(rows[3][5], format!("from {b}: rollback"), "{table}");

    let json = site.hoist(&["releases", "--history", "--json"]);
    let events: serde_json::Value = serde_json::from_str(stdout(&json).trim()).unwrap();
    let names: Vec<&str> = events
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        ["deployed", "deployed", "deploy failed", "rolled back"]
    );
    assert_eq!(events[0]["host"], "local");
    assert!(events[0]["took_ms"].as_u64().is_some(), "{events}");
    assert!(events[3]["took_ms"].as_u64().is_some(), "{events}");
}
