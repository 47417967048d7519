//! Building, reusing, rebuilding and checking real virtualenvs with real pip and uv.

mod common;

use std::collections::BTreeSet;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use common::{run_in_env, HostWithEnv, Project};
use hoist_pyenv::{
    check_entry_imports, ensure_env, read_env_mark, unused_envs, unused_wheel_dirs, Dependencies,
    Installer, Interpreter, COMPLETE_MARK,
};
use hoist_transport::Local;

/// `six` comes through `-r`; `idna` is pinned through `-c`; `certifi` is only in the
/// constraints file, so it must not be installed.
fn project() -> Project {
    Project::new(&[
        (
            "requirements.txt",
            "-r requirements/base.txt\n-c constraints.txt\nidna\n",
        ),
        ("requirements/base.txt", "six==1.16.0\n"),
        ("constraints.txt", "idna==3.7\ncertifi==2024.2.2\n"),
        (
            "app.py",
            "import six\n\ndef application(environ, start_response):\n    return []\n",
        ),
    ])
}

const VERSIONS: &str = "import importlib.util as u, six, idna; \
    print(six.__version__, idna.__version__, u.find_spec('certifi') is not None)";

/// How many files match a shell glob.
fn glob_count(pattern: &str) -> usize {
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg("for f in $1; do [ -e \"$f\" ] && echo \"$f\"; done")
        .arg("sh")
        .arg(pattern)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).lines().count()
}

fn mark_identity(env: &Path) -> (u64, i64, i64) {
    let meta = std::fs::metadata(env.join(COMPLETE_MARK)).unwrap();
    (meta.ino(), meta.mtime(), meta.mtime_nsec())
}

/// The same interpreter as far as the key is concerned, but one that cannot run: a reuse
/// that started any Python would fail.
fn unrunnable(interp: &Interpreter) -> Interpreter {
    Interpreter {
        executable: "/nonexistent/python3".into(),
        ..interp.clone()
    }
}

fn assert_built_then_reused(p: &Project, interp: &Interpreter, installer: &Installer) {
    let (files, key) = p.key(interp, installer);
    let (first, log) = p.ensure("1", interp, installer);
    let first = first.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(first.path, p.env(&key));
    assert!(!first.reused);
    // Compiled when installed (before anything imports them here): a worker that may not
    // write into the environment (another user's, as a deploy user's env is to the app's)
    // would otherwise compile every module from source at every start.
    let compiled = |package: &str| {
        let pattern = format!(
            "{}/lib/python*/site-packages/{package}/__pycache__/*.pyc",
            first.path.display()
        );
        glob_count(&pattern)
    };
    assert!(
        compiled("idna") > 0,
        "no bytecode for idna in {}",
        first.path.display()
    );
    assert_eq!(run_in_env(&first.path, VERSIONS), "1.16.0 3.7 False");
    assert_eq!(
        log.last().unwrap(),
        &format!("environment {key}: complete at {}", first.path.display())
    );

    let mark = read_env_mark(&Local::default(), &first.path)
        .unwrap()
        .unwrap();
    assert_eq!(mark.key, key);
    assert_eq!(&mark.interpreter, interp);
    assert_eq!(&mark.installer, installer);
    assert_eq!(mark.files, files.files);
    let before = mark_identity(&first.path);

    // A code-only deploy: same requirements, new release, no Python work at all.
    p.write("app.py", "import six\napplication = 'v2'\n");
    let (second, log) = p.ensure("2", &unrunnable(interp), installer);
    let second = second.unwrap_or_else(|e| panic!("{e}"));
    assert!(second.reused);
    assert_eq!(second.path, first.path);
    assert_eq!(mark_identity(&second.path), before);
    assert_eq!(log.len(), 1, "{log:?}");
    assert!(
        log[0].starts_with(&format!("environment {key}: reusing ")),
        "{log:?}"
    );
}

