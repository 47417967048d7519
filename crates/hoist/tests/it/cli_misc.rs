//! `hoist check`, `hoist init`, `hoist status`, and a journal torn by a killed writer.

use std::fs;
use std::process::Command;

use crate::support::*;

#[test]
fn check_passes_on_the_example_and_names_what_is_missing() {
    let site = Site::new();
    let out = site.hoist(&["check"]);
    assert_exit(&out, EXIT_OK);
    let text = stdout(&out);
    for line in [
        "is valid",
        "local  ok root:",
        "local  ok releases: nothing deployed yet",
        "local  ok python: python3 is Python 3.",
        "local  ok restart web: bin/restart-web found",
    ] {
        assert!(text.contains(line), "{line:?} not in\n{text}");
    }
    // The health URL is asked from the host; nothing serves before the first deploy.
    let url = format!("http://127.0.0.1:{}/health", site.port);
    assert!(
        text.contains(&format!(
            "local  warning health: GET {url} on local: no answer ([Errno 111] Connection refused)\nlocal  hint: nothing is deployed yet: the first deploy starts the app\n"
        )),
        "{text}"
    );
    assert!(!site.root.exists(), "check creates nothing");

    let text = fs::read_to_string(&site.config).unwrap();
    fs::write(
        &site.config,
        text.replace(
            "entry = \"app:app\"",
            "entry = \"app:app\"\npython = \"python3.99\"",
        ),
    )
    .unwrap();
    let out = site.hoist(&["check"]);
    assert_exit(&out, EXIT_CHECK_FAILED);
    assert!(
        stdout(&out).contains("local  FAILED python:"),
        "{}",
        stdout(&out)
    );
    assert!(stdout(&out).contains("python3.99"), "{}", stdout(&out));
}

#[test]
fn init_writes_a_config_whose_guesses_check_flags() {
    let dir = tempfile::tempdir().unwrap();
    let project = dir.path().join("shop");
    copy_tree(&example_dir(), &project);
    fs::remove_file(project.join("hoist.toml")).unwrap();
    let root = dir.path().join("srv");
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_hoist"))
            .args(args)
            .current_dir(&project)
            .env("NO_COLOR", "1")
            .output()
            .unwrap()
    };
    let out = run(&["init", "--root", root.to_str().unwrap()]);
    assert_exit(&out, EXIT_OK);
    assert!(stderr(&out).contains("detected"), "{}", stderr(&out));
    let written = fs::read_to_string(project.join("hoist.toml")).unwrap();
    assert!(written.contains("name = \"shop\""), "{written}");
    assert!(written.contains("entry = \"app:app\""), "{written}");
    assert!(
        written.contains(&format!("root = \"{}\"", root.display())),
        "{written}"
    );
    // The guesses are flagged, and the guessed systemd unit is probed, not assumed: this
    // machine has no systemd, so the config cannot deploy here as written.
    assert!(
        !std::path::Path::new("/run/systemd/system").exists(),
        "this test needs a machine where systemd is not the init system"
    );
    let out = run(&["check"]);
    assert_exit(&out, EXIT_CHECK_FAILED);
    let text = stdout(&out);
    assert!(
        text.contains("config  warning placeholder: ")
            && text.contains(": unit = \"shop.service\" is a guess of `hoist init`"),
        "{text}"
    );
    assert!(
        text.contains("local  FAILED restart web: systemd is not running on this host"),
        "{text}"
    );

    let out = run(&["init"]);
    assert_exit(&out, EXIT_CONFIG);
    assert!(stderr(&out).contains("already exists"));
    assert!(stderr(&out).contains("hint: pass --force to overwrite it"));
}

#[test]
fn no_config_anywhere_says_how_to_get_one() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_hoist"))
        .arg("status")
        .current_dir(dir.path())
        .env_remove("HOIST_CONFIG")
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    assert_exit(&out, EXIT_CONFIG);
    assert!(
        stderr(&out).contains("no hoist.toml in"),
        "{}",
        stderr(&out)
    );
    assert!(stderr(&out).contains("hint: run `hoist init` to write one, or pass --config <path>"));
}

