//! [`Config`]: the whole hoist.toml, and the functions that read, parse and find it.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use toml::Spanned;

use crate::check::{normalize, Checker};
use crate::inventory::{self, Inventory, RawInventory};
use crate::pipeline::Pipeline;
use crate::raw::RawConfig;
use crate::{app, health, hook, process, release};
use crate::{App, AppEnv, ConfigError, Health, Hook, Process, Release, Setup};

/// The name hoist looks for.
pub const FILE_NAME: &str = "hoist.toml";

/// A valid hoist.toml. Every value has been checked: the rest of hoist never sees an invalid one.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// The file, as the caller named it.
    pub path: PathBuf,
    /// The absolute directory that holds the file; relative paths in it start here.
    pub dir: PathBuf,
    /// `[app]`.
    pub app: App,
    /// `[release]`.
    pub release: Release,
    /// `[[hook]]`s, in file order.
    pub hooks: Vec<Hook>,
    /// `[[process]]`es, in file order.
    pub processes: Vec<Process>,
    /// `[health]`, when present.
    pub health: Option<Health>,
    /// `[setup]`: what `hoist setup` writes; defaults when the table is absent.
    pub setup: Setup,
    /// `[env]`, `[environments.<name>.env]` and `[app] installer_env`.
    pub env: AppEnv,
    /// `[pipeline]` (or the file it names), when present.
    pub pipeline: Option<Pipeline>,
    /// `[ssh]`, `[hosts.*]`, `[groups.*]`, `[environments.*]`; see [`Config::environment`].
    pub inventory: Inventory,
}

/// Reads, parses and validates the config file at `path`.
///
/// # Errors
///
/// When the file cannot be read, or for anything [`parse`] refuses.
pub fn load(path: &Path) -> Result<Config, ConfigError> {
    let text = read_config_text(path)?;
    parse(path, &text)
}

/// The largest config file hoist reads: a hoist.toml is a few kilobytes, and a bound means
/// `--config /dev/zero` is an error rather than a process that reads until memory runs out.
pub const MAX_CONFIG_BYTES: u64 = 1024 * 1024;

