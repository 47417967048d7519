//! The documented setup works from the first deploy, with the real parts: a private
//! supervisord (found through `[setup] supervisor_conf`, as on a host with several), the
//! program `hoist setup --apply` writes and loads, and gunicorn or uWSGI. The server runs from
//! the release's own virtualenv (`<root>/current/.venv`, the default), which exists only after
//! the first deploy: that deploy starts it. A dependency change restarts the master from the
//! new environment (a reload would keep the old one, which pruning deletes); a program stopped
//! (after a reboot) is started, not signalled; a queue worker gets a program of its own.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::support::{assert_exit, free_port, http_get, stderr, Site, EXIT_OK, EXIT_ROLLED_BACK};
use hoist_testkit::ProcessGuard;

/// Real servers are heavy for a 2-core machine: one scenario at a time.
/// (Under `cargo test`, whose tests share a process; nextest runs each test in a process of its
/// own and keeps these one at a time by their test group in `.config/nextest.toml`.)
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
        Supervised::start_with(shape, "")
    }

    /// A site whose hoist.toml ends with `extra` (hosts, environments).
    fn start_with(shape: &Shape, extra: &str) -> Supervised {
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
{workers}nginx = false
supervisor_dir = "{base}/supervisor.d"
program_log_dir = "{base}/program-logs"
supervisor_conf = "{base}/supervisord.conf"
{setup}
{extra}"#,
            root = site.root.display(),
            processes = shape.processes.replace("{run}", &run.display().to_string()),
            server = shape.server,
            base = base.display(),
            setup = shape.setup,
            // Two workers unless the shape's `[setup]` keys say how many.
            workers = if shape.setup.contains("workers =") {
                ""
            } else {
                "workers = 2\n"
            },
        );
        fs::write(&site.config, config).unwrap();
        site.commit("served by a real app server under supervisor");
        fs::create_dir_all(base.join("supervisor.d")).unwrap();
        fs::create_dir_all(base.join("program-logs")).unwrap();
        let conf = base.join("supervisord.conf");
        fs::write(
            &conf,
            format!(
                "[unix_http_server]\nfile={b}/supervisor.sock\nchmod=0777\n\n[supervisord]\nlogfile={b}/supervisord.log\npidfile={b}/supervisord.pid\nnodaemon=true\n\n[rpcinterface:supervisor]\nsupervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface\n\n[supervisorctl]\nserverurl=unix://{b}/supervisor.sock\n\n[include]\nfiles = {b}/supervisor.d/*.conf\n",
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
    let out = s.site.hoist(&["check"]);
    assert_exit(&out, EXIT_OK);
    assert!(
        crate::support::stdout(&out)
            .contains("local  ok restart web: supervisor program example-web is "),
        "{}",
        crate::support::stdout(&out)
    );
    assert!(
        crate::support::stdout(&out).contains("; the deploy starts it"),
        "{}",
        crate::support::stdout(&out)
    );

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

/// gunicorn sleeps up to 0.1 s after each worker it forks (`Arbiter.spawn_workers`): a warm
/// reload, which adds its new workers one `TTIN` at a time, would wait that long again for each
/// next one. The gunicorn.conf.py `hoist setup` writes replaces that method in its `when_ready`
/// hook: a real master starts its 8 workers from it, and the replacement, called on a stand-in
/// for the master, forks as many as are missing and never sleeps. (Timing the forks of a real
/// master was tried: on a CI machine busy with other tests the master, starved by its 8
/// importing workers, forked them 280 ms apart even without the pause.)
#[test]
fn the_master_forks_its_workers_without_gunicorns_pause_between_them() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let s = Supervised::start(&Shape {
        setup: "workers = 8\n",
        ..GUNICORN
    });
    assert_exit(&s.site.hoist(&["setup", "--apply"]), EXIT_OK);
    s.deploy_ok();
    let master = s.status("example-web").1.expect("the master runs");
    let children = fs::read_to_string(format!("/proc/{master}/task/{master}/children")).unwrap();
    assert_eq!(
        children.split_whitespace().count(),
        8,
        "the master's workers: {children}"
    );
    let conf = s.site.root.join("shared/setup/gunicorn.conf.py");
    let script = r#"import runpy, sys, time
hooks = runpy.run_path(sys.argv[1])
class Master:
    num_workers = 3
    WORKERS = {7: "a worker from before"}
    def spawn_worker(self):
        self.WORKERS[len(self.WORKERS) + 100] = "new"
master = Master()
hooks["when_ready"](master)
def sleep(seconds):
    raise SystemExit(f"slept {seconds}")
time.sleep = sleep
master.spawn_workers()
print(len(master.WORKERS))
"#;
    let out = Command::new("python3")
        .args(["-c", script])
        .arg(&conf)
        .output()
        .unwrap();
    assert_exit(&out, EXIT_OK);
    assert_eq!(crate::support::stdout(&out).trim(), "3");
}

#[test]
fn a_worker_process_gets_a_program_of_its_own_beside_the_web_server() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let s = Supervised::start(&Shape {
        server: "gunicorn",
        processes: "[[process]]\nname = \"web\"\nrestart = \"gunicorn-hup\"\npidfile = \"{run}/gunicorn.pid\"\n\n[[process]]\nname = \"worker\"\nrestart = \"supervisor\"\nprogram = \"example-queue\"\nrun = \".venv/bin/python -c 'import signal; signal.pause()'\"\n",
        setup: "",
    });
    let out = s.site.hoist(&["setup", "--apply"]);
    assert_exit(&out, EXIT_OK);
    let program = fs::read_to_string(s.site.dir.path().join("supervisor.d/example.conf")).unwrap();
    assert!(program.contains("[program:example-web]\n"), "{program}");
    assert!(program.contains("[program:example-queue]\n"), "{program}");
    assert!(
        program.contains(&format!(
            "command = /bin/sh -c 'cd {}/current && exec .venv/bin/python -c '\\''import signal; signal.pause()'\\'''\n",
            s.site.root.display()
        )),
        "{program}"
    );
    assert!(
        !stderr(&out).contains("nginx"),
        "nginx = false: {}",
        stderr(&out)
    );

    let id = s.deploy_ok();
    let (web, _) = s.status("example-web");
    let (queue, worker) = s.status("example-queue");
    assert_eq!((web.as_str(), queue.as_str()), ("RUNNING", "RUNNING"));
    // The worker runs in the release the deploy switched to.
    let cwd = fs::read_link(format!("/proc/{}/cwd", worker.unwrap())).unwrap();
    assert_eq!(cwd, s.site.release_dir(&id).canonicalize().unwrap());
}

