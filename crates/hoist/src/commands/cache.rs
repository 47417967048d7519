//! `hoist cache`: look at and clean the CI cache store.

use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hoist_config::parse_duration;
use hoist_config::pipeline::{parse_size, CacheLimits};
use hoist_pipeline::cache_store::CacheStore;

use crate::command_error::CommandError;
use crate::commands::config_path;
use crate::printer::Printer;

/// `hoist cache ...`
#[derive(clap::Subcommand, Debug)]
pub enum CacheCommand {
    /// List the caches, newest first: key, size, age, paths.
    Ls(LsArgs),
    /// Remove the caches whose key starts with PREFIX.
    Rm(RmArgs),
    /// Remove caches older than --max-age, then the oldest until the store fits --max-size.
    Prune(PruneArgs),
}

/// `hoist cache ls`
#[derive(clap::Args, Debug)]
pub struct LsArgs {
    /// Print one JSON object per cache.
    #[arg(long)]
    pub json: bool,
}

/// `hoist cache rm`
#[derive(clap::Args, Debug)]
pub struct RmArgs {
    /// Key prefix of the caches to remove.
    #[arg(value_name = "PREFIX", required_unless_present = "all")]
    pub prefix: Option<String>,
    /// Remove every cache.
    #[arg(long, conflicts_with = "prefix")]
    pub all: bool,
}

/// `hoist cache prune`
#[derive(clap::Args, Debug)]
pub struct PruneArgs {
    /// Size bound, e.g. 500MB or 5GB (default: [pipeline.cache] max_size, else 5GB).
    #[arg(long, value_name = "SIZE")]
    pub max_size: Option<String>,
    /// Age bound, e.g. 168h or 12h (default: [pipeline.cache] max_age, else 360h: 15 days).
    #[arg(long, value_name = "AGE")]
    pub max_age: Option<String>,
}

/// Runs a `hoist cache` command.
pub fn run(cmd: CacheCommand, config: Option<&Path>, printer: Printer) -> Result<(), CommandError> {
    let dir = CacheStore::default_dir();
    let store = CacheStore::open(&dir)
        .map_err(|e| CommandError::from(e).hint("set HOIST_CACHE_DIR to a writable directory"))?;
    match cmd {
        CacheCommand::Ls(args) => ls(&store, printer.with_json(args.json))?,
        CacheCommand::Rm(args) => {
            let removed = store.remove(args.prefix.as_deref().unwrap_or_default())?;
            for entry in &removed {
                printer.data(format!("removed {} ({})", entry.key, size(entry.bytes)));
            }
            if removed.is_empty() {
                printer.warn("no cache matches");
            }
        }
        CacheCommand::Prune(args) => {
            let limits = limits(&args, config)?;
            let report = store.prune(limits.max_bytes, limits.max_age)?;
            for key in &report.removed {
                printer.data(format!("removed {key}"));
            }
            printer.data(format!(
                "pruned {} cache(s), freed {}",
                report.removed.len(),
                size(report.freed_bytes)
            ));
        }
    }
    Ok(())
}

fn limits(args: &PruneArgs, config: Option<&Path>) -> Result<CacheLimits, CommandError> {
    // The pipeline's bounds when there is one; the command line wins.
    let mut limits = config_path(config)
        .ok()
        .and_then(|p| hoist_config::pipeline::load(&p).ok())
        .map_or_else(CacheLimits::default, |p| p.cache);
    if let Some(text) = &args.max_size {
        limits.max_bytes = parse_size(text).ok_or_else(|| {
            CommandError::config(format!("--max-size \"{text}\" is not a size"))
                .hint("write e.g. 500MB or 5GB")
        })?;
    }
    if let Some(text) = &args.max_age {
        limits.max_age = parse_duration(text).map_err(|e| {
            CommandError::config(format!("--max-age: {e}"))
                .hint("write e.g. 12h or 168h (units are ms, s, m and h)")
        })?;
    }
    Ok(limits)
}

fn ls(store: &CacheStore, printer: Printer) -> Result<(), CommandError> {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    for entry in store.list()? {
        if printer.json {
            printer.json_line(&entry);
        } else {
            let age = Duration::from_millis(now.saturating_sub(entry.created_ms));
            printer.data(format!(
                "{}  {}  {} ago  {}",
                entry.key,
                size(entry.bytes),
                ago(age),
                entry.paths.join(", ")
            ));
        }
    }
    Ok(())
}

fn size(bytes: u64) -> String {
    match bytes {
        b if b >= 1 << 30 => format!("{:.1} GiB", b as f64 / f64::from(1u32 << 30)),
        b if b >= 1 << 20 => format!("{:.1} MiB", b as f64 / f64::from(1u32 << 20)),
        b if b >= 1 << 10 => format!("{:.1} KiB", b as f64 / 1024.0),
        b => format!("{b} B"),
    }
}

fn ago(age: Duration) -> String {
    let s = age.as_secs();
    match s {
        s if s >= 86400 => format!("{}d", s / 86400),
        s if s >= 3600 => format!("{}h", s / 3600),
        s if s >= 60 => format!("{}m", s / 60),
        s => format!("{s}s"),
    }
}
