//! `checkout`: a clean clone of the run's commit into the job's workspace.

use crate::engine::step::{StepOutcome, StepRun};
use std::fs;

pub(crate) fn run(step: &mut StepRun<'_, '_>) -> StepOutcome {
    let workspace = step.workspace().to_path_buf();
    // Restored caches may already be in the workspace: clear everything, then clone into it.
    if let Ok(entries) = fs::read_dir(&workspace) {
        for entry in entries.flatten() {
            let path = entry.path();
            let _ = if path.is_dir() && !path.is_symlink() {
                fs::remove_dir_all(&path)
            } else {
                fs::remove_file(&path)
            };
        }
    }
    let script = "git clone --quiet --shared --no-checkout \"$1\" . && git -c advice.detachedHead=false checkout --quiet --detach \"$2\" && git log -1 --format='checked out %H (%s)'";
    let ctx = step.job.ctx;
    let mut cmd = step.command("sh", &workspace, &[]);
    cmd.args(["-ec", script, "checkout"])
        .arg(&ctx.opts.project_dir)
        .arg(&ctx.commit);
    step.run_process(cmd, None)
}
