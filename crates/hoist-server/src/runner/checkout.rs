//! The bare mirror of each project's repository (`git fetch`, not a clone per run) and the
//! run's checkout made from it.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::job_user::JobUser;

/// What reads the mirror for a checkout made as the job user: the mirror is the server's, and
/// git refuses to read a repository another user owns unless told it is safe.
const UPLOAD_PACK_FOR_JOB_USER: &str = "git -c 'safe.directory=*' upload-pack";

/// Runs git; its stderr is the error.
fn git(args: &[&std::ffi::OsStr], cwd: Option<&Path>) -> Result<String, String> {
    git_as(args, cwd, None)
}

/// Runs git as `user` (the server's own user when `None`); its stderr is the error.
fn git_as(
    args: &[&std::ffi::OsStr],
    cwd: Option<&Path>,
    user: Option<&JobUser>,
) -> Result<String, String> {
    let mut cmd = Command::new("git");
    if let Some(cwd) = cwd {
        cmd.current_dir(cwd);
    }
    if let Some(user) = user {
        user.apply(&mut cmd);
    }
    // Never wait for a password on a terminal nobody watches.
    cmd.env("GIT_TERMINAL_PROMPT", "0").args(args);
    let out = cmd.output().map_err(|e| format!("cannot run git: {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    } else {
        let words: Vec<String> = args
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        Err(format!(
            "git {} failed: {}",
            words.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

macro_rules! os {
    ($($arg:expr),* $(,)?) => { &[$(std::ffi::OsStr::new($arg)),*] };
}

/// `<data dir>/mirrors/<project>.git`, brought up to date with the repository: cloned with
/// `--mirror` the first time, fetched after.
///
/// # Errors
///
/// git's message when the repository cannot be reached.
pub fn update_mirror(data_dir: &Path, project: &str, repository: &str) -> Result<PathBuf, String> {
    let mirrors = data_dir.join("mirrors");
    std::fs::create_dir_all(&mirrors)
        .map_err(|e| format!("cannot create {}: {e}", mirrors.display()))?;
    let mirror = mirrors.join(format!("{project}.git"));
    if mirror.join("HEAD").exists() {
        git(os!["fetch", "--quiet", "--prune", "origin"], Some(&mirror))?;
    } else {
        let partial = mirrors.join(format!("{project}.git.partial"));
        let _ = std::fs::remove_dir_all(&partial);
        git(
            os![
                "clone",
                "--quiet",
                "--mirror",
                repository,
                partial.as_os_str()
            ],
            None,
        )?;
        std::fs::rename(&partial, &mirror)
            .map_err(|e| format!("cannot move the mirror into place: {e}"))?;
    }
    Ok(mirror)
}

/// True when the mirror has `commit`.
#[must_use]
pub fn has_commit(mirror: &Path, commit: &str) -> bool {
    git(
        os!["cat-file", "-e", &format!("{commit}^{{commit}}")],
        Some(mirror),
    )
    .is_ok()
}

/// The commit a branch of the mirror points at.
///
/// # Errors
///
/// When there is no such branch.
pub fn branch_head(mirror: &Path, branch: &str) -> Result<String, String> {
    git(
        os![
            "rev-parse",
            "--verify",
            "--quiet",
            &format!("refs/heads/{branch}^{{commit}}")
        ],
        Some(mirror),
    )
    .map_err(|_| format!("the repository has no branch {branch:?}"))
}

/// The commit `HEAD` points at: the default branch's head in a mirror, the checked-out commit
/// in a checkout.
///
/// # Errors
///
/// When there is no such repository or `HEAD` points at nothing.
pub fn head(repository: &Path) -> Result<String, String> {
    if !repository.exists() {
        return Err(format!("{} does not exist", repository.display()));
    }
    git(
        os!["rev-parse", "--verify", "--quiet", "HEAD^{commit}"],
        Some(repository),
    )
    .map_err(|_| format!("{} has no HEAD commit", repository.display()))
}

/// A commit's subject and author, from the mirror.
#[must_use]
pub fn describe(mirror: &Path, commit: &str) -> (String, String) {
    git(os!["log", "-1", "--format=%an%n%B", commit], Some(mirror))
        .ok()
        .and_then(|out| {
            out.split_once('\n')
                .map(|(a, m)| (m.trim().to_string(), a.to_string()))
        })
        .unwrap_or_default()
}

/// Checks `commit` out into `dir` (a clone sharing the mirror's objects: no copy), as `user`
/// when given (the checkout is then that user's).
///
/// # Errors
///
/// git's message.
pub fn checkout(
    mirror: &Path,
    commit: &str,
    dir: &Path,
    user: Option<&JobUser>,
) -> Result<(), String> {
    if dir.exists() {
        std::fs::remove_dir_all(dir).map_err(|e| format!("cannot empty {}: {e}", dir.display()))?;
    }
    if let Some(parent) = dir.parent() {
        std::fs::create_dir_all(parent)
            .map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
    }
    let upload_pack = if user.is_some() {
        UPLOAD_PACK_FOR_JOB_USER
    } else {
        "git-upload-pack"
    };
    git_as(
        os![
            "clone",
            "--quiet",
            "--shared",
            "--no-checkout",
            "--upload-pack",
            upload_pack,
            mirror.as_os_str(),
            dir.as_os_str()
        ],
        // A directory the job user may enter (the server's own may be closed to it).
        dir.parent(),
        user,
    )?;
    git_as(
        os![
            "-c",
            "advice.detachedHead=false",
            "checkout",
            "--quiet",
            "--detach",
            commit
        ],
        Some(dir),
        user,
    )?;
    Ok(())
}
