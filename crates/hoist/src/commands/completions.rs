//! `hoist completions <shell>` and `hoist man`: generated from the clap definitions, so they
//! never disagree with what hoist accepts.

use std::io::Write;

use clap::CommandFactory;

use crate::cli::Cli;
use crate::{exit, printer};

pub fn completions(shell: clap_complete::Shell) -> i32 {
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "hoist", &mut script);
    write_stdout(&script, "completion script")
}

pub fn man() -> i32 {
    let mut page = Vec::new();
    if let Err(e) = clap_mangen::Man::new(Cli::command()).render(&mut page) {
        printer::error(&format!("cannot render the manual page: {e}"), &[]);
        return exit::INTERNAL;
    }
    write_stdout(&page, "manual page")
}

/// Writes to stdout; a closed pipe (`| head`) is not an error.
fn write_stdout(bytes: &[u8], what: &str) -> i32 {
    let mut out = std::io::stdout().lock();
    match out.write_all(bytes).and_then(|()| out.flush()) {
        Ok(()) => exit::OK,
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => exit::OK,
        Err(e) => {
            printer::error(&format!("cannot write the {what}: {e}"), &[]);
            exit::INTERNAL
        }
    }
}
