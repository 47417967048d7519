//! One long-lived remote `sh` per host, fed over the SSH master connection, so that a command
//! costs a pipe round trip instead of a new SSH session (each of which runs the login shell's
//! start-up files on the server). Ansible's "pipelining" and Mitogen work the same way.
//!
//! The protocol: hoist writes one command per request; the shell runs it with its output in
//! files, then writes a header `HOIST-DONE <status>` and each file followed by the request's
//! boundary, a random string the command never sees (it is in no argument, file or exported
//! variable), so no output can end a file early. An empty file is not read at all: a command
//! costs the shell a `cat` for each file it wrote to, not a `wc` and a `cat` for both (about
//! 2 ms of forks per command on a small host, and a deploy runs dozens). Standard input for the
//! command arrives in a here-document, which the shell reads itself: as it is when it is text
//! (the command's own input, no process to decode it), else base64-encoded into a file. Values
//! reach the shell only inside [`Cmd::render`]'s quoting.
//!
//! hoist's own short scripts ([`Cmd::brief`]) run in a subshell of the shell instead, with no
//! watcher and no output file: their output comes first, then the boundary, the header and the
//! error file. They could see the boundary (a variable of the shell's), and print none.

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
/// Counts the shell it runs in as a shell level (`SHLVL`, which dash leaves alone and the
/// login shell's `exec` took back): bash started with `-c` by a command reads `~/.bashrc` again
/// when it sees `SSH_CLIENT` at the first level, as if sshd had started it, so every restart,
/// health check and hook paid the login's set-up again (a `pyenv init` there costs ~0.1 s a
/// command). The login shell has read it once; what it exported reaches every command.
macro_rules! count_shell_level {
    () => {
        "SHLVL=$(( ${SHLVL:-0} + 1 )); export SHLVL"
    };
}
pub(crate) use count_shell_level;

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
/// from hoist) for the watchers of [`RUN_START`].
/// The scratch directory is in `/dev/shm` (memory) where the host lets hoist make one there,
/// else in its temporary directory: every command makes new files in it ([`RUN_START`]), and
/// on a disk file system each new file costs the host an inode (on an ext4 that has freed
/// many lately, about 0.7 ms of CPU a file: 1.3 ms a command, 30-40 ms a deploy).
/// The shell counts itself a shell level ([`count_shell_level!`]).
const PRELUDE: &str = concat!(
    "__hoist_d=$(mktemp -d /dev/shm/hoist.XXXXXXXXXX 2>/dev/null || mktemp -d) || exit 1\n\
trap 'rm -rf \"$__hoist_d\"' EXIT\n\
exec 3<&0\n",
    count_shell_level!(),
    "\n",
    kill_watched!(),
    "\n\
if tail --pid=1 -n 0 /dev/null >/dev/null 2>&1; then printf '%s\\n' 'HOIST-READY streams'; \
else printf '%s\\n' HOIST-READY; fi\n"
);

/// Runs `$__hoist_c` (a rendered command) watched: hoist sends nothing while a command runs, so
/// if the channel reaches end-of-file the controller is gone (killed), and the command with
/// everything it started is killed ([`kill_watched!`]), so a dead deploy's hook (a migration)
/// does not go on beside the next deploy's. One `{ ... }` block: the shell has read all of it
/// before the watcher reads fd 3. The output files `$__hoist_o` and `$__hoist_e` are new for
/// each request (named by its count), so that neither a [`STREAM`] of them nor the answer ever
/// shows the previous command's, nor what a process it left behind still writes to its own;
/// every [`CLEAN_EVERY`] requests the earlier ones are removed (a `rm` per request cost a
/// process each time).
const RUN_START: &str = r#": >"$__hoist_o"; : >"$__hoist_e"
( eval "$__hoist_c" ) <"$__hoist_i" >"$__hoist_o" 2>"$__hoist_e" & __hoist_p=$!
( IFS= read -r _ <&3 || __hoist_kill "$__hoist_p" ) >/dev/null 2>&1 & __hoist_w=$!"#;

