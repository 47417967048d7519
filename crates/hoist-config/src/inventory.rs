//! Hosts, groups and environments: `[ssh]`, `[hosts.*]`, `[groups.*]`, `[environments.*]`.
//!
//! Validation turns the raw tables into an [`Inventory`] (every reference checked, with the
//! line of the offending value); [`Config::environment`] resolves one environment into the
//! [`HostSpec`]s a deploy acts on, each with its settings merged: host beats group beats
//! `[ssh]`/`[release]`/`[app]` defaults. With no hosts at all, the one environment is `local`:
//! the machine hoist runs on, as before fleets existed.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use crate::check::Checker;
use crate::raw::Text;
use crate::release::check_root;
use crate::suggest::closest;
use crate::{Config, ConfigError};

// ---------------------------------------------------------------------------------------------
// Raw tables, exactly as written.

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawSsh {
    pub user: Option<Text>,
    pub port: Option<Spanned<i64>>,
    pub identity_file: Option<Text>,
    pub config_file: Option<Text>,
    pub accept_new_host_keys: Option<bool>,
    pub connect_timeout: Option<Text>,
    pub forks: Option<Spanned<i64>>,
    #[serde(rename = "become")]
    pub become_mode: Option<Spanned<toml::Value>>,
    pub become_user: Option<Text>,
}

/// Free-form `vars = { key = value }`: strings, integers and booleans.
pub(crate) type RawVars = BTreeMap<String, Spanned<toml::Value>>;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawHost {
    pub address: Text,
    pub user: Option<Text>,
    pub port: Option<Spanned<i64>>,
    pub identity_file: Option<Text>,
    pub groups: Option<Vec<Text>>,
    pub root: Option<Text>,
    pub python: Option<Text>,
    pub vars: Option<RawVars>,
    #[serde(rename = "become")]
    pub become_mode: Option<Spanned<toml::Value>>,
    pub become_user: Option<Text>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawGroup {
    pub user: Option<Text>,
    pub port: Option<Spanned<i64>>,
    pub identity_file: Option<Text>,
    pub root: Option<Text>,
    pub python: Option<Text>,
    pub vars: Option<RawVars>,
    #[serde(rename = "become")]
    pub become_mode: Option<Spanned<toml::Value>>,
    pub become_user: Option<Text>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawEnvironment {
    pub groups: Option<Vec<Text>>,
    pub hosts: Option<Vec<Text>>,
    pub activation: Option<Text>,
    pub batch: Option<Spanned<toml::Value>>,
    pub pause: Option<Text>,
    /// Validated by `env.rs` into [`crate::AppEnv`].
    pub env: Option<crate::env::RawEnv>,
}

/// The four inventory tables of the raw config.
pub(crate) struct RawInventory<'a> {
    pub ssh: Option<&'a RawSsh>,
    pub hosts: &'a BTreeMap<Spanned<String>, RawHost>,
    pub groups: &'a BTreeMap<Spanned<String>, RawGroup>,
    pub environments: &'a BTreeMap<Spanned<String>, RawEnvironment>,
}

// ---------------------------------------------------------------------------------------------
// Validated inventory.

/// Which commands run on a host as another user, through `sudo -n` (`become`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BecomeMode {
    /// Every command as the login user (no `become`, or `become = false`).
    #[default]
    Off,
    /// `become = true`: the commands that restart, query and set up the app's processes.
    Service,
    /// `become = "all"`: every command and file operation of the deploy, and rsync.
    All,
}

/// `[ssh]`: connection defaults for every host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SshDefaults {
    /// Login user; `None` leaves it to ssh.
    pub user: Option<String>,
    /// Port; `None` leaves it to ssh.
    pub port: Option<u16>,
    /// The key to offer; `~` expanded, relative paths resolved against hoist.toml's directory.
    pub identity_file: Option<PathBuf>,
    /// An ssh_config passed as `ssh -F`, resolved like `identity_file`.
    pub config_file: Option<PathBuf>,
    /// Trust a host key seen for the first time; a changed key is always refused.
    pub accept_new_host_keys: bool,
    /// How long connecting to a host may take.
    pub connect_timeout: Duration,
    /// How many hosts are worked on at once; at least 1.
    pub forks: usize,
    /// `become` for every host.
    pub become_mode: Option<BecomeMode>,
    /// `become_user` for every host.
    pub become_user: Option<String>,
}

