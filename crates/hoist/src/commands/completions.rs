//! `hoist completions <shell>` and `hoist man`: generated from the clap definitions, so they
//! never disagree with what hoist accepts.

use std::io::Write;

use clap::CommandFactory;

use crate::cli::Cli;
use crate::command_error::CommandError;

pub fn completions(shell: clap_complete::Shell) -> Result<(), CommandError> {
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "hoist", &mut script);
    write_stdout(&script, "completion script")
}

pub fn man() -> Result<(), CommandError> {
    let mut page = Vec::new();
    clap_mangen::Man::new(Cli::command())
        .render(&mut page)
        .map_err(|e| CommandError::internal(format!("cannot render the manual page: {e}")))?;
    write_stdout(&page, "manual page")
}

/// Writes to stdout; a closed pipe (`| head`) is not an error.
fn write_stdout(bytes: &[u8], what: &str) -> Result<(), CommandError> {
    let mut out = std::io::stdout().lock();
    match out.write_all(bytes).and_then(|()| out.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(CommandError::internal(
            format!("cannot write the {what}: {e}"),
        )),
        _ => Ok(()),
    }
}
