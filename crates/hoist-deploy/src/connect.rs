//! [`connect`]: the transport for one inventory host. The inventory's [`HostSpec`] becomes the
//! transport's own [`SshTarget`] here, so that the transport knows nothing of hoist.toml.

use std::time::Duration;

use hoist_config::{BecomeMode, HostSpec};

use hoist_transport::{
    Become, BecomeScope, HostKeyPolicy, Local, Ssh, SshTarget, Transport, TransportError,
};

/// True for the addresses that mean "this machine, no SSH": `local` and `localhost`.
#[must_use]
pub fn is_local_address(address: &str) -> bool {
    matches!(address, "local" | "localhost")
}

/// The transport for `host`: [`Local`] for a `local`/`localhost` address, else an [`Ssh`]
/// connection (made now, so an unreachable host fails here, naming it).
///
/// `policy` is the command line's choice (`--accept-new-host-keys`); the host's own
/// `accept_new_host_keys` setting also turns trust-on-first-use on. A changed key is always
/// refused.
///
/// # Errors
///
/// What [`Ssh::connect`] returns.
pub fn connect(
    host: &HostSpec,
    policy: HostKeyPolicy,
) -> Result<Box<dyn Transport>, TransportError> {
    let become_as = match host.become_mode {
        BecomeMode::Off => None,
        BecomeMode::Service => Some(BecomeScope::Service),
        BecomeMode::All => Some(BecomeScope::All),
    }
    .map(|scope| Become {
        user: host.become_user.clone(),
        scope,
    });
    if is_local_address(&host.address) {
        return Ok(Box::new(
            Local::new(host.name.clone()).with_become(become_as),
        ));
    }
    let known_hosts = if host.accept_new_host_keys {
        HostKeyPolicy::AcceptNew
    } else {
        policy
    };
    let target = SshTarget {
        name: host.name.clone(),
        address: host.address.clone(),
        user: host.user.clone(),
        port: host.port,
        identity_file: host.identity_file.clone(),
        config_file: host.config_file.clone(),
        known_hosts,
        connect_timeout: if host.connect_timeout.is_zero() {
            Duration::from_secs(10)
        } else {
            host.connect_timeout
        },
        become_as,
    };
    Ok(Box::new(Ssh::connect(&target)?))
}
