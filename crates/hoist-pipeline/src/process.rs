//! Running a step's process: its own process group, line-by-line output with timestamps, and
//! the no-output timeout, the job's deadline and cancellation enforced while it runs.

use crate::event::Stream;
use std::io::{BufRead, BufReader, Read};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// How a supervised process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProcessEnd {
    /// It exited with this code (128 + signal when killed by a signal).
    Exited(i32),
    /// It printed nothing for the step's `no_output_timeout` and was killed.
    NoOutput,
    /// The job's deadline passed and it was killed.
    Deadline,
    /// The run was cancelled and it was killed.
    Cancelled,
}

/// Limits on a supervised process.
pub struct Limits<'a> {
    /// Killed after this long without a line of output.
    pub no_output: Option<Duration>,
    /// Killed at this instant.
    pub deadline: Option<Instant>,
    /// Killed once this returns true.
    pub cancelled: &'a (dyn Fn() -> bool + Sync),
}

enum Msg {
    Line(Stream, String),
    Eof,
}

fn reader(stream: Stream, pipe: impl Read + Send + 'static, tx: mpsc::Sender<Msg>) {
    std::thread::spawn(move || {
        let mut pipe = BufReader::new(pipe);
        let mut buf = Vec::new();
        loop {
            buf.clear();
            match pipe.read_until(b'\n', &mut buf) {
                Ok(0) | Err(_) => break,
                Ok(_) => {
                    while buf.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
                        buf.pop();
                    }
                    if tx
                        .send(Msg::Line(
                            stream,
                            String::from_utf8_lossy(&buf).into_owned(),
                        ))
                        .is_err()
                    {
                        break;
                    }
                }
            }
        }
        let _ = tx.send(Msg::Eof);
    });
}

fn kill_group(pid: u32) {
    if let Some(pid) = rustix::process::Pid::from_raw(pid as i32) {
        let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::KILL);
    }
}

/// Runs `cmd` in a new process group, calling `on_line` for each line of stdout and stderr.
///
/// When the process exits, whatever it left running in its group is killed (so that a
/// forgotten background process cannot hold the step open).
pub fn supervise(
    mut cmd: Command,
    limits: &Limits<'_>,
    on_line: &mut dyn FnMut(Stream, String),
) -> std::io::Result<ProcessEnd> {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    let mut child = cmd.spawn()?;
    let pid = child.id();
    let (tx, rx) = mpsc::channel();
    if let Some(out) = child.stdout.take() {
        reader(Stream::Out, out, tx.clone());
    }
    if let Some(err) = child.stderr.take() {
        reader(Stream::Err, err, tx);
    }
    let mut open = 2;
    let mut last_output = Instant::now();
    let mut stopped: Option<ProcessEnd> = None;
    let mut exited = None;
    loop {
        let mut wait = Duration::from_millis(50);
        if let Some(limit) = limits.no_output {
            wait = wait.min(limit.saturating_sub(last_output.elapsed()));
        }
        if let Some(deadline) = limits.deadline {
            wait = wait.min(deadline.saturating_duration_since(Instant::now()));
        }
        match rx.recv_timeout(wait) {
            Ok(Msg::Line(stream, line)) => {
                last_output = Instant::now();
                on_line(stream, line);
                continue;
            }
            Ok(Msg::Eof) => open -= 1,
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => open = 0,
        }
        if open == 0 {
            break;
        }
        if stopped.is_some() {
            continue;
        }
        if exited.is_none() {
            if let Some(status) = child.try_wait()? {
                exited = Some(status);
                kill_group(pid);
                continue;
            }
        }
        let reason = if (limits.cancelled)() {
            Some(ProcessEnd::Cancelled)
        } else if limits.deadline.is_some_and(|d| Instant::now() >= d) {
            Some(ProcessEnd::Deadline)
        } else if limits.no_output.is_some_and(|l| last_output.elapsed() >= l) {
            Some(ProcessEnd::NoOutput)
        } else {
            None
        };
        if let Some(reason) = reason {
            kill_group(pid);
            stopped = Some(reason);
        }
    }
    let status = match exited {
        Some(s) => s,
        None => child.wait()?,
    };
    kill_group(pid);
    Ok(stopped.unwrap_or_else(|| {
        ProcessEnd::Exited(
            status
                .code()
                .unwrap_or_else(|| 128 + status.signal().unwrap_or(0)),
        )
    }))
}
