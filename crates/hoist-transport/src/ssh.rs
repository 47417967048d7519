//! [`Ssh`]: a host reached with the system `ssh`, one multiplexed master connection per host.
//!
//! The master is started through the `openssh` crate, so `~/.ssh/config`, ssh-agent, ProxyJump
//! and per-host users, ports and identity files work as they do for plain `ssh` and Ansible.
//! Every trait method is ONE remote command: a [`Cmd`] rendered by [`Cmd::render`]. Methods that
//! need several steps run a fixed `sh -c` script that receives every value as a positional
//! parameter (`"$1"`), so no value is ever spliced into shell text. Files travel with the
//! system `rsync` over the same control socket.

use std::ffi::OsStr;
use std::io::Write as _;
use std::num::NonZeroUsize;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use openssh::{ControlPersist, KnownHosts, Session, SessionBuilder};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::local::parse_df;
use crate::manifest::{plan_against, MANIFEST_FILE};
use crate::ssh_shell::{count_shell_level, kill_watched, RemoteShell};
use crate::turns::Turns;
use crate::{
    shell_quote, sudo_refusal, Become, BecomeScope, Cmd, FileKind, LineSink, LinkRead, Output,
    StateRead, Stream, Transport, TransportError, UploadStats,
};

/// How an SSH host's key is checked against known_hosts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum HostKeyPolicy {
    /// The key must already be in known_hosts (`StrictHostKeyChecking=yes`).
    #[default]
    Strict,
    /// Trust on first use: an unknown key is added (`StrictHostKeyChecking=accept-new`). A key
    /// that differs from the recorded one is still refused.
    AcceptNew,
}

/// Everything needed to reach one host over SSH.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SshTarget {
    /// The inventory name, shown in every message.
    pub name: String,
    /// Host name, IP address or `~/.ssh/config` alias.
    pub address: String,
    /// Login user; `None` leaves it to ssh (its config, else the local user).
    pub user: Option<String>,
    /// Port; `None` leaves it to ssh.
    pub port: Option<u16>,
    /// The only key to offer (`ssh -i`, with `IdentitiesOnly=yes`).
    pub identity_file: Option<PathBuf>,
    /// An ssh_config to use instead of `~/.ssh/config` (`ssh -F`).
    pub config_file: Option<PathBuf>,
    /// How the host key is checked.
    pub known_hosts: HostKeyPolicy,
    /// How long connecting (TCP and the SSH banner) may take; whole seconds, at least 1.
    pub connect_timeout: Duration,
    /// Which commands run as another user through `sudo -n`; `None` runs all as the login user.
    pub become_as: Option<Become>,
}

impl SshTarget {
    /// A target named `name` at `address` with ssh's defaults, strict host keys and a 10 s
    /// connect timeout.
    pub fn new(name: impl Into<String>, address: impl Into<String>) -> Self {
        SshTarget {
            name: name.into(),
            address: address.into(),
            user: None,
            port: None,
            identity_file: None,
            config_file: None,
            known_hosts: HostKeyPolicy::Strict,
            connect_timeout: Duration::from_secs(10),
            become_as: None,
        }
    }

    /// The address as ssh and `ssh-keygen -R` write it: `[host]:port` for a port, else `host`.
    #[must_use]
    pub fn display_address(&self) -> String {
        match self.port {
            Some(port) => format!("[{}]:{port}", self.address),
            None => self.address.clone(),
        }
    }
}

/// How long the master connection stays up with no command running.
const CONTROL_PERSIST_SECS: usize = 60;

/// After this much idle time the master may be about to exit: check it before the next command.
const RECHECK_AFTER: Duration = Duration::from_secs(45);

/// Exit statuses the fixed scripts below use to say "missing", "exists", "is a directory".
const MISSING: i32 = 44;
const EXISTS: i32 = 45;
const IS_DIR: i32 = 46;

/// How long a command waits for the host's shell while another thread runs one there, before
/// it takes a session of its own.
const SHELL_WAIT: Duration = Duration::from_millis(50);

/// A host reached over SSH through one multiplexed master connection.
///
/// `Ssh` owns a small single-threaded tokio runtime for the async `openssh` crate; the
/// [`Transport`] methods block on it. The master exits after a minute without commands; the
/// next command starts a new one.
pub struct Ssh {
    target: SshTarget,
    runtime: tokio::runtime::Runtime,
    session: RwLock<Arc<Session>>,
    last_used: Mutex<Option<Instant>>,
    /// The long-lived remote shell commands run in (started on first use).
    shell: Mutex<Option<RemoteShell>>,
    /// Whose turn it is at `shell`.
    shell_turns: Turns,
}

impl std::fmt::Debug for Ssh {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ssh").field("target", &self.target).finish()
    }
}

