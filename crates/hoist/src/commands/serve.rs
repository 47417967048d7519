//! `hoist serve`: the server and its admin verbs. Thin: parse, call hoist_server, print.

use std::io::BufRead;
use std::path::{Path, PathBuf};

use hoist_server::admin::{self, Revision};
use hoist_server::{config, Role};

use crate::{exit, printer};

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

/// Runs `hoist serve ...`; returns the exit code.
pub fn run(args: ServeArgs) -> i32 {
    let path = args.server_config.as_path();
    let command = match args.command {
        Some(ServeCommand::Init { force }) => return init(path, force),
        other => other,
    };
    let config = match config::load(path) {
        Ok(config) => config,
        Err(e) => {
            printer::error(&e.to_string(), &e.hint.iter().cloned().collect::<Vec<_>>());
            return exit::CONFIG;
        }
    };
    let done = match command {
        None => hoist_server::serve_until_signal(config, |server| {
            eprintln!(
                "hoist serve: listening on http://{} (runs in {})",
                server.addr(),
                server.data_dir().display()
            );
            for run in &server.interrupted {
                eprintln!("run {run} was running when the server stopped: now interrupted");
            }
        })
        .map(|()| eprintln!("hoist serve: stopped")),
        Some(ServeCommand::User(UserCommand::Add { name, role })) => match password() {
            Ok(password) => admin::add_user(&config, &name, role, &password)
                .map(|user| eprintln!("added user {} ({})", user.name, user.role)),
            Err(message) => {
                printer::error(&message, &["pipe it: `printf '%s\\n' \"$PASSWORD\" | hoist serve user add NAME --role R`".into()]);
                return exit::CONFIG;
            }
        },
        Some(ServeCommand::Token(TokenCommand::Create { name, role })) => {
            admin::create_token(&config, &name, role).map(|token| {
                println!("{}", token.secret);
                eprintln!(
                    "token {} ({}): the secret above is shown once; send it as `Authorization: Bearer <secret>`",
                    token.token.name, token.token.role
                );
            })
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
            admin::queue_run(&config, &project, &revision).map(|id| {
                println!("{id}");
                eprintln!("queued run {id} of {project}");
            })
        }
        Some(ServeCommand::Cancel { run }) => admin::cancel_run(&config, run).map(|cancelled| {
            if cancelled {
                eprintln!("cancelled run {run}");
            } else {
                eprintln!("run {run} had already finished: nothing to cancel");
            }
        }),
        Some(ServeCommand::Init { .. }) => unreachable!("handled above"),
    };
    match done {
        Ok(()) => exit::OK,
        Err(e) => {
            printer::error(&e.to_string(), &e.hint().into_iter().collect::<Vec<_>>());
            match e {
                hoist_server::ServerError::Root
                | hoist_server::ServerError::Secret { .. }
                | hoist_server::ServerError::Store(
                    hoist_store::StoreError::Exists { .. }
                    | hoist_store::StoreError::Invalid { .. }
                    | hoist_store::StoreError::UnsupportedUrl { .. },
                ) => exit::CONFIG,
                _ => exit::INTERNAL,
            }
        }
    }
}

fn init(path: &Path, force: bool) -> i32 {
    if path.exists() && !force {
        printer::error(
            &format!("{} already exists", path.display()),
            &["pass --force to overwrite it".into()],
        );
        return exit::CONFIG;
    }
    match std::fs::write(path, config::TEMPLATE) {
        Ok(()) => {
            eprintln!(
                "wrote {}: add a [[project]], then run `hoist serve`",
                path.display()
            );
            exit::OK
        }
        Err(e) => {
            printer::error(&format!("cannot write {}: {e}", path.display()), &[]);
            exit::INTERNAL
        }
    }
}

/// The first line of stdin, without its newline.
fn password() -> Result<String, String> {
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .map_err(|e| format!("cannot read the password from stdin: {e}"))?;
    let password = line.trim_end_matches(['\n', '\r']).to_string();
    if password.is_empty() {
        return Err("no password on stdin".into());
    }
    Ok(password)
}
