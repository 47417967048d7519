//! `retention`: runs finished longer ago than that are deleted — their directories (checkouts,
//! workspaces, engine records, artifacts) and their rows in the store (jobs, steps, log lines,
//! test results, artifacts, deliveries). Kept whatever their age: the last finished run of each
//! branch (its badge) and every run that deployed what a host serves, as the store knows it.

use std::path::Path;
use std::time::Duration;

use hoist_store::{RunId, Store};

/// How often expired runs are looked for, besides at start.
pub const EVERY: Duration = Duration::from_secs(3600);

/// Deletes every run finished more than `retention` ago that the store does not keep: first
/// its directory `<data dir>/runs/<id>`, then its rows (so that a crash in between leaves a row
/// the next look deletes, never a directory nothing names). Returns the ids deleted.
pub async fn prune(store: &dyn Store, data_dir: &Path, retention: Duration) -> Vec<RunId> {
    let cutoff =
        chrono::Utc::now() - chrono::Duration::from_std(retention).unwrap_or(chrono::Duration::MAX);
    let Ok(expired) = store.expired_runs(cutoff).await else {
        return Vec::new();
    };
    let mut deleted = Vec::new();
    for id in expired {
        let dir = data_dir.join("runs").join(id.to_string());
        let removed = match std::fs::remove_dir_all(&dir) {
            Ok(()) => true,
            Err(e) => e.kind() == std::io::ErrorKind::NotFound,
        };
        if removed && store.delete_run(id).await.unwrap_or(false) {
            deleted.push(id);
        }
    }
    deleted
}
