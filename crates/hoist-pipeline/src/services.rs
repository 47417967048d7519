//! Native services for jobs, started without a container engine.
//!
//! PostgreSQL: a throwaway cluster copied from a template cluster (made once per PostgreSQL
//! installation with `initdb`), its postmaster started as our child on a free loopback port
//! (rather than daemonized by `pg_ctl`, so that a failed start is seen at once and the process
//! is reaped) and waited for with `pg_isready`; run as the `postgres` user when hoist runs as root. Redis: `redis-server`
//! on a free loopback port, waited for until it answers `PING`. Both are stopped and their files
//! removed when the [`RunningService`] is dropped, whatever happened to the job.

use hoist_config::pipeline::ServiceSpec;
use std::collections::BTreeMap;
use std::fs;
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A service that did not start.
#[derive(Debug, thiserror::Error)]
#[error("{service}: {message}")]
pub struct ServiceError {
    /// `postgres` or `redis`.
    pub service: String,
    /// What failed, with the fix.
    pub message: String,
    /// The service's own log, when it wrote one.
    pub log: String,
}

/// A started service; dropping it stops it and removes its files.
#[derive(Debug)]
pub struct RunningService {
    /// `postgres` or `redis`.
    pub kind: &'static str,
    /// Its loopback port.
    pub port: u16,
    /// Variables the job gets (`DATABASE_URL`, `PG*`, `REDIS_URL`).
    pub env: Vec<(String, String)>,
    /// How long it took to be ready.
    pub startup: Duration,
    dir: PathBuf,
    stop: Stop,
}

#[derive(Debug)]
enum Stop {
    /// The postmaster: immediate shutdown (SIGQUIT), SIGKILL if it lingers.
    Postgres(Child),
    /// Anything else: SIGKILL.
    Child(Child),
}

