//! The one place that decides exit codes. Documented in README.md ("Exit codes").

use hoist_deploy::FailureKind;

/// Success.
pub const OK: i32 = 0;
/// An unexpected error (a bug, an I/O failure hoist did not foresee).
pub const INTERNAL: i32 = 1;
/// The configuration or the command line is wrong; nothing was changed.
pub const CONFIG: i32 = 2;
/// The deploy failed before any switch: the release that was live still serves.
pub const BEFORE_SWITCH: i32 = 3;
/// The deploy or rollback failed after the switch and `current` was switched back.
pub const ROLLED_BACK: i32 = 4;
/// Another deploy holds the lock.
pub const LOCK_HELD: i32 = 5;
/// Failed after the switch and, with `--no-rollback-on-failure`, left as it was: hosts may
/// serve different releases (the per-host table says which).
pub const LEFT_AS_IS: i32 = 6;
/// `hoist ci run`: the pipeline ran and a job failed, timed out or was cancelled.
pub const PIPELINE_FAILED: i32 = 7;

/// The exit code of a failure.
pub fn code(kind: FailureKind) -> i32 {
    match kind {
        FailureKind::Config => CONFIG,
        FailureKind::BeforeSwitch => BEFORE_SWITCH,
        FailureKind::RolledBack => ROLLED_BACK,
        FailureKind::LockHeld => LOCK_HELD,
        FailureKind::LeftAsIs => LEFT_AS_IS,
        FailureKind::Internal => INTERNAL,
    }
}
