//! Building `<root>/envs/<key>` once, at its final path, and marking it complete.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use hoist_transport::{Cmd, FileKind, Output, Transport};
use serde::{Deserialize, Serialize};

use crate::dep_key::{key_of, DepKey};
use crate::dependencies::{Dependencies, Export, EXPORTED_REQUIREMENTS};
use crate::error::{BuildFailure, IncludedFrom, PyenvError};
use crate::installer::Installer;
use crate::interpreter::Interpreter;
use crate::requirements::{parse_includes, resolve_include};

/// The file whose presence makes an environment (or a wheel directory) complete. It is written
/// last, atomically; anything without it is half-built and is removed, never used.
pub const COMPLETE_MARK: &str = ".hoist-complete";

/// Lines of installer output kept in an error.
const TAIL_LINES: usize = 15;

/// What [`ensure_env`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvOutcome {
    /// `<root>/envs/<key>`.
    pub path: PathBuf,
    /// True when a complete environment was already there and nothing was built.
    pub reused: bool,
}

/// The contents of `<env>/.hoist-complete`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnvMark {
    /// The environment's own key; a mark naming another key is not trusted.
    pub key: DepKey,
    /// The interpreter the venv was made from.
    pub interpreter: Interpreter,
    /// The installer that filled it.
    pub installer: Installer,
    /// When the environment was completed (RFC 3339, UTC).
    pub created: String,
    /// The requirements files it was built from, relative to the release.
    pub files: Vec<PathBuf>,
}

/// Reads `<env>/.hoist-complete`; `None` when the environment is missing or half-built (no
/// mark, or a mark that is not ours).
pub fn read_env_mark(transport: &dyn Transport, env: &Path) -> Result<Option<EnvMark>, PyenvError> {
    let Some(bytes) = transport.read_file(&env.join(COMPLETE_MARK))? else {
        return Ok(None);
    };
    Ok(serde_json::from_slice(&bytes).ok())
}

/// Makes sure `<root>/envs/<key>` is a complete environment for `deps`, whose files are found
/// in `release_dir` (the new release, already on the host): reuses it when its completion mark
/// exists; otherwise removes whatever half-built thing is there, builds the venv at its final
/// path (venvs are not relocatable), installs, runs `pip check` (uv: `uv pip check`), and only
/// then writes the completion mark atomically. The files are relative to `release_dir`; with
/// the export, they must hash to `key` there, so an environment never holds other
/// requirements than its name says. An export is written into the environment as
/// [`EXPORTED_REQUIREMENTS`] and installed from there. `log` receives progress lines for the
/// user; `deps`' warnings are the caller's to show.
#[allow(clippy::too_many_arguments)] // the API the deploy engine calls; each is one fact
pub fn ensure_env(
    transport: &dyn Transport,
    root: &Path,
    key: &DepKey,
    release_dir: &Path,
    deps: &Dependencies,
    interpreter: &Interpreter,
    installer: &Installer,
    log: &mut dyn FnMut(&str),
) -> Result<EnvOutcome, PyenvError> {
    require_absolute("the deploy root", root)?;
    require_absolute("the release directory", release_dir)?;
    let env = root.join("envs").join(key.as_str());
    // The release's dependency files and the environment's completion mark, in one round trip.
    let mark_path = env.join(COMPLETE_MARK);
    let paths: Vec<PathBuf> = deps.files.iter().map(|rel| release_dir.join(rel)).collect();
    let mut read = transport.read_files(
        &paths
            .iter()
            .map(PathBuf::as_path)
            .chain([mark_path.as_path()])
            .collect::<Vec<_>>(),
    )?;
    let mark: Option<EnvMark> = read
        .pop()
        .flatten()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok());
    let contents = release_files(transport, &deps.files, &paths, read)?;
    let actual = key_of(&contents, deps.export.as_ref(), interpreter, installer);
    if actual != *key {
        return Err(PyenvError::KeyMismatch {
            host: transport.host().to_string(),
            release_dir: release_dir.to_path_buf(),
            expected: key.to_string(),
            actual: actual.to_string(),
        });
    }
    if let Some(mark) = mark {
        if mark.key == *key {
            log(&format!(
                "environment {key}: reusing {} (complete since {})",
                env.display(),
                mark.created
            ));
            return Ok(EnvOutcome {
                path: env,
                reused: true,
            });
        }
    }
    let build = Build {
        transport,
        root,
        key,
        env: env.clone(),
        release_dir,
        roots: match &deps.export {
            Some(export) if has_requirements(&export.requirements) => {
                vec![env.join(EXPORTED_REQUIREMENTS)]
            }
            Some(_) => Vec::new(),
            None => install_roots(transport, release_dir, &contents)?,
        },
        export: deps.export.as_ref(),
        interpreter,
    };
    if transport.kind(&env)?.exists() {
        log(&format!(
            "environment {key}: removing half-built {} (no completion mark)",
            env.display()
        ));
    }
    transport.remove_all(&env)?;
    transport.create_dir_all(&root.join("envs"))?;
    log(&format!(
        "environment {key}: building with {installer} for Python {} ({})",
        interpreter.version, interpreter.platform
    ));
    let built = match installer {
        Installer::Uv { .. } => build.with_uv(log),
        Installer::Pip { .. } => build.with_pip(log),
    };
    if let Err(e) = built {
        // Without its mark the directory would never be trusted anyway; removing it keeps
        // the disk clean and the next attempt honest.
        let _ = transport.remove_all(&env);
        return Err(e);
    }
    let mark = EnvMark {
        key: key.clone(),
        interpreter: interpreter.clone(),
        installer: installer.clone(),
        created: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        files: deps.files.clone(),
    };
    let json = serde_json::to_vec_pretty(&mark).expect("an EnvMark always serializes");
    transport.write_file_atomic(&env.join(COMPLETE_MARK), &json)?;
    log(&format!("environment {key}: complete at {}", env.display()));
    Ok(EnvOutcome {
        path: env,
        reused: false,
    })
}

