//! The fleet engine on several hosts: here, several roots on this machine (each with its own
//! gunicorn on its own port, in `<root>/port`), driven through the real engine with real
//! virtualenvs and real HTTP. Over SSH the same engine runs with another transport.

use std::fs;
use std::path::PathBuf;
use std::process::Command;
use std::sync::Mutex;
use std::time::Duration;

use hoist_deploy::{
    deploy, rollback, Activation, DeployError, DeployOptions, Event, FailureKind, Fleet, Host,
    HostResult, Layout,
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
        let site = SiteBuilder::new()
            .prefix("hoist-fleet-")
            .hosts(Hosts::LocalRoots(hosts))
            .hook(Hook::new("gate", "test ! -e \"$HOIST_ROOT/fail-prepare\""))
            .hook(Hook::new("migrate", "python bin/migrate").once())
            .health(Health::Command(
                "test ! -e \"$HOIST_ROOT/fail-health\" && curl -fsS \"http://127.0.0.1:{port}/health\""
                    .into(),
            ))
            .health_timeout("3s")
            .build();
        let config = hoist_config::load(&site.config).unwrap();
        TestFleet {
            config,
            roots: site.roots,
            ports: site.ports,
            _dir: site.dir,
        }
    }

    fn fleet(&self, activation: Activation) -> Fleet {
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
                    vars: Default::default(),
                })
                .collect(),
            activation,
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
        }
    }

    fn deploy(&self, activation: Activation) -> Result<hoist_deploy::DeployReport, DeployError> {
        let sink = |_: Event| {};
        deploy(
            &self.config,
            &self.fleet(activation),
            &self.opts(true),
            &sink,
        )
    }

    fn rollback(&self) -> Result<hoist_deploy::RollbackReport, DeployError> {
        let sink = |_: Event| {};
        rollback(
            &self.config,
            &self.fleet(Activation::All),
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
    let a = f.deploy(Activation::All).unwrap();
    assert_eq!(a.hosts.len(), 3);
    assert!(a.hosts.iter().all(|h| h.result == HostResult::Live));
    f.assert_all_live(a.release.as_str());
    // The once-per-deploy hook ran on the first host only.
    let journal = |i: usize| fs::read_to_string(f.roots[i].join(".hoist/journal.jsonl")).unwrap();
    assert!(journal(0).contains("deploy_succeeded"));

    f.change_code("b");
    let b = f.deploy(Activation::All).unwrap();
    f.assert_all_live(b.release.as_str());
    assert_eq!(b.env_reused, vec![true, true, true]);

    let r = f.rollback().unwrap();
    assert_eq!(r.to, a.release);
    f.assert_all_live(a.release.as_str());
}

#[test]
fn one_host_failing_to_prepare_switches_no_host() {
    let f = TestFleet::new(3);
    let a = f.deploy(Activation::All).unwrap().release.to_string();
    f.change_code("b");
    fs::write(f.roots[1].join("fail-prepare"), "").unwrap();
    let e = f.deploy(Activation::All).unwrap_err();
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
    let a = f.deploy(Activation::All).unwrap().release.to_string();
    let mut fleet = f.fleet(Activation::All);
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
    let a = f.deploy(Activation::All).unwrap().release.to_string();
    f.change_code("b");
    fs::write(f.roots[1].join("fail-health"), "").unwrap();
    let e = f.deploy(Activation::All).unwrap_err();
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
    let a = f.deploy(Activation::All).unwrap().release.to_string();
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
    let e = deploy(
        &f.config,
        &f.fleet(Activation::Canary),
        &f.opts(true),
        &sink,
    )
    .unwrap_err();
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
    let a = f.deploy(Activation::All).unwrap().release.to_string();
    f.change_code("b");
    fs::write(f.roots[1].join("fail-health"), "").unwrap();
    let rolling = Activation::Rolling {
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
    let a = f.deploy(Activation::All).unwrap().release.to_string();
    f.change_code("b");
    fs::write(f.roots[1].join("fail-health"), "").unwrap();
    let sink = |_: Event| {};
    let e = deploy(&f.config, &f.fleet(Activation::All), &f.opts(false), &sink).unwrap_err();
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
    let a = f.deploy(Activation::All).unwrap().release.to_string();
    f.change_code("b");
    let b = f.deploy(Activation::All).unwrap().release.to_string();
    // web2 loses the release it would roll back to.
    fs::remove_dir_all(f.roots[1].join("releases").join(&a)).unwrap();
    let e = f.rollback().unwrap_err();
    assert_eq!(e.kind, FailureKind::Config);
    assert!(e.message.starts_with("web2: "), "{}", e.message);
    f.assert_all_live(&b);
}
