//! [`Streamed`]: a transport that passes the output of [`Cmd::live`] commands on line by line.

use std::path::{Path, PathBuf};

use crate::{Cmd, FileKind, LineSink, Output, Transport, TransportError, UploadStats};

/// Hands each line of a [`Cmd::live`] command's output to `on_line` while it runs; every other
/// command (hoist's own probes and polls) runs as with the inner transport. For code that runs
/// user-written commands among its own, such as a restart strategy.
pub struct Streamed<'a> {
    pub inner: &'a dyn Transport,
    pub on_line: LineSink<'a>,
}

impl Transport for Streamed<'_> {
    fn host(&self) -> &str {
        self.inner.host()
    }

    fn exec(&self, cmd: &Cmd) -> Result<Output, TransportError> {
        if cmd.live {
            self.inner.exec_streaming(cmd, self.on_line)
        } else {
            self.inner.exec(cmd)
        }
    }

    fn exec_streaming(&self, cmd: &Cmd, on_line: LineSink<'_>) -> Result<Output, TransportError> {
        self.inner.exec_streaming(cmd, on_line)
    }

    fn read_file(&self, path: &Path) -> Result<Option<Vec<u8>>, TransportError> {
        self.inner.read_file(path)
    }

    fn write_file_atomic(&self, path: &Path, contents: &[u8]) -> Result<(), TransportError> {
        self.inner.write_file_atomic(path, contents)
    }

    fn write_private_file_atomic(
        &self,
        path: &Path,
        contents: &[u8],
    ) -> Result<(), TransportError> {
        self.inner.write_private_file_atomic(path, contents)
    }

    fn append_line(&self, path: &Path, line: &str) -> Result<(), TransportError> {
        self.inner.append_line(path, line)
    }

    fn create_dir_all(&self, path: &Path) -> Result<(), TransportError> {
        self.inner.create_dir_all(path)
    }

    fn create_dir(&self, path: &Path) -> Result<(), TransportError> {
        self.inner.create_dir(path)
    }

    fn rename(&self, from: &Path, to: &Path) -> Result<(), TransportError> {
        self.inner.rename(from, to)
    }

    fn remove_all(&self, path: &Path) -> Result<(), TransportError> {
        self.inner.remove_all(path)
    }

    fn kind(&self, path: &Path) -> Result<FileKind, TransportError> {
        self.inner.kind(path)
    }

    fn read_link(&self, path: &Path) -> Result<Option<PathBuf>, TransportError> {
        self.inner.read_link(path)
    }

    fn list_dir(&self, path: &Path) -> Result<Vec<String>, TransportError> {
        self.inner.list_dir(path)
    }

    fn switch_symlink(&self, link: &Path, target: &Path) -> Result<(), TransportError> {
        self.inner.switch_symlink(link, target)
    }

    fn symlink(&self, target: &Path, link: &Path) -> Result<(), TransportError> {
        self.inner.symlink(target, link)
    }

    fn upload_tree(
        &self,
        src: &Path,
        files: &[PathBuf],
        dest: &Path,
        link_dest: Option<&Path>,
    ) -> Result<UploadStats, TransportError> {
        self.inner.upload_tree(src, files, dest, link_dest)
    }

    fn free_bytes(&self, path: &Path) -> Result<u64, TransportError> {
        self.inner.free_bytes(path)
    }
}
