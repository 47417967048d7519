//! Test fixtures with real parts, for the tests of every hoist crate (a dev-dependency only).
//!
//! [`SshServer`] is a real OpenSSH server (`/usr/sbin/sshd`) on a free 127.0.0.1 port, with host
//! and client keys generated in a temporary directory and its own `sshd_config`. It writes a
//! private `ssh_config` whose `Host` aliases (`web1`, `web2`, `web3`, `sshd`) all reach it, and a
//! `known_hosts` that holds its key, so tests never read or touch `~/.ssh`. Several servers, or
//! several roots on one server, stand in for a fleet; [`write_client_config`] names hosts across
//! several servers.
//!
//! Running as root (as the tests and CI do): sshd refuses to start without its privilege
//! separation directory `/run/sshd`, which [`SshServer::start`] creates when missing. Root may
//! log in with a key (`PermitRootLogin prohibit-password`); `StrictModes no` lets sshd accept
//! key files in a world-readable temporary directory.
//!
//! [`ProcessGuard`] starts a server for a test and stops it, with every process it started, when
//! dropped. The sshd runs under one, and its sessions carry the guard's mark: a server a test
//! starts over SSH is stopped with the sshd.
//!
//! [`Site`] (built by [`SiteBuilder`] from typed options) is a copy of the example app with one
//! deploy root and loopback port per host and its hoist.toml, over SSH through an
//! [`SshServer`] when asked: the set-up every deploy test starts from.
//!
//! [`PostgresServer`] is a throwaway PostgreSQL (`initdb` + the postmaster) on a free 127.0.0.1
//! port, run as the `postgres` user when the tests run as root.

mod process_guard;

pub use process_guard::{marked_processes, new_mark, stop_marked, ProcessGuard, GUARD_MARK};

use std::fmt::Write as _;
use std::io::Read;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

mod postgres;
mod site;
mod users;

pub use postgres::PostgresServer;
pub use site::{copy_tree, example_dir, Health, Hook, Hosts, Site, SiteBuilder};
pub use users::{login_user, open_to_other_users, TEST_SUDOERS};

/// The `Host` aliases that [`SshServer::start`] writes into its own client config.
pub const ALIASES: &[&str] = &["sshd", "web1", "web2", "web3"];

/// A running `sshd -D` on 127.0.0.1, stopped when dropped with every process its sessions started.
pub struct SshServer {
    /// The loopback port it listens on.
    pub port: u16,
    /// An ssh_config with the `Host` aliases of [`ALIASES`], pass it as `ssh -F`.
    pub client_config: PathBuf,
    /// The known_hosts file that `client_config` uses; it holds this server's host key.
    pub known_hosts: PathBuf,
    /// The private key that may log in (as the current user).
    pub identity_file: PathBuf,
    /// The user the client logs in as: the one running the tests.
    pub user: String,
    /// This server's public host key line (`ssh-ed25519 AAAA...`).
    pub host_key: String,
    dir: tempfile::TempDir,
    /// Stops sshd and what its sessions started when the server is dropped.
    _sshd: ProcessGuard,
}