#[test]
fn pip_builds_through_the_wheel_cache_then_reuses() {
    let interp = common::python();
    let pip = common::pip(&interp);
    let p = project();
    assert_built_then_reused(&p, &interp, &pip);
    let (_, key) = p.key(&interp, &pip);
    // The venv's pip is the version that went into the key.
    let pip_version = run_in_env(&p.env(&key), "import pip; print(pip.__version__)");
    assert_eq!(pip_version, pip.version());
    let wheels = wheel_names(&p.wheels(&key));
    assert!(
        wheels.iter().any(|w| w.starts_with("six-1.16.0-")),
        "{wheels:?}"
    );
    assert!(
        wheels.iter().any(|w| w.starts_with("idna-3.7-")),
        "{wheels:?}"
    );
    assert!(p.wheels(&key).join(COMPLETE_MARK).is_file());
}

#[test]
fn uv_builds_with_its_cache_under_wheels_then_reuses() {
    let interp = common::python();
    let uv = common::uv(&interp);
    let p = project();
    assert_built_then_reused(&p, &interp, &uv);
    assert!(p.root.join("wheels/uv").is_dir());
    let (_, key) = p.key(&interp, &uv);
    // Built from the host's interpreter, at its final path.
    let cfg = std::fs::read_to_string(p.env(&key).join("pyvenv.cfg")).unwrap();
    assert!(
        cfg.contains(&format!("version_info = {}", interp.version)),
        "{cfg}"
    );
    let prefix = run_in_env(&p.env(&key), "import sys; print(sys.prefix)");
    assert_eq!(Path::new(&prefix), p.env(&key));
}

#[test]
fn a_half_built_env_is_removed_and_rebuilt() {
    let interp = common::python();
    let uv = common::uv(&interp);
    let p = project();
    let (_, key) = p.key(&interp, &uv);
    // What a build killed halfway leaves: the directory, some files, no mark.
    let env = p.env(&key);
    std::fs::create_dir_all(env.join("lib")).unwrap();
    std::fs::write(env.join("lib/half-written.py"), "x = (").unwrap();
    let (outcome, log) = p.ensure("1", &interp, &uv);
    let outcome = outcome.unwrap_or_else(|e| panic!("{e}"));
    assert!(!outcome.reused);
    assert!(!env.join("lib/half-written.py").exists());
    assert!(
        log.contains(&format!(
            "environment {key}: removing half-built {} (no completion mark)",
            env.display()
        )),
        "{log:?}"
    );
    assert_eq!(run_in_env(&env, VERSIONS), "1.16.0 3.7 False");

    // A complete env whose mark was deleted is no longer trusted either.
    std::fs::remove_file(env.join(COMPLETE_MARK)).unwrap();
    std::fs::write(env.join("stray"), "").unwrap();
    let (again, _) = p.ensure("2", &interp, &uv);
    assert!(!again.unwrap().reused);
    assert!(!env.join("stray").exists());
    assert!(env.join(COMPLETE_MARK).is_file());
}

#[test]
fn a_wiped_or_half_written_wheel_dir_is_rebuilt() {
    let interp = common::python();
    let pip = common::pip(&interp);
    let p = project();
    let (_, key) = p.key(&interp, &pip);
    let (env, wheels) = (p.env(&key), p.wheels(&key));

    // Half-written: a wheel directory without its mark, with a broken file in it.
    std::fs::create_dir_all(&wheels).unwrap();
    std::fs::write(wheels.join("six-1.16.0-py2.py3-none-any.whl"), "truncated").unwrap();
    let (outcome, _) = p.ensure("1", &interp, &pip);
    outcome.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(run_in_env(&env, VERSIONS), "1.16.0 3.7 False");
    assert!(wheels.join(COMPLETE_MARK).is_file());

    // Wiped: the environment and its wheels are gone; both come back.
    std::fs::remove_dir_all(&env).unwrap();
    std::fs::remove_dir_all(&wheels).unwrap();
    let (outcome, log) = p.ensure("2", &interp, &pip);
    assert!(!outcome.unwrap_or_else(|e| panic!("{e}")).reused);
    assert!(
        log.contains(&format!("building wheels into {}", wheels.display())),
        "{log:?}"
    );
    assert!(wheel_names(&wheels)
        .iter()
        .any(|w| w.starts_with("six-1.16.0-")));

    // Tampered: marked complete but a wheel is missing; it is rebuilt, not trusted.
    std::fs::remove_dir_all(&env).unwrap();
    for name in wheel_names(&wheels) {
        std::fs::remove_file(wheels.join(name)).unwrap();
    }
    let (outcome, log) = p.ensure("3", &interp, &pip);
    outcome.unwrap_or_else(|e| panic!("{e}"));
    assert!(
        log.contains(&format!(
            "cached wheels in {} are incomplete; rebuilding them",
            wheels.display()
        )),
        "{log:?}"
    );
    assert_eq!(run_in_env(&env, VERSIONS), "1.16.0 3.7 False");
}

