//! A throwaway PostgreSQL server on a free 127.0.0.1 port, for tests.
//!
//! `initdb` runs once per installation into a template cluster under the temp dir (reused by
//! later tests and test processes); each [`PostgresServer`] copies it into its own temp dir and
//! runs the postmaster there as a child, in its own process group, with `trust` authentication
//! on loopback. When the tests run as root the cluster belongs to, and the postmaster runs as,
//! the `postgres` user (PostgreSQL refuses to run as root). Dropping the server — also while a
//! test panics — shuts it down immediately, waits for it and its backends to exit, and removes
//! its directory.

use std::os::unix::fs::MetadataExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long a loaded machine may take to start PostgreSQL.
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// A running PostgreSQL, stopped when dropped.
pub struct PostgresServer {
    /// The loopback port it listens on.
    pub port: u16,
    bindir: PathBuf,
    dir: tempfile::TempDir,
    child: Child,
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
        let bindir = bindir().unwrap_or_else(|| {
            panic!(
                "PostgreSQL is not installed (no initdb on PATH or in /usr/lib/postgresql/*/bin): \
                 install it with scripts/install-deps (apt-get install postgresql)"
            )
        });
        let identity = postgres_identity();
        let template = template(&bindir, identity);
        let mut last_log = String::new();
        // A port picked by binding :0 can be taken before the postmaster binds it: retry.
        for _ in 0..5 {
            match PostgresServer::try_start(&bindir, identity, &template) {
                Ok(server) => return server,
                Err(log) => last_log = log,
            }
        }
        panic!("PostgreSQL did not start on 127.0.0.1; its last log:\n{last_log}");
    }

    /// One attempt on a fresh port; the server's log when it does not come up.
    fn try_start(
        bindir: &Path,
        identity: Option<(u32, u32)>,
        template: &Path,
    ) -> Result<PostgresServer, String> {
        let dir = tempfile::Builder::new()
            .prefix("hoist-pg-")
            .tempdir()
            .expect("create a temp dir for PostgreSQL");
        let data = dir.path().join("data");
        run(
            Command::new("cp").arg("-a").arg(template).arg(&data),
            "cp -a of the template cluster",
        );
        let port = crate::free_port();
        let conf = format!(
            "port = {port}\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '{}'\n\
             fsync = off\nsynchronous_commit = off\nfull_page_writes = off\nmax_connections = 200\n",
            dir.path().display()
        );
        std::fs::write(
            data.join("pg_hba.conf"),
            "local all all trust\nhost all all 127.0.0.1/32 trust\n",
        )
        .expect("write pg_hba.conf");
        std::fs::write(data.join("postgresql.auto.conf"), conf)
            .expect("write postgresql.auto.conf");
        let log = dir.path().join("postgres.log");
        std::fs::write(&log, "").expect("create postgres.log");
        chown(dir.path(), identity);
        for file in [
            &log,
            &data.join("pg_hba.conf"),
            &data.join("postgresql.auto.conf"),
        ] {
            chown(file, identity);
        }
        let log_file = std::fs::File::options()
            .append(true)
            .open(&log)
            .expect("open postgres.log");
        let mut command = as_postgres(bindir.join("postgres"), identity);
        command
            .arg("-D")
            .arg(&data)
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::from(
                log_file.try_clone().expect("open postgres.log"),
            ))
            .stderr(Stdio::from(log_file))
            .process_group(0);
        let child = command
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", bindir.join("postgres").display()));
        let mut server = PostgresServer {
            port,
            bindir: bindir.to_path_buf(),
            dir,
            child,
        };
        if server.wait_ready() {
            Ok(server)
        } else {
            Err(server.log())
        }
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
        let psql = if self.bindir.join("psql").is_file() {
            self.bindir.join("psql")
        } else {
            PathBuf::from("psql")
        };
        let out = Command::new(&psql)
            .args([
                "-X",
                "-q",
                "-A",
                "-t",
                "-v",
                "ON_ERROR_STOP=1",
                "-h",
                "127.0.0.1",
            ])
            .args([
                "-p",
                &self.port.to_string(),
                "-U",
                "postgres",
                "-d",
                "postgres",
                "-c",
            ])
            .arg(sql)
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot run {}: {e}; install postgresql-client",
                    psql.display()
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
        std::fs::read_to_string(self.dir.path().join("postgres.log")).unwrap_or_default()
    }

    fn wait_ready(&mut self) -> bool {
        let isready = if self.bindir.join("pg_isready").is_file() {
            self.bindir.join("pg_isready")
        } else {
            PathBuf::from("pg_isready")
        };
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            let ready = Command::new(&isready)
                .args(["-q", "-h", "127.0.0.1", "-p", &self.port.to_string()])
                .args(["-U", "postgres", "-d", "postgres"])
                .stdin(Stdio::null())
                .status()
                .is_ok_and(|s| s.success());
            if ready {
                return true;
            }
            if self.child.try_wait().ok().flatten().is_some() || Instant::now() > deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Immediate shutdown (SIGQUIT: the postmaster stops its backends, waits for them, exits),
    /// then SIGKILL to the whole process group if it is still there after 10 s.
    fn stop(&mut self) {
        if self.child.try_wait().ok().flatten().is_some() {
            return;
        }
        let pid = self.child.id().to_string();
        let _ = Command::new("kill")
            .args(["-QUIT", &pid])
            .stderr(Stdio::null())
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if self.child.try_wait().ok().flatten().is_some() {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{pid}")])
            .stderr(Stdio::null())
            .status();
        let _ = self.child.wait();
    }
}

impl Drop for PostgresServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The directory holding `initdb` and `postgres`: through `PATH`, else the newest
/// `/usr/lib/postgresql/<version>/bin` (Debian installs them there, off `PATH`).
fn bindir() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&path) {
            let initdb = dir.join("initdb");
            if initdb.is_file() {
                let real = std::fs::canonicalize(&initdb).unwrap_or(initdb);
                if let Some(bin) = real.parent().filter(|d| d.join("postgres").is_file()) {
                    return Some(bin.to_path_buf());
                }
            }
        }
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .flatten()
        .filter_map(|e| {
            let version = e.file_name().to_string_lossy().parse::<u32>().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").is_file().then_some((version, bin))
        })
        .collect();
    versions.sort();
    versions.pop().map(|(_, bin)| bin)
}

