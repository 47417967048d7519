//! Sessions in the store (they survive a restart; only the SHA-256 of a session id is kept),
//! CSRF tokens, and the slowing down of repeated failed sign-ins (in memory).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::http::{header, HeaderMap};
use hoist_store::{Store, StoreError};
use subtle::ConstantTimeEq;

/// The session cookie's name.
pub(crate) const SESSION_COOKIE: &str = "hoist_session";
/// The sign-in form's double-submit cookie (there is no session yet to hold its token).
pub(crate) const SIGNIN_COOKIE: &str = "hoist_signin";

/// How long a session lasts without being used.
const IDLE: Duration = Duration::from_secs(12 * 3600);
/// How stale a session's last use may be in the store before a request records it anew (one
/// write a minute per session, not one per request).
const TOUCH_EVERY: Duration = Duration::from_secs(60);
/// Failed sign-ins of one name allowed before each further attempt must wait.
const FREE_FAILURES: u32 = 3;
/// The longest wait imposed after failed sign-ins.
const MAX_WAIT: Duration = Duration::from_secs(300);
/// How long failed sign-ins are remembered once their wait is over.
const FORGET: Duration = Duration::from_secs(3600);

/// A signed-in person.
#[derive(Clone)]
pub(crate) struct Session {
    pub user: String,
    pub csrf: String,
}

/// The dashboard's sessions (kept in the store) and failed sign-ins (kept here).
#[derive(Default)]
pub(crate) struct Sessions {
    failures: Mutex<HashMap<String, (u32, Instant)>>,
}

/// The oldest last use a live session may have.
fn expired_before() -> chrono::DateTime<chrono::Utc> {
    chrono::Utc::now() - chrono::Duration::from_std(IDLE).unwrap_or(chrono::Duration::hours(12))
}

impl Sessions {
    /// A new session for `user`, stored: its id (the cookie's value). Sessions unused for
    /// longer than the idle limit are deleted on the way.
    pub async fn create(&self, store: &dyn Store, user: &str) -> Result<String, String> {
        let id = random_token().map_err(|e| e.to_string())?;
        let csrf = random_token().map_err(|e| e.to_string())?;
        store
            .create_session(&id, user, &csrf, expired_before())
            .await
            .map_err(|e| e.to_string())?;
        Ok(id)
    }

    /// The live session `id`, marked used.
    pub async fn get(&self, store: &dyn Store, id: &str) -> Result<Option<Session>, StoreError> {
        let Some(found) = store.session(id, expired_before()).await? else {
            return Ok(None);
        };
        let since = (chrono::Utc::now() - found.last_used_at)
            .to_std()
            .unwrap_or_default();
        if since >= TOUCH_EVERY {
            store.touch_session(id).await?;
        }
        Ok(Some(Session {
            user: found.user,
            csrf: found.csrf,
        }))
    }

    /// Ends the session `id`: its id is refused from now on, also after a restart.
    pub async fn remove(&self, store: &dyn Store, id: &str) -> Result<(), StoreError> {
        store.delete_session(id).await.map(|_| ())
    }

    /// How long `user` must still wait before the next sign-in attempt is even checked.
    pub fn wait(&self, user: &str) -> Option<Duration> {
        let failures = self.failures.lock().expect("failures lock");
        let (count, last) = failures.get(&user.to_lowercase())?;
        let wait = penalty(*count)?;
        wait.checked_sub(last.elapsed())
    }

    /// Notes a failed sign-in of `user`.
    pub fn failed(&self, user: &str) {
        let mut failures = self.failures.lock().expect("failures lock");
        // Names tried once and long ago are forgotten: guessed names must not fill the memory.
        failures.retain(|_, (count, last)| {
            last.elapsed() < penalty(*count).unwrap_or(Duration::ZERO).max(FORGET)
        });
        let entry = failures
            .entry(user.to_lowercase())
            .or_insert((0, Instant::now()));
        entry.0 += 1;
        entry.1 = Instant::now();
    }

    /// Forgets the failed sign-ins of `user` (it signed in).
    pub fn succeeded(&self, user: &str) {
        self.failures
            .lock()
            .expect("failures lock")
            .remove(&user.to_lowercase());
    }
}

/// The wait after `failures` failed sign-ins: none for the first few, then 2 s, 4 s, 8 s, …
fn penalty(failures: u32) -> Option<Duration> {
    let over = failures.checked_sub(FREE_FAILURES)?;
    let seconds = 2u64.saturating_pow(over.min(16) + 1);
    Some(Duration::from_secs(seconds).min(MAX_WAIT))
}

/// 32 random bytes in hex.
pub(crate) fn random_token() -> Result<String, getrandom::Error> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes)?;
    Ok(hex::encode(bytes))
}

/// Compares two tokens in constant time; an empty token never matches.
pub(crate) fn same_token(given: &str, expected: &str) -> bool {
    !expected.is_empty() && bool::from(given.as_bytes().ct_eq(expected.as_bytes()))
}

/// The value of cookie `name` in the request's `Cookie` headers.
pub(crate) fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_failures_are_free_then_the_wait_doubles_up_to_five_minutes() {
        assert_eq!(penalty(0), None);
        assert_eq!(penalty(3), Some(Duration::from_secs(2)));
        assert_eq!(penalty(4), Some(Duration::from_secs(4)));
        assert_eq!(penalty(5), Some(Duration::from_secs(8)));
        assert_eq!(penalty(40), Some(MAX_WAIT));
    }

    #[test]
    fn an_empty_expected_token_never_matches() {
        assert!(!same_token("", ""));
        assert!(same_token("ab", "ab"));
        assert!(!same_token("ab", "ac"));
    }
}
