//! `restart = "supervisor"`: `supervisorctl restart` of the named programs, judged by
//! `supervisorctl status` (each RUNNING with a new pid), never by supervisorctl's exit code:
//! supervisor 3.x exits 0 even when the program failed to spawn.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use hoist_transport::{Cmd, Transport};

use crate::ServiceError;

/// One line of `supervisorctl status`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProgramStatus {
    /// The program as supervisor names it (`web`, or `group:web`).
    pub name: String,
    /// RUNNING, STARTING, BACKOFF, FATAL, EXITED, STOPPED, …
    pub state: String,
    /// The pid while RUNNING.
    pub pid: Option<u32>,
    /// The rest of the line (uptime, or why it is not running).
    pub detail: String,
}

/// Parses `supervisorctl status` output; lines that are not a program's status are skipped.
#[must_use]
pub fn parse_status(text: &str) -> Vec<ProgramStatus> {
    const STATES: &[&str] = &[
        "STOPPED", "STARTING", "RUNNING", "BACKOFF", "STOPPING", "EXITED", "FATAL", "UNKNOWN",
    ];
    text.lines()
        .filter_map(|line| {
            let mut parts = line.split_whitespace();
            let name = parts.next()?;
            let state = parts.next()?;
            if !STATES.contains(&state) {
                return None;
            }
            let detail = parts.collect::<Vec<_>>().join(" ");
            let pid = detail
                .strip_prefix("pid ")
                .and_then(|rest| rest.split(',').next())
                .and_then(|pid| pid.trim().parse().ok());
            Some(ProgramStatus {
                name: name.to_string(),
                state: state.to_string(),
                pid,
                detail,
            })
        })
        .collect()
}

/// The programs named in `program` (several may be given, separated by spaces).
#[must_use]
pub fn program_names(program: &str) -> Vec<String> {
    program.split_whitespace().map(str::to_string).collect()
}

/// `supervisorctl [-c <conf>] <action> <programs…>`.
#[must_use]
pub fn supervisorctl(conf: Option<&Path>, action: &str, programs: &[String]) -> Cmd {
    let mut cmd = Cmd::new("supervisorctl");
    if let Some(conf) = conf {
        cmd = cmd.arg("-c").path_arg(conf);
    }
    cmd.arg(action).args(programs.iter().cloned())
}

/// Why `supervisorctl` could not talk to supervisord at all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unreachable {
    /// The user cannot open supervisord's socket.
    PermissionDenied(String),
    /// No supervisord listens where supervisorctl looks.
    NotRunning(String),
}

impl Unreachable {
    /// Reads what supervisorctl said; `None` when it did reach supervisord.
    #[must_use]
    pub fn from_output(said: &str) -> Option<Unreachable> {
        let said = said.trim().to_string();
        if said.contains("Permission denied") {
            Some(Unreachable::PermissionDenied(said))
        } else if said.contains("no such file")
            || said.contains("No such file or directory")
            || said.contains("refused connection")
            || said.contains("Connection refused")
        {
            Some(Unreachable::NotRunning(said))
        } else {
            None
        }
    }

    /// What went wrong, with supervisorctl's own words.
    #[must_use]
    pub fn detail(&self) -> String {
        match self {
            Unreachable::PermissionDenied(said) => format!(
                "supervisorctl cannot open supervisord's socket: permission denied for this user ({said})"
            ),
            Unreachable::NotRunning(said) => {
                format!("supervisorctl cannot reach supervisord: {said}")
            }
        }
    }

    /// The fix.
    #[must_use]
    pub fn hint(&self) -> &'static str {
        match self {
            Unreachable::PermissionDenied(_) => {
                "let the deploying user use the socket: in supervisord.conf, [unix_http_server] \
                 chown = <user>:<group> (or chmod = 0770 with the user in that group), then \
                 restart supervisord; or deploy as a user that may run supervisorctl"
            }
            Unreachable::NotRunning(_) => {
                "start supervisord, or point supervisorctl at its socket (serverurl in the \
                 [supervisorctl] section of the supervisord.conf it reads)"
            }
        }
    }
}

/// `supervisorctl status <programs…>`: each program's status, or why supervisord could not be
/// asked. Programs supervisord does not have are simply absent from the list.
///
/// # Errors
///
/// The transport's error, or [`Unreachable`] inside `Ok(Err(..))` when supervisorctl ran but
/// could not reach supervisord.
pub fn query_status(
    t: &dyn Transport,
    programs: &[String],
) -> Result<Result<Vec<ProgramStatus>, Unreachable>, hoist_transport::TransportError> {
    query_status_in(t, None, programs)
}