impl Ssh {
    /// Connects to the host: starts the master connection, checking the host key.
    ///
    /// # Errors
    ///
    /// [`TransportError::Unreachable`] (refused, timed out, unknown name),
    /// [`TransportError::HostKeyChanged`], [`TransportError::HostKeyUnknown`],
    /// [`TransportError::AuthFailed`], each naming the host.
    pub fn connect(target: &SshTarget) -> Result<Ssh, TransportError> {
        // ssh reads a destination that starts with "-" as an option (`-oProxyCommand=...`).
        let address = &target.address;
        if address.is_empty()
            || address.starts_with('-')
            || address.chars().any(|c| c.is_whitespace() || c.is_control())
        {
            return Err(TransportError::Unreachable {
                host: target.name.clone(),
                address: address.clone(),
                detail: "not a host name, IP address or ssh_config alias".into(),
            });
        }
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|source| TransportError::Spawn {
                host: target.name.clone(),
                command: "a tokio runtime for ssh".into(),
                source,
            })?;
        let session = launch(&runtime, target)?;
        Ok(Ssh {
            target: target.clone(),
            runtime,
            session: RwLock::new(Arc::new(session)),
            last_used: Mutex::new(Some(Instant::now())),
            shell: Mutex::new(None),
            shell_turns: Turns::default(),
        })
    }

    /// The control socket of the master connection (for `ssh -S` and rsync).
    #[must_use]
    pub fn control_socket(&self) -> PathBuf {
        self.current_session().control_socket().to_path_buf()
    }

    /// What this transport connects to.
    #[must_use]
    pub fn target(&self) -> &SshTarget {
        &self.target
    }

    fn current_session(&self) -> Arc<Session> {
        Arc::clone(
            &self
                .session
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        )
    }

    /// The live session, starting a new master when the old one may have exited (idle for
    /// longer than it persists, or lost).
    fn session(&self) -> Result<Arc<Session>, TransportError> {
        let session = self.current_session();
        let stale = self
            .last_used
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .is_none_or(|at| at.elapsed() >= RECHECK_AFTER);
        // A master that exited removes its socket: no need to ask it.
        let gone = !session.control_socket().exists();
        if gone || (stale && self.runtime.block_on(session.check()).is_err()) {
            let fresh = Arc::new(launch(&self.runtime, &self.target)?);
            *self
                .session
                .write()
                .unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::clone(&fresh);
            return Ok(fresh);
        }
        Ok(session)
    }

    fn mark_used(&self, healthy: bool) {
        *self
            .last_used
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = healthy.then(Instant::now);
    }

    fn host_name(&self) -> String {
        self.target.name.clone()
    }

    /// Runs one command, through `sudo -n` when the host's `become` applies to it; sudo's own
    /// refusal (it wants a password) is an error naming the sudoers line to add.
    fn run(&self, cmd: &Cmd) -> Result<Output, TransportError> {
        self.run_with(cmd, None)
    }

    /// [`Ssh::run`], passing each line of output to `on_line` as it comes when there is one.
    fn run_with(&self, cmd: &Cmd, on_line: Option<LineSink<'_>>) -> Result<Output, TransportError> {
        let login = |cmd: &Cmd| match on_line {
            Some(on_line) => self.run_streaming(cmd, on_line),
            None => self.run_as_login(cmd),
        };
        let Some(become_as) = self.target.become_as.as_ref().filter(|b| b.applies_to(cmd)) else {
            return login(cmd);
        };
        let out = login(&become_as.wrap(cmd))?;
        if out.success() {
            return Ok(out);
        }
        match sudo_refusal(&self.target.name, &self.login(), become_as, &out) {
            Some(refused) => Err(refused),
            None => Ok(out),
        }
    }

    /// The user hoist logs in as: the configured one, else what the host says.
    fn login(&self) -> String {
        if let Some(user) = &self.target.user {
            return user.clone();
        }
        self.run_as_login(&Cmd::new("id").arg("-un"))
            .map(|out| out.stdout_text().trim().to_string())
            .ok()
            .filter(|name| !name.is_empty())
            .unwrap_or_else(|| "<login user>".to_string())
    }

    /// Runs one command as the login user: in the host's long-lived shell when it can be had
    /// (a pipe round trip), else in a session of its own.
    fn run_as_login(&self, cmd: &Cmd) -> Result<Output, TransportError> {
        self.run_in_shell(cmd, None)
    }

    /// [`Ssh::run_as_login`], passing each line of output to `on_line`: as it comes when the
    /// host's shell can stream it (else in a watched session of its own, [`WATCHED`]).
    fn run_in_shell(
        &self,
        cmd: &Cmd,
        on_line: Option<LineSink<'_>>,
    ) -> Result<Output, TransportError> {
        let session = self.session()?;
        // The shell runs one command at a time. A command from another thread waits for it a
        // little (prune beside the upload: most commands take a few milliseconds, a session of
        // its own 40-150 ms and the login shell's start-up files), and gets a session of its own
        // when the shell stays busy (the lock's heartbeat while a long hook runs).
        // Turns come in the order asked ([`Turns`]): a thread running commands back to back does
        // not starve the others.
        let Some(turn) = self.shell_turns.wait(SHELL_WAIT) else {
            return self.run_in_session_or_watched(&session, cmd, on_line);
        };
        let mut shell = self
            .shell
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if shell
            .as_ref()
            .is_none_or(|s| s.control_socket != session.control_socket())
        {
            *shell = RemoteShell::start(session.control_socket()).ok();
        }
        if let Some(running) = shell.as_mut().filter(|s| on_line.is_none() || s.streams) {
            let ran = match on_line {
                Some(on_line) => running.run_streaming(cmd, on_line),
                None => running.run(cmd),
            };
            return match ran {
                Ok(output) => {
                    self.mark_used(true);
                    Ok(output)
                }
                Err(e) => {
                    *shell = None;
                    self.mark_used(false);
                    Err(TransportError::ConnectionLost {
                        host: self.host_name(),
                        detail: format!("while running `{}`: {e}", cmd.render()),
                    })
                }
            };
        }
        drop(shell);
        drop(turn);
        self.run_in_session_or_watched(&session, cmd, on_line)
    }

    fn run_in_session_or_watched(
        &self,
        session: &Arc<Session>,
        cmd: &Cmd,
        on_line: Option<LineSink<'_>>,
    ) -> Result<Output, TransportError> {
        match on_line {
            Some(on_line) if cmd.stdin.is_none() => self.run_watched(session, cmd, on_line),
            Some(on_line) => {
                // Its input closes the channel's: no watcher can be kept, and the output comes
                // once it has ended.
                let out = self.run_in_session(session, cmd)?;
                crate::replay_lines(&out, on_line);
                Ok(out)
            }
            None => self.run_in_session(session, cmd),
        }
    }

    /// Runs `cmd` as the login user, passing each line of output to `on_line` as it comes: in
    /// the host's long-lived shell (a pipe round trip, not a session's set-up), watched there as
    /// every command is, so that if hoist dies first the command with everything it started is
    /// killed.
    fn run_streaming(&self, cmd: &Cmd, on_line: LineSink<'_>) -> Result<Output, TransportError> {
        self.run_in_shell(cmd, Some(on_line))
    }

    /// Runs `cmd` in an SSH session of its own, watched ([`WATCHED`]), passing each line of
    /// output to `on_line` as it comes: for a host whose shell cannot stream, or while another
    /// thread uses it.
    fn run_watched(
        &self,
        session: &Arc<Session>,
        cmd: &Cmd,
        on_line: LineSink<'_>,
    ) -> Result<Output, TransportError> {
        let watched = Cmd::new("sh")
            .arg("-c")
            .arg(WATCHED)
            .arg("hoist")
            .arg(cmd.render());
        self.run_in_session_with(session, &watched, Some(on_line))
    }

    /// Runs one rendered command in an SSH session of its own.
    fn run_in_session(&self, session: &Arc<Session>, cmd: &Cmd) -> Result<Output, TransportError> {
        self.run_in_session_with(session, cmd, None)
    }

    fn run_in_session_with(
        &self,
        session: &Arc<Session>,
        cmd: &Cmd,
        on_line: Option<LineSink<'_>>,
    ) -> Result<Output, TransportError> {
        let session = Arc::clone(session);
        let rendered = cmd.render();
        let result = self.runtime.block_on(run_remote(
            &session,
            &rendered,
            cmd.stdin.as_deref(),
            on_line,
        ));
        match result {
            Ok(output) => {
                self.mark_used(true);
                Ok(output)
            }
            Err(RunError::Lost(detail)) => {
                // Exit 255 is also what a command that exits 255 by itself looks like: if the
                // master is still up, the connection was fine and the command failed.
                if self.runtime.block_on(session.check()).is_ok() {
                    self.mark_used(true);
                    return Ok(Output {
                        status: 255,
                        stdout: detail.stdout,
                        stderr: detail.stderr,
                    });
                }
                self.mark_used(false);
                Err(TransportError::ConnectionLost {
                    host: self.host_name(),
                    detail: format!("while running `{rendered}`"),
                })
            }
            Err(RunError::Spawn(source)) => {
                self.mark_used(false);
                Err(TransportError::Spawn {
                    host: self.host_name(),
                    command: rendered,
                    source,
                })
            }
        }
    }

    /// Runs a fixed `sh -c` script with `args` as `$1`, `$2`, ...: a [`Cmd::brief`] one, as every
    /// such script of this file is (file operations only).
    fn script(
        &self,
        script: &str,
        args: &[&Path],
        stdin: Option<&[u8]>,
    ) -> Result<Output, TransportError> {
        let mut cmd = Cmd::new("sh").brief().arg("-c").arg(script).arg("hoist");
        for arg in args {
            cmd = cmd.path_arg(arg);
        }
        if let Some(bytes) = stdin {
            cmd = cmd.stdin(bytes.to_vec());
        }
        self.run(&cmd)
    }

    /// [`WRITE_ATOMIC`] of `contents` to `path`, the file's mode from `umask`, synced when
    /// `sync`.
    fn write_atomic(
        &self,
        path: &Path,
        contents: &[u8],
        umask: &str,
        sync: bool,
    ) -> Result<(), TransportError> {
        let random = self.random()?;
        let args = [
            path,
            Path::new(&random),
            Path::new(umask),
            Path::new(if sync { "sync" } else { "" }),
        ];
        let out = self.script(WRITE_ATOMIC, &args, Some(contents))?;
        self.expect_success("write", path, &out)
    }

    /// The random part of a temporary file's name on the host.
    fn random(&self) -> Result<String, TransportError> {
        crate::ssh_shell::random_secret().map_err(|e| TransportError::Other {
            host: self.host_name(),
            message: format!("reading /dev/urandom: {e}"),
        })
    }

    fn failed(&self, action: &'static str, path: &Path, out: &Output) -> TransportError {
        let tail = out.tail(3);
        TransportError::Remote {
            host: self.host_name(),
            action,
            path: path.to_path_buf(),
            detail: if tail.is_empty() {
                format!("exit status {}", out.status)
            } else {
                tail
            },
        }
    }

    fn expect_success(
        &self,
        action: &'static str,
        path: &Path,
        out: &Output,
    ) -> Result<(), TransportError> {
        if out.success() {
            Ok(())
        } else {
            Err(self.failed(action, path, out))
        }
    }

    /// Sends `files` (relative to `src`) into `dest` with the system rsync over the master
    /// connection, creating `dest`; compares nothing with any earlier release.
    fn rsync_to(
        &self,
        src: &Path,
        files: &[PathBuf],
        dest: &Path,
    ) -> Result<UploadStats, TransportError> {
        let session = self.session()?;
        let socket = session.control_socket().to_path_buf();
        let src = std::path::absolute(src).unwrap_or_else(|_| src.to_path_buf());
        let list = nul_list(files);
        // rsync splits `-e` itself, honouring quotes; ControlMaster=no and port 9 make sure it
        // can only use our master, never open a second connection of its own.
        let ssh = format!(
            "ssh -S {} -o ControlMaster=no -o BatchMode=yes -p 9",
            shell_quote(&socket.to_string_lossy())
        );
        // The remote side creates `dest` in the same round trip: this runs in its shell. With
        // `become = "all"` both run through `sudo -n`, so the release may be owned by root.
        let mkdir = Cmd::new("mkdir").args(["-p", "--"]).path_arg(dest);
        let become_as = self
            .target
            .become_as
            .as_ref()
            .filter(|b| b.scope == BecomeScope::All);
        let rsync_path = match become_as {
            Some(become_as) => format!(
                "{} && {}",
                become_as.wrap(&mkdir).render(),
                become_as.wrap(&Cmd::new("rsync")).render()
            ),
            None => format!("{} && rsync", mkdir.render()),
        };
        let mut command = Command::new("rsync");
        command
            .args(["-a", "-ii", "--protect-args", "--files-from=-", "--from0"])
            .arg("--out-format=%i %l")
            .arg(format!("--rsync-path={rsync_path}"))
            .arg("-e")
            .arg(ssh);
        let mut source = src.into_os_string();
        source.push("/");
        let mut destination = std::ffi::OsString::from("hoist:");
        destination.push(dest.as_os_str());
        destination.push("/");
        command
            .arg(source)
            .arg(destination)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let spawn_err = |source| TransportError::Spawn {
            host: self.host_name(),
            command: "rsync (install rsync on this machine)".into(),
            source,
        };
        let mut child = command.spawn().map_err(spawn_err)?;
        let mut stdin = child.stdin.take().expect("stdin is piped");
        let writer = std::thread::spawn(move || {
            let _ = stdin.write_all(&list);
        });
        let out = child.wait_with_output().map_err(spawn_err)?;
        let _ = writer.join();
        let output = Output {
            status: out.status.code().unwrap_or(-1),
            stdout: out.stdout,
            stderr: out.stderr,
        };
        if !output.success() {
            if let Some(refused) =
                become_as.and_then(|b| sudo_refusal(&self.target.name, &self.login(), b, &output))
            {
                return Err(refused);
            }
            self.mark_used(false);
            return Err(self.failed("upload to", dest, &output));
        }
        self.mark_used(true);
        Ok(parse_itemized(&output.stdout_text()))
    }
}

