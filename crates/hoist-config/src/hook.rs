//! `[[hook]]`: commands run inside a release before its switch, after it, or after a rollback.

use std::fmt;
use std::time::Duration;

use crate::check::Checker;
use crate::raw::RawHook;
use crate::ConfigError;

/// One `[[hook]]`, validated. Hooks of one moment run in file order, inside the release.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hook {
    /// Unique among hooks.
    pub name: String,
    /// Run with `bash -eo pipefail -c`, cwd = the release, its `.venv` on PATH.
    pub run: String,
    /// True: run once per deploy (on the first host), e.g. a database migration.
    pub once: bool,
    /// How long the hook may run before it is killed (and counted as failed).
    pub timeout: Duration,
    /// When it runs.
    pub when: HookWhen,
    /// True: run only on the first deploy of a root (no release has gone live there yet), e.g.
    /// a script that creates the database's tables.
    pub first_deploy_only: bool,
}

/// The moment a hook runs at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HookWhen {
    /// In the new release before anything switches; a failure fails the deploy, nothing switched.
    BeforeSwitch,
    /// After every host switched, restarted and passed its health check; a failure is reported
    /// and the deploy exits non-zero, but the new release stays live.
    AfterSwitch,
    /// After `hoist rollback` switched, restarted and passed its health check, in the release
    /// rolled back to; a failure is reported, the rollback stays.
    AfterRollback,
}

impl HookWhen {
    /// As written in hoist.toml.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            HookWhen::BeforeSwitch => "before-switch",
            HookWhen::AfterSwitch => "after-switch",
            HookWhen::AfterRollback => "after-rollback",
        }
    }
}

impl fmt::Display for HookWhen {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

const DEFAULT_TIMEOUT: Duration = Duration::from_secs(600);

pub(crate) fn validate(check: &Checker<'_>, raw: &RawHook) -> Result<Hook, ConfigError> {
    let mut first_deploy_only = raw.first_deploy_only.as_ref().is_some_and(|f| *f.get_ref());
    let when = match &raw.when {
        None => HookWhen::BeforeSwitch,
        Some(when) => match when.get_ref().as_str() {
            "before-switch" => HookWhen::BeforeSwitch,
            "after-switch" => HookWhen::AfterSwitch,
            "after-rollback" => HookWhen::AfterRollback,
            "first-deploy" => {
                first_deploy_only = true;
                HookWhen::BeforeSwitch
            }
            other => {
                return Err(check
                    .error(
                        when.span(),
                        format!(
                            "unknown hook moment {other:?}; expected one of before-switch, after-switch, after-rollback, first-deploy"
                        ),
                    )
                    .with_hint("a hook runs before the switch unless `when` says otherwise"))
            }
        },
    };
    if first_deploy_only && when == HookWhen::AfterRollback {
        let span = raw
            .first_deploy_only
            .as_ref()
            .map_or_else(|| raw.name.span(), toml::Spanned::span);
        return Err(check
            .error(
                span,
                "an after-rollback hook cannot be first_deploy_only: a first deploy has nothing to roll back to",
            )
            .with_hint("drop first_deploy_only, or make the hook run after-switch"));
    }
    Ok(Hook {
        name: check.non_empty(&raw.name, "name")?,
        run: check.non_empty(&raw.run, "run")?,
        once: raw.once.unwrap_or(false),
        timeout: check.positive_duration(raw.timeout.as_ref(), "timeout", DEFAULT_TIMEOUT)?,
        when,
        first_deploy_only,
    })
}
