//! `hoist import circleci` on a CircleCI config and a mis-indented copy of it
//! (`hoist-pipeline/tests/fixtures/circleci`).

use assert_cmd::Command;
use std::path::{Path, PathBuf};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../hoist-pipeline/tests/fixtures/circleci")
}

#[test]
fn the_misindented_config_is_refused_at_line_43() {
    let out = Command::cargo_bin("hoist")
        .unwrap()
        .env("NO_COLOR", "1")
        .args(["import", "circleci"])
        .arg(fixtures().join("misindented.yml"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8(out.stderr).unwrap();
    let first = stderr.lines().next().unwrap();
    assert!(first.starts_with("error: ") && first.ends_with("misindented.yml:43:7: not valid YAML: while parsing a block mapping, did not find expected key"), "{stderr}");
    assert!(out.stdout.is_empty());
}

#[test]
fn the_corrected_config_is_written_into_hoist_toml_with_its_notes() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("hoist.toml"), "[app]\nname = \"x\"\n").unwrap();
    std::fs::write(dir.path().join("requirements.txt"), "flask\n").unwrap();
    let out = Command::cargo_bin("hoist")
        .unwrap()
        .current_dir(dir.path())
        .env("NO_COLOR", "1")
        .env_remove("HOIST_CONFIG")
        .args(["import", "circleci", "--write"])
        .arg(fixtures().join("config.yml"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(stderr.contains("note: job build, step 3 (Set up the virtualenv): removed `pip install ansible`: only the Ansible deploy needed it\n"), "{stderr}");
    assert!(stderr.contains("note: job build, step 3 (Set up the virtualenv): added `pip install pytest`: a later step runs pytest, which requirements.txt does not install (no requirements file lists it)\n"), "{stderr}");
    assert!(
        stderr.ends_with("wrote the pipeline to hoist.toml; run it with: hoist ci run\n"),
        "{stderr}"
    );
    let written = std::fs::read_to_string(dir.path().join("hoist.toml")).unwrap();
    assert!(
        written.starts_with("[app]\nname = \"x\"\n\n# Imported from "),
        "{written}"
    );
    Command::cargo_bin("hoist")
        .unwrap()
        .current_dir(dir.path())
        .env_remove("HOIST_CONFIG")
        .args(["ci", "jobs"])
        .assert()
        .success()
        .stdout("build  8 step(s); only master; services postgres\n");
    // A second import would overwrite the first: refused.
    Command::cargo_bin("hoist")
        .unwrap()
        .current_dir(dir.path())
        .env("NO_COLOR", "1")
        .env_remove("HOIST_CONFIG")
        .args(["import", "circleci", "--write"])
        .arg(fixtures().join("config.yml"))
        .assert()
        .code(2);
}
