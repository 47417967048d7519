//! The JSON API: `Authorization: Bearer <token>`; viewers read, deployers also trigger, cancel,
//! re-run and roll back, admins read the audit log. Every request that changes something is in
//! the audit log. The status badge is public.

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::body::Body;
use axum::extract::{FromRequestParts, Path, Query, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use hoist_store::{
    ApiToken, LogLine, LogStream, NewAudit, NewDeployment, NewRun, Role, Run, RunId, RunQuery,
    RunStatus, Store, StoreError, TestCase, TestOutcome, TestSummary, Trigger, TriggerKind,
};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::runner::checkout;
use crate::state::AppState;

type App = State<Arc<AppState>>;

pub(crate) fn router() -> Router<Arc<AppState>> {
    Router::new()
        .route("/api/projects", get(projects))
        .route("/api/projects/{project}/runs", get(runs).post(trigger))
        .route("/api/runs/{id}", get(run))
        .route("/api/runs/{id}/log", get(log))
        .route("/api/runs/{id}/tests", get(tests))
        .route("/api/runs/{id}/events", get(events))
        .route("/api/runs/{id}/cancel", post(cancel))
        .route("/api/runs/{id}/rerun", post(rerun))
        .route("/api/runs/{id}/artifacts", get(artifact_files))
        .route("/api/runs/{id}/artifacts/{*name}", get(artifact))
        .route("/api/projects/{project}/deployments", get(deployments))
        .route("/api/projects/{project}/rollback", post(rollback))
        .route("/api/audit", get(audit_log))
        .route("/api/users", get(users))
        .route("/api/tokens", get(tokens))
        .route("/badge/{project}", get(badge))
}

/// An API error: a status and a message, as `{"error": "…"}`.
pub(crate) struct ApiError(pub(crate) StatusCode, pub(crate) String);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0, Json(json!({ "error": self.1 }))).into_response()
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> ApiError {
        ApiError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string())
    }
}

fn not_found(what: String) -> ApiError {
    ApiError(StatusCode::NOT_FOUND, what)
}

/// The caller, from `Authorization: Bearer <token>`.
pub(crate) struct Caller(ApiToken);

impl FromRequestParts<Arc<AppState>> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        app: &Arc<AppState>,
    ) -> Result<Caller, ApiError> {
        let unauthorized = |m: &str| ApiError(StatusCode::UNAUTHORIZED, m.to_string());
        let value = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| unauthorized("send an API token: Authorization: Bearer <token>"))?;
        let secret = value
            .strip_prefix("Bearer ")
            .ok_or_else(|| unauthorized("the Authorization header must be `Bearer <token>`"))?;
        match app.store.token_by_secret(secret.trim()).await? {
            Some(token) => Ok(Caller(token)),
            None => Err(unauthorized("unknown or revoked API token")),
        }
    }
}

impl Caller {
    fn require(&self, role: Role) -> Result<(), ApiError> {
        if self.0.role.allows(role) {
            Ok(())
        } else {
            Err(ApiError(
                StatusCode::FORBIDDEN,
                format!(
                    "token {} is a {}; this needs {role}",
                    self.0.name, self.0.role
                ),
            ))
        }
    }

    fn who(&self) -> String {
        format!("token {}", self.0.name)
    }
}

async fn audit(app: &AppState, caller: &Caller, action: &str, target: String, detail: String) {
    let _ = app
        .store
        .audit(&NewAudit {
            who: caller.who(),
            action: action.into(),
            target,
            detail,
        })
        .await;
}

