//! The documented setup works from the first deploy, with the real parts: a private
//! supervisord (found through `[setup] supervisor_conf`, as on a host with several), the
//! program `hoist setup --apply` writes and loads, and gunicorn or uWSGI. The server runs from
//! the release's own virtualenv (`<root>/current/.venv`, the default), which exists only after
//! the first deploy: that deploy starts it. A dependency change restarts the master from the
//! new environment (a reload would keep the old one, which pruning deletes); a program stopped
//! (after a reboot) is started, not signalled; a queue worker gets a program of its own.

mod support;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use hoist_testkit::ProcessGuard;
use support::{assert_exit, free_port, http_get, stderr, Site, EXIT_OK};

/// Real servers are heavy for a 2-core machine: one scenario at a time.
static SERIAL: Mutex<()> = Mutex::new(());

/// A site whose app server runs under a private supervisord, from `hoist setup`'s files.
/// Fields drop in order: supervisord (and its programs) stop before the site's directory goes.
struct Supervised {
    _supervisord: ProcessGuard,
    site: Site,
    conf: PathBuf,
    port: u16,
}

/// What the test puts in hoist.toml besides the app, the health check and `[setup]`'s paths.
struct Shape {
    server: &'static str,
    /// `[[process]]` tables; `{run}` is replaced by the run directory.
    processes: &'static str,
    /// More `[setup]` keys.
    setup: &'static str,
}

const GUNICORN: Shape = Shape {
    server: "gunicorn",
    processes: "[[process]]\nname = \"web\"\nrestart = \"gunicorn-hup\"\npidfile = \"{run}/gunicorn.pid\"\ntimeout = \"60s\"\n",
    setup: "",
};

impl Supervised {
    fn start(shape: &Shape) -> Supervised {
        let site = Site::new();
        let base = site.dir.path().to_path_buf();
        let port = free_port();
        let run = site.root.join("shared/run");
        let config = format!(
            r#"[app]
name = "example"
entry = "app:app"
requirements = ["requirements.txt"]
exclude = ["tests/", "requirements-dev.txt", "instance/settings.toml", "instance/*.sqlite3"]
installer = "uv"

[release]
root = "{root}"
keep_releases = 2
shared = ["instance/settings.toml", "logs/", "run/"]

{processes}
[health]
url = "http://127.0.0.1:{port}/health"
status = 200
body = "ok"
timeout = "30s"
interval = "100ms"

[setup]
server = "{server}"
port = {port}
workers = 2
nginx = false
supervisor_dir = "{base}/supervisor.d"
program_log_dir = "{base}/program-logs"
supervisor_conf = "{base}/supervisord.conf"
{setup}"#,
            root = site.root.display(),
            processes = shape.processes.replace("{run}", &run.display().to_string()),
            server = shape.server,
            base = base.display(),
            setup = shape.setup,
        );
        fs::write(&site.config, config).unwrap();
        site.commit("served by a real app server under supervisor");
        fs::create_dir_all(base.join("supervisor.d")).unwrap();
        fs::create_dir_all(base.join("program-logs")).unwrap();
        let conf = base.join("supervisord.conf");
        fs::write(
            &conf,
            format!(
                "[unix_http_server]\nfile={b}/supervisor.sock\n\n[supervisord]\nlogfile={b}/supervisord.log\npidfile={b}/supervisord.pid\nnodaemon=true\n\n[rpcinterface:supervisor]\nsupervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface\n\n[supervisorctl]\nserverurl=unix://{b}/supervisor.sock\n\n[include]\nfiles = {b}/supervisor.d/*.conf\n",
                b = base.display()
            ),
        )
        .unwrap();
        let supervisord = ProcessGuard::spawn(
            Command::new("supervisord")
                .arg("-c")
                .arg(&conf)
                .stdout(Stdio::null())
                .stderr(Stdio::null()),
            "supervisord",
            "supervisor",
        )
        .grace(Duration::from_secs(40));
        let s = Supervised {
            _supervisord: supervisord,
            site,
            conf,
            port,
        };
        s.wait_for(
            || s.ctl(&["pid"]).trim().parse::<u32>().is_ok(),
            "supervisord",
        );
        s
    }