/// `step` is where the installer meets the index: pip while building wheels, uv at install.
#[test]
fn wheels_cached_for_another_environment_are_not_fetched_again() {
    let interp = common::python();
    let pip = common::pip(&interp);
    let p = project();
    let (first, _) = p.ensure("1", &interp, &pip);
    first.unwrap_or_else(|e| panic!("{e}"));

    // New requirements bytes, so a new key and a new wheel directory, but the same packages:
    // with the index down, they can only come from the first environment's wheels.
    p.write("requirements/base.txt", "six==1.16.0  # still six\n");
    let (files, key) = p.key(&interp, &pip);
    let release = p.upload("2");
    let host = HostWithEnv::index_down();
    let outcome = ensure_env(
        &host,
        &p.root,
        &key,
        &release,
        &files,
        &interp,
        &pip,
        &mut |_| {},
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert!(!outcome.reused);
    assert_eq!(run_in_env(&outcome.path, VERSIONS), "1.16.0 3.7 False");
    assert!(wheel_names(&p.wheels(&key))
        .iter()
        .any(|w| w.starts_with("six-1.16.0-")));

    // And the index really is down for that host: a package no wheel directory has fails.
    p.write("requirements/base.txt", "six==1.15.0\n");
    let (files, key) = p.key(&interp, &pip);
    let release = p.upload("3");
    let err = ensure_env(
        &host,
        &p.root,
        &key,
        &release,
        &files,
        &interp,
        &pip,
        &mut |_| {},
    )
    .unwrap_err();
    assert!(err.to_string().contains("six==1.15.0"), "{err}");
}

fn assert_uninstallable_fails_cleanly(installer_of: fn(&Interpreter) -> Installer, step: &str) {
    let interp = common::python();
    let installer = installer_of(&interp);
    let p = Project::new(&[(
        "requirements.txt",
        "six==1.16.0\nthis-package-does-not-exist-hoist==1.0\n",
    )]);
    let (_, key) = p.key(&interp, &installer);
    let (outcome, _) = p.ensure("1", &interp, &installer);
    let message = outcome.unwrap_err().to_string();
    let env = p.env(&key);
    assert!(
        message.starts_with(&format!(
            "local: {step} failed for {} (requirements: requirements.txt):\n",
            env.display()
        )),
        "{message}"
    );
    assert!(
        message.contains("this-package-does-not-exist-hoist"),
        "{message}"
    );
    assert!(
        message.contains("\nhint: fix or remove the requirement named above in requirements.txt"),
        "{message}"
    );
    assert!(!env.exists(), "the half-built env must be removed");
    // Nothing half-built is left to be trusted by the next deploy.
    assert!(!p.wheels(&key).join(COMPLETE_MARK).exists());
}

#[test]
fn an_uninstallable_requirement_fails_clearly_with_pip() {
    assert_uninstallable_fails_cleanly(common::pip, "building wheels (pip wheel)");
}

#[test]
fn an_uninstallable_requirement_fails_clearly_with_uv() {
    assert_uninstallable_fails_cleanly(common::uv, "installing requirements (uv pip install)");
}

#[test]
fn the_release_must_hold_the_requirements_the_key_was_made_from() {
    let interp = common::python();
    let uv = common::uv(&interp);
    let p = project();
    let (files, key) = p.key(&interp, &uv);
    let release = p.upload("1");
    std::fs::write(release.join("requirements/base.txt"), "six==1.15.0\n").unwrap();
    let local = Local::default();
    let err = ensure_env(
        &local,
        &p.root,
        &key,
        &release,
        &files,
        &interp,
        &uv,
        &mut |_| {},
    )
    .unwrap_err();
    assert!(
        err.to_string().starts_with(&format!(
            "local: the requirements files in {} give dependency key ",
            release.display()
        )),
        "{err}"
    );
    std::fs::remove_file(release.join("constraints.txt")).unwrap();
    let err = ensure_env(
        &local,
        &p.root,
        &key,
        &release,
        &files,
        &interp,
        &uv,
        &mut |_| {},
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "local: requirements file {} is missing from the release; check that it is not \
             excluded from the upload",
            release.join("constraints.txt").display()
        )
    );
    assert!(
        !p.root.join("envs").exists(),
        "nothing may be built for a mismatched release"
    );
}

