//! Webhook to `202` latency of an in-process server on a SQLite store: 1, 50 and 200
//! deliveries at once (each a real HTTP request with a real HMAC on its own connection).
//! Runners are busy with one long run, so what is measured is the webhook's own path: verify,
//! parse, commit delivery and run, answer.
//!
//! `cargo run --release -p hoist-server --example serve-bench` (or `scripts/bench-serve`);
//! `HOIST_BENCH_DATABASE=postgres://…` measures on that PostgreSQL database instead.

use std::time::{Duration, Instant};

use hmac::{Hmac, Mac};
use sha2::Sha256;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const SECRET: &str = "bench-secret";

async fn deliver(
    addr: std::net::SocketAddr,
    n: usize,
    branch: &str,
    commit: Option<&str>,
) -> (u16, Duration) {
    let commit = commit.map_or_else(|| format!("{:040x}", n + 1), str::to_string);
    let body = format!(
        r#"{{"ref":"refs/heads/{branch}","after":"{commit}","head_commit":{{"id":"{commit}","message":"m"}},"pusher":{{"name":"bench"}}}}"#
    );
    let mut mac = Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(body.as_bytes());
    let signature = hex::encode(mac.finalize().into_bytes());
    let request = format!(
        "POST /hooks/app HTTP/1.1\r\nHost: bench\r\nConnection: close\r\nContent-Type: application/json\r\nX-GitHub-Event: push\r\nX-GitHub-Delivery: bench-{n}\r\nX-Hub-Signature-256: sha256={signature}\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let started = Instant::now();
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).await.unwrap();
    let took = started.elapsed();
    let status = String::from_utf8_lossy(&answer)
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, took)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("secret"), SECRET).unwrap();
    // A repository whose pipeline sleeps: its run keeps the one runner busy.
    let repo = dir.path().join("repo");
    std::fs::create_dir(&repo).unwrap();
    std::fs::write(
        repo.join("hoist.toml"),
        "[pipeline.jobs.t]\nsteps = [{ run = \"sleep 600\" }]\n",
    )
    .unwrap();
    let made = std::process::Command::new("sh")
        .args(["-ec", "git init -q -b master . && git add -A && git -c user.name=b -c user.email=b@b commit -qm sleep && git rev-parse HEAD"])
        .current_dir(&repo)
        .output()
        .unwrap();
    assert!(made.status.success());
    let head = String::from_utf8(made.stdout).unwrap().trim().to_string();
    let path = dir.path().join("hoist-server.toml");
    let database = std::env::var("HOIST_BENCH_DATABASE")
        .map(|url| format!("database = \"{url}\"\n"))
        .unwrap_or_default();
    std::fs::write(
        &path,
        format!("listen = \"127.0.0.1:0\"\nallow_root = true\nmax_concurrent_runs = 1\nshutdown_grace = \"1s\"\n{database}[[project]]\nname = \"app\"\nrepository = \"{}\"\nsecret_file = \"secret\"\n",
            repo.display()
        ),
    )
    .unwrap();
    let config = hoist_server::config::load(&path).unwrap();
    let server = hoist_server::start(config).await.unwrap();
    let addr = server.addr();
    first_step(&server, &head).await;
    // This run sleeps: it keeps the one runner busy, and its log stream open.
    let (status, sleeping) = deliver_run(addr, 0, "master", &head).await;
    assert_eq!(status, 202);
    let mut next = 0;
    for concurrency in [1usize, 50, 200] {
        let mut times = Vec::new();
        // Several rounds, so that p99 has enough samples.
        let rounds = (1000 / concurrency).max(5);
        for _ in 0..rounds {
            let mut tasks = Vec::new();
            for _ in 0..concurrency {
                next += 1;
                // Each delivery on a branch of its own: auto-cancel has nothing to do.
                let branch = format!("b{next}");
                tasks.push(tokio::spawn(async move {
                    deliver(addr, next, &branch, None).await
                }));
            }
            for task in tasks {
                let (status, took) = task.await.unwrap();
                assert_eq!(status, 202);
                times.push(took);
            }
        }
        times.sort();
        println!(
            "{concurrency:>3} at once: {} deliveries, 202 p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
            times.len(),
            percentile(&times, 0.5).as_secs_f64() * 1000.0,
            percentile(&times, 0.99).as_secs_f64() * 1000.0,
            times.last().unwrap().as_secs_f64() * 1000.0
        );
    }
    sse_latency(&server, sleeping).await;
    server.shutdown(Duration::from_secs(1)).await.unwrap();
}

