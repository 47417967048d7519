//! The local cache store: content-addressed compressed archives plus an index of keys.
//!
//! ```text
//! <dir>/blobs/<sha256>.tar.gz     one archive per distinct content
//! <dir>/index/<sha256(key)>.json  {key, blob, bytes, created_ms}: one file per key
//! <dir>/tmp/                      archives and entries being written
//! ```
//!
//! A key is published by hard-linking its finished entry into `index/`: `link(2)` fails when the
//! name exists, so a key is never overwritten and two jobs saving it at once leave one whole
//! cache. Archives are renamed into `blobs/` only once complete.

use flate2::Compression;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::fs;
use std::io::{self, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A cache store failure.
#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    /// I/O on the store or on a cached path.
    #[error("cache store {path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// `save_cache` found none of its paths.
    #[error("none of the paths to cache exist: {0}; make sure an earlier step creates them")]
    NothingToSave(String),
    /// An index entry that cannot be read.
    #[error("cache store entry {path} is damaged: {reason}; remove it with hoist cache rm")]
    Damaged {
        /// The entry file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> CacheError + '_ {
    move |source| CacheError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// One cached key.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct CacheEntry {
    /// The rendered key.
    pub key: String,
    /// The archive's SHA-256 (hex): its name under `blobs/`.
    pub blob: String,
    /// The archive's size.
    pub bytes: u64,
    /// When it was saved, milliseconds since 1970.
    pub created_ms: u64,
    /// The paths it holds, as written in `save_cache`.
    pub paths: Vec<String>,
}

/// What `save` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SaveOutcome {
    /// A new cache was stored.
    Saved(CacheEntry),
    /// The key exists already; nothing was written.
    Exists(CacheEntry),
}

/// A restored cache.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Restored {
    /// The key template's rendering that matched (as a prefix).
    pub prefix: String,
    /// The entry restored.
    pub entry: CacheEntry,
    /// Files and directories written.
    pub files: u64,
}

/// What `prune` removed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PruneReport {
    /// Keys removed.
    pub removed: Vec<String>,
    /// Archive bytes freed.
    pub freed_bytes: u64,
}

/// Where a cached path lives: inside the job's workspace, or at an absolute place.
fn resolve(path: &str, workspace: &Path) -> (String, PathBuf) {
    if let Some(rest) = path.strip_prefix("~/") {
        let home = std::env::var_os("HOME").map_or_else(|| PathBuf::from("/"), PathBuf::from);
        return (format!("abs{}", home.join(rest).display()), home.join(rest));
    }
    if Path::new(path).is_absolute() {
        return (format!("abs{path}"), PathBuf::from(path));
    }
    let clean = path.trim_start_matches("./").trim_end_matches('/');
    (format!("rel/{clean}"), workspace.join(clean))
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

fn unique() -> String {
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    format!("{}-{}-{}", std::process::id(), nanos, n)
}

/// Writes into a hasher and a file at once, so the archive is hashed while it is written.
struct HashingWriter<W: Write> {
    inner: W,
    hasher: Sha256,
    bytes: u64,
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// The store at one directory.
#[derive(Debug, Clone)]
pub struct CacheStore {
    dir: PathBuf,
    clock: Clock,
}

/// Where the store reads the time (milliseconds since 1970): the system clock, or one given
/// with [`CacheStore::with_clock`] where the order of saves matters (tests).
#[derive(Clone)]
struct Clock(std::sync::Arc<dyn Fn() -> u64 + Send + Sync>);

impl std::fmt::Debug for Clock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Clock")
    }
}

impl CacheStore {
    /// Opens (creating) the store at `dir`.
    pub fn open(dir: &Path) -> Result<Self, CacheError> {
        for sub in ["blobs", "index", "tmp"] {
            fs::create_dir_all(dir.join(sub)).map_err(io_err(dir))?;
        }
        Ok(Self {
            dir: dir.to_path_buf(),
            clock: Clock(std::sync::Arc::new(now_ms)),
        })
    }

