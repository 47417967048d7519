use std::collections::HashSet;
use std::fs;
use std::io::{ErrorKind, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::manifest::{plan_against, MANIFEST_FILE};
use crate::ssh_shell::kill_tree;
use crate::{
    sudo_refusal, Become, Cmd, FileKind, LineSink, Output, Stream, Transport, TransportError,
    UploadStats,
};

/// The environment variable by which `hoist serve` marks the processes its runs start.
const SERVER_OWNER_VAR: &str = "HOIST_SERVER_OWNER";

/// The machine hoist runs on. Commands run directly (no shell in between); file operations
/// are system calls.
#[derive(Debug, Clone)]
pub struct Local {
    name: String,
    become_as: Option<Become>,
}

impl Default for Local {
    fn default() -> Self {
        Local {
            name: "local".into(),
            become_as: None,
        }
    }
}

impl Local {
    pub fn new(name: impl Into<String>) -> Self {
        Local {
            name: name.into(),
            become_as: None,
        }
    }

    /// The same machine, with the commands `become` applies to run through `sudo -n`. File
    /// operations stay system calls of hoist's own user, also with [`crate::BecomeScope::All`].
    #[must_use]
    pub fn with_become(mut self, become_as: Option<Become>) -> Self {
        self.become_as = become_as;
        self
    }

    /// Runs `cmd` as hoist's own user; `on_line` gets each line of output as it comes.
    fn exec_direct(
        &self,
        cmd: &Cmd,
        on_line: Option<LineSink<'_>>,
    ) -> Result<Output, TransportError> {
        let mut command = Command::new(&cmd.program);
        command.args(&cmd.args);
        if let Some(cwd) = &cmd.cwd {
            command.current_dir(cwd);
        }
        for (k, v) in &cmd.env {
            command.env(k, v);
        }
        // What a host runs may outlive the deploy (a restart command starts the app server):
        // it must not carry the mark by which a restarted `hoist serve` stops what an earlier
        // one left behind (hoist-server's runner::strays), or a server restart kills the app.
        command.env_remove(SERVER_OWNER_VAR);
        command
            .stdin(if cmd.stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let spawn_err = |source| TransportError::Spawn {
            host: self.name.clone(),
            command: cmd.render(),
            source,
        };
        // Its own process group, so that everything it starts can be stopped together.
        command.process_group(0);
        let mut child = command.spawn().map_err(spawn_err)?;
        let watcher = GroupWatcher::start(child.id());
        let _registered = cmd
            .interruptible
            .then(|| crate::interrupt::register(child.id()));
        if let Some(bytes) = &cmd.stdin {
            let mut stdin = child.stdin.take().expect("stdin is piped");
            let bytes = bytes.clone();
            // A writer thread, so a child that fills its stdout pipe before reading all of
            // stdin cannot deadlock us.
            std::thread::spawn(move || {
                let _ = stdin.write_all(&bytes);
            });
        }
        let stdout = child.stdout.take().expect("stdout is piped");
        let stderr = child.stderr.take().expect("stderr is piped");
        // Both pipes are read at once, line by line, so neither can fill up and block the child.
        let (stdout, stderr) = std::thread::scope(|scope| {
            let err = scope.spawn(|| read_lines(stderr, Stream::Stderr, on_line));
            let out = read_lines(stdout, Stream::Stdout, on_line);
            (out, err.join().unwrap_or_default())
        });
        let status = child.wait();
        if let Some(watcher) = watcher {
            watcher.finish();
        }
        let status = status.map_err(spawn_err)?;
        Ok(Output {
            status: status.code().unwrap_or(-1),
            stdout,
            stderr,
        })
    }

    /// Writes a new file under a random temporary name, then renames it to `path`; `durable`
    /// syncs it to disk first.
    fn write_through_tmp(
        &self,
        path: &Path,
        contents: &[u8],
        durable: bool,
        mode: u32,
    ) -> Result<(), TransportError> {
        let (tmp, mut f) = create_sibling_tmp(path, mode).map_err(|e| self.io("write", path, e))?;
        let mut write = || -> std::io::Result<()> {
            f.write_all(contents)?;
            if durable {
                f.sync_all()?;
            }
            fs::rename(&tmp, path)
        };
        write().map_err(|e| {
            let _ = fs::remove_file(&tmp);
            self.io("write", path, e)
        })
    }

    /// A release's manifest needs no sync: one lost or cut short in a crash vouches for
    /// nothing, and the next release is copied whole.
    fn write_manifest(&self, path: &Path, contents: &[u8]) -> Result<(), TransportError> {
        self.write_through_tmp(path, contents, false, 0o644)
    }

    /// Runs `cmd`, through `sudo -n` when `become` applies to it.
    fn exec_as(&self, cmd: &Cmd, on_line: Option<LineSink<'_>>) -> Result<Output, TransportError> {
        let Some(become_as) = self.become_as.as_ref().filter(|b| b.applies_to(cmd)) else {
            return self.exec_direct(cmd, on_line);
        };
        let out = self.exec_direct(&become_as.wrap(cmd), on_line)?;
        if out.success() {
            return Ok(out);
        }
        let login = self
            .exec_direct(&Cmd::new("id").arg("-un"), None)
            .map(|out| out.stdout_text().trim().to_string())
            .unwrap_or_default();
        match sudo_refusal(&self.name, &login, become_as, &out) {
            Some(refused) => Err(refused),
            None => Ok(out),
        }
    }

    fn io(&self, action: &'static str, path: &Path, source: std::io::Error) -> TransportError {
        TransportError::Io {
            host: self.name.clone(),
            action,
            path: path.to_path_buf(),
            source,
        }
    }
}

impl Transport for Local {
    fn host(&self) -> &str {
        &self.name
    }

    fn exec(&self, cmd: &Cmd) -> Result<Output, TransportError> {
        self.exec_as(cmd, None)
    }

    fn exec_streaming(&self, cmd: &Cmd, on_line: LineSink<'_>) -> Result<Output, TransportError> {
        self.exec_as(cmd, Some(on_line))
    }

    fn check_become(&self) -> Result<(), TransportError> {
        if self.become_as.is_some() {
            // Any refusal is an error of `exec_as`; `true` itself cannot fail.
            self.exec_as(&Cmd::new("true").privileged(), None)?;
        }
        Ok(())
    }

    fn read_file(&self, path: &Path) -> Result<Option<Vec<u8>>, TransportError> {
        match fs::read(path) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
            Err(e) => Err(self.io("read", path, e)),
        }
    }

    fn write_file_atomic(&self, path: &Path, contents: &[u8]) -> Result<(), TransportError> {
        self.write_through_tmp(path, contents, true, 0o644)
    }

    fn write_private_file_atomic(
        &self,
        path: &Path,
        contents: &[u8],
    ) -> Result<(), TransportError> {
        self.write_through_tmp(path, contents, true, 0o600)
    }

    fn append_line(&self, path: &Path, line: &str) -> Result<(), TransportError> {
        let mut f = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|e| self.io("open", path, e))?;
        // One write call per line so concurrent appenders never interleave within a line.
        let mut buf = line.as_bytes().to_vec();
        buf.push(b'\n');
        f.write_all(&buf)
            .and_then(|()| f.sync_data())
            .map_err(|e| self.io("append to", path, e))
    }

    fn create_dir_all(&self, path: &Path) -> Result<(), TransportError> {
        fs::create_dir_all(path).map_err(|e| self.io("create", path, e))
    }

    fn create_dir(&self, path: &Path) -> Result<(), TransportError> {
        match fs::create_dir(path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == ErrorKind::AlreadyExists => Err(TransportError::AlreadyExists {
                host: self.name.clone(),
                path: path.to_path_buf(),
            }),
            Err(e) => Err(self.io("create", path, e)),
        }
    }

    fn rename(&self, from: &Path, to: &Path) -> Result<(), TransportError> {
        match fs::rename(from, to) {
            Ok(()) => Ok(()),
            Err(e)
                if matches!(
                    e.kind(),
                    ErrorKind::AlreadyExists | ErrorKind::DirectoryNotEmpty
                ) =>
            {
                Err(TransportError::AlreadyExists {
                    host: self.name.clone(),
                    path: to.to_path_buf(),
                })
            }
            Err(e) => Err(self.io("rename", from, e)),
        }
    }

    fn remove_all(&self, path: &Path) -> Result<(), TransportError> {
        match fs::symlink_metadata(path) {
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
            Err(e) => Err(self.io("inspect", path, e)),
            Ok(meta) if meta.is_dir() => {
                fs::remove_dir_all(path).map_err(|e| self.io("remove", path, e))
            }
            Ok(_) => fs::remove_file(path).map_err(|e| self.io("remove", path, e)),
        }
    }

    fn kind(&self, path: &Path) -> Result<FileKind, TransportError> {
        match fs::symlink_metadata(path) {
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(FileKind::Missing),
            Err(e) => Err(self.io("inspect", path, e)),
            Ok(m) if m.file_type().is_symlink() => Ok(FileKind::Symlink),
            Ok(m) if m.is_dir() => Ok(FileKind::Dir),
            Ok(m) if m.is_file() => Ok(FileKind::File),
            Ok(_) => Ok(FileKind::Other),
        }
    }

    fn read_link(&self, path: &Path) -> Result<Option<PathBuf>, TransportError> {
        match fs::read_link(path) {
            Ok(p) => Ok(Some(p)),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
            Err(e) => Err(self.io("readlink", path, e)),
        }
    }

    fn list_dir(&self, path: &Path) -> Result<Vec<String>, TransportError> {
        let entries = match fs::read_dir(path) {
            Ok(entries) => entries,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(self.io("list", path, e)),
        };
        let mut names = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| self.io("list", path, e))?;
            names.push(entry.file_name().to_string_lossy().into_owned());
        }
        names.sort();
        Ok(names)
    }

    fn switch_symlink(&self, link: &Path, target: &Path) -> Result<(), TransportError> {
        if self.kind(link)? == FileKind::Dir {
            return Err(TransportError::NotASymlink {
                host: self.name.clone(),
                path: link.to_path_buf(),
            });
        }
        let tmp = sibling_tmp(link);
        let _ = fs::remove_file(&tmp);
        std::os::unix::fs::symlink(target, &tmp).map_err(|e| self.io("symlink", &tmp, e))?;
        fs::rename(&tmp, link).map_err(|e| {
            let _ = fs::remove_file(&tmp);
            self.io("rename", link, e)
        })?;
        if let Some(parent) = link.parent() {
            // Make the rename durable before we report the switch.
            if let Ok(dir) = fs::File::open(parent) {
                let _ = dir.sync_all();
            }
        }
        let found = self.read_link(link)?;
        if found.as_deref() != Some(target) {
            return Err(TransportError::SwitchCheckFailed {
                host: self.name.clone(),
                link: link.to_path_buf(),
                expected: target.to_path_buf(),
                found: found.map_or("nothing".into(), |p| p.display().to_string()),
            });
        }
        Ok(())
    }

    fn symlink(&self, target: &Path, link: &Path) -> Result<(), TransportError> {
        // Whatever is at `link` that is not already this link is replaced: `readlink` of a
        // file or a directory is EINVAL, not an error here.
        if self.kind(link)? == FileKind::Symlink && self.read_link(link)?.as_deref() == Some(target)
        {
            return Ok(());
        }
        self.remove_all(link)?;
        std::os::unix::fs::symlink(target, link).map_err(|e| self.io("symlink", link, e))
    }

    fn upload_tree(
        &self,
        src: &Path,
        files: &[PathBuf],
        dest: &Path,
        link_dest: Option<&Path>,
    ) -> Result<UploadStats, TransportError> {
        let plan = plan_against(self, src, files, link_dest)?;
        let linkable: HashSet<&PathBuf> = plan.link.iter().collect();
        let mut stats = UploadStats::default();
        fs::create_dir_all(dest).map_err(|e| self.io("create", dest, e))?;
        let mut made_dirs = HashSet::new();
        for rel in files {
            let from = src.join(rel);
            let to = dest.join(rel);
            if let Some(parent) = to.parent() {
                if made_dirs.insert(parent.to_path_buf()) {
                    fs::create_dir_all(parent).map_err(|e| self.io("create", parent, e))?;
                }
            }
            if let (true, Some(prev), Some(entry)) =
                (linkable.contains(rel), link_dest, plan.manifest.get(rel))
            {
                // The manifest vouches for the content; a size that moved since means the
                // file was changed in place, so it is copied instead.
                let prev = prev.join(rel);
                let intact = fs::symlink_metadata(&prev)
                    .is_ok_and(|pm| pm.is_file() && pm.len() == entry.size);
                if intact && fs::hard_link(&prev, &to).is_ok() {
                    stats.linked += 1;
                    continue;
                }
            }
            let meta = fs::symlink_metadata(&from).map_err(|e| self.io("read", &from, e))?;
            if meta.file_type().is_symlink() {
                let target = fs::read_link(&from).map_err(|e| self.io("readlink", &from, e))?;
                std::os::unix::fs::symlink(&target, &to).map_err(|e| self.io("symlink", &to, e))?;
                stats.copied += 1;
                continue;
            }
            if meta.is_dir() {
                fs::create_dir_all(&to).map_err(|e| self.io("create", &to, e))?;
                continue;
            }
            fs::copy(&from, &to).map_err(|e| self.io("copy", &from, e))?;
            let f = fs::File::options()
                .write(true)
                .open(&to)
                .map_err(|e| self.io("open", &to, e))?;
            f.set_modified(meta.modified().map_err(|e| self.io("stat", &from, e))?)
                .map_err(|e| self.io("set mtime of", &to, e))?;
            fs::set_permissions(&to, fs::Permissions::from_mode(meta.mode()))
                .map_err(|e| self.io("chmod", &to, e))?;
            stats.copied += 1;
            stats.bytes += meta.len();
        }
        self.write_manifest(&dest.join(MANIFEST_FILE), &plan.manifest.render())?;
        Ok(stats)
    }

    fn free_bytes(&self, path: &Path) -> Result<u64, TransportError> {
        let out = self.exec(&Cmd::new("df").args(["-Pk"]).path_arg(path))?;
        parse_df(&out.stdout_text()).ok_or_else(|| TransportError::Other {
            host: self.name.clone(),
            message: format!(
                "could not read free space of {}: {}",
                path.display(),
                out.tail(3)
            ),
        })
    }
}

