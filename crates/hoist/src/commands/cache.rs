//! `hoist cache`: look at and clean the CI cache store.

use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hoist_config::parse_duration;
use hoist_config::pipeline::{parse_size, CacheLimits};
use hoist_pipeline::cache_store::CacheStore;

use crate::printer;

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

/// Runs a `hoist cache` command; returns the exit code.
pub fn run(cmd: CacheCommand, config: Option<&Path>) -> i32 {
    let dir = CacheStore::default_dir();
    let store = match CacheStore::open(&dir) {
        Ok(s) => s,
        Err(e) => {
            printer::error(
                &e.to_string(),
                &["set HOIST_CACHE_DIR to a writable directory".into()],
            );
            return crate::exit::INTERNAL;
        }
    };
    let result = match cmd {
        CacheCommand::Ls(args) => ls(&store, args.json),
        CacheCommand::Rm(args) => store
            .remove(args.prefix.as_deref().unwrap_or_default())
            .map(|removed| {
                for entry in &removed {
                    println!("removed {} ({})", entry.key, size(entry.bytes));
                }
                if removed.is_empty() {
                    printer::warning("no cache matches");
                }
            }),
        CacheCommand::Prune(args) => {
            let Some(limits) = limits(&args, config) else {
                return crate::exit::CONFIG;
            };
            store.prune(limits.max_bytes, limits.max_age).map(|report| {
                for key in &report.removed {
                    println!("removed {key}");
                }
                println!(
                    "pruned {} cache(s), freed {}",
                    report.removed.len(),
                    size(report.freed_bytes)
                );
            })
        }
    };
    match result {
        Ok(()) => crate::exit::OK,
        Err(e) => {
            printer::error(&e.to_string(), &[]);
            crate::exit::INTERNAL
        }
    }
}

fn limits(args: &PruneArgs, config: Option<&Path>) -> Option<CacheLimits> {
    // The pipeline's bounds when there is one; the command line wins.
    let mut limits = config
        .map(Path::to_path_buf)
        .or_else(|| hoist_config::find(&std::env::current_dir().ok()?))
        .and_then(|p| hoist_config::pipeline::load(&p).ok())
        .map_or_else(CacheLimits::default, |p| p.cache);
    if let Some(text) = &args.max_size {
        let Some(bytes) = parse_size(text) else {
            printer::error(
                &format!("--max-size {text:?} is not a size"),
                &["write e.g. 500MB or 5GB".into()],
            );
            return None;
        };
        limits.max_bytes = bytes;
    }
    if let Some(text) = &args.max_age {
        let age = match parse_duration(text) {
            Ok(age) => age,
            Err(e) => {
                printer::error(
                    &format!("--max-age: {e}"),
                    &["write e.g. 12h or 168h (units are ms, s, m and h)".into()],
                );
                return None;
            }
        };
        limits.max_age = age;
    }
    Some(limits)
}

fn ls(store: &CacheStore, json: bool) -> Result<(), hoist_pipeline::cache_store::CacheError> {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    for entry in store.list()? {
        if json {
            printer::json_line(&entry);
        } else {
            let age = Duration::from_millis(now.saturating_sub(entry.created_ms));
            println!(
                "{}  {}  {} ago  {}",
                entry.key,
                size(entry.bytes),
                ago(age),
                entry.paths.join(", ")
            );
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
