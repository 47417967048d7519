//! `restore_cache` and `save_cache`: the job's side of the cache store.

use crate::cache_store::SaveOutcome;
use crate::engine::step::{StepOutcome, StepRun};
use crate::record::CacheRecord;

/// Restores the newest cache matching the first of `templates` (rendered) that matches any;
/// the outcome's cache record says whether it was the first key exactly.
pub(crate) fn restore(step: &mut StepRun<'_, '_>, templates: &[String]) -> StepOutcome {
    let mut keys = Vec::new();
    for template in templates {
        match step.render_key(template) {
            Ok(key) => keys.push(key),
            Err(e) => return step.fail(e.to_string()),
        }
    }
    let ctx = step.job.ctx;
    match ctx.store.restore(&keys, step.workspace()) {
        Ok(Some(restored)) => {
            let exact = restored.entry.key == keys[0];
            step.info(format!(
                "restored cache {} ({} bytes, {} entries) for key {}",
                restored.entry.key, restored.entry.bytes, restored.files, restored.prefix
            ));
            StepOutcome::passed().with_cache(CacheRecord {
                keys,
                matched: Some(restored.entry.key),
                exact,
                saved: false,
                bytes: restored.entry.bytes,
            })
        }
        Ok(None) => {
            step.warn(format!("no cache found for keys: {}", keys.join(", ")));
            StepOutcome::passed().with_cache(CacheRecord {
                keys,
                matched: None,
                exact: false,
                saved: false,
                bytes: 0,
            })
        }
        Err(e) => step.fail(e.to_string()),
    }
}

/// Saves `paths` under the rendered key unless it exists, then prunes the store to its bounds.
pub(crate) fn save(step: &mut StepRun<'_, '_>, template: &str, paths: &[String]) -> StepOutcome {
    let key = match step.render_key(template) {
        Ok(key) => key,
        Err(e) => return step.fail(e.to_string()),
    };
    let ctx = step.job.ctx;
    match ctx.store.save(&key, paths, step.workspace()) {
        Ok(SaveOutcome::Saved(entry)) => {
            step.info(format!(
                "saved cache {key} ({} bytes: {})",
                entry.bytes,
                entry.paths.join(", ")
            ));
            // Keep the store within its bounds; a failure here must not fail the job.
            let limits = ctx.pipeline.cache;
            if let Err(e) = ctx.store.prune(limits.max_bytes, limits.max_age) {
                step.warn(format!("pruning the cache store failed: {e}"));
            }
            StepOutcome::passed().with_cache(CacheRecord {
                keys: vec![key],
                matched: None,
                exact: false,
                saved: true,
                bytes: entry.bytes,
            })
        }
        Ok(SaveOutcome::Exists(entry)) => {
            step.info(format!(
                "cache {key} already exists, not saved (a key is never overwritten)"
            ));
            StepOutcome::passed().with_cache(CacheRecord {
                keys: vec![key.clone()],
                matched: Some(key),
                exact: true,
                saved: false,
                bytes: entry.bytes,
            })
        }
        Err(e) => step.fail(e.to_string()),
    }
}
