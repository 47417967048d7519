//! `[health]`: how hoist knows the restarted app works.

use std::time::Duration;

use crate::check::Checker;
use crate::raw::RawHealth;
use crate::ConfigError;

/// The `[health]` table, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Health {
    /// What is checked.
    pub probe: HealthProbe,
    /// Total time to wait for a passing check after the restart.
    pub timeout: Duration,
    /// Time between attempts.
    pub interval: Duration,
}

/// One health check attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HealthProbe {
    /// `GET url` must answer `status`, and contain `body` when set.
    Http {
        /// An `http://` URL, usually on 127.0.0.1.
        url: String,
        /// The expected HTTP status.
        status: u16,
        /// A substring the response body must contain.
        body: Option<String>,
    },
    /// A command that must exit 0.
    Command {
        /// The command line, run with `bash -c` in the new release.
        command: String,
    },
}

pub(crate) fn validate(
    check: &Checker<'_>,
    table: std::ops::Range<usize>,
    raw: &RawHealth,
) -> Result<Health, ConfigError> {
    let probe = match (&raw.url, &raw.command) {
        (Some(_), Some(command)) => {
            return Err(check
                .error(
                    command.span(),
                    "[health] sets both `url` and `command`; set exactly one",
                )
                .with_hint(
                    "keep `url` for an HTTP check, or `command` for a command that must exit 0",
                ));
        }
        (None, None) => {
            return Err(check
                .error(table, "[health] needs exactly one of `url` or `command`")
                .with_hint("e.g. url = \"http://127.0.0.1:8000/health\""));
        }
        (Some(url), None) => {
            let text = url.get_ref();
            let host = text.strip_prefix("http://").unwrap_or_default();
            if host.is_empty() || host.starts_with('/') {
                return Err(check
                    .error(url.span(), format!("health url {text:?} must start with http:// and name a host"))
                    .with_hint("hoist checks the app on each host directly, behind any TLS proxy: e.g. url = \"http://127.0.0.1:8000/health\""));
            }
            let status = match &raw.status {
                None => 200,
                Some(status) => u16::try_from(*status.get_ref())
                    .ok()
                    .filter(|code| (100..=599).contains(code))
                    .ok_or_else(|| {
                        check.error(
                            status.span(),
                            format!(
                                "status {} is not an HTTP status code (100-599)",
                                status.get_ref()
                            ),
                        )
                    })?,
            };
            HealthProbe::Http {
                url: text.clone(),
                status,
                body: raw.body.as_ref().map(|body| body.get_ref().clone()),
            }
        }
        (None, Some(command)) => {
            if let Some((key, span)) = raw
                .status
                .as_ref()
                .map(|s| ("status", s.span()))
                .or_else(|| raw.body.as_ref().map(|b| ("body", b.span())))
            {
                return Err(check
                    .error(
                        span,
                        format!("`{key}` applies to an HTTP check (`url`), not to `command`"),
                    )
                    .with_hint(format!(
                        "remove `{key}`; the command passes when it exits 0"
                    )));
            }
            HealthProbe::Command {
                command: check.non_empty(command, "command")?,
            }
        }
    };
    Ok(Health {
        probe,
        timeout: check.positive_duration(
            raw.timeout.as_ref(),
            "timeout",
            Duration::from_secs(30),
        )?,
        interval: check.positive_duration(
            raw.interval.as_ref(),
            "interval",
            Duration::from_millis(250),
        )?,
    })
}
