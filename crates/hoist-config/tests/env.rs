//! `[env]`, `[environments.<name>.env]` and `[app] installer_env`.

mod support;

use hoist_config::EnvValue;
use support::{minimal_with, Project};

#[test]
fn env_values_are_plain_or_read_at_deploy_time() {
    let project = Project::new();
    let config = project.config(&minimal_with(
        r#"
[env]
APP_MODE = "production"
SECRET_KEY = { from_env = "EXAMPLE_SECRET_KEY" }
DATABASE_URL = { from_file = "secrets/database_url" }
PUBLIC_TOKEN_NAME = { value = "csrf", secret = false }
"#,
    ));
    let vars = config.env.for_environment("local");
    let by_name = |name: &str| vars.iter().find(|v| v.name == name).unwrap().value.clone();
    assert_eq!(by_name("APP_MODE"), EnvValue::Plain("production".into()));
    assert_eq!(
        by_name("SECRET_KEY"),
        EnvValue::FromEnv("EXAMPLE_SECRET_KEY".into())
    );
    assert_eq!(
        by_name("DATABASE_URL"),
        EnvValue::FromFile(project.path().join("secrets/database_url"))
    );
    assert!(by_name("DATABASE_URL").is_secret());
    assert_eq!(by_name("PUBLIC_TOKEN_NAME"), EnvValue::Plain("csrf".into()));
    assert!(!by_name("PUBLIC_TOKEN_NAME").is_secret());
}

#[test]
fn an_environment_adds_and_overrides_variables() {
    let project = Project::new();
    let config = project.config(&minimal_with(
        r#"
[env]
APP_MODE = "production"
LOG_LEVEL = "info"

[hosts.web1]
address = "web1.example.com"

[environments.staging]
hosts = ["web1"]
env = { APP_MODE = "staging", SENTRY_ENV = "staging" }

[environments.production]
hosts = ["web1"]
"#,
    ));
    let names = |env: &str| -> Vec<String> {
        config
            .env
            .for_environment(env)
            .iter()
            .map(|v| match &v.value {
                EnvValue::Plain(text) => format!("{}={text}", v.name),
                other => format!("{}={other:?}", v.name),
            })
            .collect()
    };
    assert_eq!(
        names("staging"),
        ["APP_MODE=staging", "LOG_LEVEL=info", "SENTRY_ENV=staging"]
    );
    assert_eq!(
        names("production"),
        ["APP_MODE=production", "LOG_LEVEL=info"]
    );
}

#[test]
fn installer_env_is_its_own_table() {
    let project = Project::new();
    let config = project.config(
        r#"[app]
name = "example"
entry = "app:app"
installer_env = { PIP_INDEX_URL = "https://pypi.internal/simple", SSL_CERT_FILE = "/etc/ssl/internal.pem" }

[release]
root = "/srv/example"
"#,
    );
    assert_eq!(config.env.installer.len(), 2);
    assert!(config.env.vars.is_empty());
}

#[test]
fn a_secret_is_never_written_inline() {
    let project = Project::new();
    let err = project.error(&minimal_with("[env]\nSECRET_KEY = \"hunter2\"\n"));
    assert_eq!(
        err.to_string().replacen(&project.config_path().display().to_string(), "hoist.toml", 1),
        "hoist.toml:8:14: [env]: SECRET_KEY looks like a secret, and secrets are never written in hoist.toml"
    );
    assert!(
        err.hint.as_deref().unwrap().starts_with(
            "read it at deploy time instead: SECRET_KEY = { from_env = \"SECRET_KEY\" }"
        ),
        "{:?}",
        err.hint
    );
    assert_eq!(
        project.message(&minimal_with(
            "[env]\nSESSION = { value = \"x\", secret = true }\n"
        )),
        "hoist.toml:8:11: [env]: SESSION: an inline value is written in hoist.toml, so it cannot be a secret"
    );
}

#[test]
fn env_mistakes_are_named_with_their_line() {
    let project = Project::new();
    let cases = [
        (
            "[env]\n\"1BAD\" = \"x\"\n",
            "hoist.toml:8:1: [env]: \"1BAD\" is not a valid environment variable name",
        ),
        (
            "[env]\nHOIST_ROOT = \"x\"\n",
            "hoist.toml:8:1: [env]: HOIST_ROOT is reserved: hoist sets the HOIST_ variables itself",
        ),
        (
            "[env]\nDB = { from_env = \"A\", from_file = \"b\" }\n",
            "hoist.toml:8:6: [env]: DB: give exactly one of `value`, `from_env` or `from_file`",
        ),
        (
            "[env]\nDB = { from_vault = \"A\" }\n",
            "hoist.toml:8:6: [env]: DB: unknown key \"from_vault\"; expected one of value, from_env, from_file, secret",
        ),
        (
            "[env]\nWORKERS = 4\n",
            "hoist.toml:8:11: [env]: WORKERS must be a string or a table like { from_env = \"NAME\" }, not a integer",
        ),
    ];
    for (extra, expected) in cases {
        assert_eq!(project.message(&minimal_with(extra)), expected, "{extra}");
    }
}
