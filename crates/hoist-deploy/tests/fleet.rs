//! The fleet engine on several hosts: here, several roots on this machine (each with its own
//! gunicorn on its own port, in `<root>/port`), driven through the real engine with real
//! virtualenvs and real HTTP. Over SSH the same engine runs with another transport.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::time::Duration;

use hoist_deploy::{
    deploy, rollback, DeployError, DeployOptions, Event, FailureKind, Fleet, Host, HostResult,
    Layout, Rollout,
};
use hoist_testkit::{example_dir, Health, Hook, Hosts, SiteBuilder};
use hoist_transport::Local;

struct TestFleet {
    _dir: tempfile::TempDir,
    config: hoist_config::Config,
    roots: Vec<PathBuf>,
    ports: Vec<u16>,
}

impl TestFleet {
    /// `hosts` roots on this machine (hoist-testkit's site builder), each with its own port.
    fn new(hosts: usize) -> TestFleet {
        TestFleet::with_extra(hosts, "")
    }

    /// A fleet whose hoist.toml ends with `extra` (more `[[hook]]`s, an `[env]`).
    fn with_extra(hosts: usize, extra: &str) -> TestFleet {
        TestFleet::configured(hosts, "", extra)
    }

    /// A fleet whose hoist.toml has `app_extra` at the end of `[app]` and ends with `extra`.
    fn configured(hosts: usize, app_extra: &str, extra: &str) -> TestFleet {
        let site = SiteBuilder::new()
            .prefix("hoist-fleet-")
            .hosts(Hosts::LocalRoots(hosts))
            .app_extra(app_extra)
            .hook(Hook::new("gate", "test ! -e \"$HOIST_ROOT/fail-prepare\""))
            .hook(Hook::new("migrate", "python bin/migrate").once())
            .health(Health::Command(
                "test ! -e \"$HOIST_ROOT/fail-health\" && curl -fsS \"http://127.0.0.1:{port}/health\""
                    .into(),
            ))
            .health_timeout("15s")
            .extra(extra)
            .build();
        let config = hoist_config::load(&site.config).unwrap();
        TestFleet {
            config,
            roots: site.roots,
            ports: site.ports,
            _dir: site.dir,
        }
    }

    fn fleet(&self, rollout: Rollout) -> Fleet {
        Fleet {
            name: "test".into(),
            hosts: self
                .roots
                .iter()
                .enumerate()
                .map(|(i, root)| Host {
                    name: format!("web{}", i + 1),
                    transport: Box::new(Local::new(format!("web{}", i + 1))),
                    layout: Layout::with_root(&self.config.release, root.clone()),
                    python: "python3".into(),
                    // The host variable `port`, i.e. `$HOIST_VAR_PORT` in hooks and commands.
                    vars: [("port".to_string(), self.ports[i].to_string())].into(),
                })
                .collect(),
            rollout,
            forks: 10,
        }
    }

    fn opts(&self, rollback_on_failure: bool) -> DeployOptions {
        DeployOptions {
            who: "tester@ci".into(),
            git_ref: None,
            lock_wait: Duration::ZERO,
            command: "hoist deploy (test)".into(),
            rollback_on_failure,
            source: None,
        }
    }

    fn deploy(&self, rollout: Rollout) -> Result<hoist_deploy::DeployReport, DeployError> {
        let sink = |_: Event| {};
        deploy(&self.config, &self.fleet(rollout), &self.opts(true), &sink)
    }

    fn rollback(&self) -> Result<hoist_deploy::RollbackReport, DeployError> {
        let sink = |_: Event| {};
        rollback(
            &self.config,
            &self.fleet(Rollout::All),
            None,
            "tester@ci",
            "hoist rollback (test)",
            Duration::ZERO,
            &sink,
        )
    }

    fn change_code(&self, marker: &str) {
        let app = self.config.app.source.join("app.py");
        let mut text = fs::read_to_string(&app).unwrap();
        text.push_str(&format!("\n# {marker}\n"));
        fs::write(app, text).unwrap();
    }

