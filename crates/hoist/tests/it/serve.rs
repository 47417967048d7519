//! `hoist serve` as a process: kill -9 in the middle of a run, a restart, SIGTERM.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use hoist_testkit::{free_port, ProcessGuard};

pub(crate) fn sh(dir: &Path, script: &str) {
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

pub(crate) fn hoist(config: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_hoist"));
    cmd.arg("serve")
        .arg("--server-config")
        .arg(config)
        .env("NO_COLOR", "1");
    cmd
}

/// A raw HTTP/1.1 request; returns the status and the body.
pub(crate) fn http(port: u16, method: &str, path: &str, token: &str, body: &str) -> (u16, String) {
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

pub(crate) fn json(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("{e}: {text}"))
}

pub(crate) fn wait_for(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Starts `hoist serve`, its stderr in `log`; returns once it listens.
pub(crate) fn start(config: &Path, log: &Path) -> ProcessGuard {
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
    assert!(String::from_utf8_lossy(&serve.stderr).starts_with("error: hoist serve runs pipelines (the repositories' own code) and refuses to run them as root\nhint: "));

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

/// `hoist serve` for `site`: its project is the site's repository, `main` may deploy, two runs
/// at once; the server (and so every app server its deploys start) carries the site's mark.
fn deploying_server(site: &crate::support::Site) -> (PathBuf, u16, String, ProcessGuard) {
    deploying_server_of(site.dir.path(), &site.project, &site.mark)
}

/// [`deploying_server`] for the repository `project`, its files in `dir`.
fn deploying_server_of(
    dir: &Path,
    project: &Path,
    mark: &str,
) -> (PathBuf, u16, String, ProcessGuard) {
    std::fs::write(dir.join("secret"), "hook-secret\n").unwrap();
    let port = free_port();
    let config = dir.join("hoist-server.toml");
    std::fs::write(
        &config,
        format!(
            "listen = \"127.0.0.1:{port}\"\nallow_root = true\nmax_concurrent_runs = 2\nshutdown_grace = \"5s\"\ndeploy_lock_wait = \"5m\"\ndata_dir = \"serve-data\"\n\n[[project]]\nname = \"site\"\nrepository = \"{}\"\nsecret_file = \"secret\"\ndeploy_branches = [\"main\"]\nauto_cancel = false\n",
            project.display()
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
    let log = dir.join("serve.log");
    let file = std::fs::File::create(&log).unwrap();
    let guard = ProcessGuard::spawn(
        hoist(&config)
            .env(hoist_testkit::GUARD_MARK, mark)
            .stdout(Stdio::null())
            .stderr(file),
        "hoist serve",
        "hoist",
    )
    .grace(Duration::from_secs(20));
    wait_for("hoist serve to listen", Duration::from_secs(30), || {
        std::fs::read_to_string(&log)
            .unwrap_or_default()
            .contains("listening on")
    });
    (config, port, token, guard)
}

pub(crate) fn run_json(port: u16, token: &str, run: i64) -> serde_json::Value {
    let (code, body) = http(port, "GET", &format!("/api/runs/{run}"), token, "");
    assert_eq!(code, 200, "{body}");
    json(&body)
}

pub(crate) fn log_lines(port: u16, token: &str, run: i64) -> Vec<String> {
    let (_, body) = http(port, "GET", &format!("/api/runs/{run}/log"), token, "");
    json(&body)["lines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["text"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn two_runs_deploying_one_environment_wait_for_the_host_lock_and_keep_each_hosts_outcome() {
    let site = crate::support::Site::new();
    let mut toml = std::fs::read_to_string(&site.config).unwrap();
    toml.push_str("\n[pipeline.jobs.ship]\nsteps = [{ deploy = true }]\n");
    std::fs::write(&site.config, toml).unwrap();
    let first_commit = site.commit("deploy from the server");
    site.change_code("second");
    let second_commit = site.git(&["rev-parse", "HEAD"]);
    let (_config, port, token, _server) = deploying_server(&site);

    // A person holds the host's lock: both runs' deploys wait for it instead of failing.
    let out = site.hoist(&["lock", "acquire", "-m", "database maintenance"]);
    crate::support::assert_exit(&out, 0);
    let runs: Vec<i64> = [first_commit, second_commit]
        .iter()
        .map(|commit| {
            let body = format!("{{\"commit\":\"{commit}\",\"branch\":\"main\"}}");
            let (code, body) = http(port, "POST", "/api/projects/site/runs", &token, &body);
            assert_eq!(code, 202, "{body}");
            json(&body)["run"].as_i64().unwrap()
        })
        .collect();
    for &run in &runs {
        wait_for(
            "the deploy to wait for the lock",
            Duration::from_secs(120),
            || {
                log_lines(port, &token, run)
                    .iter()
                    .any(|l| l.contains("waiting for the lock: taken by hand by tester@"))
            },
        );
        assert_eq!(run_json(port, &token, run)["status"], "running");
    }
    assert_eq!(
        site.current(),
        None,
        "nothing deployed while the lock is held"
    );
    let out = site.hoist(&["lock", "release"]);
    crate::support::assert_exit(&out, 0);

    for &run in &runs {
        wait_for("the run to finish", Duration::from_secs(300), || {
            run_json(port, &token, run)["status"] != "running"
        });
        let detail = run_json(port, &token, run);
        assert_eq!(
            detail["status"],
            "passed",
            "{:#?}",
            log_lines(port, &token, run)
        );
        let deployments = detail["deployments"].as_array().unwrap();
        assert_eq!(deployments.len(), 1, "{detail:#}");
        let d = &deployments[0];
        assert_eq!(
            (&d["environment"], &d["host"], &d["outcome"]),
            (&"local".into(), &"local".into(), &"live".into()),
            "{detail:#}"
        );
        // How long the host took and which step deployed, as the run page's table shows.
        assert!(d["millis"].as_u64().is_some_and(|ms| ms > 0), "{detail:#}");
        let step = &d["step"];
        assert!(
            detail["jobs"]
                .as_array()
                .unwrap()
                .iter()
                .any(|j| j["name"] == "ship" && j["steps"][0]["id"] == *step),
            "{detail:#}"
        );
        let release = d["release"].as_str().unwrap();
        assert!(site.release_dir(release).is_dir(), "{release}");
        assert!(log_lines(port, &token, run)
            .contains(&format!("deploy to local: local: live ({release})")));
    }
    // One after the other: the second deploy's release is the live one, and the journal has
    // no deploy that started while another held the lock.
    let last = run_json(port, &token, runs[1])["deployments"][0]["release"]
        .as_str()
        .unwrap()
        .to_string();
    let first = run_json(port, &token, runs[0])["deployments"][0]["release"]
        .as_str()
        .unwrap()
        .to_string();
    let live = site.current().unwrap();
    assert!(live == last || live == first, "{live}");
    site.assert_live(&live);
}

#[test]
fn a_runner_only_replica_on_one_postgresql_shares_the_queue_and_a_kill_9_loses_no_run() {
    let postgres = hoist_testkit::PostgresServer::start();
    let database = postgres.create_database("serve_replicas");
    let dir = tempfile::tempdir().unwrap();
    let work = dir.path().join("work");
    std::fs::create_dir(&work).unwrap();
    // Each step says which process ran it (the owner mark is `<pid>@<data dir>`).
    std::fs::write(
        work.join("hoist.toml"),
        "[pipeline.jobs.test]\nsteps = [{ run = \"echo \\\"ran by $HOIST_SERVER_OWNER\\\"; sleep 3\", name = \"work\" }]\n",
    )
    .unwrap();
    sh(
        &work,
        "git init -q -b master . && git add -A && git commit -qm work",
    );
    let commit = {
        let out = Command::new("git")
            .args(["-C", work.to_str().unwrap(), "rev-parse", "HEAD"])
            .output()
            .unwrap();
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    };
    std::fs::write(dir.path().join("secret"), "hook-secret\n").unwrap();
    let port = free_port();
    let write_config = |name: &str, listen: u16| {
        let config = dir.path().join(format!("{name}.toml"));
        std::fs::write(
            &config,
            format!(
                "listen = \"127.0.0.1:{listen}\"\nallow_root = true\nmax_concurrent_runs = 1\nshutdown_grace = \"2s\"\ndata_dir = \"{name}-data\"\ndatabase = \"{database}\"\n\n[[project]]\nname = \"app\"\nrepository = \"{}\"\nsecret_file = \"secret\"\nauto_cancel = false\n",
                work.display()
            ),
        )
        .unwrap();
        config
    };
    let server_config = write_config("server", port);
    let runner_config = write_config("runner", free_port());
    let out = hoist(&server_config)
        .args(["token", "create", "tests", "--role", "deployer"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let token = String::from_utf8(out.stdout).unwrap().trim().to_string();
    let _server = start(&server_config, &dir.path().join("server.log"));
    let runner_log = dir.path().join("runner.log");
    let runner = ProcessGuard::spawn(
        hoist(&runner_config)
            .arg("--runner-only")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&runner_log).unwrap()),
        "hoist serve --runner-only",
        "hoist",
    )
    .grace(Duration::from_secs(10));
    wait_for("the runner to start", Duration::from_secs(30), || {
        std::fs::read_to_string(&runner_log)
            .unwrap_or_default()
            .contains("hoist serve: running jobs only, serving no HTTP")
    });

    let body = format!("{{\"commit\":\"{commit}\",\"branch\":\"master\"}}");
    let runs: Vec<i64> = (0..6)
        .map(|_| {
            let (code, body) = http(port, "POST", "/api/projects/app/runs", &token, &body);
            assert_eq!(code, 202, "{body}");
            json(&body)["run"].as_i64().unwrap()
        })
        .collect();
    let runner_mark = format!("{}@", runner.id());
    let owners = |run: i64| -> Vec<String> {
        let (_, body) = http(port, "GET", &format!("/api/runs/{run}/log"), &token, "");
        json(&body)["lines"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|l| {
                l["text"]
                    .as_str()?
                    .strip_prefix("ran by ")
                    .map(str::to_string)
            })
            .collect()
    };
    // Kill -9 the runner in the middle of one of its runs.
    let mut killed_run = None;
    wait_for("the runner to take a run", Duration::from_secs(60), || {
        killed_run = runs.iter().copied().find(|&run| {
            owners(run).iter().any(|o| o.starts_with(&runner_mark))
                && status_of(port, &token, run) == "running"
        });
        killed_run.is_some()
    });
    sh(dir.path(), &format!("kill -9 {}", runner.id()));
    let killed_run = killed_run.unwrap();

    // The server takes every queued run; the one the runner held is marked interrupted once
    // its heartbeat is older than 30 s; none ran twice.
    for &run in &runs {
        wait_for("every run to end", Duration::from_secs(120), || {
            !matches!(status_of(port, &token, run).as_str(), "queued" | "running")
        });
        let ran_by = owners(run);
        assert_eq!(ran_by.len(), 1, "run {run} ran once: {ran_by:?}");
        let status = status_of(port, &token, run);
        if run == killed_run {
            assert_eq!(status, "interrupted");
        } else {
            assert_eq!(status, "passed", "run {run}");
        }
    }
    let by_runner = runs
        .iter()
        .filter(|&&run| owners(run)[0].starts_with(&runner_mark))
        .count();
    assert!(by_runner >= 1 && by_runner < runs.len(), "{by_runner}");
}

pub(crate) fn status_of(port: u16, token: &str, run: i64) -> String {
    let (code, body) = http(port, "GET", &format!("/api/runs/{run}"), token, "");
    assert_eq!(code, 200, "{body}");
    json(&body)["status"].as_str().unwrap().to_string()
}

/// A token of `role` named `name`, created with the command line while the server runs.
pub(crate) fn token(config: &Path, name: &str, role: &str) -> String {
    let out = hoist(config)
        .args(["token", "create", name, "--role", role])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

#[test]
fn the_deployments_api_reads_every_host_and_a_deployer_rolls_an_environment_back() {
    let site = crate::support::Site::new();
    // `production` is this machine's root; `staging`'s only host cannot be reached.
    let mut toml = std::fs::read_to_string(&site.config).unwrap();
    toml.push_str(&format!(
        "\n[ssh]\nconnect_timeout = \"2s\"\n\n[hosts.box]\naddress = \"local\"\nroot = \"{}\"\n\n[hosts.gone]\naddress = \"gone.invalid\"\n\n[environments.production]\nhosts = [\"box\"]\n\n[environments.staging]\nhosts = [\"gone\"]\n",
        site.root.display()
    ));
    std::fs::write(&site.config, toml).unwrap();
    site.commit("production and staging");
    let deploy = || {
        let out = site.hoist(&["deploy", "production"]);
        crate::support::assert_exit(&out, 0);
        site.current().unwrap()
    };
    let first = deploy();
    site.change_code("second");
    let second = deploy();
    let (config, port, deployer, _server) = deploying_server(&site);
    let viewer = token(&config, "reader", "viewer");
    let admin = token(&config, "root", "admin");
    let read = |query: &str| {
        let (code, body) = http(
            port,
            "GET",
            &format!("/api/projects/site/deployments{query}"),
            &viewer,
            "",
        );
        assert_eq!(code, 200, "{body}");
        json(&body)
    };
    let environment = |body: &serde_json::Value, name: &str| {
        body["environments"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["name"] == name)
            .unwrap_or_else(|| panic!("no {name}: {body:#}"))
            .clone()
    };

    let seen = read("");
    assert_eq!(seen["cached"], false);
    let production = environment(&seen, "production");
    let host = &production["hosts"][0];
    assert_eq!(host["host"], "box", "{seen:#}");
    assert_eq!(host["live"]["id"], second.as_str(), "{seen:#}");
    assert_eq!(host["rollback_target"], first.as_str(), "{seen:#}");
    assert_eq!(production["drift"], serde_json::json!([]), "{seen:#}");
    assert_eq!(production["unreachable"], serde_json::json!([]), "{seen:#}");
    let staging = environment(&seen, "staging");
    assert_eq!(staging["hosts"], serde_json::json!([]), "{seen:#}");
    assert_eq!(staging["unreachable"][0]["host"], "gone", "{seen:#}");
    assert!(
        staging["unreachable"][0]["error"]
            .as_str()
            .unwrap()
            .contains("gone"),
        "{seen:#}"
    );
    // Read again at once: the same read, said to be cached.
    let again = read("");
    assert_eq!(again["cached"], true);
    assert_eq!(again["read_at"], seen["read_at"]);

    // A viewer may not roll back; a deploy holding the lock makes a rollback fail at once.
    let body = "{\"environment\":\"production\"}";
    let rollback = |token: &str, body: &str| {
        let (code, answer) = http(port, "POST", "/api/projects/site/rollback", token, body);
        (code, json(&answer))
    };
    assert_eq!(rollback(&viewer, body).0, 403);
    crate::support::assert_exit(
        &site.hoist(&["lock", "production", "acquire", "-m", "maintenance"]),
        0,
    );
    let (code, refused) = rollback(&deployer, body);
    assert_eq!(code, 409, "{refused:#}");
    assert!(
        refused["error"].as_str().unwrap().contains("maintenance"),
        "{refused:#}"
    );
    assert_eq!(site.current().as_deref(), Some(second.as_str()));
    crate::support::assert_exit(&site.hoist(&["lock", "production", "release"]), 0);

    let (code, done) = rollback(&deployer, body);
    assert_eq!(code, 200, "{done:#}");
    assert_eq!(done["to"], first.as_str());
    assert_eq!(done["environment"], "production");
    site.assert_live(&first);
    assert!(
        site.journal()
            .iter()
            .any(|e| e["who"] == "token tests (hoist serve)"),
        "{:#?}",
        site.journal()
    );
    let after = read("");
    assert_eq!(
        after["cached"], false,
        "a rollback makes the next read fresh"
    );
    let host = &environment(&after, "production")["hosts"][0];
    assert_eq!(host["live"]["id"], first.as_str(), "{after:#}");
    assert_eq!(host["recorded"]["outcome"], "rolled_back", "{after:#}");
    assert_eq!(host["recorded"]["who"], "token tests", "{after:#}");

    // A deploy the server did not make is drift against what it recorded.
    let third = deploy();
    let drifted = read("?fresh=true");
    let drift = environment(&drifted, "production")["drift"].clone();
    assert_eq!(
        drift,
        serde_json::json!([format!(
            "box serves {third}, but the last deploy or rollback recorded here left {first} (token tests)"
        )]),
        "{drifted:#}"
    );

    // Back to a release named by the request (the one rolled away from was marked bad, and
    // the deploy since pruned it); an id that is none is refused.
    let (code, bad) = rollback(
        &deployer,
        "{\"environment\":\"production\",\"to\":\"../x\"}",
    );
    assert_eq!(code, 422, "{bad:#}");
    let (code, done) = rollback(
        &deployer,
        &format!("{{\"environment\":\"production\",\"to\":\"{first}\"}}"),
    );
    assert_eq!(code, 200, "{done:#}");
    site.assert_live(&first);

    // Every rollback asked, done or not, is in the audit log with who asked (admins read it).
    let (code, _) = http(port, "GET", "/api/audit", &viewer, "");
    assert_eq!(code, 403);
    let (code, audit) = http(port, "GET", "/api/audit", &admin, "");
    assert_eq!(code, 200, "{audit}");
    let rollbacks: Vec<(String, String)> = json(&audit)["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "environment.rollback")
        .map(|e| {
            (
                e["who"].as_str().unwrap().to_string(),
                e["detail"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(rollbacks.len(), 4, "{rollbacks:#?}");
    assert!(rollbacks.iter().all(|(who, _)| who == "token tests"));
    assert_eq!(
        rollbacks[0].1,
        format!("--to {first}: rolled back to {first}")
    );
    assert!(
        rollbacks[3].1.starts_with("the rollback target: failed: "),
        "{rollbacks:#?}"
    );
}

#[test]
fn runner_only_is_refused_on_a_sqlite_store_with_the_fix() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("hoist-server.toml");
    std::fs::write(&config, "allow_root = true\n").unwrap();
    let out = hoist(&config).arg("--runner-only").output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "error: --runner-only needs a PostgreSQL store shared with a server; this one is SQLite, which one process owns\nhint: set database = \"postgres://USER@HOST/DB\" in hoist-server.toml, the same as the server's\n"
    );
}

/// Stops the example app on each root when the test ends (it runs under the test sshd).
struct StopWeb(Vec<PathBuf>);

impl Drop for StopWeb {
    fn drop(&mut self) {
        for root in &self.0 {
            let _ = Command::new(crate::support::example_dir().join("bin/stop-web"))
                .env("HOIST_ROOT", root)
                .env("HOIST_STOP_TIMEOUT", "10")
                .output();
        }
    }
}

#[test]
fn over_ssh_a_runs_deploy_keeps_each_hosts_outcome_and_the_deployments_api_reads_every_host() {
    let site = hoist_testkit::SiteBuilder::new()
        .prefix("hoist-serve-ssh-")
        .hosts(hoist_testkit::Hosts::Ssh(2))
        .health(hoist_testkit::Health::Command(
            "curl -fsS \"http://127.0.0.1:{port}/health\"".into(),
        ))
        .health_timeout("20s")
        .extra("\n[pipeline.jobs.ship]\nsteps = [{ deploy = true }]\n")
        .build();
    let _stop = StopWeb(site.roots.clone());
    let project = site.project.clone();
    sh(
        &project,
        "git init -q -b main . && git add -A && git commit -qm 'ship over ssh'",
    );
    let mark = hoist_testkit::new_mark();
    let (_config, port, token, _server) = deploying_server_of(site.dir.path(), &project, &mark);

    let (code, body) = http(
        port,
        "POST",
        "/api/projects/site/runs",
        &token,
        "{\"branch\":\"main\"}",
    );
    assert_eq!(code, 202, "{body}");
    let run = json(&body)["run"].as_i64().unwrap();
    wait_for("the run to finish", Duration::from_secs(300), || {
        !matches!(status_of(port, &token, run).as_str(), "queued" | "running")
    });
    let detail = run_json(port, &token, run);
    assert_eq!(
        detail["status"],
        "passed",
        "{:#?}",
        log_lines(port, &token, run)
    );
    let release = std::fs::read_link(site.roots[0].join("current"))
        .unwrap()
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    let outcomes: Vec<(String, String, String, String)> = detail["deployments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            let s = |k: &str| d[k].as_str().unwrap().to_string();
            (s("environment"), s("host"), s("release"), s("outcome"))
        })
        .collect();
    let row = |host: &str| {
        (
            "production".to_string(),
            host.to_string(),
            release.clone(),
            "live".to_string(),
        )
    };
    assert_eq!(outcomes, vec![row("web1"), row("web2")], "{detail:#}");

    let (code, body) = http(port, "GET", "/api/projects/site/deployments", &token, "");
    assert_eq!(code, 200, "{body}");
    let seen = json(&body);
    let production = &seen["environments"][0];
    assert_eq!(production["name"], "production", "{seen:#}");
    assert_eq!(production["unreachable"], serde_json::json!([]), "{seen:#}");
    assert_eq!(production["drift"], serde_json::json!([]), "{seen:#}");
    let hosts = production["hosts"].as_array().unwrap();
    assert_eq!(hosts.len(), 2, "{seen:#}");
    for (host, name) in hosts.iter().zip(["web1", "web2"]) {
        assert_eq!(host["host"], name, "{seen:#}");
        assert_eq!(host["live"]["id"], release.as_str(), "{seen:#}");
        assert_eq!(host["recorded"]["run"], run, "{seen:#}");
    }
}
