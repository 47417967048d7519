//! `hoist serve`: push-to-deploy without a hosted CI.
//!
//! [`config`] reads `hoist-server.toml`; [`start`] opens the store, marks the runs a killed
//! server left `running` as `interrupted` (and stops the processes they left), binds the HTTP
//! server ([`http`]: webhooks and the API) and starts the runners ([`runner`]), which claim
//! queued runs and run their pipelines with the same engine as `hoist ci run`.
//! [`serve_until_signal`] is the whole of `hoist serve`: it runs until SIGTERM or Ctrl-C, then
//! stops accepting, lets running runs finish within the grace period, cancels the rest.

pub mod admin;
mod api;
pub mod config;
pub mod deployments;
pub mod http;
mod pages;
pub mod runner;
mod state;
pub mod webhook;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use hoist_store::{Backend, Store, StoreError};
use tokio::sync::{watch, Notify};

pub use config::{ProjectConfig, SecretSource, ServerConfig};
pub use hoist_store::Role;
pub use state::AppState;

use runner::{Phase, Runners};

/// Why the server cannot start or stopped badly.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// Jobs would run as root without `allow_root`.
    #[error(
        "hoist serve runs pipelines (the repositories' own code) and refuses to run them as root"
    )]
    Root,
    /// `[runner] user` cannot be switched to.
    #[error("[runner] user {user:?}: {message}")]
    RunnerUser {
        /// The configured user.
        user: String,
        /// What is wrong.
        message: String,
    },
    /// A project's webhook secret cannot be read.
    #[error("project {project:?}: {message}")]
    Secret {
        /// The project.
        project: String,
        /// What is wrong.
        message: String,
    },
    /// The data dir cannot be created.
    #[error("cannot create the data dir {path}: {source}")]
    DataDir {
        /// Where.
        path: std::path::PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// `--runner-only` on a SQLite store, which one process owns.
    #[error("--runner-only needs a PostgreSQL store shared with a server; this one is SQLite, which one process owns")]
    RunnerOnlySqlite,
    /// The listen address cannot be bound.
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// Anything else (the runtime, a signal handler).
    #[error("{0}")]
    Other(String),
}

impl ServerError {
    /// How to fix it.
    #[must_use]
    pub fn hint(&self) -> Option<String> {
        match self {
            ServerError::Root => Some("set [runner] user = \"NAME\" in hoist-server.toml (an unprivileged user the jobs run as; the server, as root, switches to it), run the server as an unprivileged user, or set allow_root = true if this machine is only for it".into()),
            ServerError::RunnerUser { .. } => Some("create the user (`useradd --system --create-home hoist-ci`) and start hoist serve as root, which switches to it for every job; or remove [runner] user to run jobs as the server's own user".into()),
            ServerError::Secret { .. } => Some("export the variable named by secret_env, or make the secret_file readable".into()),
            ServerError::DataDir { .. } => Some("set data_dir in hoist-server.toml to a writable directory".into()),
            ServerError::Listen { .. } => Some("another process may hold the port: set listen = \"127.0.0.1:PORT\"".into()),
            ServerError::RunnerOnlySqlite => Some("set database = \"postgres://USER@HOST/DB\" in hoist-server.toml, the same as the server's".into()),
            ServerError::Store(_) => None,
            ServerError::Other(_) => None,
        }
    }
}

/// Reads every project's webhook secret. A secret read from the environment is removed from
/// it, so that no job the server starts can read it.
///
/// # Errors
///
/// [`ServerError::Secret`] when one is missing or empty.
pub fn read_secrets(config: &ServerConfig) -> Result<HashMap<String, String>, ServerError> {
    let mut secrets = HashMap::new();
    for project in &config.projects {
        let fail = |message: String| ServerError::Secret {
            project: project.name.clone(),
            message,
        };
        let secret = match &project.secret {
            SecretSource::Env(name) => {
                let value = std::env::var(name).map_err(|_| {
                    fail(format!(
                        "the environment variable {name} (secret_env) is not set"
                    ))
                })?;
                std::env::remove_var(name);
                value
            }
            SecretSource::File(path) => std::fs::read_to_string(path)
                .map_err(|e| fail(format!("cannot read secret_file {}: {e}", path.display())))?
                .trim_end_matches(['\n', '\r'])
                .to_string(),
        };
        if secret.is_empty() {
            return Err(fail("the webhook secret is empty".into()));
        }
        secrets.insert(project.name.clone(), secret);
    }
    Ok(secrets)
}

/// Opens the store the config names (creating the data dir first).
///
/// # Errors
///
/// When the data dir cannot be created or the store opened.
pub async fn open_store(config: &ServerConfig) -> Result<Arc<dyn Store>, ServerError> {
    std::fs::create_dir_all(&config.data_dir).map_err(|source| ServerError::DataDir {
        path: config.data_dir.clone(),
        source,
    })?;
    Ok(hoist_store::open(&config.database).await?)
}

