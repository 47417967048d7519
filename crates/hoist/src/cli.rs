//! What the user can type. Parsed here, validated into typed values by each command.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::commands::{cache::CacheCommand, ci::CiCommand, import::ImportCommand};
use crate::printer::Verbosity;

const EXIT_CODES: &str = "Exit codes:
  0  success
  1  internal error
  2  configuration or usage error (nothing changed)
  3  failed before any switch, or a host could not be reached (the live release still serves)
  4  failed after the switch and switched back to the previous release
  5  the lock is held by another deploy, or was taken by hand
  6  failed after the switch and left as it was (--no-rollback-on-failure)
  7  hoist ci run: a job failed, timed out or was cancelled
  8  hoist check: a check failed (nothing changed)";

const ABOUT: &str =
    "hoist: deploy a Python web app to its servers and back, atomically, over plain SSH";

/// What `hoist --help` opens with: what hoist is, in one paragraph.
const LONG_ABOUT: &str = "\
hoist: deploy a Python web app to its servers and back, atomically, over plain SSH

Each deploy ships the project as a new release beside the old ones, builds its virtualenv once \
per set of requirements, switches the `current` symlink in one step, restarts the app \
gracefully and keeps the release only if its health check passes, else switches back. hoist \
also rolls back in a second, deploys fleets (all at once, canary or rolling), and runs the CI \
pipeline of hoist.toml on this machine (`hoist ci run`). Everything is configured in \
hoist.toml: `hoist init` writes one.";

#[derive(Parser, Debug)]
#[command(
    name = "hoist",
    version = env!("HOIST_VERSION"),
    about = ABOUT,
    long_about = LONG_ABOUT,
    after_help = EXIT_CODES
)]
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

    /// Print only errors, the final result line and the data asked for (no progress, no
    /// warnings).
    #[arg(long, short = 'q', global = true, conflicts_with = "verbose")]
    pub quiet: bool,

    /// Print more: the output of every hook and of the installer as it comes (otherwise a
    /// failed step's error carries the end of it).
    #[arg(long, short = 'v', global = true)]
    pub verbose: bool,

    #[command(subcommand)]
    pub command: Command,
}

impl Cli {
    pub fn verbosity(&self) -> Verbosity {
        if self.quiet {
            Verbosity::Quiet
        } else if self.verbose {
            Verbosity::Verbose
        } else {
            Verbosity::Normal
        }
    }

    /// Whether the command was asked for `--json` (then its error is a JSON line too).
    pub fn json(&self) -> bool {
        match &self.command {
            Command::Deploy(args) => args.json,
            Command::Rollback(args) => args.json,
            Command::Check(args) | Command::Adopt(args) | Command::Status(args) => args.json,
            Command::Releases(args) => args.command.is_none() && args.list.json,
            Command::Ci(CiCommand::Run(args)) => args.json,
            _ => false,
        }
    }
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Write a commented hoist.toml for the project in the current directory, by detecting
    /// its requirements files, entry point and Procfile.
    Init(InitArgs),
    /// Validate hoist.toml and check that every target host can take a deploy (read-only).
    Check(HostsOutputArgs),
    /// Ship the project as a new release, switch to it atomically, restart, and verify it.
    #[command(after_help = EXIT_CODES)]
    Deploy(DeployArgs),
    /// Switch back to the previous good release (or --to a named one) and restart.
    #[command(after_help = EXIT_CODES)]
    Rollback(RollbackArgs),
    /// Adopt hosts deployed with a builds/<timestamp> + current layout (as common Ansible
    /// playbooks and ansistrano leave them, an env in each build): their builds become releases
    /// you can roll back to. Writes only hoist's journal.
    Adopt(HostsOutputArgs),
    /// List the releases: id, commit, age, who, state, which is live and which is the rollback
    /// target; for a fleet, one table with drift flagged. `mark-good ID` clears a bad mark.
    Releases(ReleasesArgs),
    /// Show the live release, the rollback target and the lock on every host.
    Status(HostsOutputArgs),
    /// Take or release the deploy lock by hand (for maintenance windows).
    Lock(LockArgs),
    /// Run the CI pipeline defined in hoist.toml.
    #[command(subcommand)]
    Ci(CiCommand),
    /// Run the server: webhooks, the run queue, runners, the API and the dashboard (see
    /// docs/server.md).
    Serve(crate::commands::serve::ServeArgs),
    /// Inspect and clean the CI dependency cache.
    #[command(subcommand)]
    Cache(CacheCommand),
    /// Convert another tool's configuration into hoist's.
    #[command(subcommand)]
    Import(ImportCommand),
    /// Show (and with --apply write) the server files for graceful restarts: app server
    /// config, hoist's loader, supervisor program or systemd unit, nginx server block.
    Setup(crate::commands::setup::SetupArgs),
    /// Run a one-off command in the live release, with its .venv and the app's [env]: on the
    /// environment's first host, or --all (`hoist run production -- flask routes`).
    Run(RunArgs),
    /// Show the recent log of each [[process]] (or of PROCESS): `supervisorctl tail` for a
    /// supervisor program, `journalctl` for a systemd unit.
    Logs(LogsArgs),
    /// Print a shell completion script: `hoist completions bash > /etc/bash_completion.d/hoist`,
    /// `hoist completions zsh > "${fpath[1]}/_hoist"`, `hoist completions fish >
    /// ~/.config/fish/completions/hoist.fish`.
    Completions(CompletionsArgs),
    /// Print hoist's manual page (roff): `hoist man > /usr/local/share/man/man1/hoist.1`.
    Man,
}

