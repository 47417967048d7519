//! Probing the host's interpreter and installer, for real.

mod common;

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
    let host = HostWithEnv(Local::default(), vec![("PATH", path)]);
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
    let host = HostWithEnv(Local::default(), vec![("PATH", path)]);
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
