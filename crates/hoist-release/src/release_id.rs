use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The longest id accepted: one leading character plus 127 more.
const MAX_LEN: usize = 128;

/// A release id, the name of `releases/<id>/` on every host.
///
/// Valid ids match `^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$` and never contain `..`. Parsing is the
/// only way to make one (also when deserializing), so a tampered journal or a CLI argument with
/// `/` or `..` can never become a path under `<root>`. Ids order by their string.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ReleaseId(String);

/// Why a string is not a release id. The message names the id and the reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid release id {id:?}: {reason}")]
pub struct InvalidReleaseId {
    /// The refused text, as given.
    pub id: String,
    /// What is wrong with it.
    pub reason: InvalidReleaseIdReason,
}

/// What makes a string fail [`ReleaseId::parse`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidReleaseIdReason {
    /// The empty string.
    #[error("it is empty")]
    Empty,
    /// More than 128 characters.
    #[error("it is {0} characters long; at most 128 are allowed")]
    TooLong(usize),
    /// The first character is `.`, `_` or `-`.
    #[error("it must start with a letter or a digit, not {0:?}")]
    BadStart(char),
    /// A character outside `A-Za-z0-9._-`, such as `/` or a space.
    #[error("it contains {0:?}; only letters, digits, '.', '_' and '-' are allowed")]
    BadChar(char),
    /// The sequence `..`, refused so that no id can climb out of `releases/`.
    #[error("it contains \"..\"")]
    DotDot,
}

impl ReleaseId {
    /// Checks `s` against the id rules and wraps it.
    pub fn parse(s: &str) -> Result<ReleaseId, InvalidReleaseId> {
        let refuse = |reason| InvalidReleaseId {
            id: s.to_owned(),
            reason,
        };
        let Some(first) = s.chars().next() else {
            return Err(refuse(InvalidReleaseIdReason::Empty));
        };
        if !first.is_ascii_alphanumeric() {
            // A leading "/" or " " is a bad character rather than a bad start: say the clearer one.
            return Err(refuse(if is_id_char(first) {
                InvalidReleaseIdReason::BadStart(first)
            } else {
                InvalidReleaseIdReason::BadChar(first)
            }));
        }
        if let Some(bad) = s.chars().find(|c| !is_id_char(*c)) {
            return Err(refuse(InvalidReleaseIdReason::BadChar(bad)));
        }
        if s.contains("..") {
            return Err(refuse(InvalidReleaseIdReason::DotDot));
        }
        // Only ASCII is left at this point, so bytes are characters.
        if s.len() > MAX_LEN {
            return Err(refuse(InvalidReleaseIdReason::TooLong(s.len())));
        }
        Ok(ReleaseId(s.to_owned()))
    }

    /// A new id from `now`: `20261126T161845Z` (UTC, second precision). When `taken` says that id
    /// is used, appends `-2`, `-3`, ... until it finds a free one, so two deploys in the same
    /// second, or a clock that went backwards, never reuse an id (invariant 5).
    ///
    /// `taken` must answer true for every id the journal knows (pruned ones too, see
    /// [`History::contains`](crate::History::contains)) and every directory under `releases/`,
    /// on every host of the deploy.
    pub fn generate(now: DateTime<Utc>, taken: impl Fn(&ReleaseId) -> bool) -> ReleaseId {
        let base = now.format("%Y%m%dT%H%M%SZ").to_string();
        let first = ReleaseId(base.clone());
        if !taken(&first) {
            return first;
        }
        (2u64..)
            .map(|n| ReleaseId(format!("{base}-{n}")))
            .find(|id| !taken(id))
            .expect("some numbered suffix is free")
    }

    /// The id as text, for paths and messages.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

fn is_id_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')
}

impl fmt::Display for ReleaseId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for ReleaseId {
    type Err = InvalidReleaseId;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ReleaseId::parse(s)
    }
}