#[test]
fn a_torn_last_journal_line_is_cut_and_the_deploy_goes_on() {
    let site = Site::new();
    let a = site.deploy_ok();
    let journal = site.root.join(".hoist/journal.jsonl");
    let mut text = fs::read_to_string(&journal).unwrap();
    text.push_str("{\"ts\":\"2026-11-26T00:00:00Z\",\"who\":\"x\",\"event\":\"depl");
    fs::write(&journal, text).unwrap();
    site.change_code("torn");
    let out = site.hoist(&["deploy"]);
    assert_exit(&out, EXIT_OK);
    assert!(
        stderr(&out).contains("ignored an incomplete last line"),
        "{}",
        stderr(&out)
    );
    let b = site.current().unwrap();
    assert_ne!(a, b);
    site.assert_live(&b);
    // Every line parses again.
    assert!(site.journal().iter().all(|e| e["event"].is_string()));
}

#[test]
fn status_shows_the_live_release_the_target_and_the_lock() {
    let site = Site::new();
    let out = site.hoist(&["status"]);
    assert_exit(&out, EXIT_OK);
    assert!(stdout(&out).contains("live:     nothing deployed yet"));
    let a = site.deploy_ok();
    site.change_code("b");
    let b = site.deploy_ok();
    let text = stdout(&site.hoist(&["status"]));
    assert!(
        text.contains(&format!("live:     {b} (good, commit ")),
        "{text}"
    );
    assert!(text.contains(&format!("rollback: {a}")), "{text}");
    assert!(text.contains("lock:     free"), "{text}");
}

#[test]
fn version_names_the_commit_it_was_built_from() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_hoist"))
        .arg("--version")
        .output()
        .unwrap();
    assert_exit(&out, EXIT_OK);
    let version = stdout(&out);
    let prefix = format!("hoist {} (commit ", env!("CARGO_PKG_VERSION"));
    let commit: String = version
        .strip_prefix(&prefix)
        .unwrap_or_else(|| panic!("{version}"))
        .chars()
        .take_while(char::is_ascii_hexdigit)
        .collect();
    assert_eq!(commit.len(), 12, "{version}");
    // A commit of this repository (HEAD may have moved since the binary was built).
    let known = std::process::Command::new("git")
        .args(["cat-file", "-e", &format!("{commit}^{{commit}}")])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .status()
        .unwrap();
    assert!(known.success(), "{version}");
}

#[test]
fn completions_and_the_manual_page_come_from_the_commands() {
    let hoist = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_hoist"))
            .args(args)
            .output()
            .unwrap()
    };
    let out = hoist(&["completions", "bash"]);
    assert_exit(&out, EXIT_OK);
    let script = stdout(&out);
    for command in ["deploy", "rollback", "releases", "completions"] {
        assert!(
            script.contains(command),
            "{command} missing from:\n{script}"
        );
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("hoist.bash");
    std::fs::write(&path, &script).unwrap();
    let syntax = std::process::Command::new("bash")
        .arg("-n")
        .arg(&path)
        .output()
        .unwrap();
    assert!(
        syntax.status.success(),
        "{}",
        String::from_utf8_lossy(&syntax.stderr)
    );
    for shell in ["zsh", "fish"] {
        let out = hoist(&["completions", shell]);
        assert_exit(&out, EXIT_OK);
        assert!(stdout(&out).contains("rollback"), "{shell}");
    }
    let out = hoist(&["completions", "tcsh"]);
    assert_exit(&out, EXIT_CONFIG);

    let out = hoist(&["man"]);
    assert_exit(&out, EXIT_OK);
    let page = stdout(&out);
    assert!(
        page.starts_with(".ie") || page.contains(".TH hoist 1"),
        "{page}"
    );
    assert!(page.contains("rollback"), "{page}");
}

/// `--help` opens by saying what hoist is, and names what users know: a `builds/<timestamp>` +
/// `current` layout, not our internal word for the setup hoist replaces.
#[test]
fn help_says_what_hoist_is_in_the_users_words() {
    let help = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_hoist"))
            .args(args)
            .env("NO_COLOR", "1")
            .output()
            .unwrap();
        assert_exit(&out, EXIT_OK);
        stdout(&out)
    };
    let top = help(&["--help"]);
    crate::support::snapshot_settings().bind(|| insta::assert_snapshot!("help", top));
    assert_eq!(
        top.lines().next(),
        Some("hoist: deploy a Python web app to its servers and back, atomically, over plain SSH"),
        "{top}"
    );
    let adopt = help(&["adopt", "--help"]);
    assert!(
        adopt.starts_with("Adopt hosts deployed with a builds/<timestamp> + current layout"),
        "{adopt}"
    );
    for (command, text) in [("--help", &top), ("adopt --help", &adopt)] {
        assert!(
            !text.to_lowercase().contains("seed"),
            "hoist {command}:\n{text}"
        );
        assert!(!text.contains("clap"), "hoist {command}:\n{text}");
    }
}
