//! One file per command. Each returns the process's exit code.

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
pub mod releases;
pub mod rollback;
pub mod serve;
pub mod setup;
pub mod status;

use std::path::{Path, PathBuf};

use hoist_config::Config;
use hoist_deploy::{Activation, Fleet, Host, Layout};
use hoist_transport::HostKeyPolicy;

use crate::cli::{Cli, Command, TargetArgs};
use crate::{exit, printer};

pub fn dispatch(cli: Cli) -> i32 {
    let config = cli.config.as_deref();
    match cli.command {
        Command::Init(args) => init::run(&args, config),
        Command::Adopt(args) => adopt::run(&args, config),
        Command::Check(args) => check::run(&args, config),
        Command::Deploy(args) => deploy::run(&args, config),
        Command::Rollback(args) => rollback::run(&args, config),
        Command::Releases(args) => releases::run(&args, config),
        Command::Status(args) => status::run(&args, config),
        Command::Lock(args) => lock::run(args, config),
        Command::Ci(cmd) => ci::run(cmd, config),
        Command::Serve(args) => serve::run(args),
        Command::Cache(cmd) => cache::run(cmd, config),
        Command::Import(cmd) => import::run(cmd, config),
        Command::Setup(args) => setup::run(&args, config),
        Command::Completions(args) => completions::completions(args.shell),
        Command::Man => completions::man(),
    }
}

/// Finds and loads hoist.toml, printing the error (file:line, hint) when it is wrong.
pub fn load_config(explicit: Option<&Path>) -> Result<Config, i32> {
    let path: PathBuf = match explicit {
        Some(p) => p.to_path_buf(),
        None => {
            let cwd = std::env::current_dir().map_err(|e| {
                printer::error(&format!("cannot read the current directory: {e}"), &[]);
                exit::INTERNAL
            })?;
            match hoist_config::find(&cwd) {
                Some(p) => p,
                None => {
                    printer::error(
                        &format!("no hoist.toml in {} or any parent directory", cwd.display()),
                        &["run `hoist init` to write one, or pass --config <path>".into()],
                    );
                    return Err(exit::CONFIG);
                }
            }
        }
    };
    hoist_config::load(&path).map_err(|e| {
        let hints: Vec<String> = e.hint.iter().cloned().collect();
        printer::error(&e.to_string(), &hints);
        exit::CONFIG
    })
}

/// The hosts to act on: the environment's, narrowed by `--hosts`/`--group`, each connected
/// (in parallel; an unreachable host is an error naming it, before anything is changed).
pub fn fleet(config: &Config, target: &TargetArgs) -> Result<Fleet, i32> {
    let env = config
        .environment(target.environment.as_deref())
        .map_err(|e| {
            let hints: Vec<String> = e.hint.iter().cloned().collect();
            printer::error(&e.to_string(), &hints);
            exit::CONFIG
        })?;
    let env = if target.hosts.is_empty() && target.group.is_none() {
        env
    } else {
        env.select(&target.hosts, target.group.as_deref())
            .map_err(|e| {
                printer::error(&e.to_string(), &[]);
                exit::CONFIG
            })?
    };
    let forks = target.forks.unwrap_or(env.forks).max(1);
    let activation = match env.activation {
        hoist_config::Activation::All => Activation::All,
        hoist_config::Activation::Canary => Activation::Canary,
        hoist_config::Activation::Rolling { batch, pause } => Activation::Rolling {
            batch: batch.size(env.hosts.len()),
            pause,
        },
    };
    let policy = if target.accept_new_host_keys {
        HostKeyPolicy::AcceptNew
    } else {
        HostKeyPolicy::Strict
    };
    let connecting = Fleet {
        name: env.name.clone(),
        hosts: Vec::new(),
        activation: Activation::All,
        forks,
    };
    let specs = env.hosts.clone();
    let connected = connecting.run_each(&specs, |spec| hoist_transport::connect(spec, policy));
    let mut hosts = Vec::new();
    let mut failed = false;
    for (spec, transport) in specs.into_iter().zip(connected) {
        match transport {
            Ok(transport) => hosts.push(Host {
                name: spec.name.clone(),
                transport,
                layout: Layout::with_root(&config.release, spec.root.clone()),
                python: spec.python.clone(),
                vars: spec.vars.clone(),
            }),
            Err(e) => {
                printer::error(&e.to_string(), &[]);
                failed = true;
            }
        }
    }
    if failed {
        printer::error(
            "nothing was changed on any host: every host must be reachable before hoist acts",
            &["fix the connection, or leave the host out with --hosts/--group".into()],
        );
        return Err(exit::BEFORE_SWITCH);
    }
    Ok(Fleet {
        name: env.name,
        hosts,
        activation,
        forks,
    })
}

/// Parses a `--lock-wait` value, falling back to the config's default.
pub fn lock_wait(flag: Option<&str>, config: &Config) -> Result<std::time::Duration, i32> {
    match flag {
        None => Ok(config.release.lock_wait),
        Some(text) => hoist_config::parse_duration(text).map_err(|e| {
            printer::error(&format!("--lock-wait {text:?}: {e}"), &[]);
            exit::CONFIG
        }),
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
