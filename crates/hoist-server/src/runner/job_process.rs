//! A run's pipeline in a child process, as the `[runner] user`: both ends of it.
//!
//! The server spawns `hoist serve job` (hidden) as that user, in its own process group, with
//! the run's [`JobSpec`] as the first line of its stdin. The child runs the pipeline engine —
//! so every file the engine writes and every process it starts (steps, services, `hoist
//! deploy`) is the user's — and prints each engine event as a JSON line on stdout, which the
//! server stores exactly as it stores an in-process run's. The server keeps the child's stdin
//! open: closing it (a cancel, a shutdown past its grace period, the server dying) cancels the
//! run, and the engine kills the steps and stops the services as `hoist ci run` does on Ctrl-C.

use std::io::{BufRead, Write};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use hoist_pipeline::event::Event;
use hoist_pipeline::{engine, RunOptions};
use tokio::io::AsyncBufReadExt;
use tokio::sync::mpsc;

use super::job_user::JobUser;

/// The hidden subcommand the server runs its jobs with: `hoist serve job`.
pub const SUBCOMMAND: [&str; 2] = ["serve", "job"];

/// Exit code of a child whose pipeline ran and failed.
const EXIT_FAILED: i32 = 1;
/// Exit code of a child whose pipeline could not start (the reason on stderr).
const EXIT_NOT_STARTED: i32 = 2;
/// How long a cancelled child may take to stop its steps and services before it is killed.
const STOP_GRACE: Duration = Duration::from_secs(30);

/// What a run's pipeline needs, for the engine in this process or in a child.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct JobSpec {
    /// The checkout (a git repository at `commit`).
    pub checkout: PathBuf,
    /// Its hoist.toml (inside the checkout).
    pub config: PathBuf,
    /// The commit.
    pub commit: String,
    /// The branch it runs as.
    pub branch: String,
    /// Records, logs and workspaces of the run.
    pub ci_dir: PathBuf,
    /// The CI cache store.
    pub cache_dir: PathBuf,
    /// Whether deploy steps run.
    pub deploy: bool,
}

impl JobSpec {
    /// The engine's options for this job.
    #[must_use]
    pub fn options(&self, cancel: Arc<AtomicBool>) -> RunOptions {
        let mut opts = RunOptions::new(&self.config);
        opts.project_dir.clone_from(&self.checkout);
        opts.revision = Some(self.commit.clone());
        opts.branch = Some(self.branch.clone());
        opts.ci_dir.clone_from(&self.ci_dir);
        opts.cache_dir.clone_from(&self.cache_dir);
        opts.deploy = self.deploy;
        opts.cancel = cancel;
        opts
    }
}

/// The engine's failure to start, as the run's log says it.
pub(crate) fn describe(error: &engine::RunError) -> String {
    let hint = error
        .hint()
        .map(|h| format!(" (hint: {h})"))
        .unwrap_or_default();
    format!("{error}{hint}")
}

/// The child's side (`hoist serve job`): reads the spec, runs the pipeline, prints its events;
/// returns the exit code (0 passed, 1 failed, 2 could not start).
#[must_use]
pub fn run_child() -> i32 {
    let stdin = std::io::stdin();
    let mut first = String::new();
    if stdin.lock().read_line(&mut first).is_err() {
        eprintln!("hoist serve job: cannot read the job from stdin");
        return EXIT_NOT_STARTED;
    }
    let spec: JobSpec = match serde_json::from_str(&first) {
        Ok(spec) => spec,
        Err(e) => {
            eprintln!("hoist serve job: the job on stdin is not a job ({e}); this command is for hoist serve's runners");
            return EXIT_NOT_STARTED;
        }
    };
    let cancel = Arc::new(AtomicBool::new(false));
    let on_eof = Arc::clone(&cancel);
    // The server closes our stdin to cancel, and so does its death.
    std::thread::spawn(move || {
        let mut sink = std::io::sink();
        let _ = std::io::copy(&mut std::io::stdin().lock(), &mut sink);
        on_eof.store(true, Ordering::SeqCst);
    });
    let pipeline = match hoist_config::pipeline::load(&spec.config) {
        Ok(pipeline) => pipeline,
        Err(e) => {
            let hint = e
                .hint
                .as_ref()
                .map(|h| format!(" (hint: {h})"))
                .unwrap_or_default();
            eprintln!("{e}{hint}");
            return EXIT_NOT_STARTED;
        }
    };
    let opts = spec.options(cancel);
    let print = |event: Event| {
        if let Ok(line) = serde_json::to_string(&event) {
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "{line}");
            let _ = out.flush();
        }
    };
    match engine::run(&pipeline, &opts, &print) {
        Ok(record) if record.passed => 0,
        Ok(_) => EXIT_FAILED,
        Err(e) => {
            eprintln!("{}", describe(&e));
            EXIT_NOT_STARTED
        }
    }
}

