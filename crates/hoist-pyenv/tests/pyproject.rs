//! Environments for projects without requirements files: `uv.lock`, `poetry.lock` and a bare
//! `pyproject.toml`, built with the real uv and pip from the lock files in `tests/fixtures/`.

mod common;

use std::path::{Path, PathBuf};

use common::{run_in_env, Project};
use hoist_pyenv::{
    check_entry_imports, dep_key, ensure_env, read_dependencies, Dependencies, DependencySource,
    EnvOutcome, Installer, Interpreter, Selection, EXPORTED_REQUIREMENTS,
};
use hoist_transport::Local;

const UV_PYPROJECT: &str = include_str!("fixtures/uv-shop/pyproject.toml");
const UV_LOCK: &str = include_str!("fixtures/uv-shop/uv.lock");
const SHOP: &str = include_str!("fixtures/uv-shop/shop/__init__.py");
const POETRY_PYPROJECT: &str = include_str!("fixtures/poetry-shop/pyproject.toml");
const POETRY_LOCK: &str = include_str!("fixtures/poetry-shop/poetry.lock");

/// A uv project that is a package (`shop`, built by hatchling), locked with `six` as its one
/// dependency, `idna` behind the extra `idna` and `iniconfig` in the `dev` group.
fn uv_project() -> Project {
    Project::new(&[
        ("pyproject.toml", UV_PYPROJECT),
        ("uv.lock", UV_LOCK),
        ("shop/__init__.py", SHOP),
    ])
}

/// What is importable in an environment (run outside any release): six's version, and
/// whether idna, iniconfig and the project itself can be found.
const WHAT_IS_INSTALLED: &str = "import importlib.util as u, six; \
    print(six.__version__, *(u.find_spec(m) is not None for m in ('idna', 'iniconfig', 'shop')))";

struct Built {
    deps: Dependencies,
    outcome: EnvOutcome,
    log: Vec<String>,
    release: PathBuf,
}

fn build(
    p: &Project,
    release: &str,
    source: &DependencySource,
    interp: &Interpreter,
    installer: &Installer,
) -> Built {
    let deps = read_dependencies(&p.source, source).unwrap_or_else(|e| panic!("{e}"));
    let key = dep_key(&p.source, &deps, interp, installer).unwrap();
    let release = p.upload(release);
    let mut log = Vec::new();
    let outcome = ensure_env(
        &Local::default(),
        &p.root,
        &key,
        &release,
        &deps,
        interp,
        installer,
        &mut |line| log.push(line.to_string()),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    Built {
        deps,
        outcome,
        log,
        release,
    }
}

/// Every `.pth` file in the environment, with its contents.
fn pth_files(env: &Path) -> Vec<(PathBuf, String)> {
    let mut found = Vec::new();
    let lib = env.join("lib");
    for python in std::fs::read_dir(&lib).unwrap() {
        let site = python.unwrap().path().join("site-packages");
        for entry in std::fs::read_dir(&site).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "pth") {
                let text = std::fs::read_to_string(&path).unwrap();
                found.push((path, text));
            }
        }
    }
    found
}

