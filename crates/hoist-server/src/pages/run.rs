//! `GET /runs/<id>`: a run's jobs in `requires` order, their steps, the services they started,
//! what their cache steps restored or saved, their deploy steps' per-host outcomes, and the tail
//! of its log;
//! `GET /runs/<id>/lines?before=S`: earlier lines; `GET /runs/<id>/live?after=S`: new lines as
//! Server-Sent Events (HTML, already escaped); `POST /runs/<id>/cancel|rerun` for deployers.

use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{Html, IntoResponse, Redirect, Response};
use hoist_store::{
    CacheUse, Deployment, Job, LogLine, LogStream, NewAudit, Role, Run, RunId, RunService, StepId,
    Store,
};
use minijinja::{context, Value};
use serde::Deserialize;

use super::artifacts::size;
use super::{ansi, duration, not_found, render, runs::row, when, App, Form, PageError, Reader};
use crate::state::AppState;

/// How many lines the page shows at first, and fetches each time the reader asks for more.
pub(crate) const TAIL: i64 = 500;

pub(super) async fn find_run(store: &dyn Store, id: RunId) -> Result<Run, PageError> {
    store
        .run(id)
        .await?
        .ok_or_else(|| not_found(format!("no run {id}")))
}

/// The `seq` of the run's last log line (0 when it has none): line numbers are 1, 2, … with no
/// gap, so a binary search over "is there a line after k" finds it in ~log2(n) small queries.
async fn last_seq(store: &dyn Store, id: RunId) -> Result<i64, PageError> {
    let has_after = |k: i64| async move {
        store
            .log_after(id, k, 1)
            .await
            .map(|lines| !lines.is_empty())
    };
    let mut high = 1024;
    while has_after(high).await? {
        high *= 2;
    }
    let mut low = 0;
    // Invariant: a line after `low` may exist; none after `high`.
    while low < high {
        let mid = low + (high - low) / 2;
        if has_after(mid).await? {
            low = mid + 1;
        } else {
            high = mid;
        }
    }
    Ok(low)
}

/// Jobs in the order `requires` gives: each after the jobs it requires, otherwise by position.
fn in_requires_order(jobs: Vec<Job>) -> Vec<Job> {
    let mut left = jobs;
    left.sort_by_key(|j| j.position);
    let mut ordered: Vec<Job> = Vec::with_capacity(left.len());
    while !left.is_empty() {
        let ready = left
            .iter()
            .position(|j| {
                j.requires.iter().all(|r| {
                    ordered.iter().any(|o| &o.name == r) || !left.iter().any(|l| &l.name == r)
                })
            })
            // A cycle (the pipeline refuses them): keep position order.
            .unwrap_or(0);
        ordered.push(left.remove(ready));
    }
    ordered
}

async fn step_names(store: &dyn Store, id: RunId) -> Result<Vec<(StepId, String)>, PageError> {
    Ok(store
        .jobs(id)
        .await?
        .into_iter()
        .flat_map(|j| {
            let job = j.name;
            j.steps
                .into_iter()
                .map(move |s| (s.id, format!("{job} › {}", s.name)))
        })
        .collect())
}

#[derive(Deserialize)]
pub(crate) struct Around {
    /// Show the lines before this one instead of the tail.
    before: Option<i64>,
}

pub(crate) async fn page(
    State(app): App,
    reader: Reader,
    Path(id): Path<RunId>,
    Query(around): Query<Around>,
) -> Result<Response, PageError> {
    let run = find_run(app.store.as_ref(), id).await?;
    let jobs = in_requires_order(app.store.jobs(id).await?);
    let steps: Vec<(StepId, String)> = jobs
        .iter()
        .flat_map(|j| {
            j.steps
                .iter()
                .map(move |s| (s.id, format!("{} › {}", j.name, s.name)))
        })
        .collect();
    let last = last_seq(app.store.as_ref(), id).await?;
    let end = around.before.map_or(last, |b| (b - 1).clamp(0, last));
    let first = (end - TAIL).max(0);
    let lines = app
        .store
        .log_after(id, first, u32::try_from(end - first).unwrap_or(0).max(1))
        .await?;
    let lines: Vec<Value> = lines
        .iter()
        .filter(|l| l.seq <= end)
        .map(|l| Value::from_safe_string(row_html(l, &steps)))
        .collect();
    let services = app.store.run_services(id).await?;
    let caches = app.store.run_caches(id).await?;
    let deployments = app.store.run_deployments(id).await?;
    let in_job =
        |d: &Deployment, j: &Job| d.step.is_some_and(|s| j.steps.iter().any(|x| x.id == s));
    let jobs: Vec<Value> = jobs
        .iter()
        .map(|j| {
            context! {
                name => j.name,
                status => j.status.as_str(),
                requires => j.requires,
                steps => j.steps.iter().map(|s| context! {
                    name => s.name,
                    status => s.status.as_str(),
                    exit_code => s.exit_code,
                    took => duration(s.duration),
                    started => when(s.started_at),
                }).collect::<Vec<_>>(),
                services => services.iter().filter(|s| s.service.job == j.name).map(service_row).collect::<Vec<_>>(),
                caches => caches.iter().filter(|c| c.cache.job == j.name).map(|c| cache_row(c, j)).collect::<Vec<_>>(),
                deployments => deployments.iter().filter(|d| in_job(d, j)).map(deployment_row).collect::<Vec<_>>(),
            }
        })
        .collect();
    // Deployments recorded before steps were kept with them belong to no job.
    let other_deployments: Vec<Value> = deployments
        .iter()
        .filter(|d| d.step.is_none())
        .map(deployment_row)
        .collect();
    let tests = app.store.test_summary(id).await?;
    Ok(render(
        "run.html",
        context! {
            me => reader.context(),
            run => row(&run),
            jobs => jobs,
            other_deployments => other_deployments,
            lines => lines,
            earlier => (first > 0).then_some(first + 1),
            last => end,
            live => !run.status.is_finished() && end == last,
            tests => tests.tests,
            failed => tests.failures + tests.errors,
        },
    ))
}

