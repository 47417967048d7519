use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use hoist_release::{
    rollback_target, History, Journal, JournalEntry, JournalEvent, LockOwner, ReleaseId,
    ReleaseState, TornLastLine,
};
use hoist_transport::{LinkRead, Transport};

use crate::host::Host;
use crate::lock::{lock_status, LockStatus};
use crate::{DeployError, Layout};

/// What a host's root says right now: the journal, `readlink current`, the release dirs.
#[derive(Debug)]
pub struct HostState {
    pub entries: Vec<JournalEntry>,
    pub history: History,
    /// The release `current` points to, `None` before the first deploy.
    pub current: Option<ReleaseId>,
    /// Release directories present (names that are valid release ids).
    pub existing: BTreeSet<ReleaseId>,
    /// Names in the releases folder that are not release ids (left alone, reported).
    pub strays: Vec<String>,
    /// A last journal line torn by a killed process, and the journal's text without it.
    pub torn: Option<(TornLastLine, Vec<u8>)>,
}

impl HostState {
    /// Reads the state. A tampered journal (an invalid release id, a broken line in the
    /// middle) is an error that names the line; `current` being a real directory is refused.
    pub fn read(transport: &dyn Transport, layout: &Layout) -> Result<HostState, DeployError> {
        let journal_path = layout.journal();
        let current_path = layout.current();
        // One round trip for the journal, `current` and the releases.
        let read = transport.read_state(&journal_path, &current_path, &layout.releases())?;
        let (entries, torn) = match read.file {
            None => (Vec::new(), None),
            Some(bytes) => {
                let journal = Journal::parse(&String::from_utf8_lossy(&bytes)).map_err(|e| {
                    DeployError::internal(format!("{}: {}: {e}", transport.host(), journal_path.display()))
                        .hint("the journal is append-only; restore it from a backup or remove the bad line by hand")
                })?;
                let torn = journal.torn_last_line.map(|line| {
                    let kept = bytes[..line.offset.min(bytes.len())].to_vec();
                    (line, kept)
                });
                (journal.entries, torn)
            }
        };
        let history = History::from_entries(&entries);
        let link = match read.link {
            LinkRead::Target(target) => Some(target),
            LinkRead::Missing => None,
            LinkRead::NotASymlink(_) => {
                return Err(DeployError::config(format!(
                    "{}: {} is a real directory or file, not a symlink",
                    transport.host(),
                    current_path.display()
                ))
                .hint("hoist switches releases by replacing a symlink; move the directory into releases/ and point a symlink at it"))
            }
        };
        let current = match link {
            None => None,
            Some(target) => {
                let id = layout.release_of_link(&target);
                if id.is_none() {
                    return Err(DeployError::internal(format!(
                        "{}: {} points to {}, which is not a release under {}",
                        transport.host(),
                        current_path.display(),
                        target.display(),
                        layout.releases().display()
                    ))
                    .hint("point it at a release by hand, or move it away and deploy"));
                }
                id
            }
        };
        let mut history = history;
        history.settle_interrupted_rollback(current.as_ref());
        let mut existing = BTreeSet::new();
        let mut strays = Vec::new();
        for name in read.names {
            match ReleaseId::parse(&name) {
                Ok(id) => {
                    existing.insert(id);
                }
                Err(_) => strays.push(name),
            }
        }
        Ok(HostState {
            entries,
            history,
            current,
            existing,
            strays,
            torn,
        })
    }

    pub fn rollback_target(&self) -> Option<ReleaseId> {
        rollback_target(&self.history, self.current.as_ref(), &self.existing).ok()
    }
}

/// One row of `hoist releases`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ReleaseRow {
    pub id: String,
    pub commit: Option<String>,
    /// Shipped from a working tree that was not exactly `commit`.
    pub dirty: bool,
    /// When it was built: the deploy's start, or for an adopted build the time its name
    /// carries (the build's own time, not the adoption's).
    pub created: Option<DateTime<Utc>>,
    pub who: Option<String>,
    /// The first line of the commit's message, when the front end could read it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    pub state: String,
    pub current: bool,
    pub rollback_target: bool,
    pub on_disk: bool,
}

