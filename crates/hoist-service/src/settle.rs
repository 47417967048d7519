//! After a restart: a `supervisor` or `systemd` process must still run `settle` later, with the
//! pid it started with (a program of `run`: in the new release). A queue worker that dies a second after starting,
//! or that its supervisor keeps restarting, fails the host instead of going live unnoticed
//! (invariant 8: a restart that "succeeds" proves nothing).

use std::time::{Duration, Instant};

use hoist_config::{Process, Restart};
use hoist_transport::{Cmd, Transport};

use crate::{supervisor, systemd, RestartContext, ServiceError};

/// The hint for a process that did not stay up.
const DIES_EARLY: &str = "see the program's log (`hoist logs`): it exits soon after starting";

/// How often the state is read while the process settles.
const POLL: Duration = Duration::from_millis(250);

/// Prints `ok` when pid `$1` works in release `$2` (its working directory) or names the release
/// or `$3/current` on its command line; else `cwd <its working directory>`.
const RUNS_FROM: &str = r#"cwd=$(readlink -f "/proc/$1/cwd" 2>/dev/null)
case "$cwd/" in "$2"/*) echo ok; exit 0 ;; esac
if tr '\0' '\n' < "/proc/$1/cmdline" 2>/dev/null | grep -q -e "^$2/" -e "^$3/current/"; then echo ok; exit 0; fi
echo "cwd ${cwd:-unknown}""#;

/// Watches `process` until its `settle` time since `restarted` (when its restart ended) is
/// over: each of its programs (or its unit) must stay running with one pid, and the program of
/// a process with `run` must then work in `ctx`'s release. Processes of other strategies, and
/// `settle = "0s"`, are not watched.
///
/// # Errors
///
/// [`ServiceError::NotSettled`] naming the state seen, or the transport's error.
pub fn wait_settled(
    t: &dyn Transport,
    process: &Process,
    ctx: &RestartContext<'_>,
    restarted: Instant,
) -> Result<(), ServiceError> {
    if process.settle.is_zero()
        || !matches!(
            process.restart,
            Restart::Supervisor { .. } | Restart::Systemd { .. }
        )
    {
        return Ok(());
    }
    let fail = |detail: String, hint: &str| ServiceError::NotSettled {
        host: t.host().to_string(),
        process: process.name.clone(),
        settle: process.settle,
        detail,
        hint: hint.to_string(),
    };
    let running = || running_pids(t, process).map_err(|detail| fail(detail, DIES_EARLY));
    let first = running()?;
    while restarted.elapsed() < process.settle {
        std::thread::sleep(POLL.min(process.settle.saturating_sub(restarted.elapsed())));
        let now = running()?;
        if let Some(((name, before), (_, after))) =
            first.iter().zip(&now).find(|((_, a), (_, b))| a != b)
        {
            return Err(fail(
                format!("{name} was restarted by its supervisor (pid {before}, then {after})"),
                DIES_EARLY,
            ));
        }
    }
    // A program `hoist setup` wrote for `run` works in `<root>/current`; others (an app
    // server loading the release through hoist's loader, a hand-written program) may work
    // anywhere, and their new pid after the switch is all there is to see.
    if process.run.is_none() {
        return Ok(());
    }
    for (name, pid) in &first {
        let out = t.exec(
            &Cmd::new("sh")
                .brief()
                .arg("-c")
                .arg(RUNS_FROM)
                .arg("hoist-runs-from")
                .arg(pid.to_string())
                .path_arg(ctx.release_path)
                .path_arg(ctx.root),
        )?;
        let said = out.stdout_text();
        if said.trim() != "ok" {
            return Err(fail(
                format!(
                    "{name} (pid {pid}) does not run from release {}: {}",
                    ctx.release_id,
                    said.trim()
                ),
                "run `hoist setup --apply` again: the program it writes for `run` works in <root>/current",
            ));
        }
    }
    Ok(())
}

/// Each program's (or the unit's) name and pid, or what it is instead of running.
fn running_pids(t: &dyn Transport, process: &Process) -> Result<Vec<(String, u32)>, String> {
    match &process.restart {
        Restart::Supervisor { program } => {
            let programs = supervisor::program_names(program);
            let found =
                supervisor::query_status_in(t, process.supervisor_conf.as_deref(), &programs)
                    .map_err(|e| e.to_string())?
                    .map_err(|problem| problem.detail())?;
            programs
                .iter()
                .map(|name| {
                    let status = found.iter().find(|s| &s.name == name);
                    match status {
                        Some(s) if s.state == "RUNNING" => {
                            s.pid.map(|pid| (name.clone(), pid)).ok_or_else(|| {
                                format!("{name} is RUNNING without a pid: {}", s.detail)
                            })
                        }
                        Some(s) => Err(format!("{name} is {} {}", s.state, s.detail)
                            .trim()
                            .to_string()),
                        None => Err(format!("supervisorctl status does not list {name}")),
                    }
                })
                .collect()
        }
        Restart::Systemd { unit } => {
            let out = t.exec(&systemd::show(unit)).map_err(|e| e.to_string())?;
            let state = systemd::parse_show(&out.stdout_text());
            if state.active == "active" && state.main_pid != 0 {
                Ok(vec![(unit.clone(), state.main_pid)])
            } else {
                Err(format!("{unit} is {}", state.active))
            }
        }
        _ => Ok(Vec::new()),
    }
}
