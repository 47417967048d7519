//! hoist.toml: its schema, parsing with line-precise errors, validation, and `hoist init`.
//!
//! The file is deserialized into raw structs that keep every value's span, then validated into
//! [`Config`], whose fields are all checked (ripgrep's way: the rest of hoist never sees an
//! invalid value). Every problem is a [`ConfigError`] that names the file, line and column, what
//! is wrong and, in a hint, how to fix it. [`init_plan`] writes a commented hoist.toml for a
//! project by looking at its files. docs/config.md documents every key.

mod app;
mod check;
mod config;
mod duration;
mod env;
mod error;
mod health;
mod hook;
mod import_ansible;
mod import_ansible_tasks;
mod import_path;
mod init;
mod inventory;
pub mod pipeline;
mod process;
mod raw;
mod release;
mod setup;
mod suggest;

pub use app::{App, DependencyFormat, Entry, InstallerChoice};
pub use config::{find, load, parse, Config, FILE_NAME};
pub use duration::{parse_duration, DurationError, MAX_DURATION};
pub use env::{name_says_secret, AppEnv, EnvValue, EnvVar};
pub use error::ConfigError;
pub use health::{Health, HealthProbe};
pub use hook::{Hook, HookWhen};
pub use import_ansible::{import_ansible, AnsibleImport, AnsibleImportError};
pub use import_ansible_tasks::{
    ansible_vars, read_ansible_playbook, read_ansible_tasks, AnsibleTasks, BecomePlay,
};
pub use import_path::detect_python_path;
pub use init::{init_plan, placeholders, InitError, InitPlan, Placeholder};
pub use inventory::{
    Activation, Batch, BecomeMode, Environment, HostSettings, HostSpec, Inventory,
    InventoryEnvironment, InventoryHost, SelectError, SshDefaults, ALL_HOSTS, LOCAL,
};
pub use process::{Process, Restart, Supervised};
pub use release::{Release, SharedPath};
pub use setup::{AppServer, Setup, Supervision};
