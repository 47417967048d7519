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

#[test]
fn become_is_mapped_from_the_inventory_and_the_playbooks() {
    let ansible = tempfile::tempdir().unwrap();
    std::fs::write(
        ansible.path().join("hosts"),
        "[web]\nweb1\n\n[web:vars]\nansible_user=deploy\nansible_become=yes\nansible_become_user=www-data\n\n[worker]\nworker1 ansible_become_pass=hunter2\n",
    )
    .unwrap();
    std::fs::write(
        ansible.path().join("deployment.yml"),
        "---\n- name: Deploy the workers\n  hosts: worker\n  roles:\n    - { role: deploy, become: yes }\n",
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out = hoist(dir.path())
        .args(["import", "ansible", "--write"])
        .arg(ansible.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let written = std::fs::read_to_string(dir.path().join("hoist.toml")).unwrap();
    assert!(
        written.contains(
            "[groups.web]\nuser = \"deploy\"\nbecome = true\nbecome_user = \"www-data\"\n"
        ),
        "{written}"
    );
    assert!(
        written.contains("[groups.worker]\nbecome = \"all\"\n"),
        "{written}"
    );
    assert!(!written.contains("hunter2"), "{written}");
    assert!(
        stderr.contains("note: host worker1: ansible_become_pass is not converted: hoist never types a sudo password"),
        "{stderr}"
    );
    assert!(
        stderr.contains("note: deployment.yml: the play for worker runs its roles with become, so every step of the deploy ran as root: become = \"all\" does the same"),
        "{stderr}"
    );

    let config = hoist_config::parse(&dir.path().join("hoist.toml"), &written).unwrap();
    let hosts = config.environment(None).unwrap().hosts;
    let modes: Vec<_> = hosts
        .iter()
        .map(|h| (h.name.as_str(), h.become_mode, h.become_user.as_str()))
        .collect();
    assert_eq!(
        modes,
        [
            ("web1", hoist_config::BecomeMode::Service, "www-data"),
            ("worker1", hoist_config::BecomeMode::All, "root"),
        ]
    );
}
