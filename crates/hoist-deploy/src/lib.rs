//! The deploy engine. It turns a validated [`hoist_config::Config`] into actions on a host
//! through a [`hoist_transport::Transport`], in the order DESIGN.md's invariants demand:
//! prepare everything, switch atomically, restart, verify by health check, record, prune.
//! It reports what it does as [`Event`]s and never prints.

mod activate;
mod adopt;
mod app_env;
mod cancel;
mod check;
mod connect;
mod deploy;
mod error;
mod event;
mod fault;
mod hooks;
mod host;
mod layout;
mod lock;
mod logs;
mod mark_good;
mod outcome;
mod plan;
mod prepare;
mod process_check;
mod prune;
mod record;
mod rollback;
mod run;
mod source;
mod state;

pub use adopt::{adopt, Adopted};
pub use cancel::request as request_cancel;
pub use check::{check, CheckItem, CheckStatus};
pub use connect::{connect, is_local_address};
pub use deploy::{deploy, DeployOptions, DeployReport, HostReport};
pub use error::{DeployError, FailureKind};
pub use event::{Event, EventSink, Step, StepStatus};
pub use fault::POINTS as FAILURE_POINTS;
pub use host::{Fleet, Host, Rollout};
pub use layout::Layout;
pub use lock::{acquire_manual_lock, lock_status, release_lock, LockStatus};
pub use logs::{process_logs, ProcessLog};
pub use mark_good::mark_good;
pub use outcome::{HostOutcome, HostResult};
pub use plan::{plan_deploy, DeployPlan, HostPlan};
pub use rollback::{rollback, RollbackReport};
pub use run::{run_in_current, RunOutput};
pub use source::{SourceTree, DEFAULT_EXCLUDES};
pub use state::{journal_history, releases, status, HistoryRow, HostState, ReleaseRow, Status};

/// Who is acting, as recorded in the journal and the lock: `HOIST_WHO`, else `user@host`.
pub fn who() -> String {
    if let Ok(who) = std::env::var("HOIST_WHO") {
        if !who.is_empty() {
            return who;
        }
    }
    let user = std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .ok()
        .filter(|u| !u.is_empty())
        .or_else(|| {
            let out = std::process::Command::new("id").arg("-un").output().ok()?;
            out.status
                .success()
                .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
        })
        .unwrap_or_else(|| "unknown".into());
    format!("{user}@{}", hostname())
}

/// This machine's host name.
pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "localhost".into())
}
