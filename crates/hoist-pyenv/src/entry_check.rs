//! The last check before the switch: the release imports its entry point.

use std::path::Path;

use hoist_transport::{Cmd, Transport};

use crate::error::{EntryImportFailure, PyenvError};

/// Imports `sys.argv[1]` and reads attribute `sys.argv[2]`; any exception exits non-zero with
/// its traceback on stderr. Values travel as arguments, never spliced into the code.
const IMPORT_CHECK: &str =
    "import importlib, sys; m = importlib.import_module(sys.argv[1]); getattr(m, sys.argv[2])";

/// Lines of traceback kept in the error: enough for the frame and the exception.
const TRACEBACK_LINES: usize = 12;

/// Before the switch: runs `<env>/bin/python -c "<import module, getattr attribute>" module
/// attribute` with `cwd = release_dir`, so the release directory is first on `sys.path`. On
/// failure the error carries the last lines of the traceback.
pub fn check_entry_imports(
    t: &dyn Transport,
    env: &Path,
    release_dir: &Path,
    module: &str,
    attribute: &str,
) -> Result<(), PyenvError> {
    let python = env.join("bin").join("python");
    if !t.kind(&python)?.exists() {
        return Err(PyenvError::EnvMissing {
            host: t.host().to_string(),
            env: env.to_path_buf(),
        });
    }
    let cmd = Cmd::new(python.to_string_lossy())
        .arg("-c")
        .arg(IMPORT_CHECK)
        .arg(module)
        .arg(attribute)
        .cwd(release_dir)
        // The check must leave the release as it was uploaded: no __pycache__ inside it.
        .env("PYTHONDONTWRITEBYTECODE", "1");
    let out = t.exec(&cmd)?;
    if out.success() {
        return Ok(());
    }
    Err(PyenvError::EntryImportFailed(Box::new(
        EntryImportFailure {
            host: t.host().to_string(),
            release_dir: release_dir.to_path_buf(),
            python,
            module: module.to_string(),
            attribute: attribute.to_string(),
            traceback: out.tail(TRACEBACK_LINES),
        },
    )))
}
