//! Probing the host's interpreter and installer, for real.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::HostWithEnv;
use hoist_pyenv::{probe_installer, probe_interpreter, Installer, InstallerChoice};
use hoist_transport::Local;

fn stdout(program: &str, args: &[&str]) -> String {
    let out = Command::new(program).args(args).output().unwrap();
    assert!(out.status.success());
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[test]
fn the_interpreter_is_described_by_itself() {
    let interp = probe_interpreter(&Local::default(), "python3").unwrap();
    assert_eq!(interp.command, "python3");
    assert_eq!(
        format!("Python {}", interp.version),
        stdout("python3", &["--version"])
    );
    assert!(interp.executable.starts_with('/'), "{}", interp.executable);
    assert!(std::path::Path::new(&interp.executable).exists());
    let machine = stdout("uname", &["-m"]);
    assert_eq!(interp.platform, format!("cpython-linux-{machine}"));
}

#[test]
fn a_missing_interpreter_says_what_to_do() {
    let err = probe_interpreter(&Local::default(), "python-hoist-missing").unwrap_err();
    assert_eq!(
        err.to_string(),
        "local: Python interpreter `python-hoist-missing` not found; install it on the host or \
         set `python` in hoist.toml to an interpreter that exists there"
    );
}

#[test]
fn a_program_that_is_not_python_is_refused() {
    let err = probe_interpreter(&Local::default(), "true").unwrap_err();
    assert!(
        err.to_string()
            .starts_with("local: `true` did not answer as a Python 3 interpreter"),
        "{err}"
    );
}

#[test]
fn pip_is_the_version_that_venv_will_bundle() {
    let interp = common::python();
    let installer = probe_installer(&Local::default(), &interp, InstallerChoice::Pip).unwrap();
    let bundled = stdout(
        &interp.executable,
        &["-c", "import ensurepip; print(ensurepip.version())"],
    );
    assert_eq!(installer, Installer::Pip { version: bundled });
}

#[test]
fn auto_prefers_uv_and_falls_back_to_pip_on_a_host_without_it() {
    let interp = common::python();
    let uv = common::uv(&interp);
    let reported = stdout("uv", &["--version"]);
    assert!(
        reported.starts_with(&format!("uv {} ", uv.version())),
        "{reported}"
    );
    assert_eq!(
        probe_installer(&Local::default(), &interp, InstallerChoice::Auto).unwrap(),
        uv
    );

    let host = HostWithEnv::without_uv();
    let auto = probe_installer(&host, &interp, InstallerChoice::Auto).unwrap();
    assert_eq!(auto.name(), "pip");
    let err = probe_installer(&host, &interp, InstallerChoice::Uv).unwrap_err();
    assert_eq!(
        err.to_string(),
        "local: uv not found (`uv --version` failed); install it on the host (`pip install uv`) \
         or set `installer = \"pip\"` in hoist.toml"
    );
}

/// The answers are remembered on the host with the binaries' identity: asked again, the cache
/// answers (shown by a cache whose version was edited); a new binary at the same path is asked
/// again; a missing interpreter is never taken from the cache.
#[test]
fn the_probe_is_remembered_until_the_binary_changes() {
    let dir = tempfile::tempdir().unwrap();
    let real = stdout("python3", &["-c", "import sys; print(sys.executable)"]);
    let python = dir.path().join("python3");
    std::fs::copy(&real, &python).unwrap();
    let cache = dir.path().join("probe.json");
    let t = Local::default();
    let command = python.display().to_string();
    let probe =
        |remember| hoist_pyenv::probe_python(&t, &command, InstallerChoice::Pip, &cache, remember);

    // Not remembered when it may not write (`hoist deploy --plan`).
    let (first, installer) = probe(false).unwrap();
    assert!(!cache.exists());
    assert!(matches!(installer, Installer::Pip { .. }), "{installer:?}");
    assert_eq!(probe(true).unwrap().0, first);
    let text = std::fs::read_to_string(&cache).unwrap();
    assert!(text.contains(&first.version), "{text}");

    // A hit does not start Python: an edited answer comes back as it is.
    std::fs::write(&cache, text.replace(&first.version, "9.9.9")).unwrap();
    assert_eq!(probe(true).unwrap().0.version, "9.9.9");

    // A new binary at the same path (an upgrade) is asked again.
    std::fs::remove_file(&python).unwrap();
    std::fs::copy(&real, &python).unwrap();
    assert_eq!(probe(true).unwrap().0.version, first.version);

    // Gone: the probe's own error, whatever the cache says.
    std::fs::remove_file(&python).unwrap();
    let err = probe(true).unwrap_err();
    assert!(err.to_string().contains("not found"), "{err}");
}

/// Asked for uv, a probe that the cache cannot answer runs the interpreter and `uv --version`
/// side by side, with the same answers and the same errors as when each is asked alone.
#[test]
fn the_interpreter_and_uv_asked_together_answer_as_each_alone() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("probe.json");
    let interp = common::python();
    let probe = |t: &dyn hoist_transport::Transport, python: &str, choice| {
        hoist_pyenv::probe_python(t, python, choice, &cache, false)
    };
    let local = Local::default();
    for choice in [InstallerChoice::Auto, InstallerChoice::Uv] {
        let (alone, uv) = probe(&local, "python3", choice).unwrap();
        assert_eq!(alone, probe_interpreter(&local, "python3").unwrap());
        assert_eq!(uv, common::uv(&interp));
    }

    let host = HostWithEnv::without_uv();
    let (there, auto) = probe(&host, "python3", InstallerChoice::Auto).unwrap();
    assert_eq!(there, probe_interpreter(&host, "python3").unwrap());
    assert_eq!(
        auto,
        probe_installer(&host, &there, InstallerChoice::Pip).unwrap()
    );
    let err = probe(&host, "python3", InstallerChoice::Uv).unwrap_err();
    assert_eq!(
        err.to_string(),
        "local: uv not found (`uv --version` failed); install it on the host (`pip install uv`) \
         or set `installer = \"pip\"` in hoist.toml"
    );

    let err = probe(&local, "python-hoist-missing", InstallerChoice::Auto).unwrap_err();
    assert_eq!(
        err.to_string(),
        "local: Python interpreter `python-hoist-missing` not found; install it on the host or \
         set `python` in hoist.toml to an interpreter that exists there"
    );
    let err = probe(&local, "true", InstallerChoice::Uv).unwrap_err();
    assert!(
        err.to_string()
            .starts_with("local: `true` did not answer as a Python 3 interpreter"),
        "{err}"
    );
    assert!(!cache.exists());
}