impl Default for SshDefaults {
    fn default() -> Self {
        SshDefaults {
            user: None,
            port: None,
            identity_file: None,
            config_file: None,
            accept_new_host_keys: false,
            connect_timeout: Duration::from_secs(10),
            forks: 10,
            become_mode: None,
            become_user: None,
        }
    }
}

/// Settings a group or a host may override.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostSettings {
    /// Login user.
    pub user: Option<String>,
    /// SSH port.
    pub port: Option<u16>,
    /// Key to offer.
    pub identity_file: Option<PathBuf>,
    /// Release root on this host (replaces `release.root`).
    pub root: Option<PathBuf>,
    /// Interpreter command on this host (replaces `app.python`).
    pub python: Option<String>,
    /// Free-form variables, as strings.
    pub vars: BTreeMap<String, String>,
    /// `become`.
    pub become_mode: Option<BecomeMode>,
    /// `become_user`.
    pub become_user: Option<String>,
}

/// One `[hosts.<name>]`, validated but not merged with its groups.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InventoryHost {
    /// The inventory name.
    pub name: String,
    /// Host name, IP, ssh_config alias, or `local`/`localhost` for this machine.
    pub address: String,
    /// Groups, in the order written; each exists.
    pub groups: Vec<String>,
    /// The host's own overrides.
    pub settings: HostSettings,
}

/// How a deploy switches the hosts of an environment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Activation {
    /// Every host at once, after every host is prepared.
    #[default]
    All,
    /// In batches, pausing between them.
    Rolling { batch: Batch, pause: Duration },
    /// One host first, checked, then the rest.
    Canary,
}

/// The size of a rolling batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Batch {
    /// This many hosts at a time (at least 1).
    Count(usize),
    /// This percentage of the environment's hosts, rounded up (1 to 100).
    Percent(u8),
}

impl Batch {
    /// How many of `hosts` hosts one batch takes: at least 1, at most `hosts`.
    #[must_use]
    pub fn size(self, hosts: usize) -> usize {
        let n = match self {
            Batch::Count(n) => n,
            Batch::Percent(p) => (hosts * usize::from(p)).div_ceil(100),
        };
        n.clamp(1, hosts.max(1))
    }
}

/// One `[environments.<name>]`, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InventoryEnvironment {
    /// The environment's name.
    pub name: String,
    /// Groups it selects; each exists.
    pub groups: Vec<String>,
    /// Hosts it selects in addition; each exists.
    pub hosts: Vec<String>,
    /// How hosts are switched.
    pub activation: Activation,
}

/// The validated inventory: what `[ssh]`, `[hosts]`, `[groups]` and `[environments]` say.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Inventory {
    /// `[ssh]`, with defaults.
    pub ssh: SshDefaults,
    /// Hosts in file order.
    pub hosts: Vec<InventoryHost>,
    /// Groups by name.
    pub groups: BTreeMap<String, HostSettings>,
    /// Environments in file order.
    pub environments: Vec<InventoryEnvironment>,
}

/// One host as a deploy sees it: every setting merged (host beats group beats defaults).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostSpec {
    /// The inventory name, shown in every message.
    pub name: String,
    /// Where to connect; `local`/`localhost` means this machine, without SSH.
    pub address: String,
    /// Login user; `None` leaves it to ssh.
    pub user: Option<String>,
    /// Port; `None` leaves it to ssh.
    pub port: Option<u16>,
    /// Key to offer; `None` leaves it to ssh and its agent.
    pub identity_file: Option<PathBuf>,
    /// `ssh -F` file, from `[ssh]`.
    pub config_file: Option<PathBuf>,
    /// The release root on this host.
    pub root: PathBuf,
    /// The interpreter command on this host.
    pub python: String,
    /// The host's groups.
    pub groups: Vec<String>,
    /// Variables: group values, then the host's own on top.
    pub vars: BTreeMap<String, String>,
    /// Trust-on-first-use for this host's key.
    pub accept_new_host_keys: bool,
    /// Connect timeout.
    pub connect_timeout: Duration,
    /// Which commands run through `sudo -n` as [`HostSpec::become_user`].
    pub become_mode: BecomeMode,
    /// The user `become` runs commands as; `root` unless `become_user` says otherwise.
    pub become_user: String,
}

