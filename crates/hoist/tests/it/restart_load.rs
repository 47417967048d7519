//! Zero-downtime restarts, proven under load with the real servers: a private supervisord runs
//! gunicorn or uWSGI from the files `hoist setup` wrote, a private nginx proxies to it, and a
//! bounded load generator of GETs and POSTs counts every failed request during five deploys and
//! two rollbacks.
//!
//! The counts are asserted (zero failures for the graceful strategies, GETs and POSTs, a minimum
//! of requests, and requests answered during every deploy and rollback); the timings are only
//! printed. `scripts/bench-restart` runs the same scenario longer and with more load. Every
//! server runs under a `ProcessGuard`: it is stopped, with its workers, however the test ends.

use std::fs;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::support::{assert_exit, free_port, Site, EXIT_BEFORE_SWITCH, EXIT_OK, EXIT_ROLLED_BACK};
use hoist_testkit::ProcessGuard;

/// The servers are heavy for a 2-core machine: one scenario at a time.
/// (Under `cargo test`, whose tests share a process; nextest runs each test in a process of its
/// own and keeps these one at a time by their test group in `.config/nextest.toml`.)
static SERIAL: Mutex<()> = Mutex::new(());

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Server {
    Gunicorn,
    Uwsgi,
}

/// How the app is restarted in a scenario.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Strategy {
    GunicornHup,
    UwsgiChain,
    /// A plain `supervisorctl restart`: a stop, then a start.
    SupervisorRestart,
}

impl Strategy {
    fn server(self) -> Server {
        match self {
            Strategy::UwsgiChain => Server::Uwsgi,
            _ => Server::Gunicorn,
        }
    }
}

/// A site whose web server runs under a private supervisord, from `hoist setup`'s files,
/// behind a private nginx.
///
/// Fields drop in order: the servers stop before the site's temporary directory goes.
struct Stack {
    /// supervisord and the app server it runs (a SIGTERM makes it stop its programs, within
    /// their `stopwaitsecs`).
    _supervisord: ProcessGuard,
    _nginx: ProcessGuard,
    site: Site,
    app_port: u16,
    nginx_port: u16,
    bin: PathBuf,
}

impl Stack {
    fn start(strategy: Strategy) -> Stack {
        Stack::start_with(strategy, "app:app")
    }

