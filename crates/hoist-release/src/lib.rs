//! Pure release logic for hoist, with no I/O: release ids, the journal format, the state of each
//! release derived from the journal, the rollback target, the prune plan, and the RELEASE.json and
//! lock-owner records. The deploy engine reads files and calls in here; everything here is a
//! function of its arguments (a `now` is passed in, never read from the clock).

mod history;
mod journal;
mod lock_owner;
mod prune_plan;
mod release_id;
mod release_record;
mod rollback_target;

pub use history::{History, NotMarkable, ReleaseState, ReleaseSummary, StrayEvent};
pub use journal::{parse_journal, Journal, JournalEntry, JournalError, JournalEvent, TornLastLine};
pub use lock_owner::LockOwner;
pub use prune_plan::{
    check_keep_releases, prune_plan, KeepReleasesTooLow, PrunePlan, PruneReason, MIN_KEEP_RELEASES,
};
pub use release_id::{InvalidReleaseId, InvalidReleaseIdReason, ReleaseId};
pub use release_record::ReleaseRecord;
pub use rollback_target::{check_explicit_target, rollback_target, NoRollbackTarget};