    /// The temporary directory that holds the project and the roots.
    fn base(&self) -> &Path {
        self._dir.path()
    }

    /// The lines hooks appended to `<root>/hooks.log` on host `host`.
    fn hook_log(&self, host: usize) -> Vec<String> {
        fs::read_to_string(self.roots[host].join("hooks.log"))
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }

    fn release_state(&self, host: usize, id: &str) -> String {
        let path = self.roots[host]
            .join("releases")
            .join(id)
            .join("RELEASE.json");
        let record: serde_json::Value = serde_json::from_slice(&fs::read(path).unwrap()).unwrap();
        record["state"].as_str().unwrap().to_string()
    }

    fn current(&self, host: usize) -> Option<String> {
        let target = fs::read_link(self.roots[host].join("current")).ok()?;
        Some(target.file_name()?.to_string_lossy().into_owned())
    }

    fn serving(&self, host: usize) -> Option<String> {
        let out = Command::new("curl")
            .args([
                "-fsS",
                &format!("http://127.0.0.1:{}/version", self.ports[host]),
            ])
            .output()
            .ok()?;
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
        v["release"].as_str().map(str::to_string)
    }

    /// Every host's `current` and its app's answer say `id`.
    fn assert_all_live(&self, id: &str) {
        for host in 0..self.roots.len() {
            assert_eq!(
                self.current(host).as_deref(),
                Some(id),
                "current of web{}",
                host + 1
            );
            assert_eq!(
                self.serving(host).as_deref(),
                Some(id),
                "web{} serves",
                host + 1
            );
        }
    }
}

impl Drop for TestFleet {
    fn drop(&mut self) {
        for root in &self.roots {
            let _ = Command::new(example_dir().join("bin/stop-web"))
                .env("HOIST_ROOT", root)
                .env("HOIST_STOP_TIMEOUT", "10")
                .output();
        }
    }
}

#[test]
fn three_hosts_deploy_redeploy_and_roll_back_together() {
    let f = TestFleet::new(3);
    let a = f.deploy(Rollout::All).unwrap();
    assert_eq!(a.hosts.len(), 3);
    assert!(a.hosts.iter().all(|h| h.outcome.result == HostResult::Live));
    f.assert_all_live(a.release.as_str());
    // The once-per-deploy hook ran on the first host only.
    let journal = |i: usize| fs::read_to_string(f.roots[i].join(".hoist/journal.jsonl")).unwrap();
    assert!(journal(0).contains("deploy_succeeded"));

    f.change_code("b");
    let b = f.deploy(Rollout::All).unwrap();
    f.assert_all_live(b.release.as_str());
    assert!(
        b.hosts.iter().all(|h| h.env_reused),
        "every host reuses its environment"
    );

    let r = f.rollback().unwrap();
    assert_eq!(r.to, a.release);
    f.assert_all_live(a.release.as_str());
}

#[test]
fn one_host_failing_to_prepare_switches_no_host() {
    let f = TestFleet::new(3);
    let a = f.deploy(Rollout::All).unwrap().release.to_string();
    f.change_code("b");
    fs::write(f.roots[1].join("fail-prepare"), "").unwrap();
    let e = f.deploy(Rollout::All).unwrap_err();
    assert_eq!(e.kind, FailureKind::BeforeSwitch);
    assert!(
        e.message
            .contains("web2: pre-switch hook \"gate\" exited 1"),
        "{}",
        e.message
    );
    assert!(
        e.hints
            .iter()
            .any(|h| h
                == "nothing was switched: every host still serves the release it served before")
    );
    let results: Vec<HostResult> = e.hosts.iter().map(|h| h.result).collect();
    assert_eq!(
        results,
        [
            HostResult::NotSwitched,
            HostResult::Failed,
            HostResult::NotSwitched
        ]
    );
    f.assert_all_live(&a);
    // The unswitched releases are marked failed on every host, so none is a rollback target.
    for root in &f.roots {
        let journal = fs::read_to_string(root.join(".hoist/journal.jsonl")).unwrap();
        assert!(
            journal
                .lines()
                .last()
                .unwrap()
                .contains("\"deploy_failed\""),
            "{journal}"
        );
        assert!(!root.join(".hoist/lock").exists());
    }
}

