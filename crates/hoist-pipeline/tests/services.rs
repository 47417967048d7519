//! Native services: PostgreSQL and Redis started for a job, handed to it, stopped after it.

mod common;
use common::Project;
use hoist_pipeline::event::Event;
use std::net::TcpStream;

fn port_open(port: u16) -> bool {
    TcpStream::connect(("127.0.0.1", port)).is_ok()
}

#[test]
fn postgres_starts_with_its_user_database_and_password_and_the_job_gets_the_variables() {
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
fn redis_starts_when_installed() {
    if hoist_pipeline::services::start(
        &hoist_pipeline::definition::ServiceSpec::Redis,
        &std::env::temp_dir(),
    )
    .is_err()
    {
        println!("skipped: redis-server is not installed (scripts/install-deps installs it)");
        return;
    }
    let p = Project::new(
        r#"
[pipeline.jobs.t]
services.redis = {}
steps = [{ run = 'echo $REDIS_URL | sed -E "s/:[0-9]+\//:PORT\//"; redis-cli -u $REDIS_URL ping' }]
"#,
        &[],
    );
    let run = p.run();
    assert_eq!(run.output("t"), ["redis://127.0.0.1:PORT/0", "PONG"]);
    assert!(!port_open(run.job("t").services[0].port.unwrap()));
}
