use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::ReleaseId;

/// One line of `.hoist/journal.jsonl`: when, who, and what happened.
///
/// On disk the event's fields sit beside `ts` and `who`, tagged by `"event"`:
/// `{"ts":"2026-11-26T16:18:45Z","who":"alice","event":"deploy_succeeded","release":"20261126T161845Z"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JournalEntry {
    /// When the event happened (UTC).
    pub ts: DateTime<Utc>,
    /// Who caused it, e.g. `alice` or `ci`.
    pub who: String,
    /// What happened.
    #[serde(flatten)]
    pub event: JournalEvent,
}

/// What a journal line records. Each event changes the state of one or two releases; see
/// [`History`](crate::History) for the rules.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum JournalEvent {
    /// A deploy chose `release` and began building it: the release is Building.
    DeployStarted {
        /// The new release.
        release: ReleaseId,
        /// The commit deployed, when known.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        commit: Option<String>,
        /// The branch deployed, when known.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        branch: Option<String>,
        /// The host this journal belongs to.
        host: String,
        /// The files shipped were not exactly `commit`'s (uncommitted or untracked files).
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        dirty: bool,
    },
    /// Files, environment and hooks are all done: the release is Prepared, ready to switch to.
    ReleasePrepared {
        /// The prepared release.
        release: ReleaseId,
        /// The environment it uses, `envs/<dep_key>`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        dep_key: Option<String>,
    },
    /// `current` now points at `release`; its state is unchanged until the health check answers.
    Switched {
        /// The release `current` points at now.
        release: ReleaseId,
        /// The release `current` pointed at before, if any.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        from: Option<ReleaseId>,
    },
    /// Healthy after the switch: the release is Good.
    DeploySucceeded {
        /// The release that passed its health check.
        release: ReleaseId,
    },
    /// The deploy failed: the release is Failed.
    DeployFailed {
        /// The release that failed.
        release: ReleaseId,
        /// The step that failed, e.g. `prepare`, `activate`, `health`.
        stage: String,
        /// What went wrong, for people.
        reason: String,
        /// Where `current` was switched back to, if it had been switched.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        rolled_back_to: Option<ReleaseId>,
    },
    /// A rollback from `from` to `to` is about to switch `current`: written before the switch,
    /// so that a rollback killed after it is known. No state changes until it is settled by
    /// `rolled_back`, `rollback_failed` or `rollback_interrupted`.
    RollbackStarted {
        /// The release `current` points at before the switch.
        from: ReleaseId,
        /// The release it switches to.
        to: ReleaseId,
    },
    /// A rollback was killed before it recorded its result; written by the next command that
    /// holds the lock. When `current` had been switched to `to`, `from` is Bad (it was rolled
    /// away from); `to` keeps its state.
    RollbackInterrupted {
        /// The release rolled away from.
        from: ReleaseId,
        /// The target of the rollback.
        to: ReleaseId,
        /// Whether `current` pointed at `to` when the interruption was found.
        switched: bool,
    },
    /// A rollback from `from` to `to` passed its health check: `to` is Good again, and `from` is
    /// Bad when `to` was deployed before it. Rolling forward (to a release deployed after `from`)
    /// is no verdict on `from`, whose state is kept.
    RolledBack {
        /// The release rolled away from.
        from: ReleaseId,
        /// The release `current` points at now.
        to: ReleaseId,
        /// Why, for people.
        reason: String,
    },
    /// A rollback to `to` failed its health check: `to` is Bad.
    RollbackFailed {
        /// The release that was current before the attempt.
        from: ReleaseId,
        /// The unhealthy target.
        to: ReleaseId,
        /// What went wrong, for people.
        reason: String,
    },
    /// A build that existed before hoist (the seed layout) was taken over: the release is Good.
    Adopted {
        /// The adopted release.
        release: ReleaseId,
    },
    /// The release directory was removed: the release is Pruned.
    Pruned {
        /// The removed release.
        release: ReleaseId,
    },
    /// `hoist releases mark-good`: a Bad release is Good again, a rollback target.
    MarkedGood {
        /// The release cleared.
        release: ReleaseId,
    },
}

impl JournalEvent {
    /// The name written in the `"event"` field, for messages.
    pub fn name(&self) -> &'static str {
        match self {
            JournalEvent::DeployStarted { .. } => "deploy_started",
            JournalEvent::ReleasePrepared { .. } => "release_prepared",
            JournalEvent::Switched { .. } => "switched",
            JournalEvent::DeploySucceeded { .. } => "deploy_succeeded",
            JournalEvent::DeployFailed { .. } => "deploy_failed",
            JournalEvent::RollbackStarted { .. } => "rollback_started",
            JournalEvent::RollbackInterrupted { .. } => "rollback_interrupted",
            JournalEvent::RolledBack { .. } => "rolled_back",
            JournalEvent::RollbackFailed { .. } => "rollback_failed",
            JournalEvent::Adopted { .. } => "adopted",
            JournalEvent::Pruned { .. } => "pruned",
            JournalEvent::MarkedGood { .. } => "marked_good",
        }
    }
}