/// The hosts one command acts on, and how.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Environment {
    /// The environment's name (`local` when hoist.toml has no hosts).
    pub name: String,
    /// Its hosts, in file order, each once.
    pub hosts: Vec<HostSpec>,
    /// How they are switched.
    pub activation: Activation,
    /// How many hosts are worked on at once.
    pub forks: usize,
}

/// The name of the environment hoist uses when hoist.toml lists no hosts.
pub const LOCAL: &str = "local";

/// The name of the environment made of every host when hosts exist but no environment does.
pub const ALL_HOSTS: &str = "all";

/// Why `--hosts`/`--group` selected nothing usable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SelectError {
    /// A `--hosts` name that the environment does not have.
    #[error("no host {name:?} in environment {environment}; its hosts are {known}")]
    UnknownHost {
        name: String,
        environment: String,
        known: String,
    },
    /// A `--group` that no host of the environment is in.
    #[error("no host of environment {environment} is in group {group:?}; its groups are {known}")]
    UnknownGroup {
        group: String,
        environment: String,
        known: String,
    },
    /// Both filters together leave nothing.
    #[error("--hosts and --group together select no host of environment {environment}")]
    Empty { environment: String },
}

impl Inventory {
    /// Widens every `become = true` to the whole of a command, as `become = "all"`. For `hoist
    /// setup`, whose every step needs root: it writes under /etc, creates the root and chowns.
    pub fn widen_become(&mut self) {
        let widen = |mode: &mut Option<BecomeMode>| {
            if *mode == Some(BecomeMode::Service) {
                *mode = Some(BecomeMode::All);
            }
        };
        widen(&mut self.ssh.become_mode);
        for group in self.groups.values_mut() {
            widen(&mut group.become_mode);
        }
        for host in &mut self.hosts {
            widen(&mut host.settings.become_mode);
        }
    }
}

impl Environment {
    /// The hosts named in `hosts` (all of them when empty) that are in `group` (any group when
    /// `None`), keeping the environment's order and activation.
    ///
    /// # Errors
    ///
    /// A name or group the environment does not have, or filters that leave nothing.
    pub fn select(
        &self,
        hosts: &[String],
        group: Option<&str>,
    ) -> Result<Environment, SelectError> {
        for name in hosts {
            if !self.hosts.iter().any(|h| &h.name == name) {
                return Err(SelectError::UnknownHost {
                    name: name.clone(),
                    environment: self.name.clone(),
                    known: list(self.hosts.iter().map(|h| h.name.as_str())),
                });
            }
        }
        if let Some(group) = group {
            if !self
                .hosts
                .iter()
                .any(|h| h.groups.iter().any(|g| g == group))
            {
                let groups: BTreeSet<&str> = self
                    .hosts
                    .iter()
                    .flat_map(|h| h.groups.iter().map(String::as_str))
                    .collect();
                return Err(SelectError::UnknownGroup {
                    group: group.to_owned(),
                    environment: self.name.clone(),
                    known: list(groups.into_iter()),
                });
            }
        }
        let selected: Vec<HostSpec> = self
            .hosts
            .iter()
            .filter(|h| hosts.is_empty() || hosts.contains(&h.name))
            .filter(|h| group.is_none_or(|g| h.groups.iter().any(|hg| hg == g)))
            .cloned()
            .collect();
        if selected.is_empty() {
            return Err(SelectError::Empty {
                environment: self.name.clone(),
            });
        }
        Ok(Environment {
            hosts: selected,
            ..self.clone()
        })
    }
}

fn list<'a>(names: impl Iterator<Item = &'a str>) -> String {
    let names: Vec<&str> = names.collect();
    if names.is_empty() {
        "none".to_owned()
    } else {
        names.join(", ")
    }
}

impl fmt::Display for Activation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Activation::All => write!(f, "all"),
            Activation::Rolling { batch, pause } => {
                let batch = match batch {
                    Batch::Count(n) => n.to_string(),
                    Batch::Percent(p) => format!("{p}%"),
                };
                write!(f, "rolling (batch {batch}, pause {}s)", pause.as_secs())
            }
            Activation::Canary => write!(f, "canary"),
        }
    }
}

