//! `hoist-server.toml`: what the server listens on, where it keeps its data, which database it
//! uses, and the projects it builds. Every value is checked here; errors name the line.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use hoist_config::ConfigError;
use serde::Deserialize;
use toml::Spanned;

/// The name `hoist serve` looks for in the current directory.
pub const FILE_NAME: &str = "hoist-server.toml";

/// A valid `hoist-server.toml`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerConfig {
    /// The file it was read from.
    pub path: PathBuf,
    /// The address the HTTP server binds (`127.0.0.1:8080` unless told otherwise).
    pub listen: SocketAddr,
    /// The URL clients reach the server at (for the run URLs in webhook answers).
    pub public_url: String,
    /// Mirrors, run directories, artifacts and the CI cache store (absolute).
    pub data_dir: PathBuf,
    /// The store's URL (`sqlite://…` or `postgres://…`).
    pub database: String,
    /// How many runs execute at once.
    pub max_concurrent_runs: usize,
    /// How long finished runs are kept (directories and store rows).
    pub retention: Duration,
    /// How long SIGTERM waits for running runs before cancelling them.
    pub shutdown_grace: Duration,
    /// How long a run's deploy step waits for another deploy's lock on a host.
    pub deploy_lock_wait: Duration,
    /// Let jobs run as root (when the server runs as root and `[runner] user` is unset, or
    /// names root).
    pub allow_root: bool,
    /// `[runner] user`: the unprivileged user jobs run as (`None`: the server's own user).
    pub runner_user: Option<String>,
    /// The projects, in file order.
    pub projects: Vec<ProjectConfig>,
}

/// One `[[project]]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProjectConfig {
    /// Its name, in `/hooks/<name>` and the API.
    pub name: String,
    /// What `git clone` accepts: a URL or a path.
    pub repository: String,
    /// The path of its hoist.toml inside the repository.
    pub config: String,
    /// Where the webhook secret is read from.
    pub secret: SecretSource,
    /// `git ls-remote` every this long (`None`: webhooks only).
    pub poll: Option<Duration>,
    /// The branches whose pushes start runs (glob patterns, `*` any run of characters).
    pub branches: Vec<String>,
    /// The branches whose runs may deploy (`None`: what the pipeline's filters say).
    pub deploy_branches: Option<Vec<String>>,
    /// A newer push to a branch cancels that branch's queued runs.
    pub auto_cancel: bool,
    /// A newer push to a branch also cancels that branch's running run.
    pub auto_cancel_running: bool,
}

/// Where a project's webhook secret comes from: never the file itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretSource {
    /// An environment variable of the server (removed from the environment once read, so that
    /// jobs never see it).
    Env(String),
    /// A file (its content, without the trailing newline).
    File(PathBuf),
}

impl ProjectConfig {
    /// True when a push to `branch` starts a run.
    #[must_use]
    pub fn builds_branch(&self, branch: &str) -> bool {
        self.branches.iter().any(|p| glob_match(p, branch))
    }

    /// True when a run of `branch` may deploy (`None`: the pipeline's own filters decide).
    #[must_use]
    pub fn may_deploy(&self, branch: &str) -> bool {
        self.deploy_branches
            .as_ref()
            .is_none_or(|list| list.iter().any(|p| glob_match(p, branch)))
    }
}

/// `*` matches any run of characters; everything else matches itself.
fn glob_match(pattern: &str, text: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == text;
    }
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if !text.starts_with(first) || text.len() < first.len() + last.len() {
        return false;
    }
    let mut rest = &text[first.len()..text.len() - last.len()];
    if !text.ends_with(last) {
        return false;
    }
    for part in &parts[1..parts.len() - 1] {
        match rest.find(part) {
            Some(i) => rest = &rest[i + part.len()..],
            None => return false,
        }
    }
    true
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawServer {
    listen: Option<Spanned<String>>,
    public_url: Option<Spanned<String>>,
    data_dir: Option<String>,
    database: Option<String>,
    max_concurrent_runs: Option<Spanned<i64>>,
    retention: Option<Spanned<String>>,
    shutdown_grace: Option<Spanned<String>>,
    deploy_lock_wait: Option<Spanned<String>>,
    allow_root: Option<bool>,
    runner: Option<RawRunner>,
    #[serde(default)]
    project: Vec<Spanned<RawProject>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRunner {
    user: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawProject {
    name: Spanned<String>,
    repository: Spanned<String>,
    config: Option<String>,
    secret: Option<Spanned<toml::Value>>,
    secret_env: Option<Spanned<String>>,
    secret_file: Option<Spanned<String>>,
    poll: Option<Spanned<String>>,
    branches: Option<Vec<String>>,
    deploy_branches: Option<Vec<String>>,
    auto_cancel: Option<bool>,
    auto_cancel_running: Option<bool>,
}

/// Reads and checks `path`.
///
/// # Errors
///
/// A [`ConfigError`] naming the file, line and column, with a hint.
pub fn load(path: &Path) -> Result<ServerConfig, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        let error = ConfigError::new(path, format!("cannot read the file: {e}"));
        if e.kind() == std::io::ErrorKind::NotFound {
            error.with_hint("run `hoist serve init` to write one, or pass --server-config <path>")
        } else {
            error
        }
    })?;
    parse(path, &text)
}

