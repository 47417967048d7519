//! Fixtures shared by the integration tests: a project on the controller, a deploy root on the
//! local host, the real interpreter and installers.

#![allow(dead_code)] // each test binary uses its own part of the fixtures

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use hoist_pyenv::{
    dep_key, ensure_env, probe_installer, probe_interpreter, requirement_files, DepKey,
    Dependencies, EnvOutcome, Installer, InstallerChoice, Interpreter, PyenvError,
};
use hoist_transport::{Cmd, FileKind, Local, Output, Transport, TransportError, UploadStats};

/// A project source tree and a deploy root, both in one temporary directory.
pub struct Project {
    _dir: tempfile::TempDir,
    pub source: PathBuf,
    pub root: PathBuf,
}

impl Project {
    pub fn new(files: &[(&str, &str)]) -> Project {
        let dir = tempfile::tempdir().unwrap();
        let source = dir.path().join("src");
        let root = dir.path().join("app");
        std::fs::create_dir_all(&source).unwrap();
        std::fs::create_dir_all(&root).unwrap();
        let project = Project {
            _dir: dir,
            source,
            root,
        };
        for (rel, text) in files {
            project.write(rel, text);
        }
        project
    }

    pub fn write(&self, rel: &str, text: &str) {
        let path = self.source.join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }

    /// Uploads the whole source as `releases/<id>` through the local transport.
    pub fn upload(&self, id: &str) -> PathBuf {
        let mut files = Vec::new();
        collect(&self.source, Path::new(""), &mut files);
        let dest = self.root.join("releases").join(id);
        Local::default()
            .upload_tree(&self.source, &files, &dest, None)
            .unwrap();
        dest
    }

    /// The requirements files of `requirements.txt` and their key.
    pub fn key(&self, interp: &Interpreter, installer: &Installer) -> (Dependencies, DepKey) {
        let files = Dependencies::files(
            requirement_files(&self.source, &[PathBuf::from("requirements.txt")]).unwrap(),
        );
        let key = dep_key(&self.source, &files, interp, installer).unwrap();
        (files, key)
    }

    pub fn env(&self, key: &DepKey) -> PathBuf {
        self.root.join("envs").join(key.as_str())
    }

    pub fn wheels(&self, key: &DepKey) -> PathBuf {
        self.root.join("wheels").join(key.as_str())
    }

    /// Uploads release `id` and runs `ensure_env` for it; returns the outcome and the log.
    pub fn ensure(
        &self,
        id: &str,
        interp: &Interpreter,
        installer: &Installer,
    ) -> (Result<EnvOutcome, PyenvError>, Vec<String>) {
        let (files, key) = self.key(interp, installer);
        let release = self.upload(id);
        let mut log = Vec::new();
        let result = ensure_env(
            &Local::default(),
            &self.root,
            &key,
            &release,
            &files,
            interp,
            installer,
            &mut |line| log.push(line.to_string()),
        );
        (result, log)
    }
}

fn collect(base: &Path, rel: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(base.join(rel)).unwrap() {
        let entry = entry.unwrap();
        let child = rel.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            collect(base, &child, out);
        } else {
            out.push(child);
        }
    }
}

/// The machine's `python3`, probed for real.
pub fn python() -> Interpreter {
    probe_interpreter(&Local::default(), "python3")
        .expect("python3 must be installed to run these tests")
}

pub fn pip(interp: &Interpreter) -> Installer {
    probe_installer(&Local::default(), interp, InstallerChoice::Pip).unwrap()
}

/// uv, installed with `pip install uv` when the machine lacks it. Fails loudly rather than
/// skipping: the uv path is half of what this crate does.
pub fn uv(interp: &Interpreter) -> Installer {
    static READY: OnceLock<()> = OnceLock::new();
    READY.get_or_init(|| {
        if !uv_runs() {
            let _ = Command::new("python3")
                .args(["-m", "pip", "install", "--quiet", "uv"])
                .status();
            // pyenv only exposes a new command after a rehash.
            let _ = Command::new("pyenv").arg("rehash").status();
        }
        assert!(
            uv_runs(),
            "uv cannot be found on PATH and `python3 -m pip install uv` did not provide it; \
             install uv (`pip install uv`) to run the uv tests"
        );
    });
    probe_installer(&Local::default(), interp, InstallerChoice::Uv).unwrap()
}

