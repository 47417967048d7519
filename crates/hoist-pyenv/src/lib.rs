//! A release's Python environment.
//!
//! The flow the deploy engine follows, per host:
//!
//! 1. [`read_dependencies`] on the controller: requirements files (the roots and every
//!    `-r`/`-c` include), or a `pyproject.toml` with `uv.lock` / `poetry.lock` / `pdm.lock`
//!    (or a `Pipfile` with `Pipfile.lock`) exported to one pinned requirements list. The project itself is never installed into the environment,
//!    which releases share: it is imported from the release directory.
//! 2. [`probe_interpreter`] and [`probe_installer`] on the host.
//! 3. [`dep_key()`]: the hash of all of that; the environment's name under `<root>/envs/`.
//! 4. [`ensure_env`] after the release is uploaded: reuse `<root>/envs/<key>` when it is marked
//!    complete, else build it at that final path (uv, or venv + pip through the wheel cache
//!    `<root>/wheels/`), check it, and mark it complete last.
//! 5. [`check_entry_imports`] before the switch.
//! 6. [`unused_envs`] / [`unused_wheel_dirs`] when pruning.
//!
//! Everything on the host goes through [`hoist_transport::Transport`]; only the project's own
//! requirements files are read from the controller's disk.

mod dep_key;
mod dependencies;
mod entry_check;
mod environment;
mod error;
mod installer;
mod interpreter;
mod locked;
mod pdm_lock;
mod pipfile_lock;
mod poetry_lock;
mod probe_cache;
mod prune;
mod pyproject;
mod requirements;

pub use dep_key::{dep_key, DepKey};
pub use dependencies::{
    read_dependencies, Dependencies, DependencySource, Export, Selection, EXPORTED_REQUIREMENTS,
};
pub use entry_check::{check_entry_imports, import_path};
pub use environment::{ensure_env, read_env_mark, EnvMark, EnvOutcome, COMPLETE_MARK};
pub use error::{BuildFailure, EntryImportFailure, IncludedFrom, PyenvError};
pub use installer::{probe_installer, Installer, InstallerChoice};
pub use interpreter::{probe_interpreter, Interpreter};
pub use probe_cache::probe_python;
pub use prune::{unused_envs, unused_wheel_dirs};
pub use requirements::requirement_files;
