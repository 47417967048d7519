//! The SSH transport against a real OpenSSH server on 127.0.0.1 (hoist-testkit's fixture).
//!
//! The "remote" root is a temporary directory on this machine, reached through sshd, so every
//! assertion can look at the files directly.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use hoist_testkit::{generate_key, write_client_config, SshServer};
use hoist_transport::{Cmd, FileKind, HostKeyPolicy, Ssh, SshTarget, Transport, TransportError};

fn target(server: &SshServer, alias: &str) -> SshTarget {
    let mut target = SshTarget::new(alias, alias);
    target.config_file = Some(server.client_config.clone());
    target.connect_timeout = Duration::from_secs(5);
    target
}

fn ssh(server: &SshServer) -> Ssh {
    Ssh::connect(&target(server, "web1"))
        .unwrap_or_else(|e| panic!("connect: {e}\nsshd log: {}", server.log()))
}

/// A file that exists only if a hostile value ran `touch`; its name has no `/` so that the
/// values below are single path components.
fn marker() -> (PathBuf, String) {
    let name = format!(
        "pwned-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    );
    // `\057` is `/`: printf builds the absolute path without a slash in the value.
    let command = format!("touch $(printf '\\057tmp\\057{name}')");
    (PathBuf::from("/tmp").join(name), command)
}

#[test]
fn every_file_operation_works_over_ssh() {
    let server = SshServer::start();
    let host = ssh(&server);
    assert_eq!(host.host(), "web1");
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("app");

    host.create_dir_all(&root.join("releases/a")).unwrap();
    assert!(root.join("releases/a").is_dir());
    host.create_dir(&root.join(".hoist")).unwrap();
    let again = host.create_dir(&root.join(".hoist")).unwrap_err();
    assert!(
        matches!(&again, TransportError::AlreadyExists { host, .. } if host == "web1"),
        "{again:?}"
    );

    let file = root.join("releases/a/RELEASE.json");
    assert_eq!(host.read_file(&file).unwrap(), None);
    host.write_file_atomic(&file, b"{\"id\": 1}\n").unwrap();
    assert_eq!(fs::read(&file).unwrap(), b"{\"id\": 1}\n");
    // Larger than any pipe buffer: stdin is written while output is read.
    let big: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
    host.write_file_atomic(&file, &big).unwrap();
    assert_eq!(host.read_file(&file).unwrap().as_deref(), Some(&big[..]));
    assert_eq!(
        fs::read_dir(root.join("releases/a")).unwrap().count(),
        1,
        "no temporary file is left behind"
    );

    let journal = root.join(".hoist/journal.jsonl");
    host.append_line(&journal, "{\"event\":\"one\"}").unwrap();
    host.append_line(&journal, "{\"event\":\"two\"}").unwrap();
    assert_eq!(
        fs::read_to_string(&journal).unwrap(),
        "{\"event\":\"one\"}\n{\"event\":\"two\"}\n"
    );

    host.symlink(Path::new("../../envs/k1"), &root.join("releases/a/.venv"))
        .unwrap();
    host.symlink(Path::new("../../envs/k1"), &root.join("releases/a/.venv"))
        .unwrap();
    assert_eq!(
        fs::read_link(root.join("releases/a/.venv")).unwrap(),
        Path::new("../../envs/k1")
    );
    host.symlink(Path::new("../../envs/k2"), &root.join("releases/a/.venv"))
        .unwrap();
    assert_eq!(
        host.read_link(&root.join("releases/a/.venv")).unwrap(),
        Some(PathBuf::from("../../envs/k2"))
    );
    assert_eq!(host.read_link(&root.join("nothing")).unwrap(), None);
    assert!(
        host.read_link(&file).is_err(),
        "a regular file is not a link"
    );

    assert_eq!(host.kind(&file).unwrap(), FileKind::File);
    assert_eq!(host.kind(&root.join("releases")).unwrap(), FileKind::Dir);
    assert_eq!(
        host.kind(&root.join("releases/a/.venv")).unwrap(),
        FileKind::Symlink
    );
    assert_eq!(host.kind(&root.join("nothing")).unwrap(), FileKind::Missing);
    assert_eq!(host.kind(Path::new("/dev/null")).unwrap(), FileKind::Other);

    fs::write(root.join("releases/a/line\nbreak"), "").unwrap();
    assert_eq!(
        host.list_dir(&root.join("releases/a")).unwrap(),
        [".venv", "RELEASE.json", "line\nbreak"]
    );
    assert!(host.list_dir(&root.join("nothing")).unwrap().is_empty());

    host.rename(&root.join("releases/a"), &root.join("releases/b"))
        .unwrap();
    assert!(root.join("releases/b/RELEASE.json").is_file());
    host.create_dir_all(&root.join("releases/c/full")).unwrap();
    let onto_full = host
        .rename(&root.join("releases/b"), &root.join("releases/c"))
        .unwrap_err();
    assert!(
        matches!(onto_full, TransportError::AlreadyExists { .. }),
        "{onto_full:?}"
    );

    host.remove_all(&root.join("releases/b")).unwrap();
    assert!(!root.join("releases/b").exists());
    host.remove_all(&root.join("releases/b")).unwrap();

    assert!(host.free_bytes(&root).unwrap() > 0);
}

#[test]
fn exec_keeps_status_output_stdin_cwd_and_env() {
    let server = SshServer::start();
    let host = ssh(&server);
    let tmp = tempfile::tempdir().unwrap();
    let out = host
        .exec(
            &Cmd::shell("pwd; echo \"$GREETING\"; cat; echo oops >&2; exit 3")
                .cwd(tmp.path())
                .env("GREETING", "hello world")
                .stdin(b"from stdin\n".to_vec()),
        )
        .unwrap();
    assert_eq!(out.status, 3);
    assert_eq!(
        out.stdout_text(),
        format!("{}\nhello world\nfrom stdin\n", tmp.path().display())
    );
    assert_eq!(out.stderr_text(), "oops\n");

    // 127 and 255 are statuses like any other, with their output kept.
    let missing = host.exec(&Cmd::new("no-such-command-hoist")).unwrap();
    assert_eq!(missing.status, 127);
    assert!(missing.stderr_text().contains("no-such-command-hoist"));
    let two55 = host.exec(&Cmd::shell("echo before; exit 255")).unwrap();
    assert_eq!(
        (two55.status, two55.stdout_text().as_str()),
        (255, "before\n")
    );

    // One transport, several threads at once (a fleet runner may share it).
    std::thread::scope(|scope| {
        for i in 0..4 {
            let host = &host;
            scope.spawn(move || {
                let out = host
                    .exec(&Cmd::new("echo").arg(format!("thread {i}")))
                    .unwrap();
                assert_eq!(out.stdout_text(), format!("thread {i}\n"));
            });
        }
    });
}

#[test]
fn unchanged_files_are_hard_linked_to_the_previous_release() {
    let server = SshServer::start();
    let host = ssh(&server);
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    fs::create_dir_all(src.join("pkg")).unwrap();
    fs::write(src.join("app.py"), "v1").unwrap();
    fs::write(src.join("pkg/lib.py"), "library").unwrap();
    std::os::unix::fs::symlink("app.py", src.join("link.py")).unwrap();
    let files: Vec<PathBuf> = ["app.py", "pkg/lib.py", "link.py"]
        .iter()
        .map(PathBuf::from)
        .collect();
    let releases = tmp.path().join("remote root/releases");
    let one = releases.join("1");
    let first = host.upload_tree(&src, &files, &one, None).unwrap();
    assert_eq!((first.copied, first.linked, first.bytes), (3, 0, 9));
    assert_eq!(
        fs::read_link(one.join("link.py")).unwrap(),
        Path::new("app.py")
    );

    fs::write(src.join("app.py"), "v2 changed").unwrap();
    let two = releases.join("2");
    let second = host.upload_tree(&src, &files, &two, Some(&one)).unwrap();
    // The changed file and the symlink (always recreated, as locally) are copied.
    assert_eq!(second.copied, 2, "{second:?}");
    assert_eq!(second.linked, 1, "{second:?}");
    let ino = |p: &Path| fs::symlink_metadata(p).unwrap().ino();
    assert_eq!(ino(&one.join("pkg/lib.py")), ino(&two.join("pkg/lib.py")));
    assert_ne!(ino(&one.join("app.py")), ino(&two.join("app.py")));
    assert_eq!(
        fs::read_to_string(two.join("app.py")).unwrap(),
        "v2 changed"
    );
    assert_eq!(fs::read_to_string(one.join("app.py")).unwrap(), "v1");
    let mtime = |p: &Path| fs::metadata(p).unwrap().mtime();
    assert_eq!(mtime(&src.join("app.py")), mtime(&two.join("app.py")));
}

#[test]
fn switch_symlink_never_leaves_current_missing_and_refuses_a_directory() {
    let server = SshServer::start();
    let host = ssh(&server);
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    fs::create_dir_all(root.join("releases/a")).unwrap();
    fs::create_dir_all(root.join("releases/b")).unwrap();
    let current = root.join("current");
    host.switch_symlink(&current, Path::new("releases/a"))
        .unwrap();

    // A reader watching `current` the whole time never sees it missing (symlink + rename(2),
    // never unlink-then-create).
    let stop = Arc::new(AtomicBool::new(false));
    let watcher = {
        let stop = Arc::clone(&stop);
        let current = current.clone();
        std::thread::spawn(move || {
            let mut reads = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let target = fs::read_link(&current).expect("current exists at every instant");
                assert!(target == Path::new("releases/a") || target == Path::new("releases/b"));
                reads += 1;
            }
            reads
        })
    };
    for i in 0..20 {
        let target = if i % 2 == 0 {
            "releases/b"
        } else {
            "releases/a"
        };
        host.switch_symlink(&current, Path::new(target)).unwrap();
        assert_eq!(fs::read_link(&current).unwrap(), Path::new(target));
    }
    stop.store(true, Ordering::Relaxed);
    assert!(watcher.join().unwrap() > 0);
    let names: Vec<String> = fs::read_dir(root)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names.len(), 2, "no temporary link left behind: {names:?}");

    let real = root.join("real");
    fs::create_dir(&real).unwrap();
    fs::write(real.join("keep.txt"), "data").unwrap();
    let err = host
        .switch_symlink(&real, Path::new("releases/a"))
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "web1: {} is a real directory, not a symlink; hoist will not replace it",
            real.display()
        )
    );
    assert!(
        real.join("keep.txt").is_file(),
        "the directory is untouched"
    );
}