fn require_absolute(what: &'static str, path: &Path) -> Result<(), PyenvError> {
    if path.is_absolute() {
        Ok(())
    } else {
        Err(PyenvError::NotAbsolute {
            what,
            path: path.to_path_buf(),
        })
    }
}

/// The release's dependency files (`files`, at `paths` on the host) as `read` found them; a
/// missing one is an error naming it.
fn release_files(
    transport: &dyn Transport,
    files: &[PathBuf],
    paths: &[PathBuf],
    read: Vec<Option<Vec<u8>>>,
) -> Result<Vec<(PathBuf, Vec<u8>)>, PyenvError> {
    files
        .iter()
        .zip(paths)
        .zip(read)
        .map(|((rel, path), bytes)| {
            let bytes = bytes.ok_or_else(|| PyenvError::RequirementsNotInRelease {
                host: transport.host().to_string(),
                path: path.clone(),
            })?;
            Ok((rel.clone(), bytes))
        })
        .collect()
}

/// The files to hand the installer as `-r`: those no other file includes. The rest come in
/// through their `-r`/`-c` lines, so a constraints file stays a constraints file.
fn install_roots(
    transport: &dyn Transport,
    release_dir: &Path,
    contents: &[(PathBuf, Vec<u8>)],
) -> Result<Vec<PathBuf>, PyenvError> {
    // `requirements = []`: an app with no third-party packages gets a bare virtualenv.
    if contents.is_empty() {
        return Ok(Vec::new());
    }
    let mut included = HashSet::new();
    for (rel, bytes) in contents {
        for include in parse_includes(&String::from_utf8_lossy(bytes)) {
            let at = IncludedFrom {
                file: rel.clone(),
                line: include.line,
            };
            let target = resolve_include(release_dir, rel, &include, &at)?;
            if target != *rel {
                included.insert(target);
            }
        }
    }
    let mut roots: Vec<PathBuf> = contents
        .iter()
        .map(|(rel, _)| rel)
        .filter(|rel| !included.contains(*rel))
        .map(|rel| release_dir.join(rel))
        .collect();
    // Files that include each other in a ring have no root; any one of them brings in all.
    if roots.is_empty() {
        if let Some((first, _)) = contents.first() {
            roots.push(release_dir.join(first));
        }
    }
    if roots.is_empty() {
        return Err(PyenvError::RequirementsNotInRelease {
            host: transport.host().to_string(),
            path: release_dir.join("requirements.txt"),
        });
    }
    Ok(roots)
}

fn has_requirements(text: &str) -> bool {
    text.lines().any(|line| {
        let line = line.trim();
        !line.is_empty() && !line.starts_with('#')
    })
}