    /// A stack whose hoist.toml names `entry`.
    fn start_with(strategy: Strategy, entry: &str) -> Stack {
        let site = Site::new();
        let base = site.dir.path().to_path_buf();
        let app_port = free_port();
        let nginx_port = free_port();
        let root = site.root.clone();
        let run = root.join("shared/run");
        let process = match strategy {
            Strategy::GunicornHup => format!(
                "restart = \"gunicorn-hup\"\npidfile = \"{}\"",
                run.join("gunicorn.pid").display()
            ),
            Strategy::UwsgiChain => format!(
                "restart = \"uwsgi-chain\"\nfifo = \"{}\"",
                run.join("uwsgi.fifo").display()
            ),
            Strategy::SupervisorRestart => {
                "restart = \"supervisor\"\nprogram = \"example-web\"".into()
            }
        };
        let server = match strategy.server() {
            Server::Gunicorn => "gunicorn",
            Server::Uwsgi => "uwsgi",
        };
        let venv = base.join("server-venv");
        let config = format!(
            r#"[app]
name = "example"
entry = "{entry}"
requirements = ["requirements.txt"]
exclude = ["tests/", "requirements-dev.txt", "instance/settings.toml", "instance/*.sqlite3"]
installer = "uv"

[release]
root = "{root}"
keep_releases = 5
shared = ["instance/settings.toml", "logs/", "run/"]

[[process]]
name = "web"
{process}
timeout = "60s"

[health]
url = "http://127.0.0.1:{app_port}/health"
status = 200
body = "ok"
timeout = "15s"
interval = "100ms"

[setup]
server = "{server}"
port = {app_port}
workers = 2
server_venv = "{venv}"
supervisor_dir = "{base}/supervisor.d"
program_log_dir = "{base}"
nginx_dir = "{base}/nginx.d"
nginx_listen = "127.0.0.1:{nginx_port}"
"#,
            root = root.display(),
            venv = venv.display(),
            base = base.display(),
        );
        fs::write(&site.config, config).unwrap();
        if entry.ends_with("()") {
            // Only a factory: the module defines no application for the server to find.
            let app = site.project.join("app.py");
            let text = fs::read_to_string(&app).unwrap();
            assert!(text.contains("\napp = create_app()\n"), "{text}");
            fs::write(&app, text.replace("\napp = create_app()\n", "\n")).unwrap();
        }
        site.commit("served by a real app server under supervisor");

        if strategy.server() == Server::Gunicorn {
            make_server_venv(&venv);
        }
        let out = site.hoist(&["setup", "--apply"]);
        assert_exit(&out, EXIT_OK);

        let supervisor_conf = base.join("supervisord.conf");
        fs::write(
            &supervisor_conf,
            format!(
                "[unix_http_server]\nfile={b}/supervisor.sock\n\n[supervisord]\nlogfile={b}/supervisord.log\npidfile={b}/supervisord.pid\nnodaemon=true\n\n[rpcinterface:supervisor]\nsupervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface\n\n[supervisorctl]\nserverurl=unix://{b}/supervisor.sock\n\n[include]\nfiles = {b}/supervisor.d/*.conf\n",
                b = base.display()
            ),
        )
        .unwrap();
        // hoist runs `supervisorctl` from PATH: this one talks to the private supervisord.
        let bin = base.join("bin");
        fs::create_dir_all(&bin).unwrap();
        let wrapper = bin.join("supervisorctl");
        fs::write(
            &wrapper,
            format!(
                "#!/bin/sh\nexec /usr/bin/supervisorctl -c '{}' \"$@\"\n",
                supervisor_conf.display()
            ),
        )
        .unwrap();
        Command::new("chmod")
            .arg("+x")
            .arg(&wrapper)
            .status()
            .unwrap();
        let supervisord = ProcessGuard::spawn(
            Command::new("supervisord")
                .arg("-c")
                .arg(&supervisor_conf)
                .stdout(Stdio::null())
                .stderr(Stdio::null()),
            "supervisord",
            "supervisor",
        )
        .grace(Duration::from_secs(40));

        let nginx = start_nginx(&base, &base.join("nginx.d"));
        let stack = Stack {
            _supervisord: supervisord,
            _nginx: nginx,
            site,
            app_port,
            nginx_port,
            bin,
        };
        // Before the first deploy the server runs, and hoist's loader answers 503: no release.
        stack.wait_for_answer(stack.app_port, "/health");
        stack
    }

    fn hoist(&self, args: &[&str]) -> std::process::Output {
        let path = format!(
            "{}:{}",
            self.bin.display(),
            std::env::var("PATH").unwrap_or_default()
        );
        self.site.command(args).env("PATH", path).output().unwrap()
    }