/// Values that would run commands if any of them were spliced into shell text unquoted.
fn hostile(touch: &str) -> Vec<String> {
    vec![
        format!("sp ace $({touch})"),
        format!("quo'te\"s `{touch}`"),
        format!("semi; {touch}; #"),
        format!("new\nline && {touch}"),
        format!("dollar $HOME ${{IFS}} | {touch} &"),
    ]
}

#[test]
fn hostile_paths_release_ids_and_file_names_run_nothing() {
    let server = SshServer::start();
    let host = ssh(&server);
    let (marker, touch) = marker();
    let tmp = tempfile::tempdir().unwrap();
    let names = hostile(&touch);
    assert!(names.iter().all(|n| !n.contains('/')));
    let root = tmp.path().join(&names[0]);
    for id in &names {
        let release = root.join("releases").join(id);
        host.create_dir_all(&release).unwrap();
        host.create_dir(&release.join(id)).unwrap();
        host.write_file_atomic(&release.join(format!("{id}.txt")), id.as_bytes())
            .unwrap();
        host.append_line(&release.join("journal"), id).unwrap();
        host.symlink(&release.join(id), &release.join(format!("{id}.link")))
            .unwrap();
        host.switch_symlink(&root.join("current"), &Path::new("releases").join(id))
            .unwrap();
        assert_eq!(
            host.read_link(&root.join("current")).unwrap(),
            Some(Path::new("releases").join(id))
        );
        assert_eq!(
            host.read_file(&release.join(format!("{id}.txt")))
                .unwrap()
                .as_deref(),
            Some(id.as_bytes())
        );
        assert_eq!(host.kind(&release.join(id)).unwrap(), FileKind::Dir);
        let out = host
            .exec(&Cmd::new("printf").arg("%s").arg(id.as_str()).cwd(&release))
            .unwrap();
        assert_eq!(out.stdout_text(), *id);
    }
    // Upload files with the same names.
    let src = tmp.path().join("src");
    fs::create_dir_all(&src).unwrap();
    let files: Vec<PathBuf> = names
        .iter()
        .map(|n| {
            fs::write(src.join(n), n).unwrap();
            PathBuf::from(n)
        })
        .collect();
    let dest = root.join("releases").join(&names[1]).join("upload");
    let stats = host.upload_tree(&src, &files, &dest, None).unwrap();
    assert_eq!(stats.copied, names.len() as u64);

    let mut expected = names.clone();
    expected.sort();
    assert_eq!(host.list_dir(&root.join("releases")).unwrap(), expected);
    for name in &names {
        assert_eq!(fs::read_to_string(dest.join(name)).unwrap(), *name);
        let release = root.join("releases").join(name);
        assert_eq!(
            fs::read_to_string(release.join(format!("{name}.txt"))).unwrap(),
            *name
        );
        assert_eq!(
            fs::read_to_string(release.join("journal")).unwrap(),
            format!("{name}\n")
        );
    }
    host.rename(
        &root.join("releases").join(&names[2]),
        &root.join("releases").join("renamed"),
    )
    .unwrap();
    host.remove_all(&root.join("releases").join(&names[3]))
        .unwrap();
    assert!(!root.join("releases").join(&names[3]).exists());
    assert!(root.exists(), "removing one release removed nothing else");
    assert!(!marker.exists(), "a hostile value ran a command");
}