/// A `uv` that is a script (a pyenv shim) has the same identity whatever uv it runs: its answer
/// is never taken from the cache, even beside an interpreter that is a binary of its own.
#[test]
fn a_uv_that_is_a_script_is_asked_every_time() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let bin = dir.path().join("bin");
    std::fs::create_dir(&bin).unwrap();
    let real = stdout("python3", &["-c", "import sys; print(sys.executable)"]);
    let python = bin.join("python3");
    std::fs::copy(&real, &python).unwrap();
    // The shim stays as it is; what it runs changes (`pyenv global`, an upgrade).
    let uv = bin.join("uv");
    let behind = dir.path().join("uv-behind-the-shim");
    std::fs::write(&uv, format!("#!/bin/sh\nexec cat '{}'\n", behind.display())).unwrap();
    std::fs::set_permissions(&uv, std::fs::Permissions::from_mode(0o755)).unwrap();
    let write_uv = |version: &str| std::fs::write(&behind, format!("uv {version}\n")).unwrap();
    write_uv("0.0.1");
    let path: &'static str = Box::leak(format!("{}:/usr/bin:/bin", bin.display()).into_boxed_str());
    let host = HostWithEnv::new(vec![("PATH", path)]);
    let cache = dir.path().join("probe.json");
    let command = python.display().to_string();
    let probe = || hoist_pyenv::probe_python(&host, &command, InstallerChoice::Uv, &cache, true);
    assert_eq!(probe().unwrap().1.version(), "0.0.1");
    write_uv("0.0.2");
    assert_eq!(probe().unwrap().1.version(), "0.0.2");
}