#[derive(Args, Debug)]
pub struct CompletionsArgs {
    /// The shell to complete for.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
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

/// Which hosts a command acts on.
#[derive(Args, Debug, Clone, Default)]
pub struct TargetArgs {
    /// The environment of hoist.toml to act on (e.g. production). Optional when there is only
    /// one; without any [hosts], the local machine.
    #[arg(value_name = "ENV")]
    pub environment: Option<String>,
    /// Only these hosts of the environment (comma-separated or repeated).
    #[arg(long, value_name = "HOST", value_delimiter = ',')]
    pub hosts: Vec<String>,
    /// Only the hosts of this group of the environment.
    #[arg(long, value_name = "GROUP")]
    pub group: Option<String>,
    /// How many hosts to work on at once (default: ssh.forks, 10).
    #[arg(long, value_name = "N")]
    pub forks: Option<usize>,
    /// Trust a host key seen for the first time and record it (a changed key is always refused).
    #[arg(long)]
    pub accept_new_host_keys: bool,
}

#[derive(Args, Debug)]
pub struct LogsArgs {
    #[command(flatten)]
    pub target: TargetArgs,
    /// The [[process]] whose log to show (default: every process).
    #[arg(value_name = "PROCESS")]
    pub process: Option<String>,
    /// How many of the last lines to show, per log.
    #[arg(short = 'n', long, default_value_t = 100)]
    pub lines: usize,
}

#[derive(Args, Debug)]
pub struct RunArgs {
    #[command(flatten)]
    pub target: TargetArgs,
    /// Run on every host of the environment, not only on its first.
    #[arg(long)]
    pub all: bool,
    /// The command and its arguments, after `--`.
    #[arg(last = true, required = true, value_name = "COMMAND")]
    pub command: Vec<String>,
}

#[derive(Args, Debug)]
pub struct HostsOutputArgs {
    #[command(flatten)]
    pub target: TargetArgs,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
#[command(args_conflicts_with_subcommands = true)]
pub struct ReleasesArgs {
    #[command(subcommand)]
    pub command: Option<ReleasesCommand>,
    #[command(flatten)]
    pub list: HostsOutputArgs,
    /// Show the journal instead: every deploy, rollback and failure (with its step and
    /// reason), adoption, prune and mark, oldest first, with who and how long it took.
    #[arg(long)]
    pub history: bool,
}

#[derive(Subcommand, Debug)]
pub enum ReleasesCommand {
    /// Clear the bad mark of a release (rolled away from, or unhealthy when rolled back to): it
    /// is a rollback target again and pruning keeps it as a good one. Writes `marked_good` to
    /// the journal of every host where it is bad.
    MarkGood(MarkGoodArgs),
}

#[derive(Args, Debug)]
pub struct MarkGoodArgs {
    /// The release, as `hoist releases` lists it.
    #[arg(value_name = "ID")]
    pub id: String,
    #[command(flatten)]
    pub target: TargetArgs,
    /// Wait this long for another deploy's lock, e.g. 30s or 5m.
    #[arg(long, value_name = "DURATION")]
    pub lock_wait: Option<String>,
}

#[derive(Args, Debug)]
pub struct LockArgs {
    #[command(subcommand)]
    pub command: LockCommand,
    #[command(flatten)]
    pub target: TargetArgs,
}

#[derive(Args, Debug)]
pub struct DeployArgs {
    #[command(flatten)]
    pub target: TargetArgs,
    /// When a switch, restart or health check fails after some hosts switched, leave them as
    /// they are (and report the drift) instead of switching them back.
    #[arg(long)]
    pub no_rollback_on_failure: bool,
    /// Print every action the deploy would take, and take none.
    #[arg(long)]
    pub plan: bool,
    /// Print one JSON event per line on stdout instead of progress on stderr.
    #[arg(long)]
    pub json: bool,
    /// Wait this long for another deploy's lock, e.g. 30s or 5m (default: $HOIST_LOCK_WAIT, else
    /// release.lock_wait).
    #[arg(long, value_name = "DURATION", env = "HOIST_LOCK_WAIT")]
    pub lock_wait: Option<String>,
    /// Ship this commit's tree (a sha, branch or tag) instead of the working directory.
    #[arg(long = "ref", value_name = "COMMIT")]
    pub git_ref: Option<String>,
}

#[derive(Args, Debug)]
pub struct RollbackArgs {
    #[command(flatten)]
    pub target: TargetArgs,
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