/// Checks the text of a `hoist-server.toml` read from `path` (relative paths in it start at
/// the file's directory).
///
/// # Errors
///
/// A [`ConfigError`] naming the file, line and column, with a hint.
pub fn parse(path: &Path, text: &str) -> Result<ServerConfig, ConfigError> {
    let raw: RawServer =
        toml::from_str(text).map_err(|err| ConfigError::from_toml(path, text, err))?;
    let at = |span: std::ops::Range<usize>, message: String| {
        ConfigError::at_span(path, text, span, message)
    };
    let base = std::path::absolute(path)
        .ok()
        .and_then(|p| p.parent().map(Path::to_path_buf))
        .unwrap_or_else(|| PathBuf::from("."));
    let listen = match &raw.listen {
        None => SocketAddr::from(([127, 0, 0, 1], 8080)),
        Some(value) => value.get_ref().parse().map_err(|_| {
            at(
                value.span(),
                format!("listen {:?} is not an address and port", value.get_ref()),
            )
            .with_hint("write it as 127.0.0.1:8080 (or 0.0.0.0:8080 behind a firewall)")
        })?,
    };
    let public_url = match &raw.public_url {
        None => format!("http://{listen}"),
        Some(value) => {
            let url = value.get_ref().trim_end_matches('/');
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                return Err(at(
                    value.span(),
                    format!("public_url {:?} is not an http(s) URL", value.get_ref()),
                )
                .with_hint(
                    "the address clients reach the server at, e.g. https://ci.example.com",
                ));
            }
            url.to_string()
        }
    };
    let data_dir = base.join(raw.data_dir.as_deref().unwrap_or("hoist-data"));
    let database = raw
        .database
        .clone()
        .unwrap_or_else(|| format!("sqlite://{}", data_dir.join("hoist.db").display()));
    let max_concurrent_runs = match &raw.max_concurrent_runs {
        None => 2,
        Some(n) => usize::try_from(*n.get_ref())
            .ok()
            .filter(|n| (1..=256).contains(n))
            .ok_or_else(|| {
                at(
                    n.span(),
                    format!("max_concurrent_runs = {} is out of range", n.get_ref()),
                )
                .with_hint("a number from 1 to 256")
            })?,
    };
    let duration = |value: &Option<Spanned<String>>, key: &str, default: Duration| match value {
        None => Ok(default),
        Some(v) => hoist_config::parse_duration(v.get_ref())
            .map_err(|e| at(v.span(), format!("{key}: {e}"))),
    };
    let retention = duration(
        &raw.retention,
        "retention",
        Duration::from_secs(30 * 24 * 3600),
    )?;
    let shutdown_grace = duration(
        &raw.shutdown_grace,
        "shutdown_grace",
        Duration::from_secs(30),
    )?;
    let deploy_lock_wait = duration(
        &raw.deploy_lock_wait,
        "deploy_lock_wait",
        Duration::from_secs(3600),
    )?;
    let runner_user = match raw.runner.as_ref().and_then(|r| r.user.as_ref()) {
        None => None,
        Some(user) => {
            let name = user.get_ref();
            let usable = !name.is_empty()
                && !name.starts_with('-')
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
            if !usable {
                return Err(at(
                    user.span(),
                    format!("[runner] user {name:?} is not a user name"),
                )
                .with_hint(
                    "the name of an unprivileged account on this machine, e.g. user = \"hoist-ci\"",
                ));
            }
            Some(name.clone())
        }
    };
    let mut projects: Vec<ProjectConfig> = Vec::new();
    for project in &raw.project {
        let span = project.span();
        let project = project.get_ref();
        let name = project.name.get_ref();
        let name_ok = !name.is_empty()
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
            && !name.starts_with('.');
        if !name_ok {
            return Err(at(
                project.name.span(),
                format!("project name {name:?} is not usable in a URL"),
            )
            .with_hint("use letters, digits, '-', '_' and '.' (it becomes /hooks/<name>)"));
        }
        if projects.iter().any(|p| &p.name == name) {
            return Err(at(
                project.name.span(),
                format!("project {name:?} is defined twice"),
            )
            .with_hint("each [[project]] needs its own name"));
        }
        if project.repository.get_ref().trim().is_empty() {
            return Err(at(project.repository.span(), "repository is empty".into())
                .with_hint("anything `git clone` accepts: a URL or a path"));
        }
        if let Some(inline) = &project.secret {
            return Err(at(
                inline.span(),
                format!("project {name:?}: the webhook secret is written in the file"),
            )
            .with_hint(
                "a secret never belongs in a committed file: set secret_env = \"NAME\" (an environment variable of the server) or secret_file = \"PATH\"",
            ));
        }
        let secret = match (&project.secret_env, &project.secret_file) {
            (Some(env), None) => SecretSource::Env(env.get_ref().clone()),
            (None, Some(file)) => SecretSource::File(base.join(file.get_ref())),
            (Some(env), Some(_)) => {
                return Err(at(
                    env.span(),
                    format!("project {name:?}: both secret_env and secret_file are set"),
                )
                .with_hint("keep one of them"));
            }
            (None, None) => {
                return Err(at(span, format!("project {name:?} has no webhook secret"))
                    .with_hint("set secret_env = \"NAME\" (an environment variable of the server) or secret_file = \"PATH\""));
            }
        };
        let poll = match &project.poll {
            None => None,
            Some(v) => Some(
                hoist_config::parse_duration(v.get_ref())
                    .map_err(|e| at(v.span(), format!("poll: {e}")))?,
            ),
        };
        projects.push(ProjectConfig {
            name: name.clone(),
            repository: project.repository.get_ref().clone(),
            config: project
                .config
                .clone()
                .unwrap_or_else(|| "hoist.toml".into()),
            secret,
            poll,
            branches: project.branches.clone().unwrap_or_else(|| vec!["*".into()]),
            deploy_branches: project.deploy_branches.clone(),
            auto_cancel: project.auto_cancel.unwrap_or(true),
            auto_cancel_running: project.auto_cancel_running.unwrap_or(false),
        });
    }
    Ok(ServerConfig {
        path: path.to_path_buf(),
        listen,
        public_url,
        data_dir,
        database,
        max_concurrent_runs,
        retention,
        shutdown_grace,
        deploy_lock_wait,
        allow_root: raw.allow_root.unwrap_or(false),
        runner_user,
        projects,
    })
}

