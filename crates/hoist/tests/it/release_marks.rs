//! Bad marks mean what they say: rolling forward is no verdict on the release left, pruning
//! keeps it as good, and `hoist releases mark-good` clears a bad mark. Real gunicorn, real HTTP.

use crate::support::*;
use serde_json::Value;

/// The first line of stdout without its duration (" in 1.2s; ...").
fn said(out: &std::process::Output) -> String {
    let text = stdout(out);
    let line = text.lines().next().unwrap_or_default();
    match line.split_once(" in ") {
        Some((head, tail)) => format!("{head}{}", tail.split_once(';').map_or("", |(_, t)| t)),
        None => line.to_string(),
    }
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

fn row(rows: &[Value], id: &str) -> Value {
    rows.iter().find(|r| r["id"] == id).unwrap().clone()
}

#[test]
fn rolling_forward_keeps_the_release_left_good_and_the_next_deploy_prunes_nothing() {
    let site = Site::new();
    let a = site.deploy_ok();
    site.change_code("b");
    let b = site.deploy_ok();
    site.change_code("c");
    let c = site.deploy_ok();

    let out = site.hoist(&["rollback", "--to", &a]);
    assert_exit(&out, EXIT_OK);
    assert_eq!(
        said(&out),
        format!("rolled back local from {c} to {a} {c} is marked bad")
    );
    assert_eq!(site.release_json(&c)["state"], "bad");

    let out = site.hoist(&["rollback", "--to", &c]);
    assert_exit(&out, EXIT_OK);
    assert_eq!(
        said(&out),
        format!("rolled forward local from {a} to {c} {a} keeps its state")
    );
    site.assert_live(&c);
    assert_eq!(site.release_json(&a)["state"], "good");
    assert_eq!(site.release_json(&c)["state"], "good");
    let rows = releases_json(&site);
    for id in [&a, &b, &c] {
        assert_eq!(row(&rows, id)["state"], "good", "{id}: {rows:?}");
    }
    assert_eq!(row(&rows, &b)["rollback_target"], true);

    // keep_releases = 5: the next deploy has room for all four, and none is bad.
    site.change_code("d");
    let d = site.deploy_ok();
    let mut all = vec![a.clone(), b.clone(), c.clone(), d.clone()];
    all.sort();
    assert_eq!(site.release_ids(), all);
    assert!(
        !site.journal().iter().any(|e| e["event"] == "pruned"),
        "{:?}",
        site.journal()
    );
}

#[test]
fn a_bad_release_marked_good_is_a_rollback_target_again() {
    let site = Site::new();
    let a = site.deploy_ok();
    site.change_code("b");
    let b = site.deploy_ok();
    let out = site.hoist(&["rollback"]);
    assert_exit(&out, EXIT_OK);
    assert_eq!(site.release_json(&b)["state"], "bad");
    // Nothing good is left before a.
    let out = site.hoist(&["rollback"]);
    assert_exit(&out, EXIT_CONFIG);
    assert!(
        stderr(&out).contains(
            "hint: `hoist releases` lists the releases; `hoist rollback --to <id>` picks one"
        ),
        "{}",
        stderr(&out)
    );

    // The rollback was a false alarm: b is cleared before the next deploy would prune it.
    let out = site.hoist(&["releases", "mark-good", &b]);
    assert_exit(&out, EXIT_OK);
    assert_eq!(
        stdout(&out).trim_end(),
        format!("marked {b} good on local; it can be a rollback target again")
    );
    let last = site.journal().pop().unwrap();
    assert_eq!(last["event"], "marked_good");
    assert_eq!(last["release"], b.as_str());
    assert_eq!(last["who"], "tester@ci");
    assert_eq!(site.release_json(&b)["state"], "good");
    assert!(!site.lock_exists(), "the lock is released");
    site.assert_live(&a);

    site.change_code("c");
    let c = site.deploy_ok();
    let rows = releases_json(&site);
    assert_eq!(row(&rows, &b)["state"], "good", "{rows:?}");
    assert_eq!(row(&rows, &b)["rollback_target"], true, "{rows:?}");
    let out = site.hoist(&["rollback"]);
    assert_exit(&out, EXIT_OK);
    site.assert_live(&b);
    assert_eq!(site.release_json(&c)["state"], "bad");

    // Marking a good release, or one hoist does not know, changes nothing and says why.
    let before = site.journal().len();
    let out = site.hoist(&["releases", "mark-good", &a]);
    assert_exit(&out, EXIT_CONFIG);
    assert!(
        stderr(&out).contains(&format!(
            "local: release {a} is good, not bad: nothing to do"
        )),
        "{}",
        stderr(&out)
    );
    let out = site.hoist(&["releases", "mark-good", "20990101T000000Z"]);
    assert_exit(&out, EXIT_CONFIG);
    assert!(
        stderr(&out).contains(
            "local: release 20990101T000000Z is not in this host's journal (.hoist/journal.jsonl)"
        ),
        "{}",
        stderr(&out)
    );
    assert_eq!(site.journal().len(), before);
}