    fn wait_for_answer(&self, port: u16, path: &str) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while request(port, path).is_none() {
            assert!(
                Instant::now() < deadline,
                "nothing answers on 127.0.0.1:{port}{path}; see {}",
                self.site.root.join("shared/logs").display()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// How many workers the gunicorn master (its pid file under `shared/run`) has: the live
    /// children of that pid, from /proc.
    fn workers(&self) -> usize {
        let pid = fs::read_to_string(self.site.root.join("shared/run/gunicorn.pid"))
            .expect("gunicorn's pid file")
            .trim()
            .to_string();
        fs::read_dir("/proc")
            .unwrap()
            .filter_map(|e| fs::read_to_string(e.ok()?.path().join("stat")).ok())
            .filter(|stat| {
                let fields: Vec<&str> = stat
                    .rsplit_once(") ")
                    .map_or(Vec::new(), |(_, rest)| rest.split(' ').collect());
                fields.get(1) == Some(&pid.as_str()) && fields.first() != Some(&"Z")
            })
            .count()
    }

    /// The release the app serves through nginx, by `/version`.
    fn serving(&self) -> Option<String> {
        let (status, body) = request(self.nginx_port, "/version")?;
        if status != 200 {
            return None;
        }
        let v: serde_json::Value = serde_json::from_str(&body).ok()?;
        v["release"].as_str().map(str::to_string)
    }
}

/// A virtualenv with gunicorn for the master; workers load the app's packages from their
/// release's own virtualenv through hoist's loader.
fn make_server_venv(venv: &Path) {
    let run = |args: &[&str]| {
        let out = Command::new("uv").args(args).output().unwrap();
        assert!(
            out.status.success(),
            "uv {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let venv_text = venv.display().to_string();
    run(&["venv", "-q", "--python", "python3", &venv_text]);
    run(&[
        "pip",
        "install",
        "-q",
        "--python",
        &format!("{venv_text}/bin/python"),
        "gunicorn==27.0.1",
    ]);
}

fn start_nginx(base: &Path, sites: &Path) -> ProcessGuard {
    let prefix = base.join("nginx");
    fs::create_dir_all(prefix.join("tmp")).unwrap();
    let conf = prefix.join("nginx.conf");
    fs::write(
        &conf,
        format!(
            "daemon off;\nworker_processes 1;\npid {p}/nginx.pid;\nerror_log {p}/error.log;\nevents {{ worker_connections 512; }}\nhttp {{\n  access_log off;\n  client_body_temp_path {p}/tmp/body;\n  proxy_temp_path {p}/tmp/proxy;\n  fastcgi_temp_path {p}/tmp/fastcgi;\n  uwsgi_temp_path {p}/tmp/uwsgi;\n  scgi_temp_path {p}/tmp/scgi;\n  include {s}/*.conf;\n}}\n",
            p = prefix.display(),
            s = sites.display()
        ),
    )
    .unwrap();
    ProcessGuard::spawn(
        Command::new("nginx")
            .arg("-c")
            .arg(&conf)
            .arg("-p")
            .arg(&prefix)
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
        "nginx",
        "nginx",
    )
}

/// One GET on loopback: status and body, `None` when the connection or the read failed.
fn request(port: u16, path: &str) -> Option<(u16, String)> {
    exchange(
        port,
        &format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"),
    )
}

/// One POST of a note (a form) to `/notes` on loopback: status and body.
fn post_note(port: u16, text: &str) -> Option<(u16, String)> {
    let body = format!("text={text}");
    exchange(
        port,
        &format!(
            "POST /notes HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        ),
    )
}

fn exchange(port: u16, raw_request: &str) -> Option<(u16, String)> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    s.write_all(raw_request.as_bytes()).ok()?;
    let mut raw = String::new();
    s.read_to_string(&mut raw).ok()?;
    let status = raw.split_whitespace().nth(1)?.parse().ok()?;
    let (_, body) = raw.split_once("\r\n\r\n")?;
    Some((status, body.to_string()))
}

/// The two kinds of request in the load.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Method {
    /// `GET /`, answered 200: nginx may retry it once on another connection (idempotent).
    Get,
    /// `POST /notes`, answered 201: nginx never retries it, so it sees what the reload does.
    Post,
}

/// One request of the load: when it ended, what it was, whether it got its expected answer.
#[derive(Clone, Copy, Debug)]
struct Exchange {
    ended: Instant,
    method: Method,
    ok: bool,
}

/// What the load generator saw.
#[derive(Debug, Default)]
struct LoadReport {
    gets: u64,
    posts: u64,
    failed_gets: u64,
    failed_posts: u64,
    longest_gap: Duration,
    first_failures: Vec<String>,
    /// nginx's error log lines, which say why a request failed upstream.
    proxy_errors: Vec<String>,
    /// Every request, in the order they ended.
    exchanges: Vec<Exchange>,
}

impl LoadReport {
    fn failed(&self) -> u64 {
        self.failed_gets + self.failed_posts
    }

    /// How many requests of `method` got their answer within `window`.
    fn answered_within(&self, method: Method, window: (Instant, Instant)) -> usize {
        self.exchanges
            .iter()
            .filter(|e| e.method == method && e.ok && e.ended >= window.0 && e.ended <= window.1)
            .count()
    }
}

/// One client's requests and its first failures.
type ClientLog = (Vec<Exchange>, Vec<String>);

/// Bounded load: `clients` threads, each sending `GET /` and `POST /notes` in turn, one after
/// another, until stopped, at most `max_requests` each and never past `max_time`.
struct Load {
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<ClientLog>>,
}

impl Load {
    fn start(port: u16, clients: usize, max_requests: u64, max_time: Duration) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let threads = (0..clients)
            .map(|client| {
                let stop = stop.clone();
                std::thread::spawn(move || {
                    let began = Instant::now();
                    let mut seen = Vec::new();
                    let mut failures = Vec::new();
                    while !stop.load(Ordering::Relaxed)
                        && (seen.len() as u64) < max_requests
                        && began.elapsed() < max_time
                    {
                        let (method, answer, expected) = if seen.len() % 2 == 0 {
                            (Method::Get, request(port, "/"), 200)
                        } else {
                            let text = format!("load-{client}-{}", seen.len());
                            (Method::Post, post_note(port, &text), 201)
                        };
                        let ok = match answer {
                            Some((status, _)) if status == expected => true,
                            Some((status, body)) => {
                                let words: Vec<&str> = body.split_whitespace().collect();
                                failures.push(format!(
                                    "{method:?} {status} {}",
                                    words.join(" ").chars().take(60).collect::<String>()
                                ));
                                false
                            }
                            None => {
                                failures.push(format!("{method:?} no answer"));
                                false
                            }
                        };
                        seen.push(Exchange {
                            ended: Instant::now(),
                            method,
                            ok,
                        });
                    }
                    (seen, failures)
                })
            })
            .collect();
        Load { stop, threads }
    }

    fn finish(self) -> LoadReport {
        self.stop.store(true, Ordering::Relaxed);
        let mut all = Vec::new();
        let mut report = LoadReport::default();
        for t in self.threads {
            let (seen, failures) = t.join().unwrap();
            all.extend(seen);
            report.first_failures.extend(
                failures
                    .into_iter()
                    .take(3 - report.first_failures.len().min(3)),
            );
        }
        all.sort_by_key(|e| e.ended);
        let count = |method: Method, ok: bool| {
            all.iter()
                .filter(|e| e.method == method && e.ok == ok)
                .count() as u64
        };
        report.failed_gets = count(Method::Get, false);
        report.failed_posts = count(Method::Post, false);
        report.gets = report.failed_gets + count(Method::Get, true);
        report.posts = report.failed_posts + count(Method::Post, true);
        let mut last_ok: Option<Instant> = all.first().map(|e| e.ended);
        for e in all.iter().filter(|e| e.ok) {
            if let Some(prev) = last_ok {
                report.longest_gap = report.longest_gap.max(e.ended.duration_since(prev));
            }
            last_ok = Some(e.ended);
        }
        report.exchanges = all;
        report
    }
}

/// The fewest requests of each kind a scenario must send across its run: a run with fewer
/// proves little about the reloads. The slowest scenario, gunicorn's sync workers, sent 664 of
/// each with 3 clients on the 2-core test machine under a load average of 13.
const MIN_REQUESTS_PER_METHOD: u64 = 200;

/// Five deploys and two rollbacks under load through nginx; every one must succeed and leave
/// the expected release serving. Returns what the load generator saw, after checking that it
/// sent enough GETs and POSTs and that both kinds were answered during every deploy and rollback
/// (when the strategy drops none).
///
/// `RESTART_LOAD_CLIENTS` (default 3) and `RESTART_LOAD_PAUSE_MS` (default 0, a pause after
/// each deploy and rollback) make it heavier and longer; `scripts/bench-restart` sets them.
fn deploys_and_rollbacks_under_load(stack: &Stack, strategy: Strategy) -> LoadReport {
    let knob = |name: &str, default: u64| {
        std::env::var(name)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    };
    let clients = usize::try_from(knob("RESTART_LOAD_CLIENTS", 3)).unwrap_or(3);
    let pause = Duration::from_millis(knob("RESTART_LOAD_PAUSE_MS", 0));

    let first = stack.hoist(&["deploy"]);
    assert_exit(&first, EXIT_OK);
    let mut ids = vec![stack.site.current().unwrap()];
    assert_eq!(stack.serving(), ids.last().cloned());

    let load = Load::start(
        stack.nginx_port,
        clients,
        1_000_000,
        Duration::from_secs(600),
    );
    // When each deploy and rollback ran: the load must have been answered during each.
    let mut windows = Vec::new();
    for n in 0..5 {
        stack.site.change_code(&format!("load-{n}"));
        let began = Instant::now();
        let out = stack.hoist(&["deploy"]);
        windows.push((format!("deploy {n}"), (began, Instant::now())));
        assert_exit(&out, EXIT_OK);
        let id = stack.site.current().unwrap();
        assert_eq!(
            stack.serving().as_deref(),
            Some(id.as_str()),
            "after deploy {n}"
        );
        ids.push(id);
        std::thread::sleep(pause);
    }
    for back in [ids[4].clone(), ids[3].clone()] {
        let began = Instant::now();
        let out = stack.hoist(&["rollback"]);
        windows.push((format!("rollback to {back}"), (began, Instant::now())));
        assert_exit(&out, EXIT_OK);
        assert_eq!(stack.site.current().as_deref(), Some(back.as_str()));
        assert_eq!(
            stack.serving().as_deref(),
            Some(back.as_str()),
            "after rollback"
        );
        std::thread::sleep(pause);
    }
    let mut report = load.finish();
    report.proxy_errors = fs::read_to_string(stack.site.dir.path().join("nginx/error.log"))
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains("[error]"))
        .take(2)
        .map(str::to_string)
        .collect();
    eprintln!(
        "restart figures: {strategy:?}: {} requests sent ({} GET, {} POST), {} failed ({} GET, {} POST), longest gap without a successful answer {} ms ({clients} clients through nginx, 5 deploys, 2 rollbacks)",
        report.gets + report.posts,
        report.gets,
        report.posts,
        report.failed(),
        report.failed_gets,
        report.failed_posts,
        report.longest_gap.as_millis(),
    );
    let took = |prefix: &str| -> Vec<u128> {
        let mut ms: Vec<u128> = windows
            .iter()
            .filter(|(what, _)| what.starts_with(prefix))
            .map(|(_, (from, to))| to.duration_since(*from).as_millis())
            .collect();
        ms.sort_unstable();
        ms
    };
    eprintln!(
        "restart figures: {strategy:?}: wall time of each `hoist deploy` {:?} ms, of each `hoist rollback` {:?} ms (under load)",
        took("deploy"),
        took("rollback")
    );
    if report.failed() > 0 {
        eprintln!(
            "restart figures: {strategy:?}: first failures {:?}; nginx said {:?}",
            report.first_failures, report.proxy_errors
        );
    }
    assert!(
        report.gets >= MIN_REQUESTS_PER_METHOD && report.posts >= MIN_REQUESTS_PER_METHOD,
        "{strategy:?}: the load sent {} GETs and {} POSTs, fewer than {MIN_REQUESTS_PER_METHOD} of each: it proves nothing about the reloads",
        report.gets,
        report.posts
    );
    if strategy != Strategy::SupervisorRestart {
        for (what, window) in &windows {
            for method in [Method::Get, Method::Post] {
                assert!(
                    report.answered_within(method, *window) > 0,
                    "{strategy:?}: no {method:?} was answered during {what} ({} ms): the load did not overlap it",
                    window.1.duration_since(window.0).as_millis()
                );
            }
        }
    }
    report
}

#[test]
fn gunicorn_hup_drops_no_request_across_deploys_and_rollbacks() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let stack = Stack::start(Strategy::GunicornHup);
    let report = deploys_and_rollbacks_under_load(&stack, Strategy::GunicornHup);
    assert_eq!(
        (report.failed_gets, report.failed_posts),
        (0, 0),
        "gunicorn-hup: {:?}",
        report.first_failures
    );
}

