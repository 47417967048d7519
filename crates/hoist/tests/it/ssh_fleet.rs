//! Deploying the example app to a fleet over real SSH: an OpenSSH server on 127.0.0.1 (the
//! hoist-testkit fixture), three inventory hosts (`web1`..`web3`, each with its own root and
//! gunicorn port), driven through the `hoist` binary.

use std::fs;
use std::process::Output;
use std::time::{Duration, Instant};

use crate::support::*;
use hoist_testkit::{Health, Hook, Hosts, SiteBuilder, SshServer};

struct SshSite {
    server: SshServer,
    dir: tempfile::TempDir,
    config: std::path::PathBuf,
    roots: Vec<std::path::PathBuf>,
    ports: Vec<u16>,
}

impl SshSite {
    /// web1..web3 over SSH (hoist-testkit's site builder), plus `extra_hosts` TOML.
    fn new(extra_hosts: &str) -> SshSite {
        let site = SiteBuilder::new()
            .prefix("hoist-ssh-")
            .hosts(Hosts::Ssh(3))
            .hook(Hook::new("gate", "test ! -e \"$HOIST_ROOT/fail-prepare\""))
            .health(Health::Command(
                "curl -fsS \"http://127.0.0.1:{port}/health\"".into(),
            ))
            .health_timeout("10s")
            .extra(extra_hosts)
            .build();
        let hoist_testkit::Site {
            dir,
            config,
            roots,
            ports,
            server,
            ..
        } = site;
        SshSite {
            server: server.expect("an SSH site has its sshd"),
            dir,
            config,
            roots,
            ports,
        }
    }

    fn hoist(&self, args: &[&str]) -> Output {
        std::process::Command::new(env!("CARGO_BIN_EXE_hoist"))
            .arg("--config")
            .arg(&self.config)
            .args(args)
            .env("HOIST_WHO", "tester@ci")
            .env("NO_COLOR", "1")
            .output()
            .unwrap()
    }

    fn current(&self, i: usize) -> Option<String> {
        let target = fs::read_link(self.roots[i].join("current")).ok()?;
        Some(target.file_name()?.to_string_lossy().into_owned())
    }

    fn serving(&self, i: usize) -> Option<String> {
        let body = http_get(self.ports[i], "/version")?;
        let v: serde_json::Value = serde_json::from_str(&body).ok()?;
        v["release"].as_str().map(str::to_string)
    }

    fn assert_fleet_live(&self) -> String {
        let id = self.current(0).expect("web1 has a current release");
        for i in 0..3 {
            assert_eq!(
                self.current(i).as_deref(),
                Some(id.as_str()),
                "current of web{}",
                i + 1
            );
            assert_eq!(
                self.serving(i).as_deref(),
                Some(id.as_str()),
                "web{} serves",
                i + 1
            );
        }
        id
    }

    fn change_code(&self, marker: &str) {
        let app = self.config.parent().unwrap().join("app.py");
        let mut text = fs::read_to_string(&app).unwrap();
        text.push_str(&format!("\n# {marker}\n"));
        fs::write(app, text).unwrap();
    }
}

impl Drop for SshSite {
    fn drop(&mut self) {
        for root in &self.roots {
            let _ = std::process::Command::new(example_dir().join("bin/stop-web"))
                .env("HOIST_ROOT", root)
                .env("HOIST_STOP_TIMEOUT", "10")
                .output();
        }
        let _ = &self.server;
        let _ = &self.dir;
    }
}

#[test]
fn three_hosts_over_ssh_deploy_redeploy_and_roll_back_in_agreement() {
    let site = SshSite::new("");
    let out = site.hoist(&["deploy", "production"]);
    assert_exit(&out, EXIT_OK);
    let a = site.assert_fleet_live();
    let text = stdout(&out);
    assert!(
        text.starts_with(&format!("deployed {a} to 3 hosts of production")),
        "{text}"
    );
    for name in ["web1", "web2", "web3"] {
        assert!(
            text.lines()
                .any(|l| l.starts_with(name) && l.ends_with("live")),
            "{text}"
        );
    }

    site.change_code("b");
    let out = site.hoist(&["deploy", "production"]);
    assert_exit(&out, EXIT_OK);
    let b = site.assert_fleet_live();
    assert_ne!(a, b);
    // Over rsync --link-dest, unchanged files are hard links to the previous release.
    use std::os::unix::fs::MetadataExt;
    let ino = |id: &str, f: &str| {
        fs::metadata(site.roots[1].join("releases").join(id).join(f))
            .unwrap()
            .ino()
    };
    assert_eq!(ino(&a, "settings.py"), ino(&b, "settings.py"));
    assert_ne!(ino(&a, "app.py"), ino(&b, "app.py"));

    let out = site.hoist(&["releases", "production"]);
    assert_exit(&out, EXIT_OK);
    crate::user_sees!("fleet-releases", out);
    let out = site.hoist(&["status", "production"]);
    assert_exit(&out, EXIT_OK);
    crate::user_sees!("fleet-status", out);
    let out = site.hoist(&["releases", "production"]);
    let table = stdout(&out);
    assert!(
        table
            .lines()
            .any(|l| l.starts_with(&b) && l.contains("current on all")),
        "{table}"
    );
    assert!(
        table
            .lines()
            .any(|l| l.starts_with(&a) && l.contains("rollback target on all")),
        "{table}"
    );
    assert!(!stderr(&out).contains("drift"), "{}", stderr(&out));

    let out = site.hoist(&["rollback", "production"]);
    assert_exit(&out, EXIT_OK);
    assert_eq!(site.assert_fleet_live(), a);

    // Only one host: --hosts.
    site.change_code("c");
    let out = site.hoist(&["deploy", "production", "--hosts", "web2"]);
    assert_exit(&out, EXIT_OK);
    assert_ne!(site.current(1).as_deref(), Some(a.as_str()));
    assert_eq!(site.current(0).as_deref(), Some(a.as_str()));
    let out = site.hoist(&["releases", "production"]);
    assert!(
        stderr(&out).contains("warning: drift: hosts serve different releases: web1 -> "),
        "{}",
        stderr(&out)
    );
}

