//! `GET /projects/<p>/deployments`: per environment, each host's live release (its commit and
//! message, who deployed it and when), its rollback target and lock, drift, the hosts that could
//! not be read, and when the hosts were read; then the deployments the server recorded.
//! `POST /projects/<p>/rollback` (deployers): without `confirm`, a confirmation page naming
//! the exact release each host would go to; with it, the rollback itself — the API's, so the
//! same engine as `hoist rollback` — and each host's outcome.
//!
//! The hosts are read by [`crate::api::read_deployments`] and rolled back by
//! [`crate::api::rollback_environment`]: this page only shows what they return.

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use chrono::{DateTime, Utc};
use hoist_store::Role;
use minijinja::{context, Value};
use serde::Deserialize;
use serde_json::Value as Json;

use super::{ansi, not_found, render, when, App, Form, PageError, Reader};
use crate::runner::checkout;
use crate::state::AppState;

/// How many of the recorded deployments the page lists.
const HISTORY: usize = 50;

#[derive(Deserialize)]
pub(crate) struct Fresh {
    fresh: Option<String>,
}

fn time_of(value: &Json) -> Option<DateTime<Utc>> {
    value
        .as_str()
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.with_timezone(&Utc))
}

fn short(commit: &str) -> String {
    commit.chars().take(8).collect()
}

/// The first line of each commit's message, from the project's mirror (empty when unknown).
async fn messages(app: &AppState, project: &str, commits: Vec<String>) -> HashMap<String, String> {
    let mirror = app
        .config
        .data_dir
        .join("mirrors")
        .join(format!("{project}.git"));
    tokio::task::spawn_blocking(move || {
        commits
            .into_iter()
            .map(|c| {
                let (message, _) = checkout::describe(&mirror, &c);
                let title = message.lines().next().unwrap_or("").to_string();
                (c, title)
            })
            .collect()
    })
    .await
    .unwrap_or_default()
}

/// One host's row of the grid, marked drifted as `agreement` says.
fn host_row(host: &Json, agreement: &Agreement, titles: &HashMap<String, String>) -> Value {
    let live = &host["live"];
    let id = live["id"].as_str();
    let commit = live["commit"].as_str().unwrap_or("");
    let recorded = &host["recorded"];
    context! {
        host => host["host"].as_str(),
        root => host["root"].as_str(),
        live => id,
        drift => agreement.drifted(id),
        commit => short(commit),
        dirty => live["dirty"].as_bool().unwrap_or(false),
        title => titles.get(commit).cloned().unwrap_or_default(),
        who => live["who"].as_str(),
        created => when(time_of(&live["created"])),
        state => live["state"].as_str(),
        target => host["rollback_target"].as_str(),
        missing => host["missing"].as_array().map(|m| m.iter().filter_map(Json::as_str).collect::<Vec<_>>()).unwrap_or_default(),
        lock => host["lock"].is_object().then(|| format!(
            "{}@{}{}{}",
            host["lock"]["user"].as_str().unwrap_or("someone"),
            host["lock"]["host"].as_str().unwrap_or("?"),
            host["lock"]["message"].as_str().map(|m| format!(": {m}")).unwrap_or_default(),
            if host["lock_stale"].as_bool().unwrap_or(false) { " (stale)" } else { "" },
        )),
        recorded => recorded.is_object().then(|| context! {
            outcome => recorded["outcome"].as_str(),
            who => recorded["who"].as_str(),
            run => recorded["run"].as_i64(),
            at => when(time_of(&recorded["at"])),
        }),
    }
}

/// Whether an environment's hosts serve the same release.
#[derive(Debug, PartialEq)]
enum Agreement {
    /// Every host serves the same release (or nothing).
    Same,
    /// Most hosts serve this release (`None`: nothing); the others are marked as drifted.
    Majority(Option<String>),
    /// No release is served by more hosts than every other: every host is marked.
    Split,
}

