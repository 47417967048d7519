//! `hoist serve` as a process: kill -9 in the middle of a run, a restart, SIGTERM.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use hoist_testkit::{free_port, ProcessGuard};

fn sh(dir: &Path, script: &str) {
    let out = Command::new("sh")
        .args(["-ec", script])
        .current_dir(dir)
        .env("GIT_AUTHOR_NAME", "Ada")
        .env("GIT_AUTHOR_EMAIL", "ada@example.com")
        .env("GIT_COMMITTER_NAME", "Ada")
        .env("GIT_COMMITTER_EMAIL", "ada@example.com")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{script}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn hoist(config: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_hoist"));
    cmd.arg("serve")
        .arg("--server-config")
        .arg(config)
        .env("NO_COLOR", "1");
    cmd
}

/// A raw HTTP/1.1 request; returns the status and the body.
fn http(port: u16, method: &str, path: &str, token: &str, body: &str) -> (u16, String) {
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    let status = answer.split(' ').nth(1).unwrap().parse().unwrap();
    let body = answer
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}

fn json(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("{e}: {text}"))
}

fn wait_for(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Starts `hoist serve`, its stderr in `log`; returns once it listens.
fn start(config: &Path, log: &Path) -> ProcessGuard {
    let file = std::fs::File::create(log).unwrap();
    let guard = ProcessGuard::spawn(
        hoist(config).stdout(Stdio::null()).stderr(file),
        "hoist serve",
        "hoist",
    )
    .grace(Duration::from_secs(20));
    wait_for("hoist serve to listen", Duration::from_secs(30), || {
        std::fs::read_to_string(log)
            .unwrap_or_default()
            .contains("listening on")
    });
    guard
}

struct Setup {
    dir: tempfile::TempDir,
    config: PathBuf,
    port: u16,
    token: String,
}

fn setup() -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let work = dir.path().join("work");
    std::fs::create_dir(&work).unwrap();
    // master's pipeline runs long, with a child in the background; `quick`'s is quick.
    std::fs::write(
        work.join("hoist.toml"),
        "[pipeline.jobs.test]\nsteps = [\"checkout\", { run = \"sleep 300 & echo started; sleep 301\", name = \"slow\" }]\n",
    )
    .unwrap();
    sh(
        &work,
        "git init -q -b master . && git add -A && git commit -qm slow && git init -q --bare ../origin.git && git remote add origin ../origin.git && git push -q origin master",
    );
    std::fs::write(
        work.join("hoist.toml"),
        "[pipeline.jobs.test]\nsteps = [\"checkout\", { run = \"echo quick\", name = \"quick\" }]\n",
    )
    .unwrap();
    sh(
        &work,
        "git checkout -q -b quick && git commit -qam quick && git push -q origin quick",
    );
    std::fs::write(dir.path().join("secret"), "hook-secret\n").unwrap();
    let port = free_port();
    let config = dir.path().join("hoist-server.toml");
    std::fs::write(
        &config,
        format!(
            "listen = \"127.0.0.1:{port}\"\nallow_root = true\nmax_concurrent_runs = 1\nshutdown_grace = \"2s\"\n\n[[project]]\nname = \"app\"\nrepository = \"{}\"\nsecret_file = \"secret\"\n",
            dir.path().join("origin.git").display()
        ),
    )
    .unwrap();
    let out = hoist(&config)
        .args(["token", "create", "tests", "--role", "deployer"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let token = String::from_utf8(out.stdout).unwrap().trim().to_string();
    Setup {
        dir,
        config,
        port,
        token,
    }
}

fn status(s: &Setup, run: i64) -> String {
    let (code, body) = http(s.port, "GET", &format!("/api/runs/{run}"), &s.token, "");
    assert_eq!(code, 200, "{body}");
    json(&body)["status"].as_str().unwrap().to_string()
}

fn trigger(s: &Setup, branch: &str) -> i64 {
    let (code, body) = http(
        s.port,
        "POST",
        "/api/projects/app/runs",
        &s.token,
        &format!("{{\"branch\":\"{branch}\"}}"),
    );
    assert_eq!(code, 202, "{body}");
    json(&body)["run"].as_i64().unwrap()
}

fn log_has(s: &Setup, run: i64, line: &str) -> bool {
    let (_, body) = http(s.port, "GET", &format!("/api/runs/{run}/log"), &s.token, "");
    json(&body)["lines"]
        .as_array()
        .unwrap()
        .iter()
        .any(|l| l["text"] == line)
}

#[test]
fn kill_9_mid_run_then_a_restart_interrupts_the_run_kills_its_processes_and_runs_the_queue() {
    let s = setup();
    let log1 = s.dir.path().join("serve-1.log");
    let mut first = start(&s.config, &log1);
    let slow = trigger(&s, "master");
    wait_for("the slow step to start", Duration::from_secs(60), || {
        log_has(&s, slow, "started")
    });
    // Queued from the command line, while the server runs.
    let cli = hoist(&s.config)
        .args(["run", "app", "--branch", "quick"])
        .output()
        .unwrap();
    assert_eq!(
        cli.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&cli.stderr)
    );
    let queued: i64 = String::from_utf8(cli.stdout)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&cli.stderr),
        format!("queued run {queued} of app\n")
    );
    assert_eq!(status(&s, queued), "queued");
    let unknown = hoist(&s.config)
        .args(["run", "app", "--branch", "nope"])
        .output()
        .unwrap();
    assert_eq!(unknown.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&unknown.stderr),
        "error: the repository has no branch \"nope\"\n"
    );

    sh(s.dir.path(), &format!("kill -9 {}", first.id()));
    wait_for("the server to die", Duration::from_secs(10), || {
        first.try_wait().is_some()
    });
    // The step's processes outlived the server (its own process group): the restart must stop them.
    let left = first.processes();
    assert!(
        !left.is_empty(),
        "the job's sleeps should still be running after kill -9"
    );

    let log2 = s.dir.path().join("serve-2.log");
    let mut second = start(&s.config, &log2);
    assert_eq!(
        first.processes(),
        Vec::<u32>::new(),
        "no process of the killed server's runs is left"
    );
    let stderr = std::fs::read_to_string(&log2).unwrap();
    assert!(
        stderr.contains(&format!(
            "run {slow} was running when the server stopped: now interrupted"
        )),
        "{stderr}"
    );
    assert_eq!(status(&s, slow), "interrupted");
    wait_for("the queued run to pass", Duration::from_secs(60), || {
        status(&s, queued) == "passed"
    });
    assert!(log_has(&s, queued, "quick"));

    // SIGTERM: stop accepting, finish (or cancel) within the grace period, exit 0.
    let rerun = {
        let (code, body) = http(
            s.port,
            "POST",
            &format!("/api/runs/{slow}/rerun"),
            &s.token,
            "",
        );
        assert_eq!(code, 202, "{body}");
        json(&body)["run"].as_i64().unwrap()
    };
    wait_for("the re-run to start", Duration::from_secs(60), || {
        log_has(&s, rerun, "started")
    });
    sh(s.dir.path(), &format!("kill -TERM {}", second.id()));
    let mut exit = None;
    wait_for("the server to stop", Duration::from_secs(20), || {
        exit = second.try_wait();
        exit.is_some()
    });
    assert_eq!(exit.unwrap().code(), Some(0));
    assert!(std::fs::read_to_string(&log2)
        .unwrap()
        .ends_with("hoist serve: stopped\n"));
    assert_eq!(
        second.processes(),
        Vec::<u32>::new(),
        "the cancelled run's processes are gone"
    );
    let db = s.dir.path().join("hoist-data/hoist.db");
    let out = Command::new("sqlite3")
        .arg(&db)
        .arg(format!(
            "select status || ' ' || cancelled_by from runs where id = {rerun}"
        ))
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "cancelled server shutdown"
    );
}

