//! Kill hoist (SIGKILL, via the test-only HOIST_FAIL_AT failure points) at every step of a
//! deploy and of a rollback (each step that leaves a state of its own:
//! `support::SAME_PHASE_POINTS` says which points share one). Afterwards invariants 1, 3, 4 and 7 hold, and the next deploy
//! succeeds without any manual repair.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

use crate::support::*;
use serde_json::Value;

fn releases_json(site: &Site) -> Vec<Value> {
    let out = site.hoist(&["releases", "--json"]);
    assert_exit(&out, EXIT_OK);
    serde_json::from_str::<Value>(&stdout(&out))
        .unwrap()
        .as_array()
        .unwrap()
        .clone()
}

/// Invariants 1, 3 and 4 after a kill; returns the live release.
fn assert_invariants(site: &Site, point: &str, good_before: &BTreeSet<String>) -> String {
    assert_invariants_in(site, point, good_before, &releases_json(site))
}

/// [`assert_invariants`] with `rows`, what `hoist releases --json` says after the kill (a walk
/// reads it once for these checks and its own).
fn assert_invariants_in(
    site: &Site,
    point: &str,
    good_before: &BTreeSet<String>,
    rows: &[Value],
) -> String {
    // 1: current resolves to a complete, verified release.
    let current = site
        .current()
        .unwrap_or_else(|| panic!("{point}: current is gone"));
    let dir = site.release_dir(&current);
    assert!(
        dir.join("RELEASE.json").exists(),
        "{point}: current {current} has no RELEASE.json"
    );
    assert!(
        dir.join(".venv/.hoist-complete").exists(),
        "{point}: current {current} has no complete environment"
    );
    assert!(
        dir.join("app.py").exists(),
        "{point}: current {current} is not a whole release"
    );
    // Its entry point imports with its own environment.
    let import = std::process::Command::new(dir.join(".venv/bin/python"))
        .args(["-c", "import app; app.app"])
        .current_dir(&dir)
        .output()
        .unwrap();
    assert!(
        import.status.success(),
        "{point}: current {current}'s entry point does not import: {}",
        String::from_utf8_lossy(&import.stderr)
    );

    // 3: the rollback target is never current, and is a good release on disk.
    for row in rows {
        if row["rollback_target"] == true {
            assert_ne!(row["id"], current.as_str(), "{point}: target is current");
            assert_eq!(row["state"], "good", "{point}: target {row}");
            assert!(site.release_dir(row["id"].as_str().unwrap()).exists());
        }
    }
    // 4: no release that was good before the kill has lost its directory unless it was
    // legitimately pruned (the newest good ones are always kept with keep_releases = 5).
    for id in good_before {
        assert!(
            site.release_dir(id).exists()
                || site.journal_events_of(id).contains(&"pruned".to_string()),
            "{point}: good release {id} vanished"
        );
    }
    current
}

fn good_releases(site: &Site) -> BTreeSet<String> {
    good_in(&releases_json(site))
}

fn good_in(rows: &[Value]) -> BTreeSet<String> {
    rows.iter()
        .filter(|r| r["state"] == "good")
        .map(|r| r["id"].as_str().unwrap().to_string())
        .collect()
}

fn killed(out: &std::process::Output) -> bool {
    use std::os::unix::process::ExitStatusExt;
    out.status.signal() == Some(9)
}

#[test]
fn killing_a_deploy_at_any_step_breaks_nothing_and_the_next_deploy_just_works() {
    let site = Site::new();
    kill_every_deploy_step(&site);
}

/// The same kills with the host reached over SSH (the test sshd on loopback): the killed
/// controller's connection drops mid-step, and the next deploy over a new one repairs nothing
/// by hand.
#[test]
fn killing_a_deploy_over_ssh_at_any_step_breaks_nothing() {
    let site = Site::new();
    let _sshd = over_ssh(&site);
    kill_every_deploy_step(&site);
}

