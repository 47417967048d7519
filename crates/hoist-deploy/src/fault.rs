//! Test-only failure points: `HOIST_FAIL_AT=<name>` makes the process kill itself with
//! SIGKILL at that point, so tests can prove the invariants hold whenever hoist dies.

/// Kills this process when `HOIST_FAIL_AT` names this point. No-op otherwise.
pub(crate) fn point(name: &str) {
    if std::env::var("HOIST_FAIL_AT").is_ok_and(|v| v == name) {
        let _ = std::process::Command::new("kill")
            .args(["-9", &std::process::id().to_string()])
            .status();
        // `kill` cannot fail on our own pid; if it somehow did, still never continue.
        std::process::abort();
    }
}

/// Every failure point, in the order a deploy or rollback reaches them (for tests and docs).
pub const POINTS: &[&str] = &[
    "deploy:locked",
    "deploy:started",
    "deploy:uploaded",
    "deploy:env",
    "deploy:hooks",
    "deploy:prepared",
    "deploy:switched",
    "deploy:restarted",
    "deploy:healthy",
    "deploy:recorded",
    "deploy:pruning",
    "deploy:pruned",
    "deploy:switched-back",
    "rollback:locked",
    "rollback:switched",
    "rollback:restarted",
    "rollback:recorded",
    "rollback:switched-back",
];
