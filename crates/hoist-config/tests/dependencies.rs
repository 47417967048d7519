//! `[app] dependencies`, `extras` and `groups`: where the environment's packages are declared.

mod support;

use std::path::PathBuf;

use hoist_config::DependencyFormat;
use support::{Project, MINIMAL};

fn with_app_keys(keys: &str) -> String {
    MINIMAL.replacen(
        "entry = \"app:app\"\n",
        &format!("entry = \"app:app\"\n{keys}"),
        1,
    )
}

#[test]
fn requirements_files_are_the_default() {
    let project = Project::new();
    project.file("requirements.txt", "flask\n");
    let config = project.config(MINIMAL);
    assert_eq!(config.app.dependencies, DependencyFormat::Requirements);
    assert_eq!(config.app.requirements, [PathBuf::from("requirements.txt")]);
    assert!(config.app.extras.is_empty() && config.app.groups.is_empty());
}

#[test]
fn a_uv_lock_with_extras_and_groups() {
    let project = Project::new();
    project
        .file("pyproject.toml", "[project]\nname = \"x\"\n")
        .file("uv.lock", "version = 1\n")
        // Present but not used: the lock says what is installed.
        .file("requirements.txt", "flask\n");
    let config = project.config(&with_app_keys(
        "dependencies = \"uv.lock\"\nextras = [\"pg\"]\ngroups = [\"prod\"]\n",
    ));
    assert_eq!(config.app.dependencies, DependencyFormat::UvLock);
    assert_eq!(config.app.requirements, Vec::<PathBuf>::new());
    assert_eq!(config.app.extras, ["pg"]);
    assert_eq!(config.app.groups, ["prod"]);
}

#[test]
fn poetry_lock_and_a_bare_pyproject_are_accepted() {
    let project = Project::new();
    project
        .file("pyproject.toml", "[project]\nname = \"x\"\n")
        .file("poetry.lock", "");
    let poetry = project.config(&with_app_keys("dependencies = \"poetry.lock\"\n"));
    assert_eq!(poetry.app.dependencies, DependencyFormat::PoetryLock);
    let bare = project.config(&with_app_keys("dependencies = \"pyproject.toml\"\n"));
    assert_eq!(bare.app.dependencies, DependencyFormat::Pyproject);
}

#[test]
fn pdm_lock_goes_with_pyproject_and_pipfile_lock_with_its_pipfile() {
    let project = Project::new();
    project
        .file("pyproject.toml", "[project]\nname = \"x\"\n")
        .file("pdm.lock", "")
        .file("Pipfile.lock", "{}");
    let pdm = project.config(&with_app_keys("dependencies = \"pdm.lock\"\n"));
    assert_eq!(pdm.app.dependencies, DependencyFormat::PdmLock);
    let error = project.error(&with_app_keys("dependencies = \"Pipfile.lock\"\n"));
    assert!(
        error.to_string().ends_with(&format!(
            "Pipfile does not exist in {}",
            project.path().display()
        )),
        "{error}"
    );
    project.file("Pipfile", "[packages]\n");
    let pipenv = project.config(&with_app_keys("dependencies = \"Pipfile.lock\"\n"));
    assert_eq!(pipenv.app.dependencies, DependencyFormat::PipfileLock);
}

#[test]
fn an_unknown_format_suggests_the_closest() {
    let project = Project::new();
    let error = project.error(&with_app_keys("dependencies = \"uv.lok\"\n"));
    assert_eq!(
        error.to_string().replacen(
            &project.config_path().display().to_string(),
            "hoist.toml",
            1
        ),
        "hoist.toml:4:16: unknown dependencies \"uv.lok\"; expected one of requirements, \
         uv.lock, poetry.lock, pdm.lock, Pipfile.lock, pyproject.toml"
    );
    assert_eq!(error.hint.as_deref(), Some("did you mean \"uv.lock\"?"));
}

#[test]
fn a_missing_lock_file_is_named_with_the_fix() {
    let project = Project::new();
    project.file("pyproject.toml", "[project]\nname = \"x\"\n");
    let error = project.error(&with_app_keys("dependencies = \"uv.lock\"\n"));
    assert_eq!(
        error.to_string().replacen(
            &project.config_path().display().to_string(),
            "hoist.toml",
            1
        ),
        format!(
            "hoist.toml:4:16: uv.lock does not exist in {}",
            project.path().display()
        )
    );
    assert_eq!(
        error.hint.as_deref(),
        Some("commit the file, or change `dependencies`")
    );
}

#[test]
fn requirements_and_a_lock_together_are_refused() {
    let project = Project::new();
    project
        .file("pyproject.toml", "")
        .file("uv.lock", "")
        .file("requirements.txt", "");
    let message = project.message(&with_app_keys(
        "dependencies = \"uv.lock\"\nrequirements = [\"requirements.txt\"]\n",
    ));
    assert_eq!(
        message,
        "hoist.toml:4:16: `dependencies = \"uv.lock\"` and `requirements` both say where the \
         packages come from"
    );
}