impl SshServer {
    /// Generates keys, writes the configs and starts sshd; returns once the port speaks SSH.
    ///
    /// # Panics
    ///
    /// When sshd or ssh-keygen is missing or sshd does not come up (a test fixture: it panics
    /// with what to install).
    #[must_use]
    pub fn start() -> SshServer {
        let dir = tempfile::Builder::new()
            .prefix("hoist-sshd-")
            .tempdir()
            .expect("create a temp dir for sshd");
        let d = dir.path();
        ensure_privsep_dir();
        let host_key = generate_key(&d.join("host_ed25519"));
        let client_key = generate_key(&d.join("id_ed25519"));
        std::fs::write(d.join("authorized_keys"), format!("{client_key}\n"))
            .expect("write authorized_keys");
        let user = current_user();
        let mut last_error = String::new();
        // A port picked by binding :0 can be taken by someone else before sshd binds it: retry.
        for _ in 0..5 {
            let port = free_port();
            let mark = process_guard::unique_mark();
            write_sshd_config(d, port, &mark);
            let log = d.join("sshd.log");
            let mut guard = ProcessGuard::spawn_with_mark(
                Command::new(sshd_path())
                    .arg("-D")
                    .arg("-e")
                    .arg("-f")
                    .arg(d.join("sshd_config"))
                    .stdin(Stdio::null())
                    .stdout(Stdio::null())
                    .stderr(std::fs::File::create(&log).expect("create sshd.log")),
                "sshd",
                "openssh-server",
                mark,
            );
            if wait_for_banner(port, &mut guard) {
                let server = SshServer {
                    port,
                    client_config: d.join("ssh_config"),
                    known_hosts: d.join("known_hosts"),
                    identity_file: d.join("id_ed25519"),
                    user: user.clone(),
                    host_key,
                    dir,
                    _sshd: guard,
                };
                std::fs::write(&server.known_hosts, server.known_hosts_line())
                    .expect("write known_hosts");
                let hosts: Vec<(&str, &SshServer)> =
                    ALIASES.iter().map(|alias| (*alias, &server)).collect();
                let text = client_config_text(&hosts, &server.known_hosts);
                std::fs::write(&server.client_config, text).expect("write ssh_config");
                return server;
            }
            guard.stop();
            last_error = std::fs::read_to_string(&log).unwrap_or_default();
        }
        panic!("sshd did not start on 127.0.0.1: {last_error}");
    }

    /// The temporary directory that holds this server's keys and configs.
    #[must_use]
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The known_hosts line for this server: `[127.0.0.1]:<port> ssh-ed25519 AAAA...`.
    #[must_use]
    pub fn known_hosts_line(&self) -> String {
        format!("[127.0.0.1]:{} {}\n", self.port, self.host_key)
    }

    /// The running processes of this server: sshd, its sessions and what they started.
    #[must_use]
    pub fn processes(&self) -> Vec<u32> {
        self._sshd.processes()
    }

    /// sshd's own log (stderr with `-e`), for assertion messages.
    #[must_use]
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("sshd.log")).unwrap_or_default()
    }
}

/// Writes an ssh_config at `path` in which each `(alias, server)` is a `Host alias` reaching that
/// server as its user with its key, checking host keys against `known_hosts`.
///
/// # Panics
///
/// When the file cannot be written.
pub fn write_client_config(path: &Path, hosts: &[(&str, &SshServer)], known_hosts: &Path) {
    std::fs::write(path, client_config_text(hosts, known_hosts)).expect("write ssh_config");
}

fn client_config_text(hosts: &[(&str, &SshServer)], known_hosts: &Path) -> String {
    let mut text = String::new();
    for (alias, server) in hosts {
        // Nothing here comes from ~/.ssh: known hosts, identity and user are all the fixture's.
        let _ = write!(
            text,
            "Host {alias}\n  HostName 127.0.0.1\n  Port {port}\n  User {user}\n  IdentityFile {key}\n  IdentitiesOnly yes\n  UserKnownHostsFile {known}\n  GlobalKnownHostsFile /dev/null\n  CheckHostIP no\n  LogLevel ERROR\n\n",
            port = server.port,
            user = server.user,
            key = server.identity_file.display(),
            known = known_hosts.display(),
        );
    }
    text
}

/// Generates an ed25519 key pair without a passphrase at `path` (`path.pub` too) and returns the
/// public key line without its comment.
///
/// # Panics
///
/// When ssh-keygen is missing or fails.
#[must_use]
pub fn generate_key(path: &Path) -> String {
    let status = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "hoist-test", "-f"])
        .arg(path)
        .stdin(Stdio::null())
        .status()
        .expect("run ssh-keygen: install openssh-client");
    assert!(status.success(), "ssh-keygen failed for {}", path.display());
    let public = std::fs::read_to_string(path.with_extension("pub")).expect("read the public key");
    public
        .split_whitespace()
        .take(2)
        .collect::<Vec<_>>()
        .join(" ")
}

/// A loopback port nobody listens on right now.
///
/// # Panics
///
/// When no port can be bound.
#[must_use]
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind a free loopback port")
        .port()
}

fn sshd_path() -> &'static str {
    if Path::new("/usr/sbin/sshd").exists() {
        "/usr/sbin/sshd"
    } else {
        "sshd"
    }
}