impl Agreement {
    fn of(hosts: &[Json]) -> Agreement {
        let lives: Vec<Option<&str>> = hosts.iter().map(|h| h["live"]["id"].as_str()).collect();
        if lives.windows(2).all(|w| w[0] == w[1]) {
            return Agreement::Same;
        }
        let mut counts: Vec<(Option<&str>, usize)> = Vec::new();
        for live in &lives {
            match counts.iter_mut().find(|(l, _)| l == live) {
                Some((_, n)) => *n += 1,
                None => counts.push((*live, 1)),
            }
        }
        let best = counts.iter().map(|(_, n)| *n).max().unwrap_or(0);
        let mut leaders = counts.into_iter().filter(|(_, n)| *n == best);
        match (leaders.next(), leaders.next()) {
            (Some((live, _)), None) => Agreement::Majority(live.map(str::to_string)),
            _ => Agreement::Split,
        }
    }

    /// Whether a host serving `live` is marked as drifted.
    fn drifted(&self, live: Option<&str>) -> bool {
        match self {
            Agreement::Same => false,
            Agreement::Majority(majority) => majority.as_deref() != live,
            Agreement::Split => true,
        }
    }
}

/// Each environment of a read as the templates show it.
fn environments(body: &Json, titles: &HashMap<String, String>) -> Vec<Value> {
    let empty = Vec::new();
    body["environments"]
        .as_array()
        .unwrap_or(&empty)
        .iter()
        .map(|env| {
            let hosts = env["hosts"].as_array().unwrap_or(&empty);
            let agreement = Agreement::of(hosts);
            let mut targets: Vec<&str> = hosts
                .iter()
                .filter_map(|h| h["rollback_target"].as_str())
                .collect();
            targets.dedup();
            let mut drift: Vec<String> = env["drift"]
                .as_array()
                .unwrap_or(&empty)
                .iter()
                .filter_map(|d| d.as_str().map(str::to_string))
                .collect();
            if targets.len() > 1 {
                drift.push(format!(
                    "the hosts do not agree on the rollback target: {}",
                    hosts
                        .iter()
                        .map(|h| format!(
                            "{} -> {}",
                            h["host"].as_str().unwrap_or("?"),
                            h["rollback_target"].as_str().unwrap_or("none")
                        ))
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
            }
            context! {
                name => env["name"].as_str(),
                error => env["error"].as_str(),
                hosts => hosts.iter().map(|h| host_row(h, &agreement, titles)).collect::<Vec<_>>(),
                unreachable => env["unreachable"].as_array().unwrap_or(&empty).iter().map(|u| context! {
                    host => u["host"].as_str(),
                    error => u["error"].as_str(),
                }).collect::<Vec<_>>(),
                drift => drift,
                can_roll_back => hosts.iter().any(|h| h["rollback_target"].is_string()),
            }
        })
        .collect()
}

/// The deploys, rollbacks and failures in the hosts' journals, newest first; one event written
/// alike on several hosts of an environment (one deploy or rollback) is one row naming them.
fn journal_history(body: &Json) -> Vec<Value> {
    struct Row<'a> {
        at: Option<DateTime<Utc>>,
        environment: &'a str,
        hosts: Vec<&'a str>,
        /// How many hosts the environment has (read).
        of: usize,
        entry: &'a Json,
        live_everywhere: bool,
    }
    let mut rows: Vec<Row> = Vec::new();
    for env in body["environments"].as_array().into_iter().flatten() {
        let environment = env["name"].as_str().unwrap_or("");
        let hosts = env["hosts"].as_array().map_or(&[][..], Vec::as_slice);
        for host in hosts {
            let name = host["host"].as_str().unwrap_or("?");
            for entry in host["journal"].as_array().into_iter().flatten() {
                let same = |r: &Row| {
                    r.environment == environment
                        && r.entry["event"] == entry["event"]
                        && r.entry["release"] == entry["release"]
                        && r.entry["to"] == entry["to"]
                        && r.entry["from"] == entry["from"]
                        && r.entry["who"] == entry["who"]
                };
                if let Some(row) = rows.iter_mut().find(|r| same(r)) {
                    if !row.hosts.contains(&name) {
                        row.hosts.push(name);
                    }
                    continue;
                }
                let release = entry["release"].as_str().or(entry["to"].as_str());
                rows.push(Row {
                    at: time_of(&entry["ts"]),
                    environment,
                    hosts: vec![name],
                    of: hosts.len(),
                    entry,
                    live_everywhere: hosts.iter().all(|h| h["live"]["id"].as_str() == release),
                });
            }
        }
    }
    rows.sort_by_key(|r| std::cmp::Reverse(r.at));
    // Whether a release can still be rolled back to is decided by its newest event: pruned,
    // rolled away from or failed, it cannot (the engine would refuse it anyway).
    let mut decided: Vec<&str> = Vec::new();
    let mut shown = Vec::new();
    for r in &rows {
        let event = r.entry["event"].as_str().unwrap_or("");
        let release = r.entry["release"].as_str().or(r.entry["to"].as_str());
        let good = matches!(
            event,
            "deploy_succeeded" | "rolled_back" | "adopted" | "marked_good"
        );
        let returnable = good && release.is_some_and(|id| !decided.contains(&id));
        decided.extend(release);
        if event == "rolled_back" {
            decided.extend(r.entry["from"].as_str());
        }
        if event == "pruned" {
            continue;
        }
        let detail = match event {
            "deploy_failed" => Some(format!(
                "{}: {}",
                r.entry["stage"].as_str().unwrap_or(""),
                r.entry["reason"].as_str().unwrap_or("")
            )),
            "rolled_back" | "rollback_failed" | "rollback_interrupted" => Some(format!(
                "from {}{}",
                r.entry["from"].as_str().unwrap_or("?"),
                r.entry["reason"]
                    .as_str()
                    .map(|why| format!(": {why}"))
                    .unwrap_or_default()
            )),
            _ => None,
        };
        shown.push(context! {
            at => when(r.at),
            environment => r.environment,
            hosts => r.hosts.join(", "),
            event => event.replace('_', " "),
            release => release,
            good => good,
            // Only a release every host of the environment has: the engine refuses others.
            can_return => returnable && !r.live_everywhere && r.hosts.len() == r.of,
            who => r.entry["who"].as_str(),
            detail => detail,
        });
    }
    shown
}

/// The commits of every live release of a read.
fn live_commits(body: &Json) -> Vec<String> {
    let mut commits: Vec<String> = body["environments"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|e| e["hosts"].as_array().into_iter().flatten())
        .filter_map(|h| h["live"]["commit"].as_str().map(str::to_string))
        .collect();
    commits.sort();
    commits.dedup();
    commits
}

pub(crate) async fn page(
    State(app): App,
    reader: Reader,
    Path(project): Path<String>,
    Query(fresh): Query<Fresh>,
) -> Result<Response, PageError> {
    if app.project(&project).is_none() {
        return Err(not_found(format!("no project named {project:?}")));
    }
    let body =
        crate::api::read_deployments(&app, &project, fresh.fresh.is_some_and(|f| !f.is_empty()))
            .await?;
    let titles = messages(&app, &project, live_commits(&body)).await;
    let history: Vec<Value> = app
        .store
        .deployments(&project)
        .await?
        .iter()
        .take(HISTORY)
        .map(|d| {
            context! {
                at => when(Some(d.at)),
                environment => d.environment,
                host => d.host,
                release => d.release,
                outcome => d.outcome,
                good => matches!(d.outcome.as_str(), "live" | "rolled_back"),
                who => d.who,
                run => d.run,
                detail => d.detail,
            }
        })
        .collect();
    Ok(render(
        "deployments.html",
        context! {
            me => reader.context(),
            project => project,
            read_at => when(time_of(&body["read_at"])),
            cached => body["cached"].as_bool().unwrap_or(false),
            config_commit => short(body["config_commit"].as_str().unwrap_or("")),
            environments => environments(&body, &titles),
            journal => journal_history(&body),
            recorded => history,
        },
    ))
}

/// The Roll back button's form: the confirmation page, or (`confirm=yes`) the rollback.
pub(crate) async fn rollback(
    State(app): App,
    reader: Reader,
    Path(project): Path<String>,
    body: Bytes,
) -> Result<Response, PageError> {
    let form = Form::parse(&body);
    reader.check_form(&form, Role::Deployer)?;
    if app.project(&project).is_none() {
        return Err(not_found(format!("no project named {project:?}")));
    }
    let environment = form
        .get("environment")
        .filter(|e| !e.is_empty())
        .map(str::to_string);
    let to = form.get("to").filter(|t| !t.is_empty()).map(str::to_string);
    if form.get("confirm") == Some("yes") {
        return execute(app, &reader, &project, environment, to).await;
    }
    confirm(&app, &reader, &project, environment, to).await
}

/// What each host would go to, read from the hosts now; a Confirm button only when every host
/// was read and all go to the same release.
async fn confirm(
    app: &AppState,
    reader: &Reader,
    project: &str,
    environment: Option<String>,
    to: Option<String>,
) -> Result<Response, PageError> {
    let body = crate::api::read_deployments(app, project, true).await?;
    let env = body["environments"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|e| environment.is_none() || e["name"].as_str() == environment.as_deref())
        .cloned()
        .ok_or_else(|| {
            PageError(
                StatusCode::UNPROCESSABLE_ENTITY,
                format!("{project} has no environment {environment:?}"),
            )
        })?;
    let mut problems = Vec::new();
    if let Some(error) = env["error"].as_str() {
        problems.push(error.to_string());
    }
    for u in env["unreachable"].as_array().into_iter().flatten() {
        problems.push(format!(
            "{} cannot be reached: {}",
            u["host"].as_str().unwrap_or("?"),
            u["error"].as_str().unwrap_or("")
        ));
    }
    let mut rows = Vec::new();
    let mut targets: Vec<String> = Vec::new();
    for host in env["hosts"].as_array().into_iter().flatten() {
        let name = host["host"].as_str().unwrap_or("?");
        let live = host["live"]["id"].as_str();
        let target = to
            .clone()
            .or_else(|| host["rollback_target"].as_str().map(str::to_string));
        match (&live, &target) {
            (None, _) => problems.push(format!("{name}: nothing is deployed there yet")),
            (Some(_), None) => problems.push(format!(
                "{name}: no release to roll back to (no earlier good release is on the host)"
            )),
            (Some(live), Some(t)) if *live == t.as_str() => {
                problems.push(format!("{name}: {t} is already live there"));
            }
            _ => {}
        }
        if let Some(t) = &target {
            if !targets.contains(t) {
                targets.push(t.clone());
            }
        }
        rows.push(context! { host => name, live => live, target => target });
    }
    if targets.len() > 1 {
        problems.push(format!(
            "the hosts do not agree on the rollback target ({}): pick a release every host has",
            targets.join(", ")
        ));
    }
    Ok(render(
        "rollback.html",
        context! {
            me => reader.context(),
            project => project,
            environment => env["name"].as_str(),
            hosts => rows,
            to => (targets.len() == 1 && problems.is_empty()).then(|| targets[0].clone()),
            problems => problems,
            read_at => when(time_of(&body["read_at"])),
        },
    ))
}

/// The rollback, as the API does it. The page streams: each host's steps appear as the engine
/// reports them (plain HTML arriving over one response, so no script is needed), then each
/// host's outcome. The rollback goes on to its end if the reader leaves the page.
async fn execute(
    app: Arc<AppState>,
    reader: &Reader,
    project: &str,
    environment: Option<String>,
    to: Option<String>,
) -> Result<Response, PageError> {
    let page = render_page(
        "rolling_back.html",
        context! {
            me => reader.context(),
            project => project,
            environment => environment,
            to => to,
        },
    )?;
    let mut parts = page.splitn(3, MARK);
    let (head, middle, tail) = (
        parts.next().unwrap_or_default().to_string(),
        parts.next().unwrap_or_default().to_string(),
        parts.next().unwrap_or_default().to_string(),
    );
    let (sender, receiver) = tokio::sync::mpsc::unbounded_channel::<String>();
    let progress_sender = sender.clone();
    let progress: crate::deployments::Progress = Box::new(move |event| {
        if let Some(line) = progress_line(&event) {
            let _ = progress_sender.send(format!("<li>{}</li>\n", ansi::to_html(&line)));
        }
    });
    let (who, project) = (format!("user {}", reader.name), project.to_string());
    let asked_env = environment.clone();
    tokio::spawn(async move {
        let outcome =
            crate::api::rollback_environment(&app, &project, environment, to, &who, progress).await;
        let row = |h: &hoist_deploy::HostOutcome| {
            context! {
                host => h.host,
                previous => h.previous,
                release => h.release,
                result => h.result.describe(),
                ok => h.result == hoist_deploy::HostResult::Live,
                detail => h.detail,
            }
        };
        let context = match outcome {
            Ok(Ok((environment, report))) => context! {
                project => project,
                environment => environment,
                to => report.to.to_string(),
                millis => report.elapsed.as_millis(),
                hosts => report.hosts.iter().map(row).collect::<Vec<_>>(),
            },
            Ok(Err((_, e))) => context! {
                project => project,
                environment => asked_env,
                error => e.message,
                hints => e.hints,
                hosts => e.hosts.iter().map(row).collect::<Vec<_>>(),
            },
            Err(e) => context! {
                project => project,
                environment => asked_env,
                error => e.1,
            },
        };
        let outcome = render_page("rollback_outcome.html", context)
            .unwrap_or_else(|e| format!("<p class=\"error\">{}</p>", ansi::to_html(&e.1)));
        let _ = sender.send(format!("{middle}{outcome}"));
    });
    let body = Chunks {
        head: Some(head),
        lines: receiver,
        tail: Some(tail),
    };
    Ok((super::page_headers(), Html(Body::from_stream(body))).into_response())
}

/// Where the streamed page's parts are cut.
const MARK: &str = "<!--hoist:progress-->";

/// A template rendered to a string (for a page sent in parts).
fn render_page(template: &str, context: Value) -> Result<String, PageError> {
    super::TEMPLATES
        .get_template(template)
        .and_then(|t| t.render(context))
        .map_err(|e| {
            PageError(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("the page {template} could not be rendered: {e}"),
            )
        })
}

/// One line of progress for a person: a host's step started, done or failed, or a warning.
fn progress_line(event: &hoist_deploy::Event) -> Option<String> {
    use hoist_deploy::{Event, StepStatus};
    match event {
        Event::Step {
            host,
            step,
            status,
            detail,
            ..
        } => {
            let status = match status {
                StepStatus::Started => "…",
                StepStatus::Done => "✓",
                StepStatus::Failed => "✗",
            };
            let detail = detail
                .as_ref()
                .map(|d| format!(": {d}"))
                .unwrap_or_default();
            Some(format!("{host}: {status} {}{detail}", step.name()))
        }
        Event::Warning { host, message } => Some(format!("{host}: ⚠ {message}")),
        _ => None,
    }
}

/// The streamed page: its head, a line per engine event, then the outcome and the page's end.
struct Chunks {
    head: Option<String>,
    lines: tokio::sync::mpsc::UnboundedReceiver<String>,
    tail: Option<String>,
}

impl futures_core::Stream for Chunks {
    type Item = Result<String, std::convert::Infallible>;

    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        use std::task::Poll;
        if let Some(head) = self.head.take() {
            return Poll::Ready(Some(Ok(head)));
        }
        match self.lines.poll_recv(cx) {
            Poll::Ready(Some(line)) => Poll::Ready(Some(Ok(line))),
            Poll::Ready(None) => Poll::Ready(self.tail.take().map(Ok)),
            Poll::Pending => Poll::Pending,
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::Agreement;

    fn of(lives: &[Option<&str>]) -> Agreement {
        let hosts: Vec<serde_json::Value> = lives
            .iter()
            .map(|l| json!({ "live": l.map(|id| json!({ "id": id })) }))
            .collect();
        Agreement::of(&hosts)
    }

    #[test]
    fn hosts_off_the_majority_release_are_drifted_and_a_split_marks_every_host() {
        assert_eq!(of(&[Some("a"), Some("a")]), Agreement::Same);
        let most = of(&[Some("a"), Some("b"), Some("a")]);
        assert_eq!(most, Agreement::Majority(Some("a".into())));
        assert!(most.drifted(Some("b")) && !most.drifted(Some("a")));
        let nothing = of(&[None, Some("b"), None]);
        assert_eq!(nothing, Agreement::Majority(None));
        assert!(nothing.drifted(Some("b")) && !nothing.drifted(None));
        let split = of(&[Some("a"), Some("b")]);
        assert_eq!(split, Agreement::Split);
        assert!(split.drifted(Some("a")) && split.drifted(Some("b")));
    }
}