/// Reads the available kilobytes from `df -Pk` output.
pub(crate) fn parse_df(text: &str) -> Option<u64> {
    let line = text.lines().nth(1)?;
    let kb: u64 = line.split_whitespace().nth(3)?.parse().ok()?;
    Some(kb * 1024)
}

/// Creates a new temporary file beside `path` under a random name, with `O_CREAT|O_EXCL|
/// O_NOFOLLOW`: whatever sits in that directory (a symlink planted by a release's tree under a
/// guessable name), the write can only go to a file this call created.
fn create_sibling_tmp(path: &Path, mode: u32) -> std::io::Result<(PathBuf, fs::File)> {
    use std::hash::{BuildHasher, Hasher};
    use std::os::unix::fs::OpenOptionsExt;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut last = None;
    for attempt in 0u32..16 {
        // std's RandomState is seeded from the OS's random source.
        let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
        hasher.write_u32(attempt);
        hasher.write_u128(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos()),
        );
        let tmp = path.with_file_name(format!(".{name}.hoist-tmp-{:016x}", hasher.finish()));
        match fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&tmp)
        {
            Ok(file) => return Ok((tmp, file)),
            Err(e) if e.kind() == ErrorKind::AlreadyExists => last = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(last.unwrap_or_else(|| std::io::Error::other("no free temporary name")))
}

