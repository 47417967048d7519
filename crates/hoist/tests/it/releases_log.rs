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