impl JournalEntry {
    /// The entry as one JSON line, without the newline. Append it with a trailing `\n` in a
    /// single write so that a killed process leaves at most one torn last line.
    pub fn to_line(&self) -> String {
        serde_json::to_string(self).expect("a journal entry always serializes: it has no maps")
    }
}

/// A line of the journal that cannot be read, named by its 1-based line number.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("journal line {line}: {message}")]
pub struct JournalError {
    /// 1-based line number in `journal.jsonl`.
    pub line: usize,
    /// What is wrong with that line, e.g. `invalid release id "../../etc": ...`.
    pub message: String,
}

/// A last line without its newline that does not parse: the write of a process killed mid-line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TornLastLine {
    /// 1-based line number of the torn line.
    pub line: usize,
    /// Byte offset where the torn line starts. Truncate the file to this length before the next
    /// append, or the next line would be glued onto the fragment and corrupt the journal.
    pub offset: usize,
    /// Why the fragment does not parse.
    pub message: String,
}

impl std::fmt::Display for TornLastLine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "journal line {}: ignored an incomplete last line, left by a process killed while \
             writing it ({})",
            self.line, self.message
        )
    }
}

/// A parsed journal: its entries, and the torn last line that was ignored, if any.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Journal {
    /// Every entry, in file order.
    pub entries: Vec<JournalEntry>,
    /// Set when the last line had no newline and did not parse; it is not in `entries`.
    pub torn_last_line: Option<TornLastLine>,
}

impl Journal {
    /// Parses the whole text of `journal.jsonl`.
    ///
    /// Blank lines are skipped. A last line that lacks its trailing newline and does not parse is
    /// a torn write from a killed process: it is ignored and reported in
    /// [`Journal::torn_last_line`]. Any other line that does not parse, including one naming an
    /// invalid release id, is an error naming the 1-based line.
    pub fn parse(text: &str) -> Result<Journal, JournalError> {
        let mut journal = Journal::default();
        let mut offset = 0;
        for (index, raw) in text.split_inclusive('\n').enumerate() {
            let line = index + 1;
            let start = offset;
            offset += raw.len();
            let content = raw.strip_suffix('\n').unwrap_or(raw);
            if content.trim().is_empty() {
                continue;
            }
            match serde_json::from_str::<JournalEntry>(content) {
                Ok(entry) => journal.entries.push(entry),
                Err(err) => {
                    let message = without_position(&err);
                    if raw.ends_with('\n') {
                        return Err(JournalError { line, message });
                    }
                    journal.torn_last_line = Some(TornLastLine {
                        line,
                        offset: start,
                        message,
                    });
                }
            }
        }
        Ok(journal)
    }

    /// The journal text for `entries`: one line each, every line ending in a newline.
    pub fn render(entries: &[JournalEntry]) -> String {
        entries.iter().map(|entry| entry.to_line() + "\n").collect()
    }
}

/// The entries of the journal text `text`; see [`Journal::parse`] for the rules. A torn last
/// line is dropped silently here: use [`Journal::parse`] to warn about it.
pub fn parse_journal(text: &str) -> Result<Vec<JournalEntry>, JournalError> {
    Journal::parse(text).map(|journal| journal.entries)
}

