//! The commit recorded for a release is the source's own: an app directory that the enclosing
//! repository does not track gets no commit (not the outer repository's HEAD).

use std::fs;
use std::process::Command;

use crate::support::*;

fn git(dir: &std::path::Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args([
            "-c",
            "user.name=Test",
            "-c",
            "user.email=test@example.invalid",
        ])
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[test]
fn an_untracked_app_inside_another_repository_records_no_commit() {
    let site = Site::new();
    // The app is no repository of its own: it sits, untracked, in an outer one.
    fs::remove_dir_all(site.project.join(".git")).unwrap();
    let outer = site.dir.path();
    git(outer, &["init", "-q", "-b", "main"]);
    fs::write(outer.join("README"), "another project\n").unwrap();
    git(outer, &["add", "README"]);
    git(outer, &["commit", "-q", "-m", "outer"]);
    let outer_head = git(outer, &["rev-parse", "HEAD"]);

    let a = site.deploy_ok();
    let record = site.release_json(&a);
    assert!(record["commit"].is_null(), "{record}");
    assert!(record["branch"].is_null(), "{record}");
    let started = site
        .journal()
        .into_iter()
        .find(|e| e["event"] == "deploy_started")
        .unwrap();
    assert!(
        started.get("commit").is_none_or(|c| c.is_null()),
        "{started}"
    );
    assert_ne!(record["commit"], outer_head.as_str());

    // Once the outer repository tracks it, its HEAD is the app's commit.
    git(outer, &["add", "project"]);
    git(outer, &["commit", "-q", "-m", "track the app"]);
    let tracked_head = git(outer, &["rev-parse", "HEAD"]);
    let app = site.project.join("app.py");
    let text = fs::read_to_string(&app).unwrap();
    fs::write(&app, format!("{text}\n# change b\n")).unwrap();
    let b = site.deploy_ok();
    assert_eq!(site.release_json(&b)["commit"], tracked_head.as_str());
    assert_eq!(site.release_json(&b)["dirty"], true);
}

#[test]
fn a_release_with_uncommitted_or_untracked_files_is_marked_dirty_and_shown_so() {
    let site = Site::new();
    let head = site.git(&["rev-parse", "HEAD"]);
    let short = &head[..10];

    // Exactly the commit: not dirty, and RELEASE.json and the journal say nothing of it.
    let clean = site.deploy_ok();
    assert_eq!(site.release_json(&clean)["commit"], head.as_str());
    assert!(site.release_json(&clean).get("dirty").is_none());

    // An untracked file that is shipped makes the release dirty.
    fs::write(site.project.join("notes.txt"), "not committed\n").unwrap();
    let untracked = site.deploy_ok();
    assert_eq!(site.release_json(&untracked)["dirty"], true);
    assert_eq!(site.release_json(&untracked)["commit"], head.as_str());
    fs::remove_file(site.project.join("notes.txt")).unwrap();

    // An untracked file that is not shipped (excluded) does not.
    fs::create_dir_all(site.project.join("tests")).unwrap();
    fs::write(site.project.join("tests/scratch.py"), "x = 1\n").unwrap();
    let excluded = site.deploy_ok();
    assert!(site.release_json(&excluded).get("dirty").is_none());

    // A changed tracked file does.
    let app = site.project.join("app.py");
    let text = fs::read_to_string(&app).unwrap();
    fs::write(&app, format!("{text}\n# not committed\n")).unwrap();
    let modified = site.deploy_ok();
    assert_eq!(site.release_json(&modified)["dirty"], true);
    let started: Vec<_> = site
        .journal()
        .into_iter()
        .filter(|e| e["event"] == "deploy_started")
        .map(|e| e.get("dirty").cloned())
        .collect();
    assert_eq!(
        started,
        [None, Some(true.into()), None, Some(true.into())],
        "the journal marks the dirty deploys"
    );

    let out = site.hoist(&["releases"]);
    assert_exit(&out, EXIT_OK);
    let listed = stdout(&out);
    let line = |id: &str| {
        listed
            .lines()
            .find(|l| l.contains(id))
            .unwrap_or_else(|| panic!("{id} in {listed}"))
            .to_string()
    };
    assert!(
        line(&clean).contains(short) && !line(&clean).contains("dirty"),
        "{listed}"
    );
    assert!(
        line(&untracked).contains(&format!("{short}-dirty")),
        "{listed}"
    );
    assert!(
        line(&modified).contains(&format!("{short}-dirty")),
        "{listed}"
    );

    let out = site.hoist(&["status"]);
    assert_exit(&out, EXIT_OK);
    assert!(
        stdout(&out).contains(&format!("commit {short}-dirty")),
        "{}",
        stdout(&out)
    );
}
