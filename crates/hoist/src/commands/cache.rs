//! Placeholder until the pipeline work lands.

/// Subcommands (placeholder).
#[derive(clap::Subcommand, Debug)]
pub enum CacheCommand {}

pub fn run(cmd: CacheCommand, _config: Option<&std::path::Path>) -> i32 {
    match cmd {}
}
