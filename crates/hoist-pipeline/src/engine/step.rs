//! What every step kind shares: [`StepRun`], the step while it runs (its notes, its log, its
//! processes), and [`StepOutcome`], what a step kind's function returns.

use super::job::{timeout_reason, JobRun};
use super::{cancelled, now_rfc3339};
use crate::cache_key::{self, KeyContext};
use crate::event::{Event, Stream};
use crate::mask::SecretMasker;
use crate::process::{supervise, Limits, ProcessEnd};
use crate::record::{ArtifactRecord, CacheRecord, Note, Severity, StepRecord, StepStatus};
use hoist_config::pipeline::Step;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// How a step ended and what it kept; its notes went out as events while it ran.
pub(crate) struct StepOutcome {
    pub status: StepStatus,
    pub exit_code: Option<i32>,
    pub cache: Option<CacheRecord>,
    pub artifacts: Vec<ArtifactRecord>,
}

impl StepOutcome {
    fn with_status(status: StepStatus) -> Self {
        Self {
            status,
            exit_code: None,
            cache: None,
            artifacts: Vec::new(),
        }
    }

    pub fn passed() -> Self {
        Self::with_status(StepStatus::Passed)
    }

    pub fn failed() -> Self {
        Self::with_status(StepStatus::Failed)
    }

    pub fn skipped() -> Self {
        Self::with_status(StepStatus::Skipped)
    }

    #[must_use]
    pub fn with_cache(mut self, cache: CacheRecord) -> Self {
        self.cache = Some(cache);
        self
    }
}

/// A step while it runs: the job it belongs to, its number, the notes it made and its log.
pub(crate) struct StepRun<'a, 'b> {
    pub job: &'a JobRun<'a, 'b>,
    pub number: usize,
    notes: Vec<Note>,
    log: Option<PathBuf>,
}

impl<'a, 'b> StepRun<'a, 'b> {
    pub fn new(job: &'a JobRun<'a, 'b>, number: usize) -> Self {
        Self {
            job,
            number,
            notes: Vec::new(),
            log: None,
        }
    }

    /// The job's workspace.
    pub fn workspace(&self) -> &Path {
        &self.job.workspace
    }

    /// Reports a note now (as an event) and keeps it for the step's record.
    fn note(&mut self, note: Note) {
        self.job.ctx.send(Event::StepNote {
            job: self.job.job.name.clone(),
            step: self.number,
            severity: note.severity,
            message: note.message.clone(),
        });
        self.notes.push(note);
    }

    /// Plain information: what the step did.
    pub fn info(&mut self, message: impl Into<String>) {
        self.note(Note::info(message));
    }

    /// Something to look at that does not fail the step.
    pub fn warn(&mut self, message: impl Into<String>) {
        self.note(Note::warning(message));
    }

    /// Notes why the step failed and returns the failed outcome.
    pub fn fail(&mut self, message: impl Into<String>) -> StepOutcome {
        self.info(message);
        StepOutcome::failed()
    }

    /// The step's record from its outcome, with the notes it made and its log.
    pub fn into_record(self, step: &Step, outcome: StepOutcome, millis: u64) -> StepRecord {
        StepRecord {
            name: step.name.clone(),
            kind: step.kind.key().into(),
            status: outcome.status,
            exit_code: outcome.exit_code,
            millis,
            notes: self.notes,
            log: self.log,
            cache: outcome.cache,
            artifacts: outcome.artifacts,
        }
    }

    /// A command in `cwd` with the job's environment and `extra`.
    pub fn command(
        &self,
        program: impl AsRef<std::ffi::OsStr>,
        cwd: &Path,
        extra: &[(String, String)],
    ) -> Command {
        let mut cmd = Command::new(program);
        cmd.current_dir(cwd);
        cmd.envs(self.job.env.iter().map(|(k, v)| (k, v)));
        cmd.envs(extra.iter().map(|(k, v)| (k, v)));
        cmd
    }

