//! `hoist check` says only what it saw: each restart strategy's needs are probed on the host
//! (a live gunicorn master, uWSGI's FIFO, a running systemd, supervisord and its program), a
//! supervisor socket the user cannot open is named as a permission problem with the fix, and
//! guesses `hoist init` left as PLACEHOLDER are flagged.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::*;

/// A child process killed and reaped when the test ends, pass or fail.
struct Reaped(Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn add_processes(site: &Site, processes: &str) {
    let mut text = fs::read_to_string(&site.config).unwrap();
    text.push_str(processes);
    fs::write(&site.config, text).unwrap();
}

fn line_with<'a>(text: &'a str, prefix: &str) -> &'a str {
    text.lines()
        .find(|l| l.starts_with(prefix))
        .unwrap_or_else(|| panic!("no line starting with {prefix:?} in\n{text}"))
}

#[test]
fn each_restart_strategy_is_probed_on_the_host() {
    assert!(
        !Path::new("/run/systemd/system").exists(),
        "this test needs a machine where systemd is not the init system (as in hoist's CI containers)"
    );
    let site = Site::new();
    let run = site.dir.path().join("run");
    fs::create_dir_all(&run).unwrap();
    let pidfile = run.join("gunicorn.pid");
    let fifo = run.join("uwsgi.fifo");
    add_processes(
        &site,
        &format!(
            "\n[[process]]\nname = \"hup\"\nrestart = \"gunicorn-hup\"\npidfile = \"{}\"\n\n[[process]]\nname = \"chain\"\nrestart = \"uwsgi-chain\"\nfifo = \"{}\"\n\n[[process]]\nname = \"unit\"\nrestart = \"systemd\"\nunit = \"example-web.service\"\n",
            pidfile.display(),
            fifo.display()
        ),
    );

    let out = site.hoist(&["check"]);
    assert_exit(&out, EXIT_CHECK_FAILED);
    let text = stdout(&out);
    assert_eq!(
        line_with(&text, "local  FAILED restart hup:"),
        format!(
            "local  FAILED restart hup: {} does not exist: no gunicorn master to reload",
            pidfile.display()
        )
    );
    assert_eq!(
        line_with(&text, "local  FAILED restart chain:"),
        format!(
            "local  FAILED restart chain: {} is not a FIFO: no uWSGI master is running with it as master-fifo",
            fifo.display()
        )
    );
    assert_eq!(
        line_with(&text, "local  FAILED restart unit:"),
        "local  FAILED restart unit: systemd is not running on this host (no /run/systemd/system), so it cannot restart example-web.service"
    );
    assert!(
        text.contains("local  ok restart web: bin/restart-web found"),
        "{text}"
    );
    assert!(text.contains("local  ok installer: uv "), "{text}");

    // A live process in the pid file and a real FIFO: now those two are ok, by what was seen.
    let master = Reaped(Command::new("sleep").arg("600").spawn().unwrap());
    fs::write(&pidfile, format!("{}\n", master.0.id())).unwrap();
    let made = Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(made.success(), "mkfifo {}", fifo.display());
    let out = site.hoist(&["check"]);
    let text = stdout(&out);
    assert_eq!(
        line_with(&text, "local  ok restart hup:"),
        format!(
            "local  ok restart hup: gunicorn master {} is running ({})",
            master.0.id(),
            pidfile.display()
        )
    );
    assert_eq!(
        line_with(&text, "local  ok restart chain:"),
        format!(
            "local  ok restart chain: {} is a FIFO (uWSGI's master-fifo)",
            fifo.display()
        )
    );

    // The master is gone, its pid file stays: a stale pid is not a master.
    let pid = master.0.id();
    drop(master);
    let out = site.hoist(&["check"]);
    assert_eq!(
        line_with(&stdout(&out), "local  FAILED restart hup:"),
        format!(
            "local  FAILED restart hup: {} names pid {pid}, which is not running",
            pidfile.display()
        )
    );
}

/// A private supervisord with one program, `example-web`, whose socket only root may open.
struct Supervisord {
    process: Reaped,
    socket: PathBuf,
    bin: PathBuf,
}

