use std::path::Path;

/// A command to run on a host: a program and its arguments, a working directory, extra
/// environment variables and optional standard input. Never a shell string.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Cmd {
    pub program: String,
    pub args: Vec<String>,
    pub cwd: Option<String>,
    pub env: Vec<(String, String)>,
    pub stdin: Option<Vec<u8>>,
    /// Stopped by [`crate::interrupt_commands`] (Ctrl-C); see [`Cmd::interruptible`].
    pub interruptible: bool,
    /// Runs through `sudo -n` when the host has `become = true` ([`crate::Become`]): set on
    /// restart, status and setup commands by [`crate::Privileged`].
    pub privileged: bool,
    /// Its output is the user's to follow as it comes (a `command` restart): a transport
    /// wrapped in [`crate::Streamed`] passes it on line by line; see [`Cmd::live`].
    pub live: bool,
    /// hoist's own short `sh -c` script; see [`Cmd::brief`].
    pub brief: bool,
}

impl Cmd {
    pub fn new(program: impl Into<String>) -> Self {
        Cmd {
            program: program.into(),
            ..Cmd::default()
        }
    }

    /// A `bash -c <script>` command, for user-written hook and restart commands. The script
    /// is one quoted argument; hoist never splices values into it (they go in `env`).
    pub fn shell(script: impl Into<String>) -> Self {
        Cmd::new("bash").arg("-c").arg(script)
    }

    pub fn arg(mut self, arg: impl Into<String>) -> Self {
        self.args.push(arg.into());
        self
    }

    pub fn path_arg(self, path: &Path) -> Self {
        self.arg(path.to_string_lossy().into_owned())
    }

    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    pub fn cwd(mut self, dir: &Path) -> Self {
        self.cwd = Some(dir.to_string_lossy().into_owned());
        self
    }

    pub fn env(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.env.push((key.into(), value.into()));
        self
    }

    /// Marks a command that Ctrl-C may stop (a pre-switch hook): locally its process group
    /// gets SIGTERM when [`crate::interrupt_commands`] is called. Never for a restart or a
    /// health command, which must finish once `current` has moved.
    #[must_use]
    pub fn interruptible(mut self) -> Self {
        self.interruptible = true;
        self
    }

    /// Marks a command that `become = true` runs through `sudo -n` (as [`crate::Privileged`]
    /// does for every command of a transport).
    #[must_use]
    pub fn privileged(mut self) -> Self {
        self.privileged = true;
        self
    }

    /// Marks a user-written command whose output should be followed live ([`crate::Streamed`]),
    /// unlike hoist's own probes and polls.
    #[must_use]
    pub fn live(mut self) -> Self {
        self.live = true;
        self
    }

    /// Marks hoist's own short script, `sh -c <script> <name> <args>...`, that ends by itself
    /// within a moment and runs none of the user's code. The host's long-lived shell over SSH
    /// may then run it in a subshell of its own: no new `sh` to start (an `exec` and a dynamic
    /// load, ~0.7 ms a command here, and a deploy runs dozens) and no watcher for hoist's death
    /// (the script ends anyway). There its `$0` is the host shell's name, `$$` that shell's
    /// pid (the same for every command of a connection, which run one at a time), and its
    /// variables start as the host shell's (hoist's own, all named `__hoist_*`): a brief
    /// script relies on none of them but for a name that no other connection's command uses at
    /// the same time. Anything else runs as before.
    #[must_use]
    pub fn brief(mut self) -> Self {
        self.brief = true;
        self
    }

    /// The script and its positional arguments when this is a [`Cmd::brief`] `sh -c` script
    /// with no working directory, environment or `sudo` of its own.
    pub(crate) fn brief_script(&self) -> Option<(&str, &[String])> {
        if !self.brief
            || self.program != "sh"
            || self.cwd.is_some()
            || !self.env.is_empty()
            || self.privileged
        {
            return None;
        }
        match self.args.as_slice() {
            [c, script, _name, args @ ..] if c == "-c" => Some((script, args)),
            _ => None,
        }
    }

