//! `[[hook]]`: commands run inside the new release before the switch.

use std::time::Duration;

use crate::check::Checker;
use crate::raw::RawHook;
use crate::ConfigError;

/// One `[[hook]]`, validated. Hooks run in file order, inside the new release, before the switch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hook {
    /// Unique among hooks.
    pub name: String,
    /// Run with `bash -eo pipefail -c`, cwd = the new release, its `.venv` on PATH.
    pub run: String,
    /// True: run once per deploy (on one host), e.g. a database migration.
    pub once: bool,
    /// How long the hook may run before it is killed and the deploy fails.
    pub timeout: Duration,
}

const DEFAULT_TIMEOUT: Duration = Duration::from_secs(600);

pub(crate) fn validate(check: &Checker<'_>, raw: &RawHook) -> Result<Hook, ConfigError> {
    Ok(Hook {
        name: check.non_empty(&raw.name, "name")?,
        run: check.non_empty(&raw.run, "run")?,
        once: raw.once.unwrap_or(false),
        timeout: check.positive_duration(raw.timeout.as_ref(), "timeout", DEFAULT_TIMEOUT)?,
    })
}