/// Paths as rsync's `--from0 --files-from` reads them: each ended by a NUL byte.
fn nul_list(files: &[PathBuf]) -> Vec<u8> {
    let mut list = Vec::new();
    for file in files {
        list.extend_from_slice(file.as_os_str().as_bytes());
        list.push(0);
    }
    list
}

/// Starts the master connection for `target`, with a bound on the whole attempt.
fn launch(
    runtime: &tokio::runtime::Runtime,
    target: &SshTarget,
) -> Result<Session, TransportError> {
    let mut builder = SessionBuilder::default();
    let timeout = target.connect_timeout.max(Duration::from_secs(1));
    builder
        .known_hosts_check(match target.known_hosts {
            HostKeyPolicy::Strict => KnownHosts::Strict,
            HostKeyPolicy::AcceptNew => KnownHosts::Add,
        })
        // The socket path must fit in 108 bytes: the temp dir, not a deep project path.
        .control_directory(std::env::temp_dir())
        .control_persist(ControlPersist::IdleFor(
            NonZeroUsize::new(CONTROL_PERSIST_SECS).expect("non-zero"),
        ))
        .connect_timeout(timeout)
        .server_alive_interval(Duration::from_secs(15));
    if let Some(user) = &target.user {
        builder.user(user.clone());
    }
    if let Some(port) = target.port {
        builder.port(port);
    }
    if let Some(key) = &target.identity_file {
        builder.keyfile(key);
    }
    if let Some(config) = &target.config_file {
        builder.config_file(config);
    }
    // ConnectTimeout bounds the TCP connect and the banner; this bounds what comes after (a
    // server that stalls during key exchange or authentication).
    let bound = timeout * 3 + Duration::from_secs(5);
    let attempt = runtime
        .block_on(async { tokio::time::timeout(bound, builder.connect(&target.address)).await });
    match attempt {
        Ok(Ok(session)) => Ok(session),
        Ok(Err(err)) => Err(classify_connect_error(target, &err)),
        Err(_) => Err(TransportError::Unreachable {
            host: target.name.clone(),
            address: target.display_address(),
            detail: format!("no SSH session within {}s", bound.as_secs()),
        }),
    }
}

/// Turns what ssh said when the master failed into the error that names the cause.
fn classify_connect_error(target: &SshTarget, err: &openssh::Error) -> TransportError {
    let text = match err {
        openssh::Error::Connect(io) | openssh::Error::Master(io) => io.to_string(),
        other => other.to_string(),
    };
    classify_ssh_text(target, &text)
}

pub(crate) fn classify_ssh_text(target: &SshTarget, text: &str) -> TransportError {
    let host = target.name.clone();
    let address = target.display_address();
    if text.contains("REMOTE HOST IDENTIFICATION HAS CHANGED")
        || text.contains("has changed and you have requested strict checking")
    {
        let known_hosts_line = offending_line(text).unwrap_or_else(|| "known_hosts".into());
        let remove_command = remove_command(&known_hosts_line, &address);
        return TransportError::HostKeyChanged {
            host,
            address,
            known_hosts_line,
            remove_command,
        };
    }
    if text.contains("Host key verification failed") {
        return TransportError::HostKeyUnknown { host, address };
    }
    let detail = last_message(text);
    if text.contains("Permission denied") || text.contains("Too many authentication failures") {
        return TransportError::AuthFailed {
            host,
            address,
            detail,
        };
    }
    TransportError::Unreachable {
        host,
        address,
        detail,
    }
}