/// A requirement published only as a source distribution (a setup.py project, no
/// pyproject.toml), installed with pip into a venv of Debian's own python3, whose fresh venv has
/// no `wheel` package. Offline: the sdist comes from a local directory, and the build's
/// setuptools and wheel from the wheels Debian ships (scripts/install-deps installs them).
#[test]
fn pip_builds_an_sdist_only_requirement_with_debians_python3() {
    let debian_wheels = Path::new("/usr/share/python-wheels");
    for wheel in ["setuptools-", "wheel-"] {
        assert!(
            std::fs::read_dir(debian_wheels).is_ok_and(|d| d
                .flatten()
                .any(|e| e.file_name().to_string_lossy().starts_with(wheel))),
            "{}: no {wheel}*.whl; run scripts/install-deps (apt-get install python3-setuptools-whl \
             python3-wheel-whl)",
            debian_wheels.display()
        );
    }
    let interp = hoist_pyenv::probe_interpreter(&Local::default(), "/usr/bin/python3")
        .expect("Debian's /usr/bin/python3 (run scripts/install-deps)");
    let pip = common::pip(&interp);

    // The sdist, packed by hand as `python -m build --sdist` would: setup.py and PKG-INFO.
    let dists = tempfile::tempdir().unwrap();
    let tree = dists.path().join("hoist_demo_sdist-1.0");
    std::fs::create_dir_all(&tree).unwrap();
    std::fs::write(
        tree.join("setup.py"),
        "from setuptools import setup\n\nsetup(name=\"hoist-demo-sdist\", version=\"1.0\", \
         py_modules=[\"hoist_demo_sdist\"])\n",
    )
    .unwrap();
    std::fs::write(tree.join("hoist_demo_sdist.py"), "VALUE = 42\n").unwrap();
    std::fs::write(
        tree.join("PKG-INFO"),
        "Metadata-Version: 2.1\nName: hoist-demo-sdist\nVersion: 1.0\n",
    )
    .unwrap();
    let packed = std::process::Command::new("tar")
        .arg("-czf")
        .arg(dists.path().join("hoist_demo_sdist-1.0.tar.gz"))
        .arg("-C")
        .arg(dists.path())
        .arg("hoist_demo_sdist-1.0")
        .status()
        .unwrap();
    assert!(packed.success(), "tar");

    let p = Project::new(&[("app.py", "import hoist_demo_sdist\n")]);
    p.write(
        "requirements.txt",
        &format!(
            "--no-index\n--find-links {}\n--find-links {}\nhoist-demo-sdist==1.0\n",
            dists.path().display(),
            debian_wheels.display()
        ),
    );
    let (outcome, log) = p.ensure("1", &interp, &pip);
    let env = outcome
        .unwrap_or_else(|e| panic!("{e}\nlog:\n{}", log.join("\n")))
        .path;
    assert_eq!(
        common::run_in_env(
            &env,
            "import hoist_demo_sdist; print(hoist_demo_sdist.VALUE)"
        ),
        "42"
    );
}