fn assert_uv_lock_env(installer_of: fn(&Interpreter) -> Installer) {
    let interp = common::python();
    let installer = installer_of(&interp);
    let p = uv_project();
    let source = DependencySource::UvLock(Selection::default());
    let first = build(&p, "1", &source, &interp, &installer);
    assert!(!first.outcome.reused);
    assert_eq!(
        first.deps.files,
        [PathBuf::from("pyproject.toml"), PathBuf::from("uv.lock")]
    );

    // The main dependencies at their locked versions; no dev group, no extra, no project.
    assert_eq!(
        run_in_env(&first.outcome.path, WHAT_IS_INSTALLED),
        "1.16.0 False False False"
    );
    let exported = std::fs::read_to_string(first.outcome.path.join(EXPORTED_REQUIREMENTS)).unwrap();
    assert!(
        exported.starts_with("six==1.16.0 \\\n    --hash=sha256:"),
        "{exported}"
    );
    assert!(!exported.contains("-e"), "{exported}");
    // Nothing in the shared environment points into a release.
    for (path, text) in pth_files(&first.outcome.path) {
        assert!(
            !text.contains(p.root.join("releases").to_str().unwrap()),
            "{} points into a release: {text}",
            path.display()
        );
    }
    // The project itself is imported from the release directory.
    check_entry_imports(
        &Local::default(),
        &first.outcome.path,
        &first.release,
        &[],
        "shop",
        "application",
    )
    .unwrap_or_else(|e| panic!("{e}"));

    // A code-only deploy: same pyproject.toml and uv.lock, the same environment, reused.
    p.write("shop/__init__.py", &format!("{SHOP}\nVERSION = 2\n"));
    let second = build(&p, "2", &source, &interp, &installer);
    assert!(second.outcome.reused, "{:?}", second.log);
    assert_eq!(second.outcome.path, first.outcome.path);
    assert_eq!(second.log.len(), 1, "{:?}", second.log);

    // Choosing the extra is another environment, with idna in it.
    let with_idna = DependencySource::UvLock(Selection {
        extras: vec!["idna".into()],
        groups: Vec::new(),
    });
    let third = build(&p, "3", &with_idna, &interp, &installer);
    assert!(!third.outcome.reused);
    assert_ne!(third.outcome.path, first.outcome.path);
    assert_eq!(
        run_in_env(&third.outcome.path, WHAT_IS_INSTALLED),
        "1.16.0 True False False"
    );
}

#[test]
fn a_uv_lock_is_installed_with_uv_without_dev_group_or_the_project() {
    assert_uv_lock_env(common::uv);
}

#[test]
fn a_uv_lock_is_installed_with_pip_through_the_wheel_cache() {
    assert_uv_lock_env(common::pip);
}

#[test]
fn a_uv_lock_out_of_date_with_pyproject_is_refused_with_the_fix() {
    let p = uv_project();
    p.write(
        "pyproject.toml",
        &UV_PYPROJECT.replace("[\"six==1.16.0\"]", "[\"six==1.16.0\", \"idna==3.7\"]"),
    );
    let err = read_dependencies(&p.source, &DependencySource::UvLock(Selection::default()))
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with(&format!(
            "{}: `uv export --locked` failed:\n",
            p.source.join("uv.lock").display()
        )),
        "{err}"
    );
    assert!(
        err.contains("needs to be updated, but `--locked` was provided"),
        "{err}"
    );
    assert!(
        err.ends_with(
            "hint: when uv.lock is out of date with pyproject.toml, run `uv lock` and commit \
             uv.lock; an extra or group that pyproject.toml does not define is removed from \
             `extras`/`groups` in hoist.toml"
        ),
        "{err}"
    );
}

#[test]
fn uv_lock_groups_are_chosen_by_name_the_dev_group_too() {
    let p = uv_project();
    let export = |groups: &[&str]| {
        let selection = Selection {
            extras: Vec::new(),
            groups: groups.iter().map(|g| (*g).to_string()).collect(),
        };
        read_dependencies(&p.source, &DependencySource::UvLock(selection))
            .unwrap_or_else(|e| panic!("{e}"))
            .export
            .unwrap()
            .requirements
    };
    assert!(!export(&[]).contains("iniconfig"));
    assert!(export(&["dev"]).contains("iniconfig==2.0.0 \\\n"));
    let err = read_dependencies(
        &p.source,
        &DependencySource::UvLock(Selection {
            extras: vec!["pg".into()],
            groups: Vec::new(),
        }),
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("Extra `pg` is not defined in the `optional-dependencies` table for `shop`"),
        "{err}"
    );
}

#[test]
fn an_editable_project_in_requirements_is_refused_naming_the_line() {
    // What `uv export --no-dev -o requirements.txt` writes for a project that is a package.
    let p = Project::new(&[
        ("requirements.txt", "-e .\nsix==1.16.0\n"),
        ("pyproject.toml", UV_PYPROJECT),
    ]);
    let err = read_dependencies(
        &p.source,
        &DependencySource::Requirements(vec![PathBuf::from("requirements.txt")]),
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.starts_with(
            "requirements.txt:1: `-e .` installs a project editable into the environment that \
             every release with these requirements shares"
        ),
        "{err}"
    );
    assert!(
        err.contains("hint: remove the line (the release directory is on the app's import path)"),
        "{err}"
    );
}

