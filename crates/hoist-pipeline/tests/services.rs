//! Native services: PostgreSQL and Redis started for a job, handed to it, stopped after it.

mod common;
use common::Project;
use hoist_pipeline::event::Event;
use std::net::TcpStream;

fn port_open(port: u16) -> bool {
    TcpStream::connect(("127.0.0.1", port)).is_ok()
}

/// Fails the test, naming the package, when a tool it needs is not installed: a missing tool
/// must never pass for a working service.
fn require(tool: &str, package: &str) {
    let found = std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|d| d.join(tool).is_file()));
    assert!(
        found,
        "{tool} is not installed: run scripts/install-deps (or apt-get install {package})"
    );
}

/// PostgreSQL's server binaries (found as the services find them) and psql.
fn require_postgres() {
    assert!(
        hoist_pipeline::services::postgres_bindir().is_some(),
        "PostgreSQL (initdb, pg_ctl, postgres) is not installed: run scripts/install-deps (or apt-get install postgresql)"
    );
    require("psql", "postgresql-client");
}

#[test]
fn postgres_starts_with_its_user_database_and_password_and_the_job_gets_the_variables() {
    require_postgres();
    let p = Project::new(
        r#"
[pipeline.jobs.t]
services.postgres = { environment = { POSTGRES_USER = "<user>", POSTGRES_DB = "<db>", PGPASSWORD = "p'w d" } }
steps = [
  { run = 'echo "$PGHOST $PGUSER $PGDATABASE $PGPASSWORD"; echo "$DATABASE_URL" | sed -E "s/:[0-9]+\//:PORT\//"' },
  { run = "psql -X -A -t -c 'select current_user, current_database()' \"$DATABASE_URL\"", name = "by url" },
  { run = "psql -X -A -t -c 'select 1'", name = "by PG variables" },
  { run = "PGPASSWORD=wrong psql -X -A -t -c 'select 1'", name = "wrong password" },
]
"#,
        &[],
    );
    let run = p.run();
    let out = run.output("t");
    assert_eq!(out[0], "127.0.0.1 <user> <db> p'w d");
    assert_eq!(
        out[1],
        "postgresql://%3Cuser%3E:p%27w%20d@127.0.0.1:PORT/%3Cdb%3E"
    );
    assert_eq!(out[2], "<user>|<db>");
    assert_eq!(out[3], "1");
    let steps: Vec<String> = run.steps("t").into_iter().map(|(_, s)| s).collect();
    assert_eq!(
        steps,
        ["passed", "passed", "passed", "failed"],
        "the password is really checked"
    );
    let service = &run.job("t").services[0];
    assert_eq!(service.kind, "postgres");
    assert!(
        !port_open(service.port.unwrap()),
        "the service is stopped after the job"
    );
}

#[test]
fn postgres_is_stopped_after_a_failing_job_too() {
    require_postgres();
    let p = Project::new(
        "[pipeline.jobs.t]\nservices.postgres = {}\nsteps = [{ run = \"echo $PGPORT; psql -X -A -t -c 'show data_directory'; exit 1\" }]\n",
        &[],
    );
    let run = p.run();
    assert!(!run.record.passed);
    let port: u16 = run.output("t")[0]
        .parse()
        .unwrap_or_else(|_| panic!("{:?}", run.output("t")));
    assert_eq!(run.job("t").services[0].port, Some(port));
    assert!(!port_open(port), "the failing job's PostgreSQL is stopped");
    let data = std::path::PathBuf::from(&run.output("t")[1]);
    assert!(
        data.starts_with(hoist_pipeline::services::scratch_root()),
        "{data:?}"
    );
    assert!(!data.parent().unwrap().exists(), "its cluster is removed");
}

#[test]
fn a_service_that_does_not_start_fails_the_job_with_its_log_attached() {
    require_postgres();
    let p = Project::new(
        "[pipeline.jobs.t]\nservices.postgres = { settings = { shared_buffers = \"lots\" } }\nsteps = [{ run = \"echo never\" }, { run = \"echo never\", when = \"always\" }]\n",
        &[],
    );
    let run = p.run();
    let job = run.job("t");
    assert_eq!(serde_json::to_value(job.status).unwrap(), "failed");
    assert!(
        job.reason
            .as_deref()
            .unwrap()
            .starts_with("service postgres did not start: PostgreSQL exited during startup"),
        "{:?}",
        job.reason
    );
    let log = job.services[0].log.as_deref().unwrap();
    assert!(
        log.contains("invalid value for parameter \"shared_buffers\": \"lots\""),
        "{log}"
    );
    assert!(run
        .events
        .iter()
        .any(|e| matches!(e, Event::ServiceFailed { log, .. } if log.contains("shared_buffers"))));
    assert!(run.output("t").is_empty(), "no step runs");
}

#[test]
fn redis_starts_answers_ping_and_is_stopped_after_the_job() {
    require("redis-server", "redis-server");
    require("redis-cli", "redis-tools");
    let p = Project::new(
        r#"
[pipeline.jobs.t]
services.redis = {}
steps = [{ run = 'echo $REDIS_URL | sed -E "s/:[0-9]+\//:PORT\//"; redis-cli -u $REDIS_URL ping' }]
"#,
        &[],
    );
    let run = p.run();
    let job = run.job("t");
    let service = &job.services[0];
    assert_eq!(
        (service.error.as_deref(), service.log.as_deref()),
        (None, None),
        "redis started"
    );
    assert_eq!(run.output("t"), ["redis://127.0.0.1:PORT/0", "PONG"]);
    assert_eq!(serde_json::to_value(job.status).unwrap(), "passed");
    assert!(
        !port_open(service.port.unwrap()),
        "the service is stopped after the job"
    );
}

/// A loopback server that answers each of `replies.len()` connections with one reply, for as
/// long as `check` runs; it is gone when this returns, also when `check` panics.
fn answering(replies: &[&'static [u8]], check: impl FnOnce(std::net::SocketAddr)) {
    use std::io::{Read, Write};
    use std::net::{TcpListener, TcpStream};
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::scope(|scope| {
        let server = scope.spawn(|| {
            for reply in replies {
                let (mut conn, _) = listener.accept().unwrap();
                let mut request = [0u8; 6];
                conn.read_exact(&mut request).unwrap();
                assert_eq!(&request, b"PING\r\n");
                conn.write_all(reply).unwrap();
            }
        });
        let checked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| check(addr)));
        // Use up the replies the check did not ask for, so that the server thread ends.
        while !server.is_finished() {
            if let Ok(mut conn) = TcpStream::connect(addr) {
                let _ = conn.set_read_timeout(Some(std::time::Duration::from_secs(1)));
                let _ = conn.write_all(b"PING\r\n");
                let _ = conn.read(&mut [0u8; 64]);
            }
        }
        if let Err(panic) = checked {
            std::panic::resume_unwind(panic);
        }
    });
}

#[test]
fn redis_is_ready_when_it_answers_ping_not_when_its_port_opens() {
    use hoist_pipeline::services::redis_answers_ping;
    let wait = std::time::Duration::from_secs(5);
    answering(
        &[
            b"-LOADING Redis is loading the dataset in memory\r\n",
            b"+PONG\r\n",
        ],
        |addr| {
            assert!(
                !redis_answers_ping(addr, wait),
                "a server still loading is not ready"
            );
            assert!(redis_answers_ping(addr, wait), "PONG is ready");
        },
    );
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    assert!(
        !redis_answers_ping(closed, wait),
        "nothing listening is not ready"
    );
}
