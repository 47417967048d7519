//! Bad input gets a clear error (file, line, fix) and changes nothing on disk. Every message is
//! a reviewed snapshot (`snapshots/bad_input-*.snap`).

use std::fs;

use crate::support::*;
use crate::user_sees;

/// Runs a deploy that must fail with `code`, checks the root did not change, and snapshots
/// what the user saw as `bad_input-<name>`.
fn refused(site: &Site, args: &[&str], code: i32, name: &str) -> String {
    let before = snapshot(&site.root);
    let out = site.hoist(args);
    assert_exit(&out, code);
    assert_eq!(snapshot(&site.root), before, "{args:?} changed the root");
    user_sees!(format!("bad_input-{name}"), out);
    stderr(&out)
}

fn edit_config(site: &Site, from: &str, to: &str) {
    let text = fs::read_to_string(&site.config).unwrap();
    assert!(text.contains(from), "{from} not in config");
    fs::write(&site.config, text.replacen(from, to, 1)).unwrap();
}

fn line_of(site: &Site, needle: &str) -> usize {
    fs::read_to_string(&site.config)
        .unwrap()
        .lines()
        .position(|l| l.contains(needle))
        .unwrap()
        + 1
}

#[test]
fn broken_configs_name_the_line_and_the_fix_and_touch_nothing() {
    let site = Site::new();
    let a = site.deploy_ok();
    let original = fs::read_to_string(&site.config).unwrap();
    let cfg = site.config.display().to_string();

    edit_config(&site, "[health]", "[health");
    let err = refused(&site, &["deploy"], EXIT_CONFIG, "malformed-toml");
    let line = line_of(&site, "[health");
    assert!(err.starts_with(&format!("error: {cfg}:{line}:")), "{err}");
    assert!(err.contains("malformed TOML"), "{err}");

    fs::write(&site.config, &original).unwrap();
    edit_config(&site, "keep_releases = 5", "keep_release = 5");
    let err = refused(&site, &["deploy"], EXIT_CONFIG, "unknown-key");
    let line = line_of(&site, "keep_release = 5");
    assert!(
        err.starts_with(&format!("error: {cfg}:{line}:1: unknown key `keep_release` in [release]; did you mean `keep_releases`?")),
        "{err}"
    );

    fs::write(&site.config, &original).unwrap();
    edit_config(&site, "keep_releases = 5", "keep_releases = 1");
    let err = refused(&site, &["deploy"], EXIT_CONFIG, "keep-releases-too-small");
    assert!(err.contains("keep_releases must be at least 2"), "{err}");

    fs::write(&site.config, &original).unwrap();
    edit_config(&site, "restart = \"command\"", "restart = \"supervisr\"");
    let err = refused(&site, &["deploy"], EXIT_CONFIG, "unknown-restart-strategy");
    assert!(
        err.contains("unknown restart strategy \"supervisr\"; expected one of supervisor, systemd, uwsgi-chain, gunicorn-hup, command"),
        "{err}"
    );

    fs::write(&site.config, &original).unwrap();
    edit_config(
        &site,
        "requirements = [\"requirements.txt\"]",
        "requirements = [\"requirements-prod.txt\"]",
    );
    let err = refused(&site, &["deploy"], EXIT_CONFIG, "missing-requirements-file");
    assert!(
        err.contains("requirements file \"requirements-prod.txt\" does not exist"),
        "{err}"
    );

    fs::write(&site.config, &original).unwrap();
    site.assert_live(&a);
}

#[test]
fn a_root_of_slash_or_a_relative_root_is_refused() {
    let site = Site::new();
    let root_line = format!("root = \"{}\"", site.root.display());
    for (root, message, name) in [
        (
            "/",
            "release root \"/\" is the file system root",
            "root-slash",
        ),
        ("srv/app", "must be an absolute path", "root-relative"),
        ("/srv/../etc", "..", "root-dot-dot"),
    ] {
        let text = fs::read_to_string(&site.config).unwrap();
        let changed = text.replace(&root_line, &format!("root = \"{root}\""));
        fs::write(&site.config, &changed).unwrap();
        let out = site.hoist(&["deploy"]);
        assert_exit(&out, EXIT_CONFIG);
        assert!(stderr(&out).contains(message), "{root}: {}", stderr(&out));
        user_sees!(format!("bad_input-{name}"), out);
        fs::write(&site.config, &text).unwrap();
    }
    assert!(!site.root.exists(), "nothing was created");
}

#[test]
fn a_tampered_journal_is_refused_with_its_line() {
    let site = Site::new();
    let a = site.deploy_ok();
    let journal = site.root.join(".hoist/journal.jsonl");
    let mut text = fs::read_to_string(&journal).unwrap();
    let lines = text.lines().count();
    text.push_str(
        "{\"ts\":\"2026-11-26T00:00:00Z\",\"who\":\"mallory\",\"event\":\"deploy_succeeded\",\"release\":\"../../etc\"}\n",
    );
    fs::write(&journal, text).unwrap();
    site.change_code("tampered");
    for (args, name) in [
        (&["deploy"][..], "journal-tampered-deploy"),
        (&["rollback"][..], "journal-tampered-rollback"),
        (
            &["rollback", "--to", "../../etc"][..],
            "rollback-to-invalid-id",
        ),
    ] {
        let before = snapshot(&site.root);
        let out = site.hoist(args);
        user_sees!(format!("bad_input-{name}"), out);
        assert_ne!(out.status.code(), Some(0), "{args:?}");
        let err = stderr(&out);
        if args.len() == 3 {
            assert!(
                err.contains("--to: invalid release id \"../../etc\""),
                "{err}"
            );
        } else {
            assert!(
                err.contains(&format!(
                    "journal line {}: invalid release id \"../../etc\"",
                    lines + 1
                )),
                "{err}"
            );
        }
        assert_eq!(snapshot(&site.root), before);
    }
    site.assert_live(&a);
}

