//! What gets shipped: the file list of the project, built once on the controller with the
//! `ignore` crate from the built-in excludes, `.gitignore`, `.hoistignore` and the config's
//! `exclude`, plus the commit it came from.

use std::path::{Path, PathBuf};
use std::process::Command;

use ignore::overrides::OverrideBuilder;
use ignore::WalkBuilder;

use crate::DeployError;

/// Never shipped: version control, virtualenvs, bytecode, local secrets, hoist's own state.
pub const DEFAULT_EXCLUDES: &[&str] = &[
    ".git/",
    ".hg/",
    ".venv/",
    "venv/",
    "__pycache__/",
    "*.pyc",
    "*.pyo",
    ".env",
    ".env.*",
    ".hoist-ci/",
    ".pytest_cache/",
    ".mypy_cache/",
    "RELEASE.json",
    hoist_transport::MANIFEST_FILE,
];

/// A project tree ready to ship.
#[derive(Debug)]
pub struct SourceTree {
    /// The directory the files are relative to.
    pub dir: PathBuf,
    /// Files and symlinks to ship, relative, sorted.
    pub files: Vec<PathBuf>,
    pub commit: Option<String>,
    pub branch: Option<String>,
    /// True when the files shipped are not exactly `commit`'s: a tracked file changed or
    /// deleted, or an untracked file that is shipped. Never for a `--ref` export.
    pub dirty: bool,
    /// Holds a `--ref` export alive until the upload is done.
    _export: Option<tempfile::TempDir>,
}

impl SourceTree {
    /// Lists the working directory's files (and whether they differ from its commit), or, with
    /// `git_ref`, exports that commit's tree and lists it.
    pub fn collect(
        source: &Path,
        extra_excludes: &[String],
        git_ref: Option<&str>,
    ) -> Result<SourceTree, DeployError> {
        let (dir, export, commit, branch) = match git_ref {
            Some(reference) => {
                let sha = git(
                    source,
                    &["rev-parse", "--verify", &format!("{reference}^{{commit}}")],
                )
                .ok_or_else(|| {
                    DeployError::config(format!(
                        "{reference:?} is not a commit of the repository at {}",
                        source.display()
                    ))
                    .hint("pass a branch, tag or commit sha that `git rev-parse` knows")
                })?;
                let export = export_commit(source, &sha)?;
                let dir = export.path().to_path_buf();
                let branch = git(source, &["rev-parse", "--abbrev-ref", reference])
                    .filter(|b| b != "HEAD" && !b.is_empty());
                (dir, Some(export), Some(sha), branch)
            }
            None => {
                // A commit describes the source only when the enclosing repository tracks it:
                // an untracked app inside another repository is not that repository's HEAD.
                let tracked = git(source, &["ls-files", "--error-unmatch", "--", "."]).is_some();
                let commit = git(source, &["rev-parse", "HEAD"]).filter(|_| tracked);
                let branch = git(source, &["rev-parse", "--abbrev-ref", "HEAD"])
                    .filter(|b| tracked && b != "HEAD");
                (source.to_path_buf(), None, commit, branch)
            }
        };
        let files = list_files(&dir, extra_excludes)?;
        let dirty = export.is_none() && commit.is_some() && differs_from_head(&dir, &files);
        Ok(SourceTree {
            dir,
            files,
            commit,
            branch,
            dirty,
            _export: export,
        })
    }
}

/// True when the working tree at `dir` is not its HEAD for what is shipped: a tracked file
/// changed, staged or deleted, or one of the `shipped` files untracked.
fn differs_from_head(dir: &Path, shipped: &[PathBuf]) -> bool {
    let changed = git(
        dir,
        &["diff", "--name-only", "--relative", "HEAD", "--", "."],
    )
    .is_none_or(|names| !names.is_empty());
    changed
        || git(
            dir,
            &[
                "ls-files",
                "-z",
                "--others",
                "--exclude-standard",
                "--",
                ".",
            ],
        )
        .is_some_and(|untracked| {
            untracked
                .split('\0')
                .any(|name| shipped.binary_search(&PathBuf::from(name)).is_ok())
        })
}