impl Drop for RunningService {
    fn drop(&mut self) {
        match &mut self.stop {
            Stop::Postgres(child) => stop_postmaster(child),
            Stop::Child(child) => {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
        let _ = fs::remove_dir_all(&self.dir);
    }
}

impl RunningService {
    /// The service's own log so far (`postgres.log`, `redis.log`).
    pub fn log(&self) -> String {
        read_log(&self.dir.join(format!("{}.log", self.kind)))
    }
}

/// Immediate shutdown (SIGQUIT), then SIGKILL if the postmaster is still there after 10 s.
fn stop_postmaster(child: &mut Child) {
    if let Some(pid) = rustix::process::Pid::from_raw(child.id() as i32) {
        let _ = rustix::process::kill_process(pid, rustix::process::Signal::QUIT);
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if child.try_wait().ok().flatten().is_some() {
            return;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// Starts one service. `scratch` is a directory the service user may enter.
pub fn start(spec: &ServiceSpec, scratch: &Path) -> Result<RunningService, ServiceError> {
    match spec {
        ServiceSpec::Postgres {
            user,
            db,
            password,
            settings,
        } => start_postgres(user, db, password.as_deref(), settings, scratch),
        ServiceSpec::Redis => start_redis(scratch),
    }
}

/// A directory for service files that the `postgres` user can reach even when hoist's own
/// directories (under /root) are closed to it.
pub fn scratch_root() -> PathBuf {
    std::env::temp_dir().join(format!("hoist-ci-{}", rustix::process::geteuid().as_raw()))
}

fn free_port() -> std::io::Result<u16> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
    Ok(listener.local_addr()?.port())
}

fn unique_dir(root: &Path, prefix: &str) -> std::io::Result<PathBuf> {
    fs::create_dir_all(root)?;
    fs::set_permissions(root, fs::Permissions::from_mode(0o755))?;
    for attempt in 0..100u32 {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let dir = root.join(format!(
            "{prefix}-{}-{nanos:x}{attempt}",
            std::process::id()
        ));
        match fs::create_dir(&dir) {
            Ok(()) => return Ok(dir),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
    Err(std::io::Error::other("no free directory name"))
}

fn which(name: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// The directory holding `initdb`, `pg_ctl` and `postgres`: found through `PATH`, else the
/// newest `/usr/lib/postgresql/<version>/bin` (where Debian installs them, off `PATH`).
pub fn postgres_bindir() -> Option<PathBuf> {
    if let Some(initdb) = which("initdb") {
        let real = fs::canonicalize(&initdb).unwrap_or(initdb);
        if let Some(dir) = real.parent().filter(|d| d.join("pg_ctl").is_file()) {
            return Some(dir.to_path_buf());
        }
    }
    let mut versions: Vec<(u32, PathBuf)> = fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .flatten()
        .filter_map(|e| {
            let v = e.file_name().to_string_lossy().parse::<u32>().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").is_file().then_some((v, bin))
        })
        .collect();
    versions.sort();
    versions.pop().map(|(_, bin)| bin)
}

/// The uid and gid the PostgreSQL processes run as: ours, or `postgres` when we are root
/// (PostgreSQL refuses to run as root). The user is created when missing.
fn postgres_identity() -> Result<Option<(u32, u32)>, String> {
    if !rustix::process::geteuid().is_root() {
        return Ok(None);
    }
    let lookup = || -> Option<(u32, u32)> {
        let passwd = fs::read_to_string("/etc/passwd").ok()?;
        passwd.lines().find_map(|line| {
            let f: Vec<&str> = line.split(':').collect();
            (f.len() > 3 && f[0] == "postgres")
                .then(|| Some((f[2].parse().ok()?, f[3].parse().ok()?)))?
        })
    };
    if let Some(id) = lookup() {
        return Ok(Some(id));
    }
    let out = Command::new("useradd")
        .args([
            "--system",
            "--user-group",
            "--no-create-home",
            "--shell",
            "/usr/sbin/nologin",
            "postgres",
        ])
        .output()
        .map_err(|e| format!("cannot run useradd to create the postgres user: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "useradd postgres failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    lookup()
        .map(Some)
        .ok_or_else(|| "the postgres user was created but is not in /etc/passwd".into())
}

/// `program`, to be run as the service user (std drops root's supplementary groups with it).
fn service_command(program: PathBuf, id: Option<(u32, u32)>) -> Command {
    let mut cmd = Command::new(program);
    if let Some((uid, gid)) = id {
        cmd.uid(uid).gid(gid);
    }
    cmd
}

fn chown_tree(dir: &Path, id: Option<(u32, u32)>) -> std::io::Result<()> {
    let Some((uid, gid)) = id else { return Ok(()) };
    std::os::unix::fs::chown(dir, Some(uid), Some(gid))
}

fn run_quiet(cmd: &mut Command, what: &str) -> Result<(), String> {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run {what}: {e}"))?;
    if out.status.success() {
        return Ok(());
    }
    Err(format!(
        "{what} failed ({}): {}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout).trim(),
        String::from_utf8_lossy(&out.stderr).trim()
    ))
}

/// Makes the template cluster for this PostgreSQL installation once; later starts copy it.
fn postgres_template(
    bindir: &Path,
    scratch: &Path,
    id: Option<(u32, u32)>,
) -> Result<PathBuf, String> {
    let key = crate::cache_key::checksum_of(bindir.to_string_lossy().as_bytes())
        .replace(['/', '+', '='], "");
    let template = scratch.join(format!("pg-template-{}", &key[..12]));
    if template.join("PG_VERSION").is_file() {
        return Ok(template);
    }
    let building = unique_dir(scratch, "pg-template-building")
        .map_err(|e| format!("cannot create a directory under {}: {e}", scratch.display()))?;
    chown_tree(&building, id).map_err(|e| {
        format!(
            "cannot give {} to the postgres user: {e}",
            building.display()
        )
    })?;
    let data = building.join("data");
    let result = run_quiet(
        service_command(bindir.join("initdb"), id)
            .current_dir(&building)
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
    if let Err(e) = result {
        let _ = fs::remove_dir_all(&building);
        return Err(e);
    }
    // Two jobs may build the template at once: the first rename wins, the other is discarded.
    if fs::rename(&data, &template).is_err() && !template.join("PG_VERSION").is_file() {
        let _ = fs::remove_dir_all(&building);
        return Err(format!(
            "cannot move the template cluster to {}",
            template.display()
        ));
    }
    let _ = fs::remove_dir_all(&building);
    Ok(template)
}

fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

fn quote_literal(value: &str) -> String {
    format!("'{}'", value.replace('\'', "''"))
}

/// Percent-encodes a URL component (userinfo, path).
fn url_part(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

fn read_log(path: &Path) -> String {
    fs::read_to_string(path).unwrap_or_default()
}

fn start_postgres(
    user: &str,
    db: &str,
    password: Option<&str>,
    settings: &BTreeMap<String, String>,
    scratch: &Path,
) -> Result<RunningService, ServiceError> {
    let began = Instant::now();
    let fail = |message: String, log: String| ServiceError {
        service: "postgres".into(),
        message,
        log,
    };
    let bindir = postgres_bindir().ok_or_else(|| {
        fail("PostgreSQL is not installed (no initdb on PATH or in /usr/lib/postgresql/*/bin); install it: apt-get install postgresql".into(), String::new())
    })?;
    let id = postgres_identity().map_err(|m| fail(m, String::new()))?;
    let template = postgres_template(&bindir, scratch, id).map_err(|m| fail(m, String::new()))?;
    let dir = unique_dir(scratch, "pg").map_err(|e| {
        fail(
            format!("cannot create a directory under {}: {e}", scratch.display()),
            String::new(),
        )
    })?;
    let data = dir.join("data");
    let log = dir.join("postgres.log");
    let cleanup = |dir: &Path| {
        let _ = fs::remove_dir_all(dir);
    };
    if let Err(m) = run_quiet(
        Command::new("cp").arg("-a").arg(&template).arg(&data),
        "cp -a of the template cluster",
    ) {
        cleanup(&dir);
        return Err(fail(m, String::new()));
    }
    let port =
        free_port().map_err(|e| fail(format!("no free loopback port: {e}"), String::new()))?;
    let host_auth = if password.is_some() {
        "scram-sha-256"
    } else {
        "trust"
    };
    let hba = format!("local all all trust\nhost all all 127.0.0.1/32 {host_auth}\n");
    let mut conf = format!(
        "port = {port}\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = {}\nfsync = off\nsynchronous_commit = off\nfull_page_writes = off\n",
        quote_literal(&dir.to_string_lossy())
    );
    for (name, value) in settings {
        conf.push_str(&format!("{name} = {}\n", quote_literal(value)));
    }
    let written = fs::write(data.join("pg_hba.conf"), hba)
        .and_then(|()| fs::write(data.join("postgresql.auto.conf"), conf))
        .and_then(|()| chown_tree(&dir, id))
        .and_then(|()| fs::File::create(&log).map(drop))
        .and_then(|()| chown_tree(&log, id))
        .and_then(|()| chown_tree(&data.join("pg_hba.conf"), id))
        .and_then(|()| chown_tree(&data.join("postgresql.auto.conf"), id));
    if let Err(e) = written {
        cleanup(&dir);
        return Err(fail(
            format!("cannot configure the cluster in {}: {e}", dir.display()),
            String::new(),
        ));
    }
    // The postmaster runs as our child (not daemonized by pg_ctl) so that its exit during
    // startup is seen at once and it is reaped when stopped.
    let log_file = match fs::OpenOptions::new().append(true).open(&log) {
        Ok(f) => f,
        Err(e) => {
            cleanup(&dir);
            return Err(fail(
                format!("cannot open {}: {e}", log.display()),
                String::new(),
            ));
        }
    };
    let log_err = log_file
        .try_clone()
        .map_err(|e| fail(format!("cannot open {}: {e}", log.display()), String::new()))?;
    let child = service_command(bindir.join("postgres"), id)
        .current_dir(&dir)
        .arg("-D")
        .arg(&data)
        .stdin(Stdio::null())
        .stdout(Stdio::from(log_file))
        .stderr(Stdio::from(log_err))
        .process_group(0)
        .spawn();
    let child = match child {
        Ok(c) => c,
        Err(e) => {
            cleanup(&dir);
            return Err(fail(
                format!("cannot run {}: {e}", bindir.join("postgres").display()),
                String::new(),
            ));
        }
    };
    let mut running = RunningService {
        kind: "postgres",
        port,
        env: Vec::new(),
        startup: Duration::ZERO,
        dir: dir.clone(),
        stop: Stop::Postgres(child),
    };
    let isready = which("pg_isready")
        .filter(|_| !bindir.join("pg_isready").is_file())
        .unwrap_or_else(|| bindir.join("pg_isready"));
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let ready = Command::new(&isready)
            .args([
                "-q",
                "-h",
                "127.0.0.1",
                "-p",
                &port.to_string(),
                "-U",
                "postgres",
                "-d",
                "postgres",
            ])
            .stdin(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if ready {
            break;
        }
        // The postmaster is gone (bad setting, port taken): no point waiting.
        let exited = match &mut running.stop {
            Stop::Postgres(c) | Stop::Child(c) => c.try_wait().ok().flatten().is_some(),
        };
        if exited || Instant::now() > deadline {
            let text = read_log(&log);
            drop(running);
            let why = if exited {
                "exited during startup"
            } else {
                "was not ready within 30 s"
            };
            return Err(fail(
                format!("PostgreSQL {why} (port {port}); its log follows"),
                text,
            ));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let mut psql = service_command(bindir.join("psql"), id);
    psql.current_dir(&dir)
        .args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-h"])
        .arg(&dir)
        .args(["-p", &port.to_string(), "-U", "postgres", "-d", "postgres"]);
    let role = quote_ident(user);
    let pw = password.map_or_else(String::new, |p| format!(" PASSWORD {}", quote_literal(p)));
    if user == "postgres" {
        psql.arg("-c").arg(format!("ALTER ROLE {role}{pw}"));
    } else {
        psql.arg("-c")
            .arg(format!("CREATE ROLE {role} SUPERUSER LOGIN{pw}"));
    }
    if db != "postgres" {
        psql.arg("-c")
            .arg(format!("CREATE DATABASE {} OWNER {role}", quote_ident(db)));
    }
    if let Err(m) = run_quiet(&mut psql, "psql (creating the role and database)") {
        let text = read_log(&log);
        drop(running);
        return Err(fail(m, text));
    }
    let auth = match password {
        Some(p) => format!("{}:{}", url_part(user), url_part(p)),
        None => url_part(user),
    };
    let mut env = vec![
        (
            "DATABASE_URL".to_string(),
            format!("postgresql://{auth}@127.0.0.1:{port}/{}", url_part(db)),
        ),
        ("PGHOST".into(), "127.0.0.1".into()),
        ("PGPORT".into(), port.to_string()),
        ("PGUSER".into(), user.into()),
        ("PGDATABASE".into(), db.into()),
    ];
    if let Some(p) = password {
        env.push(("PGPASSWORD".into(), p.into()));
    }
    running.env = env;
    running.startup = began.elapsed();
    Ok(running)
}

/// Whether a Redis server at `addr` answers `PING` with `PONG`. An open port is not enough: a
/// server still loading its data set accepts connections and answers `-LOADING`.
pub fn redis_answers_ping(addr: SocketAddr, timeout: Duration) -> bool {
    use std::io::{Read, Write};
    let Ok(mut stream) = TcpStream::connect_timeout(&addr, timeout) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(timeout));
    let _ = stream.set_write_timeout(Some(timeout));
    if stream.write_all(b"PING\r\n").is_err() {
        return false;
    }
    let mut reply = [0u8; 7];
    stream.read_exact(&mut reply).is_ok() && &reply == b"+PONG\r\n"
}

fn start_redis(scratch: &Path) -> Result<RunningService, ServiceError> {
    let began = Instant::now();
    let fail = |message: String, log: String| ServiceError {
        service: "redis".into(),
        message,
        log,
    };
    let server = which("redis-server").ok_or_else(|| {
        fail(
            "redis-server is not installed; install it: apt-get install redis-server".into(),
            String::new(),
        )
    })?;
    let dir = unique_dir(scratch, "redis").map_err(|e| {
        fail(
            format!("cannot create a directory under {}: {e}", scratch.display()),
            String::new(),
        )
    })?;
    let port =
        free_port().map_err(|e| fail(format!("no free loopback port: {e}"), String::new()))?;
    let log = dir.join("redis.log");
    let child = Command::new(server)
        .current_dir(&dir)
        .args([
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--daemonize",
            "no",
            "--logfile",
        ])
        .arg(&log)
        .arg("--dir")
        .arg(&dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn();
    let child = match child {
        Ok(c) => c,
        Err(e) => {
            let _ = fs::remove_dir_all(&dir);
            return Err(fail(format!("cannot run redis-server: {e}"), String::new()));
        }
    };
    let mut running = RunningService {
        kind: "redis",
        port,
        env: Vec::new(),
        startup: Duration::ZERO,
        dir,
        stop: Stop::Child(child),
    };
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let deadline = Instant::now() + Duration::from_secs(10);
    while !redis_answers_ping(addr, Duration::from_millis(200)) {
        let exited = match &mut running.stop {
            Stop::Child(c) => c.try_wait().ok().flatten().is_some(),
            Stop::Postgres { .. } => false,
        };
        if exited || Instant::now() > deadline {
            let text = read_log(&log);
            drop(running);
            return Err(fail(
                format!(
                    "redis-server {} (port {port}); its log follows",
                    if exited {
                        "exited during startup"
                    } else {
                        "was not ready within 10 s"
                    }
                ),
                text,
            ));
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    running.env = vec![("REDIS_URL".into(), format!("redis://127.0.0.1:{port}/0"))];
    running.startup = began.elapsed();
    Ok(running)
}