impl AsRef<str> for ReleaseId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl Serialize for ReleaseId {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for ReleaseId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        ReleaseId::parse(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn reason(s: &str) -> InvalidReleaseIdReason {
        ReleaseId::parse(s).unwrap_err().reason
    }

    #[test]
    fn accepts_timestamps_seed_builds_and_suffixes() {
        for ok in [
            "20261126T161845Z",
            "20261126T161845Z-2",
            "20180718123456",
            "v1.2.3",
            "a",
            "A_b-c.d",
        ] {
            assert_eq!(ReleaseId::parse(ok).unwrap().as_str(), ok);
        }
        let longest = "a".repeat(128);
        assert!(ReleaseId::parse(&longest).is_ok());
    }

    #[test]
    fn refuses_what_could_escape_or_confuse_a_path() {
        assert_eq!(reason(""), InvalidReleaseIdReason::Empty);
        assert_eq!(reason("a/b"), InvalidReleaseIdReason::BadChar('/'));
        assert_eq!(reason("/etc"), InvalidReleaseIdReason::BadChar('/'));
        assert_eq!(reason("a..b"), InvalidReleaseIdReason::DotDot);
        assert_eq!(reason(".."), InvalidReleaseIdReason::BadStart('.'));
        assert_eq!(reason("../../etc"), InvalidReleaseIdReason::BadStart('.'));
        assert_eq!(reason("-rf"), InvalidReleaseIdReason::BadStart('-'));
        assert_eq!(reason("my release"), InvalidReleaseIdReason::BadChar(' '));
        assert_eq!(reason(" a"), InvalidReleaseIdReason::BadChar(' '));
        assert_eq!(reason("a\nb"), InvalidReleaseIdReason::BadChar('\n'));
        assert_eq!(reason("é"), InvalidReleaseIdReason::BadChar('é'));
        assert_eq!(
            reason(&"a".repeat(129)),
            InvalidReleaseIdReason::TooLong(129)
        );
    }

    #[test]
    fn message_names_the_id_and_the_reason() {
        assert_eq!(
            ReleaseId::parse("../../etc").unwrap_err().to_string(),
            "invalid release id \"../../etc\": it must start with a letter or a digit, not '.'"
        );
        assert_eq!(
            ReleaseId::parse("a/b").unwrap_err().to_string(),
            "invalid release id \"a/b\": it contains '/'; only letters, digits, '.', '_' and '-' are allowed"
        );
        assert_eq!(
            ReleaseId::parse("a..b").unwrap_err().to_string(),
            "invalid release id \"a..b\": it contains \"..\""
        );
        assert_eq!(
            ReleaseId::parse("").unwrap_err().to_string(),
            "invalid release id \"\": it is empty"
        );
    }

    #[test]
    fn deserializing_validates() {
        let ok: ReleaseId = serde_json::from_str("\"20261126T161845Z\"").unwrap();
        assert_eq!(ok.to_string(), "20261126T161845Z");
        let err = serde_json::from_str::<ReleaseId>("\"a/../b\"").unwrap_err();
        assert!(
            err.to_string().starts_with("invalid release id \"a/../b\""),
            "{err}"
        );
        assert_eq!(serde_json::to_string(&ok).unwrap(), "\"20261126T161845Z\"");
    }

    #[test]
    fn generate_uses_utc_seconds_and_skips_taken_ids() {
        let now = Utc.with_ymd_and_hms(2026, 11, 26, 16, 18, 45).unwrap();
        assert_eq!(
            ReleaseId::generate(now, |_| false).as_str(),
            "20261126T161845Z"
        );
        let taken = ["20261126T161845Z", "20261126T161845Z-2"];
        let id = ReleaseId::generate(now, |id| taken.contains(&id.as_str()));
        assert_eq!(id.as_str(), "20261126T161845Z-3");
    }

    #[test]
    fn ids_order_by_their_text() {
        let a = ReleaseId::parse("20261126T161845Z").unwrap();
        let b = ReleaseId::parse("20261126T161845Z-2").unwrap();
        let c = ReleaseId::parse("20261126T161846Z").unwrap();
        assert!(a < b && b < c);
    }
}
