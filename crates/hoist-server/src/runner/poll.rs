//! `poll`: for repositories that cannot send webhooks, `git ls-remote` every interval; a branch
//! whose head moved since the last look (or that appeared) gets a run, trigger `poll`.
//!
//! The first look only takes note of the heads, except for a branch whose newest run in the
//! store is of another commit (it moved while the server was down): that one runs.

use std::collections::HashMap;
use std::sync::Arc;

use hoist_store::{NewRun, RunQuery, Trigger, TriggerKind};
use tokio::sync::watch;

use super::{checkout, Phase};
use crate::config::ProjectConfig;
use crate::state::AppState;

/// Polls `project` until the server stops.
pub async fn poll(app: Arc<AppState>, project: ProjectConfig, mut phase: watch::Receiver<Phase>) {
    let Some(every) = project.poll else { return };
    let mut seen: Option<HashMap<String, String>> = None;
    loop {
        if let Ok(heads) = heads(&project).await {
            let first = seen.is_none();
            let before = seen.take().unwrap_or_default();
            for (branch, commit) in &heads {
                if !project.builds_branch(branch) || before.get(branch) == Some(commit) {
                    continue;
                }
                if first && !moved_while_away(&app, &project, branch, commit).await {
                    continue;
                }
                queue(&app, &project, branch, commit).await;
            }
            seen = Some(heads);
        }
        tokio::select! {
            () = tokio::time::sleep(every) => {}
            changed = phase.changed() => if changed.is_err() || *phase.borrow() != Phase::Running { return },
        }
    }
}

/// The repository's branch heads, by `git ls-remote --heads`.
async fn heads(project: &ProjectConfig) -> Result<HashMap<String, String>, String> {
    let repository = project.repository.clone();
    tokio::task::spawn_blocking(move || {
        let out = std::process::Command::new("git")
            .env("GIT_TERMINAL_PROMPT", "0")
            .args(["ls-remote", "--heads", &repository])
            .output()
            .map_err(|e| e.to_string())?;
        if !out.status.success() {
            return Err(String::from_utf8_lossy(&out.stderr).into_owned());
        }
        Ok(String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|line| {
                let (commit, name) = line.split_once('\t')?;
                Some((
                    name.strip_prefix("refs/heads/")?.to_string(),
                    commit.to_string(),
                ))
            })
            .collect())
    })
    .await
    .map_err(|e| e.to_string())?
}

async fn moved_while_away(
    app: &AppState,
    project: &ProjectConfig,
    branch: &str,
    commit: &str,
) -> bool {
    let newest = app
        .store
        .runs(&RunQuery {
            project: Some(project.name.clone()),
            branch: Some(branch.to_string()),
            limit: 1,
            ..RunQuery::default()
        })
        .await;
    matches!(newest.as_deref(), Ok([run]) if run.commit != commit)
}

async fn queue(app: &AppState, project: &ProjectConfig, branch: &str, commit: &str) {
    let (data, name, repo, c) = (
        app.config.data_dir.clone(),
        project.name.clone(),
        project.repository.clone(),
        commit.to_string(),
    );
    // The mirror is fetched for the commit's message and author (and the runner finds it warm).
    let (message, author) = tokio::task::spawn_blocking(move || {
        checkout::update_mirror(&data, &name, &repo)
            .map(|mirror| checkout::describe(&mirror, &c))
            .unwrap_or_default()
    })
    .await
    .unwrap_or_default();
    let run = NewRun {
        project: project.name.clone(),
        branch: branch.to_string(),
        commit: commit.to_string(),
        message,
        author,
        trigger: Trigger {
            kind: TriggerKind::Poll,
            by: "poll".into(),
        },
        auto_cancel: project.auto_cancel,
    };
    if let Ok(enqueued) = app.store.enqueue(&run).await {
        app.wake_runners();
        super::supersede_running(app, project, branch, enqueued.run).await;
    }
}