fn sibling_tmp(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!(".{name}.hoist-tmp-{}", std::process::id()))
}

/// Reads a pipe to its end, calling `on_line` with each line as it arrives; returns every byte.
fn read_lines(pipe: impl std::io::Read, stream: Stream, on_line: Option<LineSink<'_>>) -> Vec<u8> {
    use std::io::BufRead as _;
    let mut reader = std::io::BufReader::new(pipe);
    let mut all = Vec::new();
    let mut line = Vec::new();
    loop {
        line.clear();
        match reader.read_until(b'\n', &mut line) {
            Ok(0) | Err(_) => break,
            Ok(_) => {
                all.extend_from_slice(&line);
                if let Some(on_line) = on_line {
                    let text = String::from_utf8_lossy(&line);
                    on_line(stream, text.trim_end_matches(['\n', '\r']));
                }
            }
        }
    }
    all
}

/// Kills a command's process group if hoist dies while the command runs (a hook, a restart, a
/// health command: a killed deploy's migration must not go on beside the next deploy's).
///
/// A small `sh` outside the group reads a pipe from hoist. Hoist writes a line once the command
/// has ended (its leftovers, such as a server it started, are then left alone); if hoist dies
/// first, the kernel closes the pipe, the read sees end-of-file and the group is killed.
struct GroupWatcher {
    child: std::process::Child,
}

