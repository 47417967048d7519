//! `hoist run [ENV] -- COMMAND...`: a one-off command in the live release (logic in
//! `hoist_deploy::run_in_current`).

use std::io::{IsTerminal, Read, Write};
use std::path::Path;

use crate::cli::RunArgs;
use crate::commands::{fleet, load_config};
use crate::{exit, printer};

pub fn run(args: &RunArgs, config: Option<&Path>) -> i32 {
    let config = match load_config(config) {
        Ok(c) => c,
        Err(code) => return code,
    };
    // Without --all (or --hosts/--group), the environment's first host only.
    let mut target = args.target.clone();
    if !args.all && target.hosts.is_empty() && target.group.is_none() {
        match config.environment(target.environment.as_deref()) {
            Ok(env) => target.hosts = env.hosts.iter().take(1).map(|h| h.name.clone()).collect(),
            Err(e) => {
                printer::error(&e.to_string(), &e.hint.iter().cloned().collect::<Vec<_>>());
                return exit::CONFIG;
            }
        }
    }
    let fleet = match fleet(&config, &target) {
        Ok(f) => f,
        Err(code) => return code,
    };
    // Piped input (`echo 'print(1)' | hoist run -- flask shell`) is passed on; a terminal is not.
    let stdin = if std::io::stdin().is_terminal() {
        None
    } else {
        let mut bytes = Vec::new();
        if let Err(e) = std::io::stdin().read_to_end(&mut bytes) {
            printer::error(&format!("reading standard input: {e}"), &[]);
            return exit::INTERNAL;
        }
        Some(bytes)
    };
    let many = fleet.hosts.len() > 1;
    let results = fleet
        .each(|_, host| hoist_deploy::run_in_current(&config, host, &args.command, stdin.clone()));
    let mut code = exit::OK;
    for (host, result) in fleet.hosts.iter().zip(results) {
        match result {
            Ok(run) => {
                let mut out = std::io::stdout().lock();
                let mut err = std::io::stderr().lock();
                if many {
                    for line in run.output.stdout_text().lines() {
                        let _ = writeln!(out, "[{}] {line}", host.name);
                    }
                    for line in run.output.stderr_text().lines() {
                        let _ = writeln!(err, "[{}] {line}", host.name);
                    }
                } else {
                    let _ = out.write_all(&run.output.stdout);
                    let _ = err.write_all(&run.output.stderr);
                }
                if !run.output.success() && code == exit::OK {
                    // The command's own status; a signal (-1) becomes 1.
                    code = run.output.status.clamp(1, 255);
                }
            }
            Err(e) => {
                printer::deploy_error(&e);
                if code == exit::OK {
                    code = exit::code(e.kind);
                }
            }
        }
    }
    code
}
