//! [`Become`]: running commands on a host as another user (root by default) through `sudo -n`,
//! the way Ansible's `become` does, for teams that log in as an unprivileged deploy user.
//!
//! `sudo -n` never waits for a password: a host without a matching sudoers rule fails the
//! command at once, and [`refusal`] turns that failure into [`TransportError::SudoRefused`]
//! naming the exact sudoers line to add.

use crate::{Cmd, CommandLayer, LineSink, Output, Transport, TransportError};

/// Which commands run through `sudo -n`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BecomeScope {
    /// Only the commands marked [`Cmd::privileged`]: restarting, querying and setting up the
    /// app's processes (`become = true`). Files are written as the login user.
    Service,
    /// Every command and every file operation, and rsync on the host (`become = "all"`).
    All,
}

/// Run commands on a host as `user` through `sudo -n`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Become {
    /// The user to become; `root` unless `become_user` says otherwise.
    pub user: String,
    /// Which commands it applies to.
    pub scope: BecomeScope,
}

impl Become {
    /// True when `cmd` runs through sudo under this setting.
    #[must_use]
    pub fn applies_to(&self, cmd: &Cmd) -> bool {
        self.scope == BecomeScope::All || cmd.privileged
    }

    /// `cmd` as `sudo -n -u <user> -- env K=V... program args...`: the environment goes after
    /// sudo, which would otherwise drop it; the working directory stays a `cd` before it.
    #[must_use]
    pub fn wrap(&self, cmd: &Cmd) -> Cmd {
        let mut args: Vec<String> = vec!["-n".into(), "-u".into(), self.user.clone(), "--".into()];
        if !cmd.env.is_empty() {
            args.push("env".into());
            args.extend(cmd.env.iter().map(|(k, v)| format!("{k}={v}")));
        }
        args.push(cmd.program.clone());
        args.extend(cmd.args.iter().cloned());
        Cmd {
            program: "sudo".into(),
            args,
            cwd: cmd.cwd.clone(),
            env: Vec::new(),
            stdin: cmd.stdin.clone(),
            interruptible: cmd.interruptible,
            privileged: cmd.privileged,
            live: cmd.live,
            // Runs through sudo: no longer a script the host's shell runs itself.
            brief: false,
        }
    }

    /// The sudoers line that lets `login` run anything as this user without a password.
    #[must_use]
    pub fn sudoers_line(&self, login: &str) -> String {
        format!("{login} ALL=({}) NOPASSWD: ALL", self.user)
    }
}

/// The error for a wrapped command that sudo itself refused (a password would be needed, or
/// sudo is missing); `None` when sudo ran the command, whatever its exit status.
///
/// `login` is the user hoist logged in as, for the sudoers line.
#[must_use]
pub fn refusal(
    host: &str,
    login: &str,
    become_as: &Become,
    out: &Output,
) -> Option<TransportError> {
    let stderr = out.stderr_text();
    let detail = if !out.success()
        && (stderr.contains("sudo: a password is required")
            || stderr.contains("sudo: a terminal is required"))
    {
        format!(
            "sudo asks {login} for a password to run commands as {}, and hoist never waits for one",
            become_as.user
        )
    } else if out.status == 127 && stderr.contains("sudo") && stderr.contains("not found") {
        "sudo is not installed".to_string()
    } else if out.status == 1 && stderr.contains("sudo: unknown user") {
        format!("sudo does not know the user {}", become_as.user)
    } else {
        return None;
    };
    Some(TransportError::SudoRefused {
        host: host.to_string(),
        detail,
        line: become_as.sudoers_line(login),
    })
}

/// A transport whose commands are all marked [`Cmd::privileged`]: hand it to the code that
/// restarts, queries or sets up the app's processes, so that `become = true` applies to them.
/// File operations go to the inner transport unchanged.
pub struct Privileged<'a>(pub &'a dyn Transport);

impl CommandLayer for Privileged<'_> {
    fn inner(&self) -> &dyn Transport {
        self.0
    }

    fn layer_exec(&self, cmd: &Cmd) -> Result<Output, TransportError> {
        let mut cmd = cmd.clone();
        cmd.privileged = true;
        self.0.exec(&cmd)
    }

    fn layer_exec_streaming(
        &self,
        cmd: &Cmd,
        on_line: LineSink<'_>,
    ) -> Result<Output, TransportError> {
        let mut cmd = cmd.clone();
        cmd.privileged = true;
        self.0.exec_streaming(&cmd, on_line)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn root(scope: BecomeScope) -> Become {
        Become {
            user: "root".into(),
            scope,
        }
    }

    #[test]
    fn the_environment_goes_after_sudo() {
        let cmd = Cmd::shell("supervisorctl restart web")
            .env("HOIST_ROOT", "/srv/my app")
            .cwd(Path::new("/srv"));
        assert_eq!(
            root(BecomeScope::Service).wrap(&cmd).render(),
            "cd /srv && sudo -n -u root -- env 'HOIST_ROOT=/srv/my app' bash -c 'supervisorctl restart web'"
        );
    }

    #[test]
    fn service_scope_applies_to_privileged_commands_only() {
        let plain = Cmd::new("cat");
        let mut marked = Cmd::new("supervisorctl");
        marked.privileged = true;
        assert!(!root(BecomeScope::Service).applies_to(&plain));
        assert!(root(BecomeScope::Service).applies_to(&marked));
        assert!(root(BecomeScope::All).applies_to(&plain));
    }

    #[test]
    fn a_password_prompt_becomes_the_sudoers_line() {
        let out = Output {
            status: 1,
            stdout: Vec::new(),
            stderr: b"sudo: a password is required\n".to_vec(),
        };
        let err = refusal("web1", "deploy", &root(BecomeScope::Service), &out).unwrap();
        assert_eq!(
            err.to_string(),
            "web1: sudo asks deploy for a password to run commands as root, and hoist never waits for one; add this line to /etc/sudoers.d/hoist on the host (with `visudo -f /etc/sudoers.d/hoist`): deploy ALL=(root) NOPASSWD: ALL"
        );
        let ran = Output {
            status: 1,
            stdout: Vec::new(),
            stderr: b"web: ERROR (no such process)\n".to_vec(),
        };
        assert!(refusal("web1", "deploy", &root(BecomeScope::Service), &ran).is_none());
    }
}