#[test]
fn a_pyproject_without_lock_installs_its_dependencies_and_warns() {
    let interp = common::python();
    let installer = common::uv(&interp);
    let p = Project::new(&[("pyproject.toml", UV_PYPROJECT), ("shop/__init__.py", SHOP)]);
    let source = DependencySource::Pyproject(Selection {
        extras: Vec::new(),
        groups: vec!["dev".into()],
    });
    let built = build(&p, "1", &source, &interp, &installer);
    assert_eq!(
        run_in_env(&built.outcome.path, WHAT_IS_INSTALLED),
        "1.16.0 False True False"
    );
    assert_eq!(
        built.deps.warnings,
        [
            "pyproject.toml has no lock file, so two deploys of the same commit can \
         install different versions; for a reproducible environment run `uv lock`, commit \
         uv.lock and set `dependencies = \"uv.lock\"` in hoist.toml"
        ]
    );
}

#[test]
fn a_poetry_lock_is_installed_by_its_hashes_without_poetry() {
    let interp = common::python();
    let installer = common::pip(&interp);
    let p = Project::new(&[
        ("pyproject.toml", POETRY_PYPROJECT),
        ("poetry.lock", POETRY_LOCK),
        ("shop/__init__.py", SHOP),
    ]);
    let main_only = build(
        &p,
        "1",
        &DependencySource::PoetryLock(Selection::default()),
        &interp,
        &installer,
    );
    assert_eq!(
        run_in_env(&main_only.outcome.path, WHAT_IS_INSTALLED),
        "1.16.0 False False False"
    );
    let everything = build(
        &p,
        "2",
        &DependencySource::PoetryLock(Selection {
            extras: vec!["idna".into()],
            groups: vec!["dev".into()],
        }),
        &interp,
        &installer,
    );
    assert_eq!(
        run_in_env(&everything.outcome.path, WHAT_IS_INSTALLED),
        "1.16.0 True True False"
    );

    // A lock whose hash no longer matches what the index serves is refused by pip.
    p.write(
        "poetry.lock",
        &POETRY_LOCK
            .replace(
                "8abb2f1d86890a2dfb989f9a77cfcfd3e47c2a354b01111771326f8aa26e0254",
                "0000000000000000000000000000000000000000000000000000000000000000",
            )
            .replace(
                "1e61c37477a1626458e36f7b1d82aa5c9b094fa4802892072e49de9c60c4c926",
                "1111111111111111111111111111111111111111111111111111111111111111",
            ),
    );
    let deps = read_dependencies(
        &p.source,
        &DependencySource::PoetryLock(Selection::default()),
    )
    .unwrap();
    let key = dep_key(&p.source, &deps, &interp, &installer).unwrap();
    let release = p.upload("3");
    let err = ensure_env(
        &Local::default(),
        &p.root,
        &key,
        &release,
        &deps,
        &interp,
        &installer,
        &mut |_| {},
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains(" failed for ") && err.contains("(requirements: poetry.lock (exported)):\n"),
        "{err}"
    );
    assert!(err.contains("DO NOT MATCH THE HASHES"), "{err}");
    assert!(!p.env(&key).exists(), "a failed build must be removed");
}

const PDM_PYPROJECT: &str = include_str!("fixtures/pdm-shop/pyproject.toml");
const PDM_LOCK: &str = include_str!("fixtures/pdm-shop/pdm.lock");
const PIPFILE: &str = include_str!("fixtures/pipenv-shop/Pipfile");
const PIPFILE_LOCK: &str = include_str!("fixtures/pipenv-shop/Pipfile.lock");