/// What a started process does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Serve HTTP (webhooks, the API) and run jobs.
    Full,
    /// Run jobs only, from a PostgreSQL store shared with a server (`--runner-only`).
    RunnerOnly,
}

/// A server started by [`start`]: its address, and the way to stop it.
pub struct RunningServer {
    addr: Option<SocketAddr>,
    app: Arc<AppState>,
    phase: watch::Sender<Phase>,
    http: tokio::task::JoinHandle<std::io::Result<()>>,
    stop_http: Arc<Notify>,
    runners: Vec<tokio::task::JoinHandle<()>>,
    /// The runs found `running` at start, now `interrupted`.
    pub interrupted: Vec<hoist_store::RunId>,
}

impl RunningServer {
    /// The address it listens on.
    ///
    /// # Panics
    ///
    /// For a `--runner-only` replica, which listens nowhere (see [`RunningServer::listening`]).
    #[must_use]
    pub fn addr(&self) -> SocketAddr {
        self.addr.expect("a runner-only replica listens nowhere")
    }

    /// The address it listens on; `None` for a `--runner-only` replica.
    #[must_use]
    pub fn listening(&self) -> Option<SocketAddr> {
        self.addr
    }

    /// Where its mirrors and runs are.
    #[must_use]
    pub fn data_dir(&self) -> &std::path::Path {
        &self.app.config.data_dir
    }

    /// Its store.
    #[must_use]
    pub fn store(&self) -> Arc<dyn Store> {
        Arc::clone(&self.app.store)
    }

    /// Stops accepting requests and claiming runs; running runs have `grace` to finish, then
    /// are cancelled (their processes killed) and marked `cancelled`. Returns once all is over.
    ///
    /// # Errors
    ///
    /// When the HTTP server failed.
    pub async fn shutdown(self, grace: std::time::Duration) -> Result<(), ServerError> {
        self.stop_http.notify_one();
        let _ = self.phase.send(Phase::Draining);
        let mut runners = self.runners;
        let all = futures_join(&mut runners);
        if tokio::time::timeout(grace, all).await.is_err() {
            let _ = self.phase.send(Phase::Cancelling);
            futures_join(&mut runners).await;
        }
        match self.http.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(ServerError::Other(format!("the HTTP server failed: {e}"))),
            Err(e) => Err(ServerError::Other(e.to_string())),
        }
    }
}

async fn futures_join(handles: &mut Vec<tokio::task::JoinHandle<()>>) {
    for handle in handles.iter_mut() {
        let _ = handle.await;
    }
    handles.clear();
}

/// Starts the server: checks it may run, reads the secrets, opens the store, interrupts what a
/// killed server left running (and kills the processes it left), listens, starts the runners.
///
/// # Errors
///
/// Any [`ServerError`]; nothing is listening then.
pub async fn start(config: ServerConfig) -> Result<RunningServer, ServerError> {
    start_as(config, Mode::Full).await
}