impl Config {
    /// The environment `name`, resolved into hosts with every setting merged.
    ///
    /// `None` picks the only environment; with no `[environments]`, the environment `all` of
    /// every host; with no `[hosts]` either, the environment `local` of this machine alone.
    ///
    /// # Errors
    ///
    /// An unknown name (listing the environments), or `None` when there are several.
    pub fn environment(&self, name: Option<&str>) -> Result<Environment, ConfigError> {
        let inventory = &self.inventory;
        if inventory.hosts.is_empty() {
            return match name {
                None | Some(LOCAL) => Ok(self.local_environment()),
                Some(other) => Err(ConfigError::new(
                    &self.path,
                    format!("unknown environment {other:?}: hoist.toml defines no hosts, so the only environment is \"local\""),
                )
                .with_hint("add [hosts.<name>] and [environments.<name>] tables; docs/config.md shows how")),
            };
        }
        if inventory.environments.is_empty() {
            return match name {
                None | Some(ALL_HOSTS) => Ok(Environment {
                    name: ALL_HOSTS.to_owned(),
                    hosts: inventory.hosts.iter().map(|h| self.host_spec(h)).collect(),
                    activation: Activation::All,
                    forks: inventory.ssh.forks,
                }),
                Some(other) => Err(ConfigError::new(
                    &self.path,
                    format!("unknown environment {other:?}: hoist.toml defines no [environments], so the only one is \"all\" (every host)"),
                )
                .with_hint(format!("add [environments.{other}] with groups = [...] or hosts = [...]"))),
            };
        }
        let names: Vec<&str> = inventory
            .environments
            .iter()
            .map(|e| e.name.as_str())
            .collect();
        let env = match name {
            None if inventory.environments.len() == 1 => &inventory.environments[0],
            None => {
                return Err(ConfigError::new(
                    &self.path,
                    format!(
                        "hoist.toml defines several environments ({}); say which one",
                        names.join(", ")
                    ),
                )
                .with_hint(format!("e.g. --env {}", names[0])))
            }
            Some(wanted) => match inventory.environments.iter().find(|e| e.name == wanted) {
                Some(env) => env,
                None => {
                    let guess = closest(wanted, &names)
                        .map(|g| format!("did you mean {g:?}? "))
                        .unwrap_or_default();
                    return Err(ConfigError::new(
                        &self.path,
                        format!(
                            "unknown environment {wanted:?}; {guess}environments are {}",
                            names.join(", ")
                        ),
                    ));
                }
            },
        };
        let hosts = inventory
            .hosts
            .iter()
            .filter(|h| {
                env.hosts.contains(&h.name) || h.groups.iter().any(|g| env.groups.contains(g))
            })
            .map(|h| self.host_spec(h))
            .collect();
        Ok(Environment {
            name: env.name.clone(),
            hosts,
            activation: env.activation,
            forks: inventory.ssh.forks,
        })
    }

    fn local_environment(&self) -> Environment {
        let ssh = &self.inventory.ssh;
        Environment {
            name: LOCAL.to_owned(),
            hosts: vec![HostSpec {
                name: LOCAL.to_owned(),
                address: LOCAL.to_owned(),
                user: None,
                port: None,
                identity_file: None,
                config_file: None,
                root: self.release.root.clone(),
                python: self.app.python.clone(),
                groups: Vec::new(),
                vars: BTreeMap::new(),
                accept_new_host_keys: ssh.accept_new_host_keys,
                connect_timeout: ssh.connect_timeout,
                become_mode: ssh.become_mode.unwrap_or_default(),
                become_user: ssh.become_user.clone().unwrap_or_else(|| "root".to_owned()),
            }],
            activation: Activation::All,
            forks: 1,
        }
    }

    fn host_spec(&self, host: &InventoryHost) -> HostSpec {
        let ssh = &self.inventory.ssh;
        let mut merged = HostSettings {
            user: ssh.user.clone(),
            port: ssh.port,
            identity_file: ssh.identity_file.clone(),
            become_mode: ssh.become_mode,
            become_user: ssh.become_user.clone(),
            ..HostSettings::default()
        };
        for group in &host.groups {
            if let Some(settings) = self.inventory.groups.get(group) {
                overlay(&mut merged, settings);
            }
        }
        overlay(&mut merged, &host.settings);
        HostSpec {
            name: host.name.clone(),
            address: host.address.clone(),
            user: merged.user,
            port: merged.port,
            identity_file: merged.identity_file,
            config_file: ssh.config_file.clone(),
            root: merged.root.unwrap_or_else(|| self.release.root.clone()),
            python: merged.python.unwrap_or_else(|| self.app.python.clone()),
            groups: host.groups.clone(),
            vars: merged.vars,
            accept_new_host_keys: ssh.accept_new_host_keys,
            connect_timeout: ssh.connect_timeout,
            become_mode: merged.become_mode.unwrap_or_default(),
            become_user: merged.become_user.unwrap_or_else(|| "root".to_owned()),
        }
    }
}