/// Every release the journal knows or the releases folder holds on `host`, oldest first.
pub fn releases(host: &Host) -> Result<Vec<ReleaseRow>, DeployError> {
    let state = HostState::read(host.transport(), &host.layout)?;
    let target = state.rollback_target();
    let mut rows: Vec<ReleaseRow> = Vec::new();
    for summary in state.history.releases() {
        let on_disk = state.existing.contains(&summary.id);
        if !on_disk && summary.state == ReleaseState::Pruned {
            continue;
        }
        let adopted = summary.host.is_none();
        rows.push(ReleaseRow {
            id: summary.id.to_string(),
            commit: summary.commit.clone(),
            dirty: summary.dirty,
            created: Some(
                adopted
                    .then(|| build_time(&summary.id))
                    .flatten()
                    .unwrap_or(summary.started),
            ),
            who: Some(summary.who.clone()),
            message: None,
            state: if adopted && summary.state == ReleaseState::Good {
                "adopted".into()
            } else {
                state_name(summary.state).into()
            },
            current: state.current.as_ref() == Some(&summary.id),
            rollback_target: target.as_ref() == Some(&summary.id),
            on_disk,
        });
    }
    for id in &state.existing {
        if !state.history.contains(id) {
            rows.push(ReleaseRow {
                id: id.to_string(),
                commit: None,
                dirty: false,
                created: build_time(id),
                who: None,
                message: None,
                state: "unknown".into(),
                current: state.current.as_ref() == Some(id),
                rollback_target: false,
                on_disk: true,
            });
        }
    }
    Ok(rows)
}

/// One line of `hoist releases --history`: an outcome the journal recorded.
#[derive(Debug, Clone, serde::Serialize)]
pub struct HistoryRow {
    pub at: DateTime<Utc>,
    pub who: String,
    /// `deployed`, `deploy failed`, `deploy unfinished`, `rolled back`, `rollback failed`,
    /// `rollback interrupted`, `adopted`, `pruned`, `marked good`.
    pub event: String,
    pub release: String,
    /// The reason, the failed step, where it went back to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// From the start of the deploy or rollback to its outcome.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub took_ms: Option<u64>,
}

/// The journal of `host` as outcomes, oldest first: each deploy once (with how long it took),
/// each rollback, failure (with its step and reason), adoption, prune and mark. The steps in
/// between (prepared, switched, rollback started) are folded into their outcome.
pub fn journal_history(host: &Host) -> Result<Vec<HistoryRow>, DeployError> {
    let state = HostState::read(host.transport(), &host.layout)?;
    Ok(history_rows(&state.entries))
}

