//! `GET /`: the projects with their branches' last runs; `GET /projects/<p>`: a project's runs;
//! `POST /projects/<p>/run`: a deployer queues a run of a branch or a commit.

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use hoist_store::{NewAudit, Role, Run, RunId, RunQuery, RunStatus};
use minijinja::{context, Value};
use serde::Deserialize;

use super::{between, not_found, render, when, App, Form, PageError, Reader};

/// One page of a project's runs.
const PAGE: u32 = 50;

/// A run as the templates show it.
pub(super) fn row(run: &Run) -> Value {
    context! {
        id => run.id,
        project => run.project,
        branch => run.branch,
        commit => run.commit,
        short => run.commit.chars().take(8).collect::<String>(),
        title => run.message.lines().next().unwrap_or(""),
        author => run.author,
        trigger => run.trigger.kind.as_str(),
        by => run.trigger.by,
        status => run.status.as_str(),
        finished => run.status.is_finished(),
        queued => when(Some(run.queued_at)),
        took => between(run.started_at, run.finished_at),
        cancelled_by => run.cancelled_by,
    }
}

pub(crate) async fn projects(State(app): App, reader: Reader) -> Result<Response, PageError> {
    let mut projects = Vec::new();
    for project in &app.config.projects {
        let branches = crate::api::branches_last_runs(app.store.as_ref(), &project.name).await?;
        let recorded = app.store.deployments(&project.name).await?;
        let live: Vec<Value> = crate::deployments::recorded_live(&recorded)
            .iter()
            .map(|l| {
                context! {
                    environment => l.environment,
                    release => l.release,
                    hosts => l.hosts.join(", "),
                    who => l.who,
                    run => l.run,
                    at => when(Some(l.at)),
                }
            })
            .collect();
        projects.push(context! {
            name => project.name,
            repository => project.repository,
            branches => branches.iter().map(row).collect::<Vec<_>>(),
            live => live,
        });
    }
    Ok(render(
        "projects.html",
        context! { me => reader.context(), projects => projects },
    ))
}

#[derive(Deserialize)]
pub(crate) struct Filter {
    branch: Option<String>,
    status: Option<String>,
    before: Option<RunId>,
}

pub(crate) async fn project_runs(
    State(app): App,
    reader: Reader,
    Path(project): Path<String>,
    Query(filter): Query<Filter>,
) -> Result<Response, PageError> {
    if app.project(&project).is_none() {
        return Err(not_found(format!("no project named {project:?}")));
    }
    let branch = filter.branch.filter(|b| !b.is_empty());
    let status = match filter.status.as_deref().filter(|s| !s.is_empty()) {
        None => None,
        Some(s) => Some(
            s.parse::<RunStatus>()
                .map_err(|e| PageError(axum::http::StatusCode::BAD_REQUEST, e.to_string()))?,
        ),
    };
    let list = app
        .store
        .runs(&RunQuery {
            project: Some(project.clone()),
            branch: branch.clone(),
            status,
            before: filter.before,
            limit: PAGE,
        })
        .await?;
    let next = if list.len() == PAGE as usize {
        list.last().map(|r| {
            let mut query = form_urlencoded::Serializer::new(String::new());
            if let Some(b) = &branch {
                query.append_pair("branch", b);
            }
            if let Some(s) = status {
                query.append_pair("status", s.as_str());
            }
            query.append_pair("before", &r.id.to_string());
            query.finish()
        })
    } else {
        None
    };
    Ok(render(
        "runs.html",
        context! {
            me => reader.context(),
            project => project,
            branch => branch,
            status => status.map(RunStatus::as_str),
            statuses => ["queued", "running", "passed", "failed", "cancelled", "interrupted"],
            runs => list.iter().map(row).collect::<Vec<_>>(),
            next => next,
            badge_url => format!("{}/badge/{project}.svg", app.config.public_url),
            page_url => format!("{}/projects/{project}", app.config.public_url),
        },
    ))
}

/// The Run button: the branch's head (fetched now), or the commit when one is given.
pub(crate) async fn start(
    State(app): App,
    reader: Reader,
    Path(project): Path<String>,
    body: Bytes,
) -> Result<Response, PageError> {
    let form = Form::parse(&body);
    reader.check_form(&form, Role::Deployer)?;
    let branch = form
        .get("branch")
        .map(str::trim)
        .filter(|b| !b.is_empty())
        .unwrap_or("master")
        .to_string();
    let commit = form
        .get("commit")
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .map(String::from);
    let who = format!("user {}", reader.name);
    let (run, commit) =
        crate::api::queue_manual_run(&app, &project, &branch, commit, who.clone()).await?;
    let _ = app
        .store
        .audit(&NewAudit {
            who,
            action: "run.trigger".into(),
            target: format!("run {run}"),
            detail: format!("{project} {branch} {commit}"),
        })
        .await;
    Ok(Redirect::to(&format!("/runs/{run}")).into_response())
}