/// An interpreter and a uv that are shims of one version manager (pyenv, asdf: scripts in one
/// directory, each starting the manager's own scripts, ~70 ms of CPU here) run from the same
/// version's directory: the probe starts the interpreter's shim only and asks the uv beside
/// the interpreter it ran. Where no uv is beside it, the uv shim is asked as before.
#[test]
fn an_interpreter_and_uv_that_are_shims_in_one_directory_start_one_shim() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let (shims, version) = (dir.path().join("shims"), dir.path().join("version/bin"));
    std::fs::create_dir_all(&shims).unwrap();
    std::fs::create_dir_all(&version).unwrap();
    let real = stdout("python3", &["-c", "import sys; print(sys.executable)"]);
    std::fs::copy(&real, version.join("python3")).unwrap();
    let log = dir.path().join("started");
    let script = |path: &std::path::Path, text: String| {
        std::fs::write(path, text).unwrap();
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
    };
    script(
        &version.join("uv"),
        format!(
            "#!/bin/sh\necho uv >> '{}'\necho 'uv 9.9.9'\n",
            log.display()
        ),
    );
    for name in ["python3", "uv"] {
        script(
            &shims.join(name),
            format!(
                "#!/bin/sh\necho 'shim {name}' >> '{}'\nexec '{}' \"$@\"\n",
                log.display(),
                version.join(name).display()
            ),
        );
    }
    let path: &'static str =
        Box::leak(format!("{}:/usr/bin:/bin", shims.display()).into_boxed_str());
    let host = HostWithEnv::new(vec![("PATH", path)]);
    let cache = dir.path().join("probe.json");
    for choice in [InstallerChoice::Uv, InstallerChoice::Auto] {
        let _ = std::fs::remove_file(&log);
        let (interpreter, uv) =
            hoist_pyenv::probe_python(&host, "python3", choice, &cache, true).unwrap();
        assert_eq!(
            interpreter.executable,
            version.join("python3").display().to_string()
        );
        assert_eq!(uv.version(), "9.9.9");
        assert_eq!(
            std::fs::read_to_string(&log).unwrap(),
            "shim python3\nuv\n",
            "{choice:?}"
        );
    }
    // No uv beside the interpreter: its shim answers (here: that uv is not there).
    std::fs::remove_file(version.join("uv")).unwrap();
    let _ = std::fs::remove_file(&log);
    let err =
        hoist_pyenv::probe_python(&host, "python3", InstallerChoice::Uv, &cache, true).unwrap_err();
    assert!(err.to_string().contains("uv not found"), "{err}");
    assert_eq!(
        std::fs::read_to_string(&log).unwrap(),
        "shim python3\nshim uv\n"
    );
}

/// A host where `python3` and `uv` are pyenv's shims: the root of a pyenv of its own whose
/// `libexec/pyenv` logs each start and runs the version named by `$PYENV_VERSION`, else by
/// `.python-version` in the working directory, else by `<root>/version` (or, to play a pyenv
/// that picks otherwise, by `<root>/runs-instead`), as pyenv does for these simple cases.
/// Versions `a` and `b` hold links to the real interpreter and uv.
struct Pyenv {
    dir: tempfile::TempDir,
}

impl Pyenv {
    fn new() -> Pyenv {
        use std::os::unix::fs::{symlink, PermissionsExt};
        let dir = tempfile::tempdir().unwrap();
        let pyenv = Pyenv { dir };
        let root = pyenv.root();
        let python = stdout("python3", &["-c", "import sys; print(sys.executable)"]);
        common::uv(&common::python());
        let uv = Command::new("python3")
            .args(["-c", "import uv; print(uv.find_uv_bin())"])
            .output()
            .ok()
            .filter(|out| out.status.success())
            .map(|out| String::from_utf8_lossy(&out.stdout).trim().to_string())
            .unwrap_or_else(|| stdout("sh", &["-c", "command -v uv"]));
        for version in ["a", "b"] {
            let bin = root.join("versions").join(version).join("bin");
            std::fs::create_dir_all(&bin).unwrap();
            symlink(&python, bin.join("python3")).unwrap();
            symlink(&uv, bin.join("uv")).unwrap();
        }
        let script = |path: PathBuf, text: String| {
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, text).unwrap();
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        };
        let root_text = root.display().to_string();
        script(
            root.join("libexec/pyenv"),
            format!(
                "#!/bin/sh\necho \"pyenv $1 $2\" >> '{root_text}/started'\n\
                 v=$PYENV_VERSION\n\
                 [ -n \"$v\" ] || {{ [ -f .python-version ] && v=$(cat .python-version); }}\n\
                 [ -n \"$v\" ] || v=$(awk '!/^#/ && NF {{ print $1; exit }}' \"$PYENV_ROOT/version\")\n\
                 [ -f \"$PYENV_ROOT/runs-instead\" ] && v=$(cat \"$PYENV_ROOT/runs-instead\")\n\
                 p=$2; shift 2\nexec \"$PYENV_ROOT/versions/$v/bin/$p\" \"$@\"\n"
            ),
        );
        // pyenv's own shim, as `pyenv rehash` writes it.
        for name in ["python3", "uv"] {
            script(
                root.join("shims").join(name),
                format!(
                    "#!/usr/bin/env bash\nset -e\n[ -n \"$PYENV_DEBUG\" ] && set -x\n\n\
                     program=\"${{0##*/}}\"\n\nexport PYENV_ROOT=\"{root_text}\"\n\
                     SHIM_PATH=${{0%/*}}\nif [[ $SHIM_PATH != \"{root_text}/shims\" ]]; then\n  \
                     export _PYENV_SHIM_PATH=\"$SHIM_PATH\"\nfi\n\
                     exec \"{root_text}/libexec/pyenv\" exec \"$program\" \"$@\"\n"
                ),
            );
        }
        pyenv.write("version", "a\n");
        pyenv
    }

    fn root(&self) -> PathBuf {
        self.dir.path().join("pyenv")
    }

    fn write(&self, name: &str, text: &str) {
        std::fs::write(self.root().join(name), text).unwrap();
    }

    /// What the probe answered (the interpreter's version directory, uv's version) and which
    /// shims it started, run in `cwd` with `env` besides the shims' PATH.
    fn probe(
        &self,
        choice: InstallerChoice,
        cwd: &Path,
        env: &[(&'static str, &'static str)],
    ) -> (String, String, String) {
        let path: &'static str = Box::leak(
            format!("{}:/usr/bin:/bin", self.root().join("shims").display()).into_boxed_str(),
        );
        let mut vars = vec![("PATH", path)];
        vars.extend_from_slice(env);
        let host = HostWithEnv::new(vars).in_dir(cwd);
        let started = self.root().join("started");
        let _ = std::fs::remove_file(&started);
        let cache = self.dir.path().join("probe.json");
        let (interpreter, installer) =
            hoist_pyenv::probe_python(&host, "python3", choice, &cache, true).unwrap();
        let version = Path::new(&interpreter.executable)
            .strip_prefix(self.root().join("versions"))
            .unwrap_or_else(|_| panic!("{}", interpreter.executable))
            .to_string_lossy()
            .into_owned();
        (
            version,
            installer.name().to_string(),
            std::fs::read_to_string(&started).unwrap_or_default(),
        )
    }
}

