//! `become` through the `hoist` binary: a deploy user who is not root, over the testkit's
//! sshd, with a real sudo and sudoers file. A missing rule is named at once, with the line to
//! add, as the user reads it.

use std::os::unix::fs::PermissionsExt;
use std::process::Output;

use crate::support::*;
use hoist_testkit::{login_user, open_to_other_users, Health, Hosts, SiteBuilder};

fn check_as(user: &str) -> (hoist_testkit::Site, Output) {
    let site = SiteBuilder::new()
        .prefix("hoist-become-")
        .hosts(Hosts::Ssh(1))
        .health(Health::Command("true".into()))
        .extra(&format!(
            "[groups.web]\nuser = \"{user}\"\nbecome = true\n\n[[process]]\nname = \"worker\"\nrestart = \"supervisor\"\nprogram = \"example-worker\"\n"
        ))
        .build();
    open_to_other_users(site.server.as_ref().unwrap());
    std::fs::set_permissions(site.dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_hoist"))
        .arg("--config")
        .arg(&site.config)
        .args(["check", "production"])
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    (site, out)
}

#[test]
fn a_missing_sudoers_rule_is_named_with_the_line_to_add() {
    login_user("hoist-nosudo", false);
    let (_site, out) = check_as("hoist-nosudo");
    let text = stdout(&out);
    assert!(
        text.contains("web1  FAILED restart worker: web1: sudo asks hoist-nosudo for a password to run commands as root, and hoist never waits for one; add this line to /etc/sudoers.d/hoist on the host (with `visudo -f /etc/sudoers.d/hoist`): hoist-nosudo ALL=(root) NOPASSWD: ALL\nweb1  hint: add that line, or set become = false for this host if its login user may run supervisorctl itself\n"),
        "{text}\n{}",
        stderr(&out)
    );
}

#[test]
fn with_the_rule_the_restart_is_probed_as_root() {
    login_user("hoist-deploy", true);
    let (_site, out) = check_as("hoist-deploy");
    let text = stdout(&out);
    assert!(!text.contains("sudo"), "{text}\n{}", stderr(&out));
    assert!(
        text.contains("web1  FAILED restart worker: supervisorctl cannot reach supervisord"),
        "{text}\n{}",
        stderr(&out)
    );
}

#[test]
fn a_hook_run_through_sudo_dies_with_a_killed_deploy() {
    login_user("hoist-deploy", true);
    let site = SiteBuilder::new()
        .prefix("hoist-become-kill-")
        .hosts(Hosts::Ssh(1))
        .installer("auto")
        .requirements()
        .exclude("requirements-dev.txt")
        .health(Health::Command("true".into()))
        .extra_hooks(
            "[[hook]]\nname = \"slow\"\nrun = \"echo $$ > \\\"$HOIST_ROOT/hook.pid\\\"; exec sleep 300\"\ntimeout = \"10m\"\n",
        )
        .extra(
            "[groups.web]\nuser = \"hoist-deploy\"\nbecome = \"all\"\npython = \"/usr/bin/python3\"\n",
        )
        .build();
    open_to_other_users(site.server.as_ref().unwrap());
    std::fs::set_permissions(site.dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let root = site.roots[0].clone();
    let mut deploy = std::process::Command::new(env!("CARGO_BIN_EXE_hoist"))
        .arg("--config")
        .arg(&site.config)
        .args(["deploy", "production"])
        .env("NO_COLOR", "1")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let pid_file = root.join("hook.pid");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(300);
    let hook: u32 = loop {
        if let Some(pid) = std::fs::read_to_string(&pid_file)
            .ok()
            .and_then(|t| t.trim().parse().ok())
        {
            break pid;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the deploy never reached its hook"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    // The hook runs as root, through sudo, which the login user's own kill cannot reach.
    let status = std::fs::read_to_string(format!("/proc/{hook}/status")).unwrap();
    assert!(
        status.lines().any(|l| l.starts_with("Uid:\t0\t")),
        "{status}"
    );
    deploy.kill().unwrap();
    deploy.wait().unwrap();

    assert_dies(hook, "the killed deploy's hook");
}

#[test]
fn on_this_machine_a_restart_run_through_sudo_dies_with_a_killed_deploy() {
    login_user("hoist-deploy", true);
    let site = SiteBuilder::new()
        .prefix("hoist-become-local-kill-")
        .hosts(Hosts::LocalRoots(1))
        .installer("auto")
        .requirements()
        .exclude("requirements-dev.txt")
        .health(Health::Command("true".into()))
        // A restart command after the web one: `become = true` runs it as root through sudo.
        .extra(
            "\n[[process]]\nname = \"slow\"\nrestart = \"command\"\ncommand = \"echo $$ > \\\"$HOIST_ROOT/hook.pid\\\"; exec sleep 300\"\ntimeout = \"10m\"\n",
        )
        .build();
    let root = site.roots[0].clone();
    let _stop = StopWeb(root.clone());
    let config = std::fs::read_to_string(&site.config).unwrap();
    std::fs::write(
        &site.config,
        format!(
            "{config}\n[hosts.here]\naddress = \"local\"\nroot = \"{}\"\ngroups = [\"web\"]\n\n[groups.web]\nbecome = true\npython = \"/usr/bin/python3\"\n\n[environments.production]\ngroups = [\"web\"]\n",
            root.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(site.dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let owned = std::process::Command::new("chown")
        .args(["-R", "hoist-deploy:hoist-deploy"])
        .arg(&root)
        .status()
        .unwrap();
    assert!(owned.success());
    // hoist itself runs as the deploy user (setpriv execs: the pid is hoist's).
    let mut deploy = std::process::Command::new("setpriv")
        .args([
            "--reuid=hoist-deploy",
            "--regid=hoist-deploy",
            "--init-groups",
            "--",
        ])
        .arg(env!("CARGO_BIN_EXE_hoist"))
        .arg("--config")
        .arg(&site.config)
        .args(["deploy", "production"])
        .current_dir(&site.project)
        .env("NO_COLOR", "1")
        .env("HOME", "/home/hoist-deploy")
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(site.dir.path().join("deploy.err")).unwrap())
        .spawn()
        .unwrap();
    let pid_file = root.join("hook.pid");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(300);
    let hook: u32 = loop {
        if let Some(pid) = std::fs::read_to_string(&pid_file)
            .ok()
            .and_then(|t| t.trim().parse().ok())
        {
            break pid;
        }
        if let Ok(Some(status)) = deploy.try_wait() {
            panic!(
                "the deploy ended ({status}) before its hook: {}",
                std::fs::read_to_string(site.dir.path().join("deploy.err")).unwrap_or_default()
            );
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the deploy never reached its hook"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    let status = std::fs::read_to_string(format!("/proc/{hook}/status")).unwrap();
    assert!(
        status.lines().any(|l| l.starts_with("Uid:\t0\t")),
        "{status}"
    );
    deploy.kill().unwrap();
    deploy.wait().unwrap();

    assert_dies(hook, "the killed deploy's restart command");
}

/// Stops the gunicorn the web process's restart command started (its pid file is in the root).
struct StopWeb(std::path::PathBuf);

impl Drop for StopWeb {
    fn drop(&mut self) {
        let _ = std::process::Command::new(hoist_testkit::example_dir().join("bin/stop-web"))
            .env("HOIST_ROOT", &self.0)
            .env("HOIST_STOP_TIMEOUT", "10")
            .output();
    }
}
