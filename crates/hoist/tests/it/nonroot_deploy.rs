//! A whole deploy as a deploy user who is not root, over the testkit's sshd: the user
//! `hoist-deploy` owns the release root, builds the environment with the host's own Debian
//! `python3` (venv + pip; the tests' uv and Python live under /root, out of its reach), and
//! restarts the app through `sudo -n supervisorctl` (`become = true`) on a supervisord whose
//! socket only root may use. And the same user without a sudoers rule: refused before anything
//! moves, with the line to add, the live release still serving.

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::support::{assert_exit, free_port, http_get, stderr, EXIT_BEFORE_SWITCH, EXIT_OK};
use hoist_testkit::{login_user, open_to_other_users, Health, Hosts, ProcessGuard, SiteBuilder};

/// The uid of a login user.
fn uid_of(user: &str) -> u32 {
    let out = Command::new("id").args(["-u", user]).output().unwrap();
    String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
}

fn chown(user: &str, path: &Path) {
    let done = Command::new("chown")
        .arg(format!("{user}:{user}"))
        .arg(path)
        .status()
        .unwrap();
    assert!(done.success(), "chown {user} {}", path.display());
}

/// A project under git (deploys name their commit).
fn git(project: &Path, args: &[&str]) {
    let out = Command::new("git")
        .arg("-C")
        .arg(project)
        .args([
            "-c",
            "user.name=Test",
            "-c",
            "user.email=test@example.invalid",
        ])
        .args(args)
        .output()
        .unwrap();
    assert!(out.status.success(), "git {args:?}: {out:?}");
}

fn commit(project: &Path, message: &str) {
    git(project, &["add", "-A"]);
    git(project, &["commit", "-q", "--allow-empty", "-m", message]);
}

fn change_code(project: &Path, marker: &str) {
    let path = project.join("app.py");
    let mut text = fs::read_to_string(&path).unwrap();
    text.push_str(&format!("\n# change {marker}\n"));
    fs::write(&path, text).unwrap();
    commit(project, &format!("code change {marker}"));
}

fn hoist(config: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_hoist"))
        .arg("--config")
        .arg(config)
        .args(args)
        .env("NO_COLOR", "1")
        .env("HOIST_WHO", "tester@ci")
        .output()
        .unwrap()
}

fn current(root: &Path) -> Option<String> {
    let target = fs::read_link(root.join("current")).ok()?;
    Some(target.file_name()?.to_string_lossy().into_owned())
}

fn serving(port: u16) -> Option<String> {
    let body = http_get(port, "/version")?;
    let v: serde_json::Value = serde_json::from_str(&body).ok()?;
    v["release"].as_str().map(str::to_string)
}