#[test]
fn two_processes_that_would_share_a_program_are_refused() {
    let site = Site::new();
    let mut text = fs::read_to_string(&site.config).unwrap();
    text.push_str(&format!(
        "\n[[process]]\nname = \"queue\"\nrestart = \"supervisor\"\nprogram = \"example-web\"\nrun = \"bin/queue\"\n\n[setup]\nsupervisor_dir = \"{b}/supervisor.d\"\nnginx = false\n",
        b = site.dir.path().display()
    ));
    fs::write(&site.config, text).unwrap();
    let out = site.hoist(&["setup"]);
    assert_exit(&out, crate::support::EXIT_CONFIG);
    assert!(
        stderr(&out).contains(
            "error: setup of example: the app server and process \"queue\" would both run as supervisor program \"example-web\"; give each its own `program` in hoist.toml"
        ),
        "{}",
        stderr(&out)
    );
}

#[test]
fn uwsgi_chain_is_done_only_once_every_new_worker_has_loaded_the_app() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let s = Supervised::start(&Shape {
        server: "uwsgi",
        processes: "[[process]]\nname = \"web\"\nrestart = \"uwsgi-chain\"\nfifo = \"{run}/uwsgi.fifo\"\ntimeout = \"60s\"\n",
        setup: "",
    });
    let out = s.site.hoist(&["setup", "--apply"]);
    assert_exit(&out, EXIT_OK);
    s.deploy_ok();
    let log = s.site.root.join("shared/logs/uwsgi.log");
    let completed = || {
        fs::read_to_string(&log)
            .unwrap_or_default()
            .matches("chain reloading complete")
            .count()
    };
    s.wait_for(|| completed() == 1, "the first chain reload to complete");

    // Importing the app now takes a second and a half, after the loader changed directory.
    let app = s.site.project.join("app.py");
    let text = fs::read_to_string(&app).unwrap();
    let future = "from __future__ import annotations\n";
    assert!(text.contains(future));
    fs::write(
        &app,
        text.replacen(
            future,
            &format!("{future}import time\ntime.sleep(2.5)\n"),
            1,
        ),
    )
    .unwrap();
    s.site.commit("slow to import");
    let id = s.deploy_ok();
    // uWSGI says so as soon as the last new worker accepts: at once, not an import later.
    let returned = Instant::now();
    while completed() < 2 && returned.elapsed() < Duration::from_millis(400) {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(
        completed(),
        2,
        "hoist returned before uWSGI completed the chain reload; uwsgi.log:\n{}\nready files: {:?}",
        fs::read_to_string(&log).unwrap_or_default(),
        fs::read_dir(s.site.root.join("shared/run/hoist-ready"))
            .map(|rd| rd.map(|e| e.unwrap().file_name()).collect::<Vec<_>>())
    );
    let ready = s.site.root.join("shared/run/hoist-ready");
    let release = s.site.release_dir(&id).canonicalize().unwrap();
    let said: Vec<String> = fs::read_dir(&ready)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .parse::<u32>()
                .is_ok()
        })
        .filter(|p| {
            Path::new(&format!(
                "/proc/{}",
                p.file_name().unwrap().to_string_lossy()
            ))
            .exists()
        })
        .map(|p| fs::read_to_string(p).unwrap())
        .collect();
    assert_eq!(said.len(), 2, "{said:?}");
    assert!(
        said.iter().all(|line| line
            .trim_end()
            .ends_with(&format!(" {}", release.display()))),
        "{said:?}"
    );
}

