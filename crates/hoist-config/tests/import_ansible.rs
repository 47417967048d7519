//! `hoist import ansible`: a `builds/` + `current` deployment's files (`tests/fixtures/ansible`), and an inventory with several groups, per-host
//! ports and users. Every output must be a hoist.toml that hoist accepts.

use std::path::{Path, PathBuf};
use std::time::Duration;

use hoist_config::{import_ansible, Activation, BecomeMode, Config};

fn ansible_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/ansible")
}

/// Writes `toml` as hoist.toml in a fresh directory and loads it as hoist does.
fn accepted(toml: &str) -> (tempfile::TempDir, Config) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("hoist.toml");
    std::fs::write(&path, toml).unwrap();
    let config = hoist_config::load(&path)
        .unwrap_or_else(|e| panic!("hoist refuses the imported file: {e}\n{toml}"));
    (dir, config)
}

#[test]
fn a_one_group_inventory_becomes_one_production_environment() {
    let dir = ansible_dir();
    let inventory = std::fs::read_to_string(dir.join("hosts")).unwrap();
    let vars = std::fs::read_to_string(dir.join("group_vars/all")).unwrap();
    let import = import_ansible("hosts", &inventory, Some(&vars)).unwrap();
    assert_eq!(
        import.toml,
        r#"# Converted from an Ansible inventory and group_vars/all by `hoist import ansible`.
# docs/config.md describes every key.

[app]
name = "notes"
# Ansible does not say which WSGI/ASGI object to serve: check this.
entry = "app:app"

[release]
root = "/srv/notes"
releases_dir = "builds"
current_link = "current"
keep_releases = 4

[hosts."notes1.example.org"]
address = "notes1.example.org"
groups = ["web"]

[groups.web]
user = "deploy"
identity_file = "~/.ssh/deploy_ed25519"

[environments.production]
groups = ["web"]
"#
    );
    assert_eq!(
        import.notes,
        [
            "group_vars/all: excludes_file = \"{{ playbook_dir }}/rsync_excludes\" uses Jinja and is not converted: copy its patterns into app.exclude (hoist already leaves out .git and what .gitignore ignores)",
            "group_vars/all: project_source = \"{{ playbook_dir }}/..\" uses Jinja and is not converted: hoist deploys the directory that holds hoist.toml (set app.source to change it)",
            "app.name \"notes\" and app.entry \"app:app\" are guesses: Ansible's files do not name the application; set them",
        ]
    );

    let (_dir, config) = accepted(&import.toml);
    assert_eq!(config.release.releases_dir, "builds");
    assert_eq!(config.release.keep_releases, 4);
    let env = config.environment(None).unwrap();
    assert_eq!(env.name, "production");
    assert_eq!(env.hosts.len(), 1);
    let host = &env.hosts[0];
    assert_eq!(host.name, "notes1.example.org");
    assert_eq!(host.user.as_deref(), Some("deploy"));
    assert_eq!(host.root, PathBuf::from("/srv/notes"));
    let home = std::env::var("HOME").unwrap();
    assert_eq!(
        host.identity_file,
        Some(PathBuf::from(home).join(".ssh/deploy_ed25519"))
    );
}

const FLEET: &str = "\
# Production fleet
bastion.example.com ansible_user=ops

[web]
web[01:02].example.com ansible_user=www
web03 ansible_host=10.0.0.13 ansible_port=2222 ansible_user=deploy workers=8

[worker]
q1 ansible_host=10.0.1.5 ansible_port=2200
q2 ansible_host=10.0.1.6

[worker:vars]
ansible_user=celery
ansible_ssh_private_key_file=keys/worker
queue=default
ansible_become=true

[app:children]
web
worker
";

#[test]
fn several_groups_with_per_host_ports_and_users() {
    let import = import_ansible("inventory/production", FLEET, None).unwrap();
    let (_dir, config) = accepted(&import.toml);
    let env = config.environment(Some("production")).unwrap();
    assert_eq!(env.activation, Activation::All);
    let summary: Vec<String> = env
        .hosts
        .iter()
        .map(|h| {
            format!(
                "{} {} user={} port={} groups={}",
                h.name,
                h.address,
                h.user.as_deref().unwrap_or("-"),
                h.port.map_or("-".into(), |p| p.to_string()),
                h.groups.join(",")
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            "bastion.example.com bastion.example.com user=ops port=- groups=",
            "web01.example.com web01.example.com user=www port=- groups=web,app",
            "web02.example.com web02.example.com user=www port=- groups=web,app",
            "web03 10.0.0.13 user=deploy port=2222 groups=web,app",
            "q1 10.0.1.5 user=celery port=2200 groups=worker,app",
            "q2 10.0.1.6 user=celery port=- groups=worker,app",
        ]
    );
    let web03 = &env.hosts[3];
    assert_eq!(web03.vars["workers"], "8");
    let q2 = &env.hosts[5];
    assert_eq!(q2.vars["queue"], "default");
    assert_eq!(
        q2.identity_file,
        Some(config.dir.join("keys/worker")),
        "relative to hoist.toml"
    );
    assert_eq!(q2.connect_timeout, Duration::from_secs(10));

    assert!(
        import.toml.contains("[environments.production]\ngroups = [\"web\", \"worker\", \"app\"]\nhosts = [\"bastion.example.com\"]\n"),
        "{}",
        import.toml
    );
    // `ansible_become` is hoist's `become`, through `sudo -n` as Ansible's default method.
    let modes: Vec<BecomeMode> = env.hosts.iter().map(|h| h.become_mode).collect();
    assert_eq!(
        modes,
        [
            BecomeMode::Off,
            BecomeMode::Off,
            BecomeMode::Off,
            BecomeMode::Off,
            BecomeMode::Service,
            BecomeMode::Service,
        ]
    );
    assert!(
        !import.notes.iter().any(|n| n.contains("ansible_become")),
        "{:?}",
        import.notes
    );
    assert!(
        import
            .notes
            .iter()
            .any(|n| n.starts_with("no usable project_root")),
        "{:?}",
        import.notes
    );
}

#[test]
fn unreadable_lines_name_the_file_and_line() {
    let err = import_ansible("hosts", "[web]\nweb1\n[web:kids]\n", None).unwrap_err();
    assert_eq!(
        err.to_string(),
        "hosts:3: unknown section kind \":kids\"; Ansible knows :vars and :children"
    );
    let err = import_ansible("hosts", "[web]\nweb1 user\n", None).unwrap_err();
    assert_eq!(
        err.to_string(),
        "hosts:2: \"user\" after host \"web1\" is not key=value"
    );
    let err = import_ansible("hosts", "[web]\nweb[a:c]\n", None).unwrap_err();
    assert!(
        err.to_string()
            .starts_with("hosts:2: host pattern \"web[a:c]\": only numeric ranges"),
        "{err}"
    );
    let err = import_ansible("hosts", "[web]\nweb1\n", Some("- a\n- b\n")).unwrap_err();
    assert!(
        err.to_string()
            .starts_with("group_vars/all: not a YAML mapping"),
        "{err}"
    );
}