/// `path:line` from ssh's "Offending ED25519 key in /root/.ssh/known_hosts:3".
fn offending_line(text: &str) -> Option<String> {
    let line = text
        .lines()
        .find(|l| l.contains("Offending ") && l.contains(" key in "))?;
    let (_, rest) = line.split_once(" key in ")?;
    Some(rest.trim().to_owned())
}

/// The command that removes the known_hosts entry at `path:line`. The name is read from the
/// entry itself, since an ssh_config alias (`web1`) is recorded under the address it resolves
/// to (`[127.0.0.1]:2222`); a hashed entry (`|1|…`) cannot be read, so `address` stands in.
fn remove_command(known_hosts_line: &str, address: &str) -> String {
    let entry_name = known_hosts_line.rsplit_once(':').and_then(|(path, line)| {
        let number: usize = line.parse().ok()?;
        let text = std::fs::read_to_string(path).ok()?;
        let entry = text.lines().nth(number.checked_sub(1)?)?;
        let names = entry.split_whitespace().next()?;
        let first = names.split(',').next()?;
        (!first.starts_with('|') && !first.is_empty()).then(|| first.to_owned())
    });
    match (known_hosts_line.rsplit_once(':'), entry_name) {
        (Some((path, _)), Some(name)) => format!(
            "ssh-keygen -f {} -R {}",
            crate::shell_quote(path),
            crate::shell_quote(&name)
        ),
        _ => format!("ssh-keygen -R {}", crate::shell_quote(address)),
    }
}

/// ssh's last meaningful line, without its `ssh: ` prefix and noise.
fn last_message(text: &str) -> String {
    text.lines()
        .map(str::trim)
        .rfind(|l| !l.is_empty() && !l.starts_with("Warning: Permanently added"))
        .map(|l| l.strip_prefix("ssh: ").unwrap_or(l).to_owned())
        .unwrap_or_else(|| "ssh failed without a message".to_owned())
}

enum RunError {
    /// The connection dropped (or the command exited 255): what it printed so far.
    Lost(Output),
    Spawn(std::io::Error),
}

/// Runs `rendered` in a session of its own. With `on_line`, each line of output goes to it as
/// it comes, and the command's standard input stays open (and empty) until it has ended, for
/// [`WATCHED`]'s watcher.
async fn run_remote(
    session: &Session,
    rendered: &str,
    stdin: Option<&[u8]>,
    on_line: Option<LineSink<'_>>,
) -> Result<Output, RunError> {
    let hold_stdin = on_line.is_some() && stdin.is_none();
    let mut command = session.raw_command(rendered);
    command
        .stdin(if stdin.is_some() || hold_stdin {
            openssh::Stdio::piped()
        } else {
            openssh::Stdio::null()
        })
        .stdout(openssh::Stdio::piped())
        .stderr(openssh::Stdio::piped());
    let mut child = command
        .spawn()
        .await
        .map_err(|e| RunError::Spawn(std::io::Error::other(e)))?;
    let mut writer = child.stdin().take();
    let reader_out = child.stdout().take();
    let reader_err = child.stderr().take();
    let write = async {
        if let Some(bytes) = stdin {
            if let Some(mut input) = writer.take() {
                // A failed write shows as the command's own failure (it read a short input).
                let _ = input.write_all(bytes).await;
                let _ = input.shutdown().await;
                // Closed here, not after the command ends: a command that reads its input to
                // the end (`cat`, `xargs`) only ends once it is closed (a pipe's shutdown does
                // not close it).
                drop(input);
            }
        }
    };
    let read_out = read_remote(reader_out, Stream::Stdout, on_line);
    let read_err = read_remote(reader_err, Stream::Stderr, on_line);
    let ((), stdout, stderr) = tokio::join!(write, read_out, read_err);
    // Held open until here: the watcher of a streamed command reads it.
    drop(writer);
    // The crate maps exit 127 and 255 to errors; we read the output first so that it is kept.
    match child.wait().await {
        Ok(status) => Ok(Output {
            status: status.code().unwrap_or(-1),
            stdout,
            stderr,
        }),
        Err(openssh::Error::Remote(e)) if e.kind() == std::io::ErrorKind::NotFound => Ok(Output {
            status: 127,
            stdout,
            stderr,
        }),
        Err(openssh::Error::RemoteProcessTerminated | openssh::Error::Disconnected) => {
            Err(RunError::Lost(Output {
                status: 255,
                stdout,
                stderr,
            }))
        }
        Err(e) => Err(RunError::Spawn(std::io::Error::other(e))),
    }
}

/// Reads one output stream of a remote command to its end; with `on_line`, line by line.
async fn read_remote(
    reader: Option<impl tokio::io::AsyncRead + Unpin>,
    stream: Stream,
    on_line: Option<LineSink<'_>>,
) -> Vec<u8> {
    use tokio::io::AsyncBufReadExt as _;
    let mut all = Vec::new();
    let Some(reader) = reader else {
        return all;
    };
    let Some(on_line) = on_line else {
        let mut reader = reader;
        let _ = reader.read_to_end(&mut all).await;
        return all;
    };
    let mut reader = tokio::io::BufReader::new(reader);
    let mut line = Vec::new();
    loop {
        line.clear();
        match reader.read_until(b'\n', &mut line).await {
            Ok(0) | Err(_) => break,
            Ok(_) => {
                all.extend_from_slice(&line);
                let text = String::from_utf8_lossy(&line);
                on_line(stream, text.trim_end_matches(['\n', '\r']));
            }
        }
    }
    all
}

/// `readlink` prints the target and one newline; a target may itself end in newlines.
fn strip_one_newline(mut bytes: Vec<u8>) -> Vec<u8> {
    if bytes.last() == Some(&b'\n') {
        bytes.pop();
    }
    bytes
}

fn path_from_bytes(bytes: Vec<u8>) -> PathBuf {
    PathBuf::from(OsStr::from_bytes(&bytes))
}

// The scripts: constant text; values arrive as "$1", "$2" and are never part of the script.

/// Runs `$1` (a rendered command) watched, as the long-lived shell runs its commands: the
/// channel's input (kept open by hoist, fd 3) reaching end-of-file means hoist is gone, and
/// the command with everything it started is killed ([`kill_watched!`]). A background list
/// reads /dev/null unless told otherwise, hence fd 3. It counts itself a shell level as the
/// long-lived shell does ([`count_shell_level!`]).
const WATCHED: &str = concat!(
    "exec 3<&0\n",
    count_shell_level!(),
    "\n",
    kill_watched!(),
    r#"
( eval "$1" ) </dev/null & p=$!
( IFS= read -r _ <&3 || __hoist_kill "$p" ) >/dev/null 2>&1 & w=$!
wait "$p"; rc=$?
kill -s KILL "$w" 2>/dev/null; wait "$w" 2>/dev/null
exit "$rc""#
);

/// Hard-links the files listed on stdin (NUL-separated, relative) from the previous release
/// `$1` into `$2`, making their folders: `cp -l --parents`, a few processes for any number of
/// files.
const LINK_UNCHANGED: &str =
    r#"mkdir -p -- "$2" && cd -- "$1" && exec xargs -0 -r cp -l --parents -t "$2" --"#;

