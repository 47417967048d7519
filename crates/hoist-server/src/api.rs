//! The JSON API: `Authorization: Bearer <token>`; viewers read, deployers also trigger and
//! cancel. Every request that changes something is in the audit log.

use std::sync::Arc;

use axum::Router;

use crate::state::AppState;

pub(crate) fn router() -> Router<Arc<AppState>> {
    Router::new()
}