/// A [`Cmd::brief`](crate::Cmd::brief) script runs in a subshell of this shell, in the
/// foreground and unwatched (it ends by itself within a moment), with its arguments set by
/// `set --` and its text from `$__hoist_c` (through `eval`: a script that does not parse fails
/// alone, as `sh -c` would, and the shell goes on): no new `sh` to start. Its standard output
/// goes to hoist as it comes, followed by the boundary (hoist's own scripts leave no process
/// behind that writes there, and print no boundary: its secret is in no file), then the header
/// and the error file as for any command ([`BRIEF_SEND`]): no output file, and no `cat` of it.
const RUN_BRIEF_START: &str = r#": >"$__hoist_e""#;

const RUN_BRIEF_END: &str = r#"<"$__hoist_i" 2>"$__hoist_e"; __hoist_rc=$?"#;

/// The rest of a brief script's answer: the boundary after its output, the header, the error
/// file and the boundary.
const BRIEF_SEND: &str = r#"printf '%s' "$__hoist_b"; printf '%s %s\n' HOIST-DONE "$__hoist_rc"
if [ -s "$__hoist_e" ]; then cat "$__hoist_e"; : >"$__hoist_e"; fi; printf '%s' "$__hoist_b""#;

/// Passes the output files on while the command runs: one GNU tail of both (`o<n>` and `e<n>`,
/// named from the scratch directory), which marks each stretch of one file with a header
/// `==> o<n> <==` ([`TailLines`] sorts them back), until the command has ended and its last
/// lines are read (`--pid`, checked every 10 ms). One process, where a tail and an awk to tag
/// the lines for each file were four.
const STREAM: &str = r#"( cd "$__hoist_d" && exec tail -n +1 -s 0.01 --pid="$__hoist_p" -f "o$__hoist_n" "e$__hoist_n" ) 2>/dev/null & __hoist_so=$!"#;

const RUN_WAIT: &str = r#"wait "$__hoist_p"; __hoist_rc=$?"#;

/// The stream ends with a line of its own, the boundary, after a newline (a last line without
/// one is then ended by it, as tail ends a stretch before its next header).
const STREAM_WAIT: &str = r#"wait "$__hoist_so"; printf '\n%s\n' "$__hoist_b""#;

/// How often the output files of earlier requests are removed ([`RUN_START`]).
const CLEAN_EVERY: u64 = 64;

const RUN_END: &str = r#"kill -s KILL "$__hoist_w" 2>/dev/null; wait "$__hoist_w" 2>/dev/null"#;

/// The answer: the header, then each output file followed by the boundary (`test -s` is the
/// shell's own: an empty file costs no process). A file sent is emptied at once (the shell's
/// own redirection): in `/dev/shm` a large output would hold memory until the next clean-up.
const SEND: &str = r#"printf '%s %s\n' HOIST-DONE "$__hoist_rc"
if [ -s "$__hoist_o" ]; then cat "$__hoist_o"; : >"$__hoist_o"; fi; printf '%s' "$__hoist_b"
if [ -s "$__hoist_e" ]; then cat "$__hoist_e"; : >"$__hoist_e"; fi; printf '%s' "$__hoist_b""#;