/// Reads a config file that must be a regular file (not a FIFO or a device, which could block
/// or never end) of at most [`MAX_CONFIG_BYTES`].
pub(crate) fn read_config_text(path: &Path) -> Result<String, ConfigError> {
    use std::io::Read;

    let cannot_read = |err: std::io::Error| {
        let error = ConfigError::new(path, format!("cannot read the config file: {err}"));
        if err.kind() == std::io::ErrorKind::NotFound {
            error.with_hint("run `hoist init` in the project directory to write one")
        } else {
            error
        }
    };
    let not_regular = || {
        ConfigError::new(path, "the config file is not a regular file")
            .with_hint("point --config at a hoist.toml file, not a device, FIFO or directory")
    };
    // Checked before opening: opening a FIFO for reading blocks until a writer comes.
    if !std::fs::metadata(path).map_err(cannot_read)?.is_file() {
        return Err(not_regular());
    }
    let file = std::fs::File::open(path).map_err(cannot_read)?;
    if !file.metadata().map_err(cannot_read)?.is_file() {
        return Err(not_regular());
    }
    let mut bytes = Vec::new();
    file.take(MAX_CONFIG_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(cannot_read)?;
    if bytes.len() as u64 > MAX_CONFIG_BYTES {
        return Err(ConfigError::new(
            path,
            format!(
                "the config file is larger than {} KiB; is it the right file?",
                MAX_CONFIG_BYTES / 1024
            ),
        ));
    }
    String::from_utf8(bytes).map_err(|_| {
        ConfigError::new(path, "the config file is not valid UTF-8")
            .with_hint("hoist.toml must be UTF-8 text")
    })
}

/// Parses and validates `text`, the contents of the config file at `path`.
///
/// Relative paths in the file are resolved against `path`'s directory, and files it names
/// (`source`, `requirements`) must exist there.
///
/// # Errors
///
/// The first problem found, with its line and column.
pub fn parse(path: &Path, text: &str) -> Result<Config, ConfigError> {
    let raw: RawConfig =
        toml::from_str(text).map_err(|err| ConfigError::from_toml(path, text, err))?;
    let check = Checker { path, text };
    let dir = config_dir(path);

    let app = app::validate(&check, &dir, raw.app.get_ref())?;
    let release = release::validate(&check, raw.release.get_ref())?;

    unique_names(&check, "hook", raw.hook.iter().map(|h| &h.get_ref().name))?;
    let hooks = raw
        .hook
        .iter()
        .map(|h| hook::validate(&check, h.get_ref()))
        .collect::<Result<_, _>>()?;

    unique_names(
        &check,
        "process",
        raw.process.iter().map(|p| &p.get_ref().name),
    )?;
    let processes: Vec<Process> = raw
        .process
        .iter()
        .map(|p| process::validate(&check, p.get_ref()))
        .collect::<Result<_, _>>()?;

    let health = raw
        .health
        .as_ref()
        .map(|h| health::validate(&check, h.span(), h.get_ref()))
        .transpose()?;

    let setup = crate::setup::validate(&check, &dir, raw.setup.as_ref())?;
    let processes =
        crate::setup::with_supervision(processes, &app.name, raw.setup.is_some(), &setup);

    let pipeline = raw
        .pipeline
        .as_ref()
        .map(|p| crate::pipeline::validate(&check, &dir, p))
        .transpose()?;

    let env = AppEnv {
        vars: crate::env::validate(&check, &dir, raw.env.as_ref(), "[env]")?,
        per_environment: raw
            .environments
            .iter()
            .map(|(name, environment)| {
                let table = format!("[environments.{}.env]", name.get_ref());
                crate::env::validate(&check, &dir, environment.env.as_ref(), &table)
                    .map(|vars| (name.get_ref().clone(), vars))
            })
            .collect::<Result<_, _>>()?,
        installer: crate::env::validate(
            &check,
            &dir,
            raw.app.get_ref().installer_env.as_ref(),
            "[app] installer_env",
        )?,
    };

    let inventory = inventory::validate(
        &check,
        &dir,
        &RawInventory {
            ssh: raw.ssh.as_ref(),
            hosts: &raw.hosts,
            groups: &raw.groups,
            environments: &raw.environments,
        },
    )?;

    Ok(Config {
        path: path.to_path_buf(),
        dir,
        app,
        release,
        hooks,
        processes,
        health,
        setup,
        env,
        pipeline,
        inventory,
    })
}

/// The hoist.toml in `start` or the nearest of its ancestors, as an absolute path.
#[must_use]
pub fn find(start: &Path) -> Option<PathBuf> {
    let start = std::path::absolute(start).ok()?;
    start
        .ancestors()
        .map(|dir| dir.join(FILE_NAME))
        .find(|candidate| candidate.is_file())
}

pub(crate) fn config_dir(path: &Path) -> PathBuf {
    let parent = path.parent().unwrap_or_else(|| Path::new(""));
    let parent = if parent.as_os_str().is_empty() {
        Path::new(".")
    } else {
        parent
    };
    normalize(&std::path::absolute(parent).unwrap_or_else(|_| parent.to_path_buf()))
}

fn unique_names<'a>(
    check: &Checker<'_>,
    kind: &str,
    names: impl Iterator<Item = &'a Spanned<String>>,
) -> Result<(), ConfigError> {
    let mut seen: HashMap<&str, usize> = HashMap::new();
    for name in names {
        if let Some(first) = seen.get(name.get_ref().as_str()) {
            let (first_line, _) = crate::error::line_and_column(check.text, *first);
            return Err(check
                .error(
                    name.span(),
                    format!(
                        "duplicate {kind} name {:?}; {kind} names must be unique (first used on line {first_line})",
                        name.get_ref()
                    ),
                )
                .with_hint(format!("rename one of the two {kind}s")));
        }
        seen.insert(name.get_ref(), name.span().start);
    }
    Ok(())
}
