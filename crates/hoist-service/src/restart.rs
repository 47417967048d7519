use std::collections::BTreeSet;
use std::path::Path;
use std::time::{Duration, Instant};

use hoist_config::{Process, Restart, Supervised};
use hoist_transport::{Cmd, Transport};

use crate::workers::{list_workers, ready_dir, wait_for_new_workers, WorkerWatch};
use crate::{supervisor, systemd, ServiceError};

/// What a restart command is told about the release it must serve. Passed as environment
/// variables (`HOIST_ROOT`, `HOIST_RELEASE_PATH`, `HOIST_RELEASE_ID`, `HOIST_APP`), never
/// spliced into the command text.
#[derive(Debug, Clone)]
pub struct RestartContext<'a> {
    pub app: &'a str,
    pub root: &'a Path,
    /// The release's resolved absolute path: servers load it, not `current`, so old workers
    /// never read new files.
    pub release_path: &'a Path,
    pub release_id: &'a str,
    /// The host's `vars` from the inventory, given as `HOIST_VAR_<NAME>`.
    pub vars: &'a [(String, String)],
}

impl RestartContext<'_> {
    /// The environment every user command gets.
    pub fn env(&self) -> Vec<(String, String)> {
        vec![
            ("HOIST_APP".into(), self.app.into()),
            ("HOIST_ROOT".into(), self.root.display().to_string()),
            (
                "HOIST_RELEASE_PATH".into(),
                self.release_path.display().to_string(),
            ),
            ("HOIST_RELEASE_ID".into(), self.release_id.into()),
        ]
        .into_iter()
        .chain(self.vars.iter().map(|(k, v)| (var_name(k), v.clone())))
        .collect()
    }
}

/// `HOIST_VAR_` and the variable's name in upper case, anything but letters, digits and `_`
/// turned into `_`.
pub fn var_name(name: &str) -> String {
    let upper: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '_'
            }
        })
        .collect();
    format!("HOIST_VAR_{upper}")
}

/// Restarts one process the way its strategy says. Success here only means the restart was
/// carried out; whether the app serves is for [`crate::wait_healthy`] to decide.
/// `warming` is called once a warm reload's new workers are importing the app, which leaves
/// the host's shell mostly idle until they have (a deploy prunes old releases then); other
/// strategies never call it.
pub fn restart(
    t: &dyn Transport,
    process: &Process,
    ctx: &RestartContext<'_>,
    warming: &dyn Fn(),
) -> Result<(), ServiceError> {
    let host = t.host().to_string();
    let cmd = match &process.restart {
        Restart::Command { command } => Cmd::new("timeout")
            .arg(format!("{}s", process.timeout.as_secs().max(1)))
            .arg("bash")
            .arg("-eo")
            .arg("pipefail")
            .arg("-c")
            .arg(command.clone())
            // The user's own command: what it says is shown as it comes.
            .live(),
        Restart::Supervisor { program } => {
            return supervisor::restart(
                t,
                process.supervisor_conf.as_deref(),
                &process.name,
                program,
                process.timeout,
            )
        }
        Restart::Systemd { unit } => {
            return systemd::restart(t, &process.name, unit, process.timeout)
        }
        Restart::UwsgiChain { fifo } => return uwsgi_chain(t, process, fifo, ctx),
        Restart::GunicornHup { pidfile } => return gunicorn_hup(t, process, pidfile, ctx, warming),
    };
    let mut cmd = cmd.cwd(ctx.release_path);
    for (k, v) in ctx.env() {
        cmd = cmd.env(k, v);
    }
    let out = t.exec(&cmd)?;
    match out.status {
        0 => Ok(()),
        124 => Err(ServiceError::RestartTimedOut {
            host,
            process: process.name.clone(),
            timeout: process.timeout,
        }),
        status => Err(ServiceError::RestartFailed {
            host,
            process: process.name.clone(),
            status,
            output: out.tail(5),
        }),
    }
}

