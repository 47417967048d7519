//! The last check before the switch: the release imports its entry point.

use std::path::{Path, PathBuf};

use hoist_transport::{Cmd, Transport};

use crate::error::{EntryImportFailure, PyenvError};

/// Imports module `sys.argv[1]` and takes `sys.argv[2]` from it the way hoist's loader does:
/// `name` is the application, `name()` a factory that is called (once per worker under the app
/// server, once here). What it yields must be able to serve: a callable, and when it is a plain
/// function, one that accepts WSGI's `(environ, start_response)` or ASGI's `(scope, receive,
/// send)` — a factory named without its parentheses fails here, not on every request. Any
/// exception exits non-zero with its traceback on stderr. Values travel as arguments, never
/// spliced into the code.
const IMPORT_CHECK: &str = r#"import importlib, sys, types
module, attribute = sys.argv[1], sys.argv[2]
entry = f"{module}:{attribute}"
factory = attribute.endswith("()")
app = getattr(importlib.import_module(module), attribute[:-2] if factory else attribute)
if factory:
    app = app()
if not callable(app):
    made = "returned" if factory else "is"
    raise TypeError(f"{entry} {made} {app!r}, not a WSGI/ASGI application")
def plain_serves(f):
    # A plain function (not wrapped, no signature of its own) that takes 2 or 3 positional
    # arguments, as inspect.signature(f).bind would say, without importing inspect (~30 ms).
    if type(f) is not types.FunctionType or hasattr(f, "__wrapped__") or hasattr(f, "__signature__"):
        return False
    code = f.__code__
    positional, kwonly = code.co_argcount, code.co_kwonlyargcount
    names = code.co_varnames[positional:positional + kwonly]
    if any(name not in (f.__kwdefaults__ or {}) for name in names):
        return False
    required = positional - len(f.__defaults__ or ())
    many = code.co_flags & 0x04
    return any(required <= n and (n <= positional or many) for n in (2, 3))
if not plain_serves(app):
    import inspect
    if inspect.isroutine(app):
        try:
            signature = inspect.signature(app)
        except (TypeError, ValueError):
            signature = None
        def accepts(n):
            try:
                signature.bind(*[None] * n)
                return True
            except TypeError:
                return False
        if signature is not None and not (accepts(2) or accepts(3)):
            fix = "" if factory else f'; if it builds the app, write entry = "{entry}()"'
            raise TypeError(f"{entry} is a function {app.__name__}{signature}, which cannot serve "
                            f"requests (a WSGI app takes environ, start_response){fix}")
"#;

/// Lines of traceback kept in the error: enough for the frame and the exception.
const TRACEBACK_LINES: usize = 12;

/// Before the switch: runs `<env>/bin/python -c "<import module, take attribute>" module
/// attribute` with `cwd = release_dir`, so the release directory is first on `sys.path`, and
/// `python_path` (directories relative to the release, such as `src`) right after it, as
/// hoist's loader puts them. On failure the error carries the last lines of the traceback.
pub fn check_entry_imports(
    transport: &dyn Transport,
    env: &Path,
    release_dir: &Path,
    python_path: &[PathBuf],
    module: &str,
    attribute: &str,
) -> Result<(), PyenvError> {
    let python = env.join("bin").join("python");
    if !transport.kind(&python)?.exists() {
        return Err(PyenvError::EnvMissing {
            host: transport.host().to_string(),
            env: env.to_path_buf(),
        });
    }
    let mut cmd = Cmd::new(python.to_string_lossy())
        .arg("-c")
        .arg(IMPORT_CHECK)
        .arg(module)
        .arg(attribute)
        .cwd(release_dir)
        // The check must leave the release as it was uploaded: no __pycache__ inside it.
        .env("PYTHONDONTWRITEBYTECODE", "1");
    if let Some(dirs) = import_path(release_dir, python_path) {
        cmd = cmd.env("PYTHONPATH", dirs);
    }
    let out = transport.exec(&cmd)?;
    if out.success() {
        return Ok(());
    }
    Err(PyenvError::EntryImportFailed(Box::new(
        EntryImportFailure {
            host: transport.host().to_string(),
            release_dir: release_dir.to_path_buf(),
            python,
            module: module.to_string(),
            attribute: attribute.to_string(),
            traceback: out.tail(TRACEBACK_LINES),
        },
    )))
}

/// `PYTHONPATH` for a command in `release_dir`: each of `python_path` (relative to the
/// release) as an absolute path, `:`-separated; `None` when there is none.
#[must_use]
pub fn import_path(release_dir: &Path, python_path: &[PathBuf]) -> Option<String> {
    (!python_path.is_empty()).then(|| {
        python_path
            .iter()
            .map(|dir| release_dir.join(dir).display().to_string())
            .collect::<Vec<_>>()
            .join(":")
    })
}
