//! How hoist reaches a host.
//!
//! Every command that runs on a host is a [`Cmd`]: a program and its arguments, never a shell
//! string. [`Cmd::render`] is the one function that turns it into shell text (for SSH), quoting
//! every argument, so that a path or release id with spaces, quotes, `$()` or `;` stays one
//! argument. The [`Transport`] trait is what engines use; [`Local`] is the same machine, [`Ssh`]
//! a host reached with the system `ssh` (multiplexed) and `rsync`, described by an
//! [`SshTarget`].

mod become_user;
mod cmd;
mod error;
mod interrupt;
mod layer;
mod local;
mod manifest;
mod ssh;
mod ssh_shell;
mod streamed;
mod turns;

pub use become_user::{refusal as sudo_refusal, Become, BecomeScope, Privileged};
pub use cmd::{shell_quote, Cmd, Output};
pub use error::TransportError;
pub use interrupt::{commands_interrupted, interrupt_commands};
pub use layer::CommandLayer;
pub use local::Local;
pub use manifest::{Manifest, ManifestEntry, MANIFEST_FILE};
pub use ssh::{HostKeyPolicy, Ssh, SshTarget};
pub use streamed::Streamed;

use std::path::{Path, PathBuf};

/// Statistics of one [`Transport::upload_tree`].
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct UploadStats {
    /// Files copied byte for byte.
    pub copied: u64,
    /// Files hard-linked to the same file of the `link_dest` tree.
    pub linked: u64,
    /// Bytes copied.
    pub bytes: u64,
}

/// Which output stream of a running command a line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    Stderr,
}

/// Called with each line of a command's output as the command writes it (without the newline):
/// see [`Transport::exec_streaming`].
pub type LineSink<'a> = &'a (dyn Fn(Stream, &str) + Sync);

/// Calls `on_line` with every line of a finished command's output: stdout's, then stderr's.
pub fn replay_lines(out: &Output, on_line: LineSink<'_>) {
    for line in out.stdout_text().lines() {
        on_line(Stream::Stdout, line);
    }
    for line in out.stderr_text().lines() {
        on_line(Stream::Stderr, line);
    }
}

/// A host that hoist can act on. All paths are absolute paths on that host.
pub trait Transport: Send + Sync {
    /// The host's name as the user wrote it (`local` for the local machine).
    fn host(&self) -> &str;

    /// Runs a command and waits for it. A non-zero exit is not an error here: callers read
    /// [`Output::status`]. An error means the command could not be run at all.
    fn exec(&self, cmd: &Cmd) -> Result<Output, TransportError>;

    /// As [`Transport::exec`], and `on_line` gets each line of output while the command runs,
    /// so that a migration running for minutes shows what it does. The returned [`Output`]
    /// still holds all of it. By default the lines come when the command has ended.
    fn exec_streaming(&self, cmd: &Cmd, on_line: LineSink<'_>) -> Result<Output, TransportError> {
        let out = self.exec(cmd)?;
        replay_lines(&out, on_line);
        Ok(out)
    }

    /// Asks sudo, once, whether the login user may run commands as the host's `become` says
    /// (`sudo -n true`), so that a missing sudoers rule stops a deploy before anything on the
    /// host is touched, with [`TransportError::SudoRefused`] naming the line to add. Nothing
    /// to ask on a host without `become`.
    fn check_become(&self) -> Result<(), TransportError> {
        Ok(())
    }

    /// Reads a file; `Ok(None)` when it does not exist.
    fn read_file(&self, path: &Path) -> Result<Option<Vec<u8>>, TransportError>;

    /// Writes a file through a temporary file in the same directory and `rename(2)`, so
    /// readers see the old or the new contents, never a torn file.
    fn write_file_atomic(&self, path: &Path, contents: &[u8]) -> Result<(), TransportError>;

    /// [`Transport::read_file`] of each of `paths`, in one round trip where the host allows.
    fn read_files(&self, paths: &[&Path]) -> Result<Vec<Option<Vec<u8>>>, TransportError> {
        paths.iter().map(|path| self.read_file(path)).collect()
    }

    /// [`Transport::write_file_atomic`] of each file, in order, in one round trip where the
    /// host allows; stops at the first that fails.
    fn write_files_atomic(&self, files: &[(&Path, &[u8])]) -> Result<(), TransportError> {
        files
            .iter()
            .try_for_each(|(path, contents)| self.write_file_atomic(path, contents))
    }

    /// As [`Transport::write_file_atomic`], for a secret: the file has mode 0600 from its
    /// creation, so no other user can read it at any instant.
    fn write_private_file_atomic(&self, path: &Path, contents: &[u8])
        -> Result<(), TransportError>;

    /// Appends one line (a `\n` is added) to a file, creating it, and syncs it to disk.
    fn append_line(&self, path: &Path, line: &str) -> Result<(), TransportError>;

    /// `mkdir -p`.
    fn create_dir_all(&self, path: &Path) -> Result<(), TransportError>;

    /// `mkdir` of one directory, failing with [`TransportError::AlreadyExists`] when it exists.
    fn create_dir(&self, path: &Path) -> Result<(), TransportError>;