#[test]
fn a_hostile_address_is_refused_before_ssh_sees_it() {
    let (marker, touch) = marker();
    let mut t = SshTarget::new("evil", format!("-oProxyCommand={touch}"));
    t.connect_timeout = Duration::from_secs(2);
    let err = Ssh::connect(&t).unwrap_err();
    assert!(
        err.to_string()
            .starts_with("evil: cannot connect to -oProxyCommand"),
        "{err}"
    );
    assert!(!marker.exists());
}

#[test]
fn a_changed_host_key_is_refused_naming_the_host_and_the_known_hosts_line() {
    let server = SshServer::start();
    let dir = tempfile::tempdir().unwrap();
    let other = generate_key(&dir.path().join("other_host_key"));
    let known_hosts = dir.path().join("known_hosts");
    fs::write(
        &known_hosts,
        format!("# an old entry\n[127.0.0.1]:{} {other}\n", server.port),
    )
    .unwrap();
    let config = dir.path().join("ssh_config");
    write_client_config(&config, &[("web2", &server)], &known_hosts);
    for policy in [HostKeyPolicy::Strict, HostKeyPolicy::AcceptNew] {
        let mut t = SshTarget::new("web2", "web2");
        t.config_file = Some(config.clone());
        t.known_hosts = policy;
        let err = Ssh::connect(&t).unwrap_err();
        let line = format!("{}:2", known_hosts.display());
        assert!(
            matches!(&err, TransportError::HostKeyChanged { host, known_hosts_line, .. }
                if host == "web2" && *known_hosts_line == line),
            "{policy:?}: {err:?}"
        );
        assert!(
            err.to_string()
                .starts_with("web2: the host key of web2 has CHANGED"),
            "{err}"
        );
        // The entry is recorded under the address the alias resolves to: that is what
        // ssh-keygen -R must be given.
        let remove = format!(
            "`ssh-keygen -f {} -R '[127.0.0.1]:{}'`",
            known_hosts.display(),
            server.port
        );
        assert!(err.to_string().ends_with(&remove), "{err}");
    }
    assert!(
        fs::read_to_string(&known_hosts).unwrap().contains(&other),
        "left as it was"
    );
}

