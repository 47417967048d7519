//! Restarting the app's processes and judging the result by the health check (invariant 8):
//! a restart command that exits 0 proves nothing until the app answers.

mod health;
mod restart;
mod settle;
pub mod supervisor;
pub mod systemd;
mod warm;
pub mod workers;

pub use health::{http_get, wait_healthy, wait_healthy_reporting, HealthReport, HttpAnswer};
pub use restart::{restart, RestartContext};
pub use settle::wait_settled;

use std::time::Duration;

/// Why a restart or a health check failed.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error("{host}: restarting {process} failed (exit {status}): {output}")]
    RestartFailed {
        host: String,
        process: String,
        status: i32,
        output: String,
    },
    #[error("{host}: restarting {process} took longer than {timeout:?}")]
    RestartTimedOut {
        host: String,
        process: String,
        timeout: Duration,
    },
    /// The server did not confirm the restart or reload: the named state, and the fix.
    #[error("{host}: restarting {process} failed: {detail}\nhint: {hint}")]
    ReloadFailed {
        host: String,
        process: String,
        detail: String,
        hint: String,
    },
    /// A process did not stay up (or not in the new release) for its `settle` time.
    #[error(
        "{host}: {process} did not stay up {settle:?} after its restart: {detail}\nhint: {hint}"
    )]
    NotSettled {
        host: String,
        process: String,
        settle: Duration,
        detail: String,
        hint: String,
    },
    #[error("{host}: health check failed after {attempts} attempts in {:.1}s: {last}", .waited.as_secs_f64())]
    Unhealthy {
        host: String,
        attempts: u32,
        waited: Duration,
        last: String,
    },
    /// Ctrl-C while waiting for the health check: the wait stopped, as a failure.
    #[error("{host}: interrupted (Ctrl-C) while waiting for the health check, after {attempts} attempts in {:.1}s", .waited.as_secs_f64())]
    Interrupted {
        host: String,
        attempts: u32,
        waited: Duration,
    },
    #[error(transparent)]
    Transport(#[from] hoist_transport::TransportError),
}
