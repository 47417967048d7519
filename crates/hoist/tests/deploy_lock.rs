//! Invariant 7: one deploy at a time, the holder named, `--lock-wait`, hand-made locks.

mod support;

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use support::*;

/// Holds deploys in their hook until the test opens it. Dropped, it opens: a failed test never
/// leaves a deploy waiting.
struct Gate {
    dir: tempfile::TempDir,
}

impl Gate {
    fn path(&self) -> PathBuf {
        self.dir.path().join("open")
    }

    fn open(&self) {
        std::fs::write(self.path(), "").unwrap();
    }

    fn close(&self) {
        std::fs::remove_file(self.path()).unwrap();
    }
}

impl Drop for Gate {
    fn drop(&mut self) {
        let _ = std::fs::write(self.path(), "");
    }
}

/// A site whose deploys wait in a hook, holding the lock, until the gate opens (at most 2 min).
fn gated_site() -> (Site, Gate) {
    let gate = Gate {
        dir: tempfile::tempdir().unwrap(),
    };
    let hook = format!(
        "for _ in $(seq 2400); do [ -e '{open}' ] && exit 0; sleep 0.05; done; echo 'the test never opened {open}' >&2; exit 1",
        open = gate.path().display()
    );
    let site = Site::with(SiteOptions {
        extra_hooks: format!("[[hook]]\nname = \"gate\"\nrun = \"{hook}\"\n"),
        ..SiteOptions::default()
    });
    (site, gate)
}

/// Starts a deploy in the background and waits until it holds the lock.
fn start_holding(site: &Site) -> std::process::Child {
    let child = site
        .command(&["deploy"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !site.lock_exists() {
        assert!(
            Instant::now() < deadline,
            "the first deploy never took the lock"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    child
}

#[test]
fn a_second_deploy_fails_on_the_lock_naming_the_holder_or_waits_with_lock_wait() {
    let (site, gate) = gated_site();
    gate.open();
    site.deploy_ok();
    gate.close();
    site.change_code("concurrent");

    let mut first = start_holding(&site);
    let out = site.hoist(&["deploy"]);
    assert_exit(&out, EXIT_LOCK_HELD);
    let err = stderr(&out);
    assert!(
        err.contains("error: local: another deploy holds the lock: held by tester@"),
        "{err}"
    );
    assert!(err.contains(&format!("(pid {})", first.id())), "{err}");
    assert!(err.contains("for `hoist --config"), "{err}");
    assert!(
        err.contains("hint: wait for it, or pass --lock-wait 5m to queue behind it"),
        "{err}"
    );

    // The same, queued behind it: it says it waits, and succeeds once the first one is done.
    let mut waiter = site
        .command(&["deploy", "--lock-wait", "2m"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (lines, seen) = mpsc::channel();
    let reader = BufReader::new(waiter.stderr.take().unwrap());
    let reading = std::thread::spawn(move || {
        let mut text = String::new();
        for line in reader.lines().map_while(Result::ok) {
            let _ = lines.send(line.clone());
            text.push_str(&line);
            text.push('\n');
        }
        text
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let line = seen
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .expect("the queued deploy never said it waits for the lock");
        if line.contains("waiting for the lock: held by tester@") {
            break;
        }
    }
    gate.open();
    assert!(first.wait().unwrap().success());
    assert!(waiter.wait().unwrap().success());
    let err = reading.join().unwrap();
    assert!(
        err.contains("waiting for the lock: held by tester@"),
        "{err}"
    );
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
    assert!(
        stderr(&out).contains("for `hoist lock acquire`: database maintenance"),
        "{}",
        stderr(&out)
    );
    let out = site.hoist(&["rollback"]);
    assert_exit(&out, EXIT_LOCK_HELD);
    site.assert_live(&a);

    let status = site.hoist(&["status"]);
    assert!(
        stdout(&status).contains("lock:     held by tester@"),
        "{}",
        stdout(&status)
    );

    let out = site.hoist(&["lock", "release"]);
    assert_exit(&out, EXIT_OK);
    assert!(
        stdout(&out).starts_with("released the lock of example on local: it was held by tester@")
    );
    let b = site.deploy_ok();
    assert_ne!(a, b);
    assert!(stdout(&site.hoist(&["status"])).contains("lock:     free"));
}

#[test]
fn lock_release_refuses_a_running_deploy_unless_forced() {
    let (site, gate) = gated_site();
    let mut first = start_holding(&site);
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
    gate.open();
    let _ = first.wait();
}
