//! `[env]`, `[environments.<name>.env]` and `[app] installer_env`: environment variables for
//! the app, its hooks and its installer. A value is plain text written in hoist.toml, or a
//! secret read on the controller at deploy time — from its environment (`{ from_env = "NAME" }`)
//! or from a file (`{ from_file = "path" }`) — so that a secret is never committed with
//! hoist.toml.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use toml::Spanned;

use crate::check::Checker;
use crate::ConfigError;

/// A table of variables as written: names to values of any TOML type, checked here.
pub(crate) type RawEnv = BTreeMap<Spanned<String>, Spanned<toml::Value>>;

/// One variable, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvVar {
    /// A shell variable name: letters, digits and `_`, not starting with a digit nor `HOIST_`.
    pub name: String,
    pub value: EnvValue,
}

/// Where a variable's value comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EnvValue {
    /// Written in hoist.toml; not a secret.
    Plain(String),
    /// A secret: the controller's environment variable of this name, read at deploy time.
    FromEnv(String),
    /// A secret: this file's contents (one trailing newline dropped), read at deploy time.
    /// Absolute (relative paths are resolved against the directory of hoist.toml).
    FromFile(PathBuf),
}

impl EnvValue {
    /// True for a value that must never appear in output, the journal or RELEASE.json.
    #[must_use]
    pub fn is_secret(&self) -> bool {
        !matches!(self, EnvValue::Plain(_))
    }
}

/// Every variable of the config: the app's (`[env]`, then each environment's additions and
/// overrides) and the installer's.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AppEnv {
    /// `[env]`, by name.
    pub vars: Vec<EnvVar>,
    /// `[environments.<name>.env]`, by environment name.
    pub per_environment: BTreeMap<String, Vec<EnvVar>>,
    /// `[app] installer_env`: set for the virtualenv build only (an index URL, a CA bundle).
    pub installer: Vec<EnvVar>,
}

impl AppEnv {
    /// The app's variables in environment `name`: `[env]`, with that environment's own on top.
    #[must_use]
    pub fn for_environment(&self, name: &str) -> Vec<EnvVar> {
        let mut merged: BTreeMap<&str, &EnvVar> =
            self.vars.iter().map(|v| (v.name.as_str(), v)).collect();
        for var in self.per_environment.get(name).into_iter().flatten() {
            merged.insert(&var.name, var);
        }
        merged.into_values().cloned().collect()
    }
}

/// Name parts that say a value is a secret: such a variable may not be written inline.
const SECRET_WORDS: &[&str] = &[
    "SECRET", "PASSWORD", "PASSWD", "TOKEN", "PRIVATE", "API_KEY",
];

/// True when the variable's name says it holds a secret (`SECRET_KEY`, `DB_PASSWORD`, ...).
#[must_use]
pub fn name_says_secret(name: &str) -> bool {
    let upper = name.to_ascii_uppercase();
    SECRET_WORDS.iter().any(|word| upper.contains(word))
}

pub(crate) fn validate(
    check: &Checker<'_>,
    dir: &Path,
    raw: Option<&RawEnv>,
    table: &str,
) -> Result<Vec<EnvVar>, ConfigError> {
    raw.into_iter()
        .flatten()
        .map(|(name, value)| validate_var(check, dir, name, value, table))
        .collect()
}