#[test]
fn an_unwritable_root_on_one_host_stops_the_deploy_before_anything() {
    let f = TestFleet::new(2);
    let a = f.deploy(Rollout::All).unwrap().release.to_string();
    let mut fleet = f.fleet(Rollout::All);
    fleet.hosts[1].layout =
        Layout::with_root(&f.config.release, "/proc/hoist-cannot-write-here".into());
    let sink = |_: Event| {};
    let e = deploy(&f.config, &fleet, &f.opts(true), &sink).unwrap_err();
    assert!(
        e.message.contains("/proc/hoist-cannot-write-here"),
        "{}",
        e.message
    );
    assert_eq!(f.current(0).as_deref(), Some(a.as_str()));
    assert!(
        !f.roots[0].join(".hoist/lock").exists(),
        "the lock taken on web1 is released"
    );
}

#[test]
fn a_health_check_failing_on_the_second_of_three_hosts_switches_all_back() {
    let f = TestFleet::new(3);
    let a = f.deploy(Rollout::All).unwrap().release.to_string();
    f.change_code("b");
    fs::write(f.roots[1].join("fail-health"), "").unwrap();
    let e = f.deploy(Rollout::All).unwrap_err();
    // The old release must pass its health check on the way back too: let it.
    assert_eq!(e.kind, FailureKind::RolledBack, "{}", e.message);
    assert!(
        e.message
            .starts_with("health failed on web2 after the switch"),
        "{}",
        e.message
    );
    fs::remove_file(f.roots[1].join("fail-health")).unwrap();
    for h in &e.hosts {
        assert_ne!(h.result, HostResult::Live, "{h:?}");
    }
    for host in [0, 2] {
        assert_eq!(e.hosts[host].result, HostResult::SwitchedBack);
        assert_eq!(f.current(host).as_deref(), Some(a.as_str()));
        assert_eq!(f.serving(host).as_deref(), Some(a.as_str()));
    }
    assert_eq!(f.current(1).as_deref(), Some(a.as_str()));
}

#[test]
fn canary_failure_leaves_the_other_hosts_untouched() {
    let f = TestFleet::new(3);
    let a = f.deploy(Rollout::All).unwrap().release.to_string();
    f.change_code("b");
    fs::write(f.roots[0].join("fail-health"), "").unwrap();
    let seen = Mutex::new(Vec::new());
    let sink = |e: Event| {
        if let Event::Step {
            host, step, status, ..
        } = e
        {
            seen.lock()
                .unwrap()
                .push(format!("{host} {} {status:?}", step.name()));
        }
    };
    let e = deploy(&f.config, &f.fleet(Rollout::Canary), &f.opts(true), &sink).unwrap_err();
    assert_eq!(e.kind, FailureKind::RolledBack);
    let results: Vec<HostResult> = e.hosts.iter().map(|h| h.result).collect();
    assert_eq!(
        results,
        [
            HostResult::SwitchedBackUnhealthy,
            HostResult::NotSwitched,
            HostResult::NotSwitched
        ]
    );
    let seen = seen.into_inner().unwrap();
    assert!(
        !seen
            .iter()
            .any(|s| s.starts_with("web2 switch") || s.starts_with("web3 switch")),
        "{seen:?}"
    );
    for host in [1, 2] {
        assert_eq!(f.current(host).as_deref(), Some(a.as_str()));
        assert_eq!(f.serving(host).as_deref(), Some(a.as_str()));
    }
}

