//! Which files decide an environment: roots and `-r`/`-c` includes.

mod common;

use std::path::PathBuf;

use common::Project;
use hoist_pyenv::requirement_files;

fn paths(list: &[&str]) -> Vec<PathBuf> {
    list.iter().map(PathBuf::from).collect()
}

#[test]
fn nested_requirement_and_constraint_includes_are_followed_once_in_order() {
    let p = Project::new(&[
        (
            "requirements.txt",
            "-r requirements/base.txt\n-c constraints.txt\nflask\n-r requirements/base.txt\n",
        ),
        // Relative to the including file, not to the project.
        ("requirements/base.txt", "--requirement=common.txt\nsix\n"),
        (
            "requirements/common.txt",
            "-c ../constraints.txt  # pins\nidna\n-r base.txt\n",
        ),
        ("constraints.txt", "idna==3.7\n"),
        ("unrelated.txt", "requests\n"),
    ]);
    let files = requirement_files(&p.source, &paths(&["requirements.txt"])).unwrap();
    assert_eq!(
        files,
        paths(&[
            "requirements.txt",
            "requirements/base.txt",
            "requirements/common.txt",
            "constraints.txt",
        ])
    );
}

#[test]
fn several_roots_share_their_includes() {
    let p = Project::new(&[
        ("requirements.txt", "-r base.txt\n"),
        ("requirements-dev.txt", "-r requirements.txt\npytest\n"),
        ("base.txt", "six\n"),
    ]);
    let roots = vec![
        PathBuf::from("requirements.txt"),
        p.source.join("requirements-dev.txt"),
    ];
    let files = requirement_files(&p.source, &roots).unwrap();
    assert_eq!(
        files,
        paths(&["requirements.txt", "base.txt", "requirements-dev.txt"])
    );
}

#[test]
fn a_missing_include_names_the_file_and_the_line_that_included_it() {
    let p = Project::new(&[
        ("requirements.txt", "-r requirements/base.txt\n"),
        ("requirements/base.txt", "six\n-c pins.txt\n"),
    ]);
    let err = requirement_files(&p.source, &paths(&["requirements.txt"])).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "requirements file {} not found (included from requirements/base.txt:2); \
             create it or fix the include",
            p.source.join("requirements/pins.txt").display()
        )
    );
}

#[test]
fn a_missing_root_points_at_the_configuration() {
    let p = Project::new(&[]);
    let err = requirement_files(&p.source, &paths(&["requirements.txt"])).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "requirements file {} not found; create it or fix the requirements list in hoist.toml",
            p.source.join("requirements.txt").display()
        )
    );
}

#[test]
fn includes_that_cannot_be_hashed_or_uploaded_are_refused() {
    let p = Project::new(&[("requirements.txt", "six\n-r ../../outside.txt\n")]);
    let err = requirement_files(&p.source, &paths(&["requirements.txt"])).unwrap_err();
    assert_eq!(
        err.to_string(),
        "requirements.txt:2: include of ../../outside.txt leaves the project; keep every \
         requirements file inside the project so it is uploaded with the release"
    );

    p.write(
        "requirements.txt",
        "-c https://example.org/constraints.txt\n",
    );
    let err = requirement_files(&p.source, &paths(&["requirements.txt"])).unwrap_err();
    assert_eq!(
        err.to_string(),
        "requirements.txt:1: include of a URL (https://example.org/constraints.txt); hoist \
         hashes every file that decides the environment, so copy it into the project"
    );

    let err = requirement_files(&p.source, &paths(&["/etc/hostname"])).unwrap_err();
    assert!(
        err.to_string()
            .starts_with("requirements file /etc/hostname is outside the project"),
        "{err}"
    );
}