/// A running remote shell.
pub(crate) struct RemoteShell {
    /// The master connection it runs through; a new master needs a new shell.
    pub(crate) control_socket: PathBuf,
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
    /// Whether the host can pass a command's output on while it runs ([`STREAM`] needs GNU
    /// tail's `--pid`).
    pub(crate) streams: bool,
    /// Random, and part of every boundary ([`SEND`]).
    secret: String,
    /// Requests sent: each boundary is the secret and this count.
    requests: u64,
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
            streams: false,
            secret: random_secret()?,
            requests: 0,
        };
        // Whatever the login shell's start-up files print comes before the ready line.
        loop {
            let line = shell.read_line()?;
            if line == READY {
                return Ok(shell);
            }
            if line == format!("{READY} streams") {
                shell.streams = true;
                return Ok(shell);
            }
        }
    }

    fn read_line(&mut self) -> std::io::Result<String> {
        // Not `read_line`: a streamed line need not be UTF-8.
        let mut line = Vec::new();
        if self.stdout.read_until(b'\n', &mut line)? == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "the remote shell ended",
            ));
        }
        Ok(String::from_utf8_lossy(&line)
            .trim_end_matches('\n')
            .to_string())
    }

    /// Runs one command; an error means the shell (or the connection) is gone, and whether
    /// the command ran is unknown.
    pub(crate) fn run(&mut self, cmd: &Cmd) -> std::io::Result<Output> {
        self.run_with(cmd, None)
    }

    /// Runs one command, passing each line of its output to `on_line` while it runs when the
    /// host [`streams`](RemoteShell::streams) (else after it ends). The output returned is the
    /// command's, byte for byte, either way.
    pub(crate) fn run_streaming(
        &mut self,
        cmd: &Cmd,
        on_line: crate::LineSink<'_>,
    ) -> std::io::Result<Output> {
        self.run_with(cmd, Some(on_line))
    }

    fn run_with(
        &mut self,
        cmd: &Cmd,
        on_line: Option<crate::LineSink<'_>>,
    ) -> std::io::Result<Output> {
        let mut request = Vec::new();
        let n = self.requests + 1;
        // Text input (no NUL, a newline at its end, no line that ends it early) is the command's
        // own here-document, which the shell reads itself; anything else goes through base64.
        let in_place = format!("HOIST-IN-{}-{n}", self.secret);
        let heredoc = cmd
            .stdin
            .as_deref()
            .filter(|bytes| is_heredoc_text(bytes, &in_place));
        let input: &str = match &cmd.stdin {
            Some(_) if heredoc.is_some() => "/dev/null",
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
        let live = on_line.filter(|_| self.streams);
        let (stream, stream_wait) = if live.is_some() {
            (STREAM, STREAM_WAIT)
        } else {
            (":", ":")
        };
        self.requests = n;
        let boundary = format!("HOIST-END-{}-{n}", self.secret);
        if n.is_multiple_of(CLEAN_EVERY) {
            // Every earlier request has ended: the shell runs one at a time.
            request.extend_from_slice(b"rm -f \"$__hoist_d\"/o* \"$__hoist_d\"/e*\n");
        }
        let files = format!(
            "__hoist_i={input}; __hoist_b={boundary}; __hoist_n={n}; __hoist_o=\"$__hoist_d/o{n}\"; __hoist_e=\"$__hoist_d/e{n}\""
        );
        let brief = cmd.brief_script().filter(|_| live.is_none());
        let text = match brief {
            Some((script, args)) => {
                let mut set = String::from("set --");
                for a in args {
                    set.push(' ');
                    set.push_str(&crate::shell_quote(a));
                }
                format!(
                    "{{ __hoist_c={}; {files}\n{RUN_BRIEF_START}\n( {set}; eval \"$__hoist_c\" ) {RUN_BRIEF_END}\n{BRIEF_SEND}; }}\n",
                    crate::shell_quote(script)
                )
            }
            None => format!(
                "{{ __hoist_c={}; {files}\n{RUN_START}\n{stream}\n{RUN_WAIT}\n{stream_wait}\n{RUN_END}\n{SEND}; }}\n",
                crate::shell_quote(&cmd.render())
            ),
        };
        match heredoc {
            Some(body) => request.extend(with_heredoc(&text, &in_place, body)),
            None => request.extend_from_slice(text.as_bytes()),
        }
        self.stdin.write_all(&request)?;
        self.stdin.flush()?;
        // A brief script's output comes first, up to the boundary.
        let early = match brief {
            Some(_) => Some(read_until(&mut self.stdout, boundary.as_bytes())?),
            None => None,
        };
        if let Some(on_line) = live {
            // Shown only: the output returned is the files', sent after the header.
            let mut lines = TailLines::new(n);
            loop {
                let line = self.read_line()?;
                if line == boundary {
                    lines.end(on_line);
                    break;
                }
                lines.line(line, on_line);
            }
        }
        let header = self.read_line()?;
        let fields: Vec<&str> = header.split_whitespace().collect();
        let parsed = match fields.as_slice() {
            [DONE, rc] => rc.parse::<i32>().ok(),
            _ => None,
        };
        let Some(status) = parsed else {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("unexpected answer from the remote shell: {header:?}"),
            ));
        };
        let stdout = match early {
            Some(stdout) => stdout,
            None => read_until(&mut self.stdout, boundary.as_bytes())?,
        };
        let stderr = read_until(&mut self.stdout, boundary.as_bytes())?;
        let out = Output {
            status,
            stdout,
            stderr,
        };
        if let (Some(on_line), None) = (on_line, live) {
            crate::replay_lines(&out, on_line);
        }
        Ok(out)
    }
}