    /// `rename(2)`; fails when `to` is a non-empty directory.
    fn rename(&self, from: &Path, to: &Path) -> Result<(), TransportError>;

    /// `rm -rf`; succeeds when the path does not exist.
    fn remove_all(&self, path: &Path) -> Result<(), TransportError>;

    /// What kind of thing is at `path`, without following a final symlink.
    fn kind(&self, path: &Path) -> Result<FileKind, TransportError>;

    /// [`Transport::kind`] of each of `paths`, in one round trip where the host allows.
    fn kinds(&self, paths: &[&Path]) -> Result<Vec<FileKind>, TransportError> {
        paths.iter().map(|path| self.kind(path)).collect()
    }

    /// `readlink`: the symlink's target as stored; `Ok(None)` when `path` does not exist.
    fn read_link(&self, path: &Path) -> Result<Option<PathBuf>, TransportError>;

    /// [`Transport::read_link`] of each of `paths`, in one round trip where the host allows;
    /// fails, as `read_link` does, at the first that exists and is no symlink.
    fn read_links(&self, paths: &[&Path]) -> Result<Vec<Option<PathBuf>>, TransportError> {
        paths.iter().map(|path| self.read_link(path)).collect()
    }

    /// Names of the entries of a directory, sorted; empty when it does not exist.
    fn list_dir(&self, path: &Path) -> Result<Vec<String>, TransportError>;

    /// [`Transport::read_file`] of `file`, [`Transport::read_link`] of `link` (saying what is
    /// there when it is not a symlink) and [`Transport::list_dir`] of `dir`, in one round trip
    /// where the host allows: what a deploy reads of a host's root (journal, `current`,
    /// releases) before and after it takes the lock, and again to prune.
    fn read_state(
        &self,
        file: &Path,
        link: &Path,
        dir: &Path,
    ) -> Result<StateRead, TransportError> {
        let contents = self.read_file(file)?;
        let link = match self.read_link(link) {
            Ok(Some(target)) => LinkRead::Target(target),
            Ok(None) => LinkRead::Missing,
            Err(e) => match self.kind(link)? {
                FileKind::Missing | FileKind::Symlink => return Err(e),
                kind => LinkRead::NotASymlink(kind),
            },
        };
        Ok(StateRead {
            file: contents,
            link,
            names: self.list_dir(dir)?,
        })
    }

    /// Makes `link` a symlink to `target` atomically: `symlink(tmp)` + `rename(2)` in the same
    /// directory, then `readlink` to check. Refuses when `link` is a real directory.
    fn switch_symlink(&self, link: &Path, target: &Path) -> Result<(), TransportError>;

    /// Makes `link` a symlink to `target` unless it already is one (used for `shared/` links
    /// and `.venv` inside a release being built), replacing whatever else is at `link`: a
    /// file, a directory with its contents, or a symlink (the link, never what it points to).
    fn symlink(&self, target: &Path, link: &Path) -> Result<(), TransportError>;

    /// [`Transport::create_dir_all`] of each of `dirs`, then [`Transport::symlink`] of each
    /// `(target, link)`, in order and in one round trip where the host allows; stops at the
    /// first that fails, naming it.
    fn create_dirs_and_symlinks(
        &self,
        dirs: &[&Path],
        links: &[(&Path, &Path)],
    ) -> Result<(), TransportError> {
        dirs.iter().try_for_each(|dir| self.create_dir_all(dir))?;
        links
            .iter()
            .try_for_each(|(target, link)| self.symlink(target, link))
    }

    /// Copies `files` (paths relative to `src`, on the controller) into `dest` on the host,
    /// and writes the release's content [`Manifest`] as `dest/`[`MANIFEST_FILE`]. A regular
    /// file whose content (sha256), permission bits and size equal those that `link_dest`'s
    /// manifest lists for the same path is hard-linked to it instead of copied; sizes and
    /// time stamps alone never make a file "unchanged". Modification times and permission
    /// bits are preserved; symlinks are recreated as symlinks.
    fn upload_tree(
        &self,
        src: &Path,
        files: &[PathBuf],
        dest: &Path,
        link_dest: Option<&Path>,
    ) -> Result<UploadStats, TransportError>;

    /// Free bytes on the file system that holds `path`.
    fn free_bytes(&self, path: &Path) -> Result<u64, TransportError>;
}

/// What [`Transport::read_state`] read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateRead {
    /// The file's contents; `None` when it does not exist.
    pub file: Option<Vec<u8>>,
    pub link: LinkRead,
    /// The directory's entries, sorted; empty when it does not exist.
    pub names: Vec<String>,
}

/// What [`Transport::read_state`] found at its link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkRead {
    /// A symlink, and its target as stored.
    Target(PathBuf),
    Missing,
    /// Something that is not a symlink: a directory, a file or another kind.
    NotASymlink(FileKind),
}

/// What [`Transport::kind`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    Missing,
    File,
    Dir,
    Symlink,
    Other,
}

impl FileKind {
    pub fn exists(self) -> bool {
        self != FileKind::Missing
    }
}
