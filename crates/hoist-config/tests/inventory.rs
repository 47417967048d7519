//! Hosts, groups and environments: how they resolve, and every refusal with its line.

mod support;

use std::path::PathBuf;
use std::time::Duration;

use hoist_config::{Activation, Batch, BecomeMode, SelectError};
use support::{minimal_with, Project, MINIMAL};

const FLEET: &str = r#"
[ssh]
user = "deploy"
port = 22
identity_file = "keys/deploy"
config_file = "deploy/ssh_config"
connect_timeout = "5s"
forks = 4

[hosts.web1]
address = "203.0.113.10"
groups = ["web"]
vars = { workers = 4, debug = false }

[hosts.web2]
address = "203.0.113.11"
port = 2222
groups = ["web"]
root = "/srv/other"

[hosts.worker1]
address = "203.0.113.20"
groups = ["worker"]
user = "celery"

[hosts.extra1]
address = "local"

[groups.web]
user = "www"
python = "python3.11"
vars = { workers = 2, region = "eu" }

[environments.production]
groups = ["web", "worker"]
hosts = ["extra1"]
activation = "rolling"
batch = "50%"
pause = "10s"

[environments.staging]
hosts = ["web2"]
activation = "canary"
"#;

#[test]
fn without_hosts_the_one_environment_is_this_machine() {
    let project = Project::new();
    let config = project.config(MINIMAL);
    let env = config.environment(None).unwrap();
    assert_eq!(env.name, "local");
    assert_eq!(env.activation, Activation::All);
    assert_eq!(env.hosts.len(), 1);
    let host = &env.hosts[0];
    assert_eq!(
        (host.name.as_str(), host.address.as_str()),
        ("local", "local")
    );
    assert_eq!(host.root, PathBuf::from("/srv/example"));
    assert_eq!(host.python, "python3");
    assert_eq!(config.environment(Some("local")).unwrap(), env);
    let err = config.environment(Some("production")).unwrap_err();
    assert!(
        err.message
            .contains("hoist.toml defines no hosts, so the only environment is \"local\""),
        "{err}"
    );
}

#[test]
fn host_beats_group_beats_defaults() {
    let project = Project::new();
    let config = project.config(&minimal_with(FLEET));
    let env = config.environment(Some("production")).unwrap();
    assert_eq!(env.forks, 4);
    assert_eq!(
        env.activation,
        Activation::Rolling {
            batch: Batch::Percent(50),
            pause: Duration::from_secs(10)
        }
    );
    let names: Vec<&str> = env.hosts.iter().map(|h| h.name.as_str()).collect();
    assert_eq!(names, ["web1", "web2", "worker1", "extra1"], "file order");

    let web1 = &env.hosts[0];
    assert_eq!(web1.user.as_deref(), Some("www"), "group beats [ssh]");
    assert_eq!(web1.port, Some(22));
    assert_eq!(web1.python, "python3.11");
    assert_eq!(web1.root, PathBuf::from("/srv/example"));
    assert_eq!(web1.vars["workers"], "4", "host beats group");
    assert_eq!(web1.vars["region"], "eu");
    assert_eq!(web1.vars["debug"], "false");
    assert_eq!(web1.identity_file, Some(project.path().join("keys/deploy")));
    assert_eq!(
        web1.config_file,
        Some(project.path().join("deploy/ssh_config"))
    );
    assert_eq!(web1.connect_timeout, Duration::from_secs(5));
    assert!(!web1.accept_new_host_keys);

    let web2 = &env.hosts[1];
    assert_eq!(web2.port, Some(2222));
    assert_eq!(web2.root, PathBuf::from("/srv/other"));
    let worker = &env.hosts[2];
    assert_eq!(worker.user.as_deref(), Some("celery"));
    assert_eq!(worker.python, "python3", "app.python when no group sets it");
    assert_eq!(env.hosts[3].address, "local");

    let staging = config.environment(Some("staging")).unwrap();
    assert_eq!(staging.activation, Activation::Canary);
    assert_eq!(staging.hosts.len(), 1);
    assert_eq!(staging.hosts[0].name, "web2");
}