/// A file removed between the test and `cat` is missing too, not an error (another deploy's lock
/// released while this one reads who holds it).
const READ_FILE: &str =
    r#"[ -e "$1" ] || exit 44; cat -- "$1" && exit 0; [ -e "$1" ] || exit 44; exit 1"#;

/// [`READ_FILE`] of each argument, one line each: `+` and the file in base64, or `-` when it
/// does not exist.
const READ_FILES: &str = r#"for f; do
if [ -e "$f" ]; then printf +; base64 -w 0 -- "$f" || exit 1; echo; else echo -; fi
done"#;

/// [`WRITE_ATOMIC`] of each argument after the first (the random part of the temporary
/// names) in order, its contents the next line of input (base64).
const WRITE_FILES_ATOMIC: &str = r#"umask 022; set -C; r=$1; shift
for f; do
IFS= read -r b || exit 1
tmp="${f%/*}/.${f##*/}.hoist-tmp-$r"
exec 4>"$tmp" || exit 1
if base64 -d >&4 <<HOIST-B64 && exec 4>&- && sync -- "$tmp" && mv -f -- "$tmp" "$f"; then continue; fi
$b
HOIST-B64
rm -f -- "$tmp"; exit 1
done"#;

/// Writes its input to `$1` atomically: to a temporary file `.<name>.hoist-tmp-<$2>` (`$2`
/// random from hoist) made with `O_CREAT|O_EXCL` (the shell's noclobber, `set -C`), so that a
/// symlink planted under any name can never redirect the write, as with `mktemp` but without
/// its process; the mode from `umask $3` (no `chmod`); synced unless `$4` is empty; then
/// renamed onto `$1`.
const WRITE_ATOMIC: &str = r#"umask "$3"; set -C; tmp="${1%/*}/.${1##*/}.hoist-tmp-$2"
exec 4>"$tmp" || exit 1
if cat >&4 && exec 4>&- && { [ -z "$4" ] || sync -- "$tmp"; } && mv -f -- "$tmp" "$1"; then exit 0; fi
rm -f -- "$tmp"; exit 1"#;

const APPEND_LINE: &str = r#"cat >> "$1" && sync -- "$1""#;

/// `rm -rf`, brief (no watcher): it ends by itself, and a removal that goes on after hoist is
/// gone leaves nothing another would not.
const REMOVE_ALL: &str = r#"exec rm -rf -- "$1""#;

/// `mkdir -p`, started only when the directory is not there (as on every redeploy).
const CREATE_DIR_ALL: &str = r#"[ -d "$1" ] || exec mkdir -p -- "$1""#;

const CREATE_DIR: &str = r#"mkdir -- "$1" && exit 0
if [ -e "$1" ] || [ -L "$1" ]; then exit 45; fi; exit 1"#;

const RENAME: &str = r#"mv -T -- "$1" "$2" && exit 0
if { [ -e "$1" ] || [ -L "$1" ]; } && [ -d "$2" ] && [ ! -L "$2" ]; then exit 45; fi; exit 1"#;

const KIND: &str = r#"if [ -L "$1" ]; then echo symlink; elif [ -d "$1" ]; then echo dir
elif [ -f "$1" ]; then echo file; elif [ -e "$1" ]; then echo other; else echo missing; fi"#;

const READ_LINK: &str = r#"[ -L "$1" ] && exec readlink -- "$1"
if [ -e "$1" ]; then echo "not a symlink" >&2; exit 1; fi; exit 44"#;

/// [`READ_LINK`] of `$2`, [`KIND`] when it is no symlink, [`LIST_DIR`] of `$3` and
/// [`READ_FILE`] of `$1` in one: `L<target>`, `N` (missing) or `K<kind>`, a NUL; each name and a
/// NUL, then an empty name (a NUL); then `F` and the file, or `N`. The file comes last, so no
/// length is needed for it; exit 44 when it vanished while being read.
const READ_STATE: &str = r#"if [ -L "$2" ]; then printf L; readlink -z -- "$2" || exit 1
elif [ -d "$2" ]; then printf 'Kdir\0'; elif [ -f "$2" ]; then printf 'Kfile\0'
elif [ -e "$2" ]; then printf 'Kother\0'; else printf 'N\0'; fi
if [ -e "$3" ] || [ -L "$3" ]; then cd -- "$3" && find . -mindepth 1 -maxdepth 1 -printf '%f\0' || exit 1; fi
printf '\0'
[ -e "$1" ] || { printf N; exit 0; }
printf F; cat -- "$1" && exit 0
[ -e "$1" ] || exit 44
exit 1"#;

/// Parses [`READ_STATE`]'s answer; `file_missing` when it exited 44.
fn parse_state(stdout: &[u8], file_missing: bool) -> Option<StateRead> {
    let end = stdout.iter().position(|b| *b == 0)?;
    let (head, mut rest) = (&stdout[..end], &stdout[end + 1..]);
    let link = match head.split_first()? {
        (b'L', target) => LinkRead::Target(path_from_bytes(target.to_vec())),
        (b'N', []) => LinkRead::Missing,
        (b'K', b"dir") => LinkRead::NotASymlink(FileKind::Dir),
        (b'K', b"file") => LinkRead::NotASymlink(FileKind::File),
        (b'K', b"other") => LinkRead::NotASymlink(FileKind::Other),
        _ => return None,
    };
    let mut names = Vec::new();
    loop {
        let end = rest.iter().position(|b| *b == 0)?;
        let name = &rest[..end];
        rest = &rest[end + 1..];
        if name.is_empty() {
            break;
        }
        names.push(String::from_utf8_lossy(name).into_owned());
    }
    names.sort();
    let file = match rest.split_first() {
        _ if file_missing => None,
        Some((b'F', contents)) => Some(contents.to_vec()),
        Some((b'N', [])) => None,
        _ => return None,
    };
    Some(StateRead { file, link, names })
}

const LIST_DIR: &str = r#"[ -e "$1" ] || [ -L "$1" ] || exit 0
cd -- "$1" && exec find . -mindepth 1 -maxdepth 1 -printf '%f\0'"#;

/// symlink(tmp) + rename(2) in the same directory, fsync of the directory, then readlink. The
/// temporary name ends in `$3`, random from hoist: nothing is there to remove first.
const SWITCH_SYMLINK: &str = r#"if [ -d "$1" ] && [ ! -L "$1" ]; then exit 46; fi
d=${1%/*}; tmp="$d/.${1##*/}.hoist-tmp-$3"
ln -s -- "$2" "$tmp" || exit 1
mv -T -- "$tmp" "$1" || { rm -f -- "$tmp"; exit 1; }
sync -- "${d:-/}" 2>/dev/null
exec readlink -- "$1""#;

/// Nothing to remove where nothing is (a new release's link): no `rm`.
const SYMLINK: &str = r#"if [ -L "$2" ]; then t=$(readlink -- "$2"; echo .); t=${t%.}; t=${t%?}
[ "$t" = "$1" ] && exit 0; fi
if [ -e "$2" ] || [ -L "$2" ]; then rm -rf -- "$2" || exit 1; fi
ln -s -- "$1" "$2""#;

/// [`KIND`] of each argument: one word a line, whatever the paths hold.
const KINDS: &str = r#"for p; do if [ -L "$p" ]; then echo symlink; elif [ -d "$p" ]; then echo dir
elif [ -f "$p" ]; then echo file; elif [ -e "$p" ]; then echo other; else echo missing; fi; done"#;

