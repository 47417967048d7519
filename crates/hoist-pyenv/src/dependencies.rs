//! What decides an environment, read on the controller: requirements files, or a
//! `pyproject.toml` with its lock file turned into one pinned requirements list.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::error::{IncludedFrom, PyenvError};
use crate::requirements::{editable_lines, requirement_files};
use crate::{pdm_lock, pipfile_lock, poetry_lock, pyproject};

/// Where a project declares the packages of its environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DependencySource {
    /// Requirements files (relative to the source), `-r`/`-c` includes followed.
    Requirements(Vec<PathBuf>),
    /// `uv.lock` and `pyproject.toml`: what `uv sync --locked --no-dev` installs, without
    /// the project itself.
    UvLock(Selection),
    /// `poetry.lock` and `pyproject.toml`: the packages of the main group (and the chosen
    /// groups and extras), at their locked versions and hashes.
    PoetryLock(Selection),
    /// `pdm.lock` and `pyproject.toml`: the packages of the `default` group (and the chosen
    /// groups and extras, which PDM locks as groups), at their locked versions and hashes.
    PdmLock(Selection),
    /// `Pipfile.lock` and `Pipfile`: the `default` packages (and the chosen categories,
    /// `dev` meaning `develop`), at their locked versions and hashes.
    PipfileLock(Selection),
    /// `[project] dependencies` of `pyproject.toml`, unpinned.
    Pyproject(Selection),
}

/// Optional parts of a project to install besides its main dependencies.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Selection {
    /// Names of `[project.optional-dependencies]` (Poetry: `[extras]`).
    pub extras: Vec<String>,
    /// Names of `[dependency-groups]` (Poetry: `[tool.poetry.group.<name>]`).
    pub groups: Vec<String>,
}

/// The files and requirements that decide an environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dependencies {
    /// Files hashed into the dep-key, relative to the source; each is uploaded with the release.
    pub files: Vec<PathBuf>,
    /// For a `pyproject.toml` source: the requirements list installed, which is written into
    /// the environment as [`EXPORTED_REQUIREMENTS`] and hashed into the key as well.
    pub export: Option<Export>,
    /// What the user should know, e.g. that an unlocked environment is not reproducible; the
    /// caller shows them (the deploy engine: as a warning per host on every deploy).
    pub warnings: Vec<String>,
}

/// A requirements list made from a `pyproject.toml` (and its lock) on the controller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Export {
    /// What it was made from, for messages: `uv.lock`, `poetry.lock`, `pyproject.toml`.
    pub from: String,
    /// The requirements, one per line, in pip's format.
    pub requirements: String,
}

/// The name of the exported requirements inside `<root>/envs/<key>/`: what was installed.
pub const EXPORTED_REQUIREMENTS: &str = "hoist-requirements.txt";

impl Dependencies {
    /// Requirements files only, as [`requirement_files`] returns them.
    pub fn files(files: Vec<PathBuf>) -> Dependencies {
        Dependencies {
            files,
            export: None,
            warnings: Vec::new(),
        }
    }

    /// Names what the environment is built from, e.g. `requirements.txt, dev.txt` or
    /// `uv.lock (exported)`.
    pub fn describe(&self) -> String {
        match &self.export {
            Some(export) => format!("{} (exported)", export.from),
            None if self.files.is_empty() => "no requirements files".into(),
            None => self
                .files
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", "),
        }
    }
}