    fn ctl(&self, args: &[&str]) -> String {
        let out = Command::new("supervisorctl")
            .arg("-c")
            .arg(&self.conf)
            .args(args)
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// The program's state and pid, from `supervisorctl status`.
    fn status(&self, program: &str) -> (String, Option<u32>) {
        let line = self.ctl(&["status", program]);
        let mut words = line.split_whitespace().skip(1);
        let state = words.next().unwrap_or("").to_string();
        let pid = (words.next() == Some("pid"))
            .then(|| words.next())
            .flatten()
            .and_then(|p| p.trim_end_matches(',').parse().ok());
        (state, pid)
    }

    fn wait_for(&self, ok: impl Fn() -> bool, what: &str) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while !ok() {
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn serving(&self) -> Option<String> {
        let body = http_get(self.port, "/version")?;
        let v: serde_json::Value = serde_json::from_str(&body).ok()?;
        v["release"].as_str().map(str::to_string)
    }

    fn deploy_ok(&self) -> String {
        let out = self.site.hoist(&["deploy"]);
        assert_exit(&out, EXIT_OK);
        let id = self.site.current().unwrap();
        assert_eq!(self.serving().as_deref(), Some(id.as_str()), "/version");
        id
    }
}

/// The virtualenv a process runs from: the `<root>/envs/<key>` in its command line.
fn env_of(pid: u32, root: &Path) -> Option<PathBuf> {
    let cmdline = fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    let envs = root.join("envs");
    cmdline
        .split(|b| *b == 0)
        .map(|arg| PathBuf::from(String::from_utf8_lossy(arg).into_owned()))
        .find_map(|arg| {
            let key = arg.strip_prefix(&envs).ok()?.components().next()?;
            Some(envs.join(key))
        })
}

#[test]
fn the_first_deploy_starts_the_server_setup_loaded_and_a_new_environment_restarts_it() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let s = Supervised::start(&GUNICORN);
    let root = s.site.root.clone();

    let out = s.site.hoist(&["setup", "--apply"]);
    assert_exit(&out, EXIT_OK);
    // Loaded, but it cannot run before a release (and its virtualenv) exists.
    assert!(
        stderr(&out).contains("setup: local: loaded example-web "),
        "{}",
        stderr(&out)
    );
    let program = fs::read_to_string(s.site.dir.path().join("supervisor.d/example.conf")).unwrap();
    assert!(
        program.contains(&format!(
            "command = {}/current/.venv/bin/gunicorn --config",
            root.display()
        )),
        "{program}"
    );
    assert!(
        program.contains(&format!(
            "stdout_logfile = {}/program-logs/example-web.log",
            s.site.dir.path().display()
        )),
        "{program}"
    );
    assert_ne!(s.status("example-web").0, "RUNNING");

    // The first deploy starts what could not run before.
    let first = s.deploy_ok();
    let (state, master) = s.status("example-web");
    assert_eq!(state, "RUNNING");
    let master = master.unwrap();
    let first_env = env_of(master, &root).expect("the master runs from the release's env");
    assert_eq!(
        fs::canonicalize(root.join("current/.venv")).unwrap(),
        first_env
    );

    // A code change: a graceful reload of the same master.
    s.site.change_code("two");
    let second = s.deploy_ok();
    assert_ne!(first, second);
    assert_eq!(
        s.status("example-web").1,
        Some(master),
        "reloaded, not restarted"
    );

    // New dependencies: the master is restarted from the new environment.
    s.site
        .add_requirement("# a comment is enough for a new environment");
    s.deploy_ok();
    let (state, restarted) = s.status("example-web");
    assert_eq!(state, "RUNNING");
    let restarted = restarted.unwrap();
    assert_ne!(
        restarted, master,
        "a master from the old environment is restarted"
    );
    let new_env = env_of(restarted, &root).unwrap();
    assert_ne!(new_env, first_env);
    assert_eq!(
        fs::canonicalize(root.join("current/.venv")).unwrap(),
        new_env
    );

    // After a reboot supervisor may have left the program stopped: it is started, not HUPed.
    s.ctl(&["stop", "example-web"]);
    assert_eq!(s.status("example-web").0, "STOPPED");
    s.site.change_code("after the reboot");
    s.deploy_ok();
    assert_eq!(s.status("example-web").0, "RUNNING");
}
