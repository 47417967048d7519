//! Push to live: a signed webhook for a new commit → the new release answering on a local
//! deploy target, through a real `hoist serve` (the binary in `HOIST_BENCH_HOIST`) whose
//! pipeline is `checkout` then `deploy`, deploying the example Flask app to a local root.
//! Printed per push: push → live, the pipeline's own steps (the sum of their durations),
//! push → live beyond them, and webhook → run finished beyond them (the server's own cost:
//! queue, claim, mirror fetch, checkout, starting steps, storing). The first push builds the
//! environment (cold); the next ones are code-only.
//!
//! `scripts/bench-serve` runs it; `HOIST_BENCH_PUSHES` (default 5) warm pushes;
//! `HOIST_BENCH_DATABASE=postgres://…` stores the runs in that PostgreSQL database.

use std::io::{Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use hmac::{Hmac, Mac};
use hoist_testkit::{free_port, ProcessGuard, SiteBuilder};
use sha2::Sha256;

const SECRET: &str = "bench-secret";

fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .args([
            "-c",
            "user.name=bench",
            "-c",
            "user.email=bench@example.com",
        ])
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// One HTTP/1.1 request; the status and the body.
fn http(port: u16, request: &str) -> Option<(u16, String)> {
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    stream.write_all(request.as_bytes()).ok()?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer).ok()?;
    let status = answer.split(' ').nth(1)?.parse().ok()?;
    let body = answer.split_once("\r\n\r\n")?.1.to_string();
    Some((status, body))
}

fn get(port: u16, path: &str, token: &str) -> serde_json::Value {
    let (_, body) = http(
        port,
        &format!("GET {path} HTTP/1.1\r\nHost: b\r\nConnection: close\r\nAuthorization: Bearer {token}\r\n\r\n"),
    )
    .unwrap();
    serde_json::from_str(&body).unwrap()
}