#[test]
fn uwsgi_chain_reload_drops_no_request_across_deploys_and_rollbacks() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let stack = Stack::start(Strategy::UwsgiChain);
    let report = deploys_and_rollbacks_under_load(&stack, Strategy::UwsgiChain);
    assert_eq!(
        (report.failed_gets, report.failed_posts),
        (0, 0),
        "uwsgi-chain: {:?}",
        report.first_failures
    );
}

#[test]
fn supervisor_plain_restart_is_measured_for_comparison() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let stack = Stack::start(Strategy::SupervisorRestart);
    // A stop and a start: failures are expected and reported, not asserted.
    deploys_and_rollbacks_under_load(&stack, Strategy::SupervisorRestart);
}

/// A release whose app cannot start: the previous release is restored and serves again, and the
/// deploy exits non-zero. Under uWSGI the health check catches it; under gunicorn-hup the warm
/// reload does (the new workers fail to load it while the old ones serve), and no request fails
/// while it happens.
fn broken_release_is_rolled_back(strategy: Strategy) {
    let stack = Stack::start(strategy);
    let out = stack.hoist(&["deploy"]);
    assert_exit(&out, EXIT_OK);
    let good = stack.site.current().unwrap();

    let app = stack.site.project.join("app.py");
    let mut text = fs::read_to_string(&app).unwrap();
    // Fails only inside the app server, so hoist's import check before the switch passes and
    // the health check after the reload is what catches it.
    text.push_str(concat!(
        "\nimport sys\n",
        "try:\n    import uwsgi  # noqa: F401\n    UNDER_SERVER = True\n",
        "except ImportError:\n    UNDER_SERVER = \"gunicorn\" in sys.modules\n",
        "if UNDER_SERVER:\n    raise RuntimeError(\"this release cannot start\")\n",
    ));
    fs::write(&app, text).unwrap();
    stack.site.commit("a release that cannot start");

    let load = Load::start(stack.nginx_port, 2, 1_000_000, Duration::from_secs(300));
    let out = stack.hoist(&["deploy"]);
    let report = load.finish();
    assert_exit(&out, EXIT_ROLLED_BACK);
    let stderr = crate::support::stderr(&out);
    match strategy.server() {
        Server::Uwsgi => assert!(stderr.contains("health check failed"), "{stderr}"),
        Server::Gunicorn => {
            assert!(
                stderr.contains("the new workers cannot load")
                    && stderr.contains("RuntimeError: this release cannot start")
                    && stderr.contains("the old workers still serve"),
                "{stderr}"
            );
            assert_eq!(
                (report.failed_gets, report.failed_posts),
                (0, 0),
                "a release that cannot start took traffic: {:?}",
                report.first_failures
            );
            assert!(
                report.gets > 0 && report.posts > 0,
                "no load during the deploy: {} GETs, {} POSTs",
                report.gets,
                report.posts
            );
            // The failed workers were retired with the switch back: as many as before.
            assert_eq!(
                stack.workers(),
                2,
                "gunicorn's workers after the switch back"
            );
        }
    }
    assert!(stderr.contains(&format!("serves {good} again")), "{stderr}");
    assert_eq!(stack.site.current().as_deref(), Some(good.as_str()));
    assert_eq!(stack.serving().as_deref(), Some(good.as_str()));
    let log = fs::read_to_string(stack.site.root.join(match strategy.server() {
        Server::Gunicorn => "shared/logs/gunicorn-error.log",
        Server::Uwsgi => "shared/logs/uwsgi.log",
    }))
    .unwrap();
    assert!(log.contains("this release cannot start"), "{log}");
}