/// [`start`], as a full server or as a `--runner-only` replica: no HTTP, no webhook secrets
/// read, no polling; only runners claiming from the shared PostgreSQL store.
///
/// # Errors
///
/// Any [`ServerError`]; [`ServerError::RunnerOnlySqlite`] for a runner-only replica of a
/// SQLite store.
pub async fn start_as(config: ServerConfig, mode: Mode) -> Result<RunningServer, ServerError> {
    let job_user = job_user(&config)?;
    let jobs_as_root = job_user.as_ref().map_or_else(
        || rustix::process::geteuid().is_root(),
        runner::job_user::JobUser::is_root,
    );
    if jobs_as_root && !config.allow_root {
        return Err(ServerError::Root);
    }
    if mode == Mode::RunnerOnly && !config.database.starts_with("postgres") {
        return Err(ServerError::RunnerOnlySqlite);
    }
    let secrets = match mode {
        Mode::Full => read_secrets(&config)?,
        Mode::RunnerOnly => HashMap::new(),
    };
    let store = open_store(&config).await?;
    if let Some(user) = &job_user {
        let other = |message: String| ServerError::RunnerUser {
            user: user.name.clone(),
            message,
        };
        runner::job_user::close_data_dir(&config.data_dir).map_err(other)?;
        runner::job_user::close_sqlite_file(&config.database).map_err(other)?;
        user.own_dir(&config.data_dir.join("cache"), true)
            .map_err(other)?;
    }
    // The store has read its password: no job the server starts may.
    std::env::remove_var("PGPASSWORD");
    // Every process the runners start carries this mark (see runner::strays).
    std::env::set_var(
        runner::strays::OWNER_VAR,
        runner::strays::owner_mark(&config.data_dir),
    );
    // A run's deploy step (`hoist deploy`) waits this long for a host lock another deploy holds.
    std::env::set_var(
        LOCK_WAIT_VAR,
        format!("{}s", config.deploy_lock_wait.as_secs().max(1)),
    );
    let interrupted = match store.backend() {
        // One process owns a SQLite store: whatever is `running` was left by a killed server.
        Backend::Sqlite => store.interrupt_stale(std::time::Duration::ZERO).await?,
        // Other servers may be running runs: only those whose runner went quiet.
        Backend::Postgres => {
            store
                .interrupt_stale(std::time::Duration::from_secs(60))
                .await?
        }
    };
    let data_dir = config.data_dir.clone();
    tokio::task::spawn_blocking(move || runner::strays::reap(&data_dir))
        .await
        .map_err(|e| ServerError::Other(e.to_string()))?;
    for project in &config.projects {
        store.ensure_project(&project.name).await?;
    }
    let listener = match mode {
        Mode::Full => Some(listen(config.listen).map_err(|source| ServerError::Listen {
            addr: config.listen,
            source,
        })?),
        Mode::RunnerOnly => None,
    };
    let addr = listener
        .as_ref()
        .map(tokio::net::TcpListener::local_addr)
        .transpose()
        .map_err(|e| ServerError::Other(e.to_string()))?;
    let mut config = config;
    if let Some(addr) = addr {
        if config.public_url == format!("http://{}", config.listen) {
            config.public_url = format!("http://{addr}");
        }
    }
    let app = Arc::new(AppState {
        store,
        config,
        secrets,
        queued: Notify::new(),
        deployments: deployments::Cache::default(),
    });
    let stop_http = Arc::new(Notify::new());
    let stop = Arc::clone(&stop_http);
    let http = match listener {
        Some(listener) => {
            let router = http::router(Arc::clone(&app));
            tokio::spawn(async move {
                axum::serve(listener, router)
                    .with_graceful_shutdown(async move { stop.notified().await })
                    .await
            })
        }
        None => tokio::spawn(async move {
            stop.notified().await;
            Ok(())
        }),
    };
    let (phase, phase_rx) = watch::channel(Phase::Running);
    let runners = Runners::new(Arc::clone(&app), job_user).spawn(&phase_rx, mode == Mode::Full);
    Ok(RunningServer {
        addr,
        app,
        phase,
        http,
        stop_http,
        runners,
        interrupted,
    })
}

/// `[runner] user`, looked up; refused when this process cannot switch to it.
fn job_user(config: &ServerConfig) -> Result<Option<runner::job_user::JobUser>, ServerError> {
    let Some(name) = &config.runner_user else {
        return Ok(None);
    };
    let fail = |message: String| ServerError::RunnerUser {
        user: name.clone(),
        message,
    };
    let user = runner::job_user::JobUser::lookup(name).map_err(fail)?;
    let me = rustix::process::geteuid();
    if !me.is_root() && me.as_raw() != user.uid {
        return Err(fail(format!(
            "only root can run jobs as another user, and the server runs as uid {}",
            me.as_raw()
        )));
    }
    Ok(Some(user))
}

/// The variable `hoist deploy` reads its `--lock-wait` from.
pub const LOCK_WAIT_VAR: &str = "HOIST_LOCK_WAIT";

/// How many connections may wait to be accepted. The default of the socket libraries (128)
/// overflows when a forge redelivers a burst: the dropped SYNs cost their senders a second.
const LISTEN_BACKLOG: u32 = 1024;

fn listen(addr: SocketAddr) -> std::io::Result<tokio::net::TcpListener> {
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(LISTEN_BACKLOG)
}

/// `hoist serve`: starts the server and runs it until SIGTERM or SIGINT, then shuts it down
/// within the config's grace period. `ready` is called once it listens.
///
/// # Errors
///
/// Any [`ServerError`] from [`start`] or the shutdown.
pub fn serve_until_signal(
    config: ServerConfig,
    mode: Mode,
    ready: impl FnOnce(&RunningServer),
) -> Result<(), ServerError> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| ServerError::Other(format!("cannot start the runtime: {e}")))?;
    runtime.block_on(async move {
        use tokio::signal::unix::{signal, SignalKind};
        let mut term = signal(SignalKind::terminate())
            .map_err(|e| ServerError::Other(format!("cannot handle SIGTERM: {e}")))?;
        let mut int = signal(SignalKind::interrupt())
            .map_err(|e| ServerError::Other(format!("cannot handle SIGINT: {e}")))?;
        let grace = config.shutdown_grace;
        let server = start_as(config, mode).await?;
        ready(&server);
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
        server.shutdown(grace).await
    })
}