fn time(t: Option<chrono::DateTime<chrono::Utc>>) -> Value {
    t.map_or(Value::Null, |t| {
        Value::String(t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
    })
}

fn run_json(app: &AppState, run: &Run) -> Value {
    json!({
        "id": run.id,
        "project": run.project,
        "branch": run.branch,
        "commit": run.commit,
        "message": run.message,
        "author": run.author,
        "trigger": run.trigger.kind.as_str(),
        "triggered_by": run.trigger.by,
        "rerun_of": run.rerun_of,
        "status": run.status.as_str(),
        "queued_at": time(Some(run.queued_at)),
        "started_at": time(run.started_at),
        "finished_at": time(run.finished_at),
        "cancelled_by": run.cancelled_by,
        "runner": run.runner,
        "url": app.run_url(run.id),
    })
}

/// How many of a project's newest runs are looked at for its branches' last runs.
const RECENT: u32 = 200;

/// Each branch's newest run among the project's newest [`RECENT`] runs, newest first (what the
/// dashboard's projects page shows).
pub(crate) async fn branches_last_runs(
    store: &dyn Store,
    project: &str,
) -> Result<Vec<Run>, StoreError> {
    let recent = store
        .runs(&RunQuery {
            project: Some(project.to_string()),
            branch: None,
            status: None,
            before: None,
            limit: RECENT,
        })
        .await?;
    let mut branches: Vec<Run> = Vec::new();
    for run in recent {
        if !branches.iter().any(|r| r.branch == run.branch) {
            branches.push(run);
        }
    }
    Ok(branches)
}

async fn projects(State(app): App, _caller: Caller) -> Result<Json<Value>, ApiError> {
    let mut projects = Vec::new();
    for p in &app.config.projects {
        let branches = branches_last_runs(app.store.as_ref(), &p.name).await?;
        let recorded = app.store.deployments(&p.name).await?;
        let live: Vec<Value> = crate::deployments::recorded_live(&recorded)
            .iter()
            .map(|l| {
                json!({
                    "environment": l.environment,
                    "release": l.release,
                    "hosts": l.hosts,
                    "who": l.who,
                    "run": l.run,
                    "at": time(Some(l.at)),
                })
            })
            .collect();
        projects.push(json!({
            "name": p.name,
            "repository": p.repository,
            "webhook": format!("{}/hooks/{}", app.config.public_url, p.name),
            "branches": branches.iter().map(|r| run_json(&app, r)).collect::<Vec<_>>(),
            "recorded_live": live,
        }));
    }
    Ok(Json(json!({ "projects": projects })))
}

#[derive(Deserialize)]
struct RunsQuery {
    branch: Option<String>,
    status: Option<String>,
    before: Option<RunId>,
    limit: Option<u32>,
}

async fn runs(
    State(app): App,
    _caller: Caller,
    Path(project): Path<String>,
    Query(query): Query<RunsQuery>,
) -> Result<Json<Value>, ApiError> {
    if app.project(&project).is_none() {
        return Err(not_found(format!("no project named {project:?}")));
    }
    let status = match query.status.as_deref() {
        None => None,
        Some(s) => Some(
            s.parse::<RunStatus>()
                .map_err(|e| ApiError(StatusCode::BAD_REQUEST, e.to_string()))?,
        ),
    };
    let limit = query.limit.unwrap_or(50).clamp(1, 200);
    let list = app
        .store
        .runs(&RunQuery {
            project: Some(project),
            branch: query.branch,
            status,
            before: query.before,
            limit,
        })
        .await?;
    let next = if list.len() == limit as usize {
        list.last().map(|r| r.id)
    } else {
        None
    };
    let runs: Vec<Value> = list.iter().map(|r| run_json(&app, r)).collect();
    Ok(Json(json!({ "runs": runs, "next_before": next })))
}

async fn find_run(app: &AppState, id: RunId) -> Result<Run, ApiError> {
    app.store
        .run(id)
        .await?
        .ok_or_else(|| not_found(format!("no run {id}")))
}

async fn run(
    State(app): App,
    _caller: Caller,
    Path(id): Path<RunId>,
) -> Result<Json<Value>, ApiError> {
    let run = find_run(&app, id).await?;
    let jobs: Vec<Value> = app
        .store
        .jobs(id)
        .await?
        .iter()
        .map(|job| {
            json!({
                "name": job.name,
                "status": job.status.as_str(),
                "requires": job.requires,
                "started_at": time(job.started_at),
                "finished_at": time(job.finished_at),
                "steps": job.steps.iter().map(|s| json!({
                    "id": s.id,
                    "name": s.name,
                    "status": s.status.as_str(),
                    "exit_code": s.exit_code,
                    "millis": s.duration.map(|d| d.as_millis()),
                    "started_at": time(s.started_at),
                })).collect::<Vec<_>>(),
            })
        })
        .collect();
    let tests = app.store.test_summary(id).await?;
    let artifacts: Vec<Value> = app
        .store
        .artifacts(id)
        .await?
        .iter()
        .map(|a| json!({ "name": a.name, "size": a.size, "url": format!("{}/api/runs/{id}/artifacts/{}", app.config.public_url, a.name) }))
        .collect();
    let deployments: Vec<Value> = app
        .store
        .run_deployments(id)
        .await?
        .iter()
        .map(|d| {
            json!({
                "environment": d.environment,
                "host": d.host,
                "release": d.release,
                "outcome": d.outcome,
                "detail": d.detail,
                "step": d.step,
                "millis": d.millis,
                "at": d.at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            })
        })
        .collect();
    let services: Vec<Value> = app
        .store
        .run_services(id)
        .await?
        .iter()
        .map(|s| {
            json!({
                "job": s.service.job,
                "service": s.service.service,
                "port": s.service.port,
                "millis": s.service.millis,
                "error": s.service.error,
            })
        })
        .collect();
    let caches: Vec<Value> = app
        .store
        .run_caches(id)
        .await?
        .iter()
        .map(|c| {
            json!({
                "job": c.cache.job,
                "step": c.cache.step,
                "action": c.cache.action,
                "outcome": c.cache.outcome,
                "keys": c.cache.keys,
                "matched": c.cache.matched,
                "bytes": c.cache.bytes,
                "millis": c.cache.millis,
            })
        })
        .collect();
    let mut body = run_json(&app, &run);
    body["jobs"] = Value::Array(jobs);
    body["tests"] = json!({ "tests": tests.tests, "failures": tests.failures, "errors": tests.errors, "skipped": tests.skipped });
    body["artifacts"] = Value::Array(artifacts);
    body["deployments"] = Value::Array(deployments);
    body["services"] = Value::Array(services);
    body["caches"] = Value::Array(caches);
    Ok(Json(body))
}

/// How many of the slowest tests a test report lists.
const SLOWEST: usize = 10;

/// A run's test results as the Tests tab and `GET /api/runs/<id>/tests` show them.
pub(crate) struct TestReport {
    /// The counts.
    pub summary: TestSummary,
    /// The failed and errored tests, each with whether the branch's previous finished run
    /// passed it ("new failure").
    pub failures: Vec<(TestCase, bool)>,
    /// The slowest tests, slowest first.
    pub slowest: Vec<TestCase>,
}

/// A test's message: its first line, then the rest (the traceback).
pub(crate) fn message_and_traceback(case: &TestCase) -> (&str, &str) {
    let message = case.message.as_deref().unwrap_or("");
    let (first, rest) = message.split_once('\n').unwrap_or((message, ""));
    (first, rest.trim_end())
}

/// The test cases of the branch's previous finished run before `run`, if any.
async fn previous_cases(store: &dyn Store, run: &Run) -> Result<Vec<TestCase>, StoreError> {
    let earlier = store
        .runs(&RunQuery {
            project: Some(run.project.clone()),
            branch: Some(run.branch.clone()),
            status: None,
            before: Some(run.id),
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

/// The run's counts, failures first (marked new when the branch's previous finished run
/// passed them), then its slowest tests.
pub(crate) async fn test_report(store: &dyn Store, run: &Run) -> Result<TestReport, StoreError> {
    let summary = store.test_summary(run.id).await?;
    let mut cases: Vec<TestCase> = store
        .test_suites(run.id)
        .await?
        .into_iter()
        .flat_map(|s| s.cases)
        .collect();
    let previous = previous_cases(store, run).await?;
    let passed_before = |c: &TestCase| {
        previous.iter().any(|p| {
            p.classname == c.classname && p.name == c.name && p.outcome == TestOutcome::Passed
        })
    };
    let failures = cases
        .iter()
        .filter(|c| matches!(c.outcome, TestOutcome::Failed | TestOutcome::Error))
        .map(|c| (c.clone(), passed_before(c)))
        .collect();
    cases.sort_by_key(|c| std::cmp::Reverse(c.duration));
    cases.truncate(SLOWEST);
    Ok(TestReport {
        summary,
        failures,
        slowest: cases,
    })
}

fn case_json(case: &TestCase) -> Value {
    let (message, traceback) = message_and_traceback(case);
    json!({
        "classname": case.classname,
        "name": case.name,
        "outcome": case.outcome.as_str(),
        "millis": case.duration.as_millis(),
        "message": message,
        "traceback": traceback,
    })
}

async fn tests(
    State(app): App,
    _caller: Caller,
    Path(id): Path<RunId>,
) -> Result<Json<Value>, ApiError> {
    let run = find_run(&app, id).await?;
    let report = test_report(app.store.as_ref(), &run).await?;
    let s = report.summary;
    let failures: Vec<Value> = report
        .failures
        .iter()
        .map(|(c, new_failure)| {
            let mut case = case_json(c);
            case["new_failure"] = Value::Bool(*new_failure);
            case
        })
        .collect();
    Ok(Json(json!({
        "run": id,
        "tests": s.tests,
        "failures": s.failures,
        "errors": s.errors,
        "skipped": s.skipped,
        "passed": s.tests.saturating_sub(s.failures + s.errors + s.skipped),
        "failed": failures,
        "slowest": report.slowest.iter().map(case_json).collect::<Vec<_>>(),
    })))
}

#[derive(Deserialize)]
struct LogQuery {
    after: Option<i64>,
    limit: Option<u32>,
}

fn line_json(line: &LogLine) -> Value {
    json!({ "seq": line.seq, "step": line.step, "at": time(Some(line.at)), "text": line.text })
}

async fn log(
    State(app): App,
    _caller: Caller,
    Path(id): Path<RunId>,
    Query(query): Query<LogQuery>,
) -> Result<Json<Value>, ApiError> {
    find_run(&app, id).await?;
    let limit = query.limit.unwrap_or(1000).clamp(1, 10_000);
    let lines = app
        .store
        .log_after(id, query.after.unwrap_or(0), limit)
        .await?;
    let next = lines.last().map(|l| l.seq);
    Ok(Json(json!({
        "lines": lines.iter().map(line_json).collect::<Vec<_>>(),
        "next_after": if lines.len() == limit as usize { next } else { None },
    })))
}

/// The log as Server-Sent Events: each line's `seq` is its event id, so a client that
/// reconnects with `Last-Event-ID` resumes after the last line it got. The stream ends when
/// the run has finished and every line was sent.
async fn events(
    State(app): App,
    _caller: Caller,
    Path(id): Path<RunId>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    find_run(&app, id).await?;
    let after = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<i64>().ok())
        .unwrap_or(0);
    let stream = app.store.subscribe(id, after).await?;
    Ok(Sse::new(SseLines(stream))
        .keep_alive(KeepAlive::default())
        .into_response())
}

/// A run's log lines as SSE events.
pub(crate) struct SseLines(LogStream);

impl futures_core::Stream for SseLines {
    type Item = Result<SseEvent, Infallible>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        match Pin::new(&mut self.0).poll_next(cx) {
            Poll::Ready(Some(Ok(line))) => Poll::Ready(Some(Ok(SseEvent::default()
                .id(line.seq.to_string())
                .data(line.text)))),
            // A store error ends the stream; the client reconnects with its Last-Event-ID.
            Poll::Ready(Some(Err(_)) | None) => Poll::Ready(None),
            Poll::Pending => Poll::Pending,
        }
    }
}

#[derive(Deserialize, Default)]
struct TriggerBody {
    branch: Option<String>,
    commit: Option<String>,
}

async fn trigger(
    State(app): App,
    caller: Caller,
    Path(project): Path<String>,
    body: Option<Json<TriggerBody>>,
) -> Result<Response, ApiError> {
    caller.require(Role::Deployer)?;
    let body = body.map(|b| b.0).unwrap_or_default();
    let branch = body.branch.unwrap_or_else(|| "master".into());
    let (run, commit) =
        queue_manual_run(&app, &project, &branch, body.commit, caller.who()).await?;
    audit(
        &app,
        &caller,
        "run.trigger",
        format!("run {run}"),
        format!("{project} {branch} {commit}"),
    )
    .await;
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({ "run": run, "url": app.run_url(run) })),
    )
        .into_response())
}

