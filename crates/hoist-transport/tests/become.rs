//! `become` over SSH: hoist logs in as a user that is not root and runs what needs root through
//! `sudo -n`, against the testkit's real sshd, real sudo and a real sudoers file.
//!
//! The fixture creates two login users once (the tests run as root, as CI does):
//! `hoist-deploy`, whom the testkit's sudoers file lets run anything without a password,
//! and `hoist-nosudo`, who has no rule at all.

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use hoist_testkit::{login_user, open_to_other_users, SshServer};
use hoist_transport::{
    Become, BecomeScope, Cmd, Privileged, Ssh, SshTarget, Transport, TransportError,
};

const DEPLOY: &str = "hoist-deploy";
const NO_SUDO: &str = "hoist-nosudo";

/// The testkit's sshd, open to the login users of these tests.
fn server() -> SshServer {
    login_user(DEPLOY, true);
    login_user(NO_SUDO, false);
    let server = SshServer::start();
    open_to_other_users(&server);
    server
}

fn connect(server: &SshServer, user: &str, become_as: Option<Become>) -> Ssh {
    let mut target = SshTarget::new("web1", "web1");
    target.config_file = Some(server.client_config.clone());
    target.connect_timeout = Duration::from_secs(5);
    target.user = Some(user.into());
    target.become_as = become_as;
    Ssh::connect(&target).unwrap_or_else(|e| panic!("connect as {user}: {e}\n{}", server.log()))
}

fn become_root(scope: BecomeScope) -> Option<Become> {
    Some(Become {
        user: "root".into(),
        scope,
    })
}

/// A directory owned by `owner`, under a world-traversable parent.
fn dir_of(owner: &str) -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    fs::set_permissions(tmp.path(), fs::Permissions::from_mode(0o755)).unwrap();
    let dir = tmp.path().join("app");
    fs::create_dir(&dir).unwrap();
    let chowned = Command::new("chown")
        .arg(format!("{owner}:"))
        .arg(&dir)
        .status()
        .unwrap();
    assert!(chowned.success());
    (tmp, dir)
}

fn whoami(t: &dyn Transport) -> String {
    let out = t.exec(&Cmd::new("id").arg("-un")).unwrap();
    assert!(out.success(), "{}", out.stderr_text());
    out.stdout_text().trim().to_owned()
}

#[test]
fn become_true_runs_the_service_commands_as_root_and_the_rest_as_the_login_user() {
    let server = server();
    let host = connect(&server, DEPLOY, become_root(BecomeScope::Service));
    assert_eq!(whoami(&host), DEPLOY);
    assert_eq!(whoami(&Privileged(&host)), "root");

    // The environment and working directory of a command survive sudo.
    let (_tmp, dir) = dir_of(DEPLOY);
    let out = Privileged(&host)
        .exec(
            &Cmd::shell(r#"echo "$GREETING from $(pwd) as $(id -un)""#)
                .env("GREETING", "hello 'there'")
                .cwd(&dir),
        )
        .unwrap();
    assert_eq!(
        out.stdout_text().trim(),
        format!("hello 'there' from {} as root", dir.display())
    );

    // Files are written as the login user.
    host.write_file_atomic(&dir.join("a.txt"), b"a").unwrap();
    let owner = fs::metadata(dir.join("a.txt")).unwrap().uid();
    assert_ne!(owner, 0);

    // become_user: another user than root.
    let as_nobody = connect(
        &server,
        DEPLOY,
        Some(Become {
            user: "nobody".into(),
            scope: BecomeScope::Service,
        }),
    );
    assert_eq!(whoami(&Privileged(&as_nobody)), "nobody");
}

#[test]
fn become_all_writes_and_uploads_as_root_where_the_login_user_cannot() {
    let server = server();
    let (_tmp, root) = dir_of("root");
    let plain = connect(&server, DEPLOY, None);
    let refused = plain.write_file_atomic(&root.join("x"), b"x").unwrap_err();
    assert!(
        matches!(refused, TransportError::Remote { .. }),
        "{refused:?}"
    );

    let host = connect(&server, DEPLOY, become_root(BecomeScope::All));
    assert_eq!(whoami(&host), "root");
    host.create_dir_all(&root.join("releases")).unwrap();
    host.write_file_atomic(&root.join("releases/RELEASE.json"), b"{}")
        .unwrap();
    assert_eq!(fs::read(root.join("releases/RELEASE.json")).unwrap(), b"{}");

    // rsync on the host runs as root too (`--rsync-path="sudo -n rsync"`).
    let src = tempfile::tempdir().unwrap();
    fs::write(src.path().join("app.py"), "print('hi')\n").unwrap();
    fs::create_dir(src.path().join("pkg")).unwrap();
    fs::write(src.path().join("pkg/mod.py"), "x = 1\n").unwrap();
    let dest = root.join("releases/20260101T000000Z");
    let stats = host
        .upload_tree(
            src.path(),
            &[PathBuf::from("app.py"), PathBuf::from("pkg/mod.py")],
            &dest,
            None,
        )
        .unwrap();
    assert_eq!(stats.copied, 2);
    for file in ["app.py", "pkg/mod.py"] {
        let meta = fs::metadata(dest.join(file)).unwrap();
        assert_eq!(meta.uid(), 0, "{file} is owned by root");
    }
    assert_eq!(
        fs::read_to_string(dest.join("pkg/mod.py")).unwrap(),
        "x = 1\n"
    );
}

#[test]
fn a_missing_sudoers_rule_fails_at_once_with_the_line_to_add() {
    let server = server();
    let line = format!("{NO_SUDO} ALL=(root) NOPASSWD: ALL");

    let host = connect(&server, NO_SUDO, become_root(BecomeScope::Service));
    let started = Instant::now();
    let err = Privileged(&host)
        .exec(&Cmd::new("supervisorctl").arg("status"))
        .unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "sudo waited for a password"
    );
    assert!(matches!(err, TransportError::SudoRefused { .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        format!("web1: sudo asks {NO_SUDO} for a password to run commands as root, and hoist never waits for one; add this line to /etc/sudoers.d/hoist on the host (with `visudo -f /etc/sudoers.d/hoist`): {line}")
    );
    // Commands that need no root still run.
    assert_eq!(whoami(&host), NO_SUDO);

    // The same for the upload of `become = "all"`, where sudo runs rsync.
    let all = connect(&server, NO_SUDO, become_root(BecomeScope::All));
    let (_tmp, root) = dir_of("root");
    let src = tempfile::tempdir().unwrap();
    fs::write(src.path().join("app.py"), "").unwrap();
    let err = all
        .upload_tree(
            src.path(),
            &[PathBuf::from("app.py")],
            &root.join("r"),
            None,
        )
        .unwrap_err();
    assert!(err.to_string().ends_with(&line), "{err}");
}
