//! The dep-key: same inputs, same key; any input that decides the environment changes it.

mod common;

use std::path::PathBuf;

use common::Project;
use hoist_pyenv::{dep_key, DepKey, Dependencies, Installer, Interpreter};

fn interp(version: &str) -> Interpreter {
    Interpreter {
        command: "python3".into(),
        executable: "/usr/bin/python3".into(),
        version: version.into(),
        platform: "cpython-linux-x86_64".into(),
    }
}

fn pip(version: &str) -> Installer {
    Installer::Pip {
        version: version.into(),
    }
}

fn project() -> Project {
    Project::new(&[
        ("requirements.txt", "-r base.txt\nsix==1.16.0\n"),
        ("base.txt", "idna==3.7\n"),
    ])
}

fn key_of(p: &Project, interp: &Interpreter, installer: &Installer) -> DepKey {
    p.key(interp, installer).1
}

#[test]
fn the_same_inputs_give_the_same_key_everywhere() {
    let (a, b) = (project(), project());
    let key = key_of(&a, &interp("3.11.7"), &pip("23.2.1"));
    // Two checkouts in different directories: only relative paths and bytes count.
    assert_eq!(key, key_of(&b, &interp("3.11.7"), &pip("23.2.1")));
    // Pinned: a change here renames (and so rebuilds) every environment on every server.
    assert_eq!(key.to_string(), "77d0ad64753a96ff4ec3f60d");
    assert_eq!(key.as_str().len(), 24);
    // Where the interpreter lives and what it is called on the host do not decide the env.
    let elsewhere = Interpreter {
        command: "python3.11".into(),
        executable: "/opt/python/bin/python3.11".into(),
        ..interp("3.11.7")
    };
    assert_eq!(key, key_of(&a, &elsewhere, &pip("23.2.1")));
}

#[test]
fn changing_any_input_changes_the_key() {
    let p = project();
    let base = key_of(&p, &interp("3.11.7"), &pip("23.2.1"));

    assert_ne!(
        base,
        key_of(&p, &interp("3.11.8"), &pip("23.2.1")),
        "interpreter version"
    );
    let arm = Interpreter {
        platform: "cpython-linux-aarch64".into(),
        ..interp("3.11.7")
    };
    assert_ne!(base, key_of(&p, &arm, &pip("23.2.1")), "platform");
    assert_ne!(
        base,
        key_of(&p, &interp("3.11.7"), &pip("24.0")),
        "installer version"
    );
    let uv = Installer::Uv {
        version: "23.2.1".into(),
    };
    assert_ne!(base, key_of(&p, &interp("3.11.7"), &uv), "installer name");

    // The bytes of an included file, not only of the root.
    p.write("base.txt", "idna==3.6\n");
    let changed = key_of(&p, &interp("3.11.7"), &pip("23.2.1"));
    assert_ne!(base, changed, "included file bytes");
    p.write("base.txt", "idna==3.7\n");
    assert_eq!(
        base,
        key_of(&p, &interp("3.11.7"), &pip("23.2.1")),
        "restored"
    );

    // The same bytes under another name are another set of files.
    p.write("requirements.txt", "-r common.txt\nsix==1.16.0\n");
    p.write("common.txt", "idna==3.7\n");
    assert_ne!(
        base,
        key_of(&p, &interp("3.11.7"), &pip("23.2.1")),
        "file name"
    );
}

#[test]
fn a_file_that_vanished_is_an_error_naming_it() {
    let p = project();
    let err = dep_key(
        &p.source,
        &Dependencies::files(vec![PathBuf::from("gone.txt")]),
        &interp("3.11.7"),
        &pip("23.2.1"),
    )
    .unwrap_err();
    assert!(
        err.to_string().starts_with(&format!(
            "requirements file {} not found",
            p.source.join("gone.txt").display()
        )),
        "{err}"
    );
}