/// The server's side: starts the child as `user` and sends its events to `events`; the task
/// ends with `Ok(true)` when the pipeline passed, `Err` when it could not start. Setting
/// `cancel` cancels it.
///
/// # Errors
///
/// When the child cannot be started.
pub fn spawn(
    hoist_exe: &std::path::Path,
    spec: &JobSpec,
    user: &JobUser,
    cancel: Arc<AtomicBool>,
    events: mpsc::UnboundedSender<Event>,
) -> Result<tokio::task::JoinHandle<Result<bool, String>>, String> {
    let mut cmd = std::process::Command::new(hoist_exe);
    cmd.args(SUBCOMMAND).current_dir(&spec.checkout);
    user.apply(&mut cmd);
    let mut cmd = tokio::process::Command::from(cmd);
    cmd.stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    let mut child = cmd.spawn().map_err(|e| {
        format!(
            "cannot start {} as user {}: {e}",
            hoist_exe.display(),
            user.name
        )
    })?;
    let mut line = serde_json::to_string(spec).map_err(|e| e.to_string())?;
    line.push('\n');
    let mut stdin = child.stdin.take();
    let stdout = child.stdout.take();
    let stderr = child.stderr.take();
    Ok(tokio::spawn(async move {
        use tokio::io::AsyncWriteExt;
        if let Some(input) = stdin.as_mut() {
            input
                .write_all(line.as_bytes())
                .await
                .map_err(|e| format!("cannot hand the job to its process: {e}"))?;
        }
        let errors = tokio::spawn(async move {
            let mut text = String::new();
            if let Some(err) = stderr {
                let mut lines = tokio::io::BufReader::new(err).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    text.push_str(&line);
                    text.push('\n');
                }
            }
            text
        });
        let reader = tokio::spawn(async move {
            if let Some(out) = stdout {
                let mut lines = tokio::io::BufReader::new(out).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    let event = serde_json::from_str::<Event>(&line).unwrap_or(Event::Warning {
                        job: None,
                        message: line,
                    });
                    let _ = events.send(event);
                }
            }
        });
        let status = loop {
            tokio::select! {
                status = child.wait() => break status,
                () = tokio::time::sleep(Duration::from_millis(100)) => {
                    if cancel.load(Ordering::SeqCst) && stdin.is_some() {
                        // EOF on its stdin: the child cancels its run.
                        drop(stdin.take());
                        let deadline = tokio::time::sleep(STOP_GRACE);
                        tokio::pin!(deadline);
                        tokio::select! {
                            status = child.wait() => break status,
                            () = &mut deadline => {
                                if let Some(pid) = child.id().and_then(|p| i32::try_from(p).ok()).and_then(rustix::process::Pid::from_raw) {
                                    let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::KILL);
                                }
                                break child.wait().await;
                            }
                        }
                    }
                }
            }
        }
        .map_err(|e| format!("the job's process was lost: {e}"))?;
        let _ = reader.await;
        let errors = errors.await.unwrap_or_default();
        match status.code() {
            Some(0) => Ok(true),
            Some(EXIT_FAILED) => Ok(false),
            _ if errors.trim().is_empty() => Err(format!("the job's process ended: {status}")),
            _ => Err(errors.trim_end().to_string()),
        }
    }))
}