#[test]
fn gunicorn_hup_restores_the_previous_release_when_the_new_one_cannot_start() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    broken_release_is_rolled_back(Strategy::GunicornHup);
}

#[test]
fn uwsgi_chain_restores_the_previous_release_when_the_new_one_cannot_start() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    broken_release_is_rolled_back(Strategy::UwsgiChain);
}

/// `supervisorctl restart` of a program that cannot spawn: hoist reads `supervisorctl status`
/// rather than trusting the exit code, names the program's state, and the deploy fails.
#[test]
fn supervisor_restart_that_cannot_spawn_fails_the_deploy_by_its_status() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let stack = Stack::start(Strategy::SupervisorRestart);
    let out = stack.hoist(&["deploy"]);
    assert_exit(&out, EXIT_OK);
    let good = stack.site.current().unwrap();

    // From now on the server cannot start at all.
    let gunicorn = stack.site.dir.path().join("server-venv/bin/gunicorn");
    fs::write(
        &gunicorn,
        "#!/bin/sh\necho 'gunicorn: cannot start' >&2\nexit 1\n",
    )
    .unwrap();
    stack.site.change_code("unstartable");
    let out = stack.hoist(&["deploy"]);
    assert_exit(&out, EXIT_ROLLED_BACK);
    let err = crate::support::stderr(&out);
    // supervisorctl's own word is kept in the message, but the verdict is the status.
    assert!(
        err.contains("restarting web failed: supervisor program example-web is BACKOFF")
            || err.contains("restarting web failed: supervisor program example-web is FATAL"),
        "{err}"
    );
    assert!(
        err.contains("hint: see `supervisorctl tail example-web stderr`"),
        "{err}"
    );
    // The switch back's restart failed too, for the same reason: that is what is said, not a
    // health verdict (the health check never ran).
    assert!(
        err.contains(&format!(
            "switched back to {good}, but restarting it failed (its health was not checked): \
             local: restarting web failed: supervisor program example-web is"
        )),
        "{err}"
    );
    assert!(!err.contains("not healthy either"), "{err}");
    assert_eq!(stack.site.current().as_deref(), Some(good.as_str()));
}

