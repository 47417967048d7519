//! The dashboard: server-rendered HTML pages for people, signed in with the server's users.
//!
//! Templates and assets are compiled into the binary (`include_str!`); the pages read the same
//! store as the JSON API. Every page is readable with JavaScript off; a little plain JavaScript
//! (`assets/run.js`) streams a running run's log through a page-specific Server-Sent Events
//! endpoint and fetches earlier lines of a long log on demand.
//!
//! Sessions live in the store (hashed ids, 12 hours idle), so a restart signs no one out. Every
//! form POST carries the session's CSRF token; the sign-in form, before there is a session, a
//! double-submit token.

mod ansi;
mod artifacts;
mod deployments;
mod run;
mod runs;
mod session;
mod settings;
mod signin;
mod tests_tab;

use std::sync::{Arc, LazyLock};

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Extension, Router};
use chrono::{DateTime, Utc};
use hoist_store::{Role, StoreError};
use minijinja::{Environment, Value};

use crate::state::AppState;
pub(crate) use session::Sessions;

type App = axum::extract::State<Arc<AppState>>;

/// The dashboard's routes; mounted next to the API by [`crate::http::router`].
pub(crate) fn router() -> Router<Arc<AppState>> {
    Router::new()
        .route("/", get(runs::projects))
        .route("/signin", get(signin::form).post(signin::submit))
        .route("/signout", post(signin::signout))
        .route("/projects/{project}", get(runs::project_runs))
        .route("/projects/{project}/run", post(runs::start))
        .route("/projects/{project}/deployments", get(deployments::page))
        .route("/projects/{project}/rollback", post(deployments::rollback))
        .route("/runs/{id}", get(run::page))
        .route("/runs/{id}/lines", get(run::earlier_lines))
        .route("/runs/{id}/live", get(run::live))
        .route("/runs/{id}/cancel", post(run::cancel))
        .route("/runs/{id}/rerun", post(run::rerun))
        .route("/runs/{id}/tests", get(tests_tab::page))
        .route("/runs/{id}/artifacts", get(artifacts::page))
        .route("/runs/{id}/files/{*name}", get(artifacts::download))
        .route("/settings", get(settings::page))
        .route("/settings/users/add", post(settings::add_user))
        .route("/settings/users/role", post(settings::set_role))
        .route("/settings/users/remove", post(settings::remove_user))
        .route("/settings/tokens/create", post(settings::create_token))
        .route("/settings/tokens/revoke", post(settings::revoke_token))
        .route("/assets/{name}", get(asset))
        .layer(Extension(Arc::new(Sessions::default())))
}

pub(super) static TEMPLATES: LazyLock<Environment<'static>> = LazyLock::new(|| {
    let mut env = Environment::new();
    for (name, source) in [
        ("base.html", include_str!("templates/base.html")),
        ("signin.html", include_str!("templates/signin.html")),
        ("projects.html", include_str!("templates/projects.html")),
        ("runs.html", include_str!("templates/runs.html")),
        ("run.html", include_str!("templates/run.html")),
        ("tests.html", include_str!("templates/tests.html")),
        ("artifacts.html", include_str!("templates/artifacts.html")),
        ("error.html", include_str!("templates/error.html")),
        ("settings.html", include_str!("templates/settings.html")),
        (
            "deployments.html",
            include_str!("templates/deployments.html"),
        ),
        ("rollback.html", include_str!("templates/rollback.html")),
        (
            "rolling_back.html",
            include_str!("templates/rolling_back.html"),
        ),
        (
            "rollback_outcome.html",
            include_str!("templates/rollback_outcome.html"),
        ),
    ] {
        env.add_template(name, source)
            .unwrap_or_else(|e| panic!("template {name}: {e}"));
    }
    env
});

/// A page answer: the template rendered with `context`, with headers that forbid framing and
/// any script or style not served by the dashboard itself.
fn render(template: &str, context: Value) -> Response {
    match TEMPLATES
        .get_template(template)
        .and_then(|t| t.render(context))
    {
        Ok(html) => (page_headers(), Html(html)).into_response(),
        Err(e) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("the page {template} could not be rendered: {e}"),
        )
            .into_response(),
    }
}

pub(super) fn page_headers() -> [(header::HeaderName, &'static str); 4] {
    [
        (
            header::CONTENT_SECURITY_POLICY,
            "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; form-action 'self'",
        ),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::CACHE_CONTROL, "no-store"),
    ]
}

/// A page that says what went wrong, with its status.
pub(crate) struct PageError(StatusCode, String);

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let mut response = render(
            "error.html",
            minijinja::context! { status => self.0.as_u16(), message => self.1 },
        );
        *response.status_mut() = self.0;
        response
    }
}

impl From<crate::api::ApiError> for PageError {
    fn from(e: crate::api::ApiError) -> PageError {
        PageError(e.0, e.1)
    }
}

impl From<StoreError> for PageError {
    fn from(e: StoreError) -> PageError {
        PageError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string())
    }
}