/// Queues a manual run of `branch`'s head (fetched now) or of `commit`, by `who`: the new run
/// and the commit it runs. The API and the dashboard's Run button both queue through it.
pub(crate) async fn queue_manual_run(
    app: &AppState,
    project: &str,
    branch: &str,
    commit: Option<String>,
    who: String,
) -> Result<(RunId, String), ApiError> {
    let config = app
        .project(project)
        .cloned()
        .ok_or_else(|| not_found(format!("no project named {project:?}")))?;
    let data_dir = app.config.data_dir.clone();
    let (b, name, repo) = (
        branch.to_string(),
        config.name.clone(),
        config.repository.clone(),
    );
    let resolved = tokio::task::spawn_blocking(move || {
        let mirror = checkout::update_mirror(&data_dir, &name, &repo)?;
        let commit = match commit {
            Some(commit) if checkout::has_commit(&mirror, &commit) => commit,
            Some(commit) => return Err(format!("the repository has no commit {commit:?}")),
            None => checkout::branch_head(&mirror, &b)?,
        };
        let (message, author) = checkout::describe(&mirror, &commit);
        Ok((commit, message, author))
    })
    .await
    .map_err(|e| ApiError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    let (commit, message, author) =
        resolved.map_err(|e| ApiError(StatusCode::UNPROCESSABLE_ENTITY, e))?;
    let enqueued = app
        .store
        .enqueue(&NewRun {
            project: project.to_string(),
            branch: branch.to_string(),
            commit: commit.clone(),
            message,
            author,
            trigger: Trigger {
                kind: TriggerKind::Manual,
                by: who,
            },
            auto_cancel: false,
        })
        .await?;
    app.wake_runners();
    Ok((enqueued.run, commit))
}

async fn cancel(
    State(app): App,
    caller: Caller,
    Path(id): Path<RunId>,
) -> Result<Json<Value>, ApiError> {
    caller.require(Role::Deployer)?;
    find_run(&app, id).await?;
    let cancelled = app.store.cancel(id, &caller.who()).await?;
    if cancelled {
        audit(
            &app,
            &caller,
            "run.cancel",
            format!("run {id}"),
            String::new(),
        )
        .await;
    }
    Ok(Json(json!({ "run": id, "cancelled": cancelled })))
}

async fn rerun(
    State(app): App,
    caller: Caller,
    Path(id): Path<RunId>,
) -> Result<Response, ApiError> {
    caller.require(Role::Deployer)?;
    find_run(&app, id).await?;
    let new = app.store.rerun(id, &caller.who()).await?;
    app.wake_runners();
    audit(
        &app,
        &caller,
        "run.rerun",
        format!("run {new}"),
        format!("re-run of run {id}"),
    )
    .await;
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({ "run": new, "url": app.run_url(new) })),
    )
        .into_response())
}

