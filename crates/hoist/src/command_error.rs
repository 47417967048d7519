//! [`CommandError`]: what a command returns when it fails, built with `?` from each library's
//! error. `main` prints it once and maps its [`ErrorKind`] to the exit code (README's table,
//! "Exit codes"); no command prints its own error or picks a number.

use hoist_deploy::{DeployError, FailureKind, HostOutcome};
use hoist_transport::TransportError;

/// Why a command failed: one kind per non-zero row of README's exit-code table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// 1: a bug, or an I/O failure hoist did not foresee.
    Internal,
    /// 2: the configuration or the command line is wrong; nothing was changed.
    Config,
    /// 3: failed before any switch (a host could not be reached, a hook failed, ...): the
    /// release that was live still serves.
    BeforeSwitch,
    /// 4: failed after the switch and `current` was switched back.
    RolledBack,
    /// 5: the lock is held by another deploy or by hand.
    LockHeld,
    /// 6: failed after the switch and, with `--no-rollback-on-failure`, left as it was.
    LeftAsIs,
    /// 7: `hoist ci run`: the pipeline ran and a job failed, timed out or was cancelled.
    PipelineFailed,
    /// 8: `hoist check`: a host cannot take a deploy (a check FAILED); nothing was changed.
    CheckFailed,
}

impl ErrorKind {
    /// The process's exit code: README's table, in one place.
    pub fn exit_code(self) -> i32 {
        match self {
            ErrorKind::Internal => 1,
            ErrorKind::Config => 2,
            ErrorKind::BeforeSwitch => 3,
            ErrorKind::RolledBack => 4,
            ErrorKind::LockHeld => 5,
            ErrorKind::LeftAsIs => 6,
            ErrorKind::PipelineFailed => 7,
            ErrorKind::CheckFailed => 8,
        }
    }

    /// The name `--json` output gives the kind.
    pub fn name(self) -> &'static str {
        match self {
            ErrorKind::Internal => "internal",
            ErrorKind::Config => "config",
            ErrorKind::BeforeSwitch => "before_switch",
            ErrorKind::RolledBack => "rolled_back",
            ErrorKind::LockHeld => "lock_held",
            ErrorKind::LeftAsIs => "left_as_is",
            ErrorKind::PipelineFailed => "pipeline_failed",
            ErrorKind::CheckFailed => "check_failed",
        }
    }
}

impl From<FailureKind> for ErrorKind {
    fn from(kind: FailureKind) -> Self {
        match kind {
            FailureKind::Config => ErrorKind::Config,
            FailureKind::BeforeSwitch => ErrorKind::BeforeSwitch,
            FailureKind::RolledBack => ErrorKind::RolledBack,
            FailureKind::LockHeld => ErrorKind::LockHeld,
            FailureKind::LeftAsIs => ErrorKind::LeftAsIs,
            FailureKind::Internal => ErrorKind::Internal,
        }
    }
}

/// A failed command: its kind (the exit code), a message that says what happened and where
/// things stand, hints on how to fix it, and, for a fleet, where every host stands.
#[derive(Debug, Clone)]
pub struct CommandError {
    pub kind: ErrorKind,
    /// Empty when the command's own output already said it (a pipeline's summary, a check's
    /// FAILED lines): then `main` prints nothing more.
    pub message: String,
    pub hints: Vec<String>,
    /// Printed as a table under the message when there is more than one host.
    pub hosts: Vec<HostOutcome>,
    /// `hoist run`: the exit status of the user's own command, passed on instead of the kind's.
    pub command_status: Option<i32>,
}

impl CommandError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        CommandError {
            kind,
            message: message.into(),
            hints: Vec::new(),
            hosts: Vec::new(),
            command_status: None,
        }
    }

    /// `hoist run`: the command ran on the host and exited non-zero (or was killed: 1); hoist
    /// exits with that status, and prints nothing more (the command's output said it).
    pub fn command_status(status: i32) -> Self {
        CommandError {
            command_status: Some(status.clamp(1, 255)),
            ..CommandError::reported(ErrorKind::Internal)
        }
    }

    /// The process's exit code: the kind's (README's table), or `hoist run`'s command's own.
    pub fn exit_code(&self) -> i32 {
        self.command_status.unwrap_or_else(|| self.kind.exit_code())
    }

    pub fn config(message: impl Into<String>) -> Self {
        CommandError::new(ErrorKind::Config, message)
    }

    pub fn internal(message: impl Into<String>) -> Self {
        CommandError::new(ErrorKind::Internal, message)
    }

    /// A failure the command's output has already shown: only the exit code is left to give.
    pub fn reported(kind: ErrorKind) -> Self {
        CommandError::new(kind, "")
    }

    /// Puts `context: ` before the message ("setup of app: ...").
    #[must_use]
    pub fn prefixed(mut self, context: &str) -> Self {
        self.message = format!("{context}: {}", self.message);
        self
    }

    #[must_use]
    pub fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hints.push(hint.into());
        self
    }

    #[must_use]
    pub fn hints(mut self, hints: impl IntoIterator<Item = impl Into<String>>) -> Self {
        self.hints.extend(hints.into_iter().map(Into::into));
        self
    }
}

