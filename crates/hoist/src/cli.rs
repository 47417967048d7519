//! What the user can type. Parsed here, validated into typed values by each command.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::commands::{cache::CacheCommand, ci::CiCommand, import::ImportCommand};

const EXIT_CODES: &str = "Exit codes:
  0  success
  1  internal error
  2  configuration or usage error (nothing changed)
  3  deploy failed before any switch (the live release still serves)
  4  failed after the switch and switched back to the previous release
  5  the lock is held by another deploy
  6  failed after the switch and left as it was (--no-rollback-on-failure)";

/// hoist: deploy a Python web app to its servers and back, atomically, over plain SSH.
#[derive(Parser, Debug)]
#[command(name = "hoist", version, about, long_about = None, after_help = EXIT_CODES)]
pub struct Cli {
    /// The hoist.toml to use (default: ./hoist.toml or the nearest one in a parent directory).
    #[arg(
        long,
        short = 'c',
        global = true,
        env = "HOIST_CONFIG",
        value_name = "PATH"
    )]
    pub config: Option<PathBuf>,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Write a commented hoist.toml for the project in the current directory, by detecting
    /// its requirements files, entry point and Procfile.
    Init(InitArgs),
    /// Validate hoist.toml and check that the target can take a deploy (read-only).
    Check(OutputArgs),
    /// Ship the project as a new release, switch to it atomically, restart, and verify it.
    #[command(after_help = EXIT_CODES)]
    Deploy(DeployArgs),
    /// Switch back to the previous good release (or --to a named one) and restart.
    #[command(after_help = EXIT_CODES)]
    Rollback(RollbackArgs),
    /// List the releases: id, commit, age, who, state, which is live and which is the rollback target.
    Releases(OutputArgs),
    /// Show the live release, the rollback target and the lock.
    Status(OutputArgs),
    /// Take or release the deploy lock by hand (for maintenance windows).
    #[command(subcommand)]
    Lock(LockCommand),
    /// Run the CI pipeline defined in hoist.toml.
    #[command(subcommand)]
    Ci(CiCommand),
    /// Inspect and clean the CI dependency cache.
    #[command(subcommand)]
    Cache(CacheCommand),
    /// Convert another tool's configuration into hoist's.
    #[command(subcommand)]
    Import(ImportCommand),
}

#[derive(Args, Debug)]
pub struct InitArgs {
    /// Deploy root to write into the file (default: /srv/<app name>).
    #[arg(long, value_name = "PATH")]
    pub root: Option<PathBuf>,
    /// Overwrite an existing hoist.toml.
    #[arg(long)]
    pub force: bool,
}

#[derive(Args, Debug)]
pub struct OutputArgs {
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct DeployArgs {
    /// Print every action the deploy would take, and take none.
    #[arg(long)]
    pub plan: bool,
    /// Print one JSON event per line on stdout instead of progress on stderr.
    #[arg(long)]
    pub json: bool,
    /// Wait this long for another deploy's lock, e.g. 30s or 5m (default: release.lock_wait).
    #[arg(long, value_name = "DURATION")]
    pub lock_wait: Option<String>,
    /// Ship this commit's tree (a sha, branch or tag) instead of the working directory.
    #[arg(long = "ref", value_name = "COMMIT")]
    pub git_ref: Option<String>,
}

#[derive(Args, Debug)]
pub struct RollbackArgs {
    /// Roll back to this release id instead of the previous good one.
    #[arg(long, value_name = "ID")]
    pub to: Option<String>,
    /// Print one JSON event per line on stdout.
    #[arg(long)]
    pub json: bool,
    /// Wait this long for another deploy's lock, e.g. 30s or 5m.
    #[arg(long, value_name = "DURATION")]
    pub lock_wait: Option<String>,
}

#[derive(Subcommand, Debug)]
pub enum LockCommand {
    /// Take the lock so that no deploy or rollback runs until it is released.
    Acquire {
        /// Why, shown to anyone who finds the lock held.
        #[arg(long, short = 'm')]
        message: Option<String>,
    },
    /// Release the lock. Refuses a lock held by a running deploy unless --force.
    Release {
        /// Release it even if it looks held by a running deploy.
        #[arg(long)]
        force: bool,
    },
}
