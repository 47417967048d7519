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
    assert_eq!(
        site.release_json(&b)["commit"],
        format!("{tracked_head}-dirty").as_str()
    );
}