/// [`READ_LINK`] of each argument: `L<target>` or `N` (missing), each ended by a NUL; at one
/// that exists and is no symlink, "not a symlink" on stderr and exit 1.
const READ_LINKS: &str = r#"for p; do
if [ -L "$p" ]; then printf L; readlink -z -- "$p" || exit 1
elif [ -e "$p" ]; then echo "not a symlink" >&2; exit 1
else printf 'N\0'; fi
done"#;

/// `mkdir -p` of the `$1` paths after it, then [`SYMLINK`] of each (target, link) pair after
/// those; at the first failure, `C<dir>` or `S<link>` on stdout (the tool's word on stderr)
/// and exit 1. A directory that is there already costs no `mkdir`, as nothing where a link
/// goes costs no `rm` (on a redeploy: one `ln` a link).
const CREATE_DIRS_AND_SYMLINKS: &str = r#"n=$1; shift
while [ "$n" -gt 0 ]; do [ -d "$1" ] || mkdir -p -- "$1" || { printf 'C%s' "$1"; exit 1; }; n=$((n - 1)); shift; done
while [ "$#" -gt 1 ]; do
if [ -L "$2" ]; then t=$(readlink -- "$2"; echo .); t=${t%.}; t=${t%?}
if [ "$t" = "$1" ]; then shift 2; continue; fi; fi
{ { ! [ -e "$2" ] && ! [ -L "$2" ]; } || rm -rf -- "$2"; } && ln -s -- "$1" "$2" || { printf 'S%s' "$2"; exit 1; }
shift 2
done"#;

impl Transport for Ssh {
    fn host(&self) -> &str {
        &self.target.name
    }

    fn exec(&self, cmd: &Cmd) -> Result<Output, TransportError> {
        self.run(cmd)
    }

    fn exec_streaming(&self, cmd: &Cmd, on_line: LineSink<'_>) -> Result<Output, TransportError> {
        self.run_with(cmd, Some(on_line))
    }

    fn check_become(&self) -> Result<(), TransportError> {
        if self.target.become_as.is_some() {
            // Any refusal is an error of `run`; `true` itself cannot fail.
            self.run(&Cmd::new("true").privileged())?;
        }
        Ok(())
    }

    fn read_file(&self, path: &Path) -> Result<Option<Vec<u8>>, TransportError> {
        let out = self.script(READ_FILE, &[path], None)?;
        match out.status {
            0 => Ok(Some(out.stdout)),
            MISSING => Ok(None),
            _ => Err(self.failed("read", path, &out)),
        }
    }

    fn write_file_atomic(&self, path: &Path, contents: &[u8]) -> Result<(), TransportError> {
        self.write_atomic(path, contents, "022", true)
    }

    fn read_files(&self, paths: &[&Path]) -> Result<Vec<Option<Vec<u8>>>, TransportError> {
        use base64::Engine as _;
        let Some(first) = paths.first() else {
            return Ok(Vec::new());
        };
        let out = self.script(READ_FILES, paths, None)?;
        if !out.success() {
            return Err(self.failed("read", first, &out));
        }
        let answer = out.stdout_text();
        let files: Option<Vec<Option<Vec<u8>>>> = answer
            .lines()
            .map(|line| match line.split_at_checked(1)? {
                ("-", "") => Some(None),
                ("+", text) => base64::engine::general_purpose::STANDARD
                    .decode(text)
                    .ok()
                    .map(Some),
                _ => None,
            })
            .collect();
        match files {
            Some(files) if files.len() == paths.len() => Ok(files),
            _ => Err(TransportError::Other {
                host: self.host_name(),
                message: format!(
                    "reading {} and others: unexpected answer from the host's shell",
                    first.display()
                ),
            }),
        }
    }

    fn write_files_atomic(&self, files: &[(&Path, &[u8])]) -> Result<(), TransportError> {
        use base64::Engine as _;
        let Some((first, _)) = files.first() else {
            return Ok(());
        };
        let mut input = Vec::new();
        for (_, contents) in files {
            input.extend_from_slice(
                base64::engine::general_purpose::STANDARD
                    .encode(contents)
                    .as_bytes(),
            );
            input.push(b'\n');
        }
        let random = self.random()?;
        let mut args = vec![Path::new(&random)];
        args.extend(files.iter().map(|(path, _)| *path));
        let out = self.script(WRITE_FILES_ATOMIC, &args, Some(&input))?;
        self.expect_success("write", first, &out)
    }

    fn write_private_file_atomic(
        &self,
        path: &Path,
        contents: &[u8],
    ) -> Result<(), TransportError> {
        self.write_atomic(path, contents, "077", true)
    }

    fn append_line(&self, path: &Path, line: &str) -> Result<(), TransportError> {
        let mut bytes = line.as_bytes().to_vec();
        bytes.push(b'\n');
        let out = self.script(APPEND_LINE, &[path], Some(&bytes))?;
        self.expect_success("append to", path, &out)
    }

    fn create_dir_all(&self, path: &Path) -> Result<(), TransportError> {
        let out = self.script(CREATE_DIR_ALL, &[path], None)?;
        self.expect_success("create", path, &out)
    }

    fn create_dir(&self, path: &Path) -> Result<(), TransportError> {
        let out = self.script(CREATE_DIR, &[path], None)?;
        match out.status {
            0 => Ok(()),
            EXISTS => Err(TransportError::AlreadyExists {
                host: self.host_name(),
                path: path.to_path_buf(),
            }),
            _ => Err(self.failed("create", path, &out)),
        }
    }

    fn rename(&self, from: &Path, to: &Path) -> Result<(), TransportError> {
        let out = self.script(RENAME, &[from, to], None)?;
        match out.status {
            0 => Ok(()),
            EXISTS => Err(TransportError::AlreadyExists {
                host: self.host_name(),
                path: to.to_path_buf(),
            }),
            _ => Err(self.failed("rename", from, &out)),
        }
    }

    fn remove_all(&self, path: &Path) -> Result<(), TransportError> {
        let out = self.script(REMOVE_ALL, &[path], None)?;
        self.expect_success("remove", path, &out)
    }

    fn kind(&self, path: &Path) -> Result<FileKind, TransportError> {
        let out = self.script(KIND, &[path], None)?;
        match (out.status, out.stdout_text().trim()) {
            (0, "symlink") => Ok(FileKind::Symlink),
            (0, "dir") => Ok(FileKind::Dir),
            (0, "file") => Ok(FileKind::File),
            (0, "other") => Ok(FileKind::Other),
            (0, "missing") => Ok(FileKind::Missing),
            _ => Err(self.failed("inspect", path, &out)),
        }
    }

    fn kinds(&self, paths: &[&Path]) -> Result<Vec<FileKind>, TransportError> {
        if paths.is_empty() {
            return Ok(Vec::new());
        }
        let out = self.script(KINDS, paths, None)?;
        let kinds: Vec<FileKind> = out
            .stdout_text()
            .lines()
            .map_while(|word| match word {
                "symlink" => Some(FileKind::Symlink),
                "dir" => Some(FileKind::Dir),
                "file" => Some(FileKind::File),
                "other" => Some(FileKind::Other),
                "missing" => Some(FileKind::Missing),
                _ => None,
            })
            .collect();
        if !out.success() || kinds.len() != paths.len() {
            let at = paths.get(kinds.len()).unwrap_or(&paths[0]);
            return Err(self.failed("inspect", at, &out));
        }
        Ok(kinds)
    }