#[test]
fn rolling_batches_stop_at_the_failing_batch() {
    let f = TestFleet::new(3);
    let a = f.deploy(Rollout::All).unwrap().release.to_string();
    f.change_code("b");
    fs::write(f.roots[1].join("fail-health"), "").unwrap();
    let rolling = Rollout::Rolling {
        batch: 1,
        pause: Duration::ZERO,
    };
    let e = f.deploy(rolling).unwrap_err();
    fs::remove_file(f.roots[1].join("fail-health")).unwrap();
    let results: Vec<HostResult> = e.hosts.iter().map(|h| h.result).collect();
    assert_eq!(results[0], HostResult::SwitchedBack);
    assert_eq!(results[2], HostResult::NotSwitched);
    for host in 0..3 {
        assert_eq!(
            f.current(host).as_deref(),
            Some(a.as_str()),
            "web{}",
            host + 1
        );
    }
}

#[test]
fn no_rollback_on_failure_leaves_the_drift_and_says_so() {
    let f = TestFleet::new(2);
    let a = f.deploy(Rollout::All).unwrap().release.to_string();
    f.change_code("b");
    fs::write(f.roots[1].join("fail-health"), "").unwrap();
    let sink = |_: Event| {};
    let e = deploy(&f.config, &f.fleet(Rollout::All), &f.opts(false), &sink).unwrap_err();
    assert_eq!(e.kind, FailureKind::LeftAsIs);
    assert!(
        e.message.contains("--no-rollback-on-failure"),
        "{}",
        e.message
    );
    let b = e.hosts[0].release.clone();
    assert_ne!(a, b);
    assert_eq!(e.hosts[0].result, HostResult::LeftSwitched);
    assert_eq!(e.hosts[0].detail.as_deref(), Some("healthy"));
    assert_eq!(e.hosts[1].detail.as_deref(), Some("unhealthy"));
    assert_eq!(f.current(0).as_deref(), Some(b.as_str()));
    assert_eq!(f.serving(0).as_deref(), Some(b.as_str()));
    assert_eq!(f.current(1).as_deref(), Some(b.as_str()));
}

#[test]
fn rollback_refuses_when_the_hosts_do_not_share_a_target() {
    let f = TestFleet::new(2);
    let a = f.deploy(Rollout::All).unwrap().release.to_string();
    f.change_code("b");
    let b = f.deploy(Rollout::All).unwrap().release.to_string();
    // web2 loses the release it would roll back to.
    fs::remove_dir_all(f.roots[1].join("releases").join(&a)).unwrap();
    let e = f.rollback().unwrap_err();
    assert_eq!(e.kind, FailureKind::Config);
    assert!(e.message.starts_with("web2: "), "{}", e.message);
    f.assert_all_live(&b);
}

/// Hooks that append `<moment> <hook> <release> <what serves>` to `$HOIST_ROOT/hooks.log`.
const LOGGING_HOOKS: &str = r#"
[[hook]]
name = "notify"
when = "after-switch"
run = "echo \"after-switch notify $HOIST_RELEASE_ID $(curl -fsS http://127.0.0.1:$HOIST_VAR_PORT/version | grep -o $HOIST_RELEASE_ID)\" >> \"$HOIST_ROOT/hooks.log\""

[[hook]]
name = "warm-cache"
when = "after-switch"
once = true
run = "echo \"after-switch warm-cache $HOIST_RELEASE_ID\" >> \"$HOIST_ROOT/hooks.log\""

[[hook]]
name = "init-db"
first_deploy_only = true
run = "echo \"first-deploy init-db $HOIST_RELEASE_ID\" >> \"$HOIST_ROOT/hooks.log\""

[[hook]]
name = "after-first"
when = "after-switch"
first_deploy_only = true
run = "echo \"after-switch after-first $HOIST_RELEASE_ID\" >> \"$HOIST_ROOT/hooks.log\""

[[hook]]
name = "page"
when = "after-rollback"
run = "echo \"after-rollback page $HOIST_RELEASE_ID\" >> \"$HOIST_ROOT/hooks.log\" && test ! -e \"$HOIST_ROOT/fail-after-rollback\""

[[hook]]
name = "smoke"
when = "after-switch"
run = "test ! -e \"$HOIST_ROOT/fail-after-switch\""
"#;