fn overlay(base: &mut HostSettings, top: &HostSettings) {
    if top.user.is_some() {
        base.user.clone_from(&top.user);
    }
    if top.port.is_some() {
        base.port = top.port;
    }
    if top.identity_file.is_some() {
        base.identity_file.clone_from(&top.identity_file);
    }
    if top.root.is_some() {
        base.root.clone_from(&top.root);
    }
    if top.python.is_some() {
        base.python.clone_from(&top.python);
    }
    if top.become_mode.is_some() {
        base.become_mode = top.become_mode;
    }
    if top.become_user.is_some() {
        base.become_user.clone_from(&top.become_user);
    }
    base.vars
        .extend(top.vars.iter().map(|(k, v)| (k.clone(), v.clone())));
}

// ---------------------------------------------------------------------------------------------
// Validation.

pub(crate) fn validate(
    check: &Checker<'_>,
    dir: &Path,
    raw: &RawInventory<'_>,
) -> Result<Inventory, ConfigError> {
    let ssh = match raw.ssh {
        None => SshDefaults::default(),
        Some(raw_ssh) => ssh_defaults(check, dir, raw_ssh)?,
    };

    let mut groups = BTreeMap::new();
    for (name, group) in raw.groups {
        inventory_name(check, name, "group")?;
        let settings = settings(
            check,
            dir,
            &SettingsRef {
                user: group.user.as_ref(),
                port: group.port.as_ref(),
                identity_file: group.identity_file.as_ref(),
                root: group.root.as_ref(),
                python: group.python.as_ref(),
                vars: group.vars.as_ref(),
                become_mode: group.become_mode.as_ref(),
                become_user: group.become_user.as_ref(),
            },
        )?;
        groups.insert(name.get_ref().clone(), settings);
    }

    // File order, so that a deploy reports hosts in the order the user wrote them.
    let mut raw_hosts: Vec<(&Spanned<String>, &RawHost)> = raw.hosts.iter().collect();
    raw_hosts.sort_by_key(|(name, _)| name.span().start);
    let mut hosts = Vec::new();
    for (name, host) in raw_hosts {
        inventory_name(check, name, "host")?;
        if let Some(group) = raw.groups.keys().find(|g| g.get_ref() == name.get_ref()) {
            let (line, _) = crate::error::line_and_column(check.text, group.span().start);
            return Err(check
                .error(
                    name.span(),
                    format!(
                        "{:?} is the name of a host and of a group (line {line}); --hosts and --group would be ambiguous",
                        name.get_ref()
                    ),
                )
                .with_hint("rename the host or the group"));
        }
        let address = check.non_empty(&host.address, "address")?;
        if address.chars().any(|c| c.is_whitespace() || c.is_control()) || address.starts_with('-')
        {
            return Err(check
                .error(
                    host.address.span(),
                    format!(
                        "address {address:?} is not a host name, IP address or ssh_config alias"
                    ),
                )
                .with_hint("e.g. address = \"203.0.113.10\", or \"local\" for this machine"));
        }
        let mut host_groups: Vec<String> = Vec::new();
        for group in host.groups.iter().flatten() {
            if host_groups.contains(group.get_ref()) {
                return Err(check.error(
                    group.span(),
                    format!(
                        "group {:?} is listed twice for host {:?}",
                        group.get_ref(),
                        name.get_ref()
                    ),
                ));
            }
            host_groups.push(group.get_ref().clone());
        }
        let settings = settings(
            check,
            dir,
            &SettingsRef {
                user: host.user.as_ref(),
                port: host.port.as_ref(),
                identity_file: host.identity_file.as_ref(),
                root: host.root.as_ref(),
                python: host.python.as_ref(),
                vars: host.vars.as_ref(),
                become_mode: host.become_mode.as_ref(),
                become_user: host.become_user.as_ref(),
            },
        )?;
        hosts.push(InventoryHost {
            name: name.get_ref().clone(),
            address,
            groups: host_groups,
            settings,
        });
    }

    let mut raw_envs: Vec<(&Spanned<String>, &RawEnvironment)> = raw.environments.iter().collect();
    raw_envs.sort_by_key(|(name, _)| name.span().start);
    let mut environments = Vec::new();
    for (name, env) in raw_envs {
        inventory_name(check, name, "environment")?;
        environments.push(environment(check, raw, &hosts, name, env)?);
    }

    Ok(Inventory {
        ssh,
        hosts,
        groups,
        environments,
    })
}

