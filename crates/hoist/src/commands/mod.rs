//! One file per command. Each returns `Result<(), CommandError>`; `main` prints the error and
//! maps it to the exit code.

pub mod adopt;
pub mod cache;
pub mod check;
pub mod ci;
pub mod completions;
pub mod deploy;
pub mod import;
pub mod import_ansible;
pub mod init;
pub mod lock;
pub mod logs;
pub mod releases;
pub mod rollback;
pub mod run;
pub mod serve;
pub mod setup;
pub mod status;

use std::path::{Path, PathBuf};

use hoist_config::Config;
use hoist_deploy::{Fleet, Host, Layout, Rollout};
use hoist_transport::HostKeyPolicy;

use crate::cli::{Cli, Command, TargetArgs};
use crate::command_error::{CommandError, ErrorKind};
use crate::printer::Printer;

pub fn dispatch(cli: Cli, printer: Printer) -> Result<(), CommandError> {
    let config = cli.config.as_deref();
    match cli.command {
        Command::Init(args) => init::run(&args, config, printer),
        Command::Adopt(args) => adopt::run(&args, config, printer),
        Command::Check(args) => check::run(&args, config, printer),
        Command::Deploy(args) => deploy::run(&args, config, printer),
        Command::Rollback(args) => rollback::run(&args, config, printer),
        Command::Releases(args) => releases::run(&args, config, printer),
        Command::Status(args) => status::run(&args, config, printer),
        Command::Lock(args) => lock::run(args, config, printer),
        Command::Ci(cmd) => ci::run(cmd, config, printer),
        Command::Serve(args) => serve::run(args, printer),
        Command::Cache(cmd) => cache::run(cmd, config, printer),
        Command::Import(cmd) => import::run(cmd, config, printer),
        Command::Setup(args) => setup::run(&args, config, printer),
        Command::Run(args) => run::run(&args, config, printer),
        Command::Logs(args) => logs::run(&args, config, printer),
        Command::Completions(args) => completions::completions(args.shell),
        Command::Man => completions::man(),
    }
}

/// Where hoist.toml is: `--config`, else ./hoist.toml or the nearest one in a parent directory.
/// Every command that reads the file finds it here.
pub fn config_path(explicit: Option<&Path>) -> Result<PathBuf, CommandError> {
    if let Some(path) = explicit {
        return Ok(path.to_path_buf());
    }
    let cwd = std::env::current_dir()
        .map_err(|e| CommandError::internal(format!("cannot read the current directory: {e}")))?;
    hoist_config::find(&cwd).ok_or_else(|| {
        CommandError::config(format!(
            "no hoist.toml in {} or any parent directory",
            cwd.display()
        ))
        .hint("run `hoist init` to write one, or pass --config <path>")
    })
}

/// Finds and loads hoist.toml (errors at file:line:column, with a hint).
pub fn load_config(explicit: Option<&Path>) -> Result<Config, CommandError> {
    Ok(hoist_config::load(&config_path(explicit)?)?)
}

/// The hosts to act on: the environment's, narrowed by `--hosts`/`--group`, each connected
/// (in parallel; an unreachable host is an error naming it, before anything is changed).
pub fn fleet(config: &Config, target: &TargetArgs) -> Result<Fleet, CommandError> {
    let env = config.environment(target.environment.as_deref())?;
    let env = if target.hosts.is_empty() && target.group.is_none() {
        env
    } else {
        env.select(&target.hosts, target.group.as_deref())?
    };
    let forks = target.forks.unwrap_or(env.forks).max(1);
    let rollout = Rollout::from_config(&env.activation, env.hosts.len());
    let policy = if target.accept_new_host_keys {
        HostKeyPolicy::AcceptNew
    } else {
        HostKeyPolicy::Strict
    };
    let connecting = Fleet {
        name: env.name.clone(),
        hosts: Vec::new(),
        rollout: Rollout::All,
        forks,
    };
    let specs = env.hosts.clone();
    let connected = connecting.run_each(&specs, |spec| hoist_deploy::connect(spec, policy));
    let mut hosts = Vec::new();
    let mut unreachable = Vec::new();
    for (spec, transport) in specs.into_iter().zip(connected) {
        match transport {
            Ok(transport) => hosts.push(Host {
                name: spec.name.clone(),
                transport,
                layout: Layout::with_root(&config.release, spec.root.clone()),
                python: spec.python.clone(),
                vars: spec.vars.clone(),
            }),
            Err(e) => unreachable.push(CommandError::from(e)),
        }
    }
    if !unreachable.is_empty() {
        let kind = if unreachable
            .iter()
            .all(|e| e.kind == ErrorKind::BeforeSwitch)
        {
            ErrorKind::BeforeSwitch
        } else {
            ErrorKind::Internal
        };
        let mut message =
            "nothing was changed on any host: every host must be reachable before hoist acts"
                .to_string();
        for e in &unreachable {
            message.push('\n');
            message.push_str(&e.message);
        }
        return Err(CommandError::new(kind, message)
            .hint("fix the connection, or leave the host out with --hosts/--group"));
    }
    Ok(Fleet {
        name: env.name,
        hosts,
        rollout,
        forks,
    })
}

/// Parses a `--lock-wait` value, falling back to the config's default.
pub fn lock_wait(flag: Option<&str>, config: &Config) -> Result<std::time::Duration, CommandError> {
    match flag {
        None => Ok(config.release.lock_wait),
        Some(text) => hoist_config::parse_duration(text)
            .map_err(|e| CommandError::config(format!("--lock-wait \"{text}\": {e}"))),
    }
}

/// The command line as typed, for the lock's owner record.
pub fn command_line() -> String {
    let mut args = std::env::args();
    let _ = args.next();
    std::iter::once("hoist".to_string())
        .chain(args)
        .collect::<Vec<_>>()
        .join(" ")
}