#[test]
fn one_host_failing_to_prepare_leaves_every_host_on_its_old_release() {
    let site = SshSite::new("");
    assert_exit(&site.hoist(&["deploy", "production"]), EXIT_OK);
    let a = site.assert_fleet_live();
    site.change_code("b");
    fs::write(site.roots[2].join("fail-prepare"), "").unwrap();
    let out = site.hoist(&["deploy", "production"]);
    assert_exit(&out, EXIT_BEFORE_SWITCH);
    let err = stderr(&out);
    assert!(
        err.contains("web3: pre-switch hook \"gate\" exited 1"),
        "{err}"
    );
    assert!(
        err.contains("nothing was switched: every host still serves the release it served before"),
        "{err}"
    );
    assert!(
        err.lines()
            .any(|l| l.starts_with("web3") && l.contains("failed (old release serves)")),
        "{err}"
    );
    assert!(
        err.lines()
            .any(|l| l.starts_with("web1") && l.contains("not switched")),
        "{err}"
    );
    assert_eq!(site.assert_fleet_live(), a);
}

#[test]
fn an_unreachable_host_is_named_quickly_and_nothing_is_switched() {
    let closed = free_port();
    let site = SshSite::new(&format!(
        "[hosts.web4]\naddress = \"127.0.0.1\"\nport = {closed}\nroot = \"/srv/web4\"\ngroups = [\"web\"]\n"
    ));
    let started = Instant::now();
    let out = site.hoist(&["deploy", "production"]);
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "bounded by the connect timeout"
    );
    assert_exit(&out, EXIT_BEFORE_SWITCH);
    let err = stderr(&out);
    assert!(err.contains("web4"), "{err}");
    assert!(err.contains("nothing was changed on any host"), "{err}");
    for i in 0..3 {
        assert_eq!(site.current(i), None);
        assert!(
            !site.roots[i].join(".hoist").exists(),
            "web{} untouched",
            i + 1
        );
    }
}

#[test]
fn a_second_deploy_of_the_same_environment_fails_on_the_lock() {
    let site = SshSite::new("");
    assert_exit(&site.hoist(&["deploy", "production"]), EXIT_OK);
    let out = site.hoist(&["lock", "production", "acquire", "-m", "release freeze"]);
    assert_exit(&out, EXIT_OK);
    let out = site.hoist(&["deploy", "production"]);
    assert_exit(&out, EXIT_LOCK_HELD);
    assert!(stderr(&out).contains("release freeze"), "{}", stderr(&out));
    assert_exit(&site.hoist(&["lock", "production", "release"]), EXIT_OK);
    site.change_code("after the freeze");
    assert_exit(&site.hoist(&["deploy", "production"]), EXIT_OK);
    site.assert_fleet_live();
}

/// web3's sshd dies during its health check, after its switch: web1 and web2 are switched back,
/// and web3 is reported as unknown — not "switched back", since `current` there was never read
/// (and on disk it still names the new release).
#[test]
fn a_host_that_stops_answering_after_its_switch_is_reported_unknown() {
    let site = SshSite::new("");
    assert_exit(&site.hoist(&["deploy", "production"]), EXIT_OK);
    let a = site.assert_fleet_live();
    site.change_code("b");
    // The health check on the host holding `kill-sshd` kills the sshd listener and the sshd
    // processes above its own shell: that host's connection is gone for good.
    let script = site.config.parent().unwrap().join("health.sh");
    fs::write(
        &script,
        format!(
            r#"if [ -e "$HOIST_ROOT/kill-sshd" ]; then
  rm -f "$HOIST_ROOT/kill-sshd"
  pkill -9 -f {sshd_config}
  p=$$
  while [ "$p" -gt 1 ]; do
    case "$(ps -o comm= -p "$p")" in sshd*) kill -9 "$p" ;; esac
    p=$(ps -o ppid= -p "$p" | tr -d ' ')
  done
fi
curl -fsS "http://127.0.0.1:$(cat "$HOIST_ROOT/port")/health"
"#,
            sshd_config = site.server.dir().join("sshd_config").display()
        ),
    )
    .unwrap();
    let text = fs::read_to_string(&site.config).unwrap();
    let health = text
        .lines()
        .find(|l| l.starts_with("command = \"curl"))
        .unwrap()
        .to_string();
    fs::write(
        &site.config,
        text.replace(&health, &format!("command = \"sh {}\"", script.display())),
    )
    .unwrap();
    fs::write(site.roots[2].join("kill-sshd"), "").unwrap();

    let out = site.hoist(&["deploy", "production"]);
    assert_exit(&out, EXIT_ROLLED_BACK);
    let err = stderr(&out);
    assert!(
        err.contains("not every host could be switched back: see the table"),
        "{err}"
    );
    assert!(
        err.lines()
            .any(|l| l.starts_with("web3") && l.contains("unknown (the host could not be read)")),
        "{err}"
    );
    assert!(
        !err.lines()
            .any(|l| l.starts_with("web3") && l.contains("switched back")),
        "{err}"
    );
    for i in 0..2 {
        assert_eq!(site.current(i).as_deref(), Some(a.as_str()), "web{}", i + 1);
        assert_eq!(site.serving(i).as_deref(), Some(a.as_str()), "web{}", i + 1);
    }
    assert_ne!(
        site.current(2).as_deref(),
        Some(a.as_str()),
        "web3 was never switched back"
    );
}