    fn read_links(&self, paths: &[&Path]) -> Result<Vec<Option<PathBuf>>, TransportError> {
        if paths.is_empty() {
            return Ok(Vec::new());
        }
        let out = self.script(READ_LINKS, paths, None)?;
        let mut found = Vec::with_capacity(paths.len());
        let mut entries = out.stdout.split(|b| *b == 0);
        while found.len() < paths.len() {
            match entries.next() {
                Some([b'L', target @ ..]) => found.push(Some(path_from_bytes(target.to_vec()))),
                Some(b"N") => found.push(None),
                _ => break,
            }
        }
        if !out.success() || found.len() != paths.len() {
            let at = paths.get(found.len()).unwrap_or(&paths[0]);
            let said = Output {
                stdout: Vec::new(),
                ..out
            };
            return Err(self.failed("readlink", at, &said));
        }
        Ok(found)
    }

    fn create_dirs_and_symlinks(
        &self,
        dirs: &[&Path],
        links: &[(&Path, &Path)],
    ) -> Result<(), TransportError> {
        if dirs.is_empty() && links.is_empty() {
            return Ok(());
        }
        let count = dirs.len().to_string();
        let mut args: Vec<&Path> = vec![Path::new(&count)];
        args.extend_from_slice(dirs);
        for (target, link) in links {
            args.extend([*target, *link]);
        }
        let out = self.script(CREATE_DIRS_AND_SYMLINKS, &args, None)?;
        if out.success() {
            return Ok(());
        }
        // The marker names what failed; the message is the tool's own, from stderr.
        let (action, path) = match out.stdout.split_first() {
            Some((b'C', path)) => ("create", path_from_bytes(path.to_vec())),
            Some((b'S', path)) => ("symlink", path_from_bytes(path.to_vec())),
            _ => (
                "create",
                dirs.first().map_or(links[0].1, |d| *d).to_path_buf(),
            ),
        };
        let said = Output {
            stdout: Vec::new(),
            ..out
        };
        Err(self.failed(action, &path, &said))
    }

    fn read_link(&self, path: &Path) -> Result<Option<PathBuf>, TransportError> {
        let out = self.script(READ_LINK, &[path], None)?;
        match out.status {
            0 => Ok(Some(path_from_bytes(strip_one_newline(out.stdout)))),
            MISSING => Ok(None),
            _ => Err(self.failed("readlink", path, &out)),
        }
    }

    fn list_dir(&self, path: &Path) -> Result<Vec<String>, TransportError> {
        let out = self.script(LIST_DIR, &[path], None)?;
        if !out.success() {
            return Err(self.failed("list", path, &out));
        }
        let mut names: Vec<String> = out
            .stdout
            .split(|b| *b == 0)
            .filter(|name| !name.is_empty())
            .map(|name| String::from_utf8_lossy(name).into_owned())
            .collect();
        names.sort();
        Ok(names)
    }

    fn read_state(
        &self,
        file: &Path,
        link: &Path,
        dir: &Path,
    ) -> Result<StateRead, TransportError> {
        let out = self.script(READ_STATE, &[file, link, dir], None)?;
        let missing = match out.status {
            0 => false,
            MISSING => true,
            _ => {
                let root = link.parent().unwrap_or(link);
                return Err(self.failed("read the state of", root, &out));
            }
        };
        parse_state(&out.stdout, missing).ok_or_else(|| TransportError::Other {
            host: self.host_name(),
            message: format!(
                "reading the state of {}: unexpected answer from the host's shell",
                link.display()
            ),
        })
    }

    fn switch_symlink(&self, link: &Path, target: &Path) -> Result<(), TransportError> {
        let random = self.random()?;
        let out = self.script(SWITCH_SYMLINK, &[link, target, Path::new(&random)], None)?;
        match out.status {
            0 => {}
            IS_DIR => {
                return Err(TransportError::NotASymlink {
                    host: self.host_name(),
                    path: link.to_path_buf(),
                })
            }
            _ => return Err(self.failed("switch", link, &out)),
        }
        let found = path_from_bytes(strip_one_newline(out.stdout));
        if found != target {
            return Err(TransportError::SwitchCheckFailed {
                host: self.host_name(),
                link: link.to_path_buf(),
                expected: target.to_path_buf(),
                found: found.display().to_string(),
            });
        }
        Ok(())
    }

    fn symlink(&self, target: &Path, link: &Path) -> Result<(), TransportError> {
        let out = self.script(SYMLINK, &[target, link], None)?;
        self.expect_success("symlink", link, &out)
    }

    fn upload_tree(
        &self,
        src: &Path,
        files: &[PathBuf],
        dest: &Path,
        link_dest: Option<&Path>,
    ) -> Result<UploadStats, TransportError> {
        let plan = plan_against(self, src, files, link_dest)?;
        // What did not change is linked on the host from the previous release (no data
        // crosses the network for it); what changed travels with rsync.
        let mut stats = UploadStats::default();
        if let (Some(prev), false) = (link_dest, plan.link.is_empty()) {
            let out = self.script(LINK_UNCHANGED, &[prev, dest], Some(&nul_list(&plan.link)))?;
            self.expect_success("link unchanged files into", dest, &out)?;
            stats.linked = plan.link.len() as u64;
        }
        let manifest_text = plan.manifest.render();
        if let Some(archive) = small_archive(src, &plan.copy, &manifest_text) {
            let out = self.run(
                &Cmd::new("sh")
                    .brief()
                    .arg("-c")
                    .arg(UNPACK_SMALL)
                    .arg("hoist")
                    .path_arg(dest)
                    .arg(MANIFEST_UPLOADED)
                    .arg(MANIFEST_FILE)
                    .stdin(archive.bytes),
            )?;
            // Otherwise (no tar, a tar without these options, a full disk) rsync does it,
            // and says what is wrong if something is.
            if out.success() {
                stats.copied = archive.files;
                stats.bytes = archive.file_bytes;
                return Ok(stats);
            }
        }
        let copied = self.rsync_to(src, &plan.copy, dest)?;
        stats.copied = copied.copied;
        stats.bytes = copied.bytes;
        // No sync: a manifest lost or cut short in a crash vouches for nothing.
        let manifest = dest.join(MANIFEST_FILE);
        self.write_atomic(&manifest, &manifest_text, "022", false)?;
        Ok(stats)
    }

    fn free_bytes(&self, path: &Path) -> Result<u64, TransportError> {
        let out = self.run(&Cmd::new("df").args(["-Pk", "--"]).path_arg(path))?;
        parse_df(&out.stdout_text()).ok_or_else(|| self.failed("read free space of", path, &out))
    }
}

/// The most an upload sends through the host's shell as one archive instead of rsync, which
/// costs an SSH session of its own (the login shell's start-up files, rsync started on both
/// sides): a code-only change is a few files of a few kilobytes, and a small app's first
/// upload not much more.
const SMALL_UPLOAD_BYTES: u64 = 512 * 1024;
const SMALL_UPLOAD_FILES: usize = 1000;

/// The manifest's name in a [`small_archive`], renamed onto [`MANIFEST_FILE`] once everything
/// else is written, so that it never vouches for a file not yet there.
const MANIFEST_UPLOADED: &str = ".hoist-manifest.uploading";