/// Whether `bytes` can be a quoted here-document ended by the line `end`: no NUL (the shell
/// would drop it), a newline at the end (the shell adds one), no line that is `end`.
fn is_heredoc_text(bytes: &[u8], end: &str) -> bool {
    bytes.last() == Some(&b'\n')
        && !bytes.contains(&0)
        && !bytes[..bytes.len() - 1]
            .split(|b| *b == b'\n')
            .any(|line| line == end.as_bytes())
}

/// `text` with its input redirection (`<"$__hoist_i"`: the last, since a command's own text,
/// which may hold anything, comes before it) made the here-document `body`, ended by the line
/// `end`, which follows the line of the redirection.
fn with_heredoc(text: &str, end: &str, body: &[u8]) -> Vec<u8> {
    const REDIRECT: &str = "<\"$__hoist_i\"";
    let at = text
        .rfind(REDIRECT)
        .expect("every command reads $__hoist_i");
    let line_end = at + text[at..].find('\n').expect("a line after the redirection") + 1;
    let mut out = Vec::with_capacity(text.len() + body.len() + 2 * end.len() + 8);
    out.extend_from_slice(&text.as_bytes()[..at]);
    out.extend_from_slice(format!("<<'{end}'").as_bytes());
    out.extend_from_slice(&text.as_bytes()[at + REDIRECT.len()..line_end]);
    out.extend_from_slice(body);
    out.extend_from_slice(end.as_bytes());
    out.push(b'\n');
    out.extend_from_slice(&text.as_bytes()[line_end..]);
    out
}

/// Sorts the lines of [`STREAM`]'s tail back into the two files they came from. Before each
/// stretch of one file tail writes a header `==> o<n> <==` (or `e<n>`), and before every header
/// but the first an empty line of its own: where a stretch ended without a newline, the text
/// before that empty line's newline is the start of a line its file goes on with later. So a
/// line is passed on only once the next one shows that it was not that. A command that prints
/// a header's exact text only moves what is shown to the other stream; what is returned is the
/// files'.
struct TailLines {
    headers: [String; 2],
    current: usize,
    held: Option<String>,
    partial: [String; 2],
}

impl TailLines {
    const STREAMS: [crate::Stream; 2] = [crate::Stream::Stdout, crate::Stream::Stderr];

    fn new(request: u64) -> TailLines {
        TailLines {
            headers: [format!("==> o{request} <=="), format!("==> e{request} <==")],
            current: 0,
            held: None,
            partial: [String::new(), String::new()],
        }
    }

    fn line(&mut self, line: String, on_line: crate::LineSink<'_>) {
        if let Some(file) = self.headers.iter().position(|h| *h == line) {
            // The held line ended with tail's newline, not the file's.
            if let Some(text) = self.held.take() {
                self.partial[self.current].push_str(&text);
            }
            self.current = file;
            return;
        }
        if let Some(text) = self.held.replace(line) {
            self.pass(self.current, text, on_line);
        }
    }

    /// At the boundary, which [`STREAM_WAIT`] writes after a newline of its own.
    fn end(&mut self, on_line: crate::LineSink<'_>) {
        if let Some(text) = self.held.take() {
            self.partial[self.current].push_str(&text);
        }
        for file in 0..2 {
            if !self.partial[file].is_empty() {
                self.pass(file, String::new(), on_line);
            }
        }
    }

    fn pass(&mut self, file: usize, text: String, on_line: crate::LineSink<'_>) {
        let mut line = std::mem::take(&mut self.partial[file]);
        line.push_str(&text);
        on_line(Self::STREAMS[file], line.trim_end_matches('\r'));
    }
}

