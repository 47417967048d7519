//! `connect`: an inventory host becomes a local transport or an SSH connection.

use std::path::PathBuf;
use std::time::Duration;

use hoist_config::HostSpec;
use hoist_deploy::connect;
use hoist_testkit::SshServer;
use hoist_transport::{Cmd, HostKeyPolicy};

#[test]
fn connect_picks_local_for_local_addresses_and_ssh_otherwise() {
    let server = SshServer::start();
    let spec = |name: &str, address: &str| HostSpec {
        name: name.into(),
        address: address.into(),
        user: None,
        port: None,
        identity_file: None,
        config_file: Some(server.client_config.clone()),
        root: PathBuf::from("/srv/app"),
        python: "python3".into(),
        groups: vec![],
        vars: Default::default(),
        accept_new_host_keys: false,
        connect_timeout: Duration::from_secs(5),
        become_mode: hoist_config::BecomeMode::Off,
        become_user: "root".into(),
    };
    for address in ["local", "localhost"] {
        let local = connect(&spec("box", address), HostKeyPolicy::Strict).unwrap();
        assert_eq!(local.host(), "box");
        // The local transport runs without a shell: `$0` is not expanded.
        let out = local.exec(&Cmd::new("echo").arg("$0")).unwrap();
        assert_eq!(out.stdout_text(), "$0\n");
    }
    let remote = connect(&spec("web2", "web2"), HostKeyPolicy::Strict).unwrap();
    assert_eq!(remote.host(), "web2");
    let out = remote.exec(&Cmd::shell("echo $SSH_CONNECTION")).unwrap();
    assert!(
        out.stdout_text().contains("127.0.0.1"),
        "{}",
        out.stdout_text()
    );
}
