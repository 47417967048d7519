//! `Transport::exec_streaming`: each line of a running command reaches the caller while the
//! command still runs, locally and over a real sshd.
//!
//! The command below writes a line, then waits for a flag file that only the line callback
//! creates: if lines came only once the command had ended, it would give up and say "never".

use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;

use hoist_testkit::SshServer;
use hoist_transport::{Cmd, Local, Ssh, SshTarget, Stream, Transport};

const SCRIPT: &str = r#"echo one
echo warming up >&2
for i in $(seq 200); do [ -e "$FLAG" ] && break; sleep 0.05; done
if [ -e "$FLAG" ]; then echo two; else echo never; fi
echo done >&2"#;

fn streams_while_running(t: &dyn Transport) {
    let tmp = tempfile::tempdir().unwrap();
    let flag = tmp.path().join("flag");
    let seen = Mutex::new(Vec::new());
    let on_line = |stream: Stream, line: &str| {
        if line == "one" {
            std::fs::write(&flag, "").unwrap();
        }
        seen.lock().unwrap().push((stream, line.to_owned()));
    };
    let cmd = Cmd::shell(SCRIPT).env("FLAG", flag.display().to_string());
    let out = t.exec_streaming(&cmd, &on_line).unwrap();
    assert!(out.success(), "{}", out.stderr_text());
    assert_eq!(out.stdout_text(), "one\ntwo\n");
    assert_eq!(out.stderr_text(), "warming up\ndone\n");
    let mut seen = seen.into_inner().unwrap();
    // The two streams interleave as they come; each keeps its order.
    seen.sort_by_key(|(stream, _)| *stream == Stream::Stderr);
    assert_eq!(
        seen,
        [
            (Stream::Stdout, "one".to_owned()),
            (Stream::Stdout, "two".to_owned()),
            (Stream::Stderr, "warming up".to_owned()),
            (Stream::Stderr, "done".to_owned()),
        ]
    );
}

#[test]
fn local_lines_arrive_while_the_command_runs() {
    streams_while_running(&Local::new("box"));
}

#[test]
fn ssh_lines_arrive_while_the_command_runs() {
    let server = SshServer::start();
    let mut target = SshTarget::new("web1", "web1");
    target.config_file = Some(server.client_config.clone());
    target.connect_timeout = Duration::from_secs(5);
    let host = Ssh::connect(&target).unwrap();
    streams_while_running(&host);

    // A streamed command runs in the directory and with the environment it was given, and its
    // exit status is its own.
    let out = host
        .exec_streaming(
            &Cmd::shell("echo \"$GREETING in $(pwd)\"; exit 3")
                .env("GREETING", "hi 'there'")
                .cwd(Path::new("/tmp")),
            &|_, _| {},
        )
        .unwrap();
    assert_eq!(out.status, 3);
    assert_eq!(out.stdout_text(), "hi 'there' in /tmp\n");

    // A long line is shown in pieces and bytes that are not UTF-8 do not end the host's shell;
    // the output returned is the command's, byte for byte.
    let long = "x".repeat(2500);
    let shown = Mutex::new(String::new());
    let out = host
        .exec_streaming(
            &Cmd::shell(format!("printf '%s\\n' {long}; printf '\\377\\n' >&2")),
            &|stream, line| {
                if stream == Stream::Stdout {
                    shown.lock().unwrap().push_str(line);
                }
            },
        )
        .unwrap();
    assert!(out.success(), "{}", out.stderr_text());
    assert_eq!(out.stdout, format!("{long}\n").into_bytes());
    assert_eq!(out.stderr, b"\xff\n");
    assert_eq!(shown.into_inner().unwrap(), long);
    let again = host.exec(&Cmd::new("echo").arg("still there")).unwrap();
    assert_eq!(again.stdout_text(), "still there\n");
}