    /// The same command with every variable of the shell-syntax file `file` (on the host)
    /// exported first. The values stay in the file: they are never part of a command line,
    /// where `ps` or an error message could show them. A file that cannot be read fails the
    /// command with status 125.
    #[must_use]
    pub fn with_env_file(self, file: &Path) -> Self {
        let Cmd {
            program,
            args,
            cwd,
            env,
            stdin,
            interruptible,
            privileged,
            live,
            brief: _,
        } = self;
        Cmd {
            program: "bash".into(),
            args: [
                "-c".to_string(),
                ENV_FILE_SCRIPT.to_string(),
                file.to_string_lossy().into_owned(),
                program,
            ]
            .into_iter()
            .chain(args)
            .collect(),
            cwd,
            env,
            stdin,
            interruptible,
            privileged,
            live,
            brief: false,
        }
    }

    pub fn stdin(mut self, bytes: Vec<u8>) -> Self {
        self.stdin = Some(bytes);
        self
    }

    /// The command as one line of POSIX shell, every value quoted: `cd <cwd> && env K=V ...
    /// program args...`. This is the only place hoist turns values into shell text.
    pub fn render(&self) -> String {
        let mut out = String::new();
        if let Some(cwd) = &self.cwd {
            out.push_str("cd ");
            out.push_str(&shell_quote(cwd));
            out.push_str(" && ");
        }
        if !self.env.is_empty() {
            out.push_str("env");
            for (k, v) in &self.env {
                out.push(' ');
                out.push_str(&shell_quote(&format!("{k}={v}")));
            }
            out.push(' ');
        }
        out.push_str(&shell_quote(&self.program));
        for a in &self.args {
            out.push(' ');
            out.push_str(&shell_quote(a));
        }
        out
    }
}

/// Exports the variables of the file `$0`, then runs `"$@"` in its place.
const ENV_FILE_SCRIPT: &str = r#"set -a; . "$0" || { echo "cannot read the environment file $0" >&2; exit 125; }; set +a; exec "$@""#;

/// Quotes one value for a POSIX shell: safe characters pass as they are, everything else is
/// wrapped in single quotes with embedded single quotes written as `'\''`.
pub fn shell_quote(value: &str) -> String {
    let safe = !value.is_empty()
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_./=:,@%+".contains(&b));
    if safe {
        value.to_string()
    } else {
        format!("'{}'", value.replace('\'', r"'\''"))
    }
}

/// What a finished command left behind.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Output {
    /// The exit status; `-1` when killed by a signal.
    pub status: i32,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}

impl Output {
    pub fn success(&self) -> bool {
        self.status == 0
    }

    pub fn stdout_text(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }

    pub fn stderr_text(&self) -> String {
        String::from_utf8_lossy(&self.stderr).into_owned()
    }

    /// The last `n` lines of stderr and stdout, for error messages.
    pub fn tail(&self, n: usize) -> String {
        let text = format!("{}{}", self.stdout_text(), self.stderr_text());
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(n)..].join("\n")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_values_stay_one_argument() {
        let cmd = Cmd::new("ls")
            .arg("a b")
            .arg("$(touch /tmp/x)")
            .arg("it's; rm -rf /");
        assert_eq!(
            cmd.render(),
            r"ls 'a b' '$(touch /tmp/x)' 'it'\''s; rm -rf /'"
        );
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(
                Cmd::new("printf")
                    .arg("%s\\n")
                    .arg("$(id)")
                    .arg("a;b")
                    .render(),
            )
            .output()
            .unwrap();
        assert_eq!(String::from_utf8_lossy(&out.stdout), "$(id)\na;b\n");
    }

    #[test]
    fn empty_value_is_quoted() {
        assert_eq!(shell_quote(""), "''");
    }
}