/// `entry = "app:create_app()"`: the import check and the app server's workers call the
/// factory (the module defines no `app`), and the release serves; a factory that raises never
/// serves: the import check stops the deploy before the switch, or (gunicorn-hup) the new
/// workers of the warm reload fail to load it and the deploy is switched back.
fn a_factory_entry_is_served(strategy: Strategy) {
    let stack = Stack::start_with(strategy, "app:create_app()");
    let out = stack.hoist(&["deploy"]);
    assert_exit(&out, EXIT_OK);
    let good = stack.site.current().unwrap();
    assert_eq!(stack.serving().as_deref(), Some(good.as_str()));

    let app = stack.site.project.join("app.py");
    let text = fs::read_to_string(&app).unwrap();
    fs::write(
        &app,
        text.replace(
            "    settings = load_settings(app_dir)\n",
            "    raise RuntimeError(\"the factory cannot build the app\")\n",
        ),
    )
    .unwrap();
    stack.site.commit("a factory that raises");
    let out = stack.hoist(&["deploy"]);
    let err = crate::support::stderr(&out);
    match strategy.server() {
        // The import check before the switch catches it.
        Server::Uwsgi => {
            assert_exit(&out, crate::support::EXIT_BEFORE_SWITCH);
            assert!(
                err.contains("cannot import its entry point app:create_app()"),
                "{err}"
            );
        }
        // The warm reload is the import check: the new workers fail to load it and never
        // serve, and the deploy is switched back.
        Server::Gunicorn => {
            assert_exit(&out, EXIT_ROLLED_BACK);
            assert!(err.contains("the new workers cannot load"), "{err}");
        }
    }
    assert!(
        err.contains("RuntimeError: the factory cannot build the app"),
        "{err}"
    );
    assert_eq!(stack.site.current().as_deref(), Some(good.as_str()));
    assert_eq!(stack.serving().as_deref(), Some(good.as_str()));
}

