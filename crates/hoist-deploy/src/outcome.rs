//! Where each host stands at the end of a deploy or rollback: the per-host table.

use serde::Serialize;

/// What happened on one host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum HostResult {
    /// The new release is live and passed its health check.
    Live,
    /// Prepared, never switched: the old release still serves.
    NotSwitched,
    /// Preparing the new release failed here: the old release still serves.
    Failed,
    /// Switched, then switched back: the old release serves again.
    SwitchedBack,
    /// Switched back, but the old release did not pass its health check either.
    SwitchedBackUnhealthy,
    /// Switched back, but restarting the old release failed (its health was not checked).
    SwitchedBackRestartFailed,
    /// The switch back itself failed: `current` still points at the new release.
    SwitchBackFailed,
    /// Where the host stands could not be read (it stopped answering): neither "switched
    /// back" nor "live" can be claimed.
    Unknown,
    /// Switched and left on the new release although something failed (as asked).
    LeftSwitched,
    /// A first deploy that failed after its switch: `current` was removed.
    CurrentRemoved,
}

impl HostResult {
    pub fn describe(self) -> &'static str {
        match self {
            HostResult::Live => "live",
            HostResult::NotSwitched => "not switched (old release serves)",
            HostResult::Failed => "failed (old release serves)",
            HostResult::SwitchedBack => "switched back (old release serves)",
            HostResult::SwitchedBackUnhealthy => "switched back, old release unhealthy",
            HostResult::SwitchedBackRestartFailed => "switched back, restart failed",
            HostResult::SwitchBackFailed => "switch back failed, new release still current",
            HostResult::Unknown => "unknown (the host could not be read)",
            HostResult::LeftSwitched => "left on the new release",
            HostResult::CurrentRemoved => "current removed (first deploy)",
        }
    }
}

/// One row of the per-host table.
#[derive(Debug, Clone, Serialize)]
pub struct HostOutcome {
    pub host: String,
    pub previous: Option<String>,
    pub release: String,
    pub result: HostResult,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}
