//! `[setup]`: what `hoist setup` writes for a server (the app server's config, its supervisor
//! program or systemd unit, an nginx server block) and where each goes on the host.

use std::path::PathBuf;

use serde::Deserialize;
use toml::Spanned;

use crate::check::Checker;
use crate::raw::Text;
use crate::ConfigError;

/// `[setup]` exactly as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawSetup {
    pub server: Option<Text>,
    pub supervisor: Option<Text>,
    pub port: Option<Spanned<i64>>,
    pub workers: Option<Spanned<i64>>,
    pub static_dir: Option<Text>,
    pub nginx_listen: Option<Text>,
    pub server_name: Option<Text>,
    pub templates: Option<Text>,
    pub config_dir: Option<Text>,
    pub server_venv: Option<Text>,
    pub uwsgi: Option<Text>,
    pub supervisor_dir: Option<Text>,
    pub systemd_dir: Option<Text>,
    pub nginx_dir: Option<Text>,
    pub nginx: Option<bool>,
    pub user: Option<Text>,
    pub program_log_dir: Option<Text>,
    pub supervisor_conf: Option<Text>,
}

/// The app server that serves the WSGI entry point.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AppServer {
    /// gunicorn, reloaded with `SIGHUP` (restart = "gunicorn-hup").
    Gunicorn,
    /// uWSGI with lazy-apps, chain-reloaded through its master FIFO (restart = "uwsgi-chain").
    Uwsgi,
}

/// What keeps the app server running.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Supervision {
    /// A supervisord `[program:…]`.
    Supervisor,
    /// A systemd service unit.
    Systemd,
}

/// The `[setup]` table, validated; every key has a default, so a file without it still has one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Setup {
    /// The app server (`server = "gunicorn" | "uwsgi"`, default gunicorn).
    pub server: AppServer,
    /// The supervisor (`supervisor = "supervisor" | "systemd"`, default supervisor).
    pub supervision: Supervision,
    /// The loopback port the app server listens on (default 8000).
    pub port: u16,
    /// Worker processes (default 2).
    pub workers: u32,
    /// Directory inside a release that nginx serves at `/static/` (default `static`).
    pub static_dir: String,
    /// nginx's `listen` value: a port, or address:port (default `80`).
    pub nginx_listen: String,
    /// nginx `server_name` (default `_`, any name).
    pub server_name: String,
    /// A directory of templates that replace the embedded ones, absolute (relative values are
    /// taken from hoist.toml's directory). `None`: `deploy/templates/` there, when it exists.
    pub templates: Option<PathBuf>,
    /// Where on the host the generated files go (default `<root>/shared/setup`).
    pub config_dir: Option<PathBuf>,
    /// The virtualenv whose gunicorn runs the master (default `<root>/current/.venv`, the
    /// live release's). Workers load the app's packages from their own release either way.
    pub server_venv: Option<PathBuf>,
    /// uWSGI only: the `uwsgi` binary that runs the master (default `uwsgi` on the PATH,
    /// Debian's, with its `python3` plugin). A uWSGI built with Python (pip's, in a virtualenv)
    /// has no plugin to load, so the ini names none when this is set.
    pub uwsgi: Option<PathBuf>,
    /// Where the supervisor program goes (default `/etc/supervisor/conf.d`, Debian's).
    pub supervisor_dir: PathBuf,
    /// Where the systemd units go (default `/etc/systemd/system`).
    pub systemd_dir: PathBuf,
    /// Where the nginx server block goes (default `/etc/nginx/sites-enabled`, Debian's).
    pub nginx_dir: PathBuf,
    /// Whether setup writes an nginx server block (`nginx = false`: another proxy, or none).
    pub nginx: bool,
    /// The user the programs run as (`user`; default: supervisor's or systemd's, root).
    pub user: Option<String>,
    /// Where supervisord writes each program's output (default `/var/log/supervisor`, which
    /// Debian's package creates): never under the app's root, whose absence would make
    /// supervisord refuse to load every program on the host.
    pub program_log_dir: PathBuf,
    /// The supervisord config `supervisorctl -c` reads, for setup's reload and every process
    /// without its own `supervisor_conf` (default: supervisorctl's own default).
    pub supervisor_conf: Option<PathBuf>,
}