fn service_row(s: &RunService) -> Value {
    let s = &s.service;
    context! {
        service => s.service,
        port => s.port,
        // Time to ready, or to failing when it did not start.
        took => duration(Some(std::time::Duration::from_millis(s.millis))),
        error => s.error,
    }
}

fn cache_row(c: &CacheUse, job: &Job) -> Value {
    let c = &c.cache;
    let step = c
        .step
        .and_then(|id| job.steps.iter().find(|s| s.id == id))
        .map(|s| s.name.clone());
    // A restore names the key it restored (or every key it tried, when none matched); a save
    // names its key.
    let key = match (&c.matched, c.action.as_str()) {
        (Some(matched), _) => matched.clone(),
        (None, "save") => c.keys.first().cloned().unwrap_or_default(),
        (None, _) => c.keys.join(", "),
    };
    context! {
        step => step,
        action => c.action,
        outcome => c.outcome,
        found => matches!(c.outcome.as_str(), "hit" | "fallback" | "exists" | "saved"),
        key => key,
        size => (c.bytes > 0).then(|| size(c.bytes)),
        took => duration(Some(std::time::Duration::from_millis(c.millis))),
    }
}

fn deployment_row(d: &Deployment) -> Value {
    context! {
        environment => d.environment,
        host => d.host,
        release => d.release,
        outcome => d.outcome.replace('_', " "),
        good => d.outcome == "live",
        took => d.millis.and_then(|ms| duration(Some(std::time::Duration::from_millis(ms)))),
        error => (d.outcome != "live").then_some(d.detail.clone()).flatten(),
        detail => (d.outcome == "live").then_some(d.detail.clone()).flatten(),
    }
}

#[derive(Deserialize)]
pub(crate) struct Before {
    before: i64,
}

/// The lines before `before` (at most [`TAIL`]), as HTML rows for the page's script to insert.
pub(crate) async fn earlier_lines(
    State(app): App,
    _reader: Reader,
    Path(id): Path<RunId>,
    Query(q): Query<Before>,
) -> Result<Response, PageError> {
    find_run(app.store.as_ref(), id).await?;
    let end = (q.before - 1).max(0);
    let first = (end - TAIL).max(0);
    let steps = step_names(app.store.as_ref(), id).await?;
    let lines = app
        .store
        .log_after(id, first, u32::try_from(end - first).unwrap_or(0).max(1))
        .await?;
    let mut html = String::new();
    for l in lines.iter().filter(|l| l.seq <= end) {
        html.push_str(&row_html(l, &steps));
    }
    let next = if first > 0 {
        (first + 1).to_string()
    } else {
        String::new()
    };
    Ok((
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8".to_string()),
            (header::HeaderName::from_static("hoist-earlier"), next),
        ],
        Html(html),
    )
        .into_response())
}

/// One log row, as the run page's template writes it (kept in step with `run.html`).
fn row_html(l: &LogLine, steps: &[(StepId, String)]) -> String {
    let step = l
        .step
        .and_then(|s| steps.iter().find(|(id, _)| *id == s))
        .map_or(String::new(), |(_, name)| ansi::to_html(name));
    format!(
        "<div class=\"line\" id=\"L{seq}\" title=\"{step}\"><a href=\"#L{seq}\">{seq}</a><code>{}</code></div>",
        ansi::to_html(&l.text),
        seq = l.seq,
    )
}

