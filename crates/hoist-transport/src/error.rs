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
    /// A command on the host ran and failed; `detail` is the end of its output.
    #[error("{host}: {action} {path}: {detail}")]
    Remote {
        host: String,
        action: &'static str,
        path: PathBuf,
        detail: String,
    },
    /// No SSH connection could be made: refused, timed out, no route, name not found.
    #[error(
        "{host}: cannot connect to {address}: {detail}; check the host's address and port in hoist.toml and that sshd runs there"
    )]
    Unreachable {
        host: String,
        address: String,
        detail: String,
    },
    /// The host presented a key other than the one recorded for it: refused, always.
    #[error(
        "{host}: the host key of {address} has CHANGED since it was recorded at {known_hosts_line}; hoist refuses to connect (this can be a man-in-the-middle attack). If the server was reinstalled, verify its new key, then remove the old line with `{remove_command}`"
    )]
    HostKeyChanged {
        host: String,
        address: String,
        /// `path:line` of the known_hosts entry that no longer matches.
        known_hosts_line: String,
        /// The `ssh-keygen -f <file> -R <name>` that removes that entry, with the name as the
        /// entry itself writes it (`[127.0.0.1]:2222` for an alias of that address).
        remove_command: String,
    },
    /// Strict checking and the host's key is not in known_hosts.
    #[error(
        "{host}: the host key of {address} is not in known_hosts and host keys are checked strictly; verify the key and add it (connect once with `ssh`), or trust it on first use with --accept-new-host-keys (or accept_new_host_keys = true in [ssh])"
    )]
    HostKeyUnknown { host: String, address: String },
    /// The server refused every key or password offered.
    #[error(
        "{host}: {address} refused the login: {detail}; check the user and identity_file for this host in hoist.toml, or that ssh-agent holds its key"
    )]
    AuthFailed {
        host: String,
        address: String,
        detail: String,
    },
    /// sudo refused to run a command for `become` (it wanted a password, or is missing).
    #[error("{host}: {detail}; add this line to /etc/sudoers.d/hoist on the host (with `visudo -f /etc/sudoers.d/hoist`): {line}")]
    SudoRefused {
        host: String,
        detail: String,
        /// The sudoers line that would let the command run.
        line: String,
    },
    /// An established connection dropped while a command ran.
    #[error("{host}: the SSH connection was lost: {detail}")]
    ConnectionLost { host: String, detail: String },
}