#[test]
fn none_picks_the_only_environment_or_asks() {
    let project = Project::new();
    let config = project.config(&minimal_with(FLEET));
    let err = config.environment(None).unwrap_err();
    assert_eq!(
        err.message,
        "hoist.toml defines several environments (production, staging); say which one"
    );
    let err = config.environment(Some("prodution")).unwrap_err();
    assert_eq!(
        err.message,
        "unknown environment \"prodution\"; did you mean \"production\"? environments are production, staging"
    );

    let one = project.config(&minimal_with(
        "[hosts.a]\naddress = \"a.example\"\ngroups = [\"web\"]\n[environments.prod]\ngroups = [\"web\"]\n",
    ));
    assert_eq!(one.environment(None).unwrap().name, "prod");

    let no_envs = project.config(&minimal_with(
        "[hosts.a]\naddress = \"a.example\"\n[hosts.b]\naddress = \"b.example\"\n",
    ));
    let all = no_envs.environment(None).unwrap();
    assert_eq!(all.name, "all");
    assert_eq!(all.hosts.len(), 2);
    assert_eq!(all.forks, 10);
}

#[test]
fn select_narrows_by_host_and_group() {
    let project = Project::new();
    let config = project.config(&minimal_with(FLEET));
    let env = config.environment(Some("production")).unwrap();
    let names = |e: &hoist_config::Environment| -> Vec<String> {
        e.hosts.iter().map(|h| h.name.clone()).collect()
    };
    assert_eq!(
        names(&env.select(&["web2".into()], None).unwrap()),
        ["web2"]
    );
    assert_eq!(
        names(&env.select(&[], Some("web")).unwrap()),
        ["web1", "web2"]
    );
    assert_eq!(
        names(
            &env.select(&["web1".into(), "worker1".into()], Some("web"))
                .unwrap()
        ),
        ["web1"]
    );
    assert_eq!(
        env.select(&["web9".into()], None).unwrap_err().to_string(),
        "no host \"web9\" in environment production; its hosts are web1, web2, worker1, extra1"
    );
    assert_eq!(
        env.select(&[], Some("db")).unwrap_err().to_string(),
        "no host of environment production is in group \"db\"; its groups are web, worker"
    );
    assert_eq!(
        env.select(&["worker1".into()], Some("web")).unwrap_err(),
        SelectError::Empty {
            environment: "production".into()
        }
    );
}