    /// Renders a cache key template with the job's environment; a key that would reveal a
    /// secret is refused.
    pub fn render_key(&self, template: &str) -> Result<String, cache_key::KeyError> {
        let ctx = self.job.ctx;
        let lookup = |name: &str| {
            self.job
                .env
                .iter()
                .rev()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
                .or_else(|| std::env::var(name).ok())
        };
        let epoch = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let key = cache_key::render(
            template,
            &KeyContext {
                branch: &ctx.branch,
                revision: &ctx.commit,
                epoch,
                base_dir: &self.job.workspace,
                env: &lookup,
            },
        )?;
        if ctx.masker.reveals(&key) {
            let name = ctx
                .secrets
                .iter()
                .find(|(_, value)| SecretMasker::new([value]).reveals(&key))
                .map_or_else(|| "?".to_string(), |(name, _)| name.clone());
            return Err(cache_key::KeyError::Secret {
                template: template.into(),
                name,
            });
        }
        Ok(key)
    }

    fn open_log(&mut self) -> Option<fs::File> {
        let dir = self.job.ctx.run_dir.join("logs").join(&self.job.job.name);
        let path = dir.join(format!("{:02}.log", self.number));
        let file = fs::create_dir_all(&dir)
            .and_then(|()| fs::File::create(&path))
            .ok();
        if file.is_some() {
            self.log = Some(path);
        }
        file
    }

    /// Runs a process as the step's body and returns its outcome.
    pub fn run_process(&mut self, cmd: Command, no_output: Option<Duration>) -> StepOutcome {
        let end = self.process(cmd, no_output, &mut |_, _| {});
        self.finish(end, no_output)
    }

    /// Runs a process, logging and emitting each line (masked) and showing it (unmasked) to
    /// `observe`; `None` when it could not start (noted).
    pub fn process(
        &mut self,
        cmd: Command,
        no_output: Option<Duration>,
        observe: &mut dyn FnMut(Stream, &str),
    ) -> Option<ProcessEnd> {
        let mut writer = self.open_log().map(std::io::BufWriter::new);
        let job = self.job;
        let ctx = job.ctx;
        let opts = ctx.opts;
        let is_cancelled = move || cancelled(opts);
        let limits = Limits {
            no_output,
            deadline: job.deadline,
            cancelled: &is_cancelled,
        };
        let number = self.number;
        let mut on_line = |stream: Stream, line: String| {
            observe(stream, &line);
            // The log file is written here, not through `send`: mask it on the way in.
            let line = ctx.masker.mask(&line);
            let time = now_rfc3339();
            if let Some(w) = writer.as_mut() {
                let tag = if stream == Stream::Out { "out" } else { "err" };
                let _ = writeln!(w, "{time} {tag} {line}");
            }
            ctx.send(Event::Output {
                job: job.job.name.clone(),
                step: number,
                time,
                stream,
                line,
            });
        };
        let result = supervise(cmd, &limits, &mut on_line);
        if let Some(w) = writer.as_mut() {
            let _ = w.flush();
        }
        match result {
            Ok(end) => Some(end),
            Err(e) => {
                self.info(format!("cannot start the step's process: {e}"));
                None
            }
        }
    }

    /// The outcome of a process's end (`None`: it did not start).
    pub fn finish(&mut self, end: Option<ProcessEnd>, no_output: Option<Duration>) -> StepOutcome {
        let Some(end) = end else {
            return StepOutcome::failed();
        };
        let (status, note) = match end {
            ProcessEnd::Exited(0) => (StepStatus::Passed, None),
            ProcessEnd::Exited(code) => {
                (StepStatus::Failed, Some(format!("exited with code {code}")))
            }
            ProcessEnd::NoOutput => (
                StepStatus::TimedOut,
                Some(format!(
                    "killed after {}s without output (no_output_timeout)",
                    no_output.map_or(0, |d| d.as_secs())
                )),
            ),
            ProcessEnd::Deadline => (StepStatus::TimedOut, Some(timeout_reason(self.job.job))),
            ProcessEnd::Cancelled => (
                StepStatus::Cancelled,
                Some("killed: the run was cancelled".into()),
            ),
        };
        if let Some(note) = note {
            self.note(Note {
                severity: Severity::Info,
                message: note,
            });
        }
        StepOutcome {
            exit_code: match end {
                ProcessEnd::Exited(code) => Some(code),
                _ => None,
            },
            ..StepOutcome::with_status(status)
        }
    }
}