#[test]
fn a_pdm_lock_is_installed_by_its_hashes_without_pdm() {
    let interp = common::python();
    let installer = common::pip(&interp);
    let p = Project::new(&[
        ("pyproject.toml", PDM_PYPROJECT),
        ("pdm.lock", PDM_LOCK),
        ("shop/__init__.py", SHOP),
    ]);
    let source = DependencySource::PdmLock(Selection::default());
    let main_only = build(&p, "1", &source, &interp, &installer);
    assert_eq!(
        main_only.deps.files,
        [PathBuf::from("pyproject.toml"), PathBuf::from("pdm.lock")]
    );
    assert_eq!(
        run_in_env(&main_only.outcome.path, WHAT_IS_INSTALLED),
        "1.16.0 False False False"
    );
    let installed =
        std::fs::read_to_string(main_only.outcome.path.join(EXPORTED_REQUIREMENTS)).unwrap();
    assert!(
        installed.starts_with("six==1.16.0 \\\n    --hash=sha256:"),
        "{installed}"
    );

    // The same lock again: the same environment, no Python work.
    let again = build(&p, "2", &source, &interp, &installer);
    assert!(again.outcome.reused);
    assert_eq!(again.outcome.path, main_only.outcome.path);

    // Extras and groups are groups of the lock.
    let everything = build(
        &p,
        "3",
        &DependencySource::PdmLock(Selection {
            extras: vec!["idna".into()],
            groups: vec!["dev".into()],
        }),
        &interp,
        &installer,
    );
    assert_eq!(
        run_in_env(&everything.outcome.path, WHAT_IS_INSTALLED),
        "1.16.0 True True False"
    );

    // A changed lock is another environment.
    p.write(
        "pdm.lock",
        &PDM_LOCK.replace("lock_version = \"4.5.0\"", "lock_version = \"4.5.1\""),
    );
    let relocked = build(&p, "4", &source, &interp, &installer);
    assert_ne!(relocked.outcome.path, main_only.outcome.path);
}

#[test]
fn a_pipfile_lock_is_installed_by_its_hashes_without_pipenv() {
    let interp = common::python();
    let installer = common::pip(&interp);
    let p = Project::new(&[
        ("Pipfile", PIPFILE),
        ("Pipfile.lock", PIPFILE_LOCK),
        ("shop/__init__.py", SHOP),
    ]);
    let source = DependencySource::PipfileLock(Selection::default());
    let default = build(&p, "1", &source, &interp, &installer);
    assert_eq!(
        default.deps.files,
        [PathBuf::from("Pipfile"), PathBuf::from("Pipfile.lock")]
    );
    assert_eq!(
        run_in_env(&default.outcome.path, WHAT_IS_INSTALLED),
        "1.16.0 False False False"
    );
    let with_dev = build(
        &p,
        "2",
        &DependencySource::PipfileLock(Selection {
            extras: vec![],
            groups: vec!["dev".into()],
        }),
        &interp,
        &installer,
    );
    assert_eq!(
        run_in_env(&with_dev.outcome.path, WHAT_IS_INSTALLED),
        "1.16.0 False True False"
    );

    // A lock whose hashes are not what the index serves is refused by pip.
    p.write(
        "Pipfile.lock",
        &PIPFILE_LOCK
            .replace(
                "8abb2f1d86890a2dfb989f9a77cfcfd3e47c2a354b01111771326f8aa26e0254",
                "0000000000000000000000000000000000000000000000000000000000000000",
            )
            .replace(
                "1e61c37477a1626458e36f7b1d82aa5c9b094fa4802892072e49de9c60c4c926",
                "1111111111111111111111111111111111111111111111111111111111111111",
            ),
    );
    let deps = read_dependencies(&p.source, &source).unwrap();
    let key = dep_key(&p.source, &deps, &interp, &installer).unwrap();
    let release = p.upload("3");
    let err = ensure_env(
        &Local::default(),
        &p.root,
        &key,
        &release,
        &deps,
        &interp,
        &installer,
        &mut |_| {},
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("(requirements: Pipfile.lock (exported)):\n"),
        "{err}"
    );
    assert!(err.contains("DO NOT MATCH THE HASHES"), "{err}");
}
