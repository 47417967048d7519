//! `artifacts`: a file or directory of the workspace kept with the run.

use crate::engine::step::{StepOutcome, StepRun};
use crate::record::ArtifactRecord;
use std::fs;
use std::path::Path;
use std::process::Command;

pub(crate) fn run(step: &mut StepRun<'_, '_>, path: &str, destination: &str) -> StepOutcome {
    let source = step.workspace().join(path);
    if !source.exists() {
        step.warn(format!(
            "no artifacts: {path} does not exist in the workspace"
        ));
        return StepOutcome::passed();
    }
    let stored = Path::new("artifacts")
        .join(&step.job.job.name)
        .join(destination.trim_start_matches('/'));
    let target = step.job.ctx.run_dir.join(&stored);
    let copied = target
        .parent()
        .map_or(Ok(()), fs::create_dir_all)
        .and_then(|()| {
            let out = Command::new("cp")
                .arg("-a")
                .arg(&source)
                .arg(&target)
                .output()?;
            if out.status.success() {
                Ok(())
            } else {
                Err(std::io::Error::other(
                    String::from_utf8_lossy(&out.stderr).trim().to_string(),
                ))
            }
        });
    if let Err(e) = copied {
        return step.fail(format!("cannot copy {path} to {}: {e}", target.display()));
    }
    let (files, bytes) = count_files(&target);
    step.info(format!(
        "stored {files} file(s), {bytes} bytes from {path} as {}",
        stored.display()
    ));
    let mut outcome = StepOutcome::passed();
    outcome.artifacts.push(ArtifactRecord {
        source: path.into(),
        stored: stored.display().to_string(),
        files,
        bytes,
    });
    outcome
}

/// Regular files under `path` (or `path` itself) and their total size.
fn count_files(path: &Path) -> (u64, u64) {
    let Ok(meta) = path.symlink_metadata() else {
        return (0, 0);
    };
    if meta.is_file() {
        return (1, meta.len());
    }
    let mut total = (0, 0);
    if meta.is_dir() {
        for entry in fs::read_dir(path).into_iter().flatten().flatten() {
            let (files, bytes) = count_files(&entry.path());
            total.0 += files;
            total.1 += bytes;
        }
    }
    total
}
