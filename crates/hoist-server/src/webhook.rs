//! Webhook deliveries: which forge sent one (by its headers), whether it is authentic (HMAC over
//! the raw body, in constant time), and what push it describes.

use axum::http::HeaderMap;
use hmac::{Hmac, Mac};
use serde::Deserialize;
use sha2::Sha256;
use subtle::ConstantTimeEq;

/// The forge a delivery came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Provider {
    /// GitHub (`X-GitHub-Event`, `X-Hub-Signature-256`).
    GitHub,
    /// Gitea or Forgejo (`X-Gitea-Event`, `X-Gitea-Signature`).
    Gitea,
    /// GitLab (`X-Gitlab-Event`, `X-Gitlab-Token`).
    GitLab,
}

impl Provider {
    /// Its name in the store.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Provider::GitHub => "github",
            Provider::Gitea => "gitea",
            Provider::GitLab => "gitlab",
        }
    }
}

/// A delivery's headers, read before its body is trusted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    /// Who sent it.
    pub provider: Provider,
    /// The event name (`push`, `ping`, `Push Hook`…).
    pub event: String,
    /// The delivery id (the idempotency key).
    pub delivery: Option<String>,
    /// The signature or token header, as sent.
    signature: Option<String>,
}

/// Why a delivery is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// No forge's event header.
    #[error("not a webhook delivery: no X-GitHub-Event, X-Gitea-Event or X-Gitlab-Event header")]
    UnknownProvider,
    /// Missing signature.
    #[error("the delivery is not signed ({0} is missing)")]
    Unsigned(&'static str),
    /// Signature does not match.
    #[error("the signature does not match this project's webhook secret")]
    BadSignature,
    /// The body is not a payload we understand.
    #[error("unparseable payload: {0}")]
    Payload(String),
}

fn header(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

impl Envelope {
    /// Recognises the forge by its event header.
    ///
    /// # Errors
    ///
    /// [`Refusal::UnknownProvider`] when no forge's header is there.
    pub fn from_headers(headers: &HeaderMap) -> Result<Envelope, Refusal> {
        let (provider, event, delivery, signature) =
            if let Some(event) = header(headers, "x-github-event") {
                (
                    Provider::GitHub,
                    event,
                    header(headers, "x-github-delivery"),
                    header(headers, "x-hub-signature-256"),
                )
            } else if let Some(event) = header(headers, "x-gitea-event") {
                (
                    Provider::Gitea,
                    event,
                    header(headers, "x-gitea-delivery"),
                    header(headers, "x-gitea-signature"),
                )
            } else if let Some(event) = header(headers, "x-gitlab-event") {
                (
                    Provider::GitLab,
                    event,
                    header(headers, "x-gitlab-event-uuid"),
                    header(headers, "x-gitlab-token"),
                )
            } else {
                return Err(Refusal::UnknownProvider);
            };
        Ok(Envelope {
            provider,
            event,
            delivery,
            signature,
        })
    }

    /// Checks the delivery against the project's secret: an HMAC-SHA256 of the raw body
    /// (GitHub, Gitea) or the secret itself (GitLab), compared in constant time.
    ///
    /// # Errors
    ///
    /// [`Refusal::Unsigned`] or [`Refusal::BadSignature`].
    pub fn verify(&self, secret: &[u8], body: &[u8]) -> Result<(), Refusal> {
        let missing = match self.provider {
            Provider::GitHub => "X-Hub-Signature-256",
            Provider::Gitea => "X-Gitea-Signature",
            Provider::GitLab => "X-Gitlab-Token",
        };
        let sent = self
            .signature
            .as_deref()
            .ok_or(Refusal::Unsigned(missing))?;
        let ok = match self.provider {
            Provider::GitLab => bool::from(sent.as_bytes().ct_eq(secret)),
            Provider::GitHub | Provider::Gitea => {
                let hex_part = match self.provider {
                    Provider::GitHub => sent.strip_prefix("sha256=").unwrap_or(""),
                    _ => sent,
                };
                let Ok(expected) = hex::decode(hex_part.trim()) else {
                    return Err(Refusal::BadSignature);
                };
                let mut mac =
                    Hmac::<Sha256>::new_from_slice(secret).map_err(|_| Refusal::BadSignature)?;
                mac.update(body);
                mac.verify_slice(&expected).is_ok()
            }
        };
        if ok {
            Ok(())
        } else {
            Err(Refusal::BadSignature)
        }
    }

    /// True for the forge's "the hook works" event.
    #[must_use]
    pub fn is_ping(&self) -> bool {
        self.event == "ping"
    }

    /// True for a push (of a branch or a tag).
    #[must_use]
    pub fn is_push(&self) -> bool {
        matches!(self.event.as_str(), "push" | "Push Hook" | "Tag Push Hook")
    }
}

/// What a push delivery says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Push {
    /// A branch moved to `commit`.
    Branch {
        /// The branch name.
        branch: String,
        /// The head commit of the push.
        commit: String,
        /// Its message.
        message: String,
        /// Its author.
        author: String,
        /// Who pushed.
        pusher: String,
    },
    /// A branch was deleted.
    Deleted {
        /// The branch name.
        branch: String,
    },
    /// A tag was pushed.
    Tag {
        /// The tag name.
        tag: String,
    },
}