/// `module:factory()` means what gunicorn and hoist's loader make of it: the factory is called,
/// and a factory that raises fails the check, so the deploy stops before the switch.
#[test]
fn a_factory_entry_is_called_by_the_import_check() {
    let interp = common::python();
    let uv = common::uv(&interp);
    let p = project();
    p.write(
        "factory.py",
        concat!(
            "def create_app(config=None):\n",
            "    def app(environ, start_response):\n",
            "        return []\n",
            "    return app\n\n",
            "def create_broken_app():\n",
            "    raise RuntimeError('DATABASE_URL is not set')\n\n",
            "def create_nothing():\n",
            "    return None\n",
        ),
    );
    let (outcome, _) = p.ensure("1", &interp, &uv);
    let env = outcome.unwrap_or_else(|e| panic!("{e}")).path;
    let release = p.root.join("releases/1");
    let local = Local::default();

    check_entry_imports(&local, &env, &release, &[], "factory", "create_app()")
        .unwrap_or_else(|e| panic!("a factory that builds an app passes: {e}"));

    let message = check_entry_imports(
        &local,
        &env,
        &release,
        &[],
        "factory",
        "create_broken_app()",
    )
    .unwrap_err()
    .to_string();
    assert!(
        message.contains("cannot import factory:create_broken_app()"),
        "{message}"
    );
    assert!(
        message.contains("RuntimeError: DATABASE_URL is not set"),
        "{message}"
    );

    let message = check_entry_imports(&local, &env, &release, &[], "factory", "create_nothing()")
        .unwrap_err()
        .to_string();
    assert!(
        message.contains(
            "TypeError: factory:create_nothing() returned None, not a WSGI/ASGI application"
        ),
        "{message}"
    );

    // Without the parentheses the server would call the factory with (environ, start_response)
    // on every request: the check says so before the switch.
    let message = check_entry_imports(&local, &env, &release, &[], "factory", "create_broken_app")
        .unwrap_err()
        .to_string();
    assert!(
        message.contains(
            "TypeError: factory:create_broken_app is a function create_broken_app(), which cannot \
             serve requests (a WSGI app takes environ, start_response); if it builds the app, \
             write entry = \"factory:create_broken_app()\""
        ),
        "{message}"
    );
}

/// Which entry points can serve: a plain function is read from its code (the check then
/// imports no `inspect`, ~30 ms of an interpreter's start), anything else as
/// `inspect.signature` sees it. Both say the same of the same shapes.
#[test]
fn a_function_entry_serves_when_it_takes_two_or_three_arguments() {
    let interp = common::python();
    let uv = common::uv(&interp);
    let p = project();
    p.write(
        "shapes.py",
        concat!(
            "import functools\n",
            "def two(environ, start_response): return []\n",
            "def three(scope, receive, send): pass\n",
            "def one(environ): return []\n",
            "def four(a, b, c, d): return []\n",
            "def defaults(a, b=1, c=2, d=3): return []\n",
            "def star(*args): return []\n",
            "def one_and_star(a, *rest): return []\n",
            "def keyword_needed(a, b, *, c): return []\n",
            "def keyword_optional(a, b, *, c=1): return []\n",
            "def positional_only(a, b, /): return []\n",
            "@functools.wraps(one)\n",
            "def wraps_one(*args): return []\n",
            "lam = lambda environ, start_response: []\n",
            "class App:\n",
            "    def __call__(self, environ, start_response): return []\n",
            "    def method(self, environ, start_response): return []\n",
            "    def lone(self, environ): return []\n",
            "instance = App()\n",
            "bound = instance.method\n",
            "bound_lone = instance.lone\n",
        ),
    );
    let (outcome, _) = p.ensure("1", &interp, &uv);
    let env = outcome.unwrap_or_else(|e| panic!("{e}")).path;
    let release = p.root.join("releases/1");
    let local = Local::default();
    let serves = |attribute: &str| {
        check_entry_imports(&local, &env, &release, &[], "shapes", attribute).map_err(|e| {
            let message = e.to_string();
            assert!(message.contains("which cannot serve requests"), "{message}");
        })
    };
    for attribute in [
        "two",
        "three",
        "defaults",
        "star",
        "one_and_star",
        "keyword_optional",
        "positional_only",
        "lam",
        "instance",
        "bound",
    ] {
        assert!(serves(attribute).is_ok(), "{attribute} serves");
    }
    for attribute in ["one", "four", "keyword_needed", "wraps_one", "bound_lone"] {
        assert!(serves(attribute).is_err(), "{attribute} cannot serve");
    }
}

