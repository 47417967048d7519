//! `hoist init`.

use std::path::Path;

use crate::cli::InitArgs;
use crate::command_error::CommandError;
use crate::printer::Printer;

pub fn run(args: &InitArgs, config: Option<&Path>, printer: Printer) -> Result<(), CommandError> {
    let dir = std::env::current_dir()
        .map_err(|e| CommandError::internal(format!("cannot read the current directory: {e}")))?;
    let target = config.map_or_else(|| dir.join("hoist.toml"), Path::to_path_buf);
    if target.exists() && !args.force {
        return Err(
            CommandError::config(format!("{} already exists", target.display()))
                .hint("pass --force to overwrite it"),
        );
    }
    let plan = hoist_config::init_plan(&dir, args.root.as_deref())?;
    for line in &plan.detected {
        printer.info(format!("detected  {line}"));
    }
    std::fs::write(&target, &plan.text)
        .map_err(|e| CommandError::internal(format!("cannot write {}: {e}", target.display())))?;
    printer.data(format!("wrote {}", target.display()));
    printer.info("next: review it, then `hoist check` and `hoist deploy --plan`");
    Ok(())
}