#[test]
fn an_unknown_key_is_refused_strictly_and_added_with_accept_new() {
    let server = SshServer::start();
    let dir = tempfile::tempdir().unwrap();
    let known_hosts = dir.path().join("known_hosts");
    fs::write(&known_hosts, "").unwrap();
    let config = dir.path().join("ssh_config");
    write_client_config(&config, &[("fresh", &server)], &known_hosts);
    let mut t = SshTarget::new("fresh", "fresh");
    t.config_file = Some(config);
    let err = Ssh::connect(&t).unwrap_err();
    assert!(
        matches!(err, TransportError::HostKeyUnknown { .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("--accept-new-host-keys"), "{err}");

    t.known_hosts = HostKeyPolicy::AcceptNew;
    let host = Ssh::connect(&t).unwrap();
    assert_eq!(host.exec(&Cmd::new("true")).unwrap().status, 0);
    let recorded = fs::read_to_string(&known_hosts).unwrap();
    assert!(recorded.contains(&server.host_key), "{recorded}");
}

#[test]
fn a_key_the_server_does_not_know_is_an_auth_failure() {
    let server = SshServer::start();
    let dir = tempfile::tempdir().unwrap();
    let stranger = dir.path().join("stranger");
    let _ = generate_key(&stranger);
    let config = dir.path().join("ssh_config");
    fs::write(
        &config,
        format!(
            "Host web3\n  HostName 127.0.0.1\n  Port {}\n  UserKnownHostsFile {}\n  GlobalKnownHostsFile /dev/null\n",
            server.port,
            server.known_hosts.display()
        ),
    )
    .unwrap();
    let mut t = SshTarget::new("web3", "web3");
    t.config_file = Some(config);
    t.identity_file = Some(stranger);
    t.user = Some(server.user.clone());
    let err = Ssh::connect(&t).unwrap_err();
    assert!(
        matches!(&err, TransportError::AuthFailed { host, .. } if host == "web3"),
        "{err:?}"
    );
}

#[test]
fn an_unreachable_host_fails_within_the_connect_timeout_naming_it() {
    let server = SshServer::start();
    let dir = tempfile::tempdir().unwrap();
    // Nothing listens on this port.
    let closed = hoist_testkit::free_port();
    // This one accepts connections (the kernel completes them) and never says a word.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let silent_port = silent.local_addr().unwrap().port();
    for (name, port, detail) in [
        ("db1", closed, "Connection refused"),
        ("db2", silent_port, "timed out"),
    ] {
        let mut t = SshTarget::new(name, "127.0.0.1");
        t.port = Some(port);
        t.identity_file = Some(server.identity_file.clone());
        t.config_file = Some(dir.path().join("empty_config"));
        fs::write(dir.path().join("empty_config"), "").unwrap();
        t.connect_timeout = Duration::from_secs(1);
        let err = Ssh::connect(&t).unwrap_err();
        assert!(
            matches!(&err, TransportError::Unreachable { host, .. } if host == name),
            "{err:?}"
        );
        let text = err.to_string();
        assert!(
            text.starts_with(&format!("{name}: cannot connect to [127.0.0.1]:{port}: ")),
            "{text}"
        );
        assert!(text.contains(detail), "{text}");
    }
    drop(silent);
}

#[test]
fn a_master_that_went_away_is_replaced_on_the_next_command() {
    let server = SshServer::start();
    let host = ssh(&server);
    let socket = host.control_socket();
    let exit = std::process::Command::new("ssh")
        .arg("-S")
        .arg(&socket)
        .args(["-O", "exit", "none"])
        .output()
        .unwrap();
    assert!(
        exit.status.success(),
        "{}",
        String::from_utf8_lossy(&exit.stderr)
    );
    for _ in 0..50 {
        if !socket.exists() {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = host.exec(&Cmd::new("echo").arg("back")).unwrap();
    assert_eq!(out.stdout_text(), "back\n");
    let fresh = host.control_socket();
    assert_ne!(fresh, socket);
    drop(host);
    assert!(!fresh.exists(), "dropping the transport closes its master");
}

/// A login user whose shell is bash and whose `~/.bashrc` counts its runs and exports a
/// variable, as a `pyenv init` or `nvm` set-up there does (they cost ~0.1 s each run).
const BASHRC_USER: &str = "hoist-bashrc";

/// Makes `user` a bash login whose `~/.bashrc` appends a line to `<home>/bashrc-ran` each time
/// it runs (then `extra`), and connects to `server` as that user: the count of lines is the
/// count of login shells started. Returns the home, the counter and the connection.
fn bashrc_counting_login(user: &str, extra: &str, server: &SshServer) -> (PathBuf, PathBuf, Ssh) {
    hoist_testkit::login_user(user, false);
    let home = PathBuf::from(format!("/home/{user}"));
    let shell = std::process::Command::new("usermod")
        .args(["-s", "/bin/bash", user])
        .status()
        .unwrap();
    assert!(shell.success(), "usermod -s /bin/bash {user}");
    let counter = home.join("bashrc-ran");
    let _ = fs::remove_file(&counter);
    fs::write(
        home.join(".bashrc"),
        format!("echo ran >> {}\n{extra}", counter.display()),
    )
    .unwrap();
    hoist_testkit::open_to_other_users(server);
    let mut target = target(server, "web1");
    target.user = Some(user.into());
    let ssh = Ssh::connect(&target).unwrap_or_else(|e| panic!("connect: {e}\n{}", server.log()));
    (home, counter, ssh)
}

#[test]
fn the_login_shells_start_up_files_run_once_per_connection_not_once_per_command() {
    let server = SshServer::start();
    let (_, counter, ssh) = bashrc_counting_login(BASHRC_USER, "export FROM_BASHRC=yes\n", &server);
    // What restarts, health commands and hooks run: `bash -c`, from hoist's shell on the host.
    let bash = |script: &str| {
        Cmd::new("bash")
            .arg("-eo")
            .arg("pipefail")
            .arg("-c")
            .arg(script)
    };
    let out = ssh.exec(&bash("echo \"$FROM_BASHRC\"")).unwrap();
    assert_eq!(
        out.stdout_text().trim(),
        "yes",
        "the login's set-up reaches commands: {out:?}"
    );
    ssh.exec(&bash("true")).unwrap();
    let shown = |_: hoist_transport::Stream, _: &str| {};
    ssh.exec_streaming(&bash("echo streamed"), &shown).unwrap();
    ssh.exec(
        &Cmd::new("timeout")
            .arg("10s")
            .arg("bash")
            .arg("-c")
            .arg("true"),
    )
    .unwrap();
    let runs = fs::read_to_string(&counter).unwrap_or_default();
    assert_eq!(
        runs.lines().count(),
        1,
        "~/.bashrc ran {} times for one connection and four commands",
        runs.lines().count()
    );
}

/// A first upload of a small tree goes through the host's shell as one archive, as a small
/// change does: no SSH session of its own (each runs the login's start-up files, and rsync on
/// both sides); a large one goes through rsync, a session of its own. Both arrive whole, with
/// their modes and times.
#[test]
fn a_small_first_upload_opens_no_session_of_its_own() {
    use std::os::unix::fs::PermissionsExt;
    let server = SshServer::start();
    let (home, counter, ssh) = bashrc_counting_login("hoist-bashrc-upload", "", &server);
    let releases = home.join("releases");
    let _ = fs::remove_dir_all(&releases);
    let sessions = || {
        fs::read_to_string(&counter)
            .unwrap_or_default()
            .lines()
            .count()
    };

    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    fs::create_dir_all(src.join("pkg/deeper")).unwrap();
    fs::write(src.join("app.py"), "app").unwrap();
    fs::set_permissions(src.join("app.py"), fs::Permissions::from_mode(0o750)).unwrap();
    fs::write(src.join("pkg/deeper/lib.py"), "library").unwrap();
    let files: Vec<PathBuf> = ["app.py", "pkg/deeper/lib.py"]
        .iter()
        .map(PathBuf::from)
        .collect();
    let one = releases.join("1");
    let first = ssh.upload_tree(&src, &files, &one, None).unwrap();
    assert_eq!(
        (first.copied, first.linked, first.bytes),
        (2, 0, 10),
        "{first:?}"
    );
    assert_eq!(
        sessions(),
        1,
        "the small first upload opened a session of its own"
    );
    assert_eq!(
        fs::read_to_string(one.join("pkg/deeper/lib.py")).unwrap(),
        "library"
    );
    let meta = |p: &Path| fs::metadata(p).unwrap();
    assert_eq!(meta(&one.join("app.py")).mode() & 0o7777, 0o750);
    assert_eq!(
        meta(&src.join("app.py")).mtime(),
        meta(&one.join("app.py")).mtime()
    );
    // Its manifest vouches for what arrived: the next upload links all of it.
    let two = releases.join("2");
    let second = ssh.upload_tree(&src, &files, &two, Some(&one)).unwrap();
    assert_eq!((second.copied, second.linked), (0, 2), "{second:?}");

    let big: Vec<u8> = (0..700_000u32).map(|i| (i % 251) as u8).collect();
    fs::write(src.join("pkg/deeper/lib.py"), &big).unwrap();
    let three = releases.join("3");
    let third = ssh.upload_tree(&src, &files, &three, None).unwrap();
    assert_eq!((third.copied, third.linked), (2, 0), "{third:?}");
    assert_eq!(fs::read(three.join("pkg/deeper/lib.py")).unwrap(), big);
    assert_eq!(sessions(), 2, "a large upload goes through rsync");
}

#[test]
fn output_comes_back_byte_for_byte_whatever_it_holds() {
    let server = SshServer::start();
    let ssh = ssh(&server);
    let dir = tempfile::tempdir().unwrap();
    // Binary with NULs, larger than any read buffer, and without a final newline; text that
    // looks like the shell's own answers; nothing at all.
    let big: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 251) as u8).collect();
    let look_alike = b"HOIST-DONE 0\nHOIST-END-00\nHOIST-END-".to_vec();
    let cases: [(&[u8], &[u8]); 4] = [
        (&big, &look_alike),
        (&look_alike, &big),
        (b"", b""),
        (b"x", b""),
    ];
    for (i, (out, err)) in cases.iter().enumerate() {
        let (o, e) = (
            dir.path().join(format!("o{i}")),
            dir.path().join(format!("e{i}")),
        );
        fs::write(&o, out).unwrap();
        fs::write(&e, err).unwrap();
        let got = ssh
            .exec(
                &Cmd::new("sh")
                    .arg("-c")
                    .arg("cat -- \"$1\"; cat -- \"$2\" >&2; exit 3")
                    .arg("hoist")
                    .path_arg(&o)
                    .path_arg(&e),
            )
            .unwrap();
        assert_eq!(got.status, 3, "case {i}");
        assert!(
            got.stdout == *out,
            "case {i}: stdout differs ({} bytes, {} sent)",
            got.stdout.len(),
            out.len()
        );
        assert!(
            got.stderr == *err,
            "case {i}: stderr differs ({} bytes, {} sent)",
            got.stderr.len(),
            err.len()
        );
    }
    // The shell still answers after all of it.
    let after = ssh.exec(&Cmd::new("echo").arg("still here")).unwrap();
    assert_eq!(after.stdout_text(), "still here\n");
}

#[test]
fn what_a_process_left_behind_writes_later_is_not_the_next_commands_output() {
    let server = SshServer::start();
    let ssh = ssh(&server);
    // A restart command that starts a server in the background which keeps hoist's output as
    // its own (a daemon that does not close its descriptors).
    let first = ssh
        .exec(
            &Cmd::new("sh")
                .arg("-c")
                .arg("echo first; (sleep 0.3; echo LATE; echo LATE >&2) &"),
        )
        .unwrap();
    assert_eq!(first.stdout_text(), "first\n");
    for _ in 0..3 {
        let next = ssh
            .exec(
                &Cmd::new("sh")
                    .arg("-c")
                    .arg("sleep 0.2; echo next; echo err >&2"),
            )
            .unwrap();
        assert_eq!(next.stdout_text(), "next\n");
        assert_eq!(String::from_utf8_lossy(&next.stderr), "err\n");
    }
    // Many requests later the shell still answers (its earlier files are removed on the way).
    for i in 0..150 {
        let out = ssh.exec(&Cmd::new("echo").arg(i.to_string())).unwrap();
        assert_eq!(out.stdout_text(), format!("{i}\n"));
    }
}

/// Where each of a command's standard input, output and error is, as `stat -f` names the file
/// system: `tmpfs` for a file in memory.
fn file_systems_of_a_commands_streams(ssh: &Ssh) -> (String, String) {
    let out = ssh
        .exec(
            &Cmd::new("sh")
                .arg("-c")
                .arg(
                    "for f in 0 1 2; do p=$(readlink /proc/$$/fd/$f) && \
                     printf '%s %s\\n' \"$p\" \"$(stat -f -c %T \"$p\")\"; done",
                )
                .stdin(b"input".to_vec()),
        )
        .unwrap();
    assert!(out.success(), "{out:?}");
    let text = out.stdout_text();
    let kinds = text
        .lines()
        .map(|l| l.rsplit(' ').next().unwrap_or(""))
        .collect::<Vec<_>>()
        .join(" ");
    (kinds, text)
}

/// The files that carry a command's input and output in the host's shell are made for every
/// command; on a disk file system each costs the host an inode (on this machine's ext4 about a
/// millisecond of CPU a command), in memory nearly nothing. `/dev/shm` is on every Linux.
#[test]
fn a_commands_input_and_output_are_kept_in_memory_where_the_host_has_it() {
    let server = SshServer::start();
    let ssh = ssh(&server);
    let (kinds, text) = file_systems_of_a_commands_streams(&ssh);
    assert_eq!(kinds, "tmpfs tmpfs tmpfs", "{text}");
    assert!(
        text.lines().all(|l| l.starts_with("/dev/shm/hoist.")),
        "{text}"
    );
    // A large output holds no memory once it is sent.
    let big = ssh
        .exec(&Cmd::new("sh").arg("-c").arg(
            "readlink /proc/$$/fd/1; readlink /proc/$$/fd/2; head -c 100000 /dev/zero | tr '\\0' x; \
             head -c 50000 /dev/zero >&2",
        ))
        .unwrap();
    let text = big.stdout_text();
    let mut lines = text.lines();
    let (out_file, err_file) = (lines.next().unwrap(), lines.next().unwrap());
    assert_eq!(lines.next().map(str::len), Some(100_000));
    assert_eq!(big.stderr.len(), 50_000);
    let sizes = ssh
        .exec(
            &Cmd::new("stat")
                .args(["-c", "%s"])
                .arg(out_file)
                .arg(err_file),
        )
        .unwrap();
    assert_eq!(sizes.stdout_text(), "0\n0\n", "{sizes:?}");
}

#[test]
fn a_host_without_a_writable_dev_shm_keeps_them_in_its_temporary_directory() {
    let server = SshServer::start();
    const USER: &str = "hoist-noshm";
    hoist_testkit::login_user(USER, false);
    let home = PathBuf::from(format!("/home/{USER}"));
    // A `mktemp` that cannot make anything in /dev/shm, as on a host without it or with it
    // full: the login's PATH finds it first.
    let bin = home.join("bin");
    fs::create_dir_all(&bin).unwrap();
    fs::write(
        bin.join("mktemp"),
        "#!/bin/sh\ncase \"$*\" in *dev/shm*) echo 'mktemp: no space' >&2; exit 1 ;; esac\n\
         exec /usr/bin/mktemp \"$@\"\n",
    )
    .unwrap();
    fs::set_permissions(
        bin.join("mktemp"),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    // bash reads ~/.bashrc when sshd starts it, as the login shell of `exec sh`.
    let (_, _, ssh) =
        bashrc_counting_login(USER, "PATH=\"$HOME/bin:$PATH\"; export PATH\n", &server);
    let (_, text) = file_systems_of_a_commands_streams(&ssh);
    assert!(
        text.lines().count() == 3 && !text.contains("/dev/shm"),
        "{text}"
    );
    let out = ssh.exec(&Cmd::new("echo").arg("still answers")).unwrap();
    assert_eq!(out.stdout_text(), "still answers\n");
}

/// hoist's own short scripts run in the host's shell itself: no `sh` of their own to start. They
/// answer as `sh -c` would: status, output, input, arguments whatever they hold, `exec`, and a
/// script that does not parse; the shell goes on after each.
#[test]
fn a_brief_script_runs_in_the_hosts_shell_and_answers_as_sh_c_would() {
    let server = SshServer::start();
    let ssh = ssh(&server);
    let hostile = [
        "a b",
        "$(touch /tmp/x)",
        "it's",
        "-n",
        "",
        "line\nbreak",
        "*",
    ];
    let script = |text: &str| {
        Cmd::new("sh")
            .arg("-c")
            .arg(text)
            .arg("hoist-test")
            .args(hostile)
    };
    let cases = [
        r#"printf '[%s]' "$@"; echo; echo "$#" >&2; exit 3"#,
        r#"IFS= read -r line; printf 'read %s\n' "$line"; cat"#,
        r#"printf x; exec printf '%s\n' "$1""#,
        r#"if then fi"#,
        r#"set -e; false; echo not reached"#,
        r#"f() { return 4; }; f; echo "$?"; exit 0"#,
        // Large, with NULs and no newline at its end: output comes straight to hoist.
        r#"head -c 300000 /dev/zero | tr '\0' a; printf 'x\0y\0HOIST-DONE 0\nz'; echo e >&2"#,
    ];
    for text in cases {
        let plain = ssh
            .exec(&script(text).stdin(b"first\nsecond\n".to_vec()))
            .unwrap();
        let brief = ssh
            .exec(&script(text).stdin(b"first\nsecond\n".to_vec()).brief())
            .unwrap();
        assert_eq!(
            (brief.status, brief.stdout_text()),
            (plain.status, plain.stdout_text()),
            "{text}"
        );
        // dash names the script in its messages: `sh -c` by its `$0`, the host's shell by its
        // own name (and a syntax error as `eval`'s).
        assert_eq!(
            String::from_utf8_lossy(&brief.stderr)
                .replace("sh: ", "hoist-test: ")
                .replace("eval: ", ""),
            String::from_utf8_lossy(&plain.stderr),
            "{text}"
        );
    }
    // Where it ran: the host's shell has its own variables, which no `sh -c` of its own sees.
    let seen = |cmd: Cmd| ssh.exec(&cmd).unwrap().stdout_text();
    let probe = r#"printf '%s' "${__hoist_d:+the host's shell}""#;
    assert_eq!(seen(script(probe).brief()), "the host's shell");
    assert_eq!(seen(script(probe)), "");
    // Not brief when it is not a plain script: a working directory or environment of its own.
    assert_eq!(seen(script(probe).brief().env("A", "1")), "");
    assert_eq!(seen(script(probe).brief().cwd(Path::new("/"))), "");
    let after = ssh.exec(&Cmd::new("echo").arg("still here")).unwrap();
    assert_eq!(after.stdout_text(), "still here\n");
}

#[test]
fn a_long_command_does_not_hold_up_another_threads_command() {
    let server = SshServer::start();
    let host = ssh(&server);
    host.exec(&Cmd::new("true")).unwrap();
    std::thread::scope(|scope| {
        // A migration in the host's shell; the lock's heartbeat must not wait for it.
        let long = scope.spawn(|| host.exec(&Cmd::new("sleep").arg("3")).unwrap());
        std::thread::sleep(Duration::from_millis(200));
        let start = std::time::Instant::now();
        let out = host.exec(&Cmd::new("echo").arg("beat")).unwrap();
        let took = start.elapsed();
        assert_eq!(out.stdout_text(), "beat\n");
        assert!(
            !long.is_finished() && took < Duration::from_secs(2),
            "the second command waited for the first ({took:?})"
        );
        assert!(long.join().unwrap().success());
    });
}

/// The session id of the process that runs the command: the same for every command in the
/// host's long-lived shell, another one in a session of its own.
fn session_of_command(host: &Ssh) -> String {
    let out = host
        .exec(&Cmd::new("cut").args(["-d ", "-f6", "/proc/self/stat"]))
        .unwrap();
    assert!(out.success(), "{}", out.tail(3));
    out.stdout_text()
}

#[test]
fn commands_back_to_back_from_one_thread_do_not_push_another_threads_out_of_the_shell() {
    let server = SshServer::start();
    let host = ssh(&server);
    let in_shell = session_of_command(&host);
    let stop = AtomicBool::new(false);
    std::thread::scope(|scope| {
        // A restart polling its workers: one short command after the other, for a while.
        let busy = scope.spawn(|| {
            let mut ran = 0;
            while !stop.load(Ordering::SeqCst) {
                assert!(host.exec(&Cmd::new("true")).unwrap().success());
                ran += 1;
            }
            ran
        });
        std::thread::sleep(Duration::from_millis(100));
        // The prune beside it: each command gets the shell after the running one, not a
        // session of its own (an SSH session and the login's start-up files, on the host's
        // cores, while its new workers start).
        let sessions: Vec<String> = (0..20).map(|_| session_of_command(&host)).collect();
        stop.store(true, Ordering::SeqCst);
        assert!(busy.join().unwrap() > 20);
        // A command still gets a session of its own when the one running holds the shell past
        // the 50 ms it waits (one `true` did, once, on a CI machine busy with other tests); an
        // unfair lock starved nearly all 20.
        let elsewhere = sessions.iter().filter(|s| **s != in_shell).count();
        assert!(
            elsewhere <= 2,
            "{elsewhere} of 20 commands ran outside the host's shell"
        );
    });
}

#[test]
fn a_small_change_is_shipped_whole_with_its_modes_and_times_and_vouched_for() {
    use std::os::unix::fs::PermissionsExt;
    let server = SshServer::start();
    let host = ssh(&server);
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    fs::create_dir_all(src.join("pkg")).unwrap();
    fs::write(src.join("app.py"), "v1").unwrap();
    fs::write(src.join("pkg/lib.py"), "library").unwrap();
    let mut files: Vec<PathBuf> = ["app.py", "pkg/lib.py"].iter().map(PathBuf::from).collect();
    let releases = tmp.path().join("root/releases");
    let one = releases.join("1");
    host.upload_tree(&src, &files, &one, None).unwrap();

    // A code-only change: one file edited and made executable, one new in a new folder.
    fs::write(src.join("app.py"), "v2 changed").unwrap();
    fs::set_permissions(src.join("app.py"), fs::Permissions::from_mode(0o750)).unwrap();
    fs::create_dir_all(src.join("new/deeper")).unwrap();
    fs::write(src.join("new/deeper/mod.py"), "new").unwrap();
    files.push("new/deeper/mod.py".into());
    let two = releases.join("2");
    let second = host.upload_tree(&src, &files, &two, Some(&one)).unwrap();
    assert_eq!(
        (second.copied, second.linked, second.bytes),
        (2, 1, 13),
        "{second:?}"
    );
    assert_eq!(
        fs::read_to_string(two.join("app.py")).unwrap(),
        "v2 changed"
    );
    assert_eq!(
        fs::read_to_string(two.join("new/deeper/mod.py")).unwrap(),
        "new"
    );
    let meta = |p: &Path| fs::metadata(p).unwrap();
    assert_eq!(meta(&two.join("app.py")).mode() & 0o7777, 0o750);
    assert_eq!(
        meta(&src.join("app.py")).mtime(),
        meta(&two.join("app.py")).mtime()
    );
    assert_eq!(fs::read_to_string(one.join("app.py")).unwrap(), "v1");
    let names: Vec<String> = fs::read_dir(&two)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(!names.iter().any(|n| n.contains("uploading")), "{names:?}");

    // Its manifest vouches for what arrived: the next upload links all of it.
    let three = releases.join("3");
    let third = host.upload_tree(&src, &files, &three, Some(&two)).unwrap();
    assert_eq!((third.copied, third.linked), (0, 3), "{third:?}");

    // A large change still arrives whole (through rsync).
    let big: Vec<u8> = (0..700_000u32).map(|i| (i % 251) as u8).collect();
    fs::write(src.join("pkg/lib.py"), &big).unwrap();
    let four = releases.join("4");
    let fourth = host.upload_tree(&src, &files, &four, Some(&three)).unwrap();
    assert_eq!((fourth.copied, fourth.linked), (1, 2), "{fourth:?}");
    assert_eq!(fs::read(four.join("pkg/lib.py")).unwrap(), big);
}

/// `read_state` over SSH (one script) answers as the three reads it stands for do, one by one
/// on this machine (the trait's own `read_state`): a journal of any bytes, `current` as a
/// symlink (a target with spaces or a newline), missing, a directory or a file, releases
/// missing, empty or with odd names.
#[test]
fn reading_the_state_at_once_answers_as_the_three_reads_do() {
    use hoist_transport::{LinkRead, Local};
    let server = SshServer::start();
    let host = ssh(&server);
    let local = Local::default();
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let (file, link, dir) = (
        root.join("journal"),
        root.join("current"),
        root.join("releases"),
    );
    let both = |expect_link: LinkRead| {
        let remote = host.read_state(&file, &link, &dir).unwrap();
        let here = local.read_state(&file, &link, &dir).unwrap();
        assert_eq!(remote, here);
        assert_eq!(remote.link, expect_link);
        assert_eq!(remote.file, fs::read(&file).ok());
        remote
    };

    // Nothing there yet.
    let empty = both(LinkRead::Missing);
    assert_eq!(empty.names, Vec::<String>::new());

    fs::create_dir(&dir).unwrap();
    fs::write(&file, b"").unwrap();
    assert_eq!(both(LinkRead::Missing).file, Some(Vec::new()));

    let names = ["20260101T000000Z", "a b", "new\nline", "-x", "é"];
    for name in names {
        fs::create_dir(dir.join(name)).unwrap();
    }
    fs::write(&file, b"{\"a\":1}\nN\0F\0L\n\xff\xfe no newline at the end").unwrap();
    let target = PathBuf::from("releases/a b/x\ny");
    std::os::unix::fs::symlink(&target, &link).unwrap();
    let read = both(LinkRead::Target(target));
    let mut sorted: Vec<String> = names.iter().map(|n| n.to_string()).collect();
    sorted.sort();
    assert_eq!(read.names, sorted);

    fs::remove_file(&link).unwrap();
    fs::create_dir(&link).unwrap();
    both(LinkRead::NotASymlink(FileKind::Dir));
    fs::remove_dir(&link).unwrap();
    fs::write(&link, b"x").unwrap();
    both(LinkRead::NotASymlink(FileKind::File));

    // A dangling symlink is a symlink.
    fs::remove_file(&link).unwrap();
    std::os::unix::fs::symlink("releases/gone", &link).unwrap();
    both(LinkRead::Target(PathBuf::from("releases/gone")));
}

/// Several files read and written in one round trip: any bytes (none at all, no final newline,
/// NULs), a missing file read as missing, a name with spaces; each written file a new inode
/// (a hard link to the old one keeps the old contents) with the mode `write_file_atomic` gives.
#[test]
fn several_files_are_read_and_written_at_once_byte_for_byte() {
    let server = SshServer::start();
    let host = ssh(&server);
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("a dir");
    fs::create_dir(&dir).unwrap();
    let (a, b, gone) = (dir.join("a b.json"), dir.join("b"), dir.join("gone"));
    fs::write(&a, b"old a").unwrap();
    fs::hard_link(&a, dir.join("linked")).unwrap();
    let binary: Vec<u8> = (0..=255u8).chain(b"\n\n\0end".iter().copied()).collect();
    host.write_files_atomic(&[(&a, b"{\n  \"state\": \"good\"\n}"), (&b, &binary)])
        .unwrap();
    assert_eq!(fs::read(&a).unwrap(), b"{\n  \"state\": \"good\"\n}");
    assert_eq!(fs::read(&b).unwrap(), binary);
    assert_eq!(fs::read(dir.join("linked")).unwrap(), b"old a");
    assert_eq!(fs::metadata(&b).unwrap().mode() & 0o777, 0o644);

    let read = host.read_files(&[&a, &gone, &b]).unwrap();
    assert_eq!(
        read,
        vec![Some(fs::read(&a).unwrap()), None, Some(binary.clone())]
    );
    host.write_files_atomic(&[(&a, b"")]).unwrap();
    assert_eq!(host.read_files(&[&a]).unwrap(), vec![Some(Vec::new())]);
    assert_eq!(host.read_files(&[]).unwrap(), Vec::<Option<Vec<u8>>>::new());

    // A file that cannot be written is an error naming it; none is left half-written.
    let err = host
        .write_files_atomic(&[(&dir.join("no such dir/x"), b"x")])
        .unwrap_err()
        .to_string();
    assert!(err.contains("no such dir/x"), "{err}");
    let left: Vec<_> = fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("hoist-tmp"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

/// The kinds of several paths in one round trip, and directories and links made in one: the
/// same answers and the same files as the one-by-one operations on this machine, for paths with
/// spaces and newlines, links replacing a file, a directory with contents and a link elsewhere
/// (never what it points to), a link already right left alone; a failure names what failed and
/// makes nothing after it.
#[test]
fn kinds_and_links_are_read_and_made_at_once_as_one_by_one() {
    use hoist_transport::Local;
    let server = SshServer::start();
    let host = ssh(&server);
    let local = Local::default();
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path().join("a base\nwith a newline");
    fs::create_dir(&base).unwrap();
    let (dir, file, link, dangling, missing, fifo) = (
        base.join("dir"),
        base.join("a file"),
        base.join("link"),
        base.join("dangling"),
        base.join("missing"),
        base.join("fifo"),
    );
    fs::create_dir(&dir).unwrap();
    fs::write(&file, "x").unwrap();
    std::os::unix::fs::symlink(&dir, &link).unwrap();
    std::os::unix::fs::symlink(base.join("nowhere"), &dangling).unwrap();
    assert!(std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success());
    let paths: Vec<&Path> = vec![&dir, &file, &link, &dangling, &missing, &fifo, &dir];
    let kinds = host.kinds(&paths).unwrap();
    assert_eq!(
        kinds,
        vec![
            FileKind::Dir,
            FileKind::File,
            FileKind::Symlink,
            FileKind::Symlink,
            FileKind::Missing,
            FileKind::Other,
            FileKind::Dir
        ]
    );
    assert_eq!(kinds, local.kinds(&paths).unwrap());
    assert_eq!(host.kinds(&[]).unwrap(), Vec::new());

    // The same links made over SSH (in `remote`) and here (in `here`), then compared.
    let make = |t: &dyn Transport, root: &Path| {
        fs::create_dir_all(root.join("release/was a dir/inside")).unwrap();
        fs::write(root.join("release/was a file"), "old").unwrap();
        fs::create_dir_all(root.join("elsewhere")).unwrap();
        fs::write(root.join("elsewhere/kept"), "kept").unwrap();
        std::os::unix::fs::symlink(root.join("elsewhere"), root.join("release/was a link"))
            .unwrap();
        std::os::unix::fs::symlink(root.join("shared/right"), root.join("release/right")).unwrap();
        let right_inode = fs::symlink_metadata(root.join("release/right"))
            .unwrap()
            .ino();
        let (s, r) = (root.join("shared"), root.join("release"));
        let names = [
            "was a dir",
            "was a file",
            "was a link",
            "right",
            "new\nline",
        ];
        let targets: Vec<PathBuf> = names.iter().map(|n| s.join(n)).collect();
        let links: Vec<PathBuf> = names.iter().map(|n| r.join(n)).collect();
        let mut pairs: Vec<(&Path, &Path)> = targets
            .iter()
            .zip(&links)
            .map(|(t, l)| (t.as_path(), l.as_path()))
            .collect();
        let nested = (s.join("nested/dir"), r.join("made/on the way/link"));
        pairs.push((&nested.0, &nested.1));
        let dirs = [
            s.join("was a dir"),
            s.join("nested/dir"),
            r.join("made/on the way"),
        ];
        let dirs: Vec<&Path> = dirs.iter().map(PathBuf::as_path).collect();
        t.create_dirs_and_symlinks(&dirs, &pairs).unwrap();
        for (target, link) in &pairs {
            assert_eq!(&fs::read_link(link).unwrap(), target, "{}", link.display());
        }
        assert!(s.join("nested/dir").is_dir() && r.join("made/on the way").is_dir());
        assert_eq!(
            fs::read_to_string(root.join("elsewhere/kept")).unwrap(),
            "kept"
        );
        assert_eq!(
            fs::symlink_metadata(root.join("release/right"))
                .unwrap()
                .ino(),
            right_inode,
            "a link already right is left alone"
        );
    };
    make(&host, &tmp.path().join("remote"));
    make(&local, &tmp.path().join("here"));

    // A directory that cannot be made: named, with the tool's word; no link is made.
    let blocked = tmp.path().join("blocked");
    fs::write(&blocked, "a file").unwrap();
    let never = tmp.path().join("never");
    let err = host
        .create_dirs_and_symlinks(&[&blocked.join("sub")], &[(&dir, &never)])
        .unwrap_err()
        .to_string();
    assert!(
        err.contains(&format!("create {}", blocked.join("sub").display()))
            && err.contains("Not a directory"),
        "{err}"
    );
    assert!(fs::symlink_metadata(&never).is_err());
    // A link that cannot be made is named; the links before it are made, none after it.
    let (first, last) = (tmp.path().join("first"), tmp.path().join("last"));
    let err = host
        .create_dirs_and_symlinks(
            &[],
            &[
                (&dir, &first),
                (&dir, &tmp.path().join("no dir/x")),
                (&dir, &last),
            ],
        )
        .unwrap_err()
        .to_string();
    assert!(
        err.contains(&format!(
            "symlink {}",
            tmp.path().join("no dir/x").display()
        )),
        "{err}"
    );
    assert!(
        !err.contains(&format!("S{}", tmp.path().display())),
        "{err}"
    );
    assert_eq!(fs::read_link(&first).unwrap(), dir);
    assert!(fs::symlink_metadata(&last).is_err());
}

/// Several links read in one round trip answer as `read_link` does one by one: targets as
/// stored (relative, with a space and a newline, dangling), missing paths as `None`; a path
/// that is no symlink fails naming it, as `read_link` does.
#[test]
fn links_are_read_at_once_as_one_by_one() {
    use hoist_transport::Local;
    let server = SshServer::start();
    let host = ssh(&server);
    let local = Local::default();
    let tmp = tempfile::tempdir().unwrap();
    let (a, b, c, missing, file) = (
        tmp.path().join("a"),
        tmp.path().join("b b"),
        tmp.path().join("c\nc"),
        tmp.path().join("missing"),
        tmp.path().join("a file"),
    );
    std::os::unix::fs::symlink("../../envs/key one", &a).unwrap();
    std::os::unix::fs::symlink("/abs/with\nnewline\n", &b).unwrap();
    std::os::unix::fs::symlink("dangling", &c).unwrap();
    fs::write(&file, "x").unwrap();
    let paths: Vec<&Path> = vec![&a, &missing, &b, &c, &a];
    let read = host.read_links(&paths).unwrap();
    assert_eq!(
        read,
        vec![
            Some(PathBuf::from("../../envs/key one")),
            None,
            Some(PathBuf::from("/abs/with\nnewline\n")),
            Some(PathBuf::from("dangling")),
            Some(PathBuf::from("../../envs/key one")),
        ]
    );
    assert_eq!(read, local.read_links(&paths).unwrap());
    assert_eq!(host.read_links(&[]).unwrap(), Vec::new());

    let err = host.read_links(&[&a, &file, &b]).unwrap_err().to_string();
    assert_eq!(err, host.read_link(&file).unwrap_err().to_string());
    assert!(
        err.contains("a file") && err.contains("not a symlink"),
        "{err}"
    );
}

/// Text input (a journal line, a record, base64 of files) reaches the command as the host's
/// shell reads it from the request, with no `base64` process to decode it: byte for byte,
/// whatever it holds — quotes, `$`, backquotes, backslashes, a carriage return, lines that look
/// like the protocol's own, more than a pipe holds at once — for a brief script and a command
/// alike, and the shell goes on answering after it.
#[test]
fn a_commands_text_input_arrives_byte_for_byte() {
    let server = SshServer::start();
    let ssh = ssh(&server);
    let tricky = "plain\n  \tindented $HOME `id` $(id) \\ \\n 'q' \"dq\"\r\nHOIST-EOF\nHOIST-IN-\n\
                  HOIST-DONE 0\n<<'X'\nX\n\n"
        .to_string();
    let big: String = (0..20_000).map(|i| format!("line {i} of text\n")).collect();
    for input in [tricky, big, "\n".to_string()] {
        let brief = ssh
            .exec(
                &Cmd::new("sh")
                    .brief()
                    .arg("-c")
                    .arg("cat; echo end")
                    .stdin(input.clone().into_bytes()),
            )
            .unwrap();
        assert!(brief.success(), "{brief:?}");
        assert_eq!(brief.stdout_text(), format!("{input}end\n"));
        let plain = ssh
            .exec(&Cmd::new("cat").stdin(input.clone().into_bytes()))
            .unwrap();
        assert!(plain.success(), "{plain:?}");
        assert_eq!(plain.stdout_text(), input);
    }
    let again = ssh.exec(&Cmd::new("echo").arg("still there")).unwrap();
    assert_eq!(again.stdout_text(), "still there\n");
}
