//! Placeholder until the pipeline work lands.

/// Subcommands (placeholder).
#[derive(clap::Subcommand, Debug)]
pub enum ImportCommand {}

pub fn run(cmd: ImportCommand, _config: Option<&std::path::Path>) -> i32 {
    match cmd {}
}