impl Default for Setup {
    fn default() -> Self {
        Setup {
            server: AppServer::Gunicorn,
            supervision: Supervision::Supervisor,
            port: 8000,
            workers: 2,
            static_dir: "static".into(),
            nginx_listen: "80".into(),
            server_name: "_".into(),
            templates: None,
            config_dir: None,
            server_venv: None,
            uwsgi: None,
            supervisor_dir: PathBuf::from("/etc/supervisor/conf.d"),
            systemd_dir: PathBuf::from("/etc/systemd/system"),
            nginx_dir: PathBuf::from("/etc/nginx/sites-enabled"),
            nginx: true,
            user: None,
            program_log_dir: PathBuf::from("/var/log/supervisor"),
            supervisor_conf: None,
        }
    }
}

pub(crate) fn validate(
    check: &Checker<'_>,
    dir: &std::path::Path,
    raw: Option<&RawSetup>,
) -> Result<Setup, ConfigError> {
    let mut setup = Setup::default();
    let Some(raw) = raw else { return Ok(setup) };
    if let Some(server) = &raw.server {
        setup.server = match server.get_ref().as_str() {
            "gunicorn" => AppServer::Gunicorn,
            "uwsgi" => AppServer::Uwsgi,
            other => {
                return Err(check
                    .error(
                        server.span(),
                        format!("unknown server {other:?}; expected one of gunicorn, uwsgi"),
                    )
                    .with_hint("server = \"gunicorn\" or server = \"uwsgi\""))
            }
        };
    }
    if let Some(supervisor) = &raw.supervisor {
        setup.supervision = match supervisor.get_ref().as_str() {
            "supervisor" => Supervision::Supervisor,
            "systemd" => Supervision::Systemd,
            other => {
                return Err(check
                    .error(
                        supervisor.span(),
                        format!(
                            "unknown supervisor {other:?}; expected one of supervisor, systemd"
                        ),
                    )
                    .with_hint("supervisor = \"supervisor\" or supervisor = \"systemd\""))
            }
        };
    }
    let port = |value: &Spanned<i64>, key: &str| -> Result<u16, ConfigError> {
        u16::try_from(*value.get_ref())
            .ok()
            .filter(|p| *p > 0)
            .ok_or_else(|| {
                check.error(
                    value.span(),
                    format!("`{key}` {} is not a TCP port (1-65535)", value.get_ref()),
                )
            })
    };
    if let Some(value) = &raw.port {
        setup.port = port(value, "port")?;
    }
    if let Some(value) = &raw.nginx_listen {
        setup.nginx_listen = check.non_empty(value, "nginx_listen")?;
    }
    if let Some(value) = &raw.workers {
        setup.workers = u32::try_from(*value.get_ref())
            .ok()
            .filter(|w| (1..=512).contains(w))
            .ok_or_else(|| {
                check.error(
                    value.span(),
                    format!("`workers` {} must be between 1 and 512", value.get_ref()),
                )
            })?;
    }
    if let Some(value) = &raw.static_dir {
        let text = check.non_empty(value, "static_dir")?;
        if text.starts_with('/') || crate::check::has_parent_component(&text) {
            return Err(check
                .error(
                    value.span(),
                    format!("`static_dir` {text:?} must be a path inside the release"),
                )
                .with_hint("e.g. static_dir = \"static\""));
        }
        setup.static_dir = text.trim_end_matches('/').to_string();
    }
    if let Some(value) = &raw.server_name {
        setup.server_name = check.non_empty(value, "server_name")?;
    }
    if let Some(value) = &raw.templates {
        setup.templates = Some(dir.join(check.non_empty(value, "templates")?));
    }
    let absolute = |value: &Text, key: &str| -> Result<PathBuf, ConfigError> {
        let text = check.non_empty(value, key)?;
        if text.starts_with('/') {
            Ok(PathBuf::from(text))
        } else {
            Err(check
                .error(
                    value.span(),
                    format!("`{key}` {text:?} must be an absolute path on the host"),
                )
                .with_hint(format!("e.g. {key} = \"/srv/example/setup\"")))
        }
    };
    if let Some(value) = &raw.config_dir {
        setup.config_dir = Some(absolute(value, "config_dir")?);
    }
    if let Some(value) = &raw.server_venv {
        setup.server_venv = Some(absolute(value, "server_venv")?);
    }
    if let Some(value) = &raw.uwsgi {
        setup.uwsgi = Some(absolute(value, "uwsgi")?);
    }
    if let Some(value) = &raw.supervisor_dir {
        setup.supervisor_dir = absolute(value, "supervisor_dir")?;
    }
    if let Some(value) = &raw.systemd_dir {
        setup.systemd_dir = absolute(value, "systemd_dir")?;
    }
    if let Some(value) = &raw.nginx_dir {
        setup.nginx_dir = absolute(value, "nginx_dir")?;
    }
    if let Some(value) = raw.nginx {
        setup.nginx = value;
    }
    if let Some(value) = &raw.user {
        let user = check.non_empty(value, "user")?;
        if !user
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
        {
            return Err(check
                .error(value.span(), format!("`user` {user:?} is not a user name"))
                .with_hint("e.g. user = \"deploy\""));
        }
        setup.user = Some(user);
    }
    if let Some(value) = &raw.program_log_dir {
        setup.program_log_dir = absolute(value, "program_log_dir")?;
    }
    if let Some(value) = &raw.supervisor_conf {
        setup.supervisor_conf = Some(absolute(value, "supervisor_conf")?);
    }
    Ok(setup)
}

