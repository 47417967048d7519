//! hoist.toml exactly as written: every value with its span, nothing checked beyond its TOML type.
//!
//! These structs exist only to be validated into [`crate::Config`]. Keys are `Option` here even
//! when a default exists, so that validation decides the default and can point at the line of a
//! value that is present.

use std::collections::BTreeMap;

use serde::Deserialize;
use toml::Spanned;

use crate::inventory::{RawEnvironment, RawGroup, RawHost, RawSsh};

/// The whole file. A new top-level table (`[hosts.*]`, `[groups]`, `[environments.*]`) is one
/// more field here and one more validation step in `config.rs`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawConfig {
    pub app: Spanned<RawApp>,
    pub release: Spanned<RawRelease>,
    #[serde(default)]
    pub hook: Vec<Spanned<RawHook>>,
    #[serde(default)]
    pub process: Vec<Spanned<RawProcess>>,
    pub health: Option<Spanned<RawHealth>>,
    pub setup: Option<crate::setup::RawSetup>,
    pub pipeline: Option<crate::pipeline::raw::RawPipeline>,
    pub env: Option<crate::env::RawEnv>,
    pub ssh: Option<RawSsh>,
    #[serde(default)]
    pub hosts: BTreeMap<Spanned<String>, RawHost>,
    #[serde(default)]
    pub groups: BTreeMap<Spanned<String>, RawGroup>,
    #[serde(default)]
    pub environments: BTreeMap<Spanned<String>, RawEnvironment>,
}

pub(crate) type Text = Spanned<String>;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawApp {
    pub name: Text,
    pub source: Option<Text>,
    pub entry: Text,
    pub python: Option<Text>,
    pub requirements: Option<Spanned<Vec<Text>>>,
    pub dependencies: Option<Text>,
    pub extras: Option<Vec<Text>>,
    pub groups: Option<Vec<Text>>,
    pub exclude: Option<Vec<Text>>,
    pub installer: Option<Text>,
    pub installer_env: Option<crate::env::RawEnv>,
    pub python_path: Option<Vec<Text>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRelease {
    pub root: Text,
    pub keep_releases: Option<Spanned<i64>>,
    pub shared: Option<Vec<Text>>,
    pub releases_dir: Option<Text>,
    pub current_link: Option<Text>,
    pub lock_wait: Option<Text>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawHook {
    pub name: Text,
    pub run: Text,
    pub once: Option<bool>,
    pub timeout: Option<Text>,
    pub when: Option<Text>,
    pub first_deploy_only: Option<Spanned<bool>>,
}

/// Every strategy's keys are optional here; validation checks that the chosen strategy's key is
/// present and that no other strategy's key is.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawProcess {
    pub name: Text,
    pub restart: Text,
    pub command: Option<Text>,
    pub program: Option<Text>,
    pub unit: Option<Text>,
    pub fifo: Option<Text>,
    pub pidfile: Option<Text>,
    pub timeout: Option<Text>,
    /// What `hoist setup`'s supervisor program (or unit) runs, for a process that is not the
    /// app server: validated in `process.rs`.
    pub run: Option<Text>,
    pub supervisor_conf: Option<Text>,
    pub settle: Option<Text>,
    pub check: Option<Text>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawHealth {
    pub url: Option<Text>,
    pub status: Option<Spanned<i64>>,
    pub body: Option<Text>,
    pub command: Option<Text>,
    pub timeout: Option<Text>,
    pub interval: Option<Text>,
}