impl Supervisord {
    fn start(base: &Path) -> Supervisord {
        let conf = base.join("supervisord.conf");
        let socket = base.join("supervisor.sock");
        fs::write(
            &conf,
            format!(
                "[unix_http_server]\nfile={s}\nchmod=0700\n\n[supervisord]\nlogfile={b}/supervisord.log\npidfile={b}/supervisord.pid\nnodaemon=true\n\n[rpcinterface:supervisor]\nsupervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface\n\n[program:example-web]\ncommand=/bin/sleep 600\n",
                s = socket.display(),
                b = base.display()
            ),
        )
        .unwrap();
        let process = Reaped(
            Command::new("supervisord")
                .arg("-c")
                .arg(&conf)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("supervisord runs (scripts/install-deps installs supervisor)"),
        );
        let bin = base.join("bin");
        fs::create_dir_all(&bin).unwrap();
        let supervisord = Supervisord {
            process,
            socket,
            bin,
        };
        supervisord.use_as(None);
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let out = Command::new(supervisord.bin.join("supervisorctl"))
                .args(["status", "example-web"])
                .output()
                .unwrap();
            if String::from_utf8_lossy(&out.stdout).contains("RUNNING") {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "supervisord did not start example-web"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        supervisord
    }

    /// The `supervisorctl` hoist finds on PATH: talks to this supervisord, as `user` (a uid)
    /// when given.
    fn use_as(&self, user: Option<u32>) {
        let run_as = user.map_or(String::new(), |uid| {
            format!("setpriv --reuid={uid} --regid={uid} --clear-groups ")
        });
        let wrapper = self.bin.join("supervisorctl");
        fs::write(
            &wrapper,
            format!(
                "#!/bin/sh\nexec {run_as}/usr/bin/supervisorctl -s 'unix://{}' \"$@\"\n",
                self.socket.display()
            ),
        )
        .unwrap();
        let made = Command::new("chmod")
            .arg("+x")
            .arg(&wrapper)
            .status()
            .unwrap();
        assert!(made.success());
    }

    fn path(&self) -> String {
        format!(
            "{}:{}",
            self.bin.display(),
            std::env::var("PATH").unwrap_or_default()
        )
    }
}

impl Drop for Supervisord {
    fn drop(&mut self) {
        self.use_as(None);
        let _ = Command::new(self.bin.join("supervisorctl"))
            .arg("shutdown")
            .output();
        let deadline = Instant::now() + Duration::from_secs(20);
        while self.process.0.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

#[test]
fn a_supervisor_socket_the_user_cannot_open_is_a_permission_problem() {
    let site = Site::new();
    let base = site.dir.path().join("supervisor");
    fs::create_dir_all(&base).unwrap();
    let supervisord = Supervisord::start(&base);
    add_processes(
        &site,
        "\n[[process]]\nname = \"sup\"\nrestart = \"supervisor\"\nprogram = \"example-web\"\n\n[[process]]\nname = \"gone\"\nrestart = \"supervisor\"\nprogram = \"example-worker\"\n",
    );
    let check = || {
        let out = site
            .command(&["check"])
            .env("PATH", supervisord.path())
            .output()
            .unwrap();
        stdout(&out)
    };

    let text = check();
    assert!(
        text.contains("local  ok restart sup: supervisor program example-web is RUNNING"),
        "{text}"
    );
    assert!(
        text.contains("local  FAILED restart gone: supervisord has no program \"example-worker\""),
        "{text}"
    );

    // As a user who may not open the socket (root may open any: check as nobody then).
    let uid = String::from_utf8(Command::new("id").arg("-u").output().unwrap().stdout).unwrap();
    if uid.trim() == "0" {
        supervisord.use_as(Some(65534));
    } else {
        let made = Command::new("chmod")
            .arg("0000")
            .arg(&supervisord.socket)
            .status()
            .unwrap();
        assert!(made.success());
    }
    let text = check();
    assert!(
        text.contains(
            "local  FAILED restart sup: supervisorctl cannot open supervisord's socket: permission denied for this user"
        ),
        "{text}"
    );
    assert!(
        text.contains("local  hint: let the deploying user use the socket: in supervisord.conf, [unix_http_server] chown = <user>:<group>"),
        "{text}"
    );
}

#[test]
fn placeholders_left_by_init_are_flagged() {
    let site = Site::new();
    let text = fs::read_to_string(&site.config).unwrap();
    fs::write(
        &site.config,
        text.replace(
            "entry = \"app:app\"",
            "# PLACEHOLDER: no WSGI/ASGI app found; set \"module:attribute\".\nentry = \"app:app\"",
        ),
    )
    .unwrap();
    let out = site.hoist(&["check"]);
    assert_exit(&out, EXIT_OK);
    let text = stdout(&out);
    assert!(
        text.contains(&format!(
            "config  warning placeholder: {}:4: entry = \"app:app\" is a guess of `hoist init`: no WSGI/ASGI app found; set \"module:attribute\".",
            site.config.display()
        )),
        "{text}"
    );
    assert!(
        text.contains("config  hint: check the value, then delete its `# PLACEHOLDER:` comment"),
        "{text}"
    );
}
