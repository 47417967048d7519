//! The content manifest of a release: the sha256, permission bits and size of every regular
//! file that [`Transport::upload_tree`](crate::Transport::upload_tree) wrote, kept in the
//! release as [`MANIFEST_FILE`].
//!
//! The next upload hashes its source on the controller and hard-links a file to the previous
//! release only when the previous release's manifest lists the same path with the same hash,
//! mode and size; everything else is copied. Sizes and time stamps never decide that a file is
//! unchanged (two same-size edits in one second, or a tree whose mtimes are all normalised,
//! look unchanged to them), and the server's files are never read to decide it. A release
//! without a manifest (adopted, or made by an older hoist) has nothing to link to: its
//! successor is copied whole, and has a manifest from then on.

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::fs;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

/// The manifest's name inside a release directory. Source trees never ship a file of this name.
pub const MANIFEST_FILE: &str = ".hoist-manifest";

/// The first line of a manifest; a manifest without it is ignored (everything is copied).
const HEADER: &[u8] = b"hoist-manifest 1\n";

/// What a manifest knows of one regular file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ManifestEntry {
    pub sha256: [u8; 32],
    /// Permission bits (`st_mode & 0o7777`).
    pub mode: u32,
    pub size: u64,
}

/// Path (relative to the release) → content of each regular file of a release.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Manifest {
    entries: BTreeMap<PathBuf, ManifestEntry>,
}

impl Manifest {
    /// Reads a manifest. Records that do not parse are left out: a file the manifest does not
    /// vouch for is copied, never linked, so a damaged manifest costs time, not correctness.
    #[must_use]
    pub fn parse(bytes: &[u8]) -> Manifest {
        let mut manifest = Manifest::default();
        let Some(body) = bytes.strip_prefix(HEADER) else {
            return manifest;
        };
        let mut records = body.split(|b| *b == 0);
        // The last piece follows the last NUL: empty in a whole manifest, a torn record (whose
        // path may be cut short into another path) in a truncated one. Never trusted.
        records.next_back();
        for record in records.filter(|r| !r.is_empty()) {
            if let Some((path, entry)) = parse_record(record) {
                manifest.entries.insert(path, entry);
            }
        }
        manifest
    }

    /// The manifest as stored: a header line, then `<sha256> <mode, octal> <size> <path>` records
    /// each ended by a NUL byte (a path may hold any byte but NUL).
    #[must_use]
    pub fn render(&self) -> Vec<u8> {
        let mut out = HEADER.to_vec();
        for (path, entry) in &self.entries {
            out.extend_from_slice(
                format!(
                    "{} {:o} {} ",
                    hex::encode(entry.sha256),
                    entry.mode,
                    entry.size
                )
                .as_bytes(),
            );
            out.extend_from_slice(path.as_os_str().as_bytes());
            out.push(0);
        }
        out
    }

    #[must_use]
    pub fn get(&self, path: &Path) -> Option<&ManifestEntry> {
        self.entries.get(path)
    }

    pub fn insert(&mut self, path: PathBuf, entry: ManifestEntry) {
        self.entries.insert(path, entry);
    }