#[test]
fn a_current_that_is_a_real_directory_is_refused_with_a_hint() {
    let site = Site::new();
    fs::create_dir_all(site.root.join("current")).unwrap();
    let before = snapshot(&site.root);
    let out = site.hoist(&["deploy"]);
    assert_exit(&out, EXIT_CONFIG);
    user_sees!("bad_input-current-is-a-directory", out);
    let err = stderr(&out);
    assert!(
        err.contains("is a real directory or file, not a symlink"),
        "{err}"
    );
    assert!(
        err.contains("hint: hoist switches releases by replacing a symlink"),
        "{err}"
    );
    assert_eq!(snapshot(&site.root), before);
}

#[test]
fn five_failed_deploys_do_not_push_out_the_last_good_release() {
    let site = Site::with(SiteOptions {
        keep_releases: 3,
        extra_hooks: String::new(),
        ..SiteOptions::default()
    });
    let flag = site.dir.path().join("fail-hooks");
    let text = fs::read_to_string(&site.config).unwrap();
    let hook = format!(
        "[[hook]]\nname = \"gate\"\nrun = \"test ! -e {}\"\n",
        flag.display()
    );
    fs::write(
        &site.config,
        text.replace("[[process]]", &format!("{hook}\n[[process]]")),
    )
    .unwrap();

    let a = site.deploy_ok();
    site.change_code("b");
    let b = site.deploy_ok();
    fs::write(&flag, "").unwrap();
    for i in 0..5 {
        site.change_code(&format!("failing {i}"));
        assert_exit(&site.hoist(&["deploy"]), EXIT_BEFORE_SWITCH);
    }
    fs::remove_file(&flag).unwrap();
    site.change_code("c");
    let c = site.deploy_ok();
    // Failed releases took no slots and were pruned; the three good ones remain.
    let mut expected = vec![a.clone(), b.clone(), c.clone()];
    expected.sort();
    assert_eq!(site.release_ids(), expected);
    let out = site.hoist(&["releases"]);
    let table = stdout(&out);
    assert!(
        table
            .lines()
            .any(|l| l.starts_with(&b) && l.ends_with("rollback target")),
        "{table}"
    );

    // One more good deploy: now the oldest good one goes.
    site.change_code("d");
    let d = site.deploy_ok();
    let mut expected = vec![b.clone(), c.clone(), d];
    expected.sort();
    assert_eq!(site.release_ids(), expected);
    let out = site.hoist(&["rollback"]);
    assert_exit(&out, EXIT_OK);
    site.assert_live(&c);
}

#[test]
fn absurd_durations_are_config_errors_before_anything_is_created() {
    let site = Site::new();
    let out = site.hoist(&["deploy", "--lock-wait", "10000000000000000000s"]);
    assert_exit(&out, EXIT_CONFIG);
    user_sees!("bad_input-lock-wait-overflows", out);
    assert!(
        stderr(&out).contains(
            "--lock-wait \"10000000000000000000s\": duration \"10000000000000000000s\" is too long"
        ),
        "{}",
        stderr(&out)
    );
    let out = site.hoist(&["deploy", "--lock-wait", "100000h"]);
    assert_exit(&out, EXIT_CONFIG);
    user_sees!("bad_input-lock-wait-too-long", out);
    assert!(
        stderr(&out).contains("duration \"100000h\" is too long: at most 720h (30 days)"),
        "{}",
        stderr(&out)
    );
    edit_config(
        &site,
        "keep_releases = 5",
        "keep_releases = 5\nlock_wait = \"18446744073709551615s\"",
    );
    let out = site.hoist(&["deploy"]);
    assert_exit(&out, EXIT_CONFIG);
    user_sees!("bad_input-config-lock-wait-too-long", out);
    let line = line_of(&site, "lock_wait");
    let err = stderr(&out);
    assert!(
        err.contains(&format!(":{line}:"))
            && err.contains("`lock_wait`: duration \"18446744073709551615s\" is too long"),
        "{err}"
    );
    assert!(!site.root.exists(), "nothing was created");
}

/// Runs hoist with `--config <config> check` and gives up (failing the test) after 30 s.
fn check_with_config(config: &std::path::Path) -> std::process::Output {
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_hoist"))
        .arg("--config")
        .arg(config)
        .arg("check")
        .env("NO_COLOR", "1")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while child.try_wait().unwrap().is_none() {
        if std::time::Instant::now() > deadline {
            child.kill().unwrap();
            child.wait().unwrap();
            panic!(
                "hoist --config {} check did not end in 30 s",
                config.display()
            );
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

#[test]
fn a_config_that_is_not_a_bounded_regular_file_is_refused_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("hoist.toml");
    let status = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(status.success());
    for (config, name) in [
        (std::path::Path::new("/dev/zero"), "config-is-a-device"),
        (fifo.as_path(), "config-is-a-fifo"),
    ] {
        let out = check_with_config(config);
        assert_exit(&out, EXIT_CONFIG);
        user_sees!(format!("bad_input-{name}"), out);
        assert!(
            stderr(&out).contains(&format!(
                "error: {}: the config file is not a regular file",
                config.display()
            )),
            "{}",
            stderr(&out)
        );
    }
    let huge = dir.path().join("huge.toml");
    fs::write(&huge, "# padding\n".repeat(200_000)).unwrap();
    let out = check_with_config(&huge);
    assert_exit(&out, EXIT_CONFIG);
    user_sees!("bad_input-config-too-large", out);
    assert!(
        stderr(&out).contains("the config file is larger than 1024 KiB"),
        "{}",
        stderr(&out)
    );
}
