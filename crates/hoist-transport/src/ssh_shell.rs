//! One long-lived remote `sh` per host, fed over the SSH master connection, so that a command
//! costs a pipe round trip instead of a new SSH session (each of which runs the login shell's
//! start-up files on the server). Ansible's "pipelining" and Mitogen work the same way.
//!
//! The protocol: hoist writes one command per request; the shell runs it with its output in
//! files, then writes a header `HOIST-DONE <status> <stdout bytes> <stderr bytes>` and both
//! files. Standard input for the command arrives base64-encoded in a here-document, which the
//! shell reads itself. Values reach the shell only inside [`Cmd::render`]'s quoting.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};

use crate::{Cmd, Output};

/// The shell function `__hoist_kill_tree PID`: kills `PID` and every process descended from
/// it — those that sudo runs as another user (`become`) too, through `sudo -n kill` when the
/// login user's own `kill` cannot reach them. By descent, not by process group or session:
/// sudo's command, and `timeout`'s, run in a group of their own. A process that left the tree
/// (a server that daemonizes, as gunicorn's `--daemon`) is not touched.
///
/// The tree is stopped before it is killed, walked again until no new process shows up (a
/// stopped process cannot fork, and one that forked between a walk and its stop is found by
/// the next walk while its parent is still there to lead to it), then killed at once: a
/// process killed first would leave its children to init, out of the tree.
macro_rules! kill_tree {
    () => {
        r#"__hoist_kill_tree() {
__hoist_all= __hoist_n=0
while [ "$__hoist_n" -lt 20 ]; do
__hoist_n=$((__hoist_n + 1))
__hoist_t=$(ps -e -o pid= -o ppid= | awk -v r="$1" -v seen=" $__hoist_all " '{ up[$1] = $2 } END { for (p in up) { if (index(seen, " " p " ")) continue; q = p; n = 0; while (q != r && (q in up) && n++ < 100) q = up[q]; if (q == r) printf "%s ", p } }')
[ -n "$__hoist_t" ] || break
kill -s STOP $__hoist_t || sudo -n kill -s STOP $__hoist_t
__hoist_all="$__hoist_all $__hoist_t"
done
if [ -n "$__hoist_all" ]; then kill -s KILL $__hoist_all || sudo -n kill -s KILL $__hoist_all; fi
}"#
    };
}
pub(crate) use kill_tree;

/// The shell function `__hoist_kill PID` that a watcher over SSH calls when hoist is gone: the
/// watched command's tree ([`kill_tree!`]), then every process of this SSH session (sshd gives
/// each its own). The killing runs in a process of its own: the shell that started the watcher
/// kills the watcher as soon as the watched command has ended, which the killing itself brings
/// about, and a kill cut short there left the rest of the tree running.
macro_rules! kill_watched {
    () => {
        concat!(
            $crate::ssh_shell::kill_tree!(),
            "\n",
            r#"__hoist_kill() {
( __hoist_kill_tree "$1"; pkill -KILL -s 0 ) & wait "$!"
}"#
        )
    };
}
pub(crate) use kill_watched;

const READY: &str = "HOIST-READY";
const DONE: &str = "HOIST-DONE";

/// Sets up the scratch files, removes them when the shell exits, defines the watchers' kill
/// ([`kill_watched!`]), and says it is ready. Fd 3 keeps the shell's own input (the channel
/// from hoist) for the watchers of [`RUN`].
const PRELUDE: &str = concat!(
    "__hoist_d=$(mktemp -d) || exit 1\n\
trap 'rm -rf \"$__hoist_d\"' EXIT\n\
exec 3<&0\n",
    kill_watched!(),
    "\nprintf '%s\\n' HOIST-READY\n"
);

/// Runs `$__hoist_c` (a rendered command) watched: hoist sends nothing while a command runs, so
/// if the channel reaches end-of-file the controller is gone (killed), and the command with
/// everything it started is killed ([`kill_watched!`]), so a dead deploy's hook (a migration)
/// does not go on beside the next deploy's. One `{ ... }` block: the shell has read all of it
/// before the watcher reads fd 3.
const RUN: &str = r#"( eval "$__hoist_c" ) <"$__hoist_i" >"$__hoist_d/out" 2>"$__hoist_d/err" & __hoist_p=$!
( IFS= read -r _ <&3 || __hoist_kill "$__hoist_p" ) >/dev/null 2>&1 & __hoist_w=$!
wait "$__hoist_p"; __hoist_rc=$?
kill -s KILL "$__hoist_w" 2>/dev/null; wait "$__hoist_w" 2>/dev/null"#;

