//! `hoist import ansible`: an Ansible directory (`hoist-config/tests/fixtures/ansible`) becomes a hoist.toml that hoist accepts.

use std::path::{Path, PathBuf};

use assert_cmd::Command;

fn ansible_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../hoist-config/tests/fixtures/ansible")
}

fn hoist(dir: &Path) -> Command {
    let mut cmd = Command::cargo_bin("hoist").unwrap();
    cmd.current_dir(dir).env("NO_COLOR", "1");
    cmd
}

#[test]
fn prints_the_toml_and_notes_what_it_left_out() {
    let dir = tempfile::tempdir().unwrap();
    let out = hoist(dir.path())
        .args(["import", "ansible"])
        .arg(ansible_dir())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stdout.contains("[hosts.\"notes1.example.org\"]\naddress = \"notes1.example.org\"\ngroups = [\"web\"]\n"),
        "{stdout}"
    );
    assert!(stdout.contains("releases_dir = \"builds\""), "{stdout}");
    assert!(
        stderr.contains("note: group_vars/all: project_source = \"{{ playbook_dir }}/..\" uses Jinja and is not converted"),
        "{stderr}"
    );
    assert!(
        !dir.path().join("hoist.toml").exists(),
        "printing writes nothing"
    );
}

#[test]
fn write_creates_hoist_toml_once() {
    let dir = tempfile::tempdir().unwrap();
    hoist(dir.path())
        .args(["import", "ansible", "--write"])
        .arg(ansible_dir())
        .assert()
        .success();
    let written = std::fs::read_to_string(dir.path().join("hoist.toml")).unwrap();
    let config = hoist_config::parse(&dir.path().join("hoist.toml"), &written).unwrap();
    assert_eq!(config.environment(None).unwrap().name, "production");

    let again = hoist(dir.path())
        .args(["import", "ansible", "--write"])
        .arg(ansible_dir())
        .output()
        .unwrap();
    assert_eq!(again.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&again.stderr).contains("error: hoist.toml already exists"));
    assert_eq!(
        std::fs::read_to_string(dir.path().join("hoist.toml")).unwrap(),
        written
    );
}

#[test]
fn a_directory_without_an_inventory_is_refused_with_a_hint() {
    let dir = tempfile::tempdir().unwrap();
    let out = hoist(dir.path())
        .args(["import", "ansible", "."])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("error: no Ansible inventory in . (looked for hosts, inventory, hosts.ini, inventory.ini)"), "{stderr}");
    assert!(
        stderr.contains("hint: pass it: hoist import ansible <dir> --inventory <file>"),
        "{stderr}"
    );
}