/// Every group: those with a `[groups.<name>]` table and those that hosts name without one (a
/// table is only needed to carry settings).
fn defined_groups(raw: &RawInventory<'_>) -> Vec<String> {
    let mut names: BTreeSet<String> = raw.groups.keys().map(|g| g.get_ref().clone()).collect();
    for host in raw.hosts.values() {
        names.extend(host.groups.iter().flatten().map(|g| g.get_ref().clone()));
    }
    names.into_iter().collect()
}

fn environment(
    check: &Checker<'_>,
    raw: &RawInventory<'_>,
    hosts: &[InventoryHost],
    name: &Spanned<String>,
    env: &RawEnvironment,
) -> Result<InventoryEnvironment, ConfigError> {
    let known_groups = defined_groups(raw);
    let mut groups = Vec::new();
    for group in env.groups.iter().flatten() {
        if !known_groups.contains(group.get_ref()) {
            return Err(unknown_reference(check, group, "group", &known_groups));
        }
        if groups.contains(group.get_ref()) {
            return Err(check.error(
                group.span(),
                format!(
                    "group {:?} is listed twice in environment {:?}",
                    group.get_ref(),
                    name.get_ref()
                ),
            ));
        }
        groups.push(group.get_ref().clone());
    }
    let host_names: Vec<String> = hosts.iter().map(|h| h.name.clone()).collect();
    let mut env_hosts = Vec::new();
    for host in env.hosts.iter().flatten() {
        if !host_names.contains(host.get_ref()) {
            return Err(unknown_reference(check, host, "host", &host_names));
        }
        if env_hosts.contains(host.get_ref()) {
            return Err(check.error(
                host.span(),
                format!(
                    "host {:?} is listed twice in environment {:?}",
                    host.get_ref(),
                    name.get_ref()
                ),
            ));
        }
        env_hosts.push(host.get_ref().clone());
    }
    let selects_any = hosts
        .iter()
        .any(|h| env_hosts.contains(&h.name) || h.groups.iter().any(|g| groups.contains(g)));
    if !selects_any {
        return Err(check
            .error(
                name.span(),
                format!("environment {:?} selects no host", name.get_ref()),
            )
            .with_hint(
                "give it groups = [\"web\"] or hosts = [\"web1\"], naming groups that have hosts",
            ));
    }
    let activation = activation(check, env)?;
    Ok(InventoryEnvironment {
        name: name.get_ref().clone(),
        groups,
        hosts: env_hosts,
        activation,
    })
}

const ACTIVATIONS: &[&str] = &["all", "rolling", "canary"];

fn activation(check: &Checker<'_>, env: &RawEnvironment) -> Result<Activation, ConfigError> {
    let kind = env
        .activation
        .as_ref()
        .map_or("all", |a| a.get_ref().as_str());
    if kind != "rolling" {
        let stray = env
            .batch
            .as_ref()
            .map(|b| ("batch", b.span()))
            .or(env.pause.as_ref().map(|p| ("pause", p.span())));
        if let Some((key, span)) = stray {
            return Err(check
                .error(
                    span,
                    format!("`{key}` only applies to activation = \"rolling\", not {kind:?}"),
                )
                .with_hint(format!("add activation = \"rolling\", or remove `{key}`")));
        }
    }
    match kind {
        "all" => Ok(Activation::All),
        "canary" => Ok(Activation::Canary),
        "rolling" => {
            let batch = match &env.batch {
                None => Batch::Count(1),
                Some(value) => batch(check, value)?,
            };
            let pause = check.duration(env.pause.as_ref(), "pause", Duration::ZERO)?;
            Ok(Activation::Rolling { batch, pause })
        }
        other => {
            let span = env
                .activation
                .as_ref()
                .map(Spanned::span)
                .unwrap_or_default();
            let mut error = check.error(
                span,
                format!("unknown activation {other:?}; expected one of all, rolling, canary"),
            );
            if let Some(guess) = closest(other, ACTIVATIONS) {
                error = error.with_hint(format!("did you mean \"{guess}\"?"));
            }
            Err(error)
        }
    }
}