#[test]
fn killing_a_rollback_over_ssh_at_any_step_breaks_nothing() {
    let site = Site::new();
    let _sshd = over_ssh(&site);
    kill_every_rollback_step(&site);
}

/// Makes the site's only target the host `web1`, reached over SSH through a test sshd, with the
/// same root on disk (so the checks below read it directly).
fn over_ssh(site: &Site) -> hoist_testkit::SshServer {
    let server = hoist_testkit::SshServer::start();
    let mut text = std::fs::read_to_string(&site.config).unwrap();
    text.push_str(&format!(
        "\n[ssh]\nconfig_file = \"{}\"\n\n[hosts.web1]\naddress = \"web1\"\nroot = \"{}\"\n\n[environments.production]\nhosts = [\"web1\"]\n",
        server.client_config.display(),
        site.root.display()
    ));
    std::fs::write(&site.config, text).unwrap();
    server
}

fn kill_every_deploy_step(site: &Site) {
    site.deploy_ok();
    for (i, point) in kill_walk_points("deploy:").iter().enumerate() {
        site.change_code(&format!("before {point}"));
        let before = releases_json(site);
        let good = good_in(&before);
        let live_before = site.current().unwrap();
        let target_before = rollback_target_in(&before);
        let out = site.hoist_env(&["deploy"], &[("HOIST_FAIL_AT", point)]);
        assert!(
            killed(&out),
            "{point}: hoist was not killed: {}",
            stderr(&out)
        );
        let after = releases_json(site);
        let current = assert_invariants_in(site, point, &good, &after);
        // The next rollback goes to the last release known good: the live one's target while
        // the live one is still current, the live one itself once the killed deploy switched.
        let expected = if current == live_before {
            target_before
        } else {
            Some(live_before)
        };
        assert_eq!(
            rollback_target_in(&after),
            expected,
            "{point}: rollback target"
        );

        // 7: the lock is left behind by the dead process, reported as stale, and reclaimed.
        if *point != "deploy:pruned" || site.lock_exists() {
            let status = site.hoist(&["status"]);
            assert!(
                stdout(&status).contains("[stale: that process is gone"),
                "{point}: {}",
                stdout(&status)
            );
        }
        site.change_code(&format!("after {point}"));
        let out = site.hoist(&["deploy"]);
        assert_exit(&out, EXIT_OK);
        assert!(
            stderr(&out).contains("reclaiming a stale lock"),
            "{point}: {}",
            stderr(&out)
        );
        let live = site.current().unwrap();
        site.assert_live(&live);
        assert!(
            !site.lock_exists(),
            "{point}: lock left after a good deploy"
        );
        // No release is left "unfinished" after the next deploy has run.
        assert!(
            releases_json(site)
                .iter()
                .all(|r| r["state"] != "unfinished" && r["state"] != "prepared"),
            "{point} (#{i}): {:?}",
            releases_json(site)
        );
        assert!(
            !Path::new(&site.root.join("releases"))
                .read_dir()
                .unwrap()
                .any(|e| e
                    .unwrap()
                    .file_name()
                    .to_string_lossy()
                    .starts_with(".pruning-")),
            "{point}: a half-pruned release was left behind"
        );
    }
}

#[test]
fn killing_a_rollback_at_any_step_breaks_nothing() {
    let site = Site::new();
    kill_every_rollback_step(&site);
}

fn kill_every_rollback_step(site: &Site) {
    site.deploy_ok();
    for point in &kill_walk_points("rollback:") {
        site.change_code(&format!("for {point}"));
        let left = site.deploy_ok();
        let good = good_releases(site);
        let out = site.hoist_env(&["rollback"], &[("HOIST_FAIL_AT", point)]);
        assert!(
            killed(&out),
            "{point}: hoist was not killed: {}",
            stderr(&out)
        );
        let after = releases_json(site);
        let current = assert_invariants_in(site, point, &good, &after);
        // Once switched away from, the release left is bad and never the next target.
        let next = rollback_target_in(&after);
        if current != left {
            assert_eq!(state_in(&after, &left), "bad", "{point}");
            assert_ne!(next.as_deref(), Some(left.as_str()), "{point}");
        }

        let out = site.hoist(&["rollback"]);
        assert_exit(&out, EXIT_OK);
        site.assert_live(&site.current().unwrap());
        assert_eq!(
            site.current(),
            next,
            "{point}: the next rollback went elsewhere"
        );
        site.change_code(&format!("after {point}"));
        site.deploy_ok();
        site.assert_live(&site.current().unwrap());
    }
}