/// A warm reload of the gunicorn master ([`crate::warm`]): the new release's workers start and
/// load the app while the old ones serve, then the old ones retire. Done when every worker is
/// new, runs `release` and has loaded it.
fn gunicorn_hup(
    t: &dyn Transport,
    process: &Process,
    pidfile: &Path,
    ctx: &RestartContext<'_>,
    warming: &dyn Fn(),
) -> Result<(), ServiceError> {
    let release = ctx.release_path;
    let ready = ready_dir(pidfile);
    let target_file = ready.join(crate::warm::TARGET_FILE);
    // A running gunicorn that the pid file names, from the release's environment or one of
    // its own, is reloaded without asking its supervisor first (`supervisorctl status` starts
    // Python: ~0.2 s of every deploy); anything else is settled by the supervisor.
    let out = t.exec(
        &Cmd::new("sh")
            .brief()
            .arg("-c")
            .arg(RELOAD_START)
            .arg("hoist-reload-start")
            .path_arg(pidfile)
            .path_arg(ctx.root)
            .path_arg(release)
            .path_arg(&ready)
            .path_arg(&target_file),
    )?;
    let text = out.stdout_text();
    let (found, begun) = match text.split_once("hoist-listing\n") {
        Some((found, begun)) => (found, Some(begun)),
        None => (text.as_str(), None),
    };
    let surely_reloadable = found
        .lines()
        .find_map(|l| l.strip_prefix("pid "))
        .and_then(parse_pid)
        .filter(|_| {
            let master = read_master_env(found);
            master.alive && master.gunicorn && master.env != MasterEnv::Other
        });
    // The listing and the worker count to return to, when the command got that far.
    let begun = match (surely_reloadable, begun) {
        (Some(_), Some(begun)) => {
            let (listing, kept) = begun.rsplit_once("\ntarget").unwrap_or((begun, ""));
            let said = kept.strip_prefix("-failed ").unwrap_or("").trim();
            let target = crate::warm::kept_target(
                t,
                &process.name,
                &target_file,
                kept.strip_prefix(' '),
                said,
            )?;
            Some((crate::workers::parse_listing(listing), target))
        }
        _ => None,
    };
    // Just seen running: warm_reload finds it gone, should it exit meanwhile.
    let master = match surely_reloadable {
        Some(master) => master,
        None => {
            if started_fresh(t, process, ctx, &ready)? {
                return Ok(());
            }
            let fail = reload_failure(t, process);
            let start_it = "start gunicorn under its supervisor with this pid file (`hoist setup` writes the program and gunicorn.conf.py)";
            let text = t.read_file(pidfile)?.unwrap_or_default();
            let Some(master) = parse_pid(&String::from_utf8_lossy(&text)) else {
                return Err(fail(
                    format!("no gunicorn master pid in {}", pidfile.display()),
                    start_it,
                ));
            };
            let before = list_workers(t, master, release, None)?;
            if !before.master_alive {
                return Err(fail(
                    format!(
                        "gunicorn master {master} from {} is not running",
                        pidfile.display()
                    ),
                    start_it,
                ));
            }
            master
        }
    };
    crate::warm::warm_reload(
        t,
        &process.name,
        master,
        release,
        &ready,
        process.timeout,
        begun,
        warming,
    )
}