/// pyenv's shims start bash and pyenv's own scripts (~40 processes, 70-90 ms on this machine,
/// at every deploy): where the version they run can be told as pyenv tells it (from
/// `$PYENV_VERSION`, a `.python-version` from the working directory up, `<root>/version`), the
/// probe's answers are remembered with that version's binaries, and asked again when another
/// version is picked. Where pyenv picks otherwise than that reading, nothing is remembered.
#[test]
fn a_pyenv_shims_answers_are_remembered_while_it_picks_the_same_version() {
    let pyenv = Pyenv::new();
    let home = tempfile::tempdir().unwrap();
    let here = home.path();
    let uv = InstallerChoice::Uv;
    let shim = "pyenv exec python3\n";
    let a = (
        "a/bin/python3".to_string(),
        "uv".to_string(),
        shim.to_string(),
    );
    let a_again = ("a/bin/python3".to_string(), "uv".to_string(), String::new());
    assert_eq!(pyenv.probe(uv, here, &[]), a);
    assert_eq!(pyenv.probe(uv, here, &[]), a_again);
    assert_eq!(pyenv.probe(InstallerChoice::Auto, here, &[]), a);
    assert_eq!(pyenv.probe(InstallerChoice::Auto, here, &[]), a_again);

    // `pyenv global b`.
    pyenv.write("version", "# picked by hand\n\n  b  \n");
    let b = (
        "b/bin/python3".to_string(),
        "uv".to_string(),
        shim.to_string(),
    );
    let b_again = ("b/bin/python3".to_string(), "uv".to_string(), String::new());
    assert_eq!(pyenv.probe(uv, here, &[]), b);
    assert_eq!(pyenv.probe(uv, here, &[]), b_again);

    // `pyenv shell a`, then `pyenv local a` in the directory the commands run in.
    assert_eq!(pyenv.probe(uv, here, &[("PYENV_VERSION", "a")]), a);
    assert_eq!(pyenv.probe(uv, here, &[("PYENV_VERSION", "a")]), a_again);
    assert_eq!(pyenv.probe(uv, here, &[]), b);
    std::fs::write(here.join(".python-version"), "a\n").unwrap();
    assert_eq!(pyenv.probe(uv, here, &[]), a);
    assert_eq!(pyenv.probe(uv, here, &[]), a_again);
    std::fs::remove_file(here.join(".python-version")).unwrap();

    // pip asks no uv: the interpreter's binary is the key.
    let pip = |started: &str| {
        (
            "b/bin/python3".to_string(),
            "pip".to_string(),
            started.to_string(),
        )
    };
    assert_eq!(pyenv.probe(InstallerChoice::Pip, here, &[]), pip(shim));
    assert_eq!(pyenv.probe(InstallerChoice::Pip, here, &[]), pip(""));

    // Two versions at once (`pyenv global b a`), and a pyenv that runs another version than
    // its files name: the shim is started every time.
    pyenv.write("version", "b\na\n");
    assert_eq!(pyenv.probe(uv, here, &[]), b);
    assert_eq!(pyenv.probe(uv, here, &[]), b);
    pyenv.write("version", "a\n");
    pyenv.write("runs-instead", "b");
    assert_eq!(pyenv.probe(uv, here, &[("PYENV_VERSION", "a")]), b);
    assert_eq!(pyenv.probe(uv, here, &[("PYENV_VERSION", "a")]), b);
}
