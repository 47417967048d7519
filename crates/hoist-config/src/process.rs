//! `[[process]]`: what is restarted after the switch, and how.

use std::path::PathBuf;
use std::time::Duration;

use toml::Spanned;

use crate::check::Checker;
use crate::raw::RawProcess;
use crate::suggest::closest;
use crate::ConfigError;

/// One `[[process]]`, validated. Processes restart in file order after the switch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Process {
    /// Unique among processes.
    pub name: String,
    /// How the process picks up the new release.
    pub restart: Restart,
    /// How long the restart may take before it counts as failed.
    pub timeout: Duration,
    /// What keeps the process running, when known: the supervisor program or systemd unit
    /// that `gunicorn-hup` and `uwsgi-chain` start when the master is not running (the first
    /// deploy, after a reboot) and restart when the master runs from another environment than
    /// the release's. `program`/`unit` beside those strategies, else `<app>-<name>` when
    /// hoist.toml has a `[setup]` table.
    pub supervised: Option<Supervised>,
    /// The command `hoist setup`'s program runs in the live release (`run`), for a process
    /// that is not the app server (a queue worker); `None`: the app server of `[setup]`.
    pub run: Option<String>,
    /// The supervisord config `supervisorctl` is pointed at (`-c`), when the host has several
    /// supervisords; `None`: supervisorctl's default.
    pub supervisor_conf: Option<PathBuf>,
    /// How long a `supervisor`/`systemd` process must stay up after its restart, with the pid
    /// it started with, before the deploy goes on (`settle`); zero turns the watch off.
    pub settle: Duration,
    /// A command run in the new release after the restart (`check`, e.g. `rq info` or `python
    /// -c "import app.tasks"`): a non-zero exit fails the host like a failed health check.
    pub check: Option<String>,
}

/// The supervisor program or systemd unit that runs a process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Supervised {
    /// A supervisord `[program:…]`.
    Program(String),
    /// A systemd unit, e.g. `example-web.service`.
    Unit(String),
}

impl Process {
    /// The supervisor program that runs the process: the one a `supervisor` strategy restarts
    /// (the first, when it names several), or the one that supervises a master.
    #[must_use]
    pub fn program(&self) -> Option<&str> {
        match (&self.restart, &self.supervised) {
            (Restart::Supervisor { program }, _) => program.split_whitespace().next(),
            (_, Some(Supervised::Program(program))) => Some(program),
            _ => None,
        }
    }

    /// The systemd unit that runs the process.
    #[must_use]
    pub fn unit(&self) -> Option<&str> {
        match (&self.restart, &self.supervised) {
            (Restart::Systemd { unit }, _) => Some(unit),
            (_, Some(Supervised::Unit(unit))) => Some(unit),
            _ => None,
        }
    }
}

/// A restart strategy and the one setting it needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Restart {
    /// `supervisorctl restart <program>`.
    Supervisor {
        /// The supervisor program name.
        program: String,
    },
    /// `systemctl restart <unit>`.
    Systemd {
        /// The systemd unit, e.g. `example.service`.
        unit: String,
    },
    /// uWSGI chain reload: `c` written to the master FIFO, workers replaced one by one.
    UwsgiChain {
        /// Absolute path of the uWSGI master FIFO.
        fifo: PathBuf,
    },
    /// gunicorn graceful reload: `SIGHUP` to the master whose pid is in `pidfile`.
    GunicornHup {
        /// Absolute path of gunicorn's pid file.
        pidfile: PathBuf,
    },
    /// Any command, run with `bash -c` in the new release.
    Command {
        /// The command line.
        command: String,
    },
}

impl Restart {
    /// The strategy's name as written in hoist.toml, e.g. `uwsgi-chain`.
    #[must_use]
    pub fn strategy(&self) -> &'static str {
        match self {
            Self::Supervisor { .. } => "supervisor",
            Self::Systemd { .. } => "systemd",
            Self::UwsgiChain { .. } => "uwsgi-chain",
            Self::GunicornHup { .. } => "gunicorn-hup",
            Self::Command { .. } => "command",
        }
    }
}

