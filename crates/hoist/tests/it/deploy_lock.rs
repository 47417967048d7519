//! Invariant 7: one deploy at a time, the holder named, `--lock-wait`, hand-made locks.

use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::support::*;

#[test]
fn a_second_deploy_fails_on_the_lock_naming_the_holder_or_waits_with_lock_wait() {
    let site = gated_site();
    site.deploy_ok();
    site.change_code("concurrent");

    hold(&site.root, 1);
    let first = site.command(&["deploy"]).spawn_output();
    wait_in_hook(&site.root, 0);
    // Only the first deploy stops in its hook.
    std::fs::remove_file(site.root.join("hold")).unwrap();
    let out = site.hoist(&["deploy"]);
    assert_exit(&out, EXIT_LOCK_HELD);
    let err = stderr(&out);
    assert!(
        err.contains("error: local: another deploy holds the lock: held by tester@"),
        "{err}"
    );
    assert!(err.contains(&format!("(pid {})", first.pid)), "{err}");
    assert!(err.contains("for `hoist --config"), "{err}");
    assert!(
        err.contains("hint: wait for it, or pass --lock-wait 5m to queue behind it"),
        "{err}"
    );

    // The same, queued behind it: says it waits, and succeeds once the first one is done.
    let waiter_log = site.dir.path().join("waiter.stderr");
    let waiter = site
        .command(&["deploy", "--lock-wait", "2m"])
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&waiter_log).unwrap())
        .spawn()
        .unwrap();
    let waiter = Background {
        pid: waiter.id(),
        handle: Some(std::thread::spawn(move || {
            waiter.wait_with_output().unwrap()
        })),
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    while !std::fs::read_to_string(&waiter_log)
        .unwrap()
        .contains("waiting for the lock: held by tester@")
    {
        assert!(Instant::now() < deadline, "the waiter never said it waits");
        std::thread::sleep(Duration::from_millis(20));
    }
    open_gate(&site.root, 0);
    assert_exit(&first.join(), EXIT_OK);
    assert_exit(&waiter.join(), EXIT_OK);
    site.assert_live(&site.current().unwrap());
    assert_eq!(
        site.journal()
            .iter()
            .filter(|e| e["event"] == "deploy_succeeded")
            .count(),
        3
    );
}

#[test]
fn a_hand_made_lock_stops_deploys_until_released() {
    let site = Site::new();
    let a = site.deploy_ok();
    let out = site.hoist(&["lock", "acquire", "-m", "database maintenance"]);
    assert_exit(&out, EXIT_OK);
    assert!(stdout(&out).contains("database maintenance"));

    site.change_code("during maintenance");
    let out = site.hoist(&["deploy"]);
    assert_exit(&out, EXIT_LOCK_HELD);
    // Not "another deploy (pid 0)": who took it by hand, and why.
    let err = stderr(&out);
    assert!(
        err.contains("error: local: the deploy lock is taken by hand by tester@"),
        "{err}"
    );
    assert!(err.contains(": database maintenance"), "{err}");
    assert!(!err.contains("pid"), "{err}");
    let out = site.hoist(&["rollback"]);
    assert_exit(&out, EXIT_LOCK_HELD);
    site.assert_live(&a);

    let status = site.hoist(&["status"]);
    assert!(
        stdout(&status).contains("lock:     taken by hand by tester@"),
        "{}",
        stdout(&status)
    );

    let out = site.hoist(&["lock", "release"]);
    assert_exit(&out, EXIT_OK);
    assert!(stdout(&out)
        .starts_with("released the lock of example on local: it was taken by hand by tester@"));
    let b = site.deploy_ok();
    assert_ne!(a, b);
    assert!(stdout(&site.hoist(&["status"])).contains("lock:     free"));
}

#[test]
fn lock_release_refuses_a_running_deploy_unless_forced() {
    let site = gated_site();
    hold(&site.root, 1);
    let first = site.command(&["deploy"]).spawn_output();
    wait_in_hook(&site.root, 0);
    let out = site.hoist(&["lock", "release"]);
    assert_exit(&out, EXIT_LOCK_HELD);
    assert!(
        stderr(&out).contains("the lock belongs to a running deploy"),
        "{}",
        stderr(&out)
    );
    assert!(stderr(&out).contains("hint: if you are sure it is dead: hoist lock release --force"));
    assert!(site.lock_exists());
    let out = site.hoist(&["lock", "release", "--force"]);
    assert_exit(&out, EXIT_OK);
    assert!(!site.lock_exists());
    open_gate(&site.root, 0);
    // Forced out, it stops before its switch (this was its first deploy: nothing is live).
    assert_exit(&first.join(), EXIT_BEFORE_SWITCH);
    assert_eq!(site.current(), None);
}

