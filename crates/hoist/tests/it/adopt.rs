//! Hosts deployed the seed's way (`builds/<timestamp>`, `current` -> an absolute build path, an
//! `env` virtualenv inside each build) are adopted: their builds are listed as adopted, can be
//! rolled back to with their own environment, and nothing of theirs is moved or rewritten.

use std::fs;
use std::process::Command;

use crate::support::*;

const A: &str = "20180718120000";
const B: &str = "20180719120000";

/// A root laid out as the seed's playbook leaves it, with two builds, B live.
fn seed_site() -> Site {
    let site = Site::new();
    let text = fs::read_to_string(&site.config).unwrap();
    let text = text.replace(
        "keep_releases = 5",
        "keep_releases = 5\nreleases_dir = \"builds\"",
    );
    fs::write(&site.config, text).unwrap();
    for id in [A, B] {
        let build = site.root.join("builds").join(id);
        copy_tree(&site.project, &build);
        let _ = fs::remove_dir_all(build.join(".git"));
        let env = build.join("env");
        run(Command::new("uv").arg("venv").arg("-q").arg(&env));
        run(Command::new("uv")
            .args(["pip", "install", "-q", "--python"])
            .arg(env.join("bin/python"))
            .arg("-r")
            .arg(build.join("requirements.txt")));
        // Only so that the test can tell which build answers.
        fs::write(build.join("RELEASE.json"), format!("{{\"id\": \"{id}\"}}")).unwrap();
    }
    std::os::unix::fs::symlink(site.root.join("builds").join(B), site.root.join("current"))
        .unwrap();
    site
}

fn run(cmd: &mut Command) {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn build_snapshot(site: &Site, id: &str) -> Vec<String> {
    snapshot(&site.root.join("builds").join(id))
}

fn current_target(site: &Site) -> String {
    fs::read_link(site.root.join("current"))
        .unwrap()
        .display()
        .to_string()
}

#[test]
fn seed_builds_are_adopted_listed_rolled_back_to_and_left_untouched() {
    let site = seed_site();
    let before_a = build_snapshot(&site, A);
    let before_b = build_snapshot(&site, B);

    let out = site.hoist(&["releases"]);
    assert!(
        stdout(&out)
            .lines()
            .any(|l| l.starts_with(A) && l.contains("unknown")),
        "{}",
        stdout(&out)
    );

    let out = site.hoist(&["adopt"]);
    assert_exit(&out, EXIT_OK);
    assert_eq!(stdout(&out).trim(), format!("local: adopted {A}, {B}"));
    let table = stdout(&site.hoist(&["releases"]));
    let row = |id: &str| {
        table
            .lines()
            .find(|l| l.starts_with(id))
            .unwrap()
            .to_string()
    };
    assert!(
        row(A).contains("adopted") && row(A).ends_with("rollback target"),
        "{table}"
    );
    assert!(
        row(B).contains("adopted") && row(B).ends_with("current"),
        "{table}"
    );
    // An adopted build's age is the build's own (its name's time), not the adoption's.
    let days = |id: &str| -> i64 {
        let row = row(id);
        let words: Vec<&str> = row.split_whitespace().collect();
        let at = words.iter().position(|w| *w == "ago").unwrap();
        words[at - 1]
            .strip_suffix('d')
            .unwrap_or_else(|| panic!("{row}"))
            .parse()
            .unwrap()
    };
    let expected = (chrono::Utc::now().date_naive()
        - chrono::NaiveDate::from_ymd_opt(2018, 7, 18).unwrap())
    .num_days();
    assert!((days(A) - expected).abs() <= 1, "{table}");
    assert_eq!(days(A) - days(B), 1, "{table}");
    // Adopting again finds nothing new.
    assert_eq!(
        stdout(&site.hoist(&["adopt"])).trim(),
        "local: nothing to adopt"
    );

    // A hoist deploy lands beside them, in builds/.
    let c = site.deploy_ok();
    assert!(site.root.join("builds").join(&c).join(".venv").exists());
    site.assert_live(&c);

    // Roll back to the adopted builds, each served from its own env/.
    let out = site.hoist(&["rollback"]);
    assert_exit(&out, EXIT_OK);
    assert_eq!(current_target(&site), format!("builds/{B}"));
    assert_eq!(site.serving().as_deref(), Some(B));
    let out = site.hoist(&["rollback"]);
    assert_exit(&out, EXIT_OK);
    assert_eq!(current_target(&site), format!("builds/{A}"));
    assert_eq!(site.serving().as_deref(), Some(A));

    assert_eq!(build_snapshot(&site, A), before_a, "build {A} was changed");
    assert_eq!(build_snapshot(&site, B), before_b, "build {B} was changed");
}

#[test]
fn the_first_deploy_adopts_seed_builds_by_itself() {
    let site = seed_site();
    let c = site.deploy_ok();
    site.assert_live(&c);
    let adopted: Vec<String> = site
        .journal()
        .iter()
        .filter(|e| e["event"] == "adopted")
        .map(|e| e["release"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(adopted, [A, B]);
    let table = stdout(&site.hoist(&["releases"]));
    assert!(
        table
            .lines()
            .any(|l| l.starts_with(B) && l.ends_with("rollback target")),
        "{table}"
    );
}
