//! A planned file: what setup would write, beside what the host has now.

use std::path::PathBuf;

use hoist_config::Supervision;

use crate::Missing;

/// Everything `hoist setup` would do on one host.
#[derive(Debug, Clone)]
pub struct SetupPlan {
    pub host: String,
    /// The host's deploy root.
    pub root: PathBuf,
    pub files: Vec<PlannedFile>,
    /// Directories the server writes into (pid file, FIFO, logs), created on apply.
    pub dirs: Vec<PathBuf>,
    /// Commands the host lacks; setup never installs them.
    pub missing: Vec<Missing>,
    /// `[setup] user`: who owns the directories the server writes into.
    pub owner: Option<String>,
    /// The supervisor programs (or systemd units) setup writes, loaded by [`crate::reload`].
    pub programs: Vec<String>,
    pub supervision: Supervision,
    /// `supervisorctl -c`.
    pub supervisor_conf: Option<PathBuf>,
}

/// One rendered file and the host's current copy.
#[derive(Debug, Clone)]
pub struct PlannedFile {
    /// The template it came from (embedded or overridden), e.g. `nginx.conf`.
    pub template: String,
    /// Where it goes on the host.
    pub path: PathBuf,
    /// What setup would write.
    pub contents: String,
    /// What the host has now; `None` when the file does not exist.
    pub current: Option<String>,
}

/// What applying would do to a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    Create,
    Update,
    Unchanged,
}

impl Change {
    /// The word shown before the path.
    #[must_use]
    pub fn word(self) -> &'static str {
        match self {
            Change::Create => "create",
            Change::Update => "update",
            Change::Unchanged => "unchanged",
        }
    }
}

impl PlannedFile {
    /// Whether applying would create, change or leave the file.
    #[must_use]
    pub fn change(&self) -> Change {
        match &self.current {
            None => Change::Create,
            Some(now) if *now == self.contents => Change::Unchanged,
            Some(_) => Change::Update,
        }
    }

    /// A unified diff from the host's copy (or nothing) to the rendered file; empty when
    /// unchanged.
    #[must_use]
    pub fn diff(&self) -> String {
        if self.change() == Change::Unchanged {
            return String::new();
        }
        let old = self.current.as_deref().unwrap_or("");
        let path = self.path.display().to_string();
        let from = if self.current.is_some() {
            path.clone()
        } else {
            "/dev/null".to_string()
        };
        similar::TextDiff::from_lines(old, &self.contents)
            .unified_diff()
            .context_radius(3)
            .header(&from, &path)
            .to_string()
    }
}

impl SetupPlan {
    /// Whether applying would write anything.
    #[must_use]
    pub fn has_changes(&self) -> bool {
        self.files.iter().any(|f| f.change() != Change::Unchanged)
    }
}