/// A hook that, while `<root>/hold` exists, records its pid in `<root>/hook.<n>.pid` (n counts
/// the deploys held so far) and then blocks until the test opens the fifo `<root>/gate.<n>`:
/// an explicit gate, no sleeps.
const GATED_HOOK: &str = r#"[[hook]]
name = "gated"
run = '''
if [ -e "$HOIST_ROOT/hold" ]; then
  n=$(ls "$HOIST_ROOT" | grep -c '^hook\..*\.pid$' || true)
  sleep 600 & echo $! > "$HOIST_ROOT/hook.$n.pid"
  cat "$HOIST_ROOT/gate.$n" > /dev/null
  kill $! 2>/dev/null || true
fi
'''
"#;

fn gated_site() -> Site {
    Site::with(SiteOptions {
        extra_hooks: GATED_HOOK.into(),
        ..SiteOptions::default()
    })
}

/// Makes the next `n` deploys stop in their gated hook.
fn hold(root: &std::path::Path, n: usize) {
    std::fs::create_dir_all(root).unwrap();
    std::fs::write(root.join("hold"), "").unwrap();
    for i in 0..n {
        let fifo = root.join(format!("gate.{i}"));
        let ok = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap();
        assert!(ok.success(), "mkfifo {}", fifo.display());
    }
}