fn history_rows(entries: &[JournalEntry]) -> Vec<HistoryRow> {
    use std::collections::BTreeMap;
    let took = |from: Option<&DateTime<Utc>>, to: &DateTime<Utc>| {
        from.and_then(|f| u64::try_from((*to - *f).num_milliseconds()).ok())
    };
    let mut started: BTreeMap<&ReleaseId, &JournalEntry> = BTreeMap::new();
    let mut rollback_started: Option<DateTime<Utc>> = None;
    let mut rows = Vec::new();
    let row = |entry: &JournalEntry,
               event: &str,
               release: &ReleaseId,
               detail: Option<String>,
               took_ms| HistoryRow {
        at: entry.ts,
        who: entry.who.clone(),
        event: event.to_string(),
        release: release.to_string(),
        detail,
        took_ms,
    };
    for entry in entries {
        match &entry.event {
            JournalEvent::DeployStarted { release, .. } => {
                started.insert(release, entry);
            }
            JournalEvent::ReleasePrepared { .. } | JournalEvent::Switched { .. } => {}
            JournalEvent::DeploySucceeded { release } => {
                let from = started.remove(release).map(|e| &e.ts);
                rows.push(row(entry, "deployed", release, None, took(from, &entry.ts)));
            }
            JournalEvent::DeployFailed {
                release,
                stage,
                reason,
                rolled_back_to,
            } => {
                let from = started.remove(release).map(|e| &e.ts);
                let back = rolled_back_to
                    .as_ref()
                    .map_or(String::new(), |to| format!("; switched back to {to}"));
                rows.push(row(
                    entry,
                    "deploy failed",
                    release,
                    Some(format!("{stage}: {reason}{back}")),
                    took(from, &entry.ts),
                ));
            }
            JournalEvent::RollbackStarted { .. } => rollback_started = Some(entry.ts),
            JournalEvent::RolledBack { from, to, reason } => {
                let since = rollback_started.take();
                rows.push(row(
                    entry,
                    "rolled back",
                    to,
                    Some(format!("from {from}: {reason}")),
                    took(since.as_ref(), &entry.ts),
                ));
            }
            JournalEvent::RollbackFailed { from, to, reason } => {
                let since = rollback_started.take();
                rows.push(row(
                    entry,
                    "rollback failed",
                    to,
                    Some(format!("from {from}: {reason}")),
                    took(since.as_ref(), &entry.ts),
                ));
            }
            JournalEvent::RollbackInterrupted { from, to, switched } => {
                rollback_started = None;
                let at = if *switched { to } else { from };
                rows.push(row(
                    entry,
                    "rollback interrupted",
                    to,
                    Some(format!("from {from}; current was found at {at}")),
                    None,
                ));
            }
            JournalEvent::Adopted { release } => {
                rows.push(row(entry, "adopted", release, None, None))
            }
            JournalEvent::Pruned { release } => {
                rows.push(row(entry, "pruned", release, None, None))
            }
            JournalEvent::MarkedGood { release } => {
                rows.push(row(entry, "marked good", release, None, None));
            }
        }
    }
    // A deploy with no outcome was killed, or still runs.
    for (release, entry) in started {
        rows.push(row(
            entry,
            "deploy unfinished",
            release,
            Some("no outcome recorded: killed, or still running".into()),
            None,
        ));
    }
    rows.sort_by_key(|r| r.at);
    rows
}

/// The time a build's name carries: hoist's `20261126T161845Z`, or the `date +%Y%m%d%H%M%S` of
/// a `builds/<timestamp>` layout (read as UTC); `None` for other names.
pub fn build_time(id: &ReleaseId) -> Option<DateTime<Utc>> {
    let name = id.as_str();
    let parse = |text: &str, format: &str| {
        chrono::NaiveDateTime::parse_from_str(text, format)
            .ok()
            .map(|t| t.and_utc())
    };
    match name.len() {
        14 => parse(name, "%Y%m%d%H%M%S"),
        _ => parse(name.get(..16)?, "%Y%m%dT%H%M%SZ"),
    }
}

/// The word `hoist releases` shows for a state.
pub fn state_name(state: ReleaseState) -> &'static str {
    match state {
        ReleaseState::Building => "unfinished",
        ReleaseState::Prepared => "prepared",
        ReleaseState::Good => "good",
        ReleaseState::Failed => "failed",
        ReleaseState::Bad => "bad",
        ReleaseState::Pruned => "pruned",
    }
}

/// What `hoist status` shows.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Status {
    pub host: String,
    pub root: String,
    pub current: Option<ReleaseRow>,
    pub rollback_target: Option<String>,
    pub lock: Option<LockOwner>,
    pub lock_stale: bool,
    /// Why the lock is stale: its process is gone, or its lease expired.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lock_stale_reason: Option<String>,
}

/// The live release, the rollback target and the lock on `host`.
pub fn status(host: &Host) -> Result<Status, DeployError> {
    let transport = host.transport();
    let layout = &host.layout;
    let rows = releases(host)?;
    let state = HostState::read(transport, layout)?;
    let (lock, lock_stale_reason) = match lock_status(transport, layout)? {
        LockStatus::Free => (None, None),
        LockStatus::Held(owner) => (Some(owner), None),
        LockStatus::Stale(owner) => {
            let why = crate::lock::stale_reason(transport, &owner).to_string();
            (Some(owner), Some(why))
        }
    };
    Ok(Status {
        host: host.name.clone(),
        root: layout.root.display().to_string(),
        current: rows.into_iter().find(|r| r.current),
        rollback_target: state.rollback_target().map(|id| id.to_string()),
        lock,
        lock_stale: lock_stale_reason.is_some(),
        lock_stale_reason,
    })
}