/// Files listed per artifact at most (an artifact can be a whole directory tree).
const MAX_FILES: usize = 1000;

/// The files of an artifact (a file, or a directory walked without following symlinks), as
/// paths relative to it with their sizes, sorted.
fn files(root: &std::path::Path) -> Vec<(String, u64)> {
    let mut found = Vec::new();
    let Ok(meta) = std::fs::symlink_metadata(root) else {
        return found;
    };
    if meta.is_file() {
        found.push((String::new(), meta.len()));
        return found;
    }
    let mut dirs = vec![root.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let Ok(meta) = entry.path().symlink_metadata() else {
                continue;
            };
            if meta.is_dir() {
                dirs.push(entry.path());
            } else if meta.is_file() && found.len() < MAX_FILES {
                let relative = entry
                    .path()
                    .strip_prefix(root)
                    .map_or_else(|_| String::new(), |p| p.to_string_lossy().into_owned());
                found.push((relative, meta.len()));
            }
        }
    }
    found.sort();
    found
}

/// Every file of a run's artifacts, as `<artifact>[/<path inside>]` with its size, sorted by
/// artifact (what the Artifacts tab and `GET /api/runs/<id>/artifacts` list).
pub(crate) async fn artifact_listing(
    app: &AppState,
    id: RunId,
) -> Result<Vec<(String, u64)>, StoreError> {
    let artifacts = app.store.artifacts(id).await?;
    let data_dir = app.config.data_dir.clone();
    Ok(tokio::task::spawn_blocking(move || {
        artifacts
            .iter()
            .flat_map(|a| {
                files(&data_dir.join(&a.path))
                    .into_iter()
                    .map(|(relative, bytes)| {
                        let name = if relative.is_empty() {
                            a.name.clone()
                        } else {
                            format!("{}/{relative}", a.name)
                        };
                        (name, bytes)
                    })
                    .collect::<Vec<_>>()
            })
            .collect::<Vec<_>>()
    })
    .await
    .unwrap_or_default())
}