/// A running remote shell.
pub(crate) struct RemoteShell {
    /// The master connection it runs through; a new master needs a new shell.
    pub(crate) control_socket: PathBuf,
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

impl RemoteShell {
    /// Starts `sh` on the host through the master connection at `control_socket`.
    pub(crate) fn start(control_socket: &Path) -> std::io::Result<RemoteShell> {
        let mut child = Command::new("ssh")
            .arg("-S")
            .arg(control_socket)
            .args([
                "-o",
                "ControlMaster=no",
                "-o",
                "BatchMode=yes",
                "-T",
                "-p",
                "9",
            ])
            .args(["hoist", "exec sh"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()?;
        let mut stdin = child.stdin.take().expect("piped");
        let stdout = BufReader::new(child.stdout.take().expect("piped"));
        stdin.write_all(PRELUDE.as_bytes())?;
        stdin.flush()?;
        let mut shell = RemoteShell {
            control_socket: control_socket.to_path_buf(),
            child,
            stdin,
            stdout,
        };
        // Whatever the login shell's start-up files print comes before the ready line.
        loop {
            let line = shell.read_line()?;
            if line == READY {
                return Ok(shell);
            }
        }
    }

    fn read_line(&mut self) -> std::io::Result<String> {
        let mut line = String::new();
        if self.stdout.read_line(&mut line)? == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "the remote shell ended",
            ));
        }
        Ok(line.trim_end_matches('\n').to_string())
    }

    /// Runs one command; an error means the shell (or the connection) is gone, and whether
    /// the command ran is unknown.
    pub(crate) fn run(&mut self, cmd: &Cmd) -> std::io::Result<Output> {
        let mut request = Vec::new();
        let input: &str = match &cmd.stdin {
            Some(bytes) => {
                // A here-document is read by the shell itself, so no byte of it can be taken
                // for the next command; base64 keeps the terminator line unambiguous.
                request.extend_from_slice(b"base64 -d >\"$__hoist_d/in\" <<'HOIST-EOF'\n");
                for chunk in base64_lines(bytes) {
                    request.extend_from_slice(chunk.as_bytes());
                    request.push(b'\n');
                }
                request.extend_from_slice(b"HOIST-EOF\n");
                "\"$__hoist_d/in\""
            }
            None => "/dev/null",
        };
        request.extend_from_slice(
            format!(
                "{{ __hoist_c={}; __hoist_i={input}\n{RUN}\n\
                 printf '{DONE} %s %s %s\\n' \"$__hoist_rc\" \"$(wc -c <\"$__hoist_d/out\")\" \"$(wc -c <\"$__hoist_d/err\")\"\n\
                 cat \"$__hoist_d/out\" \"$__hoist_d/err\"; }}\n",
                crate::shell_quote(&cmd.render())
            )
            .as_bytes(),
        );
        self.stdin.write_all(&request)?;
        self.stdin.flush()?;
        let header = self.read_line()?;
        let fields: Vec<&str> = header.split_whitespace().collect();
        let parsed = match fields.as_slice() {
            [DONE, rc, out, err] => rc
                .parse::<i32>()
                .ok()
                .zip(out.parse::<usize>().ok())
                .zip(err.parse::<usize>().ok()),
            _ => None,
        };
        let Some(((status, out_len), err_len)) = parsed else {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("unexpected answer from the remote shell: {header:?}"),
            ));
        };
        let mut stdout = vec![0; out_len];
        self.stdout.read_exact(&mut stdout)?;
        let mut stderr = vec![0; err_len];
        self.stdout.read_exact(&mut stderr)?;
        Ok(Output {
            status,
            stdout,
            stderr,
        })
    }
}

impl Drop for RemoteShell {
    fn drop(&mut self) {
        let _ = self.stdin.write_all(b"exit 0\n");
        let _ = self.stdin.flush();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `bytes` in base64, as lines of at most 76 characters.
fn base64_lines(bytes: &[u8]) -> Vec<String> {
    use base64::Engine as _;
    let text = base64::engine::general_purpose::STANDARD.encode(bytes);
    text.as_bytes()
        .chunks(76)
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect()
}
