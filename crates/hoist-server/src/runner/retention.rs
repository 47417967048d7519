//! `retention`: the directories of runs finished longer ago than that are deleted (checkouts,
//! workspaces, engine records, artifacts). The store keeps the runs, their logs and results.

use std::path::Path;
use std::time::Duration;

use hoist_store::Store;

/// How often the run directories are looked at, besides at start.
pub const EVERY: Duration = Duration::from_secs(3600);

/// Deletes `<data dir>/runs/<id>` of every run finished more than `retention` ago; returns
/// the ids deleted. A directory whose run the store does not know is left alone.
pub async fn prune(store: &dyn Store, data_dir: &Path, retention: Duration) -> Vec<i64> {
    let runs = data_dir.join("runs");
    let Ok(entries) = std::fs::read_dir(&runs) else {
        return Vec::new();
    };
    let cutoff =
        chrono::Utc::now() - chrono::Duration::from_std(retention).unwrap_or(chrono::Duration::MAX);
    let mut deleted = Vec::new();
    for entry in entries.flatten() {
        let Some(id) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<i64>().ok())
        else {
            continue;
        };
        let Ok(Some(run)) = store.run(id).await else {
            continue;
        };
        let expired = run.status.is_finished() && run.finished_at.is_some_and(|at| at < cutoff);
        if expired && std::fs::remove_dir_all(entry.path()).is_ok() {
            deleted.push(id);
        }
    }
    deleted.sort_unstable();
    deleted
}
