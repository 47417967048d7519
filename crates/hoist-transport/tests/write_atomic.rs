//! `write_file_atomic` writes only the file it names, whatever a release's tree planted beside
//! it: a symlink under the temporary name hoist used to pick (`.<name>.hoist-tmp-<pid>`) must
//! not redirect the write to a file elsewhere. Locally and over a real sshd on 127.0.0.1.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use hoist_testkit::SshServer;
use hoist_transport::{Cmd, Local, Ssh, SshTarget, Transport};

/// A file outside the release that a planted symlink points to.
fn victim(dir: &Path) -> PathBuf {
    let path = dir.join("outside/precious.txt");
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(&path, "precious\n").unwrap();
    path
}

fn plant(release: &Path, pid: u32, target: &Path) {
    std::os::unix::fs::symlink(
        target,
        release.join(format!(".RELEASE.json.hoist-tmp-{pid}")),
    )
    .unwrap();
}

fn assert_written_and_victim_intact(release: &Path, victim: &Path) {
    assert_eq!(
        fs::read_to_string(victim).unwrap(),
        "precious\n",
        "the write went through the planted symlink"
    );
    let written = release.join("RELEASE.json");
    assert!(
        fs::symlink_metadata(&written).unwrap().is_file(),
        "RELEASE.json is not a regular file"
    );
    assert_eq!(fs::read_to_string(&written).unwrap(), "{\"id\": \"r2\"}\n");
    // No temporary file of ours is left behind (the planted symlinks are the tree's own).
    let leftovers: Vec<_> = fs::read_dir(release)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| !fs::symlink_metadata(p).unwrap().file_type().is_symlink())
        .filter(|p| p.file_name().unwrap() != "RELEASE.json")
        .collect();
    assert!(leftovers.is_empty(), "left behind: {leftovers:?}");
}

#[test]
fn a_symlink_planted_at_the_temporary_name_is_not_followed_locally() {
    let tmp = tempfile::tempdir().unwrap();
    let victim = victim(tmp.path());
    let release = tmp.path().join("releases/r2");
    fs::create_dir_all(&release).unwrap();
    plant(&release, std::process::id(), &victim);
    Local::default()
        .write_file_atomic(&release.join("RELEASE.json"), b"{\"id\": \"r2\"}\n")
        .unwrap();
    assert_written_and_victim_intact(&release, &victim);
}

#[test]
fn a_symlink_planted_at_the_temporary_name_is_not_followed_over_ssh() {
    let server = SshServer::start();
    let mut target = SshTarget::new("web1", "web1");
    target.config_file = Some(server.client_config.clone());
    target.connect_timeout = Duration::from_secs(5);
    let host = Ssh::connect(&target).unwrap();
    // Start the remote shell, so the next process the host makes is the write's own.
    assert!(host.exec(&Cmd::new("true")).unwrap().success());
    let tmp = tempfile::tempdir().unwrap();
    let victim = victim(tmp.path());
    let release = tmp.path().join("releases/r2");
    fs::create_dir_all(&release).unwrap();
    // sshd runs on this machine: the remote shell's pid is one of the next few to be handed
    // out. Plant the old temporary name for each of them.
    let read = |p: &str| -> u32 { fs::read_to_string(p).unwrap().trim().parse().unwrap() };
    let last = read("/proc/sys/kernel/ns_last_pid");
    let max = read("/proc/sys/kernel/pid_max");
    for step in 1..=3000 {
        let pid = (last + step) % max;
        plant(&release, pid, &victim);
    }
    host.write_file_atomic(&release.join("RELEASE.json"), b"{\"id\": \"r2\"}\n")
        .unwrap();
    assert_written_and_victim_intact(&release, &victim);
}