/// Each refusal: the message as the user reads it, at the line of the offending value.
#[test]
fn refusals_point_at_the_line() {
    let project = Project::new();
    let cases: &[(&str, &str)] = &[
        (
            "[hosts.web1]\naddress = \"a\"\ngroups = [\"web\"]\n[environments.production]\ngroups = [\"wbe\"]\n",
            "hoist.toml:11:11: unknown group \"wbe\"; did you mean \"web\"? groups are web",
        ),
        (
            "[hosts.web1]\naddress = \"a\"\n[environments.production]\nhosts = [\"web2\"]\n",
            "hoist.toml:10:10: unknown host \"web2\"; did you mean \"web1\"? hosts are web1",
        ),
        (
            "[hosts.web1]\naddress = \"a\"\n[environments.production]\nhosts = [\"web1\", \"web1\"]\n",
            "hoist.toml:10:18: host \"web1\" is listed twice in environment \"production\"",
        ),
        (
            "[hosts.web1]\naddress = \"a\"\ngroups = [\"web\"]\n[groups.web1]\nuser = \"x\"\n",
            "hoist.toml:7:8: \"web1\" is the name of a host and of a group (line 10); --hosts and --group would be ambiguous",
        ),
        (
            "[hosts.\"web 1\"]\naddress = \"a\"\n",
            "hoist.toml:7:8: host name \"web 1\" is invalid: use letters, digits, \".\", \"_\" and \"-\"",
        ),
        (
            "[hosts.web1]\naddress = \"a\"\nroot = \"srv/app\"\n",
            "hoist.toml:9:8: release root \"srv/app\" must be an absolute path",
        ),
        (
            "[hosts.web1]\naddress = \"a\"\nroot = \"/\"\n",
            "hoist.toml:9:8: release root \"/\" is the file system root; hoist needs a directory of its own",
        ),
        (
            "[groups.web]\nroot = \"/srv/../etc\"\n",
            "hoist.toml:8:8: release root \"/srv/../etc\" must not contain \"..\" components",
        ),
        (
            "[hosts.web1]\naddress = \"a\"\ngroups = [\"web\"]\n[environments.production]\ngroups = [\"web\"]\nactivation = \"rolling\"\nbatch = 0\n",
            "hoist.toml:13:9: batch must be at least 1, not 0",
        ),
        (
            "[hosts.web1]\naddress = \"a\"\ngroups = [\"web\"]\n[environments.production]\ngroups = [\"web\"]\nactivation = \"rolling\"\nbatch = \"150%\"\n",
            "hoist.toml:13:9: invalid batch \"150%\": expected a percentage from \"1%\" to \"100%\"",
        ),
        (
            "[hosts.web1]\naddress = \"a\"\ngroups = [\"web\"]\n[environments.production]\ngroups = [\"web\"]\nbatch = 2\n",
            "hoist.toml:12:9: `batch` only applies to activation = \"rolling\", not \"all\"",
        ),
        (
            "[hosts.web1]\naddress = \"a\"\ngroups = [\"web\"]\n[environments.production]\ngroups = [\"web\"]\nactivation = \"rolling-update\"\n",
            "hoist.toml:12:14: unknown activation \"rolling-update\"; expected one of all, rolling, canary",
        ),
        (
            "[hosts.web1]\naddress = \"a\"\nport = 70000\n",
            "hoist.toml:9:8: port 70000 is not a TCP port (1 to 65535)",
        ),
        (
            "[hosts.web1]\naddress = \"a b\"\n",
            "hoist.toml:8:11: address \"a b\" is not a host name, IP address or ssh_config alias",
        ),
        (
            "[hosts.web1]\naddress = \"a\"\nvars = { ratio = 1.5 }\n",
            "hoist.toml:9:18: variable `ratio` must be a string, integer or boolean, not float",
        ),
        (
            "[ssh]\nforks = 0\n",
            "hoist.toml:8:9: forks must be at least 1, not 0",
        ),
        (
            "[ssh]\nconnect_timeout = \"10\"\n",
            "hoist.toml:8:19: invalid duration \"10\" for `connect_timeout`: expected a duration like 30s, 5m, 250ms",
        ),
        (
            "[hosts.web1]\naddress = \"a\"\n[environments.production]\ngroups = []\n",
            "hoist.toml:9:15: environment \"production\" selects no host",
        ),
        (
            "[hosts.web1]\naddress = \"a\"\nbecome = \"yes\"\n",
            "hoist.toml:9:10: become must be true, false or \"all\", not \"yes\"",
        ),
        (
            "[groups.web]\nbecome_user = \"-root\"\n",
            "hoist.toml:8:15: become_user \"-root\" is not a valid login name",
        ),
        (
            "[hosts.web1]\nadress = \"a\"\n",
            "hoist.toml:8:1: unknown key `adress` in [hosts.web1]; did you mean `address`? valid keys are address, user, port, identity_file, groups, root, python, vars, become, become_user",
        ),
    ];
    for (extra, expected) in cases {
        assert_eq!(
            project.message(&minimal_with(extra)),
            *expected,
            "for:\n{extra}"
        );
    }
}

#[test]
fn accept_new_host_keys_reaches_every_host() {
    let project = Project::new();
    let config = project.config(&minimal_with(
        "[ssh]\naccept_new_host_keys = true\n[hosts.web1]\naddress = \"a\"\n",
    ));
    let env = config.environment(None).unwrap();
    assert!(env.hosts[0].accept_new_host_keys);
    assert_eq!(env.hosts[0].connect_timeout, Duration::from_secs(10));
}

#[test]
fn become_is_set_per_host_group_or_default() {
    let project = Project::new();
    let config = project.config(&minimal_with(
        r#"
[ssh]
user = "deploy"
become = true

[hosts.web1]
address = "a"
groups = ["web"]

[hosts.web2]
address = "b"
groups = ["web"]
become = false

[hosts.worker1]
address = "c"
groups = ["worker"]

[groups.web]
become_user = "www-data"

[groups.worker]
become = "all"
"#,
    ));
    let env = config.environment(None).unwrap();
    let modes: Vec<(&str, BecomeMode, &str)> = env
        .hosts
        .iter()
        .map(|h| (h.name.as_str(), h.become_mode, h.become_user.as_str()))
        .collect();
    assert_eq!(
        modes,
        [
            ("web1", BecomeMode::Service, "www-data"),
            ("web2", BecomeMode::Off, "www-data"),
            ("worker1", BecomeMode::All, "root"),
        ]
    );

    // `hoist setup` runs all of its steps through sudo where `become = true`.
    let mut config = config;
    config.inventory.widen_become();
    let env = config.environment(None).unwrap();
    let modes: Vec<BecomeMode> = env.hosts.iter().map(|h| h.become_mode).collect();
    assert_eq!(modes, [BecomeMode::All, BecomeMode::Off, BecomeMode::All]);

    let local = project.config(MINIMAL).environment(None).unwrap();
    assert_eq!(local.hosts[0].become_mode, BecomeMode::Off);
}