/// serde_json's message without " at line 1 column 57": the line number that matters is the
/// journal's, and the column means nothing to a person reading the error.
fn without_position(err: &serde_json::Error) -> String {
    let text = err.to_string();
    let suffix = format!(" at line {} column {}", err.line(), err.column());
    match text.strip_suffix(&suffix) {
        Some(message) => message.to_owned(),
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn id(s: &str) -> ReleaseId {
        ReleaseId::parse(s).unwrap()
    }

    fn at(second: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 26, 16, 18, second).unwrap()
    }

    fn started(release: &str) -> JournalEntry {
        JournalEntry {
            ts: at(45),
            who: "alice".into(),
            event: JournalEvent::DeployStarted {
                release: id(release),
                commit: Some("9f1c2ab".into()),
                branch: None,
                host: "web1".into(),
                dirty: false,
            },
        }
    }

    #[test]
    fn a_line_is_flat_json_tagged_by_event() {
        assert_eq!(
            started("20261126T161845Z").to_line(),
            r#"{"ts":"2026-11-26T16:18:45Z","who":"alice","event":"deploy_started","release":"20261126T161845Z","commit":"9f1c2ab","host":"web1"}"#
        );
        let failed = JournalEntry {
            ts: at(50),
            who: "ci".into(),
            event: JournalEvent::DeployFailed {
                release: id("b"),
                stage: "health".into(),
                reason: "GET /health answered 502".into(),
                rolled_back_to: Some(id("a")),
            },
        };
        assert_eq!(
            failed.to_line(),
            r#"{"ts":"2026-11-26T16:18:50Z","who":"ci","event":"deploy_failed","release":"b","stage":"health","reason":"GET /health answered 502","rolled_back_to":"a"}"#
        );
    }

    #[test]
    fn every_event_round_trips() {
        let events = vec![
            JournalEvent::DeployStarted {
                release: id("a"),
                commit: None,
                branch: Some("main".into()),
                host: "web1".into(),
                dirty: false,
            },
            JournalEvent::ReleasePrepared {
                release: id("a"),
                dep_key: Some("3b9e".into()),
            },
            JournalEvent::Switched {
                release: id("a"),
                from: None,
            },
            JournalEvent::DeploySucceeded { release: id("a") },
            JournalEvent::DeployFailed {
                release: id("b"),
                stage: "prepare".into(),
                reason: "pip failed".into(),
                rolled_back_to: None,
            },
            JournalEvent::RolledBack {
                from: id("a"),
                to: id("c"),
                reason: "manual".into(),
            },
            JournalEvent::RollbackFailed {
                from: id("a"),
                to: id("c"),
                reason: "unhealthy".into(),
            },
            JournalEvent::Adopted { release: id("c") },
            JournalEvent::Pruned { release: id("c") },
            JournalEvent::MarkedGood { release: id("a") },
        ];
        let entries: Vec<JournalEntry> = events
            .into_iter()
            .map(|event| JournalEntry {
                ts: at(1),
                who: "bob".into(),
                event,
            })
            .collect();
        let text = Journal::render(&entries);
        assert_eq!(text.lines().count(), 10);
        assert_eq!(parse_journal(&text).unwrap(), entries);
    }

    #[test]
    fn tampered_ids_are_refused_with_their_line_number() {
        let good = started("a").to_line();
        for (bad_id, why) in [
            (
                "../../etc",
                "it must start with a letter or a digit, not '.'",
            ),
            ("a/b", "it contains '/'"),
            ("a..b", "it contains \"..\""),
            ("", "it is empty"),
            ("my release", "it contains ' '"),
        ] {
            let bad = good.replace("\"release\":\"a\"", &format!("\"release\":{bad_id:?}"));
            let text = format!("{good}\n{good}\n{bad}\n{good}\n");
            let err = parse_journal(&text).unwrap_err();
            assert_eq!(err.line, 3);
            let expected = format!("journal line 3: invalid release id {bad_id:?}: {why}");
            assert!(
                err.to_string().starts_with(&expected),
                "{err} should start with {expected}"
            );
        }
    }

    #[test]
    fn a_bad_line_in_the_middle_is_an_error() {
        let good = started("a").to_line();
        let text = format!("{good}\n{{\"ts\":\"2026-11-26T16:18:45Z\",\"who\"\n{good}\n");
        let err = parse_journal(&text).unwrap_err();
        assert_eq!(err.line, 2);
        assert!(err.to_string().starts_with("journal line 2: "), "{err}");
        assert!(!err.to_string().contains("column"), "{err}");
    }

    #[test]
    fn an_unknown_event_is_an_error_naming_it() {
        let text = "{\"ts\":\"2026-11-26T16:18:45Z\",\"who\":\"a\",\"event\":\"exploded\"}\n";
        let err = parse_journal(text).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("journal line 1: unknown variant `exploded`"),
            "{err}"
        );
    }

    #[test]
    fn a_complete_bad_last_line_is_an_error_too() {
        let good = started("a").to_line();
        let text = format!("{good}\nnot json\n");
        assert_eq!(parse_journal(&text).unwrap_err().line, 2);
    }

    #[test]
    fn a_torn_last_line_is_ignored_and_reported() {
        let good = started("a").to_line();
        let torn = &good[..good.len() / 2];
        let text = format!("{good}\n{good}\n{torn}");
        let journal = Journal::parse(&text).unwrap();
        assert_eq!(journal.entries.len(), 2);
        let torn_line = journal.torn_last_line.unwrap();
        assert_eq!(torn_line.line, 3);
        assert_eq!(torn_line.offset, 2 * (good.len() + 1));
        assert_eq!(&text[torn_line.offset..], torn);
        assert!(torn_line
            .to_string()
            .starts_with("journal line 3: ignored an incomplete last line"));
        assert_eq!(parse_journal(&text).unwrap().len(), 2);
    }

    #[test]
    fn a_complete_last_line_without_newline_is_kept() {
        let good = started("a").to_line();
        let text = format!("{good}\n{good}");
        let journal = Journal::parse(&text).unwrap();
        assert_eq!(journal.entries.len(), 2);
        assert_eq!(journal.torn_last_line, None);
    }

    #[test]
    fn blank_lines_and_empty_text_are_no_entries() {
        let good = started("a").to_line();
        assert_eq!(parse_journal("").unwrap(), vec![]);
        assert_eq!(parse_journal(&format!("\n{good}\n\n")).unwrap().len(), 1);
    }
}
