//! What `hoist serve user add`, `hoist serve token create`, `hoist serve run` and `hoist serve
//! cancel` do: short store operations, each recorded in the audit log, run without the server.

use std::future::Future;

use hoist_store::{CreatedToken, NewAudit, NewRun, Role, RunId, Trigger, TriggerKind, User};

use crate::config::ServerConfig;
use crate::runner::checkout;
use crate::ServerError;

/// Who the audit log names for a command typed on the server's machine.
fn operator() -> String {
    let user = std::env::var("USER").unwrap_or_else(|_| "unknown".into());
    format!("{user} (command line)")
}

fn block_on<T>(work: impl Future<Output = Result<T, ServerError>>) -> Result<T, ServerError> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| ServerError::Other(format!("cannot start the runtime: {e}")))?
        .block_on(work)
}

async fn audit(
    store: &dyn hoist_store::Store,
    action: &str,
    target: String,
    detail: String,
) -> Result<(), ServerError> {
    store
        .audit(&NewAudit {
            who: operator(),
            action: action.into(),
            target,
            detail,
        })
        .await?;
    Ok(())
}

/// Adds a user with `role` and `password` (kept as an argon2id hash).
///
/// # Errors
///
/// When the store cannot be opened or the user exists.
pub fn add_user(
    config: &ServerConfig,
    name: &str,
    role: Role,
    password: &str,
) -> Result<User, ServerError> {
    block_on(async {
        let store = crate::open_store(config).await?;
        let user = store.add_user(name, role, password).await?;
        audit(
            &*store,
            "user.add",
            format!("user {name}"),
            format!("role {role}"),
        )
        .await?;
        Ok(user)
    })
}

/// Creates an API token; its secret is in the answer and nowhere else.
///
/// # Errors
///
/// When the store cannot be opened or a token of that name exists.
pub fn create_token(
    config: &ServerConfig,
    name: &str,
    role: Role,
) -> Result<CreatedToken, ServerError> {
    block_on(async {
        let store = crate::open_store(config).await?;
        let token = store.create_token(name, role, &operator()).await?;
        audit(
            &*store,
            "token.create",
            format!("token {name}"),
            format!("role {role}"),
        )
        .await?;
        Ok(token)
    })
}

/// Which commit a manual run takes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Revision {
    /// The head of a branch, read from the repository now.
    Branch(String),
    /// A commit (any form `git rev-parse` takes), run as `branch`.
    Commit {
        /// The commit.
        commit: String,
        /// The branch it runs as.
        branch: String,
    },
}

/// Queues a manual run of `project` (the repository's mirror is fetched first, to resolve the
/// branch or commit). Returns the run's id.
///
/// # Errors
///
/// An unknown project, an unreachable repository, no such branch or commit, the store.
pub fn queue_run(
    config: &ServerConfig,
    project: &str,
    revision: &Revision,
) -> Result<RunId, ServerError> {
    let project = config
        .projects
        .iter()
        .find(|p| p.name == project)
        .ok_or_else(|| {
            ServerError::Other(format!(
                "no project {project:?} in {}",
                config.path.display()
            ))
        })?;
    std::fs::create_dir_all(&config.data_dir).map_err(|source| ServerError::DataDir {
        path: config.data_dir.clone(),
        source,
    })?;
    let mirror = checkout::update_mirror(&config.data_dir, &project.name, &project.repository)
        .map_err(ServerError::Other)?;
    let (commit, branch) = match revision {
        Revision::Branch(branch) => (
            checkout::branch_head(&mirror, branch).map_err(ServerError::Other)?,
            branch.clone(),
        ),
        Revision::Commit { commit, branch } => {
            if !checkout::has_commit(&mirror, commit) {
                return Err(ServerError::Other(format!(
                    "the repository has no commit {commit:?}"
                )));
            }
            (commit.clone(), branch.clone())
        }
    };
    let (message, author) = checkout::describe(&mirror, &commit);
    block_on(async {
        let store = crate::open_store(config).await?;
        let who = operator();
        let run = NewRun {
            project: project.name.clone(),
            branch: branch.clone(),
            commit: commit.clone(),
            message,
            author,
            trigger: Trigger {
                kind: TriggerKind::Manual,
                by: who,
            },
            auto_cancel: false,
        };
        let enqueued = store.enqueue(&run).await?;
        audit(
            &*store,
            "run.trigger",
            format!("run {}", enqueued.run),
            format!("{} {branch} {commit}", project.name),
        )
        .await?;
        Ok(enqueued.run)
    })
}

/// Cancels run `id`; false when it had already finished.
///
/// # Errors
///
/// When the store fails or there is no such run.
pub fn cancel_run(config: &ServerConfig, id: RunId) -> Result<bool, ServerError> {
    block_on(async {
        let store = crate::open_store(config).await?;
        if store.run(id).await?.is_none() {
            return Err(ServerError::Other(format!("no run {id}")));
        }
        let cancelled = store.cancel(id, &operator()).await?;
        if cancelled {
            audit(&*store, "run.cancel", format!("run {id}"), String::new()).await?;
        }
        Ok(cancelled)
    })
}