/// The bytes before the next `boundary` in `from`; the boundary is read too and dropped.
fn read_until(from: &mut impl BufRead, boundary: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut read = Vec::new();
    loop {
        let buf = from.fill_buf()?;
        if buf.is_empty() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "the remote shell ended",
            ));
        }
        let before = read.len();
        read.extend_from_slice(buf);
        // The boundary may have begun in an earlier read.
        let start = before.saturating_sub(boundary.len() - 1);
        if let Some(at) = read[start..]
            .windows(boundary.len())
            .position(|w| w == boundary)
            .map(|at| start + at)
        {
            from.consume(at + boundary.len() - before);
            read.truncate(at);
            return Ok(read);
        }
        let taken = buf.len();
        from.consume(taken);
    }
}

/// A random string (32 hex digits): for the boundaries of one shell's answers (each adds a
/// count), and the names of temporary files on the host.
pub(crate) fn random_secret() -> std::io::Result<String> {
    let mut bytes = [0u8; 16];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut bytes)?;
    Ok(hex::encode(bytes))
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

#[cfg(test)]
mod tests {
    use std::io::BufReader;
    use std::sync::Mutex;

    use super::{read_until, TailLines};
    use crate::Stream;

    /// What [`TailLines`] shows of `tail`'s output `text` (request 7), ended as [`STREAM_WAIT`]
    /// ends it.
    fn shown(text: &str) -> Vec<(Stream, String)> {
        let seen = Mutex::new(Vec::new());
        let on_line =
            |stream: Stream, line: &str| seen.lock().unwrap().push((stream, line.to_string()));
        let mut lines = TailLines::new(7);
        let ended = format!("{text}\n");
        let mut parts: Vec<&str> = ended.split('\n').collect();
        parts.pop();
        for line in parts {
            lines.line(line.to_string(), &on_line);
        }
        lines.end(&on_line);
        seen.into_inner().unwrap()
    }

    #[test]
    fn tails_stretches_are_sorted_back_into_the_two_streams() {
        let (o, e) = (Stream::Stdout, Stream::Stderr);
        let s = |stream: Stream, text: &str| (stream, text.to_string());
        // Both files empty at first, then whole lines of each in turn.
        assert_eq!(
            shown("==> o7 <==\n\n==> e7 <==\n\n==> o7 <==\none\n\n==> e7 <==\nwarming up\n\n==> o7 <==\ntwo\n"),
            [s(o, "one"), s(e, "warming up"), s(o, "two")]
        );
        // A line cut where the command paused goes on after the other file's stretch; empty
        // lines of the command's own are kept, a carriage return dropped.
        assert_eq!(
            shown("==> o7 <==\nab\n==> e7 <==\nerr\r\n\n\n==> o7 <==\ncd\n\nlast"),
            [s(e, "err"), s(e, ""), s(o, "abcd"), s(o, ""), s(o, "last")]
        );
        // A header's text from another request, and no header at all, are lines like others.
        assert_eq!(
            shown("plain\n==> o8 <==\n==> e7 <==\nx"),
            [s(o, "plain"), s(o, "==> o8 <=="), s(e, "x")]
        );
    }

    #[test]
    fn a_boundary_is_found_across_reads_and_what_follows_it_is_left() {
        let text = b"abcHOIST-END-x-1HOIST-END-x-1tailHOIST-END-x-1";
        // Every buffer size, so that the boundary is cut by every read edge.
        for capacity in 1..text.len() {
            let mut from = BufReader::with_capacity(capacity, &text[..]);
            let boundary = b"HOIST-END-x-1";
            assert_eq!(
                read_until(&mut from, boundary).unwrap(),
                b"abc",
                "{capacity}"
            );
            assert_eq!(read_until(&mut from, boundary).unwrap(), b"", "{capacity}");
            assert_eq!(
                read_until(&mut from, boundary).unwrap(),
                b"tail",
                "{capacity}"
            );
            assert!(read_until(&mut from, boundary).is_err(), "{capacity}");
        }
    }
}
