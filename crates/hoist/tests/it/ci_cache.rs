//! `hoist cache ls | rm | prune` on a store filled by real runs.

use assert_cmd::Command;
use std::path::Path;

fn hoist(dir: &Path) -> Command {
    let mut cmd = Command::cargo_bin("hoist").unwrap();
    cmd.current_dir(dir)
        .env("HOIST_CACHE_DIR", dir.join(".cache"))
        .env("NO_COLOR", "1")
        .env_remove("HOIST_CI_DIR")
        .env_remove("HOIST_CONFIG");
    cmd
}

#[test]
fn caches_saved_by_runs_are_listed_removed_and_pruned() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("hoist.toml"),
        "[pipeline.jobs.t]\nsteps = [{ run = \"mkdir -p env && echo $KEY > env/f\" }, { save_cache = \"deps-{{ .Environment.KEY }}\", paths = [\"env\"] }]\n",
    )
    .unwrap();
    assert!(std::process::Command::new("sh")
        .arg("-ec")
        .arg("git init -q -b master . && git add -A && git -c user.name=t -c user.email=t@t commit -qm init")
        .current_dir(dir.path())
        .status()
        .unwrap()
        .success());
    for key in ["a1", "a2", "b1"] {
        hoist(dir.path())
            .env("KEY", key)
            .args(["ci", "run"])
            .assert()
            .success();
    }
    let listed = String::from_utf8(
        hoist(dir.path())
            .args(["cache", "ls"])
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    let keys: Vec<&str> = listed
        .lines()
        .map(|l| l.split("  ").next().unwrap())
        .collect();
    assert_eq!(
        keys,
        ["deps-b1", "deps-a2", "deps-a1"],
        "newest first:\n{listed}"
    );
    assert!(listed.lines().all(|l| l.ends_with("  env")), "{listed}");
    let json = String::from_utf8(
        hoist(dir.path())
            .args(["cache", "ls", "--json"])
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    let first: serde_json::Value = serde_json::from_str(json.lines().next().unwrap()).unwrap();
    assert_eq!(first["key"], "deps-b1");
    hoist(dir.path())
        .args(["cache", "rm", "deps-a"])
        .assert()
        .success()
        .stdout(
            predicates::str::contains("removed deps-a2 (")
                .and(predicates::str::contains("removed deps-a1 (")),
        );
    hoist(dir.path())
        .args(["cache", "prune", "--max-age", "0s"])
        .assert()
        .success()
        .stdout(
            "removed deps-b1\npruned 1 cache(s), freed ".to_string() + &size_of_last(dir.path()),
        );
    hoist(dir.path())
        .args(["cache", "ls"])
        .assert()
        .success()
        .stdout("");
    hoist(dir.path())
        .args(["cache", "prune", "--max-size", "lots"])
        .assert()
        .code(2)
        .stderr("error: --max-size \"lots\" is not a size\nhint: write e.g. 500MB or 5GB\n");
}

// The freed size is whatever the archive weighed; read the run's record rather than guess.
fn size_of_last(dir: &Path) -> String {
    let runs = dir.join(".hoist-ci/runs");
    let mut names: Vec<_> = std::fs::read_dir(&runs)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    names.sort();
    let record: serde_json::Value =
        serde_json::from_slice(&std::fs::read(names.last().unwrap().join("record.json")).unwrap())
            .unwrap();
    let bytes = record["jobs"][0]["steps"][1]["cache"]["bytes"]
        .as_u64()
        .unwrap();
    if bytes >= 1024 {
        format!("{:.1} KiB\n", bytes as f64 / 1024.0)
    } else {
        format!("{bytes} B\n")
    }
}

use predicates::prelude::PredicateBooleanExt;
