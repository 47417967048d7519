//! `hoist run`: a one-off command (a data fix, `flask shell` fed on stdin) in the release that
//! `current` names on a host, as a hook runs: inside the release, its `.venv` first on PATH,
//! the app's `[env]` exported and the `HOIST_*` variables set. Takes no lock and changes
//! nothing of hoist's.

use hoist_config::Config;
use hoist_transport::{Cmd, Output, Transport};

use crate::host::Host;
use crate::DeployError;

/// What one host's command did.
#[derive(Debug, Clone)]
pub struct RunOutput {
    /// The release it ran in.
    pub release: String,
    pub output: Output,
}

/// Runs `command` (a program and its arguments, never spliced into a shell string) in the live
/// release of `host`, with `stdin` as its standard input. A command that runs and fails is an
/// `Ok` with its status; an error means it could not run (nothing deployed, host unreachable).
pub fn run_in_current(
    config: &Config,
    host: &Host,
    command: &[String],
    stdin: Option<Vec<u8>>,
) -> Result<RunOutput, DeployError> {
    let Some((program, args)) = command.split_first() else {
        return Err(DeployError::config("no command to run").hint("hoist run -- flask routes"));
    };
    let layout = &host.layout;
    let target = host.transport().read_link(&layout.current())?;
    let Some(id) = target.as_deref().and_then(|t| layout.release_of_link(t)) else {
        return Err(DeployError::config(format!(
            "{}: nothing is deployed at {} yet, so there is no live release to run in",
            host.name,
            layout.root.display()
        ))
        .hint("deploy first: hoist deploy"));
    };
    let release_dir = layout.release(&id);
    let mut cmd = Cmd::new("bash")
        .interruptible()
        .args([
            "-c",
            r#"export PATH="$VIRTUAL_ENV/bin:$PATH"; exec "$@""#,
            "hoist-run",
        ])
        .arg(program.clone())
        .args(args.iter().cloned())
        .cwd(&release_dir)
        .env(
            "VIRTUAL_ENV",
            release_dir.join(".venv").display().to_string(),
        );
    if let Some(dirs) = hoist_pyenv::import_path(&release_dir, &config.app.python_path) {
        cmd = cmd.env("PYTHONPATH", dirs);
    }
    for (key, value) in crate::activate::restart_context(config, host, &id).env() {
        cmd = cmd.env(key, value);
    }
    if let Some(bytes) = stdin {
        cmd = cmd.stdin(bytes);
    }
    let output = crate::app_env::app_transport(config, host).exec(&cmd)?;
    Ok(RunOutput {
        release: id.to_string(),
        output,
    })
}
