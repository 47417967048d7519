//! Login users who are not root, for the tests of `become` (the tests run as root, as CI does).

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use crate::SshServer;

/// The sudoers file that gives the users of [`login_user`] with `sudo = true` their rule.
pub const TEST_SUDOERS: &str = "/etc/sudoers.d/hoist-test-become";

/// Creates the login user `name` when missing (idempotent, also across test processes run at
/// once: nextest runs each test in a process of its own), and, with `sudo`, lets it run
/// anything as anyone without a password through [`TEST_SUDOERS`]. A user created without
/// `sudo` has no rule at all.
///
/// # Panics
///
/// When sudo, useradd or visudo is missing or fails (it names what to install).
pub fn login_user(name: &str, sudo: bool) {
    // One at a time across processes: two `useradd`s at once fail on /etc/passwd's lock, and
    // two rewrites of the sudoers file at once lose a rule.
    let lock = fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open("/tmp/hoist-testkit-users.lock")
        .expect("open /tmp/hoist-testkit-users.lock");
    lock.lock().expect("lock /tmp/hoist-testkit-users.lock");
    assert!(
        Path::new("/usr/bin/sudo").exists(),
        "sudo is missing: run scripts/install-deps (apt-get install sudo)"
    );
    let known = || {
        Command::new("id")
            .arg(name)
            .output()
            .is_ok_and(|o| o.status.success())
    };
    if !known() {
        let made = Command::new("useradd")
            .args(["--create-home", "--shell", "/bin/sh", name])
            .output()
            .expect("run useradd (package passwd)");
        assert!(
            known(),
            "useradd {name}: {}",
            String::from_utf8_lossy(&made.stderr)
        );
    }
    // useradd locks the password ("!"), and sshd without PAM refuses a locked account even
    // for a key; "*" has no password either, without the lock.
    let unlocked = Command::new("usermod")
        .args(["-p", "*", name])
        .status()
        .unwrap();
    assert!(unlocked.success(), "usermod -p '*' {name}");
    if sudo {
        let rule = format!("{name} ALL=(ALL) NOPASSWD: ALL\n");
        let text = fs::read_to_string(TEST_SUDOERS).unwrap_or_default();
        if !text.lines().any(|l| format!("{l}\n") == rule) {
            let tmp = format!("{TEST_SUDOERS}.tmp-{}", std::process::id());
            fs::write(&tmp, format!("{text}{rule}")).unwrap();
            fs::set_permissions(&tmp, fs::Permissions::from_mode(0o440)).unwrap();
            let checked = Command::new("visudo")
                .args(["-cf", &tmp])
                .output()
                .expect("run visudo (package sudo)");
            assert!(checked.status.success(), "visudo: {checked:?}");
            fs::rename(&tmp, TEST_SUDOERS).unwrap();
        }
    }
}

/// Lets other users log in to `server` with its key: sshd reads `authorized_keys` as the user
/// logging in, and the server's directory is private to root.
///
/// # Panics
///
/// When the permissions cannot be changed.
pub fn open_to_other_users(server: &SshServer) {
    fs::set_permissions(server.dir(), fs::Permissions::from_mode(0o755)).unwrap();
    fs::set_permissions(
        server.dir().join("authorized_keys"),
        fs::Permissions::from_mode(0o644),
    )
    .unwrap();
}
