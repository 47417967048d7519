//! `hoist serve`: the server and its admin verbs. Thin: parse, call hoist_server, print.

use std::io::BufRead;
use std::path::{Path, PathBuf};

use hoist_server::admin::{self, Revision};
use hoist_server::{config, Role};

use crate::command_error::CommandError;
use crate::printer::Printer;

/// `hoist serve [COMMAND]`
#[derive(clap::Args, Debug)]
pub struct ServeArgs {
    /// The server's config file.
    #[arg(
        long,
        global = true,
        env = "HOIST_SERVER_CONFIG",
        value_name = "PATH",
        default_value = config::FILE_NAME
    )]
    pub server_config: PathBuf,
    /// Run jobs only, serving no HTTP: a replica sharing the server's PostgreSQL store.
    #[arg(long)]
    pub runner_only: bool,
    #[command(subcommand)]
    pub command: Option<ServeCommand>,
}

/// What `hoist serve` does besides serving.
#[derive(clap::Subcommand, Debug)]
pub enum ServeCommand {
    /// Write a commented hoist-server.toml (asks nothing).
    Init {
        /// Overwrite an existing file.
        #[arg(long)]
        force: bool,
    },
    /// Manage the people who log in.
    #[command(subcommand)]
    User(UserCommand),
    /// Manage API tokens.
    #[command(subcommand)]
    Token(TokenCommand),
    /// Queue a run of a project: the head of a branch (default master), or a commit.
    Run {
        /// The project, as named in hoist-server.toml.
        project: String,
        /// Run the head of this branch.
        #[arg(long, value_name = "BRANCH", conflicts_with = "commit")]
        branch: Option<String>,
        /// Run this commit (as branch --as, default master).
        #[arg(long, value_name = "COMMIT")]
        commit: Option<String>,
        /// With --commit: the branch the run counts as (decides the jobs' filters).
        #[arg(long = "as", value_name = "BRANCH", requires = "commit")]
        as_branch: Option<String>,
    },
    /// Cancel a queued or running run.
    Cancel {
        /// The run's id.
        run: i64,
    },
    /// Run one job handed over on stdin (the server's runners start this as `[runner] user`).
    #[command(hide = true)]
    Job,
}

/// `hoist serve user ...`
#[derive(clap::Subcommand, Debug)]
pub enum UserCommand {
    /// Add a user; the password is read from the first line of stdin.
    Add {
        /// The login name.
        name: String,
        /// viewer (reads), deployer (also triggers, cancels, deploys), admin (also users and tokens).
        #[arg(long)]
        role: Role,
    },
}

/// `hoist serve token ...`
#[derive(clap::Subcommand, Debug)]
pub enum TokenCommand {
    /// Create an API token and print its secret (shown once, never again).
    Create {
        /// The token's name (who uses it: `ci-bot`).
        name: String,
        /// viewer, deployer or admin.
        #[arg(long)]
        role: Role,
    },
}

/// Runs `hoist serve ...`.
pub fn run(args: ServeArgs, printer: Printer) -> Result<(), CommandError> {
    let path = args.server_config.as_path();
    let command = match args.command {
        Some(ServeCommand::Init { force }) => return init(path, force, printer),
        // A runner's child: it reads no config (the server's file may be closed to its user).
        Some(ServeCommand::Job) => {
            std::process::exit(hoist_server::runner::job_process::run_child())
        }
        other => other,
    };
    let config = config::load(path)?;
    match command {
        None => {
            let mode = if args.runner_only {
                hoist_server::Mode::RunnerOnly
            } else {
                hoist_server::Mode::Full
            };
            hoist_server::serve_until_signal(config, mode, |server| {
                match server.listening() {
                    Some(addr) => printer.outcome(format!(
                        "hoist serve: listening on http://{addr} (runs in {})",
                        server.data_dir().display()
                    )),
                    None => printer.outcome(format!(
                        "hoist serve: running jobs only, serving no HTTP (runs in {})",
                        server.data_dir().display()
                    )),
                }
                for run in &server.interrupted {
                    printer.outcome(format!(
                        "run {run} was running when the server stopped: now interrupted"
                    ));
                }
            })
            .map(|()| printer.outcome("hoist serve: stopped"))?;
        }
        Some(ServeCommand::User(UserCommand::Add { name, role })) => {
            let password = password()?;
            let user = admin::add_user(&config, &name, role, &password)?;
            printer.outcome(format!("added user {} ({})", user.name, user.role));
        }
        Some(ServeCommand::Token(TokenCommand::Create { name, role })) => {
            let token = admin::create_token(&config, &name, role)?;
            printer.data(&token.secret);
            printer.outcome(format!(
                "token {} ({}): the secret above is shown once; send it as `Authorization: Bearer <secret>`",
                token.token.name, token.token.role
            ));
        }
        Some(ServeCommand::Run {
            project,
            branch,
            commit,
            as_branch,
        }) => {
            let revision = match commit {
                Some(commit) => Revision::Commit {
                    commit,
                    branch: as_branch.unwrap_or_else(|| "master".into()),
                },
                None => Revision::Branch(branch.unwrap_or_else(|| "master".into())),
            };
            let id = admin::queue_run(&config, &project, &revision)?;
            printer.data(id);
            printer.info(format!("queued run {id} of {project}"));
        }
        Some(ServeCommand::Cancel { run }) => {
            if admin::cancel_run(&config, run)? {
                printer.outcome(format!("cancelled run {run}"));
            } else {
                printer.outcome(format!("run {run} had already finished: nothing to cancel"));
            }
        }
        Some(ServeCommand::Init { .. } | ServeCommand::Job) => unreachable!("handled above"),
    }
    Ok(())
}

fn init(path: &Path, force: bool, printer: Printer) -> Result<(), CommandError> {
    if path.exists() && !force {
        return Err(
            CommandError::config(format!("{} already exists", path.display()))
                .hint("pass --force to overwrite it"),
        );
    }
    std::fs::write(path, config::TEMPLATE)
        .map_err(|e| CommandError::internal(format!("cannot write {}: {e}", path.display())))?;
    printer.outcome(format!(
        "wrote {}: add a [[project]], then run `hoist serve`",
        path.display()
    ));
    Ok(())
}

/// The first line of stdin, without its newline.
fn password() -> Result<String, CommandError> {
    let hint = "pipe it: `printf '%s\\n' \"$PASSWORD\" | hoist serve user add NAME --role R`";
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line).map_err(|e| {
        CommandError::config(format!("cannot read the password from stdin: {e}")).hint(hint)
    })?;
    let password = line.trim_end_matches(['\n', '\r']).to_string();
    if password.is_empty() {
        return Err(CommandError::config("no password on stdin").hint(hint));
    }
    Ok(password)
}
