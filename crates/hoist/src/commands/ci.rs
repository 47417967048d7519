//! Placeholder until the pipeline work lands.

/// Subcommands (placeholder).
#[derive(clap::Subcommand, Debug)]
pub enum CiCommand {}

pub fn run(cmd: CiCommand, _config: Option<&std::path::Path>) -> i32 {
    match cmd {}
}