#[derive(Deserialize)]
struct RawPush {
    #[serde(rename = "ref")]
    reference: String,
    after: Option<String>,
    checkout_sha: Option<String>,
    #[serde(default)]
    deleted: bool,
    head_commit: Option<RawCommit>,
    #[serde(default)]
    commits: Vec<RawCommit>,
    pusher: Option<RawPerson>,
    user_name: Option<String>,
    user_username: Option<String>,
}

#[derive(Deserialize)]
struct RawCommit {
    id: String,
    #[serde(default)]
    message: String,
    author: Option<RawPerson>,
}

#[derive(Deserialize)]
struct RawPerson {
    name: Option<String>,
    username: Option<String>,
    login: Option<String>,
}

impl RawPerson {
    fn label(&self) -> String {
        self.username
            .clone()
            .or_else(|| self.login.clone())
            .or_else(|| self.name.clone())
            .unwrap_or_default()
    }
}

/// Reads a push payload: JSON, or GitHub's form encoding (`payload=<json>`).
///
/// # Errors
///
/// [`Refusal::Payload`] when it is not a push payload.
pub fn parse_push(body: &[u8], form_encoded: bool) -> Result<Push, Refusal> {
    let json: Vec<u8> = if form_encoded {
        form_urlencoded::parse(body)
            .find(|(k, _)| k == "payload")
            .map(|(_, v)| v.into_owned().into_bytes())
            .ok_or_else(|| Refusal::Payload("no `payload` field in the form".into()))?
    } else {
        body.to_vec()
    };
    let raw: RawPush =
        serde_json::from_slice(&json).map_err(|e| Refusal::Payload(e.to_string()))?;
    if let Some(tag) = raw.reference.strip_prefix("refs/tags/") {
        return Ok(Push::Tag { tag: tag.into() });
    }
    let branch = raw
        .reference
        .strip_prefix("refs/heads/")
        .ok_or_else(|| Refusal::Payload(format!("ref {:?} is not a branch", raw.reference)))?
        .to_string();
    let after = raw.checkout_sha.clone().or_else(|| raw.after.clone());
    let zero = |c: &str| c.chars().all(|c| c == '0');
    if raw.deleted || after.as_deref().is_none_or(zero) {
        return Ok(Push::Deleted { branch });
    }
    let commit = after.unwrap_or_default();
    if commit.len() < 7 || !commit.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(Refusal::Payload(format!("{commit:?} is not a commit id")));
    }
    // The head commit of a push of several commits: the one `after` names.
    let head = raw
        .head_commit
        .filter(|c| c.id == commit)
        .or_else(|| raw.commits.into_iter().find(|c| c.id == commit));
    let (message, author) = head.map_or_else(Default::default, |c| {
        (
            c.message.trim_end().to_string(),
            c.author.map(|a| a.label()).unwrap_or_default(),
        )
    });
    let pusher = raw
        .pusher
        .map(|p| p.label())
        .or(raw.user_username)
        .or(raw.user_name)
        .unwrap_or_default();
    Ok(Push::Branch {
        branch,
        commit,
        message,
        author,
        pusher,
    })
}