    /// The same store, reading the time from `now_ms` (milliseconds since 1970): when each
    /// entry was saved, and how old it is when pruning.
    #[must_use]
    pub fn with_clock(self, now_ms: impl Fn() -> u64 + Send + Sync + 'static) -> Self {
        Self {
            clock: Clock(std::sync::Arc::new(now_ms)),
            ..self
        }
    }

    /// The default location: `$HOIST_CACHE_DIR`, else `~/.cache/hoist/ci`.
    pub fn default_dir() -> PathBuf {
        if let Some(dir) = std::env::var_os("HOIST_CACHE_DIR").filter(|d| !d.is_empty()) {
            return PathBuf::from(dir);
        }
        let cache = std::env::var_os("XDG_CACHE_HOME")
            .filter(|d| !d.is_empty())
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
            .unwrap_or_else(std::env::temp_dir);
        cache.join("hoist").join("ci")
    }

    /// The store's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn entry_path(&self, key: &str) -> PathBuf {
        self.dir
            .join("index")
            .join(format!("{}.json", hex_digest(key.as_bytes())))
    }

    fn blob_path(&self, blob: &str) -> PathBuf {
        self.dir.join("blobs").join(format!("{blob}.tar.gz"))
    }

    /// Every entry, newest first.
    pub fn list(&self) -> Result<Vec<CacheEntry>, CacheError> {
        let index = self.dir.join("index");
        let mut entries = Vec::new();
        for item in fs::read_dir(&index).map_err(io_err(&index))? {
            let path = item.map_err(io_err(&index))?.path();
            if path.extension().is_none_or(|e| e != "json") {
                continue;
            }
            let text = match fs::read_to_string(&path) {
                Ok(t) => t,
                // Removed by a concurrent rm or prune since read_dir.
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(CacheError::Io { path, source: e }),
            };
            let entry: CacheEntry =
                serde_json::from_str(&text).map_err(|e| CacheError::Damaged {
                    path: path.clone(),
                    reason: e.to_string(),
                })?;
            entries.push(entry);
        }
        entries.sort_by(|a, b| {
            b.created_ms
                .cmp(&a.created_ms)
                .then_with(|| a.key.cmp(&b.key))
        });
        Ok(entries)
    }

    /// The entry for exactly `key`.
    pub fn get(&self, key: &str) -> Result<Option<CacheEntry>, CacheError> {
        let path = self.entry_path(key);
        match fs::read_to_string(&path) {
            Ok(text) => serde_json::from_str(&text)
                .map(Some)
                .map_err(|e| CacheError::Damaged {
                    path,
                    reason: e.to_string(),
                }),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(CacheError::Io { path, source: e }),
        }
    }

    /// The newest entry whose key starts with `prefix`.
    pub fn newest_matching(&self, prefix: &str) -> Result<Option<CacheEntry>, CacheError> {
        Ok(self.list()?.into_iter().find(|e| e.key.starts_with(prefix)))
    }

    /// Saves `paths` (relative to `workspace`, absolute, or `~/...`) under `key`, unless the key
    /// exists. Paths that do not exist are left out; none existing is an error.
    pub fn save(
        &self,
        key: &str,
        paths: &[String],
        workspace: &Path,
    ) -> Result<SaveOutcome, CacheError> {
        if let Some(existing) = self.get(key)? {
            return Ok(SaveOutcome::Exists(existing));
        }
        let present: Vec<(String, PathBuf, &String)> = paths
            .iter()
            .map(|p| {
                let (name, path) = resolve(p, workspace);
                (name, path, p)
            })
            .filter(|(_, path, _)| path.symlink_metadata().is_ok())
            .collect();
        if present.is_empty() {
            return Err(CacheError::NothingToSave(paths.join(", ")));
        }
        let tmp_archive = self.dir.join("tmp").join(format!("{}.tar.gz", unique()));
        let result = self.write_archive(&tmp_archive, &present);
        let (blob, bytes) = match result {
            Ok(v) => v,
            Err(e) => {
                let _ = fs::remove_file(&tmp_archive);
                return Err(e);
            }
        };
        let blob_path = self.blob_path(&blob);
        // Same content, same name: replacing an identical blob is harmless.
        fs::rename(&tmp_archive, &blob_path).map_err(io_err(&blob_path))?;
        let entry = CacheEntry {
            key: key.to_string(),
            blob,
            bytes,
            created_ms: (self.clock.0)(),
            paths: present.iter().map(|(_, _, p)| (*p).clone()).collect(),
        };
        let tmp_entry = self.dir.join("tmp").join(format!("{}.json", unique()));
        let json = serde_json::to_vec_pretty(&entry).unwrap_or_default();
        write_synced(&tmp_entry, &json)?;
        let final_entry = self.entry_path(key);
        let linked = fs::hard_link(&tmp_entry, &final_entry);
        let _ = fs::remove_file(&tmp_entry);
        match linked {
            Ok(()) => Ok(SaveOutcome::Saved(entry)),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                // Another job published the key while we were archiving: theirs stands.
                let theirs = self.get(key)?.ok_or_else(|| CacheError::Io {
                    path: final_entry.clone(),
                    source: e,
                })?;
                Ok(SaveOutcome::Exists(theirs))
            }
            Err(e) => Err(CacheError::Io {
                path: final_entry,
                source: e,
            }),
        }
    }

    fn write_archive(
        &self,
        target: &Path,
        present: &[(String, PathBuf, &String)],
    ) -> Result<(String, u64), CacheError> {
        let file = fs::File::create(target).map_err(io_err(target))?;
        let hashing = HashingWriter {
            inner: BufWriter::new(file),
            hasher: Sha256::new(),
            bytes: 0,
        };
        let gz = flate2::write::GzEncoder::new(hashing, Compression::fast());
        let mut tar = tar::Builder::new(gz);
        tar.follow_symlinks(false);
        for (name, path, _) in present {
            let meta = path.symlink_metadata().map_err(io_err(path))?;
            if meta.is_dir() {
                tar.append_dir_all(name, path).map_err(io_err(path))?;
            } else {
                tar.append_path_with_name(path, name)
                    .map_err(io_err(path))?;
            }
        }
        let gz = tar.into_inner().map_err(io_err(target))?;
        let mut hashing = gz.finish().map_err(io_err(target))?;
        hashing.flush().map_err(io_err(target))?;
        let file = hashing.inner.into_inner().map_err(|e| CacheError::Io {
            path: target.to_path_buf(),
            source: e.into_error(),
        })?;
        file.sync_all().map_err(io_err(target))?;
        Ok((hex::encode(hashing.hasher.finalize()), hashing.bytes))
    }

    /// Tries each prefix in order; the newest entry matching the first prefix that matches any
    /// is extracted into `workspace` (relative paths) or its absolute place. `None`: no match.
    pub fn restore(
        &self,
        prefixes: &[String],
        workspace: &Path,
    ) -> Result<Option<Restored>, CacheError> {
        let entries = self.list()?;
        for prefix in prefixes {
            if let Some(entry) = entries.iter().find(|e| e.key.starts_with(prefix.as_str())) {
                let files = self.extract(entry, workspace)?;
                return Ok(Some(Restored {
                    prefix: prefix.clone(),
                    entry: entry.clone(),
                    files,
                }));
            }
        }
        Ok(None)
    }

    /// Restores an entry by hard-linking from its unpacked tree (made once per archive), so a
    /// warm restore of a virtualenv costs links, not decompression and file writes. Where the
    /// tree cannot be had, the archive is unpacked straight into place.
    fn extract(&self, entry: &CacheEntry, workspace: &Path) -> Result<u64, CacheError> {
        match self.unpacked_tree(entry) {
            Ok(tree) => {
                let mut files = link_tree(&tree.join("rel"), workspace)?;
                files += link_tree(&tree.join("abs"), Path::new("/"))?;
                Ok(files)
            }
            Err(_) => self.unpack(entry, workspace, Path::new("/")),
        }
    }

    /// `<store>/trees/<blob>`: the archive unpacked once, complete when it exists (it is
    /// renamed into place whole).
    fn unpacked_tree(&self, entry: &CacheEntry) -> Result<PathBuf, CacheError> {
        let trees = self.dir.join("trees");
        let tree = trees.join(&entry.blob);
        if tree.is_dir() {
            return Ok(tree);
        }
        fs::create_dir_all(&trees).map_err(io_err(&trees))?;
        let tmp = trees.join(format!(".tmp-{}-{}", std::process::id(), now_ms()));
        let result = self
            .unpack(entry, &tmp.join("rel"), &tmp.join("abs"))
            .and_then(|_| {
                fs::create_dir_all(tmp.join("abs")).map_err(io_err(&tmp))?;
                fs::create_dir_all(tmp.join("rel")).map_err(io_err(&tmp))?;
                match fs::rename(&tmp, &tree) {
                    // Another restore made it first: theirs is as good.
                    Err(_) if tree.is_dir() => {
                        let _ = fs::remove_dir_all(&tmp);
                        Ok(())
                    }
                    other => other.map_err(io_err(&tree)),
                }
            });
        if result.is_err() {
            let _ = fs::remove_dir_all(&tmp);
        }
        result.map(|()| tree)
    }

    fn unpack(
        &self,
        entry: &CacheEntry,
        rel_root: &Path,
        abs_root: &Path,
    ) -> Result<u64, CacheError> {
        let workspace = rel_root;
        let blob = self.blob_path(&entry.blob);
        let file = fs::File::open(&blob).map_err(io_err(&blob))?;
        let gz = flate2::read::GzDecoder::new(io::BufReader::with_capacity(1 << 16, file));
        let mut archive = tar::Archive::new(gz);
        archive.set_preserve_permissions(true);
        archive.set_preserve_mtime(true);
        archive.set_overwrite(true);
        let mut files = 0;
        for item in archive.entries().map_err(io_err(&blob))? {
            let mut item = item.map_err(io_err(&blob))?;
            let name = item.path().map_err(io_err(&blob))?.into_owned();
            let mut parts = name.components();
            let root = match parts
                .next()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .as_deref()
            {
                Some("rel") => workspace.to_path_buf(),
                Some("abs") => abs_root.to_path_buf(),
                _ => {
                    return Err(CacheError::Damaged {
                        path: blob.clone(),
                        reason: format!("unexpected entry {}", name.display()),
                    })
                }
            };
            let rest = parts.as_path();
            if rest
                .components()
                .any(|c| !matches!(c, std::path::Component::Normal(_)))
            {
                return Err(CacheError::Damaged {
                    path: blob.clone(),
                    reason: format!("entry {} leaves its directory", name.display()),
                });
            }
            let dest = root.join(rest);
            if let Some(parent) = dest.parent() {
                fs::create_dir_all(parent).map_err(io_err(parent))?;
            }
            item.unpack(&dest).map_err(io_err(&dest))?;
            files += 1;
        }
        Ok(files)
    }

    /// Removes the entries whose key starts with `prefix` (every entry for `""`).
    pub fn remove(&self, prefix: &str) -> Result<Vec<CacheEntry>, CacheError> {
        let doomed: Vec<CacheEntry> = self
            .list()?
            .into_iter()
            .filter(|e| e.key.starts_with(prefix))
            .collect();
        for entry in &doomed {
            let path = self.entry_path(&entry.key);
            match fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(CacheError::Io { path, source: e }),
            }
        }
        self.collect_garbage()?;
        Ok(doomed)
    }

    /// Removes entries older than `max_age`, then the oldest until the archives fit `max_bytes`.
    pub fn prune(&self, max_bytes: u64, max_age: Duration) -> Result<PruneReport, CacheError> {
        let now = (self.clock.0)();
        let mut report = PruneReport::default();
        let mut kept_bytes = 0u64;
        // Newest first: an entry is kept while it is young enough and still fits.
        for entry in self.list()? {
            let too_old = now.saturating_sub(entry.created_ms) > max_age.as_millis() as u64;
            if !too_old && kept_bytes + entry.bytes <= max_bytes {
                kept_bytes += entry.bytes;
                continue;
            }
            let path = self.entry_path(&entry.key);
            if fs::remove_file(&path).is_ok() {
                report.freed_bytes += entry.bytes;
                report.removed.push(entry.key);
            }
        }
        self.collect_garbage()?;
        Ok(report)
    }

    /// Deletes archives no entry refers to, and stale temporary files.
    fn collect_garbage(&self) -> Result<(), CacheError> {
        let referenced: std::collections::HashSet<String> =
            self.list()?.into_iter().map(|e| e.blob).collect();
        let blobs = self.dir.join("blobs");
        // A save in progress renames its blob before it links its entry: leave young blobs.
        let grace = Duration::from_secs(600);
        for item in fs::read_dir(&blobs).map_err(io_err(&blobs))?.flatten() {
            let name = item.file_name().to_string_lossy().into_owned();
            let blob = name.trim_end_matches(".tar.gz");
            let young = item
                .metadata()
                .ok()
                .and_then(|m| m.modified().ok())
                .and_then(|m| m.elapsed().ok())
                .is_none_or(|age| age < grace);
            if !referenced.contains(blob) && !young {
                let _ = fs::remove_file(item.path());
            }
        }
        let trees = self.dir.join("trees");
        if let Ok(items) = fs::read_dir(&trees) {
            for item in items.flatten() {
                let name = item.file_name().to_string_lossy().into_owned();
                if !name.starts_with('.') && !referenced.contains(&name) {
                    let _ = fs::remove_dir_all(item.path());
                }
            }
        }
        let tmp = self.dir.join("tmp");
        for item in fs::read_dir(&tmp).map_err(io_err(&tmp))?.flatten() {
            let old = item
                .metadata()
                .ok()
                .and_then(|m| m.modified().ok())
                .and_then(|m| m.elapsed().ok())
                .is_some_and(|age| age > Duration::from_secs(24 * 3600));
            if old {
                let _ = fs::remove_file(item.path());
            }
        }
        Ok(())
    }
}