fn validate_var(
    check: &Checker<'_>,
    dir: &Path,
    name: &Spanned<String>,
    value: &Spanned<toml::Value>,
    table: &str,
) -> Result<EnvVar, ConfigError> {
    let key = name.get_ref();
    let valid = key
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !valid {
        return Err(check
            .error(
                name.span(),
                format!("{table}: {key:?} is not a valid environment variable name"),
            )
            .with_hint("use letters, digits and _, not starting with a digit, e.g. DATABASE_URL"));
    }
    if key.to_ascii_uppercase().starts_with("HOIST_") {
        return Err(check
            .error(
                name.span(),
                format!("{table}: {key} is reserved: hoist sets the HOIST_ variables itself"),
            )
            .with_hint("choose another name"));
    }
    let secret_hint = format!(
        "read it at deploy time instead: {key} = {{ from_env = \"{key}\" }} (from this machine's environment) or {key} = {{ from_file = \"secrets/{}\" }} (a file kept out of git)",
        key.to_ascii_lowercase()
    );
    let value = match value.get_ref() {
        toml::Value::String(text) => {
            if name_says_secret(key) {
                return Err(check
                    .error(
                        value.span(),
                        format!(
                            "{table}: {key} looks like a secret, and secrets are never written in hoist.toml"
                        ),
                    )
                    .with_hint(format!(
                        "{secret_hint}; if it is not a secret, write {key} = {{ value = \"...\", secret = false }}"
                    )));
            }
            EnvValue::Plain(text.clone())
        }
        toml::Value::Table(table_value) => {
            from_table(check, dir, key, value, table_value, table, &secret_hint)?
        }
        other => {
            return Err(check
                .error(
                    value.span(),
                    format!(
                        "{table}: {key} must be a string or a table like {{ from_env = \"NAME\" }}, not a {}",
                        other.type_str()
                    ),
                )
                .with_hint(format!("quote it: {key} = \"{other}\"")))
        }
    };
    if matches!(&value, EnvValue::Plain(text) if text.contains('\0')) {
        return Err(check.error(
            name.span(),
            format!("{table}: {key} contains a NUL character"),
        ));
    }
    Ok(EnvVar {
        name: key.clone(),
        value,
    })
}

fn from_table(
    check: &Checker<'_>,
    dir: &Path,
    key: &str,
    value: &Spanned<toml::Value>,
    fields: &toml::Table,
    table: &str,
    secret_hint: &str,
) -> Result<EnvValue, ConfigError> {
    let error = |message: String| check.error(value.span(), format!("{table}: {key}: {message}"));
    for field in fields.keys() {
        if !["value", "from_env", "from_file", "secret"].contains(&field.as_str()) {
            return Err(error(format!(
                "unknown key {field:?}; expected one of value, from_env, from_file, secret"
            )));
        }
    }
    let text = |field: &str| -> Result<Option<String>, ConfigError> {
        match fields.get(field) {
            None => Ok(None),
            Some(toml::Value::String(s)) if !s.trim().is_empty() => Ok(Some(s.clone())),
            Some(_) => Err(error(format!("`{field}` must be a non-empty string"))),
        }
    };
    let secret = match fields.get("secret") {
        None => None,
        Some(toml::Value::Boolean(b)) => Some(*b),
        Some(_) => return Err(error("`secret` must be true or false".into())),
    };
    let sources = [text("value")?, text("from_env")?, text("from_file")?];
    match sources {
        [Some(plain), None, None] => {
            if secret != Some(false) {
                return Err(error(
                    "an inline value is written in hoist.toml, so it cannot be a secret".into(),
                )
                .with_hint(format!(
                    "{secret_hint}; or, if it is not a secret, add secret = false"
                )));
            }
            Ok(EnvValue::Plain(plain))
        }
        [None, Some(name), None] => {
            if secret == Some(false) {
                return Err(error(
                    "a value read at deploy time is always treated as a secret; drop `secret = false`"
                        .into(),
                ));
            }
            Ok(EnvValue::FromEnv(name))
        }
        [None, None, Some(path)] => {
            if secret == Some(false) {
                return Err(error(
                    "a value read at deploy time is always treated as a secret; drop `secret = false`"
                        .into(),
                ));
            }
            let path = PathBuf::from(path);
            Ok(EnvValue::FromFile(if path.is_absolute() {
                path
            } else {
                crate::check::normalize(&dir.join(path))
            }))
        }
        _ => Err(error(
            "give exactly one of `value`, `from_env` or `from_file`".into(),
        )),
    }
}