#[test]
fn the_entry_point_must_import_from_the_release() {
    let interp = common::python();
    let uv = common::uv(&interp);
    let p = project();
    p.write("broken.py", "def application(:\n    pass\n");
    let (outcome, _) = p.ensure("1", &interp, &uv);
    let env = outcome.unwrap_or_else(|e| panic!("{e}")).path;
    let release = p.root.join("releases/1");
    let local = Local::default();

    // `app` exists only in the release directory: it is found because cwd is first on the path.
    check_entry_imports(&local, &env, &release, &[], "app", "application").unwrap();
    assert!(
        !release.join("__pycache__").exists(),
        "the check must not write into the release"
    );

    let err = check_entry_imports(&local, &env, &release, &[], "app", "app").unwrap_err();
    let message = err.to_string();
    assert!(
        message.starts_with(&format!(
            "local: the release at {} cannot import app:app with {}:\n",
            release.display(),
            env.join("bin/python").display()
        )),
        "{message}"
    );
    assert!(
        message.contains("AttributeError: module 'app' has no attribute 'app'\n"),
        "{message}"
    );
    assert!(message.ends_with(
        "hint: fix the error above in the application, or the entry point in hoist.toml"
    ));

    let err =
        check_entry_imports(&local, &env, &release, &[], "broken", "application").unwrap_err();
    let message = err.to_string();
    assert!(message.contains("broken.py\", line 1"), "{message}");
    assert!(message.contains("SyntaxError"), "{message}");

    let err = check_entry_imports(
        &local,
        &p.root.join("envs/none"),
        &release,
        &[],
        "app",
        "application",
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "local: {} has no bin/python; build the environment (redeploy) before checking imports",
            p.root.join("envs/none").display()
        )
    );
}

#[test]
fn environments_no_release_uses_are_listed_for_pruning() {
    let p = Project::new(&[]);
    for dir in [
        "envs/aaa",
        "envs/bbb",
        "envs/ccc",
        "wheels/aaa",
        "wheels/bbb",
        "wheels/uv",
    ] {
        std::fs::create_dir_all(p.root.join(dir)).unwrap();
    }
    std::fs::write(p.root.join("envs/.mark.hoist-tmp-1"), "").unwrap();
    let in_use: BTreeSet<String> = ["bbb".to_string()].into();
    let local = Local::default();
    assert_eq!(
        unused_envs(&local, &p.root, &in_use).unwrap(),
        vec![p.root.join("envs/aaa"), p.root.join("envs/ccc")]
    );
    assert_eq!(
        unused_wheel_dirs(&local, &p.root, &in_use).unwrap(),
        vec![p.root.join("wheels/aaa")]
    );
    assert_eq!(
        unused_envs(&local, &p.root.join("nothing-here"), &in_use).unwrap(),
        Vec::<PathBuf>::new()
    );
}

fn wheel_names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".whl"))
        .collect();
    names.sort();
    names
}

/// `requirements = []` (an app with no third-party packages) gets a bare environment with
/// either installer, instead of an error about a missing requirements.txt.
#[test]
fn no_requirements_files_build_a_bare_environment() {
    let p = Project::new(&[("app.py", "application = object()\n")]);
    let interp = common::python();
    for (name, installer) in [("pip", common::pip(&interp)), ("uv", common::uv(&interp))] {
        let key = hoist_pyenv::dep_key(
            &p.source,
            &Dependencies::files(Vec::new()),
            &interp,
            &installer,
        )
        .unwrap();
        let release = p.upload(&format!("bare-{name}"));
        let env = hoist_pyenv::ensure_env(
            &Local::default(),
            &p.root,
            &key,
            &release,
            &Dependencies::files(Vec::new()),
            &interp,
            &installer,
            &mut |_| {},
        )
        .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(run_in_env(&env.path, "print('bare')"), "bare");
    }
}
