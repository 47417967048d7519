//! `hoist deploy`.

use std::path::Path;

use hoist_deploy::{DeployOptions, Event};

use crate::cli::DeployArgs;
use crate::command_error::CommandError;
use crate::commands::{command_line, fleet, load_config, lock_wait};
use crate::printer::{self, Printer};

pub fn run(args: &DeployArgs, config: Option<&Path>, printer: Printer) -> Result<(), CommandError> {
    let printer = printer.with_json(args.json);
    let config = load_config(config)?;
    let lock_wait = lock_wait(args.lock_wait.as_deref(), &config)?;
    // The tree to ship is listed (git, the file walk) while the hosts are connected to.
    let (source, fleet) = std::thread::scope(|scope| {
        let source = scope.spawn(|| {
            hoist_deploy::SourceTree::collect(
                &config.app.source,
                &config.app.exclude,
                args.git_ref.as_deref(),
            )
        });
        let fleet = fleet(&config, &args.target);
        let source = source
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        (source, fleet)
    });
    let fleet = fleet?;
    let opts = DeployOptions {
        who: hoist_deploy::who(),
        git_ref: args.git_ref.clone(),
        lock_wait,
        command: command_line(),
        rollback_on_failure: !args.no_rollback_on_failure,
        source: Some(std::sync::Arc::new(source?)),
    };
    let sink = printer::deploy::events(printer, fleet.hosts.len());
    if args.plan {
        let plan = hoist_deploy::plan_deploy(&config, &fleet, &opts)?;
        if !printer.json {
            let hosts: Vec<&str> = plan.hosts.iter().map(|h| h.host.as_str()).collect();
            printer.data(format!(
                "plan: deploy {} as release {} to {} (nothing below has been done)",
                config.app.name,
                plan.release,
                hosts.join(", ")
            ));
        }
        for host in plan.hosts {
            for (step, action) in host.actions {
                sink(Event::Plan {
                    host: host.host.clone(),
                    step,
                    action,
                });
            }
        }
        return Ok(());
    }
    let report = hoist_deploy::deploy(&config, &fleet, &opts, &sink)?;
    printer::deploy::deployed(printer, &report, &fleet.name);
    Ok(())
}
