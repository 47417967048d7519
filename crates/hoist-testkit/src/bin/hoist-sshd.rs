//! Runs the test sshd for benchmarks: `hoist-sshd <hosts>` starts it, writes an ssh_config with
//! the aliases `web1`..`web<hosts>` (all to this server), prints that file's path on stdout and
//! keeps the server up until its standard input closes.

use std::io::Read;

fn main() {
    let hosts: usize = std::env::args()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or(1);
    let server = hoist_testkit::SshServer::start();
    let config = server.dir().join("bench_ssh_config");
    let aliases: Vec<String> = (1..=hosts).map(|i| format!("web{i}")).collect();
    let pairs: Vec<(&str, &hoist_testkit::SshServer)> =
        aliases.iter().map(|a| (a.as_str(), &server)).collect();
    hoist_testkit::write_client_config(&config, &pairs, &server.known_hosts);
    println!("{}", config.display());
    let mut sink = Vec::new();
    let _ = std::io::stdin().read_to_end(&mut sink);
}
