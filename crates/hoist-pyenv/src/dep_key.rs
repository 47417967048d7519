//! The content address of an environment.

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::dependencies::{Dependencies, Export};
use crate::error::PyenvError;
use crate::installer::Installer;
use crate::interpreter::Interpreter;

/// Hex characters of the sha256 kept in a key: 96 bits, short enough for a directory name.
const KEY_LEN: usize = 24;

/// The name of an environment under `<root>/envs/`: a hash of everything that decides it.
/// Same key, same environment.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct DepKey(String);

impl DepKey {
    /// The key as text (the directory name).
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for DepKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Reads a key back, e.g. from `RELEASE.json`. Only hex is accepted, so a key is always a
/// single safe path component under `<root>/envs/`.
impl FromStr for DepKey {
    type Err = PyenvError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let hex = s
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        if hex && (KEY_LEN..=64).contains(&s.len()) {
            Ok(DepKey(s.to_string()))
        } else {
            Err(PyenvError::BadDepKey(s.to_string()))
        }
    }
}

impl TryFrom<String> for DepKey {
    type Error = PyenvError;

    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<DepKey> for String {
    fn from(key: DepKey) -> String {
        key.0
    }
}

/// The key of the environment for `deps` (files relative to `source_dir`, as
/// [`crate::read_dependencies`] returns them) on this interpreter with this installer:
/// sha256 over each file's relative path and bytes, the exported requirements if any, the
/// interpreter's version and platform, and the installer's name and version.
pub fn dep_key(
    source_dir: &Path,
    deps: &Dependencies,
    interpreter: &Interpreter,
    installer: &Installer,
) -> Result<DepKey, PyenvError> {
    let mut contents = Vec::with_capacity(deps.files.len());
    for rel in &deps.files {
        let path = source_dir.join(rel);
        let bytes = std::fs::read(&path).map_err(|source| {
            if source.kind() == std::io::ErrorKind::NotFound {
                PyenvError::RequirementsNotFound {
                    path,
                    included_from: None,
                }
            } else {
                PyenvError::RequirementsUnreadable { path, source }
            }
        })?;
        contents.push((rel.clone(), bytes));
    }
    Ok(key_of(
        &contents,
        deps.export.as_ref(),
        interpreter,
        installer,
    ))
}

/// The key of files already read. Every field is length-prefixed so that no two different
/// inputs can run together into the same bytes.
pub(crate) fn key_of(
    contents: &[(PathBuf, Vec<u8>)],
    export: Option<&Export>,
    interpreter: &Interpreter,
    installer: &Installer,
) -> DepKey {
    let mut hasher = Sha256::new();
    let mut field = |bytes: &[u8]| {
        hasher.update((bytes.len() as u64).to_le_bytes());
        hasher.update(bytes);
    };
    field(b"hoist dep-key v1");
    for (rel, bytes) in contents {
        field(b"file");
        field(rel.to_string_lossy().as_bytes());
        field(bytes);
    }
    // Absent for requirements files, so their keys stay what they were.
    if let Some(export) = export {
        field(b"export");
        field(export.from.as_bytes());
        field(export.requirements.as_bytes());
    }
    field(b"python");
    field(interpreter.version.as_bytes());
    field(interpreter.platform.as_bytes());
    field(b"installer");
    field(installer.name().as_bytes());
    field(installer.version().as_bytes());
    let digest = hex::encode(hasher.finalize());
    DepKey(digest[..KEY_LEN].to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_parse_back_and_reject_path_tricks() {
        let key: DepKey = "0123456789abcdef01234567".parse().unwrap();
        assert_eq!(key.to_string(), "0123456789abcdef01234567");
        for bad in [
            "",
            "../../etc",
            "0123456789ABCDEF01234567",
            "abc",
            "0123456789abcdef0123456/",
        ] {
            assert!(bad.parse::<DepKey>().is_err(), "{bad:?} accepted");
        }
        let json = serde_json::to_string(&key).unwrap();
        assert_eq!(serde_json::from_str::<DepKey>(&json).unwrap(), key);
        assert!(serde_json::from_str::<DepKey>("\"../x\"").is_err());
    }
}
