//! [`CommandLayer`]: a transport that wraps another and changes only how commands run (sudo, an
//! environment file, live output); files, links and uploads pass through unchanged. Each layer
//! says what it does to a command, and the forwarding is written once, here.

use std::path::{Path, PathBuf};

use crate::{Cmd, FileKind, LineSink, Output, StateRead, Transport, TransportError, UploadStats};

/// What a wrapper transport does to commands. Every `CommandLayer` is a [`Transport`] whose
/// file operations are those of [`CommandLayer::inner`].
pub trait CommandLayer: Send + Sync {
    /// The transport underneath.
    fn inner(&self) -> &dyn Transport;

    /// [`Transport::exec`] through this layer.
    fn layer_exec(&self, cmd: &Cmd) -> Result<Output, TransportError>;

    /// [`Transport::exec_streaming`] through this layer.
    fn layer_exec_streaming(
        &self,
        cmd: &Cmd,
        on_line: LineSink<'_>,
    ) -> Result<Output, TransportError>;
}

impl<L: CommandLayer> Transport for L {
    fn host(&self) -> &str {
        self.inner().host()
    }

    fn exec(&self, cmd: &Cmd) -> Result<Output, TransportError> {
        self.layer_exec(cmd)
    }

    fn exec_streaming(&self, cmd: &Cmd, on_line: LineSink<'_>) -> Result<Output, TransportError> {
        self.layer_exec_streaming(cmd, on_line)
    }

    fn check_become(&self) -> Result<(), TransportError> {
        self.inner().check_become()
    }

    fn read_file(&self, path: &Path) -> Result<Option<Vec<u8>>, TransportError> {
        self.inner().read_file(path)
    }

    fn write_file_atomic(&self, path: &Path, contents: &[u8]) -> Result<(), TransportError> {
        self.inner().write_file_atomic(path, contents)
    }

    fn read_files(&self, paths: &[&Path]) -> Result<Vec<Option<Vec<u8>>>, TransportError> {
        self.inner().read_files(paths)
    }

    fn write_files_atomic(&self, files: &[(&Path, &[u8])]) -> Result<(), TransportError> {
        self.inner().write_files_atomic(files)
    }

    fn write_private_file_atomic(
        &self,
        path: &Path,
        contents: &[u8],
    ) -> Result<(), TransportError> {
        self.inner().write_private_file_atomic(path, contents)
    }

    fn append_line(&self, path: &Path, line: &str) -> Result<(), TransportError> {
        self.inner().append_line(path, line)
    }

    fn create_dir_all(&self, path: &Path) -> Result<(), TransportError> {
        self.inner().create_dir_all(path)
    }

    fn create_dir(&self, path: &Path) -> Result<(), TransportError> {
        self.inner().create_dir(path)
    }

    fn rename(&self, from: &Path, to: &Path) -> Result<(), TransportError> {
        self.inner().rename(from, to)
    }

    fn remove_all(&self, path: &Path) -> Result<(), TransportError> {
        self.inner().remove_all(path)
    }

    fn read_state(
        &self,
        file: &Path,
        link: &Path,
        dir: &Path,
    ) -> Result<StateRead, TransportError> {
        self.inner().read_state(file, link, dir)
    }

    fn kind(&self, path: &Path) -> Result<FileKind, TransportError> {
        self.inner().kind(path)
    }

    fn read_link(&self, path: &Path) -> Result<Option<PathBuf>, TransportError> {
        self.inner().read_link(path)
    }

    fn list_dir(&self, path: &Path) -> Result<Vec<String>, TransportError> {
        self.inner().list_dir(path)
    }

    fn switch_symlink(&self, link: &Path, target: &Path) -> Result<(), TransportError> {
        self.inner().switch_symlink(link, target)
    }

    fn symlink(&self, target: &Path, link: &Path) -> Result<(), TransportError> {
        self.inner().symlink(target, link)
    }

    fn kinds(&self, paths: &[&Path]) -> Result<Vec<FileKind>, TransportError> {
        self.inner().kinds(paths)
    }

    fn read_links(&self, paths: &[&Path]) -> Result<Vec<Option<PathBuf>>, TransportError> {
        self.inner().read_links(paths)
    }

    fn create_dirs_and_symlinks(
        &self,
        dirs: &[&Path],
        links: &[(&Path, &Path)],
    ) -> Result<(), TransportError> {
        self.inner().create_dirs_and_symlinks(dirs, links)
    }

    fn upload_tree(
        &self,
        src: &Path,
        files: &[PathBuf],
        dest: &Path,
        link_dest: Option<&Path>,
    ) -> Result<UploadStats, TransportError> {
        self.inner().upload_tree(src, files, dest, link_dest)
    }

    fn free_bytes(&self, path: &Path) -> Result<u64, TransportError> {
        self.inner().free_bytes(path)
    }
}
