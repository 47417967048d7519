//! How long the store takes for what the server does most: recording a webhook delivery (the
//! work before a `202`) with many at once, and claiming runs.
//!
//! `cargo run -p hoist-store --example store-bench [--release]` measures a SQLite file in a temp
//! dir and a throwaway PostgreSQL (hoist-testkit); `… -- URL` measures that database instead.

use std::sync::Arc;
use std::time::{Duration, Instant};

use hoist_store::{NewDelivery, NewRun, Store, Trigger, TriggerKind};

fn run(i: usize) -> NewRun {
    NewRun {
        project: "bench".into(),
        branch: format!("b{}", i % 20),
        commit: format!("{i:040x}"),
        message: "bench".into(),
        author: "bench".into(),
        trigger: Trigger {
            kind: TriggerKind::Webhook,
            by: "bench".into(),
        },
        auto_cancel: true,
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index]
}

async fn measure(label: &str, store: Arc<dyn Store>) {
    let mut next = 0;
    for concurrency in [1usize, 50, 200] {
        let began = Instant::now();
        let tasks: Vec<_> = (0..concurrency)
            .map(|i| {
                let store = store.clone();
                let id = next + i;
                tokio::spawn(async move {
                    let start = Instant::now();
                    store
                        .record_delivery(
                            &NewDelivery {
                                provider: "github".into(),
                                delivery_id: format!("delivery-{id}"),
                            },
                            &run(id),
                        )
                        .await
                        .expect("record a delivery");
                    start.elapsed()
                })
            })
            .collect();
        let mut times = Vec::new();
        for task in tasks {
            times.push(task.await.expect("a delivery task"));
        }
        next += concurrency;
        times.sort();
        println!(
            "{label}: record_delivery x{concurrency} at once: p50 {:.1} ms, p99 {:.1} ms, all in {:.1} ms",
            percentile(&times, 0.5).as_secs_f64() * 1e3,
            percentile(&times, 0.99).as_secs_f64() * 1e3,
            began.elapsed().as_secs_f64() * 1e3
        );
    }
    let began = Instant::now();
    let mut claimed = 0;
    while store.claim("bench").await.expect("claim").is_some() {
        claimed += 1;
    }
    println!(
        "{label}: {claimed} claims one after another: {:.2} ms each",
        began.elapsed().as_secs_f64() * 1e3 / f64::from(claimed.max(1))
    );
}

#[tokio::main]
async fn main() {
    if let Some(url) = std::env::args().nth(1) {
        let store = hoist_store::open(&url).await.expect("open the store");
        measure(&hoist_store::redact_url(&url), store).await;
        return;
    }
    let dir = tempfile::tempdir().expect("a temp dir");
    let url = format!("sqlite://{}/hoist.db", dir.path().display());
    measure(
        "sqlite",
        hoist_store::open(&url).await.expect("open SQLite"),
    )
    .await;
    let server = hoist_testkit::PostgresServer::start();
    let url = server.create_database("bench");
    measure(
        "postgres",
        hoist_store::open(&url).await.expect("open PostgreSQL"),
    )
    .await;
}