/// `$1` the process group id (its leader's pid). The leader's tree goes first
/// ([`kill_tree!`](crate::ssh_shell::kill_tree): what sudo runs as another user, in a group
/// of its own, is reached by descent and through `sudo -n kill`), then the group.
const WATCH_GROUP: &str = concat!(
    "trap '' INT TERM HUP\n",
    kill_tree!(),
    r#"
IFS= read -r _ || {
__hoist_kill_tree "$1" 2>/dev/null
kill -s KILL -- "-$1" 2>/dev/null
}"#
);

impl GroupWatcher {
    fn start(group: u32) -> Option<GroupWatcher> {
        Command::new("sh")
            .args(["-c", WATCH_GROUP, "hoist"])
            .arg(group.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .ok()
            .map(|child| GroupWatcher { child })
    }

    /// The command ended normally: tell the watcher to leave the group alone.
    fn finish(mut self) {
        if let Some(mut stdin) = self.child.stdin.take() {
            let _ = stdin.write_all(b"done\n");
        }
        let _ = self.child.wait();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    #[test]
    fn switch_replaces_a_symlink_and_refuses_a_directory() {
        let dir = tempfile::tempdir().unwrap();
        let local = Local::default();
        let link = dir.path().join("current");
        local
            .switch_symlink(&link, Path::new("releases/a"))
            .unwrap();
        local
            .switch_symlink(&link, Path::new("releases/b"))
            .unwrap();
        assert_eq!(fs::read_link(&link).unwrap(), Path::new("releases/b"));
        let real = dir.path().join("real");
        fs::create_dir(&real).unwrap();
        let err = local.switch_symlink(&real, Path::new("x")).unwrap_err();
        assert!(err.to_string().contains("is a real directory"), "{err}");
    }

    #[test]
    fn unchanged_files_are_hard_linked() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("src");
        fs::create_dir_all(src.join("pkg")).unwrap();
        fs::write(src.join("a.py"), "a").unwrap();
        fs::write(src.join("pkg/b.py"), "b").unwrap();
        let files = vec![PathBuf::from("a.py"), PathBuf::from("pkg/b.py")];
        let local = Local::default();
        let one = dir.path().join("one");
        let s1 = local.upload_tree(&src, &files, &one, None).unwrap();
        assert_eq!((s1.copied, s1.linked), (2, 0));
        fs::write(src.join("a.py"), "changed").unwrap();
        let two = dir.path().join("two");
        let s2 = local.upload_tree(&src, &files, &two, Some(&one)).unwrap();
        assert_eq!((s2.copied, s2.linked), (1, 1));
        let ino = |p: &Path| fs::metadata(p).unwrap().ino();
        assert_eq!(ino(&one.join("pkg/b.py")), ino(&two.join("pkg/b.py")));
        assert_ne!(ino(&one.join("a.py")), ino(&two.join("a.py")));
        assert_eq!(fs::read_to_string(two.join("a.py")).unwrap(), "changed");
    }

    #[test]
    fn df_output_is_parsed() {
        let text =
            "Filesystem 1024-blocks Used Available Capacity Mounted on\n/dev/vda 100 50 42 50% /\n";
        assert_eq!(parse_df(text), Some(42 * 1024));
    }
}
