//! [`Checker`]: what every validation step needs to report an error at the right line.

use std::ops::Range;
use std::path::{Component, Path, PathBuf};
use std::time::Duration;

use toml::Spanned;

use crate::duration::{parse_duration, DurationError, EXPECTED_DURATION};
use crate::ConfigError;

/// The file being validated: its path (as given) and its text, to turn spans into lines.
pub(crate) struct Checker<'a> {
    pub path: &'a Path,
    pub text: &'a str,
}

impl Checker<'_> {
    /// An error at the start of `span`.
    pub fn error(&self, span: Range<usize>, message: impl Into<String>) -> ConfigError {
        ConfigError::at_span(self.path, self.text, span, message)
    }

    /// The string value, refused when empty or blank.
    pub fn non_empty(&self, value: &Spanned<String>, key: &str) -> Result<String, ConfigError> {
        if value.get_ref().trim().is_empty() {
            return Err(self.error(value.span(), format!("`{key}` must not be empty")));
        }
        Ok(value.get_ref().clone())
    }

    /// The duration under `key`, or `default` when the key is absent.
    pub fn duration(
        &self,
        value: Option<&Spanned<String>>,
        key: &str,
        default: Duration,
    ) -> Result<Duration, ConfigError> {
        let Some(value) = value else {
            return Ok(default);
        };
        self.duration_text(value.span(), value.get_ref(), key)
    }

    /// `text`, the duration under `key` found at `span`.
    pub fn duration_text(
        &self,
        span: Range<usize>,
        text: &str,
        key: &str,
    ) -> Result<Duration, ConfigError> {
        parse_duration(text).map_err(|error| {
            let message = match error {
                DurationError::Invalid(text) => {
                    format!("invalid duration {text:?} for `{key}`: {EXPECTED_DURATION}")
                }
                DurationError::TooLong(_) => format!("`{key}`: {error}"),
            };
            self.error(span, message).with_hint(format!(
                "units are ms, s, m and h, e.g. {key} = \"30s\" or \"1m30s\""
            ))
        })
    }

    /// A duration where TOML allows any value: a string in the one duration grammar. A bare
    /// number is refused (seconds? minutes?) with a hint that writes it with a unit.
    pub fn duration_value(
        &self,
        value: &Spanned<toml::Value>,
        key: &str,
    ) -> Result<Duration, ConfigError> {
        match value.get_ref() {
            toml::Value::String(text) => self.duration_text(value.span(), text, key),
            toml::Value::Integer(number) => Err(self
                .error(
                    value.span(),
                    format!("`{key}` = {number} has no unit: {EXPECTED_DURATION}"),
                )
                .with_hint(format!(
                    "write \"{number}s\" (units are ms, s, m and h; a bare number is not guessed)"
                ))),
            other => Err(self
                .error(
                    value.span(),
                    format!("`{key}` must be a duration, not {}", other.type_str()),
                )
                .with_hint(format!(
                    "durations are strings with a unit, e.g. {key} = \"30s\""
                ))),
        }
    }

    /// Like [`Checker::duration_value`], refusing zero.
    pub fn positive_duration_value(
        &self,
        value: &Spanned<toml::Value>,
        key: &str,
    ) -> Result<Duration, ConfigError> {
        let duration = self.duration_value(value, key)?;
        self.longer_than_zero(duration, value.span(), key)
    }

    /// `duration` unless it is zero, which a timeout or interval cannot be.
    fn longer_than_zero(
        &self,
        duration: Duration,
        span: Range<usize>,
        key: &str,
    ) -> Result<Duration, ConfigError> {
        if duration.is_zero() {
            return Err(self.error(span, format!("`{key}` must be longer than 0s")));
        }
        Ok(duration)
    }

    /// Like [`Checker::duration`], refusing zero: a zero timeout or interval can only fail.
    pub fn positive_duration(
        &self,
        value: Option<&Spanned<String>>,
        key: &str,
        default: Duration,
    ) -> Result<Duration, ConfigError> {
        let duration = self.duration(value, key, default)?;
        match value {
            Some(value) => self.longer_than_zero(duration, value.span(), key),
            None => Ok(duration),
        }
    }
}

/// `path` with `.` components dropped and `..` applied, without touching the file system (the
/// path may not exist, or may be on another host).
pub(crate) fn normalize(path: &Path) -> PathBuf {
    let mut normal = PathBuf::new();
    for component in path.components() {
        match component {
            Component::CurDir => {}
            Component::ParentDir => {
                if normal.as_os_str() == "/" {
                    // `/..` is `/`.
                } else if !normal.pop() {
                    normal.push("..");
                }
            }
            other => normal.push(other.as_os_str()),
        }
    }
    normal
}

/// True when a `/`-separated relative path climbs out with a `..` component.
pub(crate) fn has_parent_component(path: &str) -> bool {
    path.split('/').any(|part| part == "..")
}