#[test]
fn setup_acts_on_the_environments_hosts_over_ssh_and_the_first_deploy_there_serves() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let server = hoist_testkit::SshServer::start();
    let holder = tempfile::Builder::new()
        .prefix("hoist-setup-ssh-")
        .tempdir()
        .unwrap();
    // The host's own root (with a space, for the quoting), not [release] root.
    let host_root = holder.path().join("srv web1");
    let extra = format!(
        "[ssh]\nconfig_file = \"{}\"\n\n[hosts.web1]\naddress = \"web1\"\nroot = \"{root}\"\n\n[environments.production]\nhosts = [\"web1\"]\n\n[[process]]\nname = \"web\"\nrestart = \"gunicorn-hup\"\npidfile = \"{root}/shared/run/gunicorn.pid\"\n",
        server.client_config.display(),
        root = host_root.display()
    );
    let shape = Shape {
        processes: "",
        ..GUNICORN
    };
    let s = Supervised::start_with(&shape, &extra);

    let out = s.site.hoist(&["setup", "production"]);
    assert_exit(&out, EXIT_OK);
    let loader = host_root.join("shared/setup/hoist_loader.py");
    assert!(
        crate::support::stdout(&out).contains(&format!(
            "create {} (from hoist_loader.py)",
            loader.display()
        )),
        "{}",
        crate::support::stdout(&out)
    );
    assert!(!loader.exists(), "written without --apply");

    let out = s.site.hoist(&["setup", "production", "--apply"]);
    assert_exit(&out, EXIT_OK);
    assert!(
        stderr(&out).contains("setup: web1: loaded example-web "),
        "{}",
        stderr(&out)
    );
    let text = fs::read_to_string(&loader).unwrap();
    assert!(
        text.contains(&format!("ROOT = \"{}\"", host_root.display())),
        "{text}"
    );
    let program = fs::read_to_string(s.site.dir.path().join("supervisor.d/example.conf")).unwrap();
    assert!(
        program.contains(&format!(
            "command = '{}/current/.venv/bin/gunicorn' --config '{}/shared/setup/gunicorn.conf.py'",
            host_root.display(),
            host_root.display()
        )),
        "{program}"
    );
    assert!(
        !s.site.root.join("shared").exists(),
        "nothing is written under [release] root, which is not this host's"
    );

    let out = s.site.hoist(&["deploy", "production"]);
    assert_exit(&out, EXIT_OK);
    let current = fs::read_link(host_root.join("current")).unwrap();
    let id = current.file_name().unwrap().to_string_lossy().into_owned();
    assert_eq!(s.serving().as_deref(), Some(id.as_str()));
    assert_eq!(s.status("example-web").0, "RUNNING");
}