#[test]
fn gunicorn_serves_a_factory_entry() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    a_factory_entry_is_served(Strategy::GunicornHup);
}

/// The warm reload is the import check only where the running workers' loader keeps out of a
/// release it cannot load (it says so in `<ready dir>/loader`). A host whose loader predates
/// warm reloads (no such file; `hoist setup` not run again) keeps the import check: a release
/// that cannot import stops before the switch, exit 3, and never takes traffic.
#[test]
fn a_loader_from_before_warm_reloads_keeps_the_import_check() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let stack = Stack::start(Strategy::GunicornHup);
    assert_exit(&stack.hoist(&["deploy"]), EXIT_OK);
    let good = stack.site.current().unwrap();
    let marker = stack.site.root.join("shared/run/hoist-ready/loader");
    assert_eq!(fs::read_to_string(&marker).unwrap(), "warm-reload 1\n");

    // As on a host set up by an older hoist.
    fs::remove_file(&marker).unwrap();
    let app = stack.site.project.join("app.py");
    let text = fs::read_to_string(&app).unwrap();
    fs::write(
        &app,
        format!("{text}\nraise RuntimeError(\"this release cannot import\")\n"),
    )
    .unwrap();
    stack.site.commit("a release that cannot import");
    let out = stack.hoist(&["deploy"]);
    assert_exit(&out, EXIT_BEFORE_SWITCH);
    let err = crate::support::stderr(&out);
    assert!(
        err.contains("RuntimeError: this release cannot import"),
        "{err}"
    );
    assert_eq!(stack.site.current().as_deref(), Some(good.as_str()));
    assert_eq!(stack.serving().as_deref(), Some(good.as_str()));
}

#[test]
fn uwsgi_serves_a_factory_entry() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    a_factory_entry_is_served(Strategy::UwsgiChain);
}

