//! `write_file_atomic` writes only the file it names, whatever a release's tree planted beside
//! it: a symlink under the temporary name hoist used to pick (`.<name>.hoist-tmp-<pid>`; over
//! SSH it is now random, chosen by the controller) must not redirect the write to a file
//! elsewhere. Locally and over a real sshd on 127.0.0.1.

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

/// `write_private_file_atomic` leaves a 0600 file, replacing one that was readable by others,
/// and a command run `with_env_file` sees its variables while its command line does not.
fn private_write_and_env_file(host: &dyn Transport, dir: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let file = dir.join("env");
    fs::write(&file, "OLD=1\n").unwrap();
    fs::set_permissions(&file, fs::Permissions::from_mode(0o644)).unwrap();
    host.write_private_file_atomic(&file, b"GREETING='hello there'\nTOKEN=s3cr3t\n")
        .unwrap();
    assert_eq!(
        fs::metadata(&file).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let out = host
        .exec(
            &Cmd::new("bash")
                .args([
                    "-c",
                    "printf '%s|%s|' \"$GREETING\" \"$TOKEN\"; cat /proc/$$/cmdline | tr '\\0' ' '",
                ])
                .with_env_file(&file),
        )
        .unwrap();
    assert!(out.success(), "{}", out.stderr_text());
    let text = out.stdout_text();
    assert!(text.starts_with("hello there|s3cr3t|"), "{text}");
    assert!(
        !text["hello there|s3cr3t|".len()..].contains("s3cr3t"),
        "{text}"
    );

    let missing = host
        .exec(&Cmd::new("true").with_env_file(&dir.join("nothing-here")))
        .unwrap();
    assert_eq!(missing.status, 125);
}

#[test]
fn a_private_file_is_0600_and_an_env_file_feeds_a_command_locally() {
    let tmp = tempfile::tempdir().unwrap();
    private_write_and_env_file(&Local::default(), tmp.path());
}

#[test]
fn a_private_file_is_0600_and_an_env_file_feeds_a_command_over_ssh() {
    let server = SshServer::start();
    let mut target = SshTarget::new("web1", "web1");
    target.config_file = Some(server.client_config.clone());
    target.connect_timeout = Duration::from_secs(5);
    let host = Ssh::connect(&target).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    private_write_and_env_file(&host, tmp.path());
}