/// [`query_status`] of the supervisord whose config is `conf` (`supervisorctl -c`).
///
/// # Errors
///
/// As [`query_status`].
pub fn query_status_in(
    t: &dyn Transport,
    conf: Option<&Path>,
    programs: &[String],
) -> Result<Result<Vec<ProgramStatus>, Unreachable>, hoist_transport::TransportError> {
    let out = t.exec(&supervisorctl(conf, "status", programs))?;
    let text = out.stdout_text();
    let found = parse_status(&text);
    if found.is_empty() {
        if let Some(problem) = Unreachable::from_output(&out.tail(3)) {
            return Ok(Err(problem));
        }
    }
    Ok(Ok(found))
}

fn status_of(
    t: &dyn Transport,
    conf: Option<&Path>,
    process: &str,
    programs: &[String],
) -> Result<BTreeMap<String, ProgramStatus>, ServiceError> {
    let out = t.exec(&supervisorctl(conf, "status", programs))?;
    let text = out.stdout_text();
    let found: BTreeMap<String, ProgramStatus> = parse_status(&text)
        .into_iter()
        .map(|s| (s.name.clone(), s))
        .collect();
    if found.is_empty() {
        if let Some(problem) = Unreachable::from_output(&out.tail(3)) {
            return Err(ServiceError::ReloadFailed {
                host: t.host().to_string(),
                process: process.to_string(),
                detail: problem.detail(),
                hint: problem.hint().into(),
            });
        }
    }
    if let Some(missing) = programs.iter().find(|p| !found.contains_key(*p)) {
        return Err(ServiceError::ReloadFailed {
            host: t.host().to_string(),
            process: process.to_string(),
            detail: format!(
                "supervisorctl status does not list program {missing:?}: {}",
                out.tail(3)
            ),
            hint: "check that supervisord runs and has the program (`hoist setup` writes one), and that `program` names it".into(),
        });
    }
    Ok(found)
}

/// Restarts the programs and waits until each runs with a new pid.
pub(crate) fn restart(
    t: &dyn Transport,
    conf: Option<&Path>,
    process: &str,
    program: &str,
    timeout: Duration,
) -> Result<(), ServiceError> {
    let programs = program_names(program);
    let before = status_of(t, conf, process, &programs)?;
    let start = Instant::now();
    // The exit code says nothing (3.x exits 0 on a failed spawn); the status below decides.
    let said = t.exec(&supervisorctl(conf, "restart", &programs).live())?;
    wait_running(
        t, conf, process, &programs, &before, "restart", &said, start, timeout,
    )
}

/// The status of one program, which supervisord must have.
pub(crate) fn status_one(
    t: &dyn Transport,
    conf: Option<&Path>,
    process: &str,
    program: &str,
) -> Result<ProgramStatus, ServiceError> {
    let programs = vec![program.to_string()];
    let mut found = status_of(t, conf, process, &programs)?;
    Ok(found
        .remove(program)
        .expect("status_of fails when a program is missing"))
}

/// Brings a program that is not RUNNING up (`start`, after a `stop` when supervisord is still
/// retrying it), or restarts a running one when `restart` is set; waits until it is RUNNING
/// with a new pid and returns that pid.
pub(crate) fn start(
    t: &dyn Transport,
    conf: Option<&Path>,
    process: &str,
    before: &ProgramStatus,
    restart: bool,
    timeout: Duration,
) -> Result<u32, ServiceError> {
    let programs = vec![before.name.clone()];
    let start = Instant::now();
    let action = if restart { "restart" } else { "start" };
    let said = if restart {
        t.exec(&supervisorctl(conf, "restart", &programs))?
    } else {
        if matches!(before.state.as_str(), "BACKOFF" | "STARTING") {
            // supervisord answers "already started" while it retries a program.
            t.exec(&supervisorctl(conf, "stop", &programs))?;
        }
        t.exec(&supervisorctl(conf, "start", &programs))?
    };
    let previous = BTreeMap::from([(before.name.clone(), before.clone())]);
    wait_running(
        t, conf, process, &programs, &previous, action, &said, start, timeout,
    )?;
    status_one(t, conf, process, &before.name)?
        .pid
        .ok_or_else(|| ServiceError::ReloadFailed {
            host: t.host().to_string(),
            process: process.to_string(),
            detail: format!("supervisor program {} shows no pid", before.name),
            hint: format!("see `supervisorctl status {}`", before.name),
        })
}

