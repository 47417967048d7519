//! The store's one error type.

/// What went wrong in the store; messages name the place and, where there is one, the fix.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// `database` is neither a SQLite nor a PostgreSQL URL.
    #[error(
        "unsupported database URL `{url}`: expected sqlite://PATH (e.g. sqlite:///var/lib/hoist/hoist.db) or postgres://USER@HOST/DATABASE"
    )]
    UnsupportedUrl {
        /// The URL given, its password hidden.
        url: String,
    },
    /// The SQLite file's directory does not exist.
    #[error("cannot open the database {url}: the directory {dir} does not exist; create it, or point `database` elsewhere")]
    MissingDirectory {
        /// The URL given.
        url: String,
        /// The missing directory.
        dir: String,
    },
    /// The database could not be opened or reached.
    #[error("cannot open the database {url}: {cause}")]
    Open {
        /// The URL given, its password hidden.
        url: String,
        /// Why.
        cause: sqlx::Error,
    },
    /// The schema could not be brought up to date.
    #[error("cannot apply the store's migrations to {url}: {cause}")]
    Migrate {
        /// The URL given, its password hidden.
        url: String,
        /// Why.
        cause: sqlx::migrate::MigrateError,
    },
    /// A query failed.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// A name that must be unique is taken.
    #[error("{what} `{name}` already exists")]
    Exists {
        /// `user`, `token`, `artifact`…
        what: &'static str,
        /// The name.
        name: String,
    },
    /// The thing named does not exist.
    #[error("no {what} `{name}`")]
    NotFound {
        /// `run`, `user`…
        what: &'static str,
        /// Its name or id.
        name: String,
    },
    /// A value given to the store is not acceptable.
    #[error("invalid {what} {reason}")]
    Invalid {
        /// What was given.
        what: &'static str,
        /// Why it is refused, and what is expected.
        reason: String,
    },
    /// The database holds a value this hoist does not know.
    #[error("the database holds an unknown {column} `{value}`; was it written by a newer hoist?")]
    UnknownValue {
        /// Which kind of value.
        column: &'static str,
        /// The value read.
        value: String,
    },
    /// The writer of webhook deliveries has stopped (its task ended with the runtime).
    #[error("the store's delivery writer has stopped: is the server shutting down?")]
    WriterGone,
    /// Password hashing or random numbers failed.
    #[error("{0}")]
    Crypto(String),
}

/// Hides the password of a `scheme://user:password@host/…` URL, for messages.
#[must_use]
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let authority = &rest[..authority_end];
    match authority.rfind('@') {
        Some(at) => match authority[..at].split_once(':') {
            Some((user, _)) => format!("{scheme}://{user}:***@{}", &rest[at + 1..]),
            None => url.to_string(),
        },
        None => url.to_string(),
    }
}
