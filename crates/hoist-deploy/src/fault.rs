//! Test-only failure points: `HOIST_FAIL_AT=<name>` makes the process kill itself with
//! SIGKILL at that point, so tests can prove the invariants hold whenever hoist dies.
//! `HOIST_HOLD_AT=<name>` makes it wait there while the file `HOIST_HOLD_FILE` exists (two
//! minutes at most), so tests can look at a deploy mid-way.
//!
//! Compiled only into debug builds (what `cargo test` runs) or with the `fault-injection`
//! feature: a release binary has no way to be told to kill itself.

/// Kills this process when `HOIST_FAIL_AT` names this point. No-op otherwise.
#[cfg(any(debug_assertions, feature = "fault-injection"))]
pub(crate) fn point(name: &str) {
    if std::env::var("HOIST_FAIL_AT").is_ok_and(|v| v == name) {
        let _ = std::process::Command::new("kill")
            .args(["-9", &std::process::id().to_string()])
            .status();
        // `kill` cannot fail on our own pid; if it somehow did, still never continue.
        std::process::abort();
    }
    if std::env::var("HOIST_HOLD_AT").is_ok_and(|v| v == name) {
        if let Some(file) = std::env::var_os("HOIST_HOLD_FILE") {
            let until = std::time::Instant::now() + std::time::Duration::from_secs(120);
            while std::path::Path::new(&file).exists() && std::time::Instant::now() < until {
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
        }
    }
}

/// Release builds: no failure points.
#[cfg(not(any(debug_assertions, feature = "fault-injection")))]
pub(crate) fn point(_name: &str) {}

/// Every failure point, in the order a deploy or rollback reaches them (for tests and docs).
pub const POINTS: &[&str] = &[
    "deploy:locked",
    "deploy:repaired",
    "deploy:started",
    "deploy:uploaded",
    "deploy:env",
    "deploy:hooks",
    "deploy:once-hooks",
    "deploy:prepared",
    "deploy:renamed",
    "deploy:switched",
    "deploy:restarted",
    "deploy:healthy",
    "deploy:recorded",
    "deploy:prune-recorded",
    "deploy:pruning",
    "deploy:pruned",
    "deploy:pruning-env",
    "deploy:switched-back",
    "rollback:locked",
    "rollback:switched",
    "rollback:restarted",
    "rollback:recorded",
    "rollback:switched-back",
];