#[test]
fn after_switch_hooks_run_once_the_new_release_serves_and_first_deploy_hooks_only_once() {
    let f = TestFleet::with_extra(2, LOGGING_HOOKS);
    let a = f.deploy(Rollout::All).unwrap().release.to_string();
    f.assert_all_live(&a);
    // The after-switch hook saw its own release answering; the first-deploy hooks ran on both
    // roots (each had nothing live), the `once` hook on the first host only.
    assert_eq!(
        f.hook_log(0),
        vec![
            format!("first-deploy init-db {a}"),
            format!("after-switch notify {a} {a}"),
            format!("after-switch warm-cache {a}"),
            format!("after-switch after-first {a}"),
        ]
    );
    assert_eq!(
        f.hook_log(1),
        vec![
            format!("first-deploy init-db {a}"),
            format!("after-switch notify {a} {a}"),
            format!("after-switch after-first {a}"),
        ]
    );

    f.change_code("b");
    let b = f.deploy(Rollout::All).unwrap().release.to_string();
    f.assert_all_live(&b);
    assert_eq!(
        f.hook_log(1)[3..],
        [format!("after-switch notify {b} {b}")],
        "a second deploy runs no first-deploy hook"
    );

    let back = f.rollback().unwrap();
    assert_eq!(back.to.to_string(), a);
    f.assert_all_live(&a);
    assert_eq!(
        f.hook_log(0).last().unwrap(),
        &format!("after-rollback page {a}"),
        "after-rollback hooks run in the release rolled back to"
    );
    assert_eq!(
        f.hook_log(1).last().unwrap(),
        &format!("after-rollback page {a}")
    );
}

#[test]
fn a_failed_after_switch_hook_leaves_the_healthy_release_live_and_says_so() {
    let f = TestFleet::with_extra(2, LOGGING_HOOKS);
    let a = f.deploy(Rollout::All).unwrap().release.to_string();
    f.change_code("b");
    fs::write(f.roots[1].join("fail-after-switch"), "").unwrap();
    let e = f.deploy(Rollout::All).unwrap_err();
    assert_eq!(e.kind, FailureKind::LeftAsIs);
    let b = e.hosts[0].release.clone();
    assert_ne!(a, b);
    assert!(
        e.message
            .starts_with("web2: after-switch hook \"smoke\" exited 1"),
        "{}",
        e.message
    );
    assert!(
        e.message.ends_with(&format!(
            "every host serves {b} and passed its health check: a failed after-switch hook never switches back"
        )),
        "{}",
        e.message
    );
    assert!(e.hosts.iter().all(|h| h.result == HostResult::Live));
    assert_eq!(
        e.hosts[1].detail.as_deref(),
        Some("after-switch hook failed")
    );
    assert_eq!(e.hosts[0].detail, None);
    // Live, healthy and recorded good: the next rollback goes back to a, not past b.
    f.assert_all_live(&b);
    assert_eq!(f.release_state(0, &b), "good");
    assert_eq!(f.release_state(1, &b), "good");
    assert_eq!(f.rollback().unwrap().to.to_string(), a);
}

#[test]
fn a_failed_after_rollback_hook_keeps_the_rollback() {
    let f = TestFleet::with_extra(1, LOGGING_HOOKS);
    let a = f.deploy(Rollout::All).unwrap().release.to_string();
    f.change_code("b");
    f.deploy(Rollout::All).unwrap();
    fs::write(f.roots[0].join("fail-after-rollback"), "").unwrap();
    let e = f.rollback().unwrap_err();
    assert_eq!(e.kind, FailureKind::LeftAsIs);
    assert!(
        e.message
            .starts_with("web1: after-rollback hook \"page\" exited 1"),
        "{}",
        e.message
    );
    assert!(
        e.message.ends_with(&format!(
            "\nweb1 serves {a} and passed its health check: a failed after-rollback hook never switches back"
        )),
        "{}",
        e.message
    );
    f.assert_all_live(&a);
    assert_eq!(f.release_state(0, &a), "good");
}