fn write_synced(path: &Path, bytes: &[u8]) -> Result<(), CacheError> {
    let mut file = fs::File::create(path).map_err(io_err(path))?;
    file.write_all(bytes).map_err(io_err(path))?;
    file.sync_all().map_err(io_err(path))
}

fn hex_digest(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Reads a whole archive back and checks its hash matches its name (for tests and `ls --verify`).
pub fn verify_blob(store: &CacheStore, entry: &CacheEntry) -> Result<bool, CacheError> {
    let path = store.blob_path(&entry.blob);
    let mut file = fs::File::open(&path).map_err(io_err(&path))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = file.read(&mut buf).map_err(io_err(&path))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hex::encode(hasher.finalize()) == entry.blob)
}

/// Recreates the tree at `src` under `dest`: directories made, files hard-linked (copied when
/// `dest` is on another file system), symlinks recreated; what is in the way is replaced.
/// Returns the number of files and links.
fn link_tree(src: &Path, dest: &Path) -> Result<u64, CacheError> {
    let mut count = 0;
    let Ok(items) = fs::read_dir(src) else {
        return Ok(0);
    };
    fs::create_dir_all(dest).map_err(io_err(dest))?;
    for item in items {
        let item = item.map_err(io_err(src))?;
        let from = item.path();
        let to = dest.join(item.file_name());
        let kind = item.file_type().map_err(io_err(&from))?;
        if kind.is_dir() {
            if fs::symlink_metadata(&to).is_ok_and(|m| !m.is_dir()) {
                fs::remove_file(&to).map_err(io_err(&to))?;
            }
            count += link_tree(&from, &to)?;
            continue;
        }
        match fs::symlink_metadata(&to) {
            Ok(m) if m.is_dir() => fs::remove_dir_all(&to).map_err(io_err(&to))?,
            Ok(_) => fs::remove_file(&to).map_err(io_err(&to))?,
            Err(_) => {}
        }
        if kind.is_symlink() {
            let target = fs::read_link(&from).map_err(io_err(&from))?;
            std::os::unix::fs::symlink(target, &to).map_err(io_err(&to))?;
        } else if fs::hard_link(&from, &to).is_err() {
            fs::copy(&from, &to).map_err(io_err(&to))?;
        }
        count += 1;
    }
    Ok(count)
}