fn list_files(dir: &Path, extra_excludes: &[String]) -> Result<Vec<PathBuf>, DeployError> {
    let mut overrides = OverrideBuilder::new(dir);
    for pattern in DEFAULT_EXCLUDES
        .iter()
        .copied()
        .chain(extra_excludes.iter().map(String::as_str))
    {
        overrides.add(&format!("!{pattern}")).map_err(|e| {
            DeployError::config(format!(
                "exclude pattern {pattern:?} is not a valid glob: {e}"
            ))
        })?;
    }
    let overrides = overrides
        .build()
        .map_err(|e| DeployError::config(format!("exclude patterns: {e}")))?;
    let walker = WalkBuilder::new(dir)
        .hidden(false)
        .parents(false)
        .git_global(false)
        .require_git(false)
        .add_custom_ignore_filename(".hoistignore")
        .overrides(overrides)
        // A directory holding pyvenv.cfg is a virtualenv whatever its name (the seed's `env/`).
        .filter_entry(|e| {
            !(e.file_type().is_some_and(|kind| kind.is_dir())
                && e.path().join("pyvenv.cfg").exists())
        })
        .build();
    let mut files = Vec::new();
    for entry in walker {
        let entry =
            entry.map_err(|e| DeployError::before_switch(format!("listing the source: {e}")))?;
        let ty = entry.file_type();
        if ty.is_some_and(|kind| kind.is_file() || kind.is_symlink()) {
            let rel = entry
                .path()
                .strip_prefix(dir)
                .expect("walked paths are under the root")
                .to_path_buf();
            files.push(rel);
        }
    }
    files.sort();
    Ok(files)
}

fn git(dir: &Path, args: &[&str]) -> Option<String> {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

fn export_commit(source: &Path, sha: &str) -> Result<tempfile::TempDir, DeployError> {
    let dir = tempfile::Builder::new()
        .prefix("hoist-export-")
        .tempdir()
        .map_err(|e| DeployError::internal(format!("making a temporary directory: {e}")))?;
    // The project may sit in a subdirectory of the repository: export only that part.
    let prefix = git(source, &["rev-parse", "--show-prefix"]).unwrap_or_default();
    let mut archive = Command::new("git");
    archive
        .arg("-C")
        .arg(source)
        .args(["archive", "--format=tar", sha]);
    if !prefix.is_empty() {
        archive.arg(&prefix);
    }
    let tar = archive
        .output()
        .map_err(|e| DeployError::internal(format!("running git archive: {e}")))?;
    if !tar.status.success() {
        return Err(DeployError::before_switch(format!(
            "git archive {sha} failed: {}",
            String::from_utf8_lossy(&tar.stderr).trim()
        )));
    }
    let mut untar = Command::new("tar");
    untar.arg("-x").arg("-C").arg(dir.path());
    if !prefix.is_empty() {
        let depth = prefix.trim_end_matches('/').split('/').count();
        untar.arg(format!("--strip-components={depth}"));
    }
    let mut child = untar
        .stdin(std::process::Stdio::piped())
        .spawn()
        .map_err(|e| DeployError::internal(format!("running tar: {e}")))?;
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().expect("piped");
        stdin
            .write_all(&tar.stdout)
            .map_err(|e| DeployError::internal(format!("feeding tar: {e}")))?;
    }
    let status = child
        .wait()
        .map_err(|e| DeployError::internal(format!("running tar: {e}")))?;
    if !status.success() {
        return Err(DeployError::internal("unpacking the git archive failed"));
    }
    Ok(dir)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    #[test]
    fn defaults_and_hoistignore_keep_junk_out() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        for f in [
            "app.py",
            "pkg/mod.py",
            "pkg/__pycache__/mod.cpython-311.pyc",
            ".env",
            ".env.local",
            ".git/config",
            "env/pyvenv.cfg",
            "env/lib/x.py",
            "secret.txt",
            "notes/keep.md",
        ] {
            fs::create_dir_all(d.join(f).parent().unwrap()).unwrap();
            fs::write(d.join(f), "x").unwrap();
        }
        fs::write(d.join(".hoistignore"), "secret.txt\n").unwrap();
        let files = list_files(d, &["notes/".into()]).unwrap();
        let names: Vec<_> = files.iter().map(|p| p.display().to_string()).collect();
        assert_eq!(names, [".hoistignore", "app.py", "pkg/mod.py"]);
    }
}
