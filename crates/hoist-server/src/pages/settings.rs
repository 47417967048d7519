//! `GET /settings` (admins): the server's users and API tokens; `POST /settings/...` adds a user,
//! changes a role, removes a user, creates a token (its secret shown once), revokes one. Each
//! change is in the audit log as `user NAME`, as the same change is from the command line.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use hoist_store::{NewAudit, Role, StoreError};
use minijinja::context;

use super::{render, when, App, Form, PageError, Reader};
use crate::state::AppState;

const ROLES: [&str; 3] = ["viewer", "deployer", "admin"];

/// A refused change, with what the admin typed wrong.
fn refused(e: StoreError) -> PageError {
    match e {
        StoreError::Exists { .. } | StoreError::NotFound { .. } | StoreError::Invalid { .. } => {
            PageError(StatusCode::BAD_REQUEST, e.to_string())
        }
        other => PageError::from(other),
    }
}

fn field<'f>(form: &'f Form, name: &str) -> Result<&'f str, PageError> {
    form.get(name)
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .ok_or_else(|| PageError(StatusCode::BAD_REQUEST, format!("the form has no {name}")))
}

fn role(form: &Form) -> Result<Role, PageError> {
    field(form, "role")?
        .parse::<Role>()
        .map_err(|e| PageError(StatusCode::BAD_REQUEST, e.to_string()))
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

/// The page, with a just-created token's secret when there is one.
async fn page_with(
    app: &AppState,
    reader: &Reader,
    created: Option<(String, String)>,
) -> Result<Response, PageError> {
    let users: Vec<_> = app
        .store
        .users()
        .await?
        .iter()
        .map(|u| context! { name => u.name, role => u.role.as_str(), added => when(Some(u.created_at)), me => u.name == reader.name })
        .collect();
    let tokens: Vec<_> = app
        .store
        .tokens()
        .await?
        .iter()
        .map(|t| context! { name => t.name, role => t.role.as_str(), by => t.created_by, added => when(Some(t.created_at)) })
        .collect();
    Ok(render(
        "settings.html",
        context! {
            me => reader.context(),
            users => users,
            tokens => tokens,
            roles => ROLES,
            created => created.map(|(name, secret)| context! { name => name, secret => secret }),
        },
    ))
}

pub(crate) async fn page(State(app): App, reader: Reader) -> Result<Response, PageError> {
    reader.require(Role::Admin)?;
    page_with(&app, &reader, None).await
}

pub(crate) async fn add_user(
    State(app): App,
    reader: Reader,
    body: Bytes,
) -> Result<Response, PageError> {
    let form = Form::parse(&body);
    reader.check_form(&form, Role::Admin)?;
    let (name, role, password) = (
        field(&form, "name")?,
        role(&form)?,
        field(&form, "password")?,
    );
    app.store
        .add_user(name, role, password)
        .await
        .map_err(refused)?;
    audit(
        &app,
        &reader,
        "user.add",
        format!("user {name}"),
        format!("role {role}"),
    )
    .await;
    Ok(Redirect::to("/settings").into_response())
}

/// Refuses an admin's change to their own account: the last admin must not lock everyone out.
fn not_self(reader: &Reader, name: &str) -> Result<(), PageError> {
    if name == reader.name {
        return Err(PageError(
            StatusCode::BAD_REQUEST,
            "you cannot change or remove your own user here: another admin can, or `hoist serve user` on the server".into(),
        ));
    }
    Ok(())
}

pub(crate) async fn set_role(
    State(app): App,
    reader: Reader,
    body: Bytes,
) -> Result<Response, PageError> {
    let form = Form::parse(&body);
    reader.check_form(&form, Role::Admin)?;
    let (name, role) = (field(&form, "name")?, role(&form)?);
    not_self(&reader, name)?;
    if !app.store.set_user_role(name, role).await.map_err(refused)? {
        return Err(PageError(StatusCode::NOT_FOUND, format!("no user {name}")));
    }
    audit(
        &app,
        &reader,
        "user.role",
        format!("user {name}"),
        format!("role {role}"),
    )
    .await;
    Ok(Redirect::to("/settings").into_response())
}

pub(crate) async fn remove_user(
    State(app): App,
    reader: Reader,
    body: Bytes,
) -> Result<Response, PageError> {
    let form = Form::parse(&body);
    reader.check_form(&form, Role::Admin)?;
    let name = field(&form, "name")?;
    not_self(&reader, name)?;
    if !app.store.remove_user(name).await.map_err(refused)? {
        return Err(PageError(StatusCode::NOT_FOUND, format!("no user {name}")));
    }
    audit(
        &app,
        &reader,
        "user.remove",
        format!("user {name}"),
        String::new(),
    )
    .await;
    Ok(Redirect::to("/settings").into_response())
}

/// Creates a token and answers with the page showing its secret, once (nothing can read it back).
pub(crate) async fn create_token(
    State(app): App,
    reader: Reader,
    body: Bytes,
) -> Result<Response, PageError> {
    let form = Form::parse(&body);
    reader.check_form(&form, Role::Admin)?;
    let (name, role) = (field(&form, "name")?, role(&form)?);
    let created = app
        .store
        .create_token(name, role, &format!("user {}", reader.name))
        .await
        .map_err(refused)?;
    audit(
        &app,
        &reader,
        "token.create",
        format!("token {name}"),
        format!("role {role}"),
    )
    .await;
    page_with(&app, &reader, Some((created.token.name, created.secret))).await
}

pub(crate) async fn revoke_token(
    State(app): App,
    reader: Reader,
    body: Bytes,
) -> Result<Response, PageError> {
    let form = Form::parse(&body);
    reader.check_form(&form, Role::Admin)?;
    let name = field(&form, "name")?;
    if !app.store.revoke_token(name).await.map_err(refused)? {
        return Err(PageError(StatusCode::NOT_FOUND, format!("no token {name}")));
    }
    audit(
        &app,
        &reader,
        "token.revoke",
        format!("token {name}"),
        String::new(),
    )
    .await;
    Ok(Redirect::to("/settings").into_response())
}
