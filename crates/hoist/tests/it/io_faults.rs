//! A full disk or a read-only root is a failure before the switch (exit 3), not an internal
//! error: nothing was switched, the live release keeps serving, no lock or half-made lock is
//! left, and the next deploy works once the disk has room. The root is a real tmpfs mount
//! (the tests run as root, as CI does).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::*;

/// A tmpfs mounted on `path`, unmounted (lazily: the app may still hold files) on drop.
struct Mount(PathBuf);

impl Mount {
    fn tmpfs(path: &Path, size: &str) -> Mount {
        fs::create_dir_all(path).unwrap();
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(path)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "mount -t tmpfs failed (these tests run as root, as CI does): {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Mount(path.to_path_buf())
    }

    fn remount(&self, options: &str) {
        let out = Command::new("mount")
            .args(["-o", &format!("remount,{options}")])
            .arg(&self.0)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

impl Drop for Mount {
    /// The app the tests started serves from the mount: stop it while its pid file can still
    /// be read, then unmount.
    fn drop(&mut self) {
        let _ = Command::new(example_dir().join("bin/stop-web"))
            .env("HOIST_ROOT", &self.0)
            .env("HOIST_STOP_TIMEOUT", "10")
            .output();
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// Fills the file system that holds `dir` until a write fails with ENOSPC.
fn fill(dir: &Path) -> PathBuf {
    let filler = dir.join("filler");
    let out = Command::new("dd")
        .args(["if=/dev/zero", "bs=1M"])
        .arg(format!("of={}", filler.display()))
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("No space left"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Small files may still fit in the last partial blocks; take those too.
    for i in 0..64 {
        let _ = fs::write(dir.join(format!("filler-{i}")), [0u8; 512]);
    }
    filler
}

fn assert_nothing_left_behind(site: &Site) {
    assert!(!site.lock_exists(), "the lock is released");
    let leftovers: Vec<String> = fs::read_dir(site.root.join(".hoist"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("lock"))
        .collect();
    assert!(leftovers.is_empty(), "lock temporaries left: {leftovers:?}");
}

#[test]
fn a_full_disk_fails_before_the_switch_and_the_next_deploy_works() {
    let site = Site::new();
    let _mount = Mount::tmpfs(&site.root, "400m");
    let a = site.deploy_ok();
    site.change_code("disk full");
    let filler = fill(&site.root);

    let out = site.hoist(&["deploy"]);
    assert_exit(&out, EXIT_BEFORE_SWITCH);
    assert!(
        stderr(&out).contains("No space left on device"),
        "{}",
        stderr(&out)
    );
    site.assert_live(&a);
    for entry in fs::read_dir(&site.root).unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().into_owned();
        if name.starts_with("filler") {
            fs::remove_file(site.root.join(name)).unwrap();
        }
    }
    assert!(!filler.exists());
    assert_nothing_left_behind(&site);

    let b = site.deploy_ok();
    assert_ne!(a, b);
    site.assert_live(&b);
}

#[test]
fn a_read_only_root_fails_before_the_switch() {
    let site = Site::new();
    let mount = Mount::tmpfs(&site.root, "400m");
    let a = site.deploy_ok();
    site.change_code("read-only");
    // A file system with files open for writing (the app's logs) cannot be remounted
    // read-only, so the app is stopped first; `current` and the journal tell the rest.
    let stopped = Command::new(example_dir().join("bin/stop-web"))
        .env("HOIST_ROOT", &site.root)
        .output()
        .unwrap();
    assert!(stopped.status.success());
    let journal = fs::read_to_string(site.root.join(".hoist/journal.jsonl")).unwrap();
    mount.remount("ro");
    let out = site.hoist(&["deploy"]);
    mount.remount("rw");
    assert_exit(&out, EXIT_BEFORE_SWITCH);
    assert!(
        stderr(&out).contains("Read-only file system"),
        "{}",
        stderr(&out)
    );
    assert_eq!(site.current().as_deref(), Some(a.as_str()));
    assert_eq!(
        fs::read_to_string(site.root.join(".hoist/journal.jsonl")).unwrap(),
        journal
    );
    assert_nothing_left_behind(&site);
    let b = site.deploy_ok();
    site.assert_live(&b);
}
