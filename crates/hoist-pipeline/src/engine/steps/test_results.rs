//! `test_results`: JUnit XML found at a file or under a directory, parsed into the job's
//! report and copied (secrets masked) into the run's directory.

use crate::engine::step::{StepOutcome, StepRun};
use crate::junit::{Outcome, TestReport};
use std::fs;
use std::path::{Path, PathBuf};

/// Adds what it finds to `report`, the job's report (created on the first find).
pub(crate) fn run(
    step: &mut StepRun<'_, '_>,
    path: &str,
    report: &mut Option<TestReport>,
) -> StepOutcome {
    let workspace = step.workspace().to_path_buf();
    let mut files = Vec::new();
    collect_xml(&workspace.join(path), &mut files);
    files.sort();
    if files.is_empty() {
        step.warn(format!("no JUnit XML found at {path}"));
        return StepOutcome::passed();
    }
    let ctx = step.job.ctx;
    let report = report.get_or_insert_with(TestReport::default);
    let mut errors = Vec::new();
    let dest = ctx.run_dir.join("tests").join(&step.job.job.name);
    for file in &files {
        let shown = file.strip_prefix(&workspace).unwrap_or(file).to_path_buf();
        match fs::read_to_string(file) {
            Ok(xml) => {
                if let Err(e) = report.add_xml(&xml, &shown) {
                    errors.push(e.to_string());
                }
                // The copy is a file the run keeps: secrets masked, as in the logs.
                let target = dest.join(&shown);
                let _ = target
                    .parent()
                    .map_or(Ok(()), fs::create_dir_all)
                    .and_then(|()| fs::write(&target, ctx.masker.mask(&xml)));
            }
            Err(e) => errors.push(format!("{}: {e}", shown.display())),
        }
    }
    step.info(format!(
        "{} test(s) from {} file(s): {} failed, {} errors, {} skipped",
        report.cases.len(),
        files.len(),
        report.count(&Outcome::Failed),
        report.count(&Outcome::Error),
        report.count(&Outcome::Skipped)
    ));
    for error in errors {
        step.warn(error);
    }
    StepOutcome::passed()
}

fn collect_xml(path: &Path, out: &mut Vec<PathBuf>) {
    if path.is_file() {
        if path.extension().is_some_and(|e| e == "xml") {
            out.push(path.to_path_buf());
        }
        return;
    }
    if let Ok(entries) = fs::read_dir(path) {
        for entry in entries.flatten() {
            collect_xml(&entry.path(), out);
        }
    }
}