async fn artifact_files(
    State(app): App,
    _caller: Caller,
    Path(id): Path<RunId>,
) -> Result<Json<Value>, ApiError> {
    find_run(&app, id).await?;
    let files: Vec<Value> = artifact_listing(&app, id)
        .await?
        .into_iter()
        .map(|(name, bytes)| {
            json!({
                "url": format!("{}/api/runs/{id}/artifacts/{name}", app.config.public_url),
                "name": name,
                "size": bytes,
            })
        })
        .collect();
    Ok(Json(json!({ "run": id, "files": files })))
}

/// The file of run `id` that the artifact path `name` (`<artifact>` or `<artifact>/<path>`)
/// names: `None` unless the name is in the run's artifact list and the file lies inside that
/// artifact's directory once every symlink is resolved (no `..`, no escape). The API and the
/// dashboard both download through it.
pub(crate) async fn artifact_file(
    app: &AppState,
    id: RunId,
    name: &str,
) -> Result<Option<std::path::PathBuf>, StoreError> {
    let artifacts = app.store.artifacts(id).await?;
    let Some((artifact, rest)) = artifacts.iter().find_map(|a| {
        if name == a.name {
            Some((a, ""))
        } else {
            name.strip_prefix(&a.name)
                .and_then(|r| r.strip_prefix('/'))
                .map(|r| (a, r))
        }
    }) else {
        return Ok(None);
    };
    let Ok(root) = app.config.data_dir.join(&artifact.path).canonicalize() else {
        return Ok(None);
    };
    let Ok(file) = root.join(rest).canonicalize() else {
        return Ok(None);
    };
    Ok((file.starts_with(&root) && file.is_file()).then_some(file))
}

