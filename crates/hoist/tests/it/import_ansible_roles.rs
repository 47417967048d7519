//! `hoist import ansible` imports what the playbook's roles do, not only the inventory: the
//! `supervisorctl restart` becomes a `[[process]]` (the converted config would otherwise switch
//! `current` and restart nothing), rsync's excludes become `[app] exclude`, `keep_releases`
//! stays. Inline fixtures in the seed playbook's shape.

use std::fs;
use std::path::Path;
use std::process::Command;

use hoist_config::Restart;

fn write(dir: &Path, rel: &str, text: &str) {
    let path = dir.join(rel);
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, text).unwrap();
}

#[test]
fn the_roles_restart_and_excludes_are_imported() {
    let dir = tempfile::tempdir().unwrap();
    let ansible = dir.path().join("deploy");
    write(&ansible, "hosts", "[web]\nour.url.com\n");
    write(
        &ansible,
        "group_vars/all",
        "---\nproject_root: \"/srv/shop\"\nbuilds_dir: \"/srv/shop/builds\"\ncurrent_release_dir: \"/srv/shop/current\"\nexcludes_file: \"{{ playbook_dir }}/rsync_excludes\"\nkeep_releases: 5\n",
    );
    write(
        &ansible,
        "rsync_excludes",
        ".git\n*.pyc\n\n# local only\ninstance/\n",
    );
    write(
        &ansible,
        "roles/deploy/tasks/main.yml",
        "---\n- name: \"Rsync repo content to build directory\"\n  synchronize:\n    src: \"{{ project_source }}\"\n    dest: \"{{ build_dir }}\"\n    rsync_opts:\n      - \"--exclude-from={{ excludes_file }}\"\n\n- name: \"Reload UWSGI\"\n  supervisorctl:\n    name: \"uwsgi\"\n    state: restarted\n",
    );
    write(
        &ansible,
        "roles/revert_web_build/tasks/main.yml",
        "---\n- name: \"Restart uwsgi\"\n  command: \"supervisorctl restart uwsgi\"\n",
    );

    let out = Command::new(env!("CARGO_BIN_EXE_hoist"))
        .args(["import", "ansible"])
        .arg(&ansible)
        .env("NO_COLOR", "1")
        .current_dir(dir.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let toml = String::from_utf8(out.stdout).unwrap();
    assert!(
        !stderr.contains("restart no supervisor program"),
        "{stderr}"
    );

    // What a user gets is a config hoist accepts, with the restart and the excludes in it.
    let config_path = dir.path().join("hoist.toml");
    fs::write(&config_path, &toml).unwrap();
    let config = hoist_config::parse(&config_path, &toml).unwrap_or_else(|e| panic!("{e}\n{toml}"));
    assert_eq!(config.processes.len(), 1, "{toml}");
    assert_eq!(config.processes[0].name, "uwsgi");
    assert_eq!(
        config.processes[0].restart,
        Restart::Supervisor {
            program: "uwsgi".into()
        }
    );
    assert_eq!(config.app.exclude, [".git", "*.pyc", "instance/"]);
    assert_eq!(config.release.keep_releases, 5);
}