/// Fills in what keeps each process running, from `[setup]`: a `gunicorn-hup` or
/// `uwsgi-chain` process without `program` or `unit` is run by the program (or unit) `hoist
/// setup` writes for it, `<app>-<name>`, when hoist.toml has a `[setup]` table; supervisorctl
/// reads `[setup] supervisor_conf` unless the process names its own.
pub(crate) fn with_supervision(
    mut processes: Vec<crate::Process>,
    app: &str,
    has_setup: bool,
    setup: &Setup,
) -> Vec<crate::Process> {
    use crate::{Restart, Supervised};
    for process in &mut processes {
        let master = matches!(
            process.restart,
            Restart::GunicornHup { .. } | Restart::UwsgiChain { .. }
        );
        if master && has_setup && process.supervised.is_none() {
            let name = format!("{app}-{}", process.name);
            process.supervised = Some(match setup.supervision {
                Supervision::Supervisor => Supervised::Program(name),
                Supervision::Systemd => Supervised::Unit(format!("{name}.service")),
            });
        }
        if process.supervisor_conf.is_none() {
            process.supervisor_conf.clone_from(&setup.supervisor_conf);
        }
    }
    processes
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    fn parse(setup: &str) -> Result<crate::Config, crate::ConfigError> {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("app.py"), "app = None\n").unwrap();
        let text = format!(
            "[app]\nname = \"shop\"\nentry = \"app:app\"\nrequirements = []\n\n[release]\nroot = \"/srv/shop\"\n\n[setup]\n{setup}"
        );
        crate::parse(&dir.path().join("hoist.toml"), &text)
    }

    #[test]
    fn defaults_when_keys_are_absent() {
        let setup = parse("").unwrap().setup;
        assert_eq!(setup, super::Setup::default());
        assert_eq!(setup.nginx_dir, Path::new("/etc/nginx/sites-enabled"));
    }

    fn parse_with(
        processes: &str,
        setup: Option<&str>,
    ) -> Result<crate::Config, crate::ConfigError> {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("app.py"), "app = None\n").unwrap();
        let setup = setup.map_or(String::new(), |s| format!("\n[setup]\n{s}"));
        let text = format!(
            "[app]\nname = \"shop\"\nentry = \"app:app\"\nrequirements = []\n\n[release]\nroot = \"/srv/shop\"\n\n{processes}{setup}"
        );
        crate::parse(&dir.path().join("hoist.toml"), &text)
    }

    #[test]
    fn a_master_is_supervised_by_setups_program_unless_it_names_its_own() {
        use crate::Supervised;
        let hup = "[[process]]\nname = \"web\"\nrestart = \"gunicorn-hup\"\npidfile = \"/srv/shop/shared/run/gunicorn.pid\"\n";
        let without_setup = parse_with(hup, None).unwrap();
        assert_eq!(without_setup.processes[0].supervised, None);
        let with_setup = parse_with(hup, Some("supervisor_conf = \"/etc/sv.conf\"\n")).unwrap();
        assert_eq!(
            with_setup.processes[0].supervised,
            Some(Supervised::Program("shop-web".into()))
        );
        assert_eq!(
            with_setup.processes[0].supervisor_conf.as_deref(),
            Some(Path::new("/etc/sv.conf"))
        );
        let systemd = parse_with(hup, Some("supervisor = \"systemd\"\n")).unwrap();
        assert_eq!(
            systemd.processes[0].supervised,
            Some(Supervised::Unit("shop-web.service".into()))
        );
        let own = parse_with(&format!("{hup}program = \"shop-gunicorn\"\n"), None).unwrap();
        assert_eq!(
            own.processes[0].supervised,
            Some(Supervised::Program("shop-gunicorn".into()))
        );
    }

    #[test]
    fn run_and_supervisor_conf_belong_to_some_strategies_only() {
        let err = parse_with(
            "[[process]]\nname = \"web\"\nrestart = \"gunicorn-hup\"\npidfile = \"/r/g.pid\"\nrun = \"x\"\n",
            None,
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.ends_with("key `run` does not belong to restart strategy \"gunicorn-hup\", which takes `pidfile` (and program or unit, supervisor_conf, check, name, restart, timeout)"),
            "{err}"
        );
        let err = parse_with(
            "[[process]]\nname = \"web\"\nrestart = \"command\"\ncommand = \"x\"\nsupervisor_conf = \"/etc/sv.conf\"\n",
            None,
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("key `supervisor_conf` does not belong to restart strategy \"command\""),
            "{err}"
        );
        let err = parse_with(
            "[[process]]\nname = \"q\"\nrestart = \"supervisor\"\nprogram = \"q\"\nsupervisor_conf = \"sv.conf\"\n",
            None,
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.ends_with("`supervisor_conf` \"sv.conf\" must be an absolute path on the host"),
            "{err}"
        );
        let err = parse_with(
            "[[process]]\nname = \"web\"\nrestart = \"uwsgi-chain\"\nfifo = \"/r/f\"\nprogram = \"a\"\nunit = \"a.service\"\n",
            None,
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.ends_with(
                "a process is supervised by a supervisor `program` or a systemd `unit`, not both"
            ),
            "{err}"
        );
        let err = parse("user = \"de ploy\"\n").unwrap_err().to_string();
        assert!(
            err.ends_with("`user` \"de ploy\" is not a user name"),
            "{err}"
        );
    }

    #[test]
    fn each_bad_value_is_named_with_its_line() {
        let err = parse("server = \"waitress\"\n").unwrap_err().to_string();
        assert!(
            err.ends_with(":10:10: unknown server \"waitress\"; expected one of gunicorn, uwsgi"),
            "{err}"
        );
        let err = parse("port = 70000\n").unwrap_err().to_string();
        assert!(
            err.ends_with("`port` 70000 is not a TCP port (1-65535)"),
            "{err}"
        );
        let err = parse("static_dir = \"../etc\"\n").unwrap_err().to_string();
        assert!(
            err.ends_with("`static_dir` \"../etc\" must be a path inside the release"),
            "{err}"
        );
        let err = parse("nginx_dir = \"nginx\"\n").unwrap_err().to_string();
        assert!(
            err.ends_with("`nginx_dir` \"nginx\" must be an absolute path on the host"),
            "{err}"
        );
    }
}
