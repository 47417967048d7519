use std::fmt;

/// Where a failed command left things; the CLI maps each kind to its own exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureKind {
    /// The configuration or the command line is wrong; nothing was changed.
    Config,
    /// Failed before any switch: the release that was live is still live.
    BeforeSwitch,
    /// Failed after the switch; `current` was switched back to the previous release.
    RolledBack,
    /// Another deploy holds the lock.
    LockHeld,
    /// Failed after the switch and left as it was: as asked (`--no-rollback-on-failure`),
    /// hosts may serve different releases; or an after-switch (after-rollback) hook failed and
    /// the healthy release stays live.
    LeftAsIs,
    /// Anything else (a bug, an unexpected I/O error).
    Internal,
}

/// A failure with a message that says what happened and where things stand, plus hints
/// and, for a deploy or rollback, where every host stands.
#[derive(Debug, Clone)]
pub struct DeployError {
    pub kind: FailureKind,
    pub message: String,
    pub hints: Vec<String>,
    pub hosts: Vec<crate::HostOutcome>,
}

impl DeployError {
    pub fn new(kind: FailureKind, message: impl Into<String>) -> Self {
        DeployError {
            kind,
            message: message.into(),
            hints: Vec::new(),
            hosts: Vec::new(),
        }
    }

    pub fn config(message: impl Into<String>) -> Self {
        DeployError::new(FailureKind::Config, message)
    }

    pub fn before_switch(message: impl Into<String>) -> Self {
        DeployError::new(FailureKind::BeforeSwitch, message)
    }

    pub fn internal(message: impl Into<String>) -> Self {
        DeployError::new(FailureKind::Internal, message)
    }

    /// For a failure known to come before any switch: an unforeseen error (I/O, transport)
    /// there means "nothing was switched", which is what the user must hear; other kinds
    /// already say where things stand.
    #[must_use]
    pub fn nothing_switched(mut self) -> Self {
        if self.kind == FailureKind::Internal {
            self.kind = FailureKind::BeforeSwitch;
        }
        self
    }

    pub fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hints.push(hint.into());
        self
    }
}

impl fmt::Display for DeployError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for DeployError {}

impl From<hoist_transport::TransportError> for DeployError {
    fn from(e: hoist_transport::TransportError) -> Self {
        DeployError::internal(e.to_string())
    }
}
