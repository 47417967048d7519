//! `hoist-server.toml`: defaults, and errors that name the line.

use std::path::Path;

use hoist_server::config::{parse, SecretSource, TEMPLATE};

fn error(text: &str) -> (String, Option<String>) {
    let e = parse(Path::new("hoist-server.toml"), text).unwrap_err();
    (e.to_string(), e.hint)
}

#[test]
fn an_empty_file_means_loopback_8080_and_sqlite_in_the_data_dir() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("hoist-server.toml");
    let config = parse(&path, "").unwrap();
    assert_eq!(config.listen.to_string(), "127.0.0.1:8080");
    assert_eq!(config.public_url, "http://127.0.0.1:8080");
    assert_eq!(config.data_dir, dir.path().join("hoist-data"));
    assert_eq!(
        config.database,
        format!(
            "sqlite://{}",
            dir.path().join("hoist-data/hoist.db").display()
        )
    );
    assert_eq!(config.max_concurrent_runs, 2);
    assert_eq!(
        config.deploy_lock_wait,
        std::time::Duration::from_secs(3600)
    );
    assert!(!config.allow_root);
    assert!(config.projects.is_empty());
    let waits = parse(&path, "deploy_lock_wait = \"5m\"\n").unwrap();
    assert_eq!(waits.deploy_lock_wait, std::time::Duration::from_secs(300));
    let (message, _) = error("deploy_lock_wait = \"soon\"\n");
    assert!(
        message.starts_with("hoist-server.toml:1:20: deploy_lock_wait: "),
        "{message}"
    );
}

#[test]
fn a_project_takes_its_secret_from_the_environment_or_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("hoist-server.toml");
    let config = parse(
        &path,
        r#"
[[project]]
name = "shop"
repository = "/srv/git/shop.git"
secret_env = "SHOP_SECRET"
deploy_branches = ["master"]

[[project]]
name = "blog"
repository = "https://git.example.com/blog.git"
secret_file = "blog.secret"
config = "deploy/hoist.toml"
poll = "1m"
"#,
    )
    .unwrap();
    let shop = &config.projects[0];
    assert_eq!(shop.secret, SecretSource::Env("SHOP_SECRET".into()));
    assert_eq!(shop.config, "hoist.toml");
    assert!(shop.auto_cancel);
    assert!(shop.builds_branch("anything"));
    assert!(shop.may_deploy("master") && !shop.may_deploy("feature"));
    let blog = &config.projects[1];
    assert_eq!(
        blog.secret,
        SecretSource::File(dir.path().join("blog.secret"))
    );
    assert_eq!(blog.poll, Some(std::time::Duration::from_secs(60)));
    assert!(
        blog.may_deploy("feature"),
        "no deploy_branches: the pipeline decides"
    );
}

#[test]
fn an_inline_secret_is_refused_at_its_line_with_the_way_out() {
    let (message, hint) = error(
        "listen = \"127.0.0.1:9000\"\n\n[[project]]\nname = \"shop\"\nrepository = \"/srv/shop.git\"\nsecret = \"hunter2\"\n",
    );
    assert_eq!(
        message,
        "hoist-server.toml:6:10: project \"shop\": the webhook secret is written in the file"
    );
    assert_eq!(hint.as_deref(), Some("a secret never belongs in a committed file: set secret_env = \"NAME\" (an environment variable of the server) or secret_file = \"PATH\""));
}

#[test]
fn unknown_keys_bad_values_and_missing_secrets_name_their_line() {
    let (message, hint) = error("listen = \"127.0.0.1:8080\"\nmax_concurent_runs = 4\n");
    assert!(
        message.starts_with("hoist-server.toml:2:1: unknown key `max_concurent_runs`"),
        "{message}"
    );
    assert!(hint.unwrap_or_default().contains("max_concurrent_runs"));

    let (message, _) = error("listen = \"localhost\"\n");
    assert_eq!(
        message,
        "hoist-server.toml:1:10: listen \"localhost\" is not an address and port"
    );

    let (message, _) = error("max_concurrent_runs = 0\n");
    assert_eq!(
        message,
        "hoist-server.toml:1:23: max_concurrent_runs = 0 is out of range"
    );

    let (message, hint) = error("[[project]]\nname = \"shop\"\nrepository = \"/srv/shop.git\"\n");
    assert_eq!(
        message,
        "hoist-server.toml:1:1: project \"shop\" has no webhook secret"
    );
    assert!(hint.unwrap().starts_with("set secret_env"));

    let (message, _) =
        error("[[project]]\nname = \"my shop\"\nrepository = \"x\"\nsecret_env = \"S\"\n");
    assert_eq!(
        message,
        "hoist-server.toml:2:8: project name \"my shop\" is not usable in a URL"
    );

    let (message, _) = error(
        "[[project]]\nname = \"a\"\nrepository = \"x\"\nsecret_env = \"S\"\npoll = \"soon\"\n",
    );
    assert!(
        message.starts_with("hoist-server.toml:5:8: poll: invalid duration \"soon\""),
        "{message}"
    );
}

#[test]
fn the_file_hoist_serve_init_writes_is_valid_and_listens_on_loopback() {
    let config = parse(Path::new("/srv/hoist/hoist-server.toml"), TEMPLATE).unwrap();
    assert_eq!(config.listen.to_string(), "127.0.0.1:8080");
    assert_eq!(config.data_dir, Path::new("/srv/hoist/hoist-data"));
    // Every commented project key is a key the file accepts.
    let uncommented: String = TEMPLATE
        .lines()
        .map(|l| {
            l.strip_prefix("# ")
                .filter(|l| l.starts_with('[') || l.contains(" = "))
                .unwrap_or(l)
        })
        .map(|l| l.split("  #").next().unwrap_or(l).to_string() + "\n")
        .collect();
    let config = parse(Path::new("/srv/hoist/hoist-server.toml"), &uncommented)
        .unwrap_or_else(|e| panic!("{e}\n{uncommented}"));
    assert_eq!(config.projects[0].name, "shop");
    assert_eq!(config.runner_user.as_deref(), Some("hoist-ci"));
}
