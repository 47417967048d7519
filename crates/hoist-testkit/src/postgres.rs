//! A throwaway PostgreSQL server on a free 127.0.0.1 port, for tests.
//!
//! It is the very service `hoist ci` starts for a job (`hoist_pipeline::services`): a cluster
//! copied from a template made once per installation by `initdb`, its postmaster run as a child
//! in its own process group (as the `postgres` user when the tests run as root), `trust`
//! authentication on loopback. Dropping the server — also while a test panics — shuts it down
//! immediately, waits for it and its backends to exit, and removes its directory.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use hoist_config::pipeline::ServiceSpec;
use hoist_pipeline::services::{self, RunningService};

/// A running PostgreSQL, stopped when dropped.
pub struct PostgresServer {
    /// The loopback port it listens on.
    pub port: u16,
    psql: PathBuf,
    service: RunningService,
}

impl PostgresServer {
    /// Starts a new cluster; returns once it accepts connections.
    ///
    /// # Panics
    ///
    /// When PostgreSQL is not installed or does not start (a test fixture: the message says what
    /// to install, or holds the server's log).
    #[must_use]
    pub fn start() -> PostgresServer {
        let spec = ServiceSpec::Postgres {
            user: "postgres".to_owned(),
            db: "postgres".to_owned(),
            password: None,
            // Many tests share one server, each with a pool of connections.
            settings: BTreeMap::from([("max_connections".to_owned(), "200".to_owned())]),
        };
        let scratch = services::scratch_root();
        let mut last_error = String::new();
        // A port picked by binding :0 can be taken before the postmaster binds it: retry.
        for _ in 0..5 {
            match services::start(&spec, &scratch) {
                Ok(service) => {
                    let bindir = services::postgres_bindir().unwrap_or_default();
                    let psql = Some(bindir.join("psql"))
                        .filter(|p| p.is_file())
                        .unwrap_or_else(|| PathBuf::from("psql"));
                    return PostgresServer {
                        port: service.port,
                        psql,
                        service,
                    };
                }
                Err(e) if e.message.starts_with("PostgreSQL is not installed") => {
                    panic!("{}; scripts/install-deps installs it", e.message)
                }
                Err(e) => last_error = format!("{}\n{}", e.message, e.log),
            }
        }
        panic!("PostgreSQL did not start on 127.0.0.1: {last_error}");
    }

    /// The URL of the `postgres` database as the `postgres` superuser.
    #[must_use]
    pub fn url(&self) -> String {
        self.database_url("postgres")
    }

    /// The URL of database `name` (see [`PostgresServer::create_database`]).
    #[must_use]
    pub fn database_url(&self, name: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{name}", self.port)
    }

    /// Creates an empty database `name` (letters, digits and `_`) and returns its URL.
    ///
    /// # Panics
    ///
    /// When `psql` fails.
    #[must_use]
    pub fn create_database(&self, name: &str) -> String {
        assert!(
            name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
            "database name {name:?}: use letters, digits and _"
        );
        let _ = self.psql(&format!("CREATE DATABASE {name}"));
        self.database_url(name)
    }

    /// Runs one SQL command with `psql` as the superuser, on the `postgres` database; returns
    /// its unaligned output.
    ///
    /// # Panics
    ///
    /// When `psql` is missing or the command fails.
    #[must_use = "the output of the command"]
    pub fn psql(&self, sql: &str) -> String {
        let out = Command::new(&self.psql)
            .args(["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1"])
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string()])
            .args(["-U", "postgres", "-d", "postgres", "-c"])
            .arg(sql)
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot run {}: {e}; install postgresql-client",
                    self.psql.display()
                )
            });
        assert!(
            out.status.success(),
            "psql -c {sql:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// The server's log so far.
    #[must_use]
    pub fn log(&self) -> String {
        self.service.log()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_server_answers_sql_and_is_gone_after_drop() {
        let server = PostgresServer::start();
        let url = server.create_database("fixture_check");
        assert!(url.ends_with("/fixture_check"));
        assert_eq!(server.psql("SELECT 40 + 2").trim(), "42");
        assert!(
            server.log().contains("ready to accept connections"),
            "{}",
            server.log()
        );
        let port = server.port;
        drop(server);
        assert!(
            std::net::TcpStream::connect(("127.0.0.1", port)).is_err(),
            "port {port} still answers after drop"
        );
    }
}
