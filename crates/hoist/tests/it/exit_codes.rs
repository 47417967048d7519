//! README's exit-code table, one row at a time, on one site: each code is what a script can
//! rely on, and what the user reads with it is a reviewed snapshot (`snapshots/exit-*.snap`).
//! `--quiet` runs show exactly what stays: the error, or the result line.

use std::fs;
use std::process::Command;

use crate::support::*;
use crate::user_sees;

#[test]
fn every_exit_code_of_the_table_with_what_the_user_reads() {
    let site = Site::with(SiteOptions {
        extra_hooks: "[[hook]]\nname = \"gate\"\nrun = \"echo gate checked; test ! -e \\\"$HOIST_ROOT/../closed\\\"\"\n"
            .into(),
        // Long enough that a loaded machine still sees the 500s confirmed (fail fast), not a
        // timeout: the message must not depend on the machine's speed.
        health_timeout: "30s",
        ..SiteOptions::default()
    });

    // 0: deployed; --quiet leaves the result line alone.
    let out = site.hoist(&["--quiet", "deploy"]);
    assert_exit(&out, EXIT_OK);
    user_sees!("exit-0-deployed-quietly", out);
    let a = site.current().unwrap();

    // 2: no hoist.toml anywhere.
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_hoist"))
        .arg("status")
        .current_dir(dir.path())
        .env_remove("HOIST_CONFIG")
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    assert_exit(&out, EXIT_CONFIG);
    user_sees!("exit-2-no-config", out);

    // 3: a hook fails before the switch. Its output is shown as it comes, prefixed by the
    // host, and the error, printed once, ends with the end of it (all `--quiet` shows).
    fs::write(site.dir.path().join("closed"), "").unwrap();
    site.change_code("gate closed");
    let out = site.hoist(&["deploy"]);
    assert_exit(&out, EXIT_BEFORE_SWITCH);
    let err = stderr(&out);
    assert!(
        err.contains("local  hook  | gate checked\nlocal  FAILED hook\n"),
        "{err}"
    );
    assert_eq!(err.matches("error: ").count(), 1, "{err}");
    assert!(
        err.contains("error: local: pre-switch hook \"gate\" exited 1: gate checked\n"),
        "{err}"
    );
    let out = site.hoist(&["--quiet", "deploy"]);
    assert_exit(&out, EXIT_BEFORE_SWITCH);
    user_sees!("exit-3-hook-failed", out);
    fs::remove_file(site.dir.path().join("closed")).unwrap();
    site.assert_live(&a);

    // 5: a lock taken by hand says who took it and why.
    assert_exit(
        &site.hoist(&["lock", "acquire", "-m", "database maintenance"]),
        EXIT_OK,
    );
    let out = site.hoist(&["--quiet", "deploy"]);
    assert_exit(&out, EXIT_LOCK_HELD);
    user_sees!("exit-5-locked-by-hand", out);
    let out = site.hoist(&["status"]);
    assert_exit(&out, EXIT_OK);
    user_sees!("status-locked-by-hand", out);
    assert_exit(&site.hoist(&["lock", "release"]), EXIT_OK);

    // 4 and 6: a release that answers 500 is switched back, or, as asked, left as it is.
    let app = site.project.join("app.py");
    let text = fs::read_to_string(&app).unwrap();
    fs::write(
        &app,
        format!("{text}\n\n@app.before_request\ndef _broken():\n    return ('broken', 500)\n"),
    )
    .unwrap();
    site.commit("broken");
    let out = site.hoist(&["--quiet", "deploy"]);
    assert_exit(&out, EXIT_ROLLED_BACK);
    user_sees!("exit-4-switched-back", out);
    site.assert_live(&a);
    let out = site.hoist(&["--quiet", "deploy", "--no-rollback-on-failure"]);
    assert_exit(&out, EXIT_LEFT_AS_IS);
    user_sees!("exit-6-left-as-is", out);
    assert_ne!(site.current().as_deref(), Some(a.as_str()));
    fs::write(&app, text).unwrap();
    site.commit("fixed");
    site.deploy_ok();
    let out = site.hoist(&["releases"]);
    assert_exit(&out, EXIT_OK);
    user_sees!("releases-after-a-failure-and-a-fix", out);

    // 8: a check that fails; the config itself is valid.
    let config = fs::read_to_string(&site.config).unwrap();
    fs::write(
        &site.config,
        config.replace(
            "entry = \"app:app\"",
            "entry = \"app:app\"\npython = \"python3.99\"",
        ),
    )
    .unwrap();
    let out = site.hoist(&["check"]);
    assert_exit(&out, EXIT_CHECK_FAILED);
    assert!(
        stdout(&out).contains("local  FAILED python:"),
        "{}",
        stdout(&out)
    );
    user_sees!("exit-8-check-failed", out);
    fs::write(&site.config, config).unwrap();
}