/// Reads what decides the environment from `source_dir` on the controller. For a lock file
/// this runs `uv export` (uv.lock) or reads the lock itself (poetry.lock, pdm.lock,
/// Pipfile.lock), so the hosts need neither the project's tool nor its configuration.
pub fn read_dependencies(
    source_dir: &Path,
    source: &DependencySource,
) -> Result<Dependencies, PyenvError> {
    match source {
        DependencySource::Requirements(roots) => {
            Ok(Dependencies::files(requirement_files(source_dir, roots)?))
        }
        DependencySource::UvLock(selection) => {
            let requirements = uv_export(source_dir, selection)?;
            exported(source_dir, "uv.lock", requirements, Vec::new())
        }
        DependencySource::PoetryLock(selection) => {
            let lock = read_text(source_dir, "poetry.lock")?;
            let requirements = poetry_lock::export(&lock, selection).map_err(|problem| {
                PyenvError::BadDependencies {
                    file: source_dir.join("poetry.lock"),
                    problem,
                    hint: "regenerate the lock with `poetry lock` and commit it".into(),
                }
            })?;
            exported(source_dir, "poetry.lock", requirements, Vec::new())
        }
        DependencySource::PdmLock(selection) => {
            let lock = read_text(source_dir, "pdm.lock")?;
            let requirements = pdm_lock::export(&lock, selection).map_err(|problem| {
                PyenvError::BadDependencies {
                    file: source_dir.join("pdm.lock"),
                    problem,
                    hint: "regenerate the lock with `pdm lock` and commit it".into(),
                }
            })?;
            exported(source_dir, "pdm.lock", requirements, Vec::new())
        }
        DependencySource::PipfileLock(selection) => {
            let lock = read_text(source_dir, "Pipfile.lock")?;
            let requirements = pipfile_lock::export(&lock, selection).map_err(|problem| {
                PyenvError::BadDependencies {
                    file: source_dir.join("Pipfile.lock"),
                    problem,
                    hint: "regenerate the lock with `pipenv lock` and commit it".into(),
                }
            })?;
            exported(source_dir, "Pipfile.lock", requirements, Vec::new())
        }
        DependencySource::Pyproject(selection) => {
            let text = read_text(source_dir, "pyproject.toml")?;
            let requirements = pyproject::requirements(&text, selection).map_err(|problem| {
                PyenvError::BadDependencies {
                    file: source_dir.join("pyproject.toml"),
                    problem,
                    hint: "declare the dependencies under [project] (PEP 621), or list \
                           requirements files with `requirements` in hoist.toml"
                        .into(),
                }
            })?;
            let warning = "pyproject.toml has no lock file, so two deploys of the same commit \
                           can install different versions; for a reproducible environment run \
                           `uv lock`, commit uv.lock and set `dependencies = \"uv.lock\"` in \
                           hoist.toml"
                .to_string();
            exported(source_dir, "pyproject.toml", requirements, vec![warning])
        }
    }
}

fn exported(
    source_dir: &Path,
    from: &str,
    requirements: String,
    warnings: Vec<String>,
) -> Result<Dependencies, PyenvError> {
    if let Some((line, requirement)) = editable_lines(&requirements).into_iter().next() {
        return Err(PyenvError::EditableRequirement {
            at: IncludedFrom {
                file: PathBuf::from(format!("{from} (exported)")),
                line,
            },
            requirement,
        });
    }
    // A local directory (a workspace member, a path dependency) installed non-editable would
    // be frozen into the shared environment while the key only covers pyproject.toml and the
    // lock, so a change to it would never reach the servers.
    if let Some((line, requirement)) = local_path_lines(&requirements).into_iter().next() {
        return Err(PyenvError::BadDependencies {
            file: source_dir.join(from),
            problem: format!(
                "line {line} of the exported requirements installs the local directory                  `{requirement}`, which the dependency key does not cover"
            ),
            hint: "publish it to a package index, or keep it inside the app's package so it                    is imported from the release directory"
                .into(),
        });
    }
    // The file that declares the packages, then the lock: both decide the environment.
    let manifest = if from == "Pipfile.lock" {
        "Pipfile"
    } else {
        "pyproject.toml"
    };
    let mut files = vec![PathBuf::from(manifest)];
    if from != manifest {
        files.push(PathBuf::from(from));
    }
    for file in &files {
        if !source_dir.join(file).is_file() {
            return Err(PyenvError::RequirementsNotFound {
                path: source_dir.join(file),
                included_from: None,
            });
        }
    }
    Ok(Dependencies {
        files,
        export: Some(Export {
            from: from.to_string(),
            requirements,
        }),
        warnings,
    })
}