fn webhook(port: u16, n: usize, commit: &str) -> i64 {
    let body = format!(
        r#"{{"ref":"refs/heads/main","after":"{commit}","head_commit":{{"id":"{commit}","message":"push {n}"}},"pusher":{{"name":"bench"}}}}"#
    );
    let mut mac = Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(body.as_bytes());
    let signature = hex::encode(mac.finalize().into_bytes());
    let (status, answer) = http(port, &format!(
        "POST /hooks/site HTTP/1.1\r\nHost: b\r\nConnection: close\r\nContent-Type: application/json\r\nX-GitHub-Event: push\r\nX-GitHub-Delivery: live-{n}\r\nX-Hub-Signature-256: sha256={signature}\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    ))
    .unwrap();
    assert_eq!(status, 202, "{answer}");
    serde_json::from_str::<serde_json::Value>(&answer).unwrap()["run"]
        .as_i64()
        .unwrap()
}

/// The commit the app on `port` says it serves.
fn serving(port: u16) -> Option<String> {
    let (status, body) = http(
        port,
        "GET /version HTTP/1.1\r\nHost: b\r\nConnection: close\r\n\r\n",
    )?;
    let v: serde_json::Value = serde_json::from_str(&body).ok()?;
    (status == 200).then(|| v["commit"].as_str().map(str::to_string))?
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn main() {
    let hoist = std::env::var("HOIST_BENCH_HOIST").expect("HOIST_BENCH_HOIST: the hoist binary");
    let pushes: usize = std::env::var("HOIST_BENCH_PUSHES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(5);
    let site = SiteBuilder::new()
        .prefix("hoist-bench-live-")
        .extra("\n[pipeline.jobs.ship]\nsteps = [\"checkout\", { deploy = true }]\n")
        .build();
    let project = site.project.clone();
    git(&project, &["init", "-q", "-b", "main", "."]);
    git(&project, &["add", "-A"]);
    git(&project, &["commit", "-qm", "first"]);
    let dir = site.dir.path();
    std::fs::write(dir.join("secret"), SECRET).unwrap();
    let port = free_port();
    let config = dir.join("hoist-server.toml");
    let database = std::env::var("HOIST_BENCH_DATABASE")
        .map(|url| format!("database = \"{url}\"\n"))
        .unwrap_or_default();
    std::fs::write(
        &config,
        format!(
            "listen = \"127.0.0.1:{port}\"\nallow_root = true\nmax_concurrent_runs = 1\nshutdown_grace = \"5s\"\ndata_dir = \"serve-data\"\n{database}\n[[project]]\nname = \"site\"\nrepository = \"{}\"\nsecret_file = \"secret\"\ndeploy_branches = [\"main\"]\n",
            project.display()
        ),
    )
    .unwrap();
    let token = Command::new(&hoist)
        .args(["serve", "--server-config"])
        .arg(&config)
        .args(["token", "create", "bench", "--role", "viewer"])
        .output()
        .unwrap();
    let token = String::from_utf8(token.stdout).unwrap().trim().to_string();
    let log = dir.join("serve.log");
    let mut server = ProcessGuard::spawn(
        Command::new(&hoist)
            .args(["serve", "--server-config"])
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap()),
        "hoist serve",
        "hoist",
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    while !std::fs::read_to_string(&log)
        .unwrap_or_default()
        .contains("listening on")
    {
        assert!(Instant::now() < deadline, "hoist serve did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    let app_port = site.ports[0];
    println!(
        "push -> live through hoist serve (checkout + deploy to a local root, the example app):"
    );
    let mut beyond_live = Vec::new();
    let mut beyond_finished = Vec::new();
    for n in 0..=pushes {
        if n > 0 {
            let app = project.join("app.py");
            let mut text = std::fs::read_to_string(&app).unwrap();
            text.push_str(&format!("\n# push {n}\n"));
            std::fs::write(&app, text).unwrap();
            git(&project, &["commit", "-qam", &format!("push {n}")]);
        }
        let commit = git(&project, &["rev-parse", "HEAD"]);
        let sent = Instant::now();
        let run = webhook(port, n, &commit);
        let deadline = sent + Duration::from_secs(600);
        while serving(app_port).as_deref() != Some(commit.as_str()) {
            assert!(
                Instant::now() < deadline,
                "run {run} never went live: {:#}",
                get(port, &format!("/api/runs/{run}/log"), &token)
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        let live = sent.elapsed();
        let detail = loop {
            let detail = get(port, &format!("/api/runs/{run}"), &token);
            if !matches!(detail["status"].as_str(), Some("queued" | "running")) {
                break detail;
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        let finished = sent.elapsed();
        assert_eq!(detail["status"], "passed", "{detail:#}");
        let mut steps = Duration::ZERO;
        let mut names = Vec::new();
        for job in detail["jobs"].as_array().unwrap() {
            for step in job["steps"].as_array().unwrap() {
                let millis = step["millis"].as_u64().unwrap_or(0);
                steps += Duration::from_millis(millis);
                names.push(format!(
                    "{} {millis} ms",
                    step["name"].as_str().unwrap_or("?")
                ));
            }
        }
        let over_live = ms(live) - ms(steps);
        let over_finished = ms(finished) - ms(steps);
        println!(
            "  {}: push -> live {:.0} ms; steps {:.0} ms ({}); live - steps {:+.0} ms; run finished - steps {:+.0} ms",
            if n == 0 { "first (an empty root)".to_string() } else { format!("push {n}") },
            ms(live),
            ms(steps),
            names.join(", "),
            over_live,
            over_finished
        );
        if n > 0 {
            beyond_live.push(over_live);
            beyond_finished.push(over_finished);
        }
    }
    if !beyond_live.is_empty() {
        let median = |v: &mut Vec<f64>| {
            v.sort_by(f64::total_cmp);
            v[v.len() / 2]
        };
        println!(
            "  warm median: live - steps {:+.0} ms, run finished - steps {:+.0} ms (target: live within 2000 ms of the steps)",
            median(&mut beyond_live),
            median(&mut beyond_finished)
        );
    }
    server.stop();
    let _ = Command::new(hoist_testkit::example_dir().join("bin/stop-web"))
        .env("HOIST_ROOT", &site.roots[0])
        .env("HOIST_STOP_TIMEOUT", "10")
        .output();
}