impl From<DeployError> for CommandError {
    fn from(e: DeployError) -> Self {
        CommandError {
            kind: e.kind.into(),
            message: e.message,
            hints: e.hints,
            hosts: e.hosts,
            command_status: None,
        }
    }
}

impl From<hoist_config::ConfigError> for CommandError {
    fn from(e: hoist_config::ConfigError) -> Self {
        let hint = e.hint.clone();
        CommandError::config(e.to_string()).hints(hint)
    }
}

impl From<hoist_config::SelectError> for CommandError {
    fn from(e: hoist_config::SelectError) -> Self {
        CommandError::config(e.to_string())
    }
}

impl From<hoist_config::InitError> for CommandError {
    fn from(e: hoist_config::InitError) -> Self {
        let hint = e.hint().map(str::to_string);
        CommandError::config(e.to_string()).hints(hint)
    }
}

impl From<hoist_config::AnsibleImportError> for CommandError {
    fn from(e: hoist_config::AnsibleImportError) -> Self {
        CommandError::config(e.to_string())
    }
}

/// README: "An unreachable host is named within its connect timeout, before anything is
/// changed anywhere". A host that cannot be reached, whose key is refused or that refuses the
/// login fails the command before any switch (3); anything else a transport reports while
/// acting was not foreseen (1).
impl From<TransportError> for CommandError {
    fn from(e: TransportError) -> Self {
        let kind = match &e {
            TransportError::Unreachable { .. }
            | TransportError::HostKeyChanged { .. }
            | TransportError::HostKeyUnknown { .. }
            | TransportError::AuthFailed { .. } => ErrorKind::BeforeSwitch,
            _ => ErrorKind::Internal,
        };
        CommandError::new(kind, e.to_string())
    }
}

/// A run that could not start: git, secrets, `--job`, or the run's directories: the pipeline
/// did not run, so it is not exit 7.
impl From<hoist_pipeline::engine::RunError> for CommandError {
    fn from(e: hoist_pipeline::engine::RunError) -> Self {
        let hint = e.hint();
        CommandError::config(e.to_string()).hints(hint)
    }
}

impl From<hoist_pipeline::import::ImportError> for CommandError {
    fn from(e: hoist_pipeline::import::ImportError) -> Self {
        let hint = e.hint();
        CommandError::config(e.to_string()).hint(hint)
    }
}

impl From<hoist_pipeline::cache_store::CacheError> for CommandError {
    fn from(e: hoist_pipeline::cache_store::CacheError) -> Self {
        CommandError::internal(e.to_string())
    }
}

/// A template that does not render or two programs sharing a name are the configuration's fault
/// (2); a file that cannot be read or written on the host is the transport's.
impl From<hoist_setup::SetupError> for CommandError {
    fn from(e: hoist_setup::SetupError) -> Self {
        match e {
            hoist_setup::SetupError::Template { .. } | hoist_setup::SetupError::Clash(_) => {
                CommandError::config(e.to_string())
            }
            hoist_setup::SetupError::Owner(_) | hoist_setup::SetupError::Reload(_) => {
                CommandError::internal(e.to_string())
            }
            hoist_setup::SetupError::Transport(e) => e.into(),
        }
    }
}

/// A server that may not start as configured (root, a secret it cannot read, a store URL or
/// name that is wrong) is the configuration's fault (2); anything else is internal.
impl From<hoist_server::ServerError> for CommandError {
    fn from(e: hoist_server::ServerError) -> Self {
        let hint = e.hint();
        let kind = match &e {
            hoist_server::ServerError::Root
            | hoist_server::ServerError::RunnerUser { .. }
            | hoist_server::ServerError::RunnerOnlySqlite
            | hoist_server::ServerError::Secret { .. }
            | hoist_server::ServerError::Store(
                hoist_store::StoreError::Exists { .. }
                | hoist_store::StoreError::Invalid { .. }
                | hoist_store::StoreError::UnsupportedUrl { .. },
            ) => ErrorKind::Config,
            _ => ErrorKind::Internal,
        };
        CommandError::new(kind, e.to_string()).hints(hint)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KINDS: [ErrorKind; 8] = [
        ErrorKind::Internal,
        ErrorKind::Config,
        ErrorKind::BeforeSwitch,
        ErrorKind::RolledBack,
        ErrorKind::LockHeld,
        ErrorKind::LeftAsIs,
        ErrorKind::PipelineFailed,
        ErrorKind::CheckFailed,
    ];

    /// One kind per row of README's table, and no row without its kind.
    #[test]
    fn kinds_map_one_to_one_to_the_exit_codes_readme_documents() {
        let readme = include_str!("../../../README.md");
        let table = readme
            .split("### Exit codes")
            .nth(1)
            .expect("README has an exit-code section");
        let documented: Vec<i32> = table
            .lines()
            .skip_while(|l| !l.starts_with("| code"))
            .skip(2)
            .take_while(|l| l.starts_with('|'))
            .map(|l| l.split('|').nth(1).unwrap().trim().parse().unwrap())
            .collect();
        let mut codes: Vec<i32> = KINDS.iter().map(|k| k.exit_code()).collect();
        codes.insert(0, 0);
        assert_eq!(documented, codes);
        let names: std::collections::BTreeSet<&str> = KINDS.iter().map(|k| k.name()).collect();
        assert_eq!(names.len(), KINDS.len());
    }
}