fn not_found(what: String) -> PageError {
    PageError(StatusCode::NOT_FOUND, what)
}

/// The signed-in person of a page request; without a session, pages redirect to the sign-in.
pub(crate) struct Reader {
    name: String,
    role: Role,
    csrf: String,
}

impl FromRequestParts<Arc<AppState>> for Reader {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        app: &Arc<AppState>,
    ) -> Result<Reader, Response> {
        let sessions = parts
            .extensions
            .get::<Arc<Sessions>>()
            .cloned()
            .expect("the dashboard router adds its sessions");
        let to_signin = || {
            let next = parts
                .uri
                .path_and_query()
                .map_or("/", axum::http::uri::PathAndQuery::as_str);
            let query: String = form_urlencoded::Serializer::new(String::new())
                .append_pair("next", next)
                .finish();
            Redirect::to(&format!("/signin?{query}")).into_response()
        };
        let session = match session::cookie(&parts.headers, session::SESSION_COOKIE) {
            Some(id) => sessions
                .get(app.store.as_ref(), &id)
                .await
                .map_err(|e| PageError::from(e).into_response())?,
            None => None,
        };
        let Some(session) = session else {
            return Err(to_signin());
        };
        // The role is read again on every request: a changed or removed user takes effect now.
        let users = app
            .store
            .users()
            .await
            .map_err(|e| PageError::from(e).into_response())?;
        let Some(user) = users.into_iter().find(|u| u.name == session.user) else {
            return Err(to_signin());
        };
        Ok(Reader {
            name: user.name,
            role: user.role,
            csrf: session.csrf,
        })
    }
}

impl Reader {
    fn may(&self, role: Role) -> bool {
        self.role.allows(role)
    }

    /// Refuses a reader below `role`.
    fn require(&self, role: Role) -> Result<(), PageError> {
        if self.may(role) {
            Ok(())
        } else {
            Err(PageError(
                StatusCode::FORBIDDEN,
                format!("{} is a {}; this needs {role}", self.name, self.role),
            ))
        }
    }

    /// Refuses a form whose CSRF token is not this session's, and a reader below `role`.
    fn check_form(&self, form: &Form, role: Role) -> Result<(), PageError> {
        if !session::same_token(form.get("csrf").unwrap_or(""), &self.csrf) {
            return Err(PageError(
                StatusCode::FORBIDDEN,
                "the form's CSRF token is missing or stale: reload the page and try again".into(),
            ));
        }
        self.require(role)
    }

    /// What every template's header shows.
    fn context(&self) -> Value {
        minijinja::context! {
            name => self.name,
            role => self.role.as_str(),
            csrf => self.csrf,
            deployer => self.may(Role::Deployer),
            admin => self.may(Role::Admin),
        }
    }
}

/// A submitted `application/x-www-form-urlencoded` form.
pub(crate) struct Form(Vec<(String, String)>);

impl Form {
    fn parse(body: &[u8]) -> Form {
        Form(form_urlencoded::parse(body).into_owned().collect())
    }

    fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// `3 min ago`, with the absolute time for the `title`.
fn when(t: Option<DateTime<Utc>>) -> Value {
    let Some(t) = t else {
        return Value::from(());
    };
    let seconds = (Utc::now() - t).num_seconds().max(0);
    let relative = match seconds {
        0..=59 => format!("{seconds} s ago"),
        60..=3599 => format!("{} min ago", seconds / 60),
        3600..=86_399 => format!("{} h ago", seconds / 3600),
        _ => format!("{} d ago", seconds / 86_400),
    };
    minijinja::context! {
        relative => relative,
        absolute => t.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
        iso => t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
    }
}

/// `1.2 s`, `3 min 4 s`.
fn duration(d: Option<std::time::Duration>) -> Option<String> {
    let millis = d?.as_millis();
    Some(match millis {
        0..=999 => format!("{millis} ms"),
        1000..=59_999 => format!("{:.1} s", millis as f64 / 1000.0),
        _ => format!("{} min {} s", millis / 60_000, (millis / 1000) % 60),
    })
}

fn between(start: Option<DateTime<Utc>>, end: Option<DateTime<Utc>>) -> Option<String> {
    let (start, end) = (start?, end.unwrap_or_else(Utc::now));
    duration((end - start).to_std().ok())
}

async fn asset(axum::extract::Path(name): axum::extract::Path<String>) -> Response {
    let (body, content_type) = match name.as_str() {
        "style.css" => (include_str!("assets/style.css"), "text/css; charset=utf-8"),
        "run.js" => (
            include_str!("assets/run.js"),
            "text/javascript; charset=utf-8",
        ),
        _ => return StatusCode::NOT_FOUND.into_response(),
    };
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "max-age=300"),
        ],
        body,
    )
        .into_response()
}

/// The `Secure` attribute, when the public URL is https.
fn secure(app: &AppState) -> &'static str {
    if app.config.public_url.starts_with("https://") {
        "; Secure"
    } else {
        ""
    }
}
