use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::{ReleaseId, ReleaseState};

/// `<root>/releases/<id>/RELEASE.json`: what a release is, readable without the journal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReleaseRecord {
    /// The release; must match its directory name.
    pub id: ReleaseId,
    /// The commit deployed, when known.
    pub commit: Option<String>,
    /// The branch deployed, when known.
    pub branch: Option<String>,
    /// The files shipped were not exactly `commit`'s (uncommitted or untracked files).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub dirty: bool,
    /// Who deployed it.
    pub who: String,
    /// When the deploy chose this id.
    pub created: DateTime<Utc>,
    /// The environment it uses, `envs/<dep_key>`.
    pub dep_key: Option<String>,
    /// The Python version of that environment, e.g. `3.12.7`.
    pub python: Option<String>,
    /// Its state when the record was last written; the journal has the final word.
    pub state: ReleaseState,
    /// The application's name from hoist.toml.
    pub app: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn round_trips_through_json_with_lowercase_state() {
        let record = ReleaseRecord {
            id: ReleaseId::parse("20261126T161845Z").unwrap(),
            commit: Some("9f1c2ab".into()),
            branch: Some("main".into()),
            who: "alice".into(),
            created: Utc.with_ymd_and_hms(2026, 11, 26, 16, 18, 45).unwrap(),
            dep_key: None,
            python: Some("3.12.7".into()),
            state: ReleaseState::Prepared,
            app: "shop".into(),
            dirty: false,
        };
        let json = serde_json::to_string(&record).unwrap();
        assert_eq!(
            json,
            r#"{"id":"20261126T161845Z","commit":"9f1c2ab","branch":"main","who":"alice","created":"2026-11-26T16:18:45Z","dep_key":null,"python":"3.12.7","state":"prepared","app":"shop"}"#
        );
        assert_eq!(
            serde_json::from_str::<ReleaseRecord>(&json).unwrap(),
            record
        );
    }

    #[test]
    fn a_record_with_a_tampered_id_is_refused() {
        let json = r#"{"id":"../x","commit":null,"branch":null,"who":"a","created":"2026-11-26T16:18:45Z","dep_key":null,"python":null,"state":"good","app":"shop"}"#;
        let err = serde_json::from_str::<ReleaseRecord>(json).unwrap_err();
        assert!(
            err.to_string().starts_with("invalid release id \"../x\""),
            "{err}"
        );
    }
}