fn batch(check: &Checker<'_>, value: &Spanned<toml::Value>) -> Result<Batch, ConfigError> {
    let bad = |what: String| {
        check
            .error(value.span(), what)
            .with_hint("batch is a number of hosts (batch = 2) or a percentage (batch = \"25%\")")
    };
    match value.get_ref() {
        toml::Value::Integer(n) if *n >= 1 => Ok(Batch::Count(
            usize::try_from(*n).map_err(|_| bad(format!("batch {n} is too large")))?,
        )),
        toml::Value::Integer(n) => Err(bad(format!("batch must be at least 1, not {n}"))),
        toml::Value::String(text) => {
            let percent = text
                .strip_suffix('%')
                .and_then(|n| n.parse::<u8>().ok())
                .filter(|p| (1..=100).contains(p));
            percent.map(Batch::Percent).ok_or_else(|| {
                bad(format!(
                    "invalid batch {text:?}: expected a percentage from \"1%\" to \"100%\""
                ))
            })
        }
        other => Err(bad(format!(
            "batch must be an integer or a percentage string, not {}",
            other.type_str()
        ))),
    }
}

fn ssh_defaults(check: &Checker<'_>, dir: &Path, raw: &RawSsh) -> Result<SshDefaults, ConfigError> {
    let forks = match &raw.forks {
        None => 10,
        Some(forks) => {
            let n = *forks.get_ref();
            if n < 1 {
                return Err(check
                    .error(forks.span(), format!("forks must be at least 1, not {n}"))
                    .with_hint("forks is how many hosts hoist works on at once, e.g. forks = 10"));
            }
            usize::try_from(n).map_err(|_| check.error(forks.span(), "forks is too large"))?
        }
    };
    Ok(SshDefaults {
        user: raw
            .user
            .as_ref()
            .map(|u| user(check, u, "user"))
            .transpose()?,
        port: raw.port.as_ref().map(|p| port(check, p)).transpose()?,
        identity_file: raw
            .identity_file
            .as_ref()
            .map(|f| local_path(check, dir, f, "identity_file"))
            .transpose()?,
        config_file: raw
            .config_file
            .as_ref()
            .map(|f| local_path(check, dir, f, "config_file"))
            .transpose()?,
        accept_new_host_keys: raw.accept_new_host_keys.unwrap_or(false),
        connect_timeout: check.positive_duration(
            raw.connect_timeout.as_ref(),
            "connect_timeout",
            Duration::from_secs(10),
        )?,
        forks,
        become_mode: raw
            .become_mode
            .as_ref()
            .map(|b| become_mode(check, b))
            .transpose()?,
        become_user: raw
            .become_user
            .as_ref()
            .map(|u| user(check, u, "become_user"))
            .transpose()?,
    })
}

struct SettingsRef<'a> {
    user: Option<&'a Text>,
    port: Option<&'a Spanned<i64>>,
    identity_file: Option<&'a Text>,
    root: Option<&'a Text>,
    python: Option<&'a Text>,
    vars: Option<&'a RawVars>,
    become_mode: Option<&'a Spanned<toml::Value>>,
    become_user: Option<&'a Text>,
}

fn settings(
    check: &Checker<'_>,
    dir: &Path,
    raw: &SettingsRef<'_>,
) -> Result<HostSettings, ConfigError> {
    let root = match raw.root {
        None => None,
        Some(root) => Some(
            check_root(root.get_ref())
                .map_err(|(message, hint)| check.error(root.span(), message).with_hint(hint))?,
        ),
    };
    let mut vars = BTreeMap::new();
    for (key, value) in raw.vars.into_iter().flatten() {
        let text = match value.get_ref() {
            toml::Value::String(s) => s.clone(),
            toml::Value::Integer(n) => n.to_string(),
            toml::Value::Boolean(b) => b.to_string(),
            other => {
                return Err(check
                    .error(
                        value.span(),
                        format!(
                            "variable `{key}` must be a string, integer or boolean, not {}",
                            other.type_str()
                        ),
                    )
                    .with_hint("write it as a string, e.g. \"1.5\""))
            }
        };
        vars.insert(key.clone(), text);
    }
    Ok(HostSettings {
        user: raw.user.map(|u| user(check, u, "user")).transpose()?,
        port: raw.port.map(|p| port(check, p)).transpose()?,
        identity_file: raw
            .identity_file
            .map(|f| local_path(check, dir, f, "identity_file"))
            .transpose()?,
        root,
        python: raw
            .python
            .map(|p| check.non_empty(p, "python"))
            .transpose()?,
        vars,
        become_mode: raw.become_mode.map(|b| become_mode(check, b)).transpose()?,
        become_user: raw
            .become_user
            .map(|u| user(check, u, "become_user"))
            .transpose()?,
    })
}

