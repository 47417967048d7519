//! A release holds exactly its source and nothing of the release's tree reaches outside the
//! root: driven through the `hoist` binary, locally and over a real sshd on 127.0.0.1.
//!
//! - An edit is served even when size and mtime say "unchanged" (same-second same-size edits,
//!   every mtime normalised with `touch -d @1700000000`), and `--ref` deploys hard-link what
//!   did not change.
//! - A `shared` path whose parent in the app's tree is a symlink is refused before the switch
//!   (exit 3) and the files the symlink points to survive byte for byte.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::support::*;
use hoist_testkit::SshServer;

/// `touch -h -d @1700000000` on every file, folder and symlink of the tree (as `git archive`,
/// reproducible builds and artifact pipelines leave a tree).
fn normalise_mtimes(dir: &Path) {
    let out = Command::new("find")
        .arg(dir)
        .args(["-exec", "touch", "-h", "-d", "@1700000000", "{}", "+"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Replaces the `shared = [...]` line of a hoist.toml.
fn set_shared(config: &Path, shared: &str) {
    let text = fs::read_to_string(config).unwrap();
    let line = text
        .lines()
        .find(|l| l.starts_with("shared = "))
        .expect("the config has a shared line")
        .to_string();
    fs::write(config, text.replace(&line, &format!("shared = {shared}"))).unwrap();
}

/// Files outside every root that a symlink of the app's tree points to.
struct Outside {
    dir: tempfile::TempDir,
}

impl Outside {
    fn new() -> Outside {
        let dir = tempfile::Builder::new()
            .prefix("hoist-outside-")
            .tempdir()
            .unwrap();
        fs::create_dir_all(dir.path().join("data")).unwrap();
        fs::write(dir.path().join("data/keep.db"), "precious rows\n").unwrap();
        fs::write(dir.path().join("settings.toml"), "greeting = \"mine\"\n").unwrap();
        Outside { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn assert_intact(&self) {
        let d = self.path();
        assert!(
            fs::symlink_metadata(d.join("data")).unwrap().is_dir(),
            "{}/data was replaced",
            d.display()
        );
        assert_eq!(
            fs::read_to_string(d.join("data/keep.db")).unwrap(),
            "precious rows\n"
        );
        assert!(fs::symlink_metadata(d.join("settings.toml"))
            .unwrap()
            .is_file());
        assert_eq!(
            fs::read_to_string(d.join("settings.toml")).unwrap(),
            "greeting = \"mine\"\n"
        );
        assert_eq!(fs::read_dir(d).unwrap().count(), 2, "{:?}", snapshot(d));
    }
}

fn assert_refused(out: &Output, shared: &str, symlink: &str) {
    assert_exit(out, EXIT_BEFORE_SWITCH);
    let err = stderr(out);
    assert!(
        err.contains(&format!("shared path \"{shared}\""))
            && err.contains(&format!("{symlink} is a symlink")),
        "the refusal names the shared path and the symlink:\n{err}"
    );
    assert!(err.contains("hint:"), "{err}");
}

#[test]
fn a_same_size_edit_with_normalised_mtimes_is_served() {
    let site = Site::new();
    let page = site.project.join("static/page.txt");
    fs::create_dir_all(page.parent().unwrap()).unwrap();
    fs::write(&page, "version A\n").unwrap();
    site.commit("a page");
    normalise_mtimes(&site.project);
    let first = site.deploy_ok();
    assert_eq!(
        http_get(site.port, "/static/page.txt").as_deref(),
        Some("version A\n")
    );

    fs::write(&page, "version B\n").unwrap();
    site.commit("same size, same time stamp");
    normalise_mtimes(&site.project);
    let second = site.deploy_ok();
    assert_ne!(first, second);
    site.assert_live(&second);
    assert_eq!(
        fs::read_to_string(site.release_dir(&second).join("static/page.txt")).unwrap(),
        "version B\n"
    );
    assert_eq!(
        http_get(site.port, "/static/page.txt").as_deref(),
        Some("version B\n"),
        "the app serves the old file"
    );
    assert_eq!(
        fs::read_to_string(site.release_dir(&first).join("static/page.txt")).unwrap(),
        "version A\n",
        "the previous release was changed"
    );
}

#[test]
fn a_ref_deploy_hard_links_what_did_not_change_and_ships_what_did() {
    let site = Site::new();
    let out = site.hoist(&["deploy", "--ref", "HEAD"]);
    assert_exit(&out, EXIT_OK);
    let first = site.current().unwrap();
    site.change_code("by ref");
    let out = site.hoist(&["deploy", "--ref", "HEAD"]);
    assert_exit(&out, EXIT_OK);
    let second = site.current().unwrap();
    assert_ne!(first, second);
    let shipped: Vec<PathBuf> = fs::read_dir(site.release_dir(&second))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    let text = format!("{}{}", stdout(&out), stderr(&out));
    let files = shipped.len();
    assert!(
        text.contains(": 1 copied ("),
        "only app.py is copied ({files} entries):\n{text}"
    );
    assert_eq!(
        fs::read(site.release_dir(&second).join("app.py")).unwrap(),
        fs::read(site.project.join("app.py")).unwrap()
    );
    use std::os::unix::fs::MetadataExt;
    let ino = |id: &str| {
        fs::metadata(site.release_dir(id).join("settings.py"))
            .unwrap()
            .ino()
    };
    assert_eq!(ino(&first), ino(&second), "settings.py is hard-linked");
}

#[test]
fn a_shared_folder_under_a_symlinked_parent_is_refused_and_nothing_outside_is_touched() {
    let site = Site::new();
    let outside = Outside::new();
    std::os::unix::fs::symlink(outside.path(), site.project.join("conf")).unwrap();
    set_shared(&site.config, r#"["conf/data/", "logs/", "run/"]"#);
    let out = site.hoist(&["deploy"]);
    assert_refused(&out, "conf/data/", "conf");
    outside.assert_intact();
    assert_eq!(site.current(), None, "nothing was switched");
}

#[test]
fn a_shared_file_under_a_symlinked_parent_is_refused_and_nothing_outside_is_touched() {
    let site = Site::new();
    let outside = Outside::new();
    fs::remove_dir_all(site.project.join("instance")).unwrap();
    std::os::unix::fs::symlink(outside.path(), site.project.join("instance")).unwrap();
    let out = site.hoist(&["deploy"]);
    assert_refused(&out, "instance/settings.toml", "instance");
    outside.assert_intact();
    assert_eq!(site.current(), None, "nothing was switched");
}

#[test]
fn a_committed_symlink_deployed_by_ref_is_refused_too() {
    let site = Site::new();
    let outside = Outside::new();
    std::os::unix::fs::symlink(outside.path(), site.project.join("conf")).unwrap();
    site.commit("a symlink to somewhere else");
    set_shared(&site.config, r#"["conf/data/", "logs/", "run/"]"#);
    let out = site.hoist(&["deploy", "--ref", "HEAD"]);
    assert_refused(&out, "conf/data/", "conf");
    outside.assert_intact();
    assert_eq!(site.current(), None, "nothing was switched");
}

/// Points the site's config at one SSH host, `web1` of `server`, whose root is a folder of
/// the site; returns that root.
fn deploy_over_ssh(site: &Site, server: &SshServer) -> PathBuf {
    let root = site.dir.path().join("srv web1");
    fs::create_dir_all(&root).unwrap();
    let text = fs::read_to_string(&site.config).unwrap();
    let text = text.replace(
        &format!("root = \"{}\"", site.root.display()),
        "root = \"/srv/unused\"",
    );
    fs::write(
        &site.config,
        format!(
            "{text}\n[ssh]\nconfig_file = \"{}\"\n\n[hosts.web1]\naddress = \"web1\"\nroot = \"{}\"\ngroups = [\"web\"]\n\n[environments.production]\ngroups = [\"web\"]\n",
            server.client_config.display(),
            root.display()
        ),
    )
    .unwrap();
    root
}

/// Stops the example's gunicorn of an SSH host's root when the test ends, pass or fail.
struct StopWeb(PathBuf);

impl Drop for StopWeb {
    fn drop(&mut self) {
        let _ = Command::new(example_dir().join("bin/stop-web"))
            .env("HOIST_ROOT", &self.0)
            .env("HOIST_STOP_TIMEOUT", "10")
            .output();
    }
}

#[test]
fn over_ssh_a_same_size_edit_with_normalised_mtimes_is_served() {
    let server = SshServer::start();
    let site = Site::new();
    let root = deploy_over_ssh(&site, &server);
    let _stop = StopWeb(root.clone());
    let page = site.project.join("static/page.txt");
    fs::create_dir_all(page.parent().unwrap()).unwrap();
    fs::write(&page, "version A\n").unwrap();
    normalise_mtimes(&site.project);
    assert_exit(&site.hoist(&["deploy", "production"]), EXIT_OK);
    assert_eq!(
        http_get(site.port, "/static/page.txt").as_deref(),
        Some("version A\n")
    );
    fs::write(&page, "version B\n").unwrap();
    normalise_mtimes(&site.project);
    let out = site.hoist(&["deploy", "production"]);
    assert_exit(&out, EXIT_OK);
    let current = fs::read_link(root.join("current")).unwrap();
    let release = root.join(&current);
    for rel in [
        "static/page.txt",
        "app.py",
        "settings.py",
        "bin/restart-web",
    ] {
        assert_eq!(
            fs::read(release.join(rel)).unwrap(),
            fs::read(site.project.join(rel)).unwrap(),
            "{rel} in {}",
            release.display()
        );
    }
    assert_eq!(
        http_get(site.port, "/static/page.txt").as_deref(),
        Some("version B\n"),
        "the app serves the old file"
    );
    assert!(
        stderr(&out).contains(": 1 copied ("),
        "only the page is copied:\n{}",
        stderr(&out)
    );
}

#[test]
fn over_ssh_a_symlinked_shared_parent_is_refused_and_nothing_outside_is_touched() {
    let server = SshServer::start();
    let site = Site::new();
    let outside = Outside::new();
    std::os::unix::fs::symlink(outside.path(), site.project.join("conf")).unwrap();
    let root = deploy_over_ssh(&site, &server);
    set_shared(&site.config, r#"["conf/data/", "logs/", "run/"]"#);
    let out = site.hoist(&["deploy", "production"]);
    assert_refused(&out, "conf/data/", "conf");
    outside.assert_intact();
    assert!(!root.join("current").exists(), "nothing was switched");
}

/// Shared paths over SSH: a shared file whose target is missing is linked with a warning naming
/// it (none once it exists), a shared folder under parents the app does not have gets real
/// parents in the release, and every link points into `<root>/shared`.
#[test]
fn over_ssh_shared_files_and_nested_folders_are_linked_and_a_missing_file_is_named() {
    let server = SshServer::start();
    let site = Site::new();
    let root = deploy_over_ssh(&site, &server);
    let _stop = StopWeb(root.clone());
    set_shared(
        &site.config,
        r#"["instance/secrets.toml", "deep/er/data/", "logs/", "run/"]"#,
    );
    let out = site.hoist(&["deploy", "production"]);
    assert_exit(&out, EXIT_OK);
    let secrets = root.join("shared/instance/secrets.toml");
    let warning = format!(
        "shared file {} does not exist yet; the release links to it anyway",
        secrets.display()
    );
    assert!(stderr(&out).contains(&warning), "{}", stderr(&out));
    let release = root.join(fs::read_link(root.join("current")).unwrap());
    assert_eq!(
        fs::read_link(release.join("instance/secrets.toml")).unwrap(),
        secrets
    );
    assert_eq!(
        fs::read_link(release.join("deep/er/data")).unwrap(),
        root.join("shared/deep/er/data")
    );
    assert!(root.join("shared/deep/er/data").is_dir());
    for real in ["deep", "deep/er"] {
        let kind = fs::symlink_metadata(release.join(real))
            .unwrap()
            .file_type();
        assert!(kind.is_dir(), "{real} is a real folder in the release");
    }

    fs::write(&secrets, "token = \"x\"\n").unwrap();
    site.change_code("again");
    let out = site.hoist(&["deploy", "production"]);
    assert_exit(&out, EXIT_OK);
    assert!(
        !stderr(&out).contains("does not exist yet"),
        "{}",
        stderr(&out)
    );
    let release = root.join(fs::read_link(root.join("current")).unwrap());
    assert_eq!(
        fs::read_to_string(release.join("instance/secrets.toml")).unwrap(),
        "token = \"x\"\n"
    );
}