/// The `postgres` user's uid and gid when we are root (PostgreSQL refuses to run as root).
fn postgres_identity() -> Option<(u32, u32)> {
    let euid = std::fs::metadata("/proc/self").map_or(u32::MAX, |m| m.uid());
    if euid != 0 {
        return None;
    }
    let passwd = std::fs::read_to_string("/etc/passwd").expect("read /etc/passwd");
    let found = passwd.lines().find_map(|line| {
        let f: Vec<&str> = line.split(':').collect();
        if f.len() > 3 && f[0] == "postgres" {
            Some((f[2].parse().ok()?, f[3].parse().ok()?))
        } else {
            None
        }
    });
    Some(found.unwrap_or_else(|| {
        panic!(
            "running as root, PostgreSQL must run as the `postgres` user, which does not exist: \
             install postgresql (scripts/install-deps), which creates it"
        )
    }))
}

fn as_postgres(program: PathBuf, identity: Option<(u32, u32)>) -> Command {
    let mut command = Command::new(program);
    if let Some((uid, gid)) = identity {
        command.uid(uid).gid(gid);
    }
    command
}

fn chown(path: &Path, identity: Option<(u32, u32)>) {
    if let Some((uid, gid)) = identity {
        std::os::unix::fs::chown(path, Some(uid), Some(gid))
            .unwrap_or_else(|e| panic!("chown {} to postgres: {e}", path.display()));
    }
}

fn run(command: &mut Command, what: &str) {
    let out = command
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {what}: {e}"));
    assert!(
        out.status.success(),
        "{what} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The template cluster of this installation: made by `initdb` once, then reused.
fn template(bindir: &Path, identity: Option<(u32, u32)>) -> PathBuf {
    let root = std::env::temp_dir().join(format!(
        "hoist-testkit-pg-{}",
        identity.map_or_else(|| "user".to_string(), |(uid, _)| uid.to_string())
    ));
    std::fs::create_dir_all(&root).expect("create the PostgreSQL template root");
    let key: String = bindir
        .to_string_lossy()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    let template = root.join(format!("template{key}"));
    if template.join("PG_VERSION").is_file() {
        return template;
    }
    let building = tempfile::Builder::new()
        .prefix("building-")
        .tempdir_in(&root)
        .expect("create a directory for initdb");
    chown(building.path(), identity);
    let data = building.path().join("data");
    run(
        as_postgres(bindir.join("initdb"), identity)
            .current_dir(building.path())
            .args([
                "--auth=trust",
                "--username=postgres",
                "--encoding=UTF8",
                "--locale=C",
                "--no-sync",
                "--no-instructions",
                "-D",
            ])
            .arg(&data),
        "initdb",
    );
    // Two test processes may build it at once: the first rename wins.
    if std::fs::rename(&data, &template).is_err() {
        assert!(
            template.join("PG_VERSION").is_file(),
            "cannot move the template cluster to {}",
            template.display()
        );
    }
    template
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
        let port = server.port;
        drop(server);
        assert!(
            std::net::TcpStream::connect(("127.0.0.1", port)).is_err(),
            "port {port} still answers after drop"
        );
    }
}