/// Waits until each program is RUNNING with a pid other than in `before`.
#[allow(clippy::too_many_arguments)]
fn wait_running(
    t: &dyn Transport,
    conf: Option<&Path>,
    process: &str,
    programs: &[String],
    before: &BTreeMap<String, ProgramStatus>,
    action: &str,
    said: &hoist_transport::Output,
    start: Instant,
    timeout: Duration,
) -> Result<(), ServiceError> {
    loop {
        let now = status_of(t, conf, process, programs)?;
        let mut waiting = None;
        for name in programs {
            let status = &now[name];
            let old_pid = before.get(name).and_then(|s| s.pid);
            match status.state.as_str() {
                "RUNNING" if status.pid.is_some() && status.pid != old_pid => {}
                "FATAL" | "BACKOFF" | "EXITED" | "STOPPED"
                    if start.elapsed() > Duration::from_secs(1) || status.state == "FATAL" =>
                {
                    return Err(ServiceError::ReloadFailed {
                        host: t.host().to_string(),
                        process: process.to_string(),
                        detail: format!(
                            "supervisor program {name} is {} ({}) after `supervisorctl {action}`, which said: {}",
                            status.state,
                            status.detail,
                            said.tail(3)
                        ),
                        hint: format!("see `supervisorctl tail {name} stderr` for why it did not start"),
                    });
                }
                _ => waiting = Some(format!("{name} is {} {}", status.state, status.detail)),
            }
        }
        let Some(why) = waiting else { return Ok(()) };
        if start.elapsed() >= timeout {
            return Err(ServiceError::ReloadFailed {
                host: t.host().to_string(),
                process: process.to_string(),
                detail: format!("not running with a new pid after {timeout:?}: {why}"),
                hint: "raise the process `timeout`, or see the program's log".into(),
            });
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_socket_the_user_cannot_open_is_a_permission_problem() {
        // What supervisorctl 4.2 prints, as a user who may not open the socket.
        let said = "error: <class 'PermissionError'>, [Errno 13] Permission denied: file: \
                    /usr/lib/python3/dist-packages/supervisor/xmlrpc.py line: 557";
        let problem = Unreachable::from_output(said).unwrap();
        assert!(matches!(problem, Unreachable::PermissionDenied(_)));
        assert!(problem.detail().starts_with(
            "supervisorctl cannot open supervisord's socket: permission denied for this user"
        ));
        assert!(problem.hint().contains("chown = <user>:<group>"));
        assert!(matches!(
            Unreachable::from_output("unix:///run/supervisor.sock no such file"),
            Some(Unreachable::NotRunning(_))
        ));
        // What supervisorctl 4.2 prints when no supervisord made the default socket.
        assert!(matches!(
            Unreachable::from_output("error: <class 'FileNotFoundError'>, [Errno 2] No such file or directory: file: /usr/lib/python3/dist-packages/supervisor/xmlrpc.py line: 557"),
            Some(Unreachable::NotRunning(_))
        ));
        assert_eq!(
            Unreachable::from_output("web: ERROR (no such process)"),
            None
        );
    }

    #[test]
    fn parses_each_state_and_the_pid() {
        let text = "web                              RUNNING   pid 4242, uptime 0:01:02\n\
                    app:worker                       FATAL     Exited too quickly (process log may have details)\n\
                    idle                             STOPPED   Not started\n\
                    unix:///tmp/x.sock no such file\n";
        let s = parse_status(text);
        assert_eq!(s.len(), 3);
        assert_eq!(
            s[0],
            ProgramStatus {
                name: "web".into(),
                state: "RUNNING".into(),
                pid: Some(4242),
                detail: "pid 4242, uptime 0:01:02".into()
            }
        );
        assert_eq!(s[1].name, "app:worker");
        assert_eq!(s[1].state, "FATAL");
        assert_eq!(s[1].pid, None);
        assert_eq!(s[2].state, "STOPPED");
    }

    #[test]
    fn several_programs_are_one_command() {
        let cmd = supervisorctl(None, "restart", &program_names("web  worker"));
        assert_eq!(cmd.render(), "supervisorctl restart web worker");
        let cmd = supervisorctl(Some(Path::new("/etc/sv b.conf")), "status", &[]);
        assert_eq!(cmd.render(), "supervisorctl -c '/etc/sv b.conf' status");
    }
}
