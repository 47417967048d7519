//! The HTTP front: `POST /hooks/<project>` (webhooks) and the JSON API under `/api`.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use hoist_store::{DeliveryOutcome, NewDelivery, NewRun, Trigger, TriggerKind};
use serde_json::json;

use crate::state::AppState;
use crate::webhook::{parse_push, Envelope, Push, Refusal};

/// The largest webhook body accepted: GitHub's own maximum.
pub const MAX_WEBHOOK_BODY: usize = 25 * 1024 * 1024;

/// The header that carries the reason of a `204` (a `204` has no body).
pub const REASON_HEADER: &str = "hoist-reason";

/// The server's routes.
pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/hooks/{project}", post(hook))
        .layer(DefaultBodyLimit::max(MAX_WEBHOOK_BODY))
        .merge(crate::api::router())
        .merge(crate::pages::router())
        .with_state(state)
}

fn error(status: StatusCode, message: impl Into<String>) -> Response {
    (status, Json(json!({ "error": message.into() }))).into_response()
}

fn nothing_started(reason: String) -> Response {
    let mut response = StatusCode::NO_CONTENT.into_response();
    if let Ok(value) = HeaderValue::from_str(&reason) {
        response.headers_mut().insert(REASON_HEADER, value);
    }
    response
}

/// `POST /hooks/<project>`: a forge's delivery becomes a queued run, committed before `202`.
async fn hook(
    State(app): State<Arc<AppState>>,
    Path(project): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let Some(secret) = app.secrets.get(&project) else {
        return error(
            StatusCode::NOT_FOUND,
            format!("no project named {project:?}"),
        );
    };
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    let form_encoded = match content_type.as_str() {
        "application/json" => false,
        "application/x-www-form-urlencoded" => true,
        other => {
            return error(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                format!("content type {other:?}: send application/json or application/x-www-form-urlencoded"),
            )
        }
    };
    let body = match body {
        Ok(body) => body,
        Err(rejection) => {
            let status = rejection.status();
            let message = if status == StatusCode::PAYLOAD_TOO_LARGE {
                format!("the body is over {} MiB", MAX_WEBHOOK_BODY / (1024 * 1024))
            } else {
                format!("cannot read the body: {}", rejection.body_text())
            };
            return error(status, message);
        }
    };
    let envelope = match Envelope::from_headers(&headers) {
        Ok(envelope) => envelope,
        Err(refusal) => return error(StatusCode::BAD_REQUEST, refusal.to_string()),
    };
    if let Err(refusal) = envelope.verify(secret.as_bytes(), &body) {
        return error(StatusCode::UNAUTHORIZED, refusal.to_string());
    }
    if envelope.is_ping() {
        return (StatusCode::OK, Json(json!({ "pong": project }))).into_response();
    }
    if !envelope.is_push() {
        return nothing_started(format!("event {:?} starts no run", envelope.event));
    }
    let push = match parse_push(&body, form_encoded) {
        Ok(push) => push,
        Err(refusal @ Refusal::Payload(_)) => {
            return error(StatusCode::BAD_REQUEST, refusal.to_string())
        }
        Err(other) => return error(StatusCode::BAD_REQUEST, other.to_string()),
    };
    let Some(delivery_id) = envelope.delivery.clone().filter(|d| !d.is_empty()) else {
        return error(
            StatusCode::BAD_REQUEST,
            "the delivery has no delivery id header",
        );
    };
    let (branch, commit, message, author, pusher) = match push {
        Push::Tag { tag } => return nothing_started(format!("tag {tag}: tag pushes start no run")),
        Push::Deleted { branch } => return nothing_started(format!("branch {branch} was deleted")),
        Push::Branch {
            branch,
            commit,
            message,
            author,
            pusher,
        } => (branch, commit, message, author, pusher),
    };
    let Some(config) = app.project(&project) else {
        return error(
            StatusCode::NOT_FOUND,
            format!("no project named {project:?}"),
        );
    };
    if !config.builds_branch(&branch) {
        return nothing_started(format!(
            "branch {branch} is not built (branches = {:?})",
            config.branches
        ));
    }
    let run = NewRun {
        project: project.clone(),
        branch,
        commit,
        message,
        author,
        trigger: Trigger {
            kind: TriggerKind::Webhook,
            by: pusher,
        },
        auto_cancel: config.auto_cancel,
    };
    let delivery = NewDelivery {
        provider: envelope.provider.as_str().into(),
        delivery_id,
    };
    match app.store.record_delivery(&delivery, &run).await {
        Ok(DeliveryOutcome::Created(enqueued)) => {
            app.wake_runners();
            let mut cancelled = enqueued.cancelled;
            cancelled.extend(
                crate::runner::supersede_running(&app, config, &run.branch, enqueued.run).await,
            );
            (
                StatusCode::ACCEPTED,
                Json(json!({
                    "run": enqueued.run,
                    "url": app.run_url(enqueued.run),
                    "cancelled": cancelled,
                })),
            )
                .into_response()
        }
        Ok(DeliveryOutcome::Duplicate(run)) => (
            StatusCode::OK,
            Json(json!({ "run": run, "url": app.run_url(run), "duplicate": true })),
        )
            .into_response(),
        Err(e) => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("the delivery could not be stored: {e}"),
        ),
    }
}
