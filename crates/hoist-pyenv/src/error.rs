use std::fmt;
use std::path::PathBuf;

use hoist_transport::TransportError;

/// The requirements file and line that named an include.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IncludedFrom {
    /// The including file, relative to the source directory.
    pub file: PathBuf,
    /// 1-based line number of the `-r`/`-c` line.
    pub line: usize,
}

impl fmt::Display for IncludedFrom {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.file.display(), self.line)
    }
}

/// Why a Python environment could not be found, built or checked. Every message names the
/// host (or the requirements file on the controller), the path or requirement, and the fix.
#[derive(Debug, thiserror::Error)]
pub enum PyenvError {
    /// A requirements root, or a file named by `-r`/`-c`, does not exist.
    #[error(
        "requirements file {} not found{}; {}",
        path.display(),
        included_from.as_ref().map(|f| format!(" (included from {f})")).unwrap_or_default(),
        match included_from {
            Some(_) => "create it or fix the include",
            None => "create it or fix the requirements list in hoist.toml",
        }
    )]
    RequirementsNotFound {
        path: PathBuf,
        included_from: Option<IncludedFrom>,
    },

    /// A requirements root given by the configuration lies outside the project.
    #[error(
        "requirements file {} is outside the project at {}; list requirements files by their \
         path inside the project",
        path.display(),
        source_dir.display()
    )]
    RequirementsOutsideProject { path: PathBuf, source_dir: PathBuf },

    /// A requirements file exists but cannot be read.
    #[error("could not read requirements file {}: {source}; check its permissions", path.display())]
    RequirementsUnreadable {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// An include hoist cannot follow (a URL, a path outside the source, an empty `-r`).
    #[error("{at}: {problem}; {hint}")]
    BadInclude {
        at: IncludedFrom,
        problem: String,
        hint: &'static str,
    },

    /// A `-e`/`--editable` line: it would install the project editable into an environment
    /// that every release with the same key shares, pointing into one release.
    #[error(
        "{at}: `{requirement}` installs a project editable into the environment that every \
         release with these requirements shares, so it would point into one release and break \
         when that release is pruned\n\
         hint: remove the line (the release directory is on the app's import path); with uv, \
         export without it: `uv export --no-dev --no-emit-project -o requirements.txt`, or set \
         `dependencies = \"uv.lock\"` in hoist.toml"
    )]
    EditableRequirement {
        at: IncludedFrom,
        requirement: String,
    },

    /// A pyproject.toml or lock file hoist cannot install from.
    #[error("{}: {problem}\nhint: {hint}", file.display())]
    BadDependencies {
        file: PathBuf,
        problem: String,
        hint: String,
    },

    /// A requirements file that decided the key is not in the release uploaded to the host.
    #[error(
        "{host}: requirements file {} is missing from the release; check that it is not \
         excluded from the upload",
        path.display()
    )]
    RequirementsNotInRelease { host: String, path: PathBuf },

    /// The requirements in the release do not hash to the key the caller asked for.
    #[error(
        "{host}: the requirements files in {} give dependency key {actual}, not {expected}; \
         compute the key from the same source tree that was uploaded",
        release_dir.display()
    )]
    KeyMismatch {
        host: String,
        release_dir: PathBuf,
        expected: String,
        actual: String,
    },

    /// The configured interpreter command does not exist on the host.
    #[error(
        "{host}: Python interpreter `{python}` not found; install it on the host or set \
         `python` in hoist.toml to an interpreter that exists there"
    )]
    InterpreterNotFound { host: String, python: String },

    /// The interpreter ran but did not answer like a Python 3.
    #[error(
        "{host}: `{python}` did not answer as a Python 3 interpreter:\n{output}\n\
         hint: set `python` in hoist.toml to a working Python 3 on the host"
    )]
    InterpreterBroken {
        host: String,
        python: String,
        output: String,
    },

    /// `installer = "uv"` but `uv --version` does not run on the host.
    #[error(
        "{host}: uv not found (`uv --version` failed{}); install it on the host \
         (`pip install uv`) or set `installer = \"pip\"` in hoist.toml",
        if output.is_empty() { String::new() } else { format!(": {output}") }
    )]
    UvNotFound { host: String, output: String },

    /// The interpreter cannot make a venv with pip in it (`ensurepip` or `venv` is missing).
    #[error(
        "{host}: {python} cannot create virtualenvs with pip:\n{output}\n\
         hint: install the venv module (Debian/Ubuntu: `apt-get install python3-venv`) \
         or install uv on the host"
    )]
    PipUnavailable {
        host: String,
        python: String,
        output: String,
    },

    /// One step of building an environment failed; the half-built environment was removed.
    #[error("{0}")]
    BuildFailed(Box<BuildFailure>),

    /// `check_entry_imports` was given an environment without `bin/python`.
    #[error(
        "{host}: {} has no bin/python; build the environment (redeploy) before checking imports",
        env.display()
    )]
    EnvMissing { host: String, env: PathBuf },

    /// The new release cannot import its entry point with its environment's interpreter.
    #[error("{0}")]
    EntryImportFailed(Box<EntryImportFailure>),

    /// A path given to this crate must be absolute on the host.
    #[error("{what} must be an absolute path on the host, got {}; this is a bug in the caller", path.display())]
    NotAbsolute { what: &'static str, path: PathBuf },

    /// A string that is not a dependency key.
    #[error("invalid dependency key {0:?}: expected 24 to 64 lowercase hexadecimal characters")]
    BadDepKey(String),

    /// The host could not be acted on at all (the message names the host and the path).
    #[error(transparent)]
    Transport(#[from] TransportError),
}

/// The details of [`PyenvError::BuildFailed`] (boxed: errors travel in every `Result`).
#[derive(Debug, thiserror::Error)]
#[error(
    "{host}: {step} failed for {} (requirements: {requirements}):\n{output}\nhint: {hint}",
    env.display()
)]
pub struct BuildFailure {
    pub host: String,
    /// What was being done, e.g. `building wheels (pip wheel)`.
    pub step: &'static str,
    /// The environment being built (removed again).
    pub env: PathBuf,
    /// The requirements files handed to the installer, relative to the release.
    pub requirements: String,
    /// The last lines the installer printed.
    pub output: String,
    pub hint: String,
}

/// The details of [`PyenvError::EntryImportFailed`].
#[derive(Debug, thiserror::Error)]
#[error(
    "{host}: the release at {} cannot import {module}:{attribute} with {}:\n{traceback}\n\
     hint: fix the error above in the application, or the entry point in hoist.toml",
    release_dir.display(),
    python.display()
)]
pub struct EntryImportFailure {
    pub host: String,
    pub release_dir: PathBuf,
    /// The environment's interpreter that tried the import.
    pub python: PathBuf,
    pub module: String,
    pub attribute: String,
    /// The last lines of the traceback.
    pub traceback: String,
}