/// An artifact's file, as [`artifact_file`] finds it.
async fn artifact(
    State(app): App,
    _caller: Caller,
    Path((id, name)): Path<(RunId, String)>,
) -> Result<Response, ApiError> {
    let missing = || not_found(format!("run {id} has no artifact {name:?}"));
    let file = artifact_file(&app, id, &name).await?.ok_or_else(missing)?;
    let bytes = tokio::fs::read(&file).await.map_err(|_| missing())?;
    Ok((
        [
            (header::CONTENT_TYPE, "application/octet-stream".to_string()),
            (header::CONTENT_DISPOSITION, "attachment".to_string()),
        ],
        Body::from(bytes),
    )
        .into_response())
}

#[derive(Deserialize)]
struct DeploymentsQuery {
    fresh: Option<bool>,
}

/// The project's deployments read from its hosts (cached for a few seconds; `?fresh=true`
/// reads them now): see [`crate::deployments`].
async fn deployments(
    State(app): App,
    _caller: Caller,
    Path(project): Path<String>,
    Query(query): Query<DeploymentsQuery>,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(
        read_deployments(&app, &project, query.fresh.unwrap_or(false)).await?,
    ))
}

/// What [`crate::deployments::read`] reads of `project`'s hosts, with what the store recorded
/// of its deployments. The API and the dashboard's Deployments page both read through it.
pub(crate) async fn read_deployments(
    app: &AppState,
    project: &str,
    fresh: bool,
) -> Result<Value, ApiError> {
    let config = app
        .project(project)
        .cloned()
        .ok_or_else(|| not_found(format!("no project named {project:?}")))?;
    let recorded = app.store.deployments(project).await?;
    crate::deployments::read(
        &app.deployments,
        &app.config.data_dir,
        &config,
        recorded,
        fresh,
    )
    .await
    .map_err(|e| ApiError(StatusCode::BAD_GATEWAY, e))
}

#[derive(Deserialize, Default)]
struct RollbackBody {
    environment: Option<String>,
    to: Option<String>,
}