/// `become = true | false | "all"`.
fn become_mode(check: &Checker<'_>, raw: &Spanned<toml::Value>) -> Result<BecomeMode, ConfigError> {
    match raw.get_ref() {
        toml::Value::Boolean(true) => Ok(BecomeMode::Service),
        toml::Value::Boolean(false) => Ok(BecomeMode::Off),
        toml::Value::String(s) if s == "all" => Ok(BecomeMode::All),
        other => Err(check
            .error(
                raw.span(),
                format!("become must be true, false or \"all\", not {other}"),
            )
            .with_hint("become = true runs restart, status and setup commands through sudo -n; become = \"all\" the whole deploy")),
    }
}

/// A login name, for the key `key` (`user`, `become_user`).
fn user(check: &Checker<'_>, raw: &Text, key: &str) -> Result<String, ConfigError> {
    let name = raw.get_ref();
    let valid = !name.is_empty()
        && !name.starts_with('-')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '$'));
    if valid {
        Ok(name.clone())
    } else {
        Err(check
            .error(
                raw.span(),
                format!("{key} {name:?} is not a valid login name"),
            )
            .with_hint(format!("e.g. {key} = \"deploy\"")))
    }
}

fn port(check: &Checker<'_>, raw: &Spanned<i64>) -> Result<u16, ConfigError> {
    let n = *raw.get_ref();
    u16::try_from(n).ok().filter(|p| *p != 0).ok_or_else(|| {
        check.error(
            raw.span(),
            format!("port {n} is not a TCP port (1 to 65535)"),
        )
    })
}

/// A path on the controller: `~/` is the home directory, relative paths start at hoist.toml's
/// directory.
fn local_path(
    check: &Checker<'_>,
    dir: &Path,
    raw: &Text,
    key: &str,
) -> Result<PathBuf, ConfigError> {
    let text = check.non_empty(raw, key)?;
    if let Some(rest) = text.strip_prefix("~/") {
        return Ok(match std::env::var_os("HOME") {
            Some(home) => PathBuf::from(home).join(rest),
            // Left for ssh to expand: it knows the home directory from the password database.
            None => PathBuf::from(text),
        });
    }
    Ok(crate::check::normalize(&dir.join(&text)))
}

/// Host, group and environment names: `[A-Za-z0-9._-]+`, so they are safe in messages, file
/// names and on the command line.
fn inventory_name(
    check: &Checker<'_>,
    name: &Spanned<String>,
    kind: &str,
) -> Result<(), ConfigError> {
    let text = name.get_ref();
    let valid = !text.is_empty()
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if valid {
        Ok(())
    } else {
        Err(check
            .error(
                name.span(),
                format!(
                    "{kind} name {text:?} is invalid: use letters, digits, \".\", \"_\" and \"-\""
                ),
            )
            .with_hint(format!("e.g. [{kind}s.{}]", sanitize_name(text))))
    }
}

fn sanitize_name(text: &str) -> String {
    let name: String = text
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '-'
            }
        })
        .collect();
    if name.is_empty() {
        "web1".to_owned()
    } else {
        name
    }
}

fn unknown_reference(
    check: &Checker<'_>,
    name: &Spanned<String>,
    kind: &str,
    known: &[String],
) -> ConfigError {
    let candidates: Vec<&str> = known.iter().map(String::as_str).collect();
    let guess = closest(name.get_ref(), &candidates)
        .map(|g| format!("did you mean {g:?}? "))
        .unwrap_or_default();
    let known = if known.is_empty() {
        format!("no {kind}s are defined")
    } else {
        format!("{kind}s are {}", known.join(", "))
    };
    check
        .error(
            name.span(),
            format!("unknown {kind} {:?}; {guess}{known}", name.get_ref()),
        )
        .with_hint(format!(
            "define [{kind}s.{}] or fix the name",
            name.get_ref()
        ))
}