/// One environment being built.
struct Build<'a> {
    transport: &'a dyn Transport,
    root: &'a Path,
    key: &'a DepKey,
    env: PathBuf,
    release_dir: &'a Path,
    roots: Vec<PathBuf>,
    export: Option<&'a Export>,
    interpreter: &'a Interpreter,
}

impl Build<'_> {
    fn env_python(&self) -> PathBuf {
        self.env.join("bin").join("python")
    }

    fn requirement_args(&self) -> Vec<String> {
        self.roots
            .iter()
            .flat_map(|r| ["-r".to_string(), r.to_string_lossy().into_owned()])
            .collect()
    }

    fn requirements_list(&self) -> String {
        // The exported file goes with the failed environment; the lock is what the user fixes.
        if let Some(export) = self.export {
            return format!("{} (exported)", export.from);
        }
        self.roots
            .iter()
            .map(|r| {
                r.strip_prefix(self.release_dir)
                    .unwrap_or(r)
                    .display()
                    .to_string()
            })
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// Runs one step in the release directory (so relative paths in requirements files, such
    /// as `-e .`, mean the release) and turns a non-zero exit into [`PyenvError::BuildFailed`].
    fn step(&self, step: &'static str, cmd: Cmd, hint: String) -> Result<Output, PyenvError> {
        let cmd = cmd
            .cwd(self.release_dir)
            .env("PIP_DISABLE_PIP_VERSION_CHECK", "1")
            .env("PIP_NO_INPUT", "1");
        let out = self.transport.exec(&cmd)?;
        if out.success() {
            Ok(out)
        } else {
            Err(PyenvError::BuildFailed(Box::new(BuildFailure {
                host: self.transport.host().to_string(),
                step,
                env: self.env.clone(),
                requirements: self.requirements_list(),
                output: out.tail(TAIL_LINES),
                hint,
            })))
        }
    }

    fn install_hint(&self) -> String {
        format!(
            "fix or remove the requirement named above in {}, or make the package index \
             reachable from {}",
            self.requirements_list(),
            self.transport.host()
        )
    }

    fn check_hint(&self) -> String {
        format!(
            "pin versions that fit together in {}",
            self.requirements_list()
        )
    }

    fn with_uv(&self, log: &mut dyn FnMut(&str)) -> Result<(), PyenvError> {
        let cache = self.root.join("wheels").join("uv");
        let uv = |args: &[&str]| {
            Cmd::new("uv")
                .args(args.iter().copied())
                .env("UV_CACHE_DIR", cache.to_string_lossy())
                // The interpreter is the host's own; uv must never fetch another.
                .env("UV_PYTHON_DOWNLOADS", "never")
                .env("NO_COLOR", "1")
        };
        log(&format!("creating virtualenv {}", self.env.display()));
        self.step(
            "creating the virtualenv (uv venv)",
            uv(&["venv", "--python", &self.interpreter.executable]).path_arg(&self.env),
            format!(
                "check that {} runs on {} and that uv can write to {}",
                self.interpreter.executable,
                self.transport.host(),
                self.env.display()
            ),
        )?;
        self.write_export()?;
        if self.roots.is_empty() {
            return Ok(());
        }
        let python = self.env_python();
        log(&format!("installing {} with uv", self.requirements_list()));
        // Compiled to bytecode here, as pip does by default: the app's workers may not write
        // into the environment (it belongs to the deploy user), and would then compile every
        // module from source at every start: each warm reload's new workers, each import check.
        self.step(
            "installing requirements (uv pip install)",
            uv(&["pip", "install", "--compile-bytecode", "--python"])
                .path_arg(&python)
                .args(self.requirement_args()),
            self.install_hint(),
        )?;
        log("checking installed requirements (uv pip check)");
        self.step(
            "checking installed requirements (uv pip check)",
            uv(&["pip", "check", "--python"]).path_arg(&python),
            self.check_hint(),
        )?;
        Ok(())
    }

    fn with_pip(&self, log: &mut dyn FnMut(&str)) -> Result<(), PyenvError> {
        log(&format!("creating virtualenv {}", self.env.display()));
        self.step(
            "creating the virtualenv (python -m venv)",
            Cmd::new(&self.interpreter.executable)
                .args(["-m", "venv"])
                .path_arg(&self.env),
            format!(
                "check that {} can create virtualenvs (Debian/Ubuntu: apt-get install \
                 python3-venv) and can write to {}",
                self.interpreter.executable,
                self.env.display()
            ),
        )?;
        self.write_export()?;
        if self.roots.is_empty() {
            return Ok(());
        }
        let wheels = self.root.join("wheels").join(self.key.as_str());
        let fresh = self.ensure_wheels(&wheels, log)?;
        log(&format!(
            "installing {} from {}",
            self.requirements_list(),
            wheels.display()
        ));
        if let Err(e) = self.install_from(&wheels) {
            if fresh {
                return Err(e);
            }
            // A marked wheel directory that lacks a wheel was tampered with after it was
            // completed: it is not trusted, so rebuild it once and try again.
            log(&format!(
                "cached wheels in {} are incomplete; rebuilding them",
                wheels.display()
            ));
            self.transport.remove_all(&wheels)?;
            self.ensure_wheels(&wheels, log)?;
            self.install_from(&wheels)?;
        }
        log("checking installed requirements (pip check)");
        self.step(
            "checking installed requirements (pip check)",
            Cmd::new(self.env_python().to_string_lossy()).args(["-m", "pip", "check"]),
            self.check_hint(),
        )?;
        Ok(())
    }

    /// Writes the exported requirements into the new environment, where the installer reads
    /// them and where they stay as the record of what was installed.
    fn write_export(&self) -> Result<(), PyenvError> {
        if let Some(export) = self.export {
            self.transport.write_file_atomic(
                &self.env.join(EXPORTED_REQUIREMENTS),
                export.requirements.as_bytes(),
            )?;
        }
        Ok(())
    }

    /// Makes `<root>/wheels/<key>` a complete wheel directory for the requirements; true when
    /// it was built now, false when a complete one was already there.
    fn ensure_wheels(&self, wheels: &Path, log: &mut dyn FnMut(&str)) -> Result<bool, PyenvError> {
        if self.transport.kind(&wheels.join(COMPLETE_MARK))? == FileKind::File {
            log(&format!("using cached wheels in {}", wheels.display()));
            return Ok(false);
        }
        self.transport.remove_all(wheels)?;
        self.transport.create_dir_all(wheels)?;
        log(&format!("building wheels into {}", wheels.display()));
        // PEP 517 for every build: a fresh venv's pip (Debian 12: pip 23.0 without `wheel`)
        // would otherwise take the legacy `setup.py bdist_wheel` path for a project without a
        // pyproject.toml, and fail for want of `wheel`. PEP 517 builds in an isolated
        // environment with the build requirements (setuptools, wheel) from the index.
        let mut cmd = Cmd::new(self.env_python().to_string_lossy())
            .args(["-m", "pip", "wheel", "--use-pep517", "--wheel-dir"])
            .path_arg(wheels);
        // Wheels that other environments already hold are not fetched again.
        for other in self.complete_wheel_dirs(wheels)? {
            cmd = cmd.arg("--find-links").path_arg(&other);
        }
        let built = self.step(
            "building wheels (pip wheel)",
            cmd.args(self.requirement_args()),
            format!(
                "{}; a requirement published only as a source distribution is built with \
                 its build requirements (for a setup.py project: setuptools and wheel) from \
                 the same index or --find-links",
                self.install_hint()
            ),
        );
        if let Err(e) = built {
            let _ = self.transport.remove_all(wheels);
            return Err(e);
        }
        self.transport
            .write_file_atomic(&wheels.join(COMPLETE_MARK), self.key.as_str().as_bytes())?;
        Ok(true)
    }

    fn complete_wheel_dirs(&self, except: &Path) -> Result<Vec<PathBuf>, PyenvError> {
        let parent = self.root.join("wheels");
        let mut dirs = Vec::new();
        for name in self.transport.list_dir(&parent)? {
            let dir = parent.join(&name);
            if dir != except && self.transport.kind(&dir.join(COMPLETE_MARK))? == FileKind::File {
                dirs.push(dir);
            }
        }
        Ok(dirs)
    }

    fn install_from(&self, wheels: &Path) -> Result<(), PyenvError> {
        self.step(
            "installing requirements (pip install --no-index)",
            Cmd::new(self.env_python().to_string_lossy())
                .args(["-m", "pip", "install", "--no-index", "--find-links"])
                .path_arg(wheels)
                .args(self.requirement_args()),
            format!(
                "{}; to rebuild the wheel cache, remove {}",
                self.install_hint(),
                wheels.display()
            ),
        )?;
        Ok(())
    }
}
