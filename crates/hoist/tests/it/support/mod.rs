//! A test site: a copy of the example app in a temporary directory, its own deploy root, its
//! own loopback port, and helpers that read what a user would look at: `current`, the
//! journal, RELEASE.json, and the app's HTTP answers. Real gunicorn, real virtualenvs.

use std::fs;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

pub const EXIT_OK: i32 = 0;
pub const EXIT_CONFIG: i32 = 2;
pub const EXIT_BEFORE_SWITCH: i32 = 3;
pub const EXIT_ROLLED_BACK: i32 = 4;
pub const EXIT_LOCK_HELD: i32 = 5;
pub const EXIT_LEFT_AS_IS: i32 = 6;
pub const EXIT_CHECK_FAILED: i32 = 8;

pub use hoist_testkit::{copy_tree, example_dir};

/// The one-root site of these tests, from hoist-testkit's builder: the example app with its
/// requirements, a `migrate` hook, its web process restarted by command, a health URL.
fn site_builder(opts: &SiteOptions) -> hoist_testkit::SiteBuilder {
    let mut builder = hoist_testkit::SiteBuilder::new()
        .installer(opts.installer)
        .requirements()
        .exclude("requirements-dev.txt")
        .keep_releases(opts.keep_releases)
        .shared("instance/settings.toml")
        .hook(
            hoist_testkit::Hook::new("migrate", ".venv/bin/python bin/migrate")
                .once()
                .timeout("2m"),
        )
        .restart_timeout("60s")
        .health_timeout(opts.health_timeout);
    if !opts.extra_hooks.is_empty() {
        builder = builder.extra_hooks(&opts.extra_hooks);
    }
    builder
}

pub struct Site {
    /// In the environment of every hoist command of this site (and so of every server a deploy
    /// starts): what still carries it when the site is dropped is stopped.
    pub mark: String,
    pub dir: tempfile::TempDir,
    pub project: PathBuf,
    pub root: PathBuf,
    pub port: u16,
    pub config: PathBuf,
}

/// What the test changes in the example's hoist.toml.
pub struct SiteOptions {
    pub installer: &'static str,
    pub keep_releases: usize,
    pub extra_hooks: String,
    pub health_timeout: &'static str,
}

impl Default for SiteOptions {
    fn default() -> Self {
        SiteOptions {
            installer: "uv",
            keep_releases: 5,
            extra_hooks: String::new(),
            health_timeout: "20s",
        }
    }
}

impl Site {
    pub fn new() -> Site {
        Site::with(SiteOptions::default())
    }

    pub fn with(opts: SiteOptions) -> Site {
        let built = site_builder(&opts).build();
        let hoist_testkit::Site {
            dir,
            project,
            config,
            roots,
            ports,
            ..
        } = built;
        let site = Site {
            mark: hoist_testkit::new_mark(),
            dir,
            project,
            root: roots[0].clone(),
            port: ports[0],
            config,
        };
        site.git(&["init", "-q", "-b", "main"]);
        site.commit("initial");
        site
    }

    pub fn git(&self, args: &[&str]) -> String {
        let out = Command::new("git")
            .arg("-C")
            .arg(&self.project)
            .args([
                "-c",
                "user.name=Test",
                "-c",
                "user.email=test@example.invalid",
            ])
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "git {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    pub fn commit(&self, message: &str) -> String {
        self.git(&["add", "-A"]);
        self.git(&["commit", "-q", "--allow-empty", "-m", message]);
        self.git(&["rev-parse", "HEAD"])
    }

    /// Runs `hoist --config <site> <args>` and returns its output.
    pub fn hoist(&self, args: &[&str]) -> Output {
        self.hoist_env(args, &[])
    }