/// A chain reload through the uWSGI master FIFO: workers are replaced one at a time, each new
/// one accepting before the next old one stops. Done when every worker is new and runs
/// `release` (uWSGI must run with lazy-apps, so that each worker loads the app itself).
fn uwsgi_chain(
    t: &dyn Transport,
    process: &Process,
    fifo: &Path,
    ctx: &RestartContext<'_>,
) -> Result<(), ServiceError> {
    let release = ctx.release_path;
    let ready = ready_dir(fifo);
    if started_fresh(t, process, ctx, &ready)? {
        return Ok(());
    }
    let fail = reload_failure(t, process);
    let holders = t.exec(
        &Cmd::new("sh")
            .brief()
            .arg("-c")
            .arg(FIFO_HOLDERS)
            .arg("hoist-fifo")
            .path_arg(fifo),
    )?;
    let Some(master) = fifo_master(&holders.stdout_text()) else {
        return Err(fail(
            format!("no uWSGI master has the FIFO {} open", fifo.display()),
            "start uWSGI under its supervisor with `master-fifo` set to this path (`hoist setup` writes the uwsgi.ini)",
        ));
    };
    let before = list_workers(t, master, release, None)?;
    let old: BTreeSet<u32> = before.workers.iter().map(|w| w.pid).collect();
    let log = MasterLog::find(t, master)?;
    let start = Instant::now();
    // uWSGI ignores a chain-reload request while it is still finishing the previous one, so a
    // request that changes nothing within a few seconds is sent again.
    loop {
        // A FIFO write blocks while nobody reads it: bounded, in case the master is wedged.
        let sent = t.exec(
            &Cmd::new("timeout")
                .arg("10s")
                .arg("sh")
                .arg("-c")
                .arg("printf c > \"$1\"")
                .arg("hoist-chain")
                .path_arg(fifo),
        )?;
        if !sent.success() {
            return Err(fail(
                format!(
                    "writing the chain-reload command to {} failed (exit {}): {}",
                    fifo.display(),
                    sent.status,
                    sent.tail(2)
                ),
                "check that the uWSGI master reads its FIFO and that hoist runs as its user",
            ));
        }
        let asked = Instant::now();
        let mut watch = WorkerWatch::new(t, master, release, None);
        let moving = loop {
            let now = watch.changed()?;
            let replaced = old
                .iter()
                .any(|pid| !now.workers.iter().any(|w| w.pid == *pid));
            if !now.master_alive || replaced || old.is_empty() {
                break true;
            }
            if asked.elapsed() >= CHAIN_RESEND_AFTER || start.elapsed() >= process.timeout {
                break false;
            }
        };
        if moving || start.elapsed() >= process.timeout {
            break;
        }
    }
    let left = process.timeout.saturating_sub(start.elapsed());
    wait_for_new_workers(
        t,
        &process.name,
        master,
        release,
        Some(&ready),
        &old,
        old.len().max(1),
        left,
    )?;
    // The master sees the last new worker accept at its next tick (up to a second later) and
    // only then leaves its chain-reload state; a stop before that hangs uWSGI. When the master
    // logs to a file, its own word decides.
    let Some(log) = log else { return Ok(()) };
    loop {
        if log.says(t, CHAIN_COMPLETE)? {
            return Ok(());
        }
        if start.elapsed() >= process.timeout {
            return Err(fail(
                format!(
                    "every worker runs the new release, but uWSGI has not logged \"{CHAIN_COMPLETE}\" in {} after {:?}",
                    log.path,
                    process.timeout
                ),
                "see the uWSGI log; raise the process `timeout` if the app is slow to start",
            ));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// What uWSGI logs when a chain reload is over.
const CHAIN_COMPLETE: &str = "chain reloading complete";

/// The file the uWSGI master logs to (`logto`: its stderr is that file), and its size before
/// the reload: what was logged since is read from there.
struct MasterLog {
    path: String,
    offset: u64,
}

impl MasterLog {
    /// `None` when the master's stderr is not a regular file (a pipe to supervisor, a tty).
    fn find(t: &dyn Transport, master: u32) -> Result<Option<MasterLog>, ServiceError> {
        let out = t.exec(
            &Cmd::new("sh")
                .arg("-c")
                .arg(r#"f=$(readlink "/proc/$1/fd/2") && [ -f "$f" ] && printf '%s\n%s\n' "$(stat -c %s "$f")" "$f""#)
                .arg("hoist-log")
                .arg(master.to_string()),
        )?;
        let text = out.stdout_text();
        let mut lines = text.lines();
        let (Some(size), Some(path)) = (lines.next(), lines.next()) else {
            return Ok(None);
        };
        Ok(size.parse().ok().map(|offset| MasterLog {
            path: path.to_string(),
            offset,
        }))
    }

    /// Whether `words` were logged since the reload began (the whole file, if it was rotated).
    fn says(&self, t: &dyn Transport, words: &str) -> Result<bool, ServiceError> {
        let out = t.exec(
            &Cmd::new("sh")
                .arg("-c")
                .arg(r#"if [ "$(stat -c %s "$1")" -lt "$2" ]; then cat "$1"; else tail -c "+$(($2 + 1))" "$1"; fi | grep -qF "$3""#)
                .arg("hoist-log")
                .arg(self.path.clone())
                .arg(self.offset.to_string())
                .arg(words),
        )?;
        Ok(out.success())
    }
}

/// Starts the program when a reload cannot serve the release (see [`start_unless_reloadable`])
/// and waits until a worker of the new master runs `release`. `false`: the running master is
/// the one to reload.
fn started_fresh(
    t: &dyn Transport,
    process: &Process,
    ctx: &RestartContext<'_>,
    ready: &Path,
) -> Result<bool, ServiceError> {
    let Some(master) = start_unless_reloadable(t, process, ctx, ready)? else {
        return Ok(false);
    };
    wait_for_new_workers(
        t,
        &process.name,
        master,
        ctx.release_path,
        Some(ready),
        &BTreeSet::new(),
        1,
        process.timeout,
    )?;
    Ok(true)
}

/// The error of a graceful reload of `process` that could not be done, with a hint.
fn reload_failure<'a>(
    t: &'a dyn Transport,
    process: &'a Process,
) -> impl Fn(String, &str) -> ServiceError + 'a {
    move |detail, hint| ServiceError::ReloadFailed {
        host: t.host().to_string(),
        process: process.name.clone(),
        detail,
        hint: hint.to_string(),
    }
}

/// For a master whose supervisor program (or unit) hoist knows: starts it when it is not
/// running (the first deploy, when the program could not start before a release existed; a
/// program stopped or FATAL after a reboot), and restarts it when it runs from another
/// environment than the release's (the dependencies changed: a reload would keep the old
/// interpreter and packages, which pruning may delete). Returns the new master's pid, or
/// `None` when a graceful reload of the running master serves the release.
fn start_unless_reloadable(
    t: &dyn Transport,
    process: &Process,
    ctx: &RestartContext<'_>,
    ready: &Path,
) -> Result<Option<u32>, ServiceError> {
    // A warm reload cut off earlier left its `warm-target`: a fresh master's workers must not
    // take it for a reload in progress (one that fails to import would wait instead of
    // answering 503 to the health check).
    let forget_warm_reload = || t.remove_all(&ready.join(crate::warm::TARGET_FILE));
    match &process.supervised {
        None => Ok(None),
        Some(Supervised::Program(program)) => {
            let conf = process.supervisor_conf.as_deref();
            let mut now = supervisor::status_one(t, conf, &process.name, program)?;
            // A master that supervisord is still starting (`hoist setup --apply` a moment ago) is
            // waited for, not stopped: it may well be the one to reload.
            let since = std::time::Instant::now();
            while now.state == "STARTING" && since.elapsed() < process.timeout {
                std::thread::sleep(std::time::Duration::from_millis(200));
                now = supervisor::status_one(t, conf, &process.name, program)?;
            }
            let restart = match (now.state.as_str(), now.pid) {
                ("RUNNING", Some(pid)) => {
                    if runs_release_env(t, pid, ctx)? {
                        return Ok(None);
                    }
                    true
                }
                _ => false,
            };
            forget_warm_reload()?;
            supervisor::start(t, conf, &process.name, &now, restart, process.timeout).map(Some)
        }
        Some(Supervised::Unit(unit)) => {
            let now = systemd::parse_show(&t.exec(&systemd::show(unit))?.stdout_text());
            if now.active == "active"
                && now.main_pid != 0
                && runs_release_env(t, now.main_pid, ctx)?
            {
                return Ok(None);
            }
            forget_warm_reload()?;
            systemd::restart_fully(t, &process.name, unit, process.timeout).map(Some)
        }
    }
}

/// The shell function `master_env PID ROOT RELEASE`: prints the first `<ROOT>/envs/<key>` in
/// the executable or command line of `PID` (a uWSGI installed in a virtualenv is that
/// virtualenv's binary; a master started through a virtualenv's script runs its interpreter,
/// `#!<env>/bin/python`, which the command line names), then `want <realpath of the release's
/// .venv>`, then `runs <realpath of that env>` (empty when it is gone); `gunicorn` when its
/// command line names gunicorn, and `alive` when it is a running process; it leaves the same in
/// the variables `found`, `want`, `runs`, `gunicorn` and `alive` (the last two `1` or empty).
/// A directory's resolved path is `cd -P`'s `$PWD` (as `realpath` says; the function changes
/// the directory, so what runs after it uses absolute paths), and the rest is the shell's own
/// but for one `readlink` and one `tr`: it runs before every warm reload.
macro_rules! master_env_script {
    () => {
        r#"master_env() {
exe=$(readlink "/proc/$1/exe" 2>/dev/null)
args=$(tr '\0' '\n' < "/proc/$1/cmdline" 2>/dev/null)
found=
while IFS= read -r arg; do
  case $arg in "$2"/envs/*) rest=${arg#"$2"/envs/}; found="$2/envs/${rest%%/*}"; break;; esac
done <<HOIST_ARGS
$exe
$args
HOIST_ARGS
want= runs= gunicorn= alive=
if cd -P -- "$3/.venv" 2>/dev/null; then want=$PWD; fi
if [ -n "$found" ] && cd -P -- "$found" 2>/dev/null; then runs=$PWD; fi
case $args in *gunicorn*) gunicorn=1;; esac
read -r line 2>/dev/null < "/proc/$1/stat" && set -- ${line##*) } && [ "$1" != Z ] && alive=1
printf 'found %s\nwant %s\n' "$found" "$want"
[ -z "$found" ] || printf 'runs %s\n' "$runs"
[ -z "$gunicorn" ] || echo gunicorn
[ -z "$alive" ] || echo alive
return 0
}
"#
    };
}

/// [`master_env_script!`] of `$1`-`$3`.
const MASTER_ENV: &str = concat!(master_env_script!(), r#"master_env "$@""#);

/// What a warm reload asks first, in one command: the pid in the pid file `$1` (`pid <pid>`, or
/// `pid none` when it holds no single number), [`MASTER_ENV`] of it with root `$2` and release
/// `$3`, and when that is a running gunicorn that does not run another of the root's
/// environments (the rule of [`read_master_env`], which hoist checks again), a line
/// `hoist-listing`, the workers as [`list_workers`] lists them with ready directory `$4`, and
/// `target <count>` as `keep_target` keeps it in `$5` (`target-failed <why>` when it cannot).
/// Four round trips before, on every warm deploy and rollback. Every path it is given is
/// absolute (a pid file must be; the root's are), as [`master_env_script!`] changes directory.
const RELOAD_START: &str = concat!(
    master_env_script!(),
    "list() {\n",
    crate::workers::list_workers_script!(),
    "}\n",
    crate::warm::keep_target_script!(),
    r#"pid= extra=
{ read -r pid; read -r extra; } 2>/dev/null < "$1"
case $pid in ''|0*|1|*[!0-9]*) echo 'pid none'; exit 0;; esac
[ -z "$extra" ] || { echo 'pid none'; exit 0; }
printf 'pid %s\n' "$pid"
master_env "$pid" "$2" "$3"
[ -n "$gunicorn" ] && [ -n "$alive" ] || exit 0
if [ -n "$found" ] && [ -n "$want" ] && [ "$runs" != "$want" ]; then exit 0; fi
listing=$(list "$pid" "$3" "$4")
echo hoist-listing
printf '%s\n' "$listing"
n=0
while IFS= read -r l; do case $l in 'worker '*) n=$((n + 1));; esac; done <<HOIST_LISTING
$listing
HOIST_LISTING
[ "$n" -gt 0 ] || n=1
# The count is the last line (a warning may come before it).
if kept=$(keep_target "$4" "$5" "$n" 2>&1); then printf 'target %s\n' "${kept##*
}"
else printf 'target-failed %s\n' "$kept"; fi
exit 0
"#
);

/// Whether the master `pid` can serve the release by a reload: true unless it runs from one of
/// the root's environments that is not the release's (or no longer exists).
fn runs_release_env(
    t: &dyn Transport,
    pid: u32,
    ctx: &RestartContext<'_>,
) -> Result<bool, ServiceError> {
    Ok(master_env(t, pid, ctx)?.env != MasterEnv::Other)
}

/// What [`MASTER_ENV`] says of a master.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Master {
    env: MasterEnv,
    /// Its command line names gunicorn.
    gunicorn: bool,
    /// A running process (not gone, not a zombie).
    alive: bool,
}

/// Which environment a master runs from, as far as its executable and command line say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum MasterEnv {
    /// The release's.
    Same,
    /// Another of the root's environments, or one that is gone.
    Other,
    /// None of the root's (a server in a virtualenv of its own), or no such process.
    Unknown,
}

fn master_env(
    t: &dyn Transport,
    pid: u32,
    ctx: &RestartContext<'_>,
) -> Result<Master, ServiceError> {
    let out = t.exec(
        &Cmd::new("sh")
            .brief()
            .arg("-c")
            .arg(MASTER_ENV)
            .arg("hoist-master-env")
            .arg(pid.to_string())
            .path_arg(ctx.root)
            .path_arg(ctx.release_path),
    )?;
    Ok(read_master_env(&out.stdout_text()))
}

/// Reads [`MASTER_ENV`]'s output.
fn read_master_env(text: &str) -> Master {
    let field = |key: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(key).map(str::trim))
            .unwrap_or("")
    };
    let env = if field("found ").is_empty() || field("want ").is_empty() {
        MasterEnv::Unknown
    } else if field("runs ") == field("want ") {
        MasterEnv::Same
    } else {
        MasterEnv::Other
    };
    Master {
        env,
        gunicorn: text.lines().any(|l| l == "gunicorn"),
        alive: text.lines().any(|l| l == "alive"),
    }
}

/// How long a chain-reload request may show no effect before it is sent again.
const CHAIN_RESEND_AFTER: Duration = Duration::from_secs(5);

/// Prints `<pid> <ppid>` of each process with `$1` open; the uWSGI master is the one whose
/// parent is not among them.
const FIFO_HOLDERS: &str = r#"for p in /proc/[0-9]*; do
  for fd in "$p"/fd/*; do
    if [ "$(readlink "$fd" 2>/dev/null)" = "$1" ]; then
      read -r line < "$p/stat" 2>/dev/null || break
      set -- "$1" ${line##*) }
      printf '%s %s\n' "${p#/proc/}" "$3"
      break
    fi
  done
done
"#;

fn fifo_master(text: &str) -> Option<u32> {
    let pairs: Vec<(u32, u32)> = text
        .lines()
        .filter_map(|l| {
            let (pid, ppid) = l.split_once(' ')?;
            Some((pid.parse().ok()?, ppid.trim().parse().ok()?))
        })
        .collect();
    pairs
        .iter()
        .find(|(_, ppid)| !pairs.iter().any(|(pid, _)| pid == ppid))
        .map(|(pid, _)| *pid)
}

fn parse_pid(text: &str) -> Option<u32> {
    text.trim().parse().ok().filter(|pid| *pid > 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A stand-in gunicorn master: `sh` whose command line names `<root>/envs/<env>/bin/gunicorn`
    /// and that has two children; killed with its children when dropped.
    struct StandIn(std::process::Child);

    impl StandIn {
        fn start(root: &Path, env: &str) -> StandIn {
            let child = std::os::unix::process::CommandExt::process_group(
                std::process::Command::new("sh")
                    .arg("-c")
                    .arg("sleep 30 & sleep 30 & wait")
                    .arg(root.join(format!("envs/{env}/bin/gunicorn"))),
                0,
            )
            .spawn()
            .unwrap();
            let master = StandIn(child);
            let children = format!("/proc/{}/task/{}/children", master.0.id(), master.0.id());
            let deadline = std::time::Instant::now() + Duration::from_secs(5);
            while std::fs::read_to_string(&children)
                .unwrap_or_default()
                .split_whitespace()
                .count()
                < 2
                && std::time::Instant::now() < deadline
            {
                std::thread::sleep(Duration::from_millis(10));
            }
            master
        }
    }

    impl Drop for StandIn {
        fn drop(&mut self) {
            let _ = std::process::Command::new("kill")
                .args(["-KILL", "--", &format!("-{}", self.0.id())])
                .status();
            let _ = self.0.wait();
        }
    }

    /// [`RELOAD_START`]'s output for the pid file `pid` and a release whose `.venv` links to
    /// `<root>/envs/<env>`.
    fn reload_start(root: &Path, pid: &str, env: &str, kept: Option<&str>) -> String {
        for name in [
            "envs/k1",
            "envs/k2",
            "releases/r1",
            "shared/run/hoist-ready",
        ] {
            std::fs::create_dir_all(root.join(name)).unwrap();
        }
        let venv = root.join("releases/r1/.venv");
        let _ = std::fs::remove_file(&venv);
        std::os::unix::fs::symlink(root.join("envs").join(env), &venv).unwrap();
        let pidfile = root.join("shared/run/gunicorn.pid");
        std::fs::write(&pidfile, pid).unwrap();
        let ready = root.join("shared/run/hoist-ready");
        let target = ready.join(crate::warm::TARGET_FILE);
        let _ = std::fs::remove_file(&target);
        if let Some(kept) = kept {
            std::fs::write(&target, kept).unwrap();
        }
        let out = hoist_transport::Local::default()
            .exec(
                &Cmd::new("sh")
                    .arg("-c")
                    .arg(RELOAD_START)
                    .arg("hoist-reload-start")
                    .path_arg(&pidfile)
                    .path_arg(root)
                    .path_arg(&root.join("releases/r1"))
                    .path_arg(&ready)
                    .path_arg(&target),
            )
            .unwrap();
        assert!(out.success(), "{out:?}");
        out.stdout_text()
    }

    #[test]
    fn one_command_finds_the_master_its_workers_and_the_worker_count_to_return_to() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().canonicalize().unwrap();
        let master = StandIn::start(&root, "k1");
        let pid = master.0.id();
        let target = root.join("shared/run/hoist-ready/warm-target");
        // The master runs the release's environment: its workers and the count, kept.
        let text = reload_start(&root, &format!("{pid}\n"), "k1", None);
        let (found, begun) = text.split_once("hoist-listing\n").expect(&text);
        assert!(found.starts_with(&format!("pid {pid}\n")), "{text}");
        let k1 = root.join("envs/k1").display().to_string();
        assert_eq!(
            read_master_env(found),
            Master {
                env: MasterEnv::Same,
                gunicorn: true,
                alive: true
            },
            "{text}"
        );
        // The same lines as the check on its own says.
        let alone = hoist_transport::Local::default()
            .exec(
                &Cmd::new("sh")
                    .arg("-c")
                    .arg(MASTER_ENV)
                    .arg("hoist-master-env")
                    .arg(pid.to_string())
                    .path_arg(&root)
                    .path_arg(&root.join("releases/r1")),
            )
            .unwrap()
            .stdout_text();
        assert_eq!(found, format!("pid {pid}\n{alone}"));
        assert!(
            alone.contains(&format!("found {k1}\nwant {k1}\nruns {k1}\n")),
            "{alone}"
        );
        let listing = crate::workers::parse_listing(begun);
        assert!(listing.master_alive && listing.tracks_ready, "{text}");
        assert_eq!(listing.workers.len(), 2, "{text}");
        assert!(begun.ends_with("\ntarget 2\n"), "{text}");
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "2\n");
        // An interrupted reload's count is the one returned to.
        let text = reload_start(&root, &pid.to_string(), "k1", Some("3\n"));
        assert!(text.ends_with("\ntarget 3\n"), "{text}");
        // A master from another of the root's environments: no listing, nothing kept.
        let text = reload_start(&root, &pid.to_string(), "k2", None);
        assert!(!text.contains("hoist-listing"), "{text}");
        assert_eq!(read_master_env(&text).env, MasterEnv::Other, "{text}");
        assert!(!target.exists());
        drop(master);
        // A pid file naming no running process, or no single number.
        let text = reload_start(&root, &pid.to_string(), "k1", None);
        assert!(
            !text.contains("hoist-listing") && !text.contains("alive"),
            "{text}"
        );
        for bad in ["", "abc\n", "1\n", "012\n", &format!("{pid}\n{pid}\n")] {
            assert_eq!(
                reload_start(&root, bad, "k1", None),
                "pid none\n",
                "{bad:?}"
            );
        }
        assert!(!target.exists());
    }

    #[test]
    fn the_fifo_master_is_the_holder_without_a_holding_parent() {
        assert_eq!(fifo_master("200 1\n201 200\n"), Some(200));
        assert_eq!(fifo_master("201 200\n200 77\n"), Some(200));
        assert_eq!(fifo_master(""), None);
    }

    #[test]
    fn a_master_from_another_or_a_deleted_env_cannot_be_reloaded() {
        let env = |text: &str| read_master_env(text).env;
        assert_eq!(
            env("found /r/envs/a\nwant /r/envs/a\nruns /r/envs/a\n"),
            MasterEnv::Same
        );
        assert_eq!(
            env("found /r/envs/a\nwant /r/envs/b\nruns /r/envs/a\n"),
            MasterEnv::Other
        );
        assert_eq!(
            env("found /r/envs/a\nwant /r/envs/b\nruns \n"),
            MasterEnv::Other
        );
        // A master from a virtualenv of its own (server_venv), or a release without one.
        assert_eq!(env("found \nwant /r/envs/b\n"), MasterEnv::Unknown);
        assert_eq!(
            env("found /r/envs/a\nwant \nruns /r/envs/a\n"),
            MasterEnv::Unknown
        );
        let master = read_master_env("found \nwant /r/envs/b\ngunicorn\nalive\n");
        assert!(master.gunicorn && master.alive);
        let gone = read_master_env("found \nwant /r/envs/b\n");
        assert!(!gone.gunicorn && !gone.alive);
    }

    #[test]
    fn pid_files_hold_one_pid() {
        assert_eq!(parse_pid("4242\n"), Some(4242));
        assert_eq!(parse_pid(""), None);
        assert_eq!(parse_pid("1"), None);
        assert_eq!(parse_pid("abc"), None);
    }
}
