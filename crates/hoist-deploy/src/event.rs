use serde::Serialize;

/// A step of a deploy or rollback, as shown to the user.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Step {
    Lock,
    Upload,
    Shared,
    Environment,
    ImportCheck,
    Hook,
    Record,
    Switch,
    Restart,
    Health,
    SwitchBack,
    Prune,
    Unlock,
}

impl Step {
    pub fn name(self) -> &'static str {
        match self {
            Step::Lock => "lock",
            Step::Upload => "upload",
            Step::Shared => "shared",
            Step::Environment => "environment",
            Step::ImportCheck => "import check",
            Step::Hook => "hook",
            Step::Record => "record",
            Step::Switch => "switch",
            Step::Restart => "restart",
            Step::Health => "health",
            Step::SwitchBack => "switch back",
            Step::Prune => "prune",
            Step::Unlock => "unlock",
        }
    }
}

/// How a step went.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StepStatus {
    Started,
    Done,
    Failed,
}

/// What the engine reports. Serialised one per line by `--json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// A step started, finished or failed; `detail` says what it did or why it failed.
    Step {
        host: String,
        step: Step,
        status: StepStatus,
        #[serde(skip_serializing_if = "Option::is_none")]
        detail: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        ms: Option<u64>,
    },
    /// A line of output from a tool (pip, a hook) or a progress note.
    Output {
        host: String,
        step: Step,
        line: String,
    },
    /// Something the user should know that did not stop the command.
    Warning { host: String, message: String },
    /// One action of `--plan`, not carried out.
    Plan {
        host: String,
        step: Step,
        action: String,
    },
}

/// Where events go. Engines call it; front ends render.
pub type EventSink<'a> = &'a (dyn Fn(Event) + Sync);

/// Emits one host's step events, with timings.
pub(crate) struct Stepper<'a> {
    pub host: &'a str,
    pub events: EventSink<'a>,
}

impl Stepper<'_> {
    pub fn start(&self, step: Step) {
        (self.events)(Event::Step {
            host: self.host.into(),
            step,
            status: StepStatus::Started,
            detail: None,
            ms: None,
        });
    }

    pub fn done(&self, step: Step, detail: Option<String>) {
        (self.events)(Event::Step {
            host: self.host.into(),
            step,
            status: StepStatus::Done,
            detail,
            ms: None,
        });
    }

    pub fn timed(&self, step: Step, since: std::time::Instant, detail: impl Into<String>) {
        (self.events)(Event::Step {
            host: self.host.into(),
            step,
            status: StepStatus::Done,
            detail: Some(detail.into()),
            ms: Some(since.elapsed().as_millis() as u64),
        });
    }

    pub fn fail(&self, step: Step, error: &dyn std::fmt::Display) {
        (self.events)(Event::Step {
            host: self.host.into(),
            step,
            status: StepStatus::Failed,
            detail: Some(error.to_string()),
            ms: None,
        });
    }

    pub fn output(&self, step: Step, text: &str) {
        for line in text.lines() {
            (self.events)(Event::Output {
                host: self.host.into(),
                step,
                line: line.to_string(),
            });
        }
    }

    /// One line of a running command's output, as it comes.
    pub fn line(&self, step: Step, line: &str) {
        (self.events)(Event::Output {
            host: self.host.into(),
            step,
            line: line.to_string(),
        });
    }

    pub fn warn(&self, message: String) {
        (self.events)(Event::Warning {
            host: self.host.into(),
            message,
        });
    }
}