fn rollback_target_of(site: &Site) -> Option<String> {
    rollback_target_in(&releases_json(site))
}

fn rollback_target_in(rows: &[Value]) -> Option<String> {
    rows.iter()
        .find(|r| r["rollback_target"] == true)
        .map(|r| r["id"].as_str().unwrap().to_string())
}

fn state_of(site: &Site, id: &str) -> String {
    state_in(&releases_json(site), id)
}

fn state_in(rows: &[Value], id: &str) -> String {
    rows.iter()
        .find(|r| r["id"] == id)
        .map(|r| r["state"].as_str().unwrap().to_string())
        .unwrap_or_default()
}

#[test]
fn a_rollback_killed_after_its_switch_is_known_and_the_next_rollback_skips_the_release_it_left() {
    let site = Site::new();
    let a = site.deploy_ok();
    site.change_code("b");
    let b = site.deploy_ok();

    let out = site.hoist_env(&["rollback"], &[("HOIST_FAIL_AT", "rollback:switched")]);
    assert!(killed(&out), "hoist was not killed: {}", stderr(&out));
    assert_eq!(site.current().as_deref(), Some(a.as_str()));
    // The switch happened: b was rolled away from, so it is bad, at once.
    assert_eq!(state_of(&site, &b), "bad");

    site.change_code("c");
    let out = site.hoist(&["deploy"]);
    assert_exit(&out, EXIT_OK);
    assert!(
        stderr(&out).contains(&format!(
            "a rollback from {b} to {a} was interrupted after its switch: {b} is marked bad"
        )),
        "{}",
        stderr(&out)
    );
    assert!(
        site.journal_events_of(&b)
            .contains(&"rollback_interrupted".to_string())
            || site
                .journal()
                .iter()
                .any(|e| e["event"] == "rollback_interrupted" && e["from"] == b.as_str())
    );
    let c = site.current().unwrap();
    assert_eq!(rollback_target_of(&site).as_deref(), Some(a.as_str()));

    let out = site.hoist(&["rollback"]);
    assert_exit(&out, EXIT_OK);
    site.assert_live(&a);
    assert_ne!(c, a);
}

#[test]
fn a_rollback_to_a_release_whose_environment_is_gone_switches_nothing_and_says_how_to_rebuild() {
    let site = Site::new();
    let a = site.deploy_ok();
    let commit_a = site.release_json(&a)["commit"]
        .as_str()
        .unwrap()
        .to_string();
    site.add_requirement("# a comment is enough for a new environment");
    let b = site.deploy_ok();
    let env_of = |id: &str| std::fs::read_link(site.release_dir(id).join(".venv")).unwrap();
    assert_ne!(env_of(&a), env_of(&b), "the test needs two environments");
    let env_a = site.release_dir(&a).join(env_of(&a));
    std::fs::remove_dir_all(&env_a).unwrap();

    let out = site.hoist(&["rollback"]);
    assert_exit(&out, EXIT_BEFORE_SWITCH);
    let err = stderr(&out);
    assert!(
        err.contains(&format!(
            "error: local: cannot roll back to {a}: its environment "
        )) && err.contains("is gone or incomplete (no .hoist-complete mark)"),
        "{err}"
    );
    assert!(
        err.contains(&format!(
            "hint: to rebuild it, deploy that commit again: hoist deploy --ref {commit_a}"
        )),
        "{err}"
    );
    site.assert_live(&b);
    assert_eq!(state_of(&site, &b), "good");
    assert!(!site.lock_exists());
}

