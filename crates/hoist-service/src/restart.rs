use std::collections::BTreeSet;
use std::path::Path;
use std::time::{Duration, Instant};

use hoist_config::{Process, Restart};
use hoist_transport::{Cmd, Transport};

use crate::workers::{list_workers, wait_for_new_workers};
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
pub fn restart(
    transport: &dyn Transport,
    process: &Process,
    ctx: &RestartContext<'_>,
) -> Result<(), ServiceError> {
    let host = transport.host().to_string();
    let cmd = match &process.restart {
        Restart::Command { command } => Cmd::new("timeout")
            .arg(format!("{}s", process.timeout.as_secs().max(1)))
            .arg("bash")
            .arg("-eo")
            .arg("pipefail")
            .arg("-c")
            .arg(command.clone()),
        Restart::Supervisor { program } => {
            return supervisor::restart(transport, &process.name, program, process.timeout)
        }
        Restart::Systemd { unit } => {
            return systemd::restart(transport, &process.name, unit, process.timeout)
        }
        Restart::UwsgiChain { fifo } => {
            return uwsgi_chain(transport, process, fifo, ctx.release_path)
        }
        Restart::GunicornHup { pidfile } => {
            return gunicorn_hup(transport, process, pidfile, ctx.release_path)
        }
    };
    let mut cmd = cmd.cwd(ctx.release_path);
    for (k, v) in ctx.env() {
        cmd = cmd.env(k, v);
    }
    let out = transport.exec(&cmd)?;
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

/// SIGHUP to the gunicorn master: it re-reads its config and replaces every worker, and the
/// listening socket stays open throughout. Done when every worker is new and runs `release`.
fn gunicorn_hup(
    transport: &dyn Transport,
    process: &Process,
    pidfile: &Path,
    release: &Path,
) -> Result<(), ServiceError> {
    let fail = |detail: String, hint: &str| ServiceError::ReloadFailed {
        host: transport.host().to_string(),
        process: process.name.clone(),
        detail,
        hint: hint.to_string(),
    };
    let start_it = "start gunicorn under its supervisor with this pid file (`hoist setup` writes the program and gunicorn.conf.py)";
    let text = transport.read_file(pidfile)?.unwrap_or_default();
    let Some(master) = parse_pid(&String::from_utf8_lossy(&text)) else {
        return Err(fail(
            format!("no gunicorn master pid in {}", pidfile.display()),
            start_it,
        ));
    };
    let before = list_workers(transport, master, release)?;
    if !before.master_alive {
        return Err(fail(
            format!(
                "gunicorn master {master} from {} is not running",
                pidfile.display()
            ),
            start_it,
        ));
    }
    let sent = transport.exec(&Cmd::new("kill").arg("-HUP").arg(master.to_string()))?;
    if !sent.success() {
        return Err(fail(
            format!("kill -HUP {master} failed: {}", sent.tail(2)),
            "run hoist as the user that runs gunicorn",
        ));
    }
    let old: BTreeSet<u32> = before.workers.iter().map(|w| w.pid).collect();
    wait_for_new_workers(
        transport,
        &process.name,
        master,
        release,
        &old,
        process.timeout,
    )
}

/// A chain reload through the uWSGI master FIFO: workers are replaced one at a time, each new
/// one accepting before the next old one stops. Done when every worker is new and runs
/// `release` (uWSGI must run with lazy-apps, so that each worker loads the app itself).
fn uwsgi_chain(
    transport: &dyn Transport,
    process: &Process,
    fifo: &Path,
    release: &Path,
) -> Result<(), ServiceError> {
    let fail = |detail: String, hint: &str| ServiceError::ReloadFailed {
        host: transport.host().to_string(),
        process: process.name.clone(),
        detail,
        hint: hint.to_string(),
    };
    let holders = transport.exec(
        &Cmd::new("sh")
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
    let before = list_workers(transport, master, release)?;
    let old: BTreeSet<u32> = before.workers.iter().map(|w| w.pid).collect();
    let start = Instant::now();
    // uWSGI ignores a chain-reload request while it is still finishing the previous one, so a
    // request that changes nothing within a few seconds is sent again.
    loop {
        // A FIFO write blocks while nobody reads it: bounded, in case the master is wedged.
        let sent = transport.exec(
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
        let moving = loop {
            let now = list_workers(transport, master, release)?;
            let replaced = old
                .iter()
                .any(|pid| !now.workers.iter().any(|w| w.pid == *pid));
            if !now.master_alive || replaced || old.is_empty() {
                break true;
            }
            if asked.elapsed() >= CHAIN_RESEND_AFTER || start.elapsed() >= process.timeout {
                break false;
            }
            std::thread::sleep(Duration::from_millis(100));
        };
        if moving || start.elapsed() >= process.timeout {
            break;
        }
    }
    let left = process.timeout.saturating_sub(start.elapsed());
    wait_for_new_workers(transport, &process.name, master, release, &old, left)
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

    #[test]
    fn the_fifo_master_is_the_holder_without_a_holding_parent() {
        assert_eq!(fifo_master("200 1\n201 200\n"), Some(200));
        assert_eq!(fifo_master("201 200\n200 77\n"), Some(200));
        assert_eq!(fifo_master(""), None);
    }

    #[test]
    fn pid_files_hold_one_pid() {
        assert_eq!(parse_pid("4242\n"), Some(4242));
        assert_eq!(parse_pid(""), None);
        assert_eq!(parse_pid("1"), None);
        assert_eq!(parse_pid("abc"), None);
    }
}