    #[must_use]
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

fn parse_record(record: &[u8]) -> Option<(PathBuf, ManifestEntry)> {
    let mut fields = record.splitn(4, |b| *b == b' ');
    let hash = std::str::from_utf8(fields.next()?).ok()?;
    let mode = std::str::from_utf8(fields.next()?).ok()?;
    let size = std::str::from_utf8(fields.next()?).ok()?;
    let path = fields.next()?;
    let mut sha256 = [0u8; 32];
    hex::decode_to_slice(hash, &mut sha256).ok()?;
    let path = PathBuf::from(OsStr::from_bytes(path));
    // Only plain relative paths: a manifest never points a link outside the release.
    if path.as_os_str().is_empty()
        || !path
            .components()
            .all(|c| matches!(c, std::path::Component::Normal(_)))
    {
        return None;
    }
    Some((
        path,
        ManifestEntry {
            sha256,
            mode: u32::from_str_radix(mode, 8).ok()? & 0o7777,
            size: size.parse().ok()?,
        },
    ))
}

/// What an upload does with each file of the source.
#[derive(Debug, Default)]
pub(crate) struct UploadPlan {
    /// Regular files whose path, content and mode are the previous release's: hard-linked.
    pub link: Vec<PathBuf>,
    /// Everything else (changed or new files, symlinks, directories): copied.
    pub copy: Vec<PathBuf>,
    /// The new release's manifest: every regular file of the source.
    pub manifest: Manifest,
}

/// [`plan_upload`] against the manifest of `link_dest` on `host` (none: everything is copied),
/// for `Transport::upload_tree`.
pub(crate) fn plan_against(
    host: &dyn crate::Transport,
    src: &Path,
    files: &[PathBuf],
    link_dest: Option<&Path>,
) -> Result<UploadPlan, crate::TransportError> {
    let previous = match link_dest {
        Some(prev) => host
            .read_file(&prev.join(MANIFEST_FILE))?
            .map(|bytes| Manifest::parse(&bytes)),
        None => None,
    };
    plan_upload(src, files, previous.as_ref()).map_err(|(path, source)| crate::TransportError::Io {
        host: host.host().to_string(),
        action: "read",
        path,
        source,
    })
}

/// Hashes the source's regular files and sorts each of `files` into link or copy, by comparing
/// it with `previous` (the manifest of the release to link to).
pub(crate) fn plan_upload(
    src: &Path,
    files: &[PathBuf],
    previous: Option<&Manifest>,
) -> Result<UploadPlan, (PathBuf, io::Error)> {
    let mut plan = UploadPlan::default();
    for rel in files {
        let path = src.join(rel);
        let meta = fs::symlink_metadata(&path).map_err(|e| (path.clone(), e))?;
        if !meta.is_file() {
            plan.copy.push(rel.clone());
            continue;
        }
        let entry = hash_file(&path).map_err(|e| (path.clone(), e))?;
        if previous.and_then(|m| m.get(rel)) == Some(&entry) {
            plan.link.push(rel.clone());
        } else {
            plan.copy.push(rel.clone());
        }
        plan.manifest.insert(rel.clone(), entry);
    }
    Ok(plan)
}

/// The manifest entry of one regular file: its content's sha256, mode and size, from one open
/// file (so the three describe the same file).
pub(crate) fn hash_file(path: &Path) -> io::Result<ManifestEntry> {
    let mut file = fs::File::open(path)?;
    let meta = file.metadata()?;
    let mut hasher = Sha256::new();
    let size = io::copy(&mut file, &mut hasher)?;
    Ok(ManifestEntry {
        sha256: hasher.finalize().into(),
        mode: meta.mode() & 0o7777,
        size,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_manifest_reads_back_what_it_wrote() {
        let mut m = Manifest::default();
        let entry = |b: u8| ManifestEntry {
            sha256: [b; 32],
            mode: 0o755,
            size: u64::from(b),
        };
        m.insert(PathBuf::from("app.py"), entry(1));
        m.insert(PathBuf::from("odd name\nwith newline"), entry(2));
        m.insert(PathBuf::from(OsStr::from_bytes(b"pkg/\xff.py")), entry(3));
        assert_eq!(Manifest::parse(&m.render()), m);
    }

    #[test]
    fn damaged_or_foreign_records_vouch_for_nothing() {
        assert!(Manifest::parse(b"").is_empty());
        assert!(Manifest::parse(b"not a manifest\n").is_empty());
        let good = format!("{} 644 3 app.py", "ab".repeat(32));
        let text = format!(
            "hoist-manifest 1\n{good}\0zz 644 3 bad.py\0{} 644 3 ../escape\0{} 644 3 /etc/passwd\0",
            "ab".repeat(32),
            "ab".repeat(32)
        );
        let m = Manifest::parse(text.as_bytes());
        assert_eq!(m.len(), 1);
        assert!(m.get(Path::new("app.py")).is_some());
        // A manifest cut short: the torn record ("app.p") is not believed.
        let cut = &text.as_bytes()[..HEADER.len() + good.len() - 1];
        assert!(Manifest::parse(cut).is_empty());
    }
}
