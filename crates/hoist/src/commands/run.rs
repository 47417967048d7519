//! `hoist run [ENV] -- COMMAND...`: a one-off command in the live release (logic in
//! `hoist_deploy::run_in_current`).

use std::io::{IsTerminal, Read, Write};
use std::path::Path;

use crate::cli::RunArgs;
use crate::command_error::CommandError;
use crate::commands::{fleet, load_config};
use crate::printer::Printer;

/// Exits with the command's own status (the first host's that failed); a host where it could
/// not run is the error (the last one; earlier ones are shown as warnings).
pub fn run(args: &RunArgs, config: Option<&Path>, printer: Printer) -> Result<(), CommandError> {
    let config = load_config(config)?;
    // Without --all (or --hosts/--group), the environment's first host only.
    let mut target = args.target.clone();
    if !args.all && target.hosts.is_empty() && target.group.is_none() {
        let env = config.environment(target.environment.as_deref())?;
        target.hosts = env.hosts.iter().take(1).map(|h| h.name.clone()).collect();
    }
    let fleet = fleet(&config, &target)?;
    // Piped input (`echo 'print(1)' | hoist run -- flask shell`) is passed on; a terminal is not.
    let stdin = if std::io::stdin().is_terminal() {
        None
    } else {
        let mut bytes = Vec::new();
        std::io::stdin()
            .read_to_end(&mut bytes)
            .map_err(|e| CommandError::internal(format!("reading standard input: {e}")))?;
        Some(bytes)
    };
    let many = fleet.hosts.len() > 1;
    let results = fleet
        .each(|_, host| hoist_deploy::run_in_current(&config, host, &args.command, stdin.clone()));
    let mut status = None;
    let mut failed: Option<CommandError> = None;
    for (host, result) in fleet.hosts.iter().zip(results) {
        match result {
            Ok(run) => {
                // The command's own output, as it wrote it: not the printer's to reformat.
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
                if !run.output.success() && status.is_none() {
                    status = Some(run.output.status);
                }
            }
            Err(e) => {
                if let Some(earlier) = failed.replace(e.into()) {
                    printer.warn(&earlier.message);
                }
            }
        }
    }
    if let Some(e) = failed {
        return Err(e);
    }
    status.map_or(Ok(()), |s| Err(CommandError::command_status(s)))
}