/// `$1` the release, `$2` the manifest as unpacked, `$3` its name: unpacks the archive on stdin
/// into the release (modes and times as archived, owned by whoever unpacks), then moves the
/// manifest into place; on failure no unpacked manifest is left.
const UNPACK_SMALL: &str = r#"[ -d "$1" ] || mkdir -p -- "$1" || exit 1
if tar -x -p --no-same-owner -f - -C "$1" && mv -f -- "$1/$2" "$1/$3"; then exit 0; fi
rm -f -- "$1/$2"; exit 1"#;

/// A tar archive of the files that changed and the manifest (last).
struct SmallArchive {
    bytes: Vec<u8>,
    files: u64,
    file_bytes: u64,
}

/// [`SmallArchive`] of `files` under `src` when they are all regular files (a symlink goes
/// through rsync, which keeps it a symlink) and few and small enough; else `None`.
fn small_archive(src: &Path, files: &[PathBuf], manifest: &[u8]) -> Option<SmallArchive> {
    use std::os::unix::fs::MetadataExt;
    if files.len() > SMALL_UPLOAD_FILES {
        return None;
    }
    let header_for = |size: u64, mode: u32, mtime: i64| {
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(tar::EntryType::Regular);
        header.set_size(size);
        header.set_mode(mode & 0o7777);
        header.set_mtime(u64::try_from(mtime).unwrap_or(0));
        header
    };
    let mut builder = tar::Builder::new(Vec::new());
    let mut file_bytes = 0u64;
    for rel in files {
        let path = src.join(rel);
        let meta = std::fs::symlink_metadata(&path).ok()?;
        if !meta.is_file() || rel.is_absolute() {
            return None;
        }
        let content = std::fs::read(&path).ok()?;
        file_bytes += content.len() as u64;
        if file_bytes > SMALL_UPLOAD_BYTES {
            return None;
        }
        let mut header = header_for(content.len() as u64, meta.mode(), meta.mtime());
        builder
            .append_data(&mut header, rel, content.as_slice())
            .ok()?;
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(0));
    let mut header = header_for(manifest.len() as u64, 0o644, now);
    builder
        .append_data(&mut header, MANIFEST_UPLOADED, manifest)
        .ok()?;
    Some(SmallArchive {
        bytes: builder.into_inner().ok()?,
        files: files.len() as u64,
        file_bytes,
    })
}

/// Counts rsync's `%i %l` lines: `<f` (sent; `>f` locally) copied, `hf`/`hL` hard-linked to --link-dest, `cL`
/// a symlink created.
fn parse_itemized(text: &str) -> UploadStats {
    let mut stats = UploadStats::default();
    for line in text.lines() {
        let Some((item, len)) = line.split_once(' ') else {
            continue;
        };
        let bytes = item.as_bytes();
        if bytes.len() < 2 {
            continue;
        }
        match (bytes[0], bytes[1]) {
            (b'<' | b'>', b'f') => {
                stats.copied += 1;
                stats.bytes += len.trim().parse::<u64>().unwrap_or(0);
            }
            (b'c', b'L') => stats.copied += 1,
            (b'h', b'f' | b'L') => stats.linked += 1,
            _ => {}
        }
    }
    stats
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target() -> SshTarget {
        let mut target = SshTarget::new("web2", "10.0.0.2");
        target.port = Some(2222);
        target
    }

    #[test]
    fn a_changed_key_names_the_known_hosts_line() {
        let text = "@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@\r\n@    WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED!     @\r\n@@@@@\r\nIT IS POSSIBLE THAT SOMEONE IS DOING SOMETHING NASTY!\r\nOffending ED25519 key in /tmp/kh/known_hosts:3\r\nHost key verification failed.";
        let err = classify_ssh_text(&target(), text);
        assert!(
            matches!(&err, TransportError::HostKeyChanged { known_hosts_line, .. } if known_hosts_line == "/tmp/kh/known_hosts:3"),
            "{err:?}"
        );
        assert!(err
            .to_string()
            .starts_with("web2: the host key of [10.0.0.2]:2222 has CHANGED"));
    }

    #[test]
    fn other_failures_are_told_apart() {
        let unknown = classify_ssh_text(&target(), "No ED25519 host key is known for [10.0.0.2]:2222 and you have requested strict checking.\r\nHost key verification failed.");
        assert!(
            matches!(unknown, TransportError::HostKeyUnknown { .. }),
            "{unknown:?}"
        );
        let auth = classify_ssh_text(&target(), "deploy@10.0.0.2: Permission denied (publickey).");
        assert!(
            matches!(auth, TransportError::AuthFailed { .. }),
            "{auth:?}"
        );
        let refused = classify_ssh_text(
            &target(),
            "ssh: connect to host 10.0.0.2 port 2222: Connection refused",
        );
        assert_eq!(
            refused.to_string(),
            "web2: cannot connect to [10.0.0.2]:2222: connect to host 10.0.0.2 port 2222: Connection refused; check the host's address and port in hoist.toml and that sshd runs there"
        );
    }

    #[test]
    fn itemized_output_is_counted() {
        let text = "created directory two\n<f.s....... 8\nhL          4\ncd          4096\nhf          2\n>f+++++++++ 10\ncL+++++++++ 4\n";
        assert_eq!(
            parse_itemized(text),
            UploadStats {
                copied: 3,
                linked: 2,
                bytes: 18
            }
        );
    }

    /// What runs [`WATCHED`] dies with hoist, all of it: a tree of a `timeout` (a group of its
    /// own) and 30 children, whose `sh -c` session stands for sshd's. Run as sshd would, in a
    /// session of its own, and a few times: the kill used to be cut short by the watched
    /// shell itself (it killed the watcher as soon as the command's first process died),
    /// leaving some of the children running.
    #[test]
    fn a_watched_command_dies_whole_when_its_input_ends() {
        let dir = tempfile::tempdir().unwrap();
        let pids = dir.path().join("pids");
        let script = format!(
            "timeout 120 sh -c 'for i in $(seq 30); do sleep 120 & echo $! >> {pids}; done; echo ready >> {pids}; wait'",
            pids = pids.display()
        );
        for round in 0..5 {
            let _ = std::fs::remove_file(&pids);
            let mut shell = std::process::Command::new("setsid")
                .args(["sh", "-c", WATCHED, "hoist", &script])
                .stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .spawn()
                .unwrap();
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
            let children: Vec<u32> = loop {
                let text = std::fs::read_to_string(&pids).unwrap_or_default();
                if text.ends_with("ready\n") {
                    break text.lines().filter_map(|l| l.parse().ok()).collect();
                }
                assert!(
                    std::time::Instant::now() < deadline,
                    "the command never started"
                );
                std::thread::sleep(std::time::Duration::from_millis(10));
            };
            assert_eq!(children.len(), 30);
            // Hoist is gone: the channel's input ends.
            drop(shell.stdin.take());
            let _ = shell.wait();
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
            let alive = |pid: &u32| {
                std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
                    !stat
                        .rsplit_once(')')
                        .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z'))
                })
            };
            while children.iter().any(alive) {
                if std::time::Instant::now() >= deadline {
                    let left: Vec<&u32> = children.iter().filter(|p| alive(p)).collect();
                    for pid in &left {
                        let _ = std::process::Command::new("kill")
                            .args(["-KILL", &pid.to_string()])
                            .status();
                    }
                    panic!(
                        "round {round}: {} of 30 children outlived the watched command: {left:?}",
                        left.len()
                    );
                }
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
        }
    }
}