fn ensure_privsep_dir() {
    let dir = Path::new("/run/sshd");
    if !dir.exists() {
        // Only root can create it, and only root needs it (sshd's privilege separation).
        let _ = std::fs::create_dir_all(dir);
    }
}

fn write_sshd_config(dir: &Path, port: u16, mark: &str) {
    let d = dir.display();
    // The "remote" hosts are this machine: give their sessions the test's PATH, package index
    // and TLS settings, so they find the same python, uv and curl and reach the same package
    // index as the tests (a real server has its own).
    let passed: Vec<String> = std::env::vars()
        .filter(|(k, v)| {
            let k = k.to_ascii_uppercase();
            let wanted = k == "PATH"
                || k.starts_with("SSL_CERT")
                || k.starts_with("PIP_")
                || k.starts_with("UV_")
                || k.ends_with("_PROXY")
                || k == "REQUESTS_CA_BUNDLE"
                || k == "CURL_CA_BUNDLE"
                // scripts/test's mark: it finds what a test run left running.
                || k == "HOIST_TEST_RUN";
            wanted && !v.is_empty() && !v.contains(['"', ' ', '\n'])
        })
        .map(|(k, v)| format!("{k}={v}"))
        .chain(std::iter::once(format!("{GUARD_MARK}={mark}")))
        .collect();
    let mut text = format!(
        "Port {port}\n\
         ListenAddress 127.0.0.1\n\
         HostKey {d}/host_ed25519\n\
         PidFile {d}/sshd.pid\n\
         AuthorizedKeysFile {d}/authorized_keys\n\
         StrictModes no\n\
         PermitRootLogin prohibit-password\n\
         PubkeyAuthentication yes\n\
         PasswordAuthentication no\n\
         KbdInteractiveAuthentication no\n\
         UsePAM no\n\
         MaxSessions 100\n\
         MaxStartups 100\n\
         Subsystem sftp internal-sftp\n\
         LogLevel ERROR\n"
    );
    let _ = writeln!(text, "SetEnv {}", passed.join(" "));
    std::fs::write(dir.join("sshd_config"), text).expect("write sshd_config");
}

/// True once the port answers with an SSH banner; false when sshd exits or 10 s pass.
fn wait_for_banner(port: u16, sshd: &mut ProcessGuard) -> bool {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if sshd.try_wait().is_some() {
            return false;
        }
        if let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) {
            let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
            let mut buf = [0u8; 8];
            if stream.read_exact(&mut buf).is_ok() && buf.starts_with(b"SSH-") {
                return true;
            }
        }
        std::thread::sleep(Duration::from_millis(30));
    }
    false
}

fn current_user() -> String {
    let out = Command::new("id").arg("-un").output().expect("run id -un");
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_daemon_started_over_ssh_is_stopped_with_the_server() {
        let server = SshServer::start();
        let out = Command::new("ssh")
            .arg("-F")
            .arg(&server.client_config)
            .arg("web1")
            // A server that left its session behind, as `gunicorn --daemon` does.
            .arg("setsid sleep 300 </dev/null >/dev/null 2>&1 & echo $!")
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", server.log());
        let daemon: u32 = String::from_utf8_lossy(&out.stdout).trim().parse().unwrap();
        assert!(
            server.processes().contains(&daemon),
            "{:?}",
            server.processes()
        );
        drop(server);
        let stat = std::fs::read_to_string(format!("/proc/{daemon}/stat")).unwrap_or_default();
        assert!(
            stat.is_empty() || stat.contains(") Z"),
            "the daemon outlived the server: {stat}"
        );
    }

    #[test]
    fn every_alias_runs_a_command_over_real_ssh() {
        let server = SshServer::start();
        for alias in ALIASES {
            let out = Command::new("ssh")
                .arg("-F")
                .arg(&server.client_config)
                .args(["-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes"])
                .arg(alias)
                .arg("echo hello from $0")
                .stdin(Stdio::null())
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{alias}: {}\nsshd: {}",
                String::from_utf8_lossy(&out.stderr),
                server.log()
            );
            assert!(String::from_utf8_lossy(&out.stdout).starts_with("hello from"));
        }
    }
}
