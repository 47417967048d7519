use std::path::Path;

use hoist_config::{Process, Restart};
use hoist_transport::{Cmd, Transport};

use crate::ServiceError;

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
    }
}

/// Restarts one process the way its strategy says. Success here only means the restart was
/// carried out; whether the app serves is for [`crate::wait_healthy`] to decide.
pub fn restart(
    t: &dyn Transport,
    process: &Process,
    ctx: &RestartContext<'_>,
) -> Result<(), ServiceError> {
    let host = t.host().to_string();
    let cmd = match &process.restart {
        Restart::Command { command } => Cmd::new("timeout")
            .arg(format!("{}s", process.timeout.as_secs().max(1)))
            .arg("bash")
            .arg("-eo")
            .arg("pipefail")
            .arg("-c")
            .arg(command.clone()),
        Restart::Supervisor { .. } => {
            return Err(ServiceError::StrategyUnavailable {
                host,
                strategy: "supervisor",
            })
        }
        Restart::Systemd { .. } => {
            return Err(ServiceError::StrategyUnavailable {
                host,
                strategy: "systemd",
            })
        }
        Restart::UwsgiChain { .. } => {
            return Err(ServiceError::StrategyUnavailable {
                host,
                strategy: "uwsgi-chain",
            })
        }
        Restart::GunicornHup { .. } => {
            return Err(ServiceError::StrategyUnavailable {
                host,
                strategy: "gunicorn-hup",
            })
        }
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