/// The user a process runs as, from `/proc/<pid>/status`.
fn process_uid(pid: u32) -> Option<u32> {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("Uid:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

#[test]
fn a_deploy_user_who_is_not_root_deploys_restarts_through_sudo_and_rolls_back() {
    login_user("hoist-deploy", true);
    let deployer = uid_of("hoist-deploy");
    let site = SiteBuilder::new()
        .prefix("hoist-nonroot-")
        .hosts(Hosts::Ssh(1))
        .build();
    open_to_other_users(site.server.as_ref().unwrap());
    let base = site.dir.path().to_path_buf();
    fs::set_permissions(&base, fs::Permissions::from_mode(0o755)).unwrap();
    let root = site.roots[0].clone();
    chown("hoist-deploy", &root);
    let port = free_port();

    // supervisord as root, its socket root's alone: only sudo reaches it.
    for dir in ["supervisor.d", "program-logs"] {
        fs::create_dir_all(base.join(dir)).unwrap();
    }
    let conf = base.join("supervisord.conf");
    fs::write(
        &conf,
        format!(
            "[unix_http_server]\nfile={b}/supervisor.sock\nchmod=0700\n\n[supervisord]\nlogfile={b}/supervisord.log\npidfile={b}/supervisord.pid\nnodaemon=true\n\n[rpcinterface:supervisor]\nsupervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface\n\n[supervisorctl]\nserverurl=unix://{b}/supervisor.sock\n\n[include]\nfiles = {b}/supervisor.d/*.conf\n",
            b = base.display()
        ),
    )
    .unwrap();
    let _supervisord = ProcessGuard::spawn(
        Command::new("supervisord")
            .arg("-c")
            .arg(&conf)
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
        "supervisord",
        "supervisor",
    )
    .grace(Duration::from_secs(40));
    let ctl = |args: &[&str]| {
        let out = Command::new("supervisorctl")
            .arg("-c")
            .arg(&conf)
            .args(args)
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while ctl(&["pid"]).trim().parse::<u32>().is_err() {
        assert!(Instant::now() < deadline, "supervisord did not start");
        std::thread::sleep(Duration::from_millis(100));
    }

    let ssh_config = site.server.as_ref().unwrap().client_config.clone();
    fs::write(
        &site.config,
        format!(
            r#"[app]
name = "example"
entry = "app:app"
requirements = ["requirements.txt"]
exclude = ["tests/", "requirements-dev.txt", "instance/settings.toml", "instance/*.sqlite3"]

[release]
root = "/srv/unused"
keep_releases = 3
shared = ["instance/settings.toml", "logs/", "run/"]

[[process]]
name = "web"
restart = "supervisor"
program = "example-web"
timeout = "60s"

[health]
url = "http://127.0.0.1:{port}/health"
status = 200
body = "ok"
timeout = "30s"
interval = "100ms"

[setup]
server = "gunicorn"
port = {port}
workers = 2
nginx = false
user = "hoist-deploy"
supervisor_dir = "{b}/supervisor.d"
program_log_dir = "{b}/program-logs"
supervisor_conf = "{b}/supervisord.conf"

[ssh]
config_file = "{ssh}"
connect_timeout = "2s"

[hosts.web1]
address = "web1"
root = "{root}"
groups = ["web"]
user = "hoist-deploy"
become = true
python = "/usr/bin/python3"

[environments.production]
groups = ["web"]
"#,
            b = base.display(),
            ssh = ssh_config.display(),
            root = root.display(),
        ),
    )
    .unwrap();
    git(&site.project, &["init", "-q", "-b", "main"]);
    commit(&site.project, "initial");

    let out = hoist(&site.config, &["setup", "production", "--apply"]);
    assert_exit(&out, EXIT_OK);

    let out = hoist(&site.config, &["deploy", "production"]);
    assert_exit(&out, EXIT_OK);
    let a = current(&root).expect("current after the first deploy");
    assert_eq!(serving(port).as_deref(), Some(a.as_str()), "/version");
    // Built by the host's Debian python3 with pip, as the deploy user: uv is root's here.
    let env = fs::canonicalize(root.join("releases").join(&a).join(".venv")).unwrap();
    let mark = fs::read_to_string(env.join(".hoist-complete")).unwrap();
    assert!(
        mark.contains("\"executable\": \"/usr/bin/python3\""),
        "{mark}"
    );
    assert!(mark.contains("\"name\": \"pip\""), "{mark}");
    // Everything hoist wrote belongs to the deploy user; the server runs as it too.
    for path in [
        root.join("releases").join(&a),
        root.join("releases").join(&a).join("RELEASE.json"),
        root.join("releases").join(&a).join("app.py"),
        env.clone(),
        env.join("bin/python"),
        root.join("current"),
        root.join(".hoist/journal.jsonl"),
        root.join("shared/run"),
    ] {
        let meta = fs::symlink_metadata(&path).unwrap();
        assert_eq!(meta.uid(), deployer, "owner of {}", path.display());
    }
    let status = ctl(&["status", "example-web"]);
    let pid: u32 = status
        .split_whitespace()
        .skip_while(|w| *w != "pid")
        .nth(1)
        .and_then(|p| p.trim_end_matches(',').parse().ok())
        .unwrap_or_else(|| panic!("example-web is not running: {status}"));
    assert_eq!(process_uid(pid), Some(deployer), "the app server's user");

    change_code(&site.project, "b");
    let out = hoist(&site.config, &["deploy", "production"]);
    assert_exit(&out, EXIT_OK);
    let b = current(&root).unwrap();
    assert_ne!(a, b);
    assert_eq!(serving(port).as_deref(), Some(b.as_str()), "/version");

    let out = hoist(&site.config, &["rollback", "production"]);
    assert_exit(&out, EXIT_OK);
    assert_eq!(current(&root).as_deref(), Some(a.as_str()));
    assert_eq!(serving(port).as_deref(), Some(a.as_str()), "/version");
    assert_eq!(
        fs::symlink_metadata(root.join("current")).unwrap().uid(),
        deployer,
        "the rolled-back `current`"
    );
}

#[test]
fn a_deploy_user_without_a_sudoers_rule_is_refused_before_the_switch_with_the_line_to_add_and_so_is_a_rollback(
) {
    login_user("hoist-nosudo", false);
    // First deployed without `become`: the user restarts its own gunicorn (a command).
    let site = SiteBuilder::new()
        .prefix("hoist-nosudo-")
        .hosts(Hosts::Ssh(1))
        .installer("auto")
        .requirements()
        .exclude("requirements-dev.txt")
        .health(Health::Command(
            "curl -fsS http://127.0.0.1:{port}/health".into(),
        ))
        .health_timeout("30s")
        .restart_timeout("60s")
        .extra("[groups.web]\nuser = \"hoist-nosudo\"\npython = \"/usr/bin/python3\"\n")
        .build();
    open_to_other_users(site.server.as_ref().unwrap());
    fs::set_permissions(site.dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
    let root: PathBuf = site.roots[0].clone();
    chown("hoist-nosudo", &root);
    let port = site.ports[0];
    let _stop = StopWeb(root.clone());
    git(&site.project, &["init", "-q", "-b", "main"]);
    commit(&site.project, "initial");

    let out = hoist(&site.config, &["deploy", "production"]);
    assert_exit(&out, EXIT_OK);
    // A second release, so that a rollback has a target.
    change_code(&site.project, "a2");
    let out = hoist(&site.config, &["deploy", "production"]);
    assert_exit(&out, EXIT_OK);
    let live = current(&root).unwrap();
    assert_eq!(serving(port).as_deref(), Some(live.as_str()));

    // The team turns `become` on; the host has no rule for the user.
    let text = fs::read_to_string(&site.config).unwrap().replace(
        "user = \"hoist-nosudo\"\n",
        "user = \"hoist-nosudo\"\nbecome = true\n",
    );
    fs::write(&site.config, text).unwrap();
    change_code(&site.project, "b");
    let started = Instant::now();
    let out = hoist(&site.config, &["deploy", "production"]);
    assert_exit(&out, EXIT_BEFORE_SWITCH);
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "sudo was waited on: {:?}",
        started.elapsed()
    );
    let err = stderr(&out);
    assert!(
        err.contains("web1: sudo asks hoist-nosudo for a password to run commands as root, and hoist never waits for one; add this line to /etc/sudoers.d/hoist on the host (with `visudo -f /etc/sudoers.d/hoist`): hoist-nosudo ALL=(root) NOPASSWD: ALL\n"),
        "{err}"
    );
    assert!(
        err.contains("hint: add that line, or set become = false for this host if its login user may restart the app's processes itself\n"),
        "{err}"
    );
    assert_eq!(current(&root).as_deref(), Some(live.as_str()));
    assert_eq!(serving(port).as_deref(), Some(live.as_str()));
    let releases: Vec<_> = fs::read_dir(root.join("releases"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(releases.len(), 2, "nothing uploaded: {releases:?}");

    // A rollback asks sudo before it switches too (its restart would need it).
    let out = hoist(&site.config, &["rollback", "production"]);
    assert_exit(&out, EXIT_BEFORE_SWITCH);
    let err = stderr(&out);
    assert!(
        err.contains("web1: sudo asks hoist-nosudo for a password to run commands as root, and hoist never waits for one; add this line to /etc/sudoers.d/hoist on the host (with `visudo -f /etc/sudoers.d/hoist`): hoist-nosudo ALL=(root) NOPASSWD: ALL\n"),
        "{err}"
    );
    assert!(
        err.contains(
            "hint: nothing was switched: every host still serves the release it served before\n"
        ),
        "{err}"
    );
    assert_eq!(current(&root).as_deref(), Some(live.as_str()));
    assert_eq!(serving(port).as_deref(), Some(live.as_str()));
}

/// Stops the gunicorn a `command` restart started over SSH (its pid file is in the root).
struct StopWeb(PathBuf);

impl Drop for StopWeb {
    fn drop(&mut self) {
        let _ = Command::new(hoist_testkit::example_dir().join("bin/stop-web"))
            .env("HOIST_ROOT", &self.0)
            .env("HOIST_STOP_TIMEOUT", "10")
            .output();
    }
}