/// Waits (with a deadline) until the `n`-th held deploy is inside its hook; returns the pid of
/// the process the hook started.
fn wait_in_hook(root: &std::path::Path, n: usize) -> u32 {
    let file = root.join(format!("hook.{n}.pid"));
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        if let Ok(text) = std::fs::read_to_string(&file) {
            if let Ok(pid) = text.trim().parse() {
                return pid;
            }
        }
        assert!(
            Instant::now() < deadline,
            "deploy #{n} never reached its hook"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Lets the `n`-th held deploy go on.
fn open_gate(root: &std::path::Path, n: usize) {
    drop(
        std::fs::OpenOptions::new()
            .write(true)
            .open(root.join(format!("gate.{n}")))
            .unwrap(),
    );
}

fn write_foreign_lock(site: &Site, heartbeat_age: Duration) {
    let lock = site.root.join(".hoist/lock");
    std::fs::create_dir_all(&lock).unwrap();
    std::fs::write(
        lock.join("owner.json"),
        r#"{"pid": 4242, "host": "laptop", "user": "alice", "started": "2026-11-26T16:18:45Z",
            "command": "hoist deploy", "machine": "another-machine/another-boot/pid:[1]",
            "lease_secs": 30}"#,
    )
    .unwrap();
    std::fs::write(lock.join("token"), "someone-else").unwrap();
    let heartbeat = std::fs::File::create(lock.join("heartbeat")).unwrap();
    heartbeat
        .set_modified(std::time::SystemTime::now() - heartbeat_age)
        .unwrap();
}

#[test]
fn a_lock_from_another_machine_is_held_while_its_lease_runs_and_reclaimed_once_it_expired() {
    let site = Site::new();
    let a = site.deploy_ok();

    // Renewed 5 s ago: its holder on another machine is alive, whatever its pid means here.
    write_foreign_lock(&site, Duration::from_secs(5));
    site.change_code("while alice deploys");
    let out = site.hoist(&["deploy"]);
    assert_exit(&out, EXIT_LOCK_HELD);
    assert!(
        stderr(&out).contains("another deploy holds the lock: held by alice@laptop (pid 4242)"),
        "{}",
        stderr(&out)
    );
    site.assert_live(&a);

    // No heartbeat for two minutes, by the host's own clock: the lease has expired, and
    // `status` says so (not "that process is gone": no one here can see that process).
    write_foreign_lock(&site, Duration::from_secs(120));
    let status = stdout(&site.hoist(&["status"]));
    assert!(
        status.contains(
            "[stale: its lease expired: no heartbeat from its holder; the next deploy reclaims it]"
        ),
        "{status}"
    );
    let out = site.hoist(&["deploy"]);
    assert_exit(&out, EXIT_OK);
    assert!(
        stderr(&out).contains("reclaiming a stale lock: held by alice@laptop (pid 4242) since")
            && stderr(&out).contains("(its lease expired: no heartbeat from its holder)"),
        "{}",
        stderr(&out)
    );
    let b = site.current().unwrap();
    assert_ne!(a, b);
    site.assert_live(&b);
    assert!(!site.lock_exists());
}

#[test]
fn a_killed_deploy_s_lock_is_reclaimed_at_once_and_its_hook_does_not_survive_it() {
    let site = gated_site();
    let a = site.deploy_ok();
    hold(&site.root, 1);
    site.change_code("killed in its hook");
    let mut first = site
        .command(&["deploy"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let hook = wait_in_hook(&site.root, 0);
    assert!(process_runs(hook));
    first.kill().unwrap();
    first.wait().unwrap();

    // Same machine, local root: its pid is gone, so the lock goes at once (no lease to wait).
    std::fs::remove_file(site.root.join("hold")).unwrap();
    let out = site.hoist(&["deploy"]);
    assert_exit(&out, EXIT_OK);
    assert!(
        stderr(&out).contains("reclaiming a stale lock")
            && stderr(&out).contains("(that process is gone)"),
        "{}",
        stderr(&out)
    );
    assert!(
        !process_runs(hook),
        "the killed deploy's hook (pid {hook}) still runs"
    );
    let b = site.current().unwrap();
    assert_ne!(a, b);
    site.assert_live(&b);
}

#[test]
fn a_deploy_forced_out_of_its_lock_neither_switches_nor_removes_the_next_deploy_s_lock() {
    let site = gated_site();
    let a = site.deploy_ok();
    hold(&site.root, 2);
    site.change_code("first, to be forced out");
    let first = site.command(&["deploy"]).spawn_output();
    wait_in_hook(&site.root, 0);

    let out = site.hoist(&["lock", "release", "--force"]);
    assert_exit(&out, EXIT_OK);
    site.change_code("second, holding the lock now");
    let second = site.command(&["deploy"]).spawn_output();
    wait_in_hook(&site.root, 1);

    // The first goes on: it must find that the lock is no longer its own.
    open_gate(&site.root, 0);
    let out = first.join();
    assert_exit(&out, EXIT_BEFORE_SWITCH);
    assert!(
        stderr(&out).contains(
            "local: this deploy lost its lock (released with `hoist lock release --force`"
        ),
        "{}",
        stderr(&out)
    );
    assert!(
        stderr(&out).contains("it is now held by tester@"),
        "{}",
        stderr(&out)
    );
    assert!(
        site.lock_exists(),
        "the first deploy removed the second's lock"
    );
    assert_eq!(site.current().as_deref(), Some(a.as_str()));

    open_gate(&site.root, 1);
    let out = second.join();
    assert_exit(&out, EXIT_OK);
    let b = site.current().unwrap();
    assert_ne!(a, b);
    site.assert_live(&b);
    assert!(!site.lock_exists());
}

/// A command running in the background, killed (with its process group's watcher doing the
/// rest) if the test ends before it is joined.
struct Background {
    pid: u32,
    handle: Option<std::thread::JoinHandle<std::process::Output>>,
}

impl Background {
    fn join(mut self) -> std::process::Output {
        self.handle.take().unwrap().join().unwrap()
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        if self.handle.is_some() {
            let _ = std::process::Command::new("kill")
                .args(["-9", &self.pid.to_string()])
                .status();
        }
    }
}

trait SpawnOutput {
    /// Runs the command in the background; join for its output.
    fn spawn_output(&mut self) -> Background;
}

impl SpawnOutput for std::process::Command {
    fn spawn_output(&mut self) -> Background {
        let child = self
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        Background {
            pid: child.id(),
            handle: Some(std::thread::spawn(move || {
                child.wait_with_output().unwrap()
            })),
        }
    }
}

/// One host reached over real SSH (an OpenSSH server on 127.0.0.1), its root on this machine.
struct SshSite {
    _server: hoist_testkit::SshServer,
    _dir: tempfile::TempDir,
    project: std::path::PathBuf,
    config: std::path::PathBuf,
    root: std::path::PathBuf,
}

impl SshSite {
    /// web1 over SSH (hoist-testkit's site builder), with the gated hook.
    fn new() -> SshSite {
        let site = hoist_testkit::SiteBuilder::new()
            .prefix("hoist-ssh-lock-")
            .hosts(hoist_testkit::Hosts::Ssh(1))
            .extra_hooks(GATED_HOOK)
            .health(hoist_testkit::Health::Command(
                "curl -fsS \"http://127.0.0.1:{port}/health\"".into(),
            ))
            .build();
        SshSite {
            _server: site.server.expect("an SSH site has its sshd"),
            _dir: site.dir,
            project: site.project,
            config: site.config,
            root: site.roots[0].clone(),
        }
    }

    fn command(&self, args: &[&str]) -> std::process::Command {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_hoist"));
        cmd.arg("--config")
            .arg(&self.config)
            .args(args)
            .env("HOIST_WHO", "tester@ci")
            .env("NO_COLOR", "1")
            .current_dir(&self.project);
        cmd
    }

    fn current(&self) -> Option<String> {
        let target = std::fs::read_link(self.root.join("current")).ok()?;
        Some(target.file_name()?.to_string_lossy().into_owned())
    }
}

impl Drop for SshSite {
    fn drop(&mut self) {
        let _ = std::process::Command::new(example_dir().join("bin/stop-web"))
            .env("HOIST_ROOT", &self.root)
            .env("HOIST_STOP_TIMEOUT", "10")
            .output();
    }
}

#[test]
fn over_ssh_a_second_deploy_waits_for_a_live_first_one_whatever_its_pid_means_on_the_host() {
    let site = SshSite::new();
    let out = site.command(&["deploy", "production"]).output().unwrap();
    assert_exit(&out, EXIT_OK);
    let a = site.current().unwrap();

    // The first deploy runs as another controller would: its pid (2, in a pid namespace of its
    // own) names some other process on the host, or none.
    hold(&site.root, 1);
    let hoist = env!("CARGO_BIN_EXE_hoist");
    let first = std::process::Command::new("unshare")
        .args([
            "--pid",
            "--fork",
            "--kill-child",
            "sh",
            "-c",
            "\"$0\" \"$@\"; exit $?",
        ])
        .arg(hoist)
        .arg("--config")
        .arg(&site.config)
        .args(["deploy", "production"])
        .env("HOIST_WHO", "first@laptop")
        .env("NO_COLOR", "1")
        .current_dir(&site.project)
        .spawn_output();
    wait_in_hook(&site.root, 0);

    let out = site.command(&["deploy", "production"]).output().unwrap();
    assert_exit(&out, EXIT_LOCK_HELD);
    assert!(
        stderr(&out).contains("web1: another deploy holds the lock: held by first@")
            && stderr(&out).contains("(pid 2)"),
        "{}",
        stderr(&out)
    );
    assert_eq!(site.current().as_deref(), Some(a.as_str()));

    open_gate(&site.root, 0);
    let out = first.join();
    assert_exit(&out, EXIT_OK);
    let b = site.current().unwrap();
    assert_ne!(a, b);
    assert!(!site.root.join(".hoist/lock").exists());
}

#[test]
fn sigterm_or_ctrl_c_during_a_deploy_releases_the_lock_and_leaves_the_live_release_alone() {
    let site = gated_site();
    let a = site.deploy_ok();
    hold(&site.root, 2);
    for (n, signal) in ["TERM", "INT"].iter().enumerate() {
        site.change_code(&format!("interrupted by SIG{signal}"));
        let deploy = site.command(&["deploy"]).spawn_output();
        wait_in_hook(&site.root, n);
        let sent = std::process::Command::new("kill")
            .args([&format!("-{signal}"), &deploy.pid.to_string()])
            .status()
            .unwrap();
        assert!(sent.success());
        // The hook (blocked on its gate, which is never opened) is stopped, not waited for.
        let out = deploy.join();
        assert_exit(&out, EXIT_BEFORE_SWITCH);
        assert!(
            stderr(&out).contains("pre-switch hook \"gated\" was interrupted (Ctrl-C)"),
            "SIG{signal}: {}",
            stderr(&out)
        );
        let hook: u32 = std::fs::read_to_string(site.root.join(format!("hook.{n}.pid")))
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        assert!(
            !process_runs(hook),
            "SIG{signal}: the hook's child still runs"
        );
        assert!(!site.lock_exists(), "SIG{signal}: the lock was left behind");
        site.assert_live(&a);
    }
}

/// Ctrl-C is honoured at every wait: a deploy queued behind the lock with an hour to wait.
#[test]
fn ctrl_c_ends_a_long_lock_wait() {
    let site = gated_site();
    let a = site.deploy_ok();
    hold(&site.root, 1);
    site.change_code("holds the lock");
    let holder = site.command(&["deploy"]).spawn_output();
    wait_in_hook(&site.root, 0);
    let mut waiter = site
        .command(&["deploy", "--lock-wait", "1h"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let waiter_pid = waiter.id();
    let stderr_pipe = waiter.stderr.take().unwrap();
    let (lines, seen) = std::sync::mpsc::channel();
    let reading = std::thread::spawn(move || {
        use std::io::BufRead;
        let mut text = String::new();
        for line in std::io::BufReader::new(stderr_pipe)
            .lines()
            .map_while(Result::ok)
        {
            let _ = lines.send(line.clone());
            text.push_str(&line);
            text.push('\n');
        }
        (waiter.wait().unwrap(), text)
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let line = seen
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .expect("the queued deploy never said it waits for the lock");
        if line.contains("waiting for the lock") {
            break;
        }
    }
    let sent = std::process::Command::new("kill")
        .args(["-INT", &waiter_pid.to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
    let stopped = Instant::now() + Duration::from_secs(30);
    while !reading.is_finished() {
        assert!(
            Instant::now() < stopped,
            "the waiter did not stop on Ctrl-C"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let (status, err) = reading.join().unwrap();
    assert_eq!(status.code(), Some(EXIT_BEFORE_SWITCH), "{err}");
    assert!(
        err.contains("interrupted (Ctrl-C) while waiting for the lock: held by tester@"),
        "{err}"
    );
    open_gate(&site.root, 0);
    assert_exit(&holder.join(), EXIT_OK);
    let b = site.current().unwrap();
    assert_ne!(a, b);
}

/// Ctrl-C during a health check with an hour to pass: the wait ends, the release is switched
/// back (and the switch back's own check is seen through).
#[test]
fn ctrl_c_ends_a_long_health_check_and_switches_back() {
    let site = Site::with(SiteOptions {
        health_timeout: "1h",
        ..SiteOptions::default()
    });
    let a = site.deploy_ok();
    // Answers, but not "ok": not there yet, so the check would wait for the whole hour.
    let app = site.project.join("app.py");
    let text = std::fs::read_to_string(&app).unwrap();
    std::fs::write(
        &app,
        format!("{text}\n\n@app.before_request\ndef _starting():\n    return ('starting', 200)\n"),
    )
    .unwrap();
    site.commit("never healthy");
    let deploy = site.command(&["deploy"]).spawn_output();
    let deadline = Instant::now() + Duration::from_secs(120);
    while site.current().as_deref() == Some(a.as_str()) {
        assert!(Instant::now() < deadline, "the deploy never switched");
        std::thread::sleep(Duration::from_millis(20));
    }
    // Switched: it restarts, then polls /health.
    let deadline = Instant::now() + Duration::from_secs(120);
    while site.serving().is_some() {
        assert!(Instant::now() < deadline, "the new release never answered");
        std::thread::sleep(Duration::from_millis(50));
    }
    let sent = std::process::Command::new("kill")
        .args(["-INT", &deploy.pid.to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
    let out = deploy.join();
    assert_exit(&out, EXIT_ROLLED_BACK);
    assert!(
        stderr(&out).contains("interrupted (Ctrl-C) while waiting for the health check"),
        "{}",
        stderr(&out)
    );
    site.assert_live(&a);
    assert!(!site.lock_exists());
}

#[test]
fn over_ssh_a_killed_deploy_s_hook_does_not_survive_it() {
    let site = SshSite::new();
    let out = site.command(&["deploy", "production"]).output().unwrap();
    assert_exit(&out, EXIT_OK);
    let a = site.current().unwrap();

    hold(&site.root, 1);
    let mut first = site
        .command(&["deploy", "production"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let hook = wait_in_hook(&site.root, 0);
    assert!(process_runs(hook));
    first.kill().unwrap();
    first.wait().unwrap();

    // The host sees the channel end and kills the hook's session; the kill is asynchronous.
    assert_dies(hook, "the killed deploy's hook");
    std::fs::remove_file(site.root.join("hold")).unwrap();
    let out = site.command(&["deploy", "production"]).output().unwrap();
    assert_exit(&out, EXIT_OK);
    assert!(
        stderr(&out).contains("reclaiming a stale lock"),
        "{}",
        stderr(&out)
    );
    assert_ne!(site.current().unwrap(), a);
}