/// Every file under `dir`, except the environments (virtualenvs built without the app's
/// variables) and the files in `skip`.
fn files_under(dir: &Path, skip: &[PathBuf]) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(next) = pending.pop() {
        for entry in fs::read_dir(&next).unwrap() {
            let entry = entry.unwrap();
            let path = entry.path();
            let kind = entry.file_type().unwrap();
            if kind.is_dir()
                && path
                    .file_name()
                    .is_some_and(|n| n != "envs" && n != "wheels")
            {
                pending.push(path);
            } else if kind.is_file() && !skip.contains(&path) {
                found.push(path);
            }
        }
    }
    found
}

#[test]
fn env_values_reach_hooks_and_the_app_through_a_private_file_and_secrets_nowhere_else() {
    use std::os::unix::fs::PermissionsExt;

    let secret_from_env = "s3cr3t it's from-env-7f1d";
    let secret_from_file = "postgres://app:pa55-from-file-91c2@db/app";
    std::env::set_var("HOIST_FLEET_TEST_SECRET_KEY", secret_from_env);
    let extra = r#"
[env]
APP_MODE = "production"
SECRET_KEY = { from_env = "HOIST_FLEET_TEST_SECRET_KEY" }
PAYMENTS_URL = { from_file = "../db-url.secret" }

[[hook]]
name = "sees-env"
run = "echo \"$APP_MODE $(printf %s \"$SECRET_KEY\" | sha256sum | cut -c1-16) ${#PAYMENTS_URL}\" > \"$HOIST_ROOT/hook-env\""
"#;
    let f = TestFleet::configured(2, "", extra);
    fs::write(
        f.base().join("db-url.secret"),
        format!("{secret_from_file}\n"),
    )
    .unwrap();

    let events = Mutex::new(Vec::new());
    let sink = |e: Event| {
        events
            .lock()
            .unwrap()
            .push(serde_json::to_string(&e).unwrap())
    };
    let report = deploy(&f.config, &f.fleet(Rollout::All), &f.opts(true), &sink).unwrap();
    let a = report.release.to_string();
    f.assert_all_live(&a);

    let digest = {
        let out = Command::new("bash")
            .args([
                "-c",
                "printf %s \"$1\" | sha256sum | cut -c1-16",
                "-",
                secret_from_env,
            ])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    for (host, root) in f.roots.iter().enumerate() {
        // On the host: shared/env, mode 0600, in shell syntax.
        let env_file = root.join("shared/env");
        let mode = fs::metadata(&env_file).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "web{} shared/env", host + 1);
        let text = fs::read_to_string(&env_file).unwrap();
        assert!(text.contains("APP_MODE=production\n"), "{text}");
        for (name, value) in [
            ("SECRET_KEY", secret_from_env),
            ("PAYMENTS_URL", secret_from_file),
        ] {
            let line = format!("{name}={}\n", hoist_transport::shell_quote(value));
            assert!(text.contains(&line), "{line} in {text}");
        }

        // Hooks see the values.
        assert_eq!(
            fs::read_to_string(root.join("hook-env")).unwrap().trim(),
            format!("production {digest} {}", secret_from_file.len())
        );

        // The app, started by its restart command, runs with them.
        let pid = fs::read_to_string(root.join("shared/run/gunicorn.pid")).unwrap();
        let environ = fs::read(format!("/proc/{}/environ", pid.trim())).unwrap();
        let environ = String::from_utf8_lossy(&environ);
        assert!(
            environ
                .split('\0')
                .any(|v| v == format!("SECRET_KEY={secret_from_env}")),
            "the app's environment has SECRET_KEY"
        );
        assert!(environ.split('\0').any(|v| v == "APP_MODE=production"));

        // Nothing else hoist wrote on the host holds a secret: journal, RELEASE.json, lock
        // records, the release's files.
        let written = files_under(root, std::slice::from_ref(&env_file));
        assert!(written.iter().any(|p| p.ends_with("RELEASE.json")));
        assert!(written.iter().any(|p| p.ends_with("journal.jsonl")));
        for path in written {
            let bytes = fs::read(&path).unwrap();
            let text = String::from_utf8_lossy(&bytes);
            assert!(
                !text.contains(secret_from_env) && !text.contains(secret_from_file),
                "a secret in {}",
                path.display()
            );
        }
    }
    // Nor anything the engine reported.
    let reported = events.lock().unwrap().join("\n");
    assert!(reported.contains("sees-env passed"), "{reported}");
    assert!(!reported.contains(secret_from_env) && !reported.contains(secret_from_file));
}