#[test]
fn init_user_add_and_token_create_as_a_user_types_them() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("hoist-server.toml");
    let init = hoist(&config).arg("init").output().unwrap();
    assert_eq!(init.status.code(), Some(0));
    assert!(std::fs::read_to_string(&config)
        .unwrap()
        .contains("listen = \"127.0.0.1:8080\""));
    let again = hoist(&config).arg("init").output().unwrap();
    assert_eq!(again.status.code(), Some(2));
    assert_eq!(
        String::from_utf8_lossy(&again.stderr),
        format!(
            "error: {} already exists\nhint: pass --force to overwrite it\n",
            config.display()
        )
    );

    let mut add = hoist(&config)
        .args(["user", "add", "ada", "--role", "admin"])
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    add.stdin
        .take()
        .unwrap()
        .write_all(b"correct horse\n")
        .unwrap();
    let added = add.wait_with_output().unwrap();
    assert_eq!(added.status.code(), Some(0));
    assert_eq!(
        String::from_utf8_lossy(&added.stderr),
        "added user ada (admin)\n"
    );
    let twice = hoist(&config)
        .args(["user", "add", "ada", "--role", "admin"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(twice.status.code(), Some(2), "no password on stdin");

    let token = hoist(&config)
        .args(["token", "create", "ci-bot", "--role", "deployer"])
        .output()
        .unwrap();
    assert_eq!(token.status.code(), Some(0));
    let secret = String::from_utf8(token.stdout).unwrap();
    assert!(
        secret.starts_with("hoist_") && secret.ends_with('\n') && secret.len() > 40,
        "{secret}"
    );
    let same = hoist(&config)
        .args(["token", "create", "ci-bot", "--role", "viewer"])
        .output()
        .unwrap();
    assert_eq!(same.status.code(), Some(2));
    assert_eq!(
        String::from_utf8_lossy(&same.stderr),
        "error: token `ci-bot` already exists\n"
    );

    // Root refused (this machine's tests run as root) with the way out.
    let serve = hoist(&config).output().unwrap();
    assert_eq!(serve.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&serve.stderr).starts_with("error: hoist serve runs pipelines (the repositories' own code) and refuses to run as root\nhint: "));

    std::fs::write(
        &config,
        "[[project]]\nname = \"shop\"\nrepository = \"/srv/shop.git\"\nsecret = \"hunter2\"\n",
    )
    .unwrap();
    let inline = hoist(&config)
        .args(["token", "create", "x", "--role", "viewer"])
        .output()
        .unwrap();
    assert_eq!(inline.status.code(), Some(2));
    assert_eq!(
        String::from_utf8_lossy(&inline.stderr),
        format!("error: {}:4:10: project \"shop\": the webhook secret is written in the file\nhint: a secret never belongs in a committed file: set secret_env = \"NAME\" (an environment variable of the server) or secret_file = \"PATH\"\n", config.display())
    );
}
