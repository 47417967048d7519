//! `restart = "systemd"`: `systemctl reload-or-restart` of the unit when it can reload, else
//! `systemctl restart`; success is read from `systemctl show`, never from the exit code.
//!
//! Not run against a real systemd in hoist's tests (the test machines have no systemd as
//! PID 1): the command building and the parsing below are unit-tested.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use hoist_transport::{Cmd, Transport};

use crate::ServiceError;

/// The properties hoist reads.
pub const SHOW_PROPERTIES: &str =
    "Id,LoadState,ActiveState,SubState,MainPID,CanReload,Result,ExecMainStartTimestampMonotonic";

/// A unit's state from `systemctl show`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct UnitState {
    pub load: String,
    pub active: String,
    pub sub: String,
    pub main_pid: u32,
    pub can_reload: bool,
    pub result: String,
    /// When the main process started, monotonic µs; changes on every restart.
    pub started: u64,
}

/// `systemctl show -p … <unit>`.
#[must_use]
pub fn show(unit: &str) -> Cmd {
    Cmd::new("systemctl")
        .arg("show")
        .arg("-p")
        .arg(SHOW_PROPERTIES)
        .arg("--")
        .arg(unit)
}

/// `systemctl reload-or-restart <unit>` when it can reload, else `systemctl restart <unit>`.
#[must_use]
pub fn restart_command(unit: &str, can_reload: bool) -> Cmd {
    let action = if can_reload {
        "reload-or-restart"
    } else {
        "restart"
    };
    Cmd::new("systemctl").arg(action).arg("--").arg(unit)
}

/// Parses `key=value` lines of `systemctl show`.
#[must_use]
pub fn parse_show(text: &str) -> UnitState {
    let map: BTreeMap<&str, &str> = text.lines().filter_map(|l| l.split_once('=')).collect();
    let get = |k: &str| map.get(k).copied().unwrap_or_default().to_string();
    UnitState {
        load: get("LoadState"),
        active: get("ActiveState"),
        sub: get("SubState"),
        main_pid: get("MainPID").parse().unwrap_or(0),
        can_reload: get("CanReload") == "yes",
        result: get("Result"),
        started: get("ExecMainStartTimestampMonotonic").parse().unwrap_or(0),
    }
}

/// Whether the unit serves again after the action: active and running, with a main process,
/// and after a restart, one that started after `before`'s.
pub fn verdict(before: &UnitState, now: &UnitState) -> Result<(), String> {
    if now.load != "loaded" {
        return Err(format!("unit is {} (not loaded)", now.load));
    }
    if now.active == "failed" {
        return Err(format!("unit failed (result {})", now.result));
    }
    if now.active != "active" || now.sub != "running" || now.main_pid == 0 {
        return Err(format!(
            "unit is {}/{} (main pid {})",
            now.active, now.sub, now.main_pid
        ));
    }
    if !before.can_reload && now.started == before.started {
        return Err(format!(
            "main process {} is the one from before the restart",
            now.main_pid
        ));
    }
    Ok(())
}

/// `systemctl restart <unit>` (which also starts a stopped unit), waited for until the unit
/// runs a main process that started after the old one; returns its pid.
pub(crate) fn restart_fully(
    t: &dyn Transport,
    process: &str,
    unit: &str,
    timeout: Duration,
) -> Result<u32, ServiceError> {
    let fail = |detail: String| ServiceError::ReloadFailed {
        host: t.host().to_string(),
        process: process.to_string(),
        detail,
        hint: format!("see `systemctl status {unit}` and `journalctl -u {unit}`"),
    };
    let mut before = parse_show(&t.exec(&show(unit))?.stdout_text());
    before.can_reload = false;
    let said = t.exec(&restart_command(unit, false))?;
    let start = Instant::now();
    loop {
        let now = parse_show(&t.exec(&show(unit))?.stdout_text());
        match verdict(&before, &now) {
            Ok(()) => return Ok(now.main_pid),
            Err(why) if now.active == "failed" || start.elapsed() >= timeout => {
                return Err(fail(format!(
                    "{unit}: {why}; systemctl said: {}",
                    said.tail(3)
                )))
            }
            Err(_) => std::thread::sleep(Duration::from_millis(200)),
        }
    }
}

pub(crate) fn restart(
    transport: &dyn Transport,
    process: &str,
    unit: &str,
    timeout: Duration,
) -> Result<(), ServiceError> {
    let fail = |detail: String| ServiceError::ReloadFailed {
        host: transport.host().to_string(),
        process: process.to_string(),
        detail,
        hint: format!("see `systemctl status {unit}` and `journalctl -u {unit}`"),
    };
    let before = parse_show(&transport.exec(&show(unit))?.stdout_text());
    if before.load != "loaded" {
        return Err(fail(format!(
            "systemd unit {unit} is {} (`hoist setup` writes one)",
            if before.load.is_empty() {
                "unknown"
            } else {
                &before.load
            }
        )));
    }
    let said = transport.exec(&restart_command(unit, before.can_reload))?;
    let start = Instant::now();
    loop {
        let now = parse_show(&transport.exec(&show(unit))?.stdout_text());
        match verdict(&before, &now) {
            Ok(()) => return Ok(()),
            Err(why) if now.active == "failed" || start.elapsed() >= timeout => {
                return Err(fail(format!(
                    "{unit}: {why}; systemctl said: {}",
                    said.tail(3)
                )))
            }
            Err(_) => std::thread::sleep(Duration::from_millis(200)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RUNNING: &str = "Id=example-web.service\nLoadState=loaded\nActiveState=active\nSubState=running\nMainPID=812\nCanReload=yes\nResult=success\nExecMainStartTimestampMonotonic=1000\n";

    #[test]
    fn reads_systemctl_show() {
        let s = parse_show(RUNNING);
        assert_eq!(
            s,
            UnitState {
                load: "loaded".into(),
                active: "active".into(),
                sub: "running".into(),
                main_pid: 812,
                can_reload: true,
                result: "success".into(),
                started: 1000
            }
        );
    }

    #[test]
    fn reloads_when_it_can_and_restarts_otherwise() {
        assert_eq!(
            restart_command("example-web.service", true).render(),
            "systemctl reload-or-restart -- example-web.service"
        );
        assert_eq!(
            restart_command("example-web.service", false).render(),
            "systemctl restart -- example-web.service"
        );
        assert_eq!(
            show("a b.service").render(),
            format!("systemctl show -p {SHOW_PROPERTIES} -- 'a b.service'")
        );
    }

    #[test]
    fn judges_by_state_and_start_time_not_by_exit_code() {
        let before = parse_show(&RUNNING.replace("CanReload=yes", "CanReload=no"));
        assert_eq!(
            verdict(&before, &before),
            Err("main process 812 is the one from before the restart".into())
        );
        let restarted = parse_show(
            &RUNNING
                .replace("MainPID=812", "MainPID=900")
                .replace("Monotonic=1000", "Monotonic=2000"),
        );
        assert_eq!(verdict(&before, &restarted), Ok(()));
        let failed = parse_show(
            &RUNNING
                .replace("ActiveState=active", "ActiveState=failed")
                .replace("Result=success", "Result=exit-code"),
        );
        assert_eq!(
            verdict(&before, &failed),
            Err("unit failed (result exit-code)".into())
        );
        let reloaded = parse_show(RUNNING);
        assert_eq!(verdict(&reloaded, &reloaded), Ok(()));
        let missing = parse_show("LoadState=not-found\nActiveState=inactive\n");
        assert_eq!(
            verdict(&before, &missing),
            Err("unit is not-found (not loaded)".into())
        );
    }
}
