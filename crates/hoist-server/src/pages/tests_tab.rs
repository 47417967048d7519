//! `GET /runs/<id>/tests`: counts, failures first (message and traceback, "new failure" when the
//! branch's previous finished run passed that test), then the slowest tests.

use axum::extract::{Path, State};
use axum::response::Response;
use hoist_store::{RunId, RunQuery, Store, TestCase, TestOutcome};
use minijinja::{context, Value};

use super::run::find_run;
use super::{duration, render, runs::row, App, PageError, Reader};

/// How many of the slowest tests are listed.
const SLOWEST: usize = 10;

fn failed(case: &TestCase) -> bool {
    matches!(case.outcome, TestOutcome::Failed | TestOutcome::Error)
}

fn case(case: &TestCase, new_failure: bool) -> Value {
    let message = case.message.as_deref().unwrap_or("");
    let (first, rest) = message.split_once('\n').unwrap_or((message, ""));
    context! {
        classname => case.classname,
        name => case.name,
        outcome => case.outcome.as_str(),
        took => duration(Some(case.duration)),
        message => first,
        traceback => rest.trim_end(),
        new_failure => new_failure,
    }
}

/// The test cases of the branch's previous finished run, if any.
async fn previous_cases(
    store: &dyn Store,
    project: &str,
    branch: &str,
    id: RunId,
) -> Result<Vec<TestCase>, PageError> {
    let earlier = store
        .runs(&RunQuery {
            project: Some(project.into()),
            branch: Some(branch.into()),
            status: None,
            before: Some(id),
            limit: 20,
        })
        .await?;
    let Some(previous) = earlier.iter().find(|r| r.status.is_finished()) else {
        return Ok(Vec::new());
    };
    Ok(store
        .test_suites(previous.id)
        .await?
        .into_iter()
        .flat_map(|s| s.cases)
        .collect())
}

pub(crate) async fn page(
    State(app): App,
    reader: Reader,
    Path(id): Path<RunId>,
) -> Result<Response, PageError> {
    let run = find_run(app.store.as_ref(), id).await?;
    let suites = app.store.test_suites(id).await?;
    let summary = app.store.test_summary(id).await?;
    let mut cases: Vec<TestCase> = suites.into_iter().flat_map(|s| s.cases).collect();
    let previous = previous_cases(app.store.as_ref(), &run.project, &run.branch, id).await?;
    let passed_before = |c: &TestCase| {
        previous.iter().any(|p| {
            p.classname == c.classname && p.name == c.name && p.outcome == TestOutcome::Passed
        })
    };
    let failures: Vec<Value> = cases
        .iter()
        .filter(|c| failed(c))
        .map(|c| case(c, passed_before(c)))
        .collect();
    cases.sort_by_key(|c| std::cmp::Reverse(c.duration));
    let slowest: Vec<Value> = cases.iter().take(SLOWEST).map(|c| case(c, false)).collect();
    Ok(render(
        "tests.html",
        context! {
            me => reader.context(),
            run => row(&run),
            tests => summary.tests,
            failures_count => summary.failures,
            errors => summary.errors,
            skipped => summary.skipped,
            passed => summary.tests.saturating_sub(summary.failures + summary.errors + summary.skipped),
            failures => failures,
            slowest => slowest,
        },
    ))
}