#[derive(Deserialize)]
pub(crate) struct After {
    after: Option<i64>,
}

/// New log lines as SSE: `data` is the row's HTML (escaped here, never by the browser), the id
/// its `seq` (a reconnecting `EventSource` resumes after it); a final `end` event when the run
/// has finished.
pub(crate) async fn live(
    State(app): App,
    _reader: Reader,
    Path(id): Path<RunId>,
    Query(q): Query<After>,
    headers: HeaderMap,
) -> Result<Response, PageError> {
    find_run(app.store.as_ref(), id).await?;
    let after = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<i64>().ok())
        .or(q.after)
        .unwrap_or(0);
    let steps = step_names(app.store.as_ref(), id).await?;
    let stream = app.store.subscribe(id, after).await?;
    Ok(Sse::new(LiveRows {
        lines: stream,
        steps,
        ended: false,
    })
    .keep_alive(KeepAlive::default())
    .into_response())
}

struct LiveRows {
    lines: LogStream,
    steps: Vec<(StepId, String)>,
    ended: bool,
}

impl futures_core::Stream for LiveRows {
    type Item = Result<Event, Infallible>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.ended {
            return Poll::Ready(None);
        }
        match Pin::new(&mut self.lines).poll_next(cx) {
            Poll::Ready(Some(Ok(l))) => {
                let html = row_html(&l, &self.steps);
                Poll::Ready(Some(Ok(Event::default().id(l.seq.to_string()).data(html))))
            }
            Poll::Ready(None) => {
                self.ended = true;
                Poll::Ready(Some(Ok(Event::default().event("end").data("finished"))))
            }
            // A store error ends the stream; the browser reconnects with its Last-Event-ID.
            Poll::Ready(Some(Err(_))) => Poll::Ready(None),
            Poll::Pending => Poll::Pending,
        }
    }
}

async fn audit(app: &AppState, reader: &Reader, action: &str, target: String, detail: String) {
    let _ = app
        .store
        .audit(&NewAudit {
            who: format!("user {}", reader.name),
            action: action.into(),
            target,
            detail,
        })
        .await;
}

pub(crate) async fn cancel(
    State(app): App,
    reader: Reader,
    Path(id): Path<RunId>,
    body: Bytes,
) -> Result<Response, PageError> {
    reader.check_form(&Form::parse(&body), Role::Deployer)?;
    find_run(app.store.as_ref(), id).await?;
    let who = format!("user {}", reader.name);
    if app.store.cancel(id, &who).await? {
        audit(
            &app,
            &reader,
            "run.cancel",
            format!("run {id}"),
            String::new(),
        )
        .await;
    }
    Ok(Redirect::to(&format!("/runs/{id}")).into_response())
}

pub(crate) async fn rerun(
    State(app): App,
    reader: Reader,
    Path(id): Path<RunId>,
    body: Bytes,
) -> Result<Response, PageError> {
    reader.check_form(&Form::parse(&body), Role::Deployer)?;
    find_run(app.store.as_ref(), id).await?;
    let new = app
        .store
        .rerun(id, &format!("user {}", reader.name))
        .await?;
    app.wake_runners();
    audit(
        &app,
        &reader,
        "run.rerun",
        format!("run {new}"),
        format!("re-run of run {id}"),
    )
    .await;
    Ok(Redirect::to(&format!("/runs/{new}")).into_response())
}

#[cfg(test)]
mod tests {
    use hoist_store::{Job, StepStatus};

    fn job(name: &str, position: i64, requires: &[&str]) -> Job {
        Job {
            id: position,
            run: 1,
            name: name.into(),
            position,
            requires: requires.iter().map(|r| (*r).to_string()).collect(),
            status: StepStatus::Pending,
            started_at: None,
            finished_at: None,
            steps: Vec::new(),
        }
    }

    fn names(jobs: Vec<Job>) -> Vec<String> {
        super::in_requires_order(jobs)
            .into_iter()
            .map(|j| j.name)
            .collect()
    }

    #[test]
    fn a_job_comes_after_the_jobs_it_requires_and_otherwise_in_pipeline_order() {
        let jobs = vec![
            job("deploy", 0, &["test", "lint"]),
            job("test", 1, &["build"]),
            job("lint", 2, &[]),
            job("build", 3, &[]),
        ];
        assert_eq!(names(jobs), ["lint", "build", "test", "deploy"]);
    }

    #[test]
    fn a_cycle_or_an_unknown_requirement_keeps_every_job() {
        let jobs = vec![
            job("a", 0, &["b"]),
            job("b", 1, &["a"]),
            job("c", 2, &["gone"]),
        ];
        assert_eq!(names(jobs), ["c", "a", "b"]);
    }
}
