use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::ReleaseId;

/// `<root>/.hoist/lock/owner.json`: who holds the deploy lock, so that a waiting or refused
/// command can say who to ask, and a stale lock can be recognised.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockOwner {
    /// Process id of the holder on `host`.
    pub pid: u32,
    /// Host the holder runs on.
    pub host: String,
    /// User running the holder.
    pub user: String,
    /// When the lock was taken.
    pub started: DateTime<Utc>,
    /// The command holding it, e.g. `hoist deploy`.
    pub command: String,
    /// The release being deployed or rolled back to, when there is one.
    #[serde(default)]
    pub release: Option<ReleaseId>,
    /// A note from the holder, e.g. `--message` of the deploy.
    #[serde(default)]
    pub message: Option<String>,
    /// Which machine (and boot, and pid namespace) the holder runs on: its pid means something
    /// only to a host with the same identity. `None` in locks written by older versions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub machine: Option<String>,
    /// Seconds the lock stays held without a heartbeat; the holder renews it while it runs.
    /// Past that (measured by the host's own clock) the lock may be reclaimed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lease_secs: Option<u64>,
}

impl LockOwner {
    /// One line for people: "held by alice@web1 (pid 4242) since 3m 12s ago for `hoist deploy`
    /// of 20261126T161845Z: hotfix".
    ///
    /// A lock taken by hand (`hoist lock acquire`, pid 0: no process backs it) says so: "taken
    /// by hand by alice@web1 since 3m 12s ago: release freeze".
    pub fn describe(&self, now: DateTime<Utc>) -> String {
        if self.pid == 0 && self.command == "hoist lock acquire" {
            let mut text = format!(
                "taken by hand by {}@{} since {}",
                self.user,
                self.host,
                age(self.started, now)
            );
            if let Some(message) = &self.message {
                text.push_str(&format!(": {message}"));
            }
            return text;
        }
        let pid = if self.pid == 0 {
            String::new()
        } else {
            format!(" (pid {})", self.pid)
        };
        let mut text = format!(
            "held by {}@{}{pid} since {} for `{}`",
            self.user,
            self.host,
            age(self.started, now),
            self.command
        );
        if let Some(release) = &self.release {
            text.push_str(&format!(" of {release}"));
        }
        if let Some(message) = &self.message {
            text.push_str(&format!(": {message}"));
        }
        text
    }
}

/// "3m 12s ago", in the two largest units; a start ahead of `now` means the clocks disagree.
fn age(started: DateTime<Utc>, now: DateTime<Utc>) -> String {
    let seconds = (now - started).num_seconds();
    if seconds < 0 {
        return format!(
            "{} (ahead of this machine's clock)",
            started.format("%Y-%m-%d %H:%M:%S UTC")
        );
    }
    let (days, hours, minutes, secs) = (
        seconds / 86_400,
        seconds / 3_600 % 24,
        seconds / 60 % 60,
        seconds % 60,
    );
    let span = if days > 0 {
        format!("{days}d {hours}h")
    } else if hours > 0 {
        format!("{hours}h {minutes}m")
    } else if minutes > 0 {
        format!("{minutes}m {secs}s")
    } else {
        format!("{secs}s")
    };
    format!("{span} ago")
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{Duration, TimeZone};

    fn owner() -> LockOwner {
        LockOwner {
            pid: 4242,
            host: "web1".into(),
            user: "alice".into(),
            started: Utc.with_ymd_and_hms(2026, 11, 26, 16, 18, 45).unwrap(),
            command: "hoist deploy".into(),
            release: Some(ReleaseId::parse("20261126T161845Z").unwrap()),
            message: Some("hotfix for checkout".into()),
            machine: Some("3d1219c7/boot-1/pid:[4026531836]".into()),
            lease_secs: Some(30),
        }
    }

    #[test]
    fn describes_who_where_since_when_and_what() {
        let owner = owner();
        assert_eq!(
            owner.describe(owner.started + Duration::seconds(192)),
            "held by alice@web1 (pid 4242) since 3m 12s ago for `hoist deploy` of \
             20261126T161845Z: hotfix for checkout"
        );
    }

    #[test]
    fn a_lock_taken_by_hand_says_so_and_gives_its_message() {
        let owner = LockOwner {
            pid: 0,
            release: None,
            message: Some("release freeze".into()),
            command: "hoist lock acquire".into(),
            ..owner()
        };
        assert_eq!(
            owner.describe(owner.started + Duration::seconds(60)),
            "taken by hand by alice@web1 since 1m 0s ago: release freeze"
        );
    }

    #[test]
    fn leaves_out_what_is_not_known() {
        let owner = LockOwner {
            release: None,
            message: None,
            command: "hoist rollback".into(),
            ..owner()
        };
        assert_eq!(
            owner.describe(owner.started + Duration::seconds(7)),
            "held by alice@web1 (pid 4242) since 7s ago for `hoist rollback`"
        );
    }

    #[test]
    fn ages_use_the_two_largest_units() {
        let start = owner().started;
        let at = |s: i64| age(start, start + Duration::seconds(s));
        assert_eq!(at(0), "0s ago");
        assert_eq!(at(59), "59s ago");
        assert_eq!(at(60), "1m 0s ago");
        assert_eq!(at(3_600 + 120 + 5), "1h 2m ago");
        assert_eq!(at(2 * 86_400 + 3 * 3_600 + 59), "2d 3h ago");
        assert_eq!(
            at(-5),
            "2026-11-26 16:18:45 UTC (ahead of this machine's clock)"
        );
    }

    #[test]
    fn round_trips_through_json_and_validates_the_release() {
        let owner = owner();
        let json = serde_json::to_string(&owner).unwrap();
        assert_eq!(serde_json::from_str::<LockOwner>(&json).unwrap(), owner);
        let tampered = json.replace("20261126T161845Z", "a/b");
        assert!(serde_json::from_str::<LockOwner>(&tampered).is_err());
    }
}
