//! `deploy`: `hoist deploy [environment] --ref <commit> --json`. The step reads the deploy's
//! outcome from its last JSON event, not from its exit code: hoist deploy says itself what
//! happened and where each host stands.

use crate::engine::step::{StepOutcome, StepRun};
use crate::event::Stream;
use crate::process::ProcessEnd;
use crate::record::StepStatus;

/// The last event of `hoist deploy --json`: what happened, in its own words.
#[derive(serde::Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
enum DeployOutcome {
    /// Every host serves the new release.
    Deployed {
        release: String,
        hosts: Vec<serde_json::Value>,
    },
    /// The deploy failed; the message says where each host stands.
    Failed {
        message: String,
        #[serde(default)]
        hints: Vec<String>,
    },
}

pub(crate) fn run(step: &mut StepRun<'_, '_>, environment: Option<&str>) -> StepOutcome {
    let ctx = step.job.ctx;
    if !ctx.opts.deploy {
        step.info("skipped: deploy steps are off for this run (--no-deploy)");
        return StepOutcome::skipped();
    }
    let mut cmd = step.command(&ctx.opts.hoist_exe, &ctx.opts.project_dir, &[]);
    cmd.arg("--config").arg(&ctx.opts.config_path).arg("deploy");
    if let Some(environment) = environment {
        cmd.arg(environment);
    }
    cmd.arg("--ref").arg(&ctx.commit).arg("--json");
    let mut outcome: Option<DeployOutcome> = None;
    let end = step.process(cmd, None, &mut |stream, line| {
        if stream == Stream::Out {
            if let Ok(event) = serde_json::from_str::<DeployOutcome>(line) {
                outcome = Some(event);
            }
        }
    });
    let reported = match outcome {
        Some(DeployOutcome::Deployed { release, hosts }) => {
            step.info(format!(
                "deployed release {release} to {} host(s)",
                hosts.len()
            ));
            Some(StepStatus::Passed)
        }
        Some(DeployOutcome::Failed { message, hints }) => {
            step.info(format!("hoist deploy failed: {message}"));
            for hint in hints {
                step.info(format!("hint: {hint}"));
            }
            Some(StepStatus::Failed)
        }
        None => {
            if matches!(end, Some(ProcessEnd::Exited(_))) {
                step.info("hoist deploy reported no outcome; its output above says why");
            }
            None
        }
    };
    let mut result = step.finish(end, None);
    // The deploy's own report decides once its process exited; a deploy that said nothing, or
    // was killed (timeout, cancel), is judged by how its process ended.
    if let (Some(status), Some(ProcessEnd::Exited(_))) = (reported, end) {
        result.status = status;
    }
    result
}