/// Webhook sent → the run's first step started (as the store says), the first time (the mirror
/// is cloned) and then with a warm mirror; each run is cancelled before the next push.
async fn first_step(server: &hoist_server::RunningServer, head: &str) {
    let store = server.store();
    let mut warm = Vec::new();
    for n in 0..6 {
        let started = Instant::now();
        let (status, run) =
            deliver_run(server.addr(), 100_000 + n, &format!("first{n}"), head).await;
        assert_eq!(status, 202);
        loop {
            let jobs = store.jobs(run).await.unwrap();
            if jobs
                .iter()
                .flat_map(|j| &j.steps)
                .any(|s| s.started_at.is_some())
            {
                break;
            }
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "run {run} never started a step"
            );
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        let took = started.elapsed();
        if n == 0 {
            println!(
                "webhook -> first step started: {:.0} ms (cold: the mirror is cloned)",
                took.as_secs_f64() * 1000.0
            );
        } else {
            warm.push(took);
        }
        store.cancel(run, "bench").await.unwrap();
        // Let the runner see the cancel and come back to the queue.
        tokio::time::sleep(Duration::from_millis(1500)).await;
    }
    warm.sort();
    println!(
        "webhook -> first step started, warm mirror: {} runs, p50 {:.0} ms, max {:.0} ms",
        warm.len(),
        percentile(&warm, 0.5).as_secs_f64() * 1000.0,
        warm.last().unwrap().as_secs_f64() * 1000.0
    );
}

/// [`deliver`], and the run id of its `202`.
async fn deliver_run(
    addr: std::net::SocketAddr,
    n: usize,
    branch: &str,
    commit: &str,
) -> (u16, i64) {
    let body = format!(
        r#"{{"ref":"refs/heads/{branch}","after":"{commit}","head_commit":{{"id":"{commit}","message":"m"}},"pusher":{{"name":"bench"}}}}"#
    );
    let mut mac = Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(body.as_bytes());
    let signature = hex::encode(mac.finalize().into_bytes());
    let request = format!(
        "POST /hooks/app HTTP/1.1\r\nHost: bench\r\nConnection: close\r\nContent-Type: application/json\r\nX-GitHub-Event: push\r\nX-GitHub-Delivery: bench-{n}\r\nX-Hub-Signature-256: sha256={signature}\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).await.unwrap();
    let answer = String::from_utf8_lossy(&answer);
    let status = answer
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let run = answer
        .split_once("\r\n\r\n")
        .and_then(|(_, body)| serde_json::from_str::<serde_json::Value>(body).ok())
        .and_then(|v| v["run"].as_i64())
        .unwrap_or(0);
    (status, run)
}

/// Log line appended to the store → the same line read by an SSE client over HTTP.
async fn sse_latency(server: &hoist_server::RunningServer, sleeping: i64) {
    let store = server.store();
    let token = store
        .create_token("bench", hoist_store::Role::Viewer, "bench")
        .await
        .unwrap()
        .secret;
    // The sleeping run's stream stays open. Resume after its newest line.
    let start = hoist_store::NewLogLine {
        step: None,
        at: chrono::Utc::now(),
        text: "bench starts".into(),
    };
    let last = store.append_log(sleeping, &[start]).await.unwrap();
    let mut stream = tokio::net::TcpStream::connect(server.addr()).await.unwrap();
    let request = format!(
        "GET /api/runs/{sleeping}/events HTTP/1.1\r\nHost: bench\r\nAuthorization: Bearer {token}\r\nLast-Event-ID: {last}\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut times = Vec::new();
    let mut buffer = Vec::new();
    let mut chunk = [0u8; 4096];
    for n in 0..200 {
        let text = format!("probe {n}");
        let started = Instant::now();
        let line = hoist_store::NewLogLine {
            step: None,
            at: chrono::Utc::now(),
            text: text.clone(),
        };
        store.append_log(sleeping, &[line]).await.unwrap();
        let wanted = format!("data: {text}\n");
        while !String::from_utf8_lossy(&buffer).contains(&wanted) {
            let read = stream.read(&mut chunk).await.unwrap();
            assert!(read > 0, "the stream ended");
            buffer.extend_from_slice(&chunk[..read]);
        }
        times.push(started.elapsed());
        buffer.clear();
    }
    times.sort();
    println!(
        "log line -> SSE client: {} lines, p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        times.len(),
        percentile(&times, 0.5).as_secs_f64() * 1000.0,
        percentile(&times, 0.99).as_secs_f64() * 1000.0,
        times.last().unwrap().as_secs_f64() * 1000.0
    );
}