/// Each strategy, the one key it needs, and what that key means.
const STRATEGIES: &[(&str, &str, &str)] = &[
    (
        "supervisor",
        "program",
        "the supervisorctl program name, e.g. program = \"example\"",
    ),
    (
        "systemd",
        "unit",
        "the systemd unit, e.g. unit = \"example.service\"",
    ),
    (
        "uwsgi-chain",
        "fifo",
        "the uWSGI master FIFO, e.g. fifo = \"/run/example/uwsgi.fifo\"",
    ),
    (
        "gunicorn-hup",
        "pidfile",
        "gunicorn's pid file, e.g. pidfile = \"/run/example/gunicorn.pid\"",
    ),
    (
        "command",
        "command",
        "the restart command, e.g. command = \"bin/restart-web\"",
    ),
];

const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);
/// Long enough for a worker that fails on start-up to have failed: supervisor's own
/// `startsecs` is 1 s.
const DEFAULT_SETTLE: Duration = Duration::from_secs(2);

pub(crate) fn validate(check: &Checker<'_>, raw: &RawProcess) -> Result<Process, ConfigError> {
    let name = check.non_empty(&raw.name, "name")?;
    let strategy = raw.restart.get_ref().as_str();
    let Some(&(strategy, own_key, own_key_meaning)) =
        STRATEGIES.iter().find(|(known, _, _)| *known == strategy)
    else {
        let names: Vec<&str> = STRATEGIES.iter().map(|(known, _, _)| *known).collect();
        let mut error = check.error(
            raw.restart.span(),
            format!(
                "unknown restart strategy {strategy:?}; expected one of {}",
                names.join(", ")
            ),
        );
        if let Some(suggestion) = closest(strategy, &names) {
            error = error.with_hint(format!("did you mean \"{suggestion}\"?"));
        }
        return Err(error);
    };

    let strategy_keys: [(&str, Option<&Spanned<String>>); 5] = [
        ("program", raw.program.as_ref()),
        ("unit", raw.unit.as_ref()),
        ("fifo", raw.fifo.as_ref()),
        ("pidfile", raw.pidfile.as_ref()),
        ("command", raw.command.as_ref()),
    ];
    let supervises_a_master = matches!(strategy, "gunicorn-hup" | "uwsgi-chain");
    for (key, value) in strategy_keys {
        let Some(value) = value else { continue };
        if key == own_key || (supervises_a_master && matches!(key, "program" | "unit")) {
            continue;
        }
        let belongs_to = STRATEGIES
            .iter()
            .find(|(_, k, _)| *k == key)
            .map_or("another strategy", |(s, _, _)| *s);
        return Err(check
            .error(
                value.span(),
                format!(
                    "key `{key}` does not belong to restart strategy \"{strategy}\", which takes `{own_key}` (and {})",
                    extra_keys(strategy)
                ),
            )
            .with_hint(format!(
                "`{key}` is for restart = \"{belongs_to}\"; remove it or change the strategy"
            )));
    }

    let Some(value) = strategy_keys
        .iter()
        .find(|(key, _)| *key == own_key)
        .and_then(|(_, value)| *value)
    else {
        return Err(check
            .error(
                raw.restart.span(),
                format!("restart strategy \"{strategy}\" needs `{own_key}`"),
            )
            .with_hint(format!("add {own_key_meaning}")));
    };
    let setting = check.non_empty(value, own_key)?;
    let absolute = |path: String| -> Result<PathBuf, ConfigError> {
        if path.starts_with('/') {
            Ok(PathBuf::from(path))
        } else {
            Err(check
                .error(
                    value.span(),
                    format!("`{own_key}` {path:?} must be an absolute path on the host"),
                )
                .with_hint(format!("add {own_key_meaning}")))
        }
    };
    let restart = match strategy {
        "supervisor" => Restart::Supervisor { program: setting },
        "systemd" => Restart::Systemd { unit: setting },
        "uwsgi-chain" => Restart::UwsgiChain {
            fifo: absolute(setting)?,
        },
        "gunicorn-hup" => Restart::GunicornHup {
            pidfile: absolute(setting)?,
        },
        _ => Restart::Command { command: setting },
    };

    let supervised = if supervises_a_master {
        match (&raw.program, &raw.unit) {
            (Some(_), Some(unit)) => {
                return Err(check
                    .error(
                        unit.span(),
                        "a process is supervised by a supervisor `program` or a systemd `unit`, not both",
                    )
                    .with_hint("remove one of the two"))
            }
            (Some(program), None) => Some(Supervised::Program(check.non_empty(program, "program")?)),
            (None, Some(unit)) => Some(Supervised::Unit(check.non_empty(unit, "unit")?)),
            (None, None) => None,
        }
    } else {
        None
    };
    let run = match &raw.run {
        Some(value) if matches!(strategy, "supervisor" | "systemd") => {
            Some(check.non_empty(value, "run")?)
        }
        Some(value) => {
            return Err(check
                .error(
                    value.span(),
                    format!(
                        "key `run` does not belong to restart strategy \"{strategy}\", which takes `{own_key}` (and {})",
                        extra_keys(strategy)
                    ),
                )
                .with_hint("`run` is the command of a supervisor program or systemd unit that `hoist setup` writes: use it with restart = \"supervisor\" or \"systemd\""))
        }
        None => None,
    };
    let supervisor_conf = match &raw.supervisor_conf {
        Some(value) if matches!(strategy, "command" | "systemd") => {
            return Err(check
                .error(
                    value.span(),
                    format!(
                        "key `supervisor_conf` does not belong to restart strategy \"{strategy}\", which takes `{own_key}` (and {})",
                        extra_keys(strategy)
                    ),
                )
                .with_hint("`supervisor_conf` is for processes that supervisorctl drives: restart = \"supervisor\", \"gunicorn-hup\" or \"uwsgi-chain\""))
        }
        Some(value) => {
            let path = check.non_empty(value, "supervisor_conf")?;
            if !path.starts_with('/') {
                return Err(check
                    .error(
                        value.span(),
                        format!("`supervisor_conf` {path:?} must be an absolute path on the host"),
                    )
                    .with_hint("e.g. supervisor_conf = \"/etc/supervisor/supervisord.conf\""));
            }
            Some(PathBuf::from(path))
        }
        None => None,
    };
    if let Some(value) = &raw.settle {
        if !matches!(strategy, "supervisor" | "systemd") {
            return Err(check
                .error(
                    value.span(),
                    format!(
                        "key `settle` does not belong to restart strategy \"{strategy}\", which takes `{own_key}` (and {})",
                        extra_keys(strategy)
                    ),
                )
                .with_hint("`settle` is how long a supervisor program or systemd unit must stay up after its restart: use it with restart = \"supervisor\" or \"systemd\" (gunicorn-hup and uwsgi-chain already wait for their new workers)"));
        }
    }
    Ok(Process {
        name,
        restart,
        timeout: check.positive_duration(raw.timeout.as_ref(), "timeout", DEFAULT_TIMEOUT)?,
        supervised,
        run,
        supervisor_conf,
        settle: check.duration(raw.settle.as_ref(), "settle", DEFAULT_SETTLE)?,
        check: match &raw.check {
            Some(value) => Some(check.non_empty(value, "check")?),
            None => None,
        },
    })
}

/// The keys a strategy takes besides its own.
fn extra_keys(strategy: &str) -> &'static str {
    match strategy {
        "gunicorn-hup" | "uwsgi-chain" => {
            "program or unit, supervisor_conf, check, name, restart, timeout"
        }
        "supervisor" => "run, supervisor_conf, settle, check, name, restart, timeout",
        "systemd" => "run, settle, check, name, restart, timeout",
        _ => "check, name, restart, timeout",
    }
}
