//! What can go when no release uses it any more.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use hoist_transport::{FileKind, Transport};

use crate::error::PyenvError;

/// The uv cache under `<root>/wheels/`, shared by every uv-built environment.
const UV_CACHE: &str = "uv";

/// Environments under `<root>/envs/` whose key is not in `in_use`, for pruning. Half-built
/// environments are included: nothing uses them.
pub fn unused_envs(
    transport: &dyn Transport,
    root: &Path,
    in_use: &BTreeSet<String>,
) -> Result<Vec<PathBuf>, PyenvError> {
    unused_dirs(transport, &root.join("envs"), in_use, &[])
}

/// Wheel directories under `<root>/wheels/` whose key is not in `in_use` (the uv cache is
/// never listed), for pruning alongside [`unused_envs`].
pub fn unused_wheel_dirs(
    transport: &dyn Transport,
    root: &Path,
    in_use: &BTreeSet<String>,
) -> Result<Vec<PathBuf>, PyenvError> {
    unused_dirs(transport, &root.join("wheels"), in_use, &[UV_CACHE])
}

fn unused_dirs(
    transport: &dyn Transport,
    parent: &Path,
    in_use: &BTreeSet<String>,
    keep: &[&str],
) -> Result<Vec<PathBuf>, PyenvError> {
    let mut unused = Vec::new();
    for name in transport.list_dir(parent)? {
        // Hidden entries are temporary files of an atomic write, not environments.
        if name.starts_with('.') || in_use.contains(&name) || keep.contains(&name.as_str()) {
            continue;
        }
        let path = parent.join(&name);
        if transport.kind(&path)? == FileKind::Dir {
            unused.push(path);
        }
    }
    Ok(unused)
}
