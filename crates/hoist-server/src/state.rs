//! What the HTTP handlers and the runners share.

use std::collections::HashMap;
use std::sync::Arc;

use hoist_store::{RunId, Store};
use tokio::sync::Notify;

use crate::config::{ProjectConfig, ServerConfig};

/// The server's shared state.
pub struct AppState {
    /// The store.
    pub store: Arc<dyn Store>,
    /// The configuration it started with.
    pub config: ServerConfig,
    /// Each project's webhook secret, read at start.
    pub secrets: HashMap<String, String>,
    /// Woken when a run is queued, so that an idle runner claims it at once.
    pub queued: Notify,
    /// The last read of each project's hosts (`GET /api/projects/<p>/deployments`).
    pub deployments: crate::deployments::Cache,
}

impl AppState {
    /// The project's configuration.
    #[must_use]
    pub fn project(&self, name: &str) -> Option<&ProjectConfig> {
        self.config.projects.iter().find(|p| p.name == name)
    }

    /// Where a client reads the run.
    #[must_use]
    pub fn run_url(&self, run: RunId) -> String {
        format!("{}/api/runs/{run}", self.config.public_url)
    }

    /// Tells idle runners that a run was queued.
    pub fn wake_runners(&self) {
        self.queued.notify_waiters();
    }
}
