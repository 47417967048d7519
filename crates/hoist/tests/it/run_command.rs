//! `hoist run -- COMMAND...`: a one-off command in the live release, with its environment.

use std::io::Write;
use std::process::Stdio;

use crate::support::*;

#[test]
fn a_command_runs_in_the_live_release_with_its_venv_and_env() {
    let site = Site::with(SiteOptions {
        extra_hooks: "\n[env]\nAPP_MODE = \"production\"\n".into(),
        ..SiteOptions::default()
    });

    // Nothing live yet: nothing to run in.
    let out = site.hoist(&["run", "--", "true"]);
    assert_exit(&out, EXIT_CONFIG);
    assert!(
        stderr(&out).contains("nothing is deployed at"),
        "{}",
        stderr(&out)
    );

    let id = site.deploy_ok();
    let out = site.hoist(&[
        "run",
        "--",
        "python",
        "-c",
        "import os, sys; print(os.getcwd(), sys.prefix, os.environ['HOIST_RELEASE_ID'], os.environ['APP_MODE'])",
    ]);
    assert_exit(&out, EXIT_OK);
    let release = site.release_dir(&id);
    assert_eq!(
        stdout(&out).trim(),
        format!(
            "{} {} {id} production",
            release.display(),
            release.join(".venv").display()
        )
    );

    // The command's own exit status, and its arguments as given (no shell in between).
    let out = site.hoist(&[
        "run",
        "--",
        "bash",
        "-c",
        "echo \"$1\" >&2; exit 7",
        "-",
        "a b; $(x)",
    ]);
    assert_eq!(out.status.code(), Some(7));
    assert_eq!(stderr(&out), "a b; $(x)\n");

    // Piped input reaches the command.
    let mut child = site
        .command(&["run", "--", "python", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"print(6 * 7)\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert_exit(&out, EXIT_OK);
    assert_eq!(stdout(&out), "42\n");
}
