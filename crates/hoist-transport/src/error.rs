use std::path::PathBuf;

/// Why an action on a host failed.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    #[error("{host}: {action} {path}: {source}")]
    Io {
        host: String,
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{host}: {path} already exists")]
    AlreadyExists { host: String, path: PathBuf },
    #[error("{host}: {path} is a real directory, not a symlink; hoist will not replace it")]
    NotASymlink { host: String, path: PathBuf },
    #[error("{host}: after switching, {link} points to {found}, not {expected}")]
    SwitchCheckFailed {
        host: String,
        link: PathBuf,
        expected: PathBuf,
        found: String,
    },
    #[error("{host}: could not run `{command}`: {source}")]
    Spawn {
        host: String,
        command: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{host}: {message}")]
    Other { host: String, message: String },
}