/// Rolls an environment back (to `to`, or to the rollback target) with the deploy engine; the
/// outcome of every host is recorded as a deployment, the request in the audit log.
async fn rollback(
    State(app): App,
    caller: Caller,
    Path(project): Path<String>,
    body: Option<Json<RollbackBody>>,
) -> Result<Response, ApiError> {
    caller.require(Role::Deployer)?;
    let body = body.map(|b| b.0).unwrap_or_default();
    let (who, quiet): (String, crate::deployments::Progress) = (caller.who(), Box::new(|_| {}));
    let asked = rollback_environment(&app, &project, body.environment, body.to, &who, quiet);
    match asked.await? {
        Ok((environment, report)) => Ok(Json(json!({
            "project": project,
            "environment": environment,
            "to": report.to.to_string(),
            "hosts": report.hosts,
            "marked_bad": report.left_marked_bad,
            "millis": u64::try_from(report.elapsed.as_millis()).unwrap_or(u64::MAX),
        }))
        .into_response()),
        Err((status, e)) => Ok((
            status,
            Json(json!({ "error": e.message, "hints": e.hints, "hosts": e.hosts })),
        )
            .into_response()),
    }
}

/// The rollback of an environment of `project` asked by `who` (`token NAME`, `user NAME`), as
/// `hoist rollback [ENV] [--to R]`: the deploy engine rolls every host back, each host's
/// outcome is recorded as a deployment, and the request, done or not, goes into the audit log
/// (`environment.rollback`). The API and the dashboard's Roll back button both go through it.
/// The engine's events go to `progress`. The inner error is the engine's, with the HTTP status
/// that fits it.
pub(crate) async fn rollback_environment(
    app: &AppState,
    project: &str,
    environment: Option<String>,
    to: Option<String>,
    who: &str,
    progress: crate::deployments::Progress,
) -> Result<
    Result<(String, hoist_deploy::RollbackReport), (StatusCode, hoist_deploy::DeployError)>,
    ApiError,
> {
    let config = app
        .project(project)
        .cloned()
        .ok_or_else(|| not_found(format!("no project named {project:?}")))?;
    let asked = to.clone().map_or_else(
        || "the rollback target".to_string(),
        |to| format!("--to {to}"),
    );
    let target = format!(
        "{project} {}",
        environment.as_deref().unwrap_or("(its environment)")
    );
    let audit = |target: String, detail: String| NewAudit {
        who: who.to_string(),
        action: "environment.rollback".into(),
        target,
        detail,
    };
    let result = crate::deployments::rollback(
        &app.deployments,
        &app.config.data_dir,
        &config,
        environment,
        to,
        format!("{who} (hoist serve)"),
        progress,
    )
    .await;
    let (environment, report) = match result {
        Ok(done) => done,
        Err(failed) => {
            let e = failed.error;
            let _ = app
                .store
                .audit(&audit(target, format!("{asked}: failed: {}", e.message)))
                .await;
            let status = match e.kind {
                hoist_deploy::FailureKind::Config => StatusCode::UNPROCESSABLE_ENTITY,
                hoist_deploy::FailureKind::LockHeld => StatusCode::CONFLICT,
                hoist_deploy::FailureKind::BeforeSwitch => StatusCode::BAD_GATEWAY,
                _ => StatusCode::INTERNAL_SERVER_ERROR,
            };
            return Ok(Err((status, e)));
        }
    };
    let to = report.to.to_string();
    for host in &report.hosts {
        let outcome = match host.result {
            hoist_deploy::HostResult::Live => "rolled_back".to_string(),
            other => serde_json::to_value(other)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default(),
        };
        app.store
            .record_deployment(&NewDeployment {
                run: None,
                project: project.to_string(),
                environment: environment.clone(),
                host: host.host.clone(),
                release: host.release.clone(),
                outcome,
                detail: host
                    .previous
                    .as_ref()
                    .map(|p| format!("rolled back from {p}")),
                who: who.to_string(),
                step: None,
                millis: None,
            })
            .await?;
    }
    let _ = app
        .store
        .audit(&audit(
            format!("{project} {environment}"),
            format!("{asked}: rolled back to {to}"),
        ))
        .await;
    Ok(Ok((environment, report)))
}