/// The commented file `hoist serve init` writes.
pub const TEMPLATE: &str = r#"# hoist-server.toml: the settings of `hoist serve` (see docs/server.md).

# The address to listen on. Loopback by default: put nginx with TLS in front of it.
listen = "127.0.0.1:8080"

# The URL clients reach the server at (used in the run URLs of webhook answers).
# public_url = "https://ci.example.com"

# Mirrors, run directories, artifacts and the CI cache store. Relative to this file.
data_dir = "hoist-data"

# The store: SQLite in the data dir by default; postgres://USER@HOST/DB for several servers.
# database = "sqlite://hoist-data/hoist.db"

# How many runs execute at once.
max_concurrent_runs = 2

# How long finished runs are kept (directory and store rows); each branch's last run and the runs
# that deployed what the hosts serve are kept whatever their age.
retention = "720h"

# On SIGTERM, how long running runs may take to finish before they are cancelled.
shutdown_grace = "30s"

# How long a run's deploy step waits while another deploy (another run, or a person) holds a
# host's lock, before it fails. Two runs never deploy one environment at once: the second waits.
deploy_lock_wait = "1h"

# Pipelines run the repository's own code: jobs never run as root unless this is true.
# allow_root = false

# The unprivileged user jobs run as (checkout, steps, services), with its HOME, when the server
# runs as root. Unset: jobs run as the server's own user.
# [runner]
# user = "hoist-ci"

# One [[project]] per repository.
# [[project]]
# name = "shop"                                  # the webhook URL is <public_url>/hooks/shop
# repository = "git@github.com:acme/shop.git"    # anything `git clone` accepts
# config = "hoist.toml"                          # its hoist.toml, inside the repository
# secret_env = "HOIST_SHOP_WEBHOOK_SECRET"       # or secret_file = "/etc/hoist/shop.secret"
# branches = ["*"]                               # pushes to these branches start runs
# deploy_branches = ["master"]                   # runs of these branches may deploy
# auto_cancel = true                             # a newer push cancels the branch's queued runs
# auto_cancel_running = false                    # ... and its running run too
"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_match_whole_names() {
        assert!(glob_match("*", "master"));
        assert!(glob_match("release/*", "release/1.2"));
        assert!(!glob_match("release/*", "hotfix/1"));
        assert!(glob_match("*-ci", "fast-ci"));
        assert!(glob_match("a*b*c", "aXbYc"));
        assert!(!glob_match("a*b*c", "acb"));
        assert!(!glob_match("master", "master2"));
    }
}