    pub fn hoist_env(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        let mut cmd = self.command(args);
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd.output().unwrap()
    }

    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_hoist"));
        cmd.arg("--config")
            .arg(&self.config)
            .args(args)
            .env("HOIST_WHO", "tester@ci")
            .env("NO_COLOR", "1")
            .env(hoist_testkit::GUARD_MARK, &self.mark)
            .env_remove("HOIST_FAIL_AT")
            .current_dir(&self.project);
        cmd
    }

    /// Deploys and insists it worked; returns the new release id.
    pub fn deploy_ok(&self) -> String {
        let out = self.hoist(&["deploy"]);
        assert_exit(&out, EXIT_OK);
        self.current().expect("current exists after a deploy")
    }

    /// Makes a code-only change (the greeting default) and commits it.
    pub fn change_code(&self, marker: &str) {
        let path = self.project.join("app.py");
        let mut text = fs::read_to_string(&path).unwrap();
        text.push_str(&format!("\n# change {marker}\n"));
        fs::write(&path, text).unwrap();
        self.commit(&format!("code change {marker}"));
    }

    /// Adds a requirement, so the dependency key changes.
    pub fn add_requirement(&self, line: &str) {
        let path = self.project.join("requirements.txt");
        let mut text = fs::read_to_string(&path).unwrap();
        text.push_str(line);
        text.push('\n');
        fs::write(&path, text).unwrap();
        self.commit(&format!("add {line}"));
    }

    /// The release id `current` points to.
    pub fn current(&self) -> Option<String> {
        let target = fs::read_link(self.root.join("current")).ok()?;
        Some(target.file_name()?.to_string_lossy().into_owned())
    }

    /// `<root>/releases/<id>`, or `<root>/builds/<id>` for a root laid out the seed's way.
    pub fn release_dir(&self, id: &str) -> PathBuf {
        let builds = self.root.join("builds");
        if builds.is_dir() {
            return builds.join(id);
        }
        self.root.join("releases").join(id)
    }

    pub fn release_ids(&self) -> Vec<String> {
        let mut ids: Vec<String> = fs::read_dir(self.root.join("releases"))
            .map(|rd| {
                rd.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                    .filter(|n| !n.starts_with('.'))
                    .collect()
            })
            .unwrap_or_default();
        ids.sort();
        ids
    }

    pub fn envs(&self) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(self.root.join("envs"))
            .map(|rd| {
                rd.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        names.sort();
        names
    }

    pub fn journal(&self) -> Vec<Value> {
        fs::read_to_string(self.root.join(".hoist/journal.jsonl"))
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    /// The events of the journal naming `id`, as "event" strings.
    pub fn journal_events_of(&self, id: &str) -> Vec<String> {
        self.journal()
            .into_iter()
            .filter(|e| {
                ["release", "from", "to"]
                    .iter()
                    .any(|k| e.get(*k).and_then(Value::as_str) == Some(id))
            })
            .map(|e| e["event"].as_str().unwrap().to_string())
            .collect()
    }

    pub fn release_json(&self, id: &str) -> Value {
        let text = fs::read_to_string(self.release_dir(id).join("RELEASE.json")).unwrap();
        serde_json::from_str(&text).unwrap()
    }

    /// The release the running app says it serves (`GET /version`).
    pub fn serving(&self) -> Option<String> {
        let body = http_get(self.port, "/version")?;
        let v: Value = serde_json::from_str(&body).ok()?;
        v["release"].as_str().map(str::to_string)
    }

    /// Asserts that `current`, RELEASE.json and the app's answer all say `id` is live.
    pub fn assert_live(&self, id: &str) {
        assert_eq!(self.current().as_deref(), Some(id), "current");
        assert_eq!(self.release_json(id)["id"], id);
        assert_eq!(self.serving().as_deref(), Some(id), "the app's /version");
    }

    pub fn lock_exists(&self) -> bool {
        self.root.join(".hoist/lock").exists()
    }
}

impl Drop for Site {
    fn drop(&mut self) {
        let _ = Command::new(example_dir().join("bin/stop-web"))
            .env("HOIST_ROOT", &self.root)
            .env("HOIST_STOP_TIMEOUT", "10")
            .output();
        // A server whose pid file was lost (a deploy killed mid-restart) is found by its mark.
        hoist_testkit::stop_marked(&self.mark, std::time::Duration::from_secs(10));
    }
}

/// Failure points a kill walk leaves out, each for the point it walks instead: on the sites of
/// these tests a kill at either leaves the same journal, links and files, because nothing
/// between the two records anything (left out, walked instead, what comes between them).
pub const SAME_PHASE_POINTS: &[(&str, &str, &str)] = &[
    (
        "deploy:env",
        "deploy:hooks",
        "the import check and the per-host pre-switch hooks (the sites have none)",
    ),
    (
        "deploy:healthy",
        "deploy:restarted",
        "the process checks and the health check",
    ),
];

/// The failure points a kill walk over a deploy (`prefix` "deploy:") or a rollback ("rollback:")
/// stops at, in the order a run reaches them: every point a run passes when nothing fails, less
/// [`SAME_PHASE_POINTS`]. The `switched-back` ones are only reached on the way back from a
/// failure, `deploy:pruning-env` only when an environment is left unused, `deploy:repaired`
/// only when an earlier kill left something to close: each has a test of its own.
pub fn kill_walk_points(prefix: &str) -> Vec<&'static str> {
    let passed: Vec<&'static str> = hoist_deploy::FAILURE_POINTS
        .iter()
        .copied()
        .filter(|p| {
            p.starts_with(prefix)
                && !p.ends_with("switched-back")
                && *p != "deploy:pruning-env"
                && *p != "deploy:repaired"
        })
        .collect();
    for (left_out, instead, _) in SAME_PHASE_POINTS {
        assert!(
            hoist_deploy::FAILURE_POINTS.contains(left_out)
                && hoist_deploy::FAILURE_POINTS.contains(instead),
            "SAME_PHASE_POINTS names a failure point that is gone: {left_out} or {instead}"
        );
    }
    let list: Vec<&'static str> = passed
        .iter()
        .copied()
        .filter(|p| !SAME_PHASE_POINTS.iter().any(|(left_out, ..)| left_out == p))
        .collect();
    assert!(
        list.len() >= 4,
        "too few failure points for {prefix}: {list:?}"
    );
    list
}

