//! `GET/POST /signin` and `POST /signout`.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Extension;
use hoist_store::NewAudit;
use minijinja::context;
use serde::Deserialize;

use super::session::{self, Sessions, SESSION_COOKIE, SIGNIN_COOKIE};
use super::{render, secure, App, Form, PageError};
use crate::state::AppState;

#[derive(Deserialize)]
pub(crate) struct Next {
    next: Option<String>,
}

/// Only a path of this site: never `//elsewhere` or `https://elsewhere`.
fn local(next: Option<&str>) -> String {
    match next {
        Some(n) if n.starts_with('/') && !n.starts_with("//") && !n.contains('\\') => n.into(),
        _ => "/".into(),
    }
}

fn form_page(
    app: &AppState,
    next: &str,
    user: &str,
    message: Option<String>,
    status: StatusCode,
) -> Result<Response, PageError> {
    let token = session::random_token()
        .map_err(|e| PageError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    let mut response = render(
        "signin.html",
        context! { next => next, user => user, message => message, csrf => token },
    );
    *response.status_mut() = status;
    let cookie = format!(
        "{SIGNIN_COOKIE}={token}; Path=/signin; HttpOnly; SameSite=Lax{}",
        secure(app)
    );
    response.headers_mut().append(
        header::SET_COOKIE,
        cookie.parse().expect("a cookie of hex is a header value"),
    );
    Ok(response)
}

pub(crate) async fn form(State(app): App, Query(q): Query<Next>) -> Result<Response, PageError> {
    form_page(&app, &local(q.next.as_deref()), "", None, StatusCode::OK)
}

pub(crate) async fn submit(
    State(app): App,
    Extension(sessions): Extension<Arc<Sessions>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, PageError> {
    let form = Form::parse(&body);
    let next = local(form.get("next"));
    let user = form.get("user").unwrap_or("").trim().to_string();
    let password = form.get("password").unwrap_or("");
    let expected = session::cookie(&headers, SIGNIN_COOKIE).unwrap_or_default();
    if !session::same_token(form.get("csrf").unwrap_or(""), &expected) {
        return form_page(
            &app,
            &next,
            &user,
            Some("The form expired or did not come from this site; sign in again.".into()),
            StatusCode::FORBIDDEN,
        );
    }
    if let Some(wait) = sessions.wait(&user) {
        return form_page(
            &app,
            &next,
            &user,
            Some(format!(
                "Too many failed sign-ins for {user}: try again in {} s.",
                wait.as_secs() + 1
            )),
            StatusCode::TOO_MANY_REQUESTS,
        );
    }
    let Some(found) = app.store.login(&user, password).await? else {
        sessions.failed(&user);
        let _ = app
            .store
            .audit(&NewAudit {
                who: format!("user {user}"),
                action: "signin.failed".into(),
                target: "dashboard".into(),
                detail: String::new(),
            })
            .await;
        return form_page(
            &app,
            &next,
            &user,
            Some("Wrong user name or password.".into()),
            StatusCode::UNAUTHORIZED,
        );
    };
    sessions.succeeded(&user);
    let id = sessions
        .create(app.store.as_ref(), &found.name)
        .await
        .map_err(|e| PageError(StatusCode::INTERNAL_SERVER_ERROR, e))?;
    let mut response = Redirect::to(&next).into_response();
    let cookie = format!(
        "{SESSION_COOKIE}={id}; Path=/; HttpOnly; SameSite=Lax{}",
        secure(&app)
    );
    response.headers_mut().append(
        header::SET_COOKIE,
        cookie.parse().expect("a cookie of hex is a header value"),
    );
    Ok(response)
}

/// Ends the session (the form carries its CSRF token, so no other site can sign anyone out).
pub(crate) async fn signout(
    State(app): App,
    Extension(sessions): Extension<Arc<Sessions>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let form = Form::parse(&body);
    if let Some(id) = session::cookie(&headers, SESSION_COOKIE) {
        let current = match sessions.get(app.store.as_ref(), &id).await {
            Ok(current) => current,
            Err(e) => return PageError::from(e).into_response(),
        };
        if let Some(current) = current {
            if !session::same_token(form.get("csrf").unwrap_or(""), &current.csrf) {
                return PageError(
                    StatusCode::FORBIDDEN,
                    "the form's CSRF token is missing or stale: reload the page and try again"
                        .into(),
                )
                .into_response();
            }
            if let Err(e) = sessions.remove(app.store.as_ref(), &id).await {
                return PageError::from(e).into_response();
            }
        }
    }
    let mut response = Redirect::to("/signin").into_response();
    let cookie = format!(
        "{SESSION_COOKIE}=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0{}",
        secure(&app)
    );
    response.headers_mut().append(
        header::SET_COOKIE,
        cookie.parse().expect("a fixed cookie is a header value"),
    );
    response
}
