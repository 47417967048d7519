//! `hoist check`.

use std::path::Path;

use hoist_deploy::{CheckItem, CheckStatus};

use crate::cli::HostsOutputArgs;
use crate::command_error::{CommandError, ErrorKind};
use crate::commands::{fleet, load_config};
use crate::printer::{tables, Printer};

/// A failed check exits 8 (README: "a check FAILED"), apart from a deploy that failed before
/// its switch (3): nothing was attempted.
pub fn run(
    args: &HostsOutputArgs,
    config: Option<&Path>,
    printer: Printer,
) -> Result<(), CommandError> {
    let printer = printer.with_json(args.json);
    let config = load_config(config)?;
    let fleet = fleet(&config, &args.target)?;
    let mut items = placeholder_items(&config);
    items.extend(
        fleet
            .each(|_, host| hoist_deploy::check(&config, host))
            .into_iter()
            .flatten(),
    );
    tables::check(printer, &config, &items);
    if items.iter().any(|i| i.status == CheckStatus::Failed) {
        return Err(CommandError::reported(ErrorKind::CheckFailed));
    }
    Ok(())
}

/// A warning for each guess `hoist init` marked PLACEHOLDER that is still in hoist.toml.
fn placeholder_items(config: &hoist_config::Config) -> Vec<CheckItem> {
    let text = std::fs::read_to_string(&config.path).unwrap_or_default();
    hoist_config::placeholders(&text)
        .into_iter()
        .map(|p| CheckItem {
            host: "config".into(),
            what: "placeholder".into(),
            status: CheckStatus::Warning,
            detail: format!(
                "{}:{}: {} is a guess of `hoist init`: {}",
                config.path.display(),
                p.line,
                p.setting,
                p.advice
            ),
            hint: Some("check the value, then delete its `# PLACEHOLDER:` comment".into()),
        })
        .collect()
}