#[test]
fn a_rollback_to_a_release_whose_interpreter_does_not_run_switches_nothing_and_says_why() {
    let site = Site::new();
    let a = site.deploy_ok();
    site.add_requirement("# a comment is enough for a new environment");
    let b = site.deploy_ok();
    let venv = site.release_dir(&a).join(".venv");
    let python = site
        .release_dir(&a)
        .join(std::fs::read_link(&venv).unwrap())
        .join("bin/python");
    // Its environment is complete (marked), but its interpreter is gone bad (a base Python
    // upgraded away under it).
    std::fs::remove_file(&python).unwrap();
    std::fs::write(
        &python,
        "#!/bin/sh\necho 'libpython3.11.so: cannot open' >&2\nexit 127\n",
    )
    .unwrap();
    std::fs::set_permissions(&python, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();

    let out = site.hoist(&["rollback"]);
    assert_exit(&out, EXIT_BEFORE_SWITCH);
    let err = stderr(&out);
    assert!(
        err.contains(&format!(
            "error: local: cannot roll back to {a}: its interpreter {} does not run: \
             libpython3.11.so: cannot open",
            venv.join("bin/python").display()
        )),
        "{err}"
    );
    site.assert_live(&b);
    assert!(!site.lock_exists());
}

/// A release whose `.venv` is not the link to a shared environment hoist made: a file is no
/// environment (nothing switched); a real virtualenv directory is one, and serves.
#[test]
fn a_rollback_takes_a_venv_directory_as_the_environment_and_refuses_a_venv_file() {
    let site = Site::new();
    let a = site.deploy_ok();
    site.change_code("b");
    let b = site.deploy_ok();
    let venv = site.release_dir(&a).join(".venv");
    let env = site
        .release_dir(&a)
        .join(std::fs::read_link(&venv).unwrap());
    std::fs::remove_file(&venv).unwrap();
    std::fs::write(&venv, "not an environment").unwrap();

    let out = site.hoist(&["rollback"]);
    assert_exit(&out, EXIT_BEFORE_SWITCH);
    let err = stderr(&out);
    assert!(
        err.contains(&format!(
            "error: local: cannot roll back to {a}: it has no environment ({} is missing)",
            venv.display()
        )),
        "{err}"
    );
    site.assert_live(&b);

    std::fs::remove_file(&venv).unwrap();
    let copied = Command::new("cp")
        .arg("-a")
        .arg(&env)
        .arg(&venv)
        .status()
        .unwrap();
    assert!(copied.success());
    let out = site.hoist(&["rollback"]);
    assert_exit(&out, EXIT_OK);
    site.assert_live(&a);
}

/// Makes `/health` answer 500 in the app code `app_py` (a release that cannot serve).
fn break_health(app_py: &Path) {
    let text = std::fs::read_to_string(app_py).unwrap();
    // A new inode: the file may be hard-linked into other releases.
    std::fs::remove_file(app_py).unwrap();
    std::fs::write(
        app_py,
        format!("{text}\n\n@app.before_request\ndef _broken():\n    return ('broken', 500)\n"),
    )
    .unwrap();
}

#[test]
fn a_deploy_killed_while_switching_back_leaves_the_old_release_live_and_the_new_one_unused() {
    let site = Site::with(SiteOptions {
        health_timeout: "3s",
        ..SiteOptions::default()
    });
    let a = site.deploy_ok();
    site.change_code("b");
    let b = site.deploy_ok();
    let good = good_releases(&site);
    break_health(&site.project.join("app.py"));
    site.commit("break /health at runtime");

    let point = "deploy:switched-back";
    let out = site.hoist_env(&["deploy"], &[("HOIST_FAIL_AT", point)]);
    assert!(killed(&out), "hoist was not killed: {}", stderr(&out));
    let current = assert_invariants(&site, point, &good);
    assert_eq!(current, b);
    assert_eq!(rollback_target_of(&site).as_deref(), Some(a.as_str()));

    site.git(&["revert", "--no-edit", "HEAD"]);
    let c = site.deploy_ok();
    site.assert_live(&c);
    assert_eq!(rollback_target_of(&site).as_deref(), Some(b.as_str()));
    assert!(!site.lock_exists());
}

#[test]
fn a_rollback_killed_while_switching_back_never_picks_its_unhealthy_target_again() {
    let site = Site::with(SiteOptions {
        health_timeout: "10s",
        ..SiteOptions::default()
    });
    let z = site.deploy_ok();
    site.change_code("a");
    let a = site.deploy_ok();
    site.change_code("b");
    let b = site.deploy_ok();
    // `a` cannot serve any more: the rollback to it fails its health check and switches back.
    break_health(&site.release_dir(&a).join("app.py"));
    let good = good_releases(&site);

    let point = "rollback:switched-back";
    let out = site.hoist_env(&["rollback"], &[("HOIST_FAIL_AT", point)]);
    assert!(killed(&out), "hoist was not killed: {}", stderr(&out));
    let current = assert_invariants(&site, point, &good);
    assert_eq!(current, b);
    assert_eq!(state_of(&site, &a), "bad");
    assert_eq!(rollback_target_of(&site).as_deref(), Some(z.as_str()));

    let out = site.hoist(&["rollback"]);
    assert_exit(&out, EXIT_OK);
    site.assert_live(&z);
}

#[test]
fn pruning_an_environment_renames_it_aside_first_so_a_kill_never_leaves_it_trusted() {
    let site = Site::with(SiteOptions {
        keep_releases: 2,
        ..SiteOptions::default()
    });
    let z = site.deploy_ok();
    let old_env = std::fs::read_link(site.release_dir(&z).join(".venv")).unwrap();
    let old_env_name = old_env.file_name().unwrap().to_string_lossy().into_owned();
    site.add_requirement("# a comment is enough for a new environment");
    site.deploy_ok();
    // A deploy keeps the live release's rollback target whichever way it ends: z goes (with its
    // environment) once it is no longer that.
    site.change_code("z is no longer the rollback target after this one");
    site.deploy_ok();
    site.change_code("prunes z and its environment");

    let point = "deploy:pruning-env";
    let good = BTreeSet::new();
    let out = site.hoist_env(&["deploy"], &[("HOIST_FAIL_AT", point)]);
    assert!(killed(&out), "hoist was not killed: {}", stderr(&out));
    assert_invariants(&site, point, &good);
    let envs = site.root.join("envs");
    assert!(
        !envs.join(&old_env_name).exists(),
        "the environment being pruned still has its name"
    );
    assert!(envs.join(format!(".pruning-{old_env_name}")).exists());

    site.change_code("after the kill");
    let live = site.deploy_ok();
    site.assert_live(&live);
    assert!(
        !envs.read_dir().unwrap().any(|e| e
            .unwrap()
            .file_name()
            .to_string_lossy()
            .starts_with(".pruning-")),
        "a half-pruned environment was left behind"
    );
}

/// A fleet of three hosts over SSH (three roots, three gunicorns, one test sshd): hoist killed
/// at every step of a deploy leaves each host on a complete release whose entry point imports,
/// and the next deploy brings all three to one new release.
#[test]
fn killing_a_fleet_deploy_over_ssh_at_any_step_breaks_nothing() {
    let site = Site::new();
    let server = hoist_testkit::SshServer::start();
    let hosts: Vec<(String, std::path::PathBuf, u16)> = (1..=3)
        .map(|i| {
            let root = site.dir.path().join(format!("root-web{i}"));
            (format!("web{i}"), root, free_port())
        })
        .collect();
    let mut text = std::fs::read_to_string(&site.config).unwrap();
    let health_start = text.find("[health]").unwrap();
    text.truncate(health_start);
    let restart = text
        .lines()
        .find(|l| l.starts_with("command = \"HOIST_PORT="))
        .unwrap()
        .to_string();
    text = text.replace(
        &restart,
        "command = \"HOIST_PORT=$HOIST_VAR_PORT bin/restart-web\"",
    );
    text.push_str(
        "[health]\ncommand = \"curl -fsS http://127.0.0.1:$HOIST_VAR_PORT/health\"\ntimeout = \"20s\"\ninterval = \"100ms\"\n",
    );
    text.push_str(&format!(
        "\n[ssh]\nconfig_file = \"{}\"\n",
        server.client_config.display()
    ));
    for (name, root, port) in &hosts {
        text.push_str(&format!(
            "\n[hosts.{name}]\naddress = \"{name}\"\nroot = \"{}\"\ngroups = [\"web\"]\nvars = {{ PORT = \"{port}\" }}\n",
            root.display()
        ));
    }
    text.push_str("\n[environments.production]\ngroups = [\"web\"]\n");
    std::fs::write(&site.config, text).unwrap();
    let stop_all = || {
        for (_, root, _) in &hosts {
            let _ = std::process::Command::new(example_dir().join("bin/stop-web"))
                .env("HOIST_ROOT", root)
                .env("HOIST_STOP_TIMEOUT", "10")
                .output();
        }
    };
    struct StopOnDrop<F: Fn()>(F);
    impl<F: Fn()> Drop for StopOnDrop<F> {
        fn drop(&mut self) {
            (self.0)();
        }
    }
    let _stop = StopOnDrop(stop_all);

    let current_of = |root: &Path| -> Option<String> {
        let target = std::fs::read_link(root.join("current")).ok()?;
        Some(target.file_name()?.to_string_lossy().into_owned())
    };
    let out = site.hoist(&["deploy"]);
    assert_exit(&out, EXIT_OK);
    for point in kill_walk_points("deploy:") {
        site.change_code(&format!("fleet before {point}"));
        let out = site.hoist_env(&["deploy"], &[("HOIST_FAIL_AT", point)]);
        assert!(
            killed(&out),
            "{point}: hoist was not killed: {}",
            stderr(&out)
        );
        for (name, root, _) in &hosts {
            let current =
                current_of(root).unwrap_or_else(|| panic!("{point}: {name} lost current"));
            let dir = root.join("releases").join(&current);
            assert!(
                dir.join(".venv/.hoist-complete").exists() && dir.join("RELEASE.json").exists(),
                "{point}: {name}'s current {current} is not a complete release"
            );
            let import = std::process::Command::new(dir.join(".venv/bin/python"))
                .args(["-c", "import app; app.app"])
                .current_dir(&dir)
                .output()
                .unwrap();
            assert!(
                import.status.success(),
                "{point}: {name}'s current does not import: {}",
                String::from_utf8_lossy(&import.stderr)
            );
        }
        site.change_code(&format!("fleet after {point}"));
        let out = site.hoist(&["deploy"]);
        assert_exit(&out, EXIT_OK);
        let live: Vec<Option<String>> = hosts.iter().map(|(_, root, _)| current_of(root)).collect();
        assert!(
            live.iter().all(|c| c.is_some() && *c == live[0]),
            "{point}: the hosts disagree after the next deploy: {live:?}"
        );
        for (name, root, port) in &hosts {
            assert!(
                !root.join(".hoist/lock").exists(),
                "{point}: {name} kept a lock"
            );
            let body = http_get(*port, "/version").unwrap_or_default();
            assert!(
                body.contains(live[0].as_deref().unwrap()),
                "{point}: {name} serves {body}"
            );
        }
    }
}

/// The repairs at the start of a deploy (closing a release a killed deploy left unfinished) are
/// themselves killed: the next deploy closes what is still open, once, and goes on.
#[test]
fn a_deploy_killed_right_after_its_repairs_leaves_them_done_or_to_do_again() {
    let site = Site::new();
    let a = site.deploy_ok();
    site.change_code("left unfinished");
    let out = site.hoist_env(&["deploy"], &[("HOIST_FAIL_AT", "deploy:prepared")]);
    assert!(killed(&out), "{}", stderr(&out));
    let unfinished: Vec<String> = releases_json(&site)
        .iter()
        .filter(|r| r["state"] == "prepared" || r["state"] == "unfinished")
        .map(|r| r["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(unfinished.len(), 1, "{:?}", releases_json(&site));

    site.change_code("killed after repairing");
    let out = site.hoist_env(&["deploy"], &[("HOIST_FAIL_AT", "deploy:repaired")]);
    assert!(killed(&out), "{}", stderr(&out));
    let good = good_releases(&site);
    assert_eq!(assert_invariants(&site, "deploy:repaired", &good), a);
    assert_eq!(state_of(&site, &unfinished[0]), "failed");

    site.change_code("after the repairs");
    let b = site.deploy_ok();
    site.assert_live(&b);
    let closes = site
        .journal()
        .iter()
        .filter(|e| e["event"] == "deploy_failed" && e["release"] == unfinished[0].as_str())
        .count();
    assert_eq!(closes, 1, "the unfinished release was closed once");
    assert_eq!(rollback_target_of(&site).as_deref(), Some(a.as_str()));
}

/// Pruning is off the deploy's critical path: it runs beside the preparation, not after the
/// switch. A deploy held before its switch (at `deploy:uploaded`, test-only) has already pruned
/// the release it may remove, while the live release still serves; an engine that pruned after
/// its switch could never do that, and the wait below would run out. The live release's
/// rollback target when the deploy began is kept through it, whichever way it ends.
#[test]
fn a_deploy_prunes_while_it_prepares_not_after_its_switch() {
    use std::process::Stdio;
    use std::time::{Duration, Instant};

    let site = Site::with(SiteOptions {
        keep_releases: 2,
        ..SiteOptions::default()
    });
    let a = site.deploy_ok();
    site.change_code("b");
    let b = site.deploy_ok();
    site.change_code("c");
    let c = site.deploy_ok();
    assert!(
        site.release_dir(&a).exists(),
        "a was the rollback target of b, the live release while c was deployed"
    );

    site.change_code("d");
    let hold = site.dir.path().join("hold-before-switch");
    std::fs::write(&hold, "held").unwrap();
    let child = site
        .command(&["deploy"])
        .env("HOIST_HOLD_AT", "deploy:uploaded")
        .env("HOIST_HOLD_FILE", &hold)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut child = child;
    let deadline = Instant::now() + Duration::from_secs(60);
    let pruned = |id: &str| {
        site.journal_events_of(id).contains(&"pruned".to_string())
            && !site.release_dir(id).exists()
            && !site.root.join("releases").read_dir().unwrap().any(|e| {
                e.unwrap()
                    .file_name()
                    .to_string_lossy()
                    .starts_with(".pruning-")
            })
    };
    while !pruned(&a) {
        assert!(
            child.try_wait().unwrap().is_none(),
            "the deploy ended while it was held before its switch"
        );
        assert!(
            Instant::now() < deadline,
            "{a} was not pruned while the deploy was held before its switch: pruning waits for the deploy"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // Still before the switch: c serves, the lock is held, b (c's rollback target) is there.
    site.assert_live(&c);
    assert!(
        site.lock_exists(),
        "the deploy holds its lock while it prunes"
    );
    assert!(site.release_dir(&b).exists());

    std::fs::remove_file(&hold).unwrap();
    let out = child.wait_with_output().unwrap();
    assert_exit(&out, EXIT_OK);
    let d = site.current().unwrap();
    site.assert_live(&d);
    assert!(!site.lock_exists());
    let mut left = vec![b.clone(), c.clone(), d.clone()];
    left.sort();
    assert_eq!(site.release_ids(), left);

    // The next deploy prunes b, which is no longer anybody's rollback target (c, d's, stays).
    site.change_code("e");
    let e = site.deploy_ok();
    let mut left = vec![c, d, e];
    left.sort();
    assert_eq!(site.release_ids(), left);
}