/// An unprivileged user to deploy as, created when missing.
const DEPLOY_USER: &str = "hoist-deploy";

fn ensure_deploy_user() {
    let known = Command::new("id").arg(DEPLOY_USER).output().unwrap();
    if !known.status.success() {
        let out = Command::new("useradd")
            .args(["--create-home", "--shell", "/bin/sh", DEPLOY_USER])
            .output()
            .expect("useradd (package passwd)");
        assert!(
            out.status.success()
                || Command::new("id")
                    .arg(DEPLOY_USER)
                    .output()
                    .unwrap()
                    .status
                    .success(),
            "useradd {DEPLOY_USER}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

fn owner_of(path: &Path) -> u32 {
    use std::os::unix::fs::MetadataExt;
    fs::metadata(path).unwrap().uid()
}

fn uid_of_user() -> u32 {
    let out = Command::new("id")
        .args(["-u", DEPLOY_USER])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
}

fn uid_of_process(pid: u32) -> u32 {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|uid| uid.parse().ok())
        .unwrap()
}

#[test]
fn setup_run_as_root_prepares_a_shared_server_for_a_deploy_user() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    ensure_deploy_user();
    let s = Supervised::start(&Shape {
        setup: "user = \"hoist-deploy\"\n",
        ..GUNICORN
    });
    // The deploy user builds with Debian's Python (root's uv and pyenv are not theirs).
    let text = fs::read_to_string(&s.site.config).unwrap();
    fs::write(
        &s.site.config,
        text.replacen(
            "installer = \"uv\"\n",
            "installer = \"pip\"\npython = \"/usr/bin/python3\"\n",
            1,
        ),
    )
    .unwrap();
    s.site.commit("deployed by an unprivileged user");
    Command::new("chmod")
        .args(["-R", "a+rX"])
        .arg(s.site.dir.path())
        .status()
        .unwrap();
    let root = s.site.root.clone();
    assert!(!root.exists());

    // As root, for the deploy user.
    let out = s.site.hoist(&["setup", "--apply"]);
    assert_exit(&out, EXIT_OK);
    let user = uid_of_user();
    for dir in [
        root.clone(),
        root.join("shared"),
        root.join("shared/run"),
        root.join("shared/logs"),
    ] {
        assert_eq!(
            owner_of(&dir),
            user,
            "{} belongs to the deploy user",
            dir.display()
        );
    }
    let program = fs::read_to_string(s.site.dir.path().join("supervisor.d/example.conf")).unwrap();
    assert!(program.contains("\nuser = hoist-deploy\n"), "{program}");

    // The deploy user deploys, and the first deploy starts the server, as that user.
    let out = Command::new("runuser")
        .args([
            "-u",
            DEPLOY_USER,
            "--",
            env!("CARGO_BIN_EXE_hoist"),
            "--config",
        ])
        .arg(&s.site.config)
        .arg("deploy")
        .current_dir(&s.site.project)
        .env("HOME", format!("/home/{DEPLOY_USER}"))
        .env("NO_COLOR", "1")
        .env("HOIST_WHO", "deploy@ci")
        // The project belongs to root: let the deploy user's git read it.
        .env("GIT_CONFIG_COUNT", "1")
        .env("GIT_CONFIG_KEY_0", "safe.directory")
        .env("GIT_CONFIG_VALUE_0", "*")
        .env("PATH", "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin")
        .output()
        .unwrap();
    assert_exit(&out, EXIT_OK);
    let id = s.site.current().unwrap();
    assert_eq!(s.serving().as_deref(), Some(id.as_str()));
    let (state, master) = s.status("example-web");
    assert_eq!(state, "RUNNING");
    assert_eq!(
        uid_of_process(master.unwrap()),
        user,
        "gunicorn runs as the deploy user"
    );
    assert_eq!(owner_of(&root.join("shared/run/gunicorn.pid")), user);
}

/// A worker is judged after its restart too (issue 10 §4): one that dies a second after
/// starting, or whose tasks module no longer imports (a worker imports it only when a job
/// comes), fails the host and is switched back, exit 4, with the state or the check's output
/// named; the release before keeps the web server and the worker.
#[test]
fn a_worker_that_dies_after_starting_or_fails_its_check_is_switched_back() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let s = Supervised::start(&Shape {
        server: "gunicorn",
        processes: "[[process]]\nname = \"web\"\nrestart = \"gunicorn-hup\"\npidfile = \"{run}/gunicorn.pid\"\n\n[[process]]\nname = \"worker\"\nrestart = \"supervisor\"\nprogram = \"example-queue\"\nrun = \".venv/bin/python worker.py\"\ncheck = \"python -c 'import tasks'\"\nsettle = \"4s\"\n",
        setup: "",
    });
    let project = &s.site.project;
    // Starts, then (when the release says so) dies after 2.5 s: past the program's startsecs
    // (2 s, as `hoist setup` writes it), so supervisor reports a successful restart.
    fs::write(
        project.join("worker.py"),
        "import os, signal, time\nif os.path.exists('DIE'):\n    time.sleep(2.5)\n    raise SystemExit('worker: no connection to the queue')\nsignal.pause()\n",
    )
    .unwrap();
    fs::write(project.join("tasks.py"), "def work():\n    return 1\n").unwrap();
    s.site.commit("a worker with a tasks module");
    assert_exit(&s.site.hoist(&["setup", "--apply"]), EXIT_OK);
    let good = s.deploy_ok();
    let (_, worker) = s.status("example-queue");

    // 1. A worker that dies after starting.
    fs::write(project.join("DIE"), "").unwrap();
    s.site.commit("the worker dies");
    let out = s.site.hoist(&["deploy"]);
    assert_exit(&out, EXIT_ROLLED_BACK);
    let err = stderr(&out);
    assert!(
        err.contains("worker did not stay up 4s after its restart: example-queue is"),
        "{err}"
    );
    assert_eq!(s.site.current().as_deref(), Some(good.as_str()));
    assert_eq!(s.serving().as_deref(), Some(good.as_str()));
    s.wait_for(
        || {
            let (state, pid) = s.status("example-queue");
            state == "RUNNING" && pid != worker
        },
        "the worker restarted in the release before",
    );
    let (_, back) = s.status("example-queue");
    let cwd = fs::read_link(format!("/proc/{}/cwd", back.unwrap())).unwrap();
    assert_eq!(cwd, s.site.release_dir(&good).canonicalize().unwrap());

    // 2. A worker that runs, with a tasks module that no longer imports.
    fs::remove_file(project.join("DIE")).unwrap();
    fs::write(project.join("tasks.py"), "def work(:\n    return 1\n").unwrap();
    s.site.commit("a syntax error in the tasks");
    let out = s.site.hoist(&["deploy"]);
    assert_exit(&out, EXIT_ROLLED_BACK);
    let err = stderr(&out);
    assert!(
        err.contains("the check of worker (`python -c 'import tasks'`) exited 1"),
        "{err}"
    );
    assert!(err.contains("SyntaxError"), "{err}");
    assert_eq!(s.site.current().as_deref(), Some(good.as_str()));
    assert_eq!(s.serving().as_deref(), Some(good.as_str()));

    // 3. Fixed: the check passes and the release goes live.
    fs::write(project.join("tasks.py"), "def work():\n    return 2\n").unwrap();
    s.site.commit("the tasks import again");
    let fixed = s.deploy_ok();
    assert_ne!(fixed, good);
}