#[derive(Deserialize)]
struct AuditQuery {
    limit: Option<u32>,
}

/// The newest audit log entries (admin).
async fn audit_log(
    State(app): App,
    caller: Caller,
    Query(query): Query<AuditQuery>,
) -> Result<Json<Value>, ApiError> {
    caller.require(Role::Admin)?;
    let entries: Vec<Value> = app
        .store
        .audit_log(query.limit.unwrap_or(100).clamp(1, 1000))
        .await?
        .iter()
        .map(|e| {
            json!({
                "at": time(Some(e.at)),
                "who": e.who,
                "action": e.action,
                "target": e.target,
                "detail": e.detail,
            })
        })
        .collect();
    Ok(Json(json!({ "entries": entries })))
}

/// The server's users (what the settings page lists); admins only.
async fn users(State(app): App, caller: Caller) -> Result<Json<Value>, ApiError> {
    caller.require(Role::Admin)?;
    let users: Vec<Value> = app
        .store
        .users()
        .await?
        .iter()
        .map(|u| json!({ "name": u.name, "role": u.role.as_str(), "created_at": time(Some(u.created_at)) }))
        .collect();
    Ok(Json(json!({ "users": users })))
}

/// The API tokens, without secrets (the store keeps none); admins only.
async fn tokens(State(app): App, caller: Caller) -> Result<Json<Value>, ApiError> {
    caller.require(Role::Admin)?;
    let tokens: Vec<Value> = app
        .store
        .tokens()
        .await?
        .iter()
        .map(|t| {
            json!({
                "name": t.name,
                "role": t.role.as_str(),
                "created_by": t.created_by,
                "created_at": time(Some(t.created_at)),
            })
        })
        .collect();
    Ok(Json(json!({ "tokens": tokens })))
}

#[derive(Deserialize)]
struct BadgeQuery {
    branch: Option<String>,
}

/// `GET /badge/<project>.svg[?branch=B]`: the last finished run's status (public).
async fn badge(
    State(app): App,
    Path(file): Path<String>,
    Query(query): Query<BadgeQuery>,
) -> Result<Response, ApiError> {
    let project = file
        .strip_suffix(".svg")
        .ok_or_else(|| not_found(format!("no badge {file:?}: ask for /badge/<project>.svg")))?;
    if app.project(project).is_none() {
        return Err(not_found(format!("no project named {project:?}")));
    }
    let branch = query.branch.unwrap_or_else(|| "master".into());
    let mut before = None;
    let mut status = None;
    // The newest finished run: skip queued and running ones, a page at a time.
    'pages: for _ in 0..20 {
        let page = app
            .store
            .runs(&RunQuery {
                project: Some(project.to_string()),
                branch: Some(branch.clone()),
                status: None,
                before,
                limit: 50,
            })
            .await?;
        for run in &page {
            if run.status.is_finished() {
                status = Some(run.status);
                break 'pages;
            }
        }
        match page.last() {
            Some(last) if page.len() == 50 => before = Some(last.id),
            _ => break,
        }
    }
    let (text, colour) = match status {
        Some(RunStatus::Passed) => ("passed", "#4c1"),
        Some(RunStatus::Failed) => ("failed", "#e05d44"),
        Some(RunStatus::Cancelled) => ("cancelled", "#9f9f9f"),
        Some(RunStatus::Interrupted) => ("interrupted", "#dfb317"),
        _ => ("unknown", "#9f9f9f"),
    };
    Ok((
        [
            (header::CONTENT_TYPE, "image/svg+xml"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        badge_svg(text, colour),
    )
        .into_response())
}

/// A flat two-part badge; `text` is one of the fixed status words, never user input.
fn badge_svg(text: &str, colour: &str) -> String {
    let left = 37;
    let right = 8 + 7 * text.len();
    let width = left + right;
    format!(
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="20" role="img" aria-label="hoist: {text}"><rect width="{left}" height="20" fill="#555"/><rect x="{left}" width="{right}" height="20" fill="{colour}"/><g fill="#fff" font-family="Verdana,sans-serif" font-size="11"><text x="5" y="14">hoist</text><text x="{}" y="14">{text}</text></g></svg>"##,
        left + 4
    )
}
