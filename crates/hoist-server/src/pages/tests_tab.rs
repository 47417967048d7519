//! `GET /runs/<id>/tests`: counts, failures first (message and traceback, "new failure" when the
//! branch's previous finished run passed that test), then the slowest tests: the data of
//! [`crate::api::test_report`], as the API's `GET /api/runs/<id>/tests` gives it.

use axum::extract::{Path, State};
use axum::response::Response;
use hoist_store::{RunId, TestCase};
use minijinja::{context, Value};

use super::run::find_run;
use super::{duration, render, runs::row, App, PageError, Reader};
use crate::api::test_report;

fn case(case: &TestCase, new_failure: bool) -> Value {
    let (first, rest) = crate::api::message_and_traceback(case);
    context! {
        classname => case.classname,
        name => case.name,
        outcome => case.outcome.as_str(),
        took => duration(Some(case.duration)),
        message => first,
        traceback => rest,
        new_failure => new_failure,
    }
}

pub(crate) async fn page(
    State(app): App,
    reader: Reader,
    Path(id): Path<RunId>,
) -> Result<Response, PageError> {
    let run = find_run(app.store.as_ref(), id).await?;
    let report = test_report(app.store.as_ref(), &run).await?;
    let summary = report.summary;
    let failures: Vec<Value> = report
        .failures
        .iter()
        .map(|(c, new_failure)| case(c, *new_failure))
        .collect();
    let slowest: Vec<Value> = report.slowest.iter().map(|c| case(c, false)).collect();
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