pub fn assert_exit(out: &Output, code: i32) {
    assert_eq!(
        out.status.code(),
        Some(code),
        "expected exit {code}\n--- stdout\n{}\n--- stderr\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A plain HTTP GET on loopback; `None` when nothing answers.
pub fn http_get(port: u16, path: &str) -> Option<String> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut raw = String::new();
    s.read_to_string(&mut raw).ok()?;
    let (_, body) = raw.split_once("\r\n\r\n")?;
    Some(body.to_string())
}

/// Every path under `dir` with its kind and size, for "nothing changed on disk" assertions. The
/// running app's own logs (`shared/logs/`) are listed without their size: its server writes them
/// at any time (a worker that boots after the health check passed logs it later), not hoist.
pub fn snapshot(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    fn walk(dir: &Path, base: &Path, out: &mut Vec<String>) {
        let Ok(rd) = fs::read_dir(dir) else { return };
        for entry in rd {
            let entry = entry.unwrap();
            let path = entry.path();
            let meta = fs::symlink_metadata(&path).unwrap();
            let rel = path.strip_prefix(base).unwrap().display().to_string();
            if meta.file_type().is_symlink() {
                out.push(format!(
                    "{rel} -> {}",
                    fs::read_link(&path).unwrap().display()
                ));
            } else if meta.is_dir() {
                out.push(format!("{rel}/"));
                // Environments are large and immutable; their presence is enough.
                if !path.ends_with("envs") {
                    walk(&path, base, out);
                }
            } else if rel.starts_with("shared/logs/") {
                out.push(rel);
            } else {
                out.push(format!("{rel} {}", meta.len()));
            }
        }
    }
    walk(dir, dir, &mut out);
    out.sort();
    out
}

/// What a person sees of a command: its exit code, stdout and stderr, as one text to snapshot.
pub fn seen(out: &Output) -> String {
    format!(
        "exit code: {}\n----- stdout -----\n{}----- stderr -----\n{}",
        out.status
            .code()
            .map_or("none (killed)".into(), |c| c.to_string()),
        stdout(out),
        stderr(out)
    )
}

/// insta settings whose filters replace what differs from run to run: temporary paths, ports,
/// release ids, commits, pids, durations and ages.
pub fn snapshot_settings() -> insta::Settings {
    let mut settings = insta::Settings::clone_current();
    settings.set_prepend_module_to_snapshot(false);
    let tmp = std::env::temp_dir().display().to_string();
    let tmp = tmp.trim_end_matches('/');
    settings.add_filter(&format!("{}/[^/\\s\"'`:]+", regex_escape(tmp)), "[TMP]");
    settings.add_filter(r"\b\d{8}T\d{6}\.\d{3}Z-[0-9a-f]+-\d+\b", "[RUN]");
    settings.add_filter(r"\b\d{8}T\d{6}Z(-\d+)?\b", "[RELEASE]");
    settings.add_filter(r"\b[0-9a-f]{40}\b", "[COMMIT]");
    settings.add_filter(r"\b[0-9a-f]{24,39}\b", "[KEY]");
    settings.add_filter(r"\bcommit [0-9a-f]{7,12}\b", "commit [SHORT]");
    settings.add_filter(r"127\.0\.0\.1:\d+", "127.0.0.1:[PORT]");
    settings.add_filter(r"HOIST_PORT=\d+", "HOIST_PORT=[PORT]");
    settings.add_filter(r"\(pid \d+\)", "(pid [PID])");
    settings.add_filter(r"\b\d+(\.\d+)? (ms|s|min|h)\b", "[TIME]");
    settings.add_filter(r"\b\d+\.\d+s\b", "[TIME]");
    // How many polls fit in a health check's time depends on the machine's speed.
    settings.add_filter(r"\bafter \d+ attempts\b", "after [N] attempts");
    settings.add_filter(
        r"\b\d+ server errors in a row\b",
        "[N] server errors in a row",
    );
    if let Ok(host) = fs::read_to_string("/proc/sys/kernel/hostname") {
        settings.add_filter(&format!("@{}\\b", regex_escape(host.trim())), "@[HOSTNAME]");
    }
    settings.add_filter(r"\b(\d+[dhms] )?\d+[dhms] ago\b", "[AGE] ago");
    // A table's column after an age is padded to the widest age: one width for all.
    settings.add_filter(r"(\[(TIME|AGE)\] ago)  +", "$1  ");
    settings.add_filter(r"\bAGE +WHO\b", "AGE  WHO");
    settings.add_filter(r"\b[0-9a-f]{10}\b", "[SHORT]");
    settings.add_filter(r"\b\d+ MiB free\b", "[N] MiB free");
    settings
}

fn regex_escape(text: &str) -> String {
    text.chars()
        .flat_map(|c| {
            let special = "\\.+*?()|[]{}^$#&-~".contains(c);
            special
                .then_some('\\')
                .into_iter()
                .chain(std::iter::once(c))
        })
        .collect()
}

/// `user_sees!(name, output)`: a reviewed snapshot (`tests/it/snapshots/<name>.snap`) of what a
/// person sees of a command, filtered by [`snapshot_settings`].
#[macro_export]
macro_rules! user_sees {
    ($name:expr, $out:expr) => {
        $crate::support::snapshot_settings()
            .bind(|| insta::assert_snapshot!($name, $crate::support::seen(&$out)))
    };
}

/// Whether `pid` is alive (a zombie is not).
pub fn process_runs(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => !stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
        Err(_) => false,
    }
}

/// Waits until `pid` (`what`) is gone after the deploy that started it was killed: the host's
/// watcher kills it, asynchronously. Generous: on a loaded machine the watcher, `ps` and
/// `sudo -n kill` take their time, and what outlives its deploy runs for minutes. If it
/// survives, it is killed and the process table (who its parent, group and session are)
/// says why.
pub fn assert_dies(pid: u32, what: &str) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(90);
    while process_runs(pid) {
        if std::time::Instant::now() >= deadline {
            let table = std::process::Command::new("ps")
                .args(["-e", "-o", "pid,ppid,sid,pgid,user,stat,etimes,args"])
                .output()
                .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
                .unwrap_or_default();
            let _ = std::process::Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
            panic!("{what} (pid {pid}) still runs; processes:\n{table}");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}