#[test]
fn a_missing_secret_stops_the_deploy_before_anything_is_written() {
    let extra = r#"
[env]
SECRET_KEY = { from_env = "HOIST_FLEET_TEST_NEVER_SET" }
"#;
    let f = TestFleet::configured(1, "", extra);
    let e = f.deploy(Rollout::All).unwrap_err();
    assert_eq!(e.kind, FailureKind::Config);
    assert_eq!(
        e.message,
        "[env] SECRET_KEY: the variable HOIST_FLEET_TEST_NEVER_SET is not set on this machine (from_env)"
    );
    assert!(!f.roots[0].join("releases").exists());
    assert!(!f.roots[0].join("shared/env").exists());
}

#[test]
fn a_secret_file_the_release_would_ship_is_refused() {
    let extra = r#"
[env]
DATABASE_URL = { from_file = "db-url.secret" }
"#;
    let f = TestFleet::configured(1, "", extra);
    fs::write(f.config.app.source.join("db-url.secret"), "postgres://x").unwrap();
    let e = f.deploy(Rollout::All).unwrap_err();
    assert_eq!(e.kind, FailureKind::Config);
    assert!(
        e.message
            .ends_with("is part of the app's files, so every release would carry it"),
        "{}",
        e.message
    );
    assert!(!f.roots[0].join("releases").exists());
}

#[test]
fn installer_env_reaches_the_environment_build() {
    // An index that refuses connections, given only to the installer: a requirement that is
    // not cached then fails to install, naming that index.
    let app_extra = r#"installer_env = { UV_INDEX_URL = "http://127.0.0.1:9/simple", PIP_INDEX_URL = "http://127.0.0.1:9/simple" }"#;
    let f = TestFleet::configured(1, app_extra, "");
    let requirements = f.config.app.source.join("requirements.txt");
    let mut text = fs::read_to_string(&requirements).unwrap();
    text.push_str("hoist-no-such-package-4b1e==1.0\n");
    fs::write(&requirements, text).unwrap();
    let e = f.deploy(Rollout::All).unwrap_err();
    assert_eq!(e.kind, FailureKind::BeforeSwitch);
    assert!(e.message.contains("127.0.0.1:9"), "{}", e.message);
    let mode = {
        use std::os::unix::fs::PermissionsExt;
        fs::metadata(f.roots[0].join("shared/installer-env"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777
    };
    assert_eq!(mode, 0o600);
}

#[test]
fn a_one_off_command_runs_in_each_hosts_live_release() {
    let f = TestFleet::with_extra(2, "\n[env]\nAPP_MODE = \"production\"\n");
    let a = f.deploy(Rollout::All).unwrap().release.to_string();
    let fleet = f.fleet(Rollout::All);
    let command: Vec<String> = [
        "python",
        "-c",
        "import os, sys; print(sys.stdin.read().strip(), os.environ['HOIST_RELEASE_ID'], os.environ['HOIST_VAR_PORT'], os.environ['APP_MODE'])",
    ]
    .map(String::from)
    .to_vec();
    for (i, host) in fleet.hosts.iter().enumerate() {
        let run = hoist_deploy::run_in_current(&f.config, host, &command, Some(b"hi\n".to_vec()))
            .unwrap();
        assert_eq!(run.release, a);
        assert!(run.output.success(), "{}", run.output.stderr_text());
        assert_eq!(
            run.output.stdout_text(),
            format!("hi {a} {} production\n", f.ports[i])
        );
    }
}