/// hoist killed (SIGKILL) at every step of a deploy under gunicorn-hup (`kill_walk_points`: one
/// point per state a kill can leave), and inside the warm reload once the new workers are warm
/// and before the old ones retire: the app keeps answering through nginx after each kill (the
/// old master serves whatever happened), `current` is a whole release, and the next deploy
/// serves exactly what `current` names, with as many workers as before.
#[test]
fn killing_a_gunicorn_hup_deploy_at_any_step_never_stops_the_serving() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let stack = Stack::start(Strategy::GunicornHup);
    assert_exit(&stack.hoist(&["deploy"]), EXIT_OK);
    let points: Vec<&str> = crate::support::kill_walk_points("deploy:")
        .into_iter()
        .chain(["warm:grown"])
        .collect();
    let workers_before = stack.workers();
    let path = format!(
        "{}:{}",
        stack.bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    for point in points {
        stack
            .site
            .change_code(&format!("graceful, killed at {point}"));
        let out = stack
            .site
            .command(&["deploy"])
            .env("PATH", &path)
            .env("HOIST_FAIL_AT", point)
            .output()
            .unwrap();
        {
            use std::os::unix::process::ExitStatusExt;
            assert_eq!(
                out.status.signal(),
                Some(9),
                "{point}: hoist was not killed: {}",
                crate::support::stderr(&out)
            );
        }
        let current = stack.site.current().expect("current survives the kill");
        assert!(
            stack
                .site
                .release_dir(&current)
                .join(".venv/.hoist-complete")
                .exists(),
            "{point}: current {current} is not a whole release"
        );
        assert!(
            stack.serving().is_some(),
            "{point}: nothing serves after the kill"
        );
        stack.site.change_code(&format!("graceful, after {point}"));
        assert_exit(&stack.hoist(&["deploy"]), EXIT_OK);
        let live = stack.site.current().unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        while stack.serving().as_deref() != Some(live.as_str()) {
            assert!(
                Instant::now() < deadline,
                "{point}: after the next deploy the app serves {:?}, current is {live}",
                stack.serving()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        assert_eq!(
            stack.workers(),
            workers_before,
            "{point}: the next deploy left another number of workers"
        );
    }
}

/// A request that outlasts the warm reload's retirement of the old workers: its worker finishes
/// it (SIGTERM lets a sync worker end the request it serves), the deploy succeeds, and gunicorn
/// keeps as many workers as before, not one fewer.
#[test]
fn a_slow_request_through_a_gunicorn_hup_deploy_is_answered_and_no_worker_is_lost() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let stack = Stack::start(Strategy::GunicornHup);
    let app = stack.site.project.join("app.py");
    let mut text = fs::read_to_string(&app).unwrap();
    text.push_str(concat!(
        "\nimport time as _time\n\n\n",
        "@app.get(\"/slow\")\n",
        "def slow():\n    _time.sleep(6)\n    return \"slow done\"\n",
    ));
    fs::write(&app, text).unwrap();
    stack.site.commit("a slow page");
    assert_exit(&stack.hoist(&["deploy"]), EXIT_OK);
    let workers_before = stack.workers();

    let port = stack.app_port;
    let slow = std::thread::spawn(move || request(port, "/slow"));
    std::thread::sleep(Duration::from_millis(300));
    stack.site.change_code("during a slow request");
    let out = stack.hoist(&["deploy"]);
    assert_exit(&out, EXIT_OK);
    let live = stack.site.current().unwrap();
    assert_eq!(stack.serving().as_deref(), Some(live.as_str()));
    let answer = slow.join().unwrap();
    assert_eq!(
        answer.as_ref().map(|(status, body)| (*status, body.trim())),
        Some((200, "slow done")),
        "the slow request"
    );
    assert_eq!(stack.workers(), workers_before, "gunicorn's workers");
}

/// `hoist logs` reads a supervisor program's log through the real supervisord: the last lines
/// of the file supervisord writes for it.
#[test]
fn logs_show_the_tail_of_a_supervisor_programs_log() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let stack = Stack::start(Strategy::SupervisorRestart);
    assert_exit(&stack.hoist(&["deploy"]), EXIT_OK);
    let log_file = find_file(stack.site.dir.path(), "example-web.log")
        .expect("supervisord writes the program's log");
    // What the program printed, as supervisord keeps it (gunicorn itself logs to its own
    // files, so the lines are added here).
    let mut file = fs::OpenOptions::new().append(true).open(&log_file).unwrap();
    file.write_all(b"line one\nline two\nline three\nline four\n")
        .unwrap();

    for args in [&["logs", "-n", "3"][..], &["logs", "web", "-n", "3"][..]] {
        let out = stack.hoist(args);
        assert_exit(&out, EXIT_OK);
        let shown = crate::support::stdout(&out);
        let mut lines = shown.lines();
        assert_eq!(lines.next(), Some("==> supervisor program example-web <=="));
        let tail: Vec<&str> = lines.collect();
        assert_eq!(tail, ["line two", "line three", "line four"], "{args:?}");
    }

    let out = stack.hoist(&["logs", "worker"]);
    assert_exit(&out, crate::support::EXIT_CONFIG);
    assert!(
        crate::support::stderr(&out).contains(
            "no environment or [[process]] named \"worker\"; environments: none; processes: web"
        ),
        "{}",
        crate::support::stderr(&out)
    );
}

fn find_file(dir: &Path, name: &str) -> Option<PathBuf> {
    for entry in fs::read_dir(dir).ok()? {
        let entry = entry.ok()?;
        let path = entry.path();
        if entry.file_type().ok()?.is_dir() {
            if let Some(found) = find_file(&path, name) {
                return Some(found);
            }
        } else if entry.file_name() == name {
            return Some(path);
        }
    }
    None
}