/// Lines of a requirements list that name a local directory or file: (line, requirement).
fn local_path_lines(requirements: &str) -> Vec<(usize, String)> {
    requirements
        .lines()
        .enumerate()
        .filter_map(|(i, line)| {
            let line = line.trim();
            let local = line.starts_with("./")
                || line.starts_with("../")
                || line.starts_with('/')
                || line.starts_with("file:")
                || line.contains(" @ file:");
            local.then(|| (i + 1, line.trim_end_matches('\\').trim().to_string()))
        })
        .collect()
}

fn read_text(source_dir: &Path, name: &str) -> Result<String, PyenvError> {
    let path = source_dir.join(name);
    match std::fs::read_to_string(&path) {
        Ok(text) => Ok(text),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            Err(PyenvError::RequirementsNotFound {
                path,
                included_from: None,
            })
        }
        Err(source) => Err(PyenvError::RequirementsUnreadable { path, source }),
    }
}

/// `uv export --locked --no-dev --no-emit-project` in the project: the pinned, hashed
/// requirements `uv sync --locked --no-dev` would install, less the project itself (which
/// is imported from the release directory, never installed into the shared environment).
fn uv_export(source_dir: &Path, selection: &Selection) -> Result<String, PyenvError> {
    let lock = source_dir.join("uv.lock");
    if !lock.is_file() {
        return Err(PyenvError::RequirementsNotFound {
            path: lock,
            included_from: None,
        });
    }
    let mut cmd = Command::new("uv");
    cmd.args([
        "export",
        "--locked",
        "--no-emit-project",
        "--no-header",
        "--format",
        "requirements-txt",
    ]);
    // `--no-dev` wins over `--group dev`: the dev group is left out unless it is chosen.
    if !selection.groups.iter().any(|g| g == "dev") {
        cmd.arg("--no-dev");
    }
    for extra in &selection.extras {
        cmd.args(["--extra", extra]);
    }
    for group in &selection.groups {
        cmd.args(["--group", group]);
    }
    let out = cmd
        .current_dir(source_dir)
        .env("NO_COLOR", "1")
        .env("UV_PYTHON_DOWNLOADS", "never")
        .output()
        .map_err(|e| PyenvError::BadDependencies {
            file: lock.clone(),
            problem: format!("could not run `uv export` on this machine: {e}"),
            hint: "install uv where hoist runs (https://docs.astral.sh/uv/); the hosts do not \
                   need it"
                .into(),
        })?;
    if !out.status.success() {
        // uv's progress lines say nothing about the failure.
        let stderr: Vec<&str> = std::str::from_utf8(&out.stderr)
            .unwrap_or_default()
            .lines()
            .filter(|l| !l.starts_with("Using ") && !l.starts_with("Resolved "))
            .collect();
        return Err(PyenvError::BadDependencies {
            file: lock,
            problem: format!("`uv export --locked` failed:\n{}", stderr.join("\n").trim()),
            hint: "when uv.lock is out of date with pyproject.toml, run `uv lock` and commit \
                   uv.lock; an extra or group that pyproject.toml does not define is removed \
                   from `extras`/`groups` in hoist.toml"
                .into(),
        });
    }
    // `# via` comments say why a package is there; their wording changes between uv versions
    // and must not change the key when the lock did not.
    let mut requirements = String::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        if !line.trim_start().starts_with('#') && !line.trim().is_empty() {
            requirements.push_str(line);
            requirements.push('\n');
        }
    }
    Ok(requirements)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_directories_in_an_export_are_found() {
        let text =
            "six==1.16.0 \\\n    --hash=sha256:aa\n./packages/lib\nlib2 @ file:///src/lib2\n";
        assert_eq!(
            local_path_lines(text),
            [
                (3, "./packages/lib".to_string()),
                (4, "lib2 @ file:///src/lib2".to_string())
            ]
        );
    }
}