fn uv_runs() -> bool {
    Command::new("uv")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Runs Python code with an environment's interpreter and returns its trimmed stdout.
pub fn run_in_env(env: &Path, code: &str) -> String {
    let out = Command::new(env.join("bin/python"))
        .args(["-c", code])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// The local machine with extra environment variables for every command, standing in for a
/// host set up differently. Every call is the real local one.
pub struct HostWithEnv {
    local: Local,
    env: Vec<(&'static str, &'static str)>,
    cwd: Option<PathBuf>,
}

impl HostWithEnv {
    /// A host whose commands run with `env` besides the test's own environment.
    pub fn new(env: Vec<(&'static str, &'static str)>) -> HostWithEnv {
        HostWithEnv {
            local: Local::default(),
            env,
            cwd: None,
        }
    }

    /// This host, running each command in `dir`.
    pub fn in_dir(self, dir: &Path) -> HostWithEnv {
        HostWithEnv {
            cwd: Some(dir.to_path_buf()),
            ..self
        }
    }

    /// A host whose `PATH` is only `/usr/bin:/bin`, like a server where uv was never installed.
    pub fn without_uv() -> HostWithEnv {
        HostWithEnv::new(vec![("PATH", "/usr/bin:/bin")])
    }

    /// A host whose package index refuses connections (nothing listens on 127.0.0.1:9).
    pub fn index_down() -> HostWithEnv {
        HostWithEnv::new(vec![
            ("PIP_INDEX_URL", "http://127.0.0.1:9/simple"),
            ("PIP_RETRIES", "0"),
            ("UV_INDEX_URL", "http://127.0.0.1:9/simple"),
        ])
    }
}

impl Transport for HostWithEnv {
    fn host(&self) -> &str {
        self.local.host()
    }
    fn exec(&self, cmd: &Cmd) -> Result<Output, TransportError> {
        let mut cmd = cmd.clone();
        for (k, v) in &self.env {
            cmd = cmd.env(*k, *v);
        }
        if let Some(dir) = &self.cwd {
            cmd = cmd.cwd(dir);
        }
        self.local.exec(&cmd)
    }
    fn read_file(&self, path: &Path) -> Result<Option<Vec<u8>>, TransportError> {
        self.local.read_file(path)
    }
    fn write_file_atomic(&self, path: &Path, contents: &[u8]) -> Result<(), TransportError> {
        self.local.write_file_atomic(path, contents)
    }
    fn write_private_file_atomic(
        &self,
        path: &Path,
        contents: &[u8],
    ) -> Result<(), TransportError> {
        self.local.write_private_file_atomic(path, contents)
    }
    fn append_line(&self, path: &Path, line: &str) -> Result<(), TransportError> {
        self.local.append_line(path, line)
    }
    fn create_dir_all(&self, path: &Path) -> Result<(), TransportError> {
        self.local.create_dir_all(path)
    }
    fn create_dir(&self, path: &Path) -> Result<(), TransportError> {
        self.local.create_dir(path)
    }
    fn rename(&self, from: &Path, to: &Path) -> Result<(), TransportError> {
        self.local.rename(from, to)
    }
    fn remove_all(&self, path: &Path) -> Result<(), TransportError> {
        self.local.remove_all(path)
    }
    fn kind(&self, path: &Path) -> Result<FileKind, TransportError> {
        self.local.kind(path)
    }
    fn read_link(&self, path: &Path) -> Result<Option<PathBuf>, TransportError> {
        self.local.read_link(path)
    }
    fn list_dir(&self, path: &Path) -> Result<Vec<String>, TransportError> {
        self.local.list_dir(path)
    }
    fn switch_symlink(&self, link: &Path, target: &Path) -> Result<(), TransportError> {
        self.local.switch_symlink(link, target)
    }
    fn symlink(&self, target: &Path, link: &Path) -> Result<(), TransportError> {
        self.local.symlink(target, link)
    }
    fn upload_tree(
        &self,
        src: &Path,
        files: &[PathBuf],
        dest: &Path,
        link_dest: Option<&Path>,
    ) -> Result<UploadStats, TransportError> {
        self.local.upload_tree(src, files, dest, link_dest)
    }
    fn free_bytes(&self, path: &Path) -> Result<u64, TransportError> {
        self.local.free_bytes(path)
    }
}
