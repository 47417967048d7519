//! `run`: the step's script, written to the run's directory and run by its shell.

use crate::engine::step::{StepOutcome, StepRun};
use hoist_config::pipeline::RunStep;
use std::fs;

/// `exact_hit`: the job's last `restore_cache` restored its first key exactly.
pub(crate) fn run(step: &mut StepRun<'_, '_>, script: &RunStep, exact_hit: bool) -> StepOutcome {
    if script.unless_cache_hit && exact_hit {
        step.info("skipped: the cache was restored from its exact key (unless_cache_hit)");
        return StepOutcome::skipped();
    }
    let job = step.job;
    let scripts = job.ctx.run_dir.join("scripts");
    let path = scripts.join(format!("{}-{:02}.sh", job.job.name, step.number));
    if let Err(e) = fs::create_dir_all(&scripts).and_then(|()| fs::write(&path, &script.command)) {
        return step.fail(format!(
            "cannot write the step's script {}: {e}",
            path.display()
        ));
    }
    let cwd = script
        .working_directory
        .as_ref()
        .map_or_else(|| job.workspace.clone(), |d| job.workspace.join(d));
    let Some((program, args)) = script.shell.split_first() else {
        return step.fail("the step's shell is empty");
    };
    let mut cmd = step.command(program, &cwd, &script.environment);
    cmd.args(args).arg(&path);
    step.run_process(cmd, Some(script.no_output_timeout))
}
