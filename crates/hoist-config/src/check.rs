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
        parse_duration(value.get_ref()).map_err(|error| {
            let message = match error {
                DurationError::Invalid(text) => {
                    format!("invalid duration {text:?} for `{key}`: {EXPECTED_DURATION}")
                }
                DurationError::TooLong(_) => format!("`{key}`: {error}"),
            };
            self.error(value.span(), message).with_hint(format!(
                "units are ms, s, m and h, e.g. {key} = \"30s\" or \"1m30s\""
            ))
        })
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
            Some(value) if duration.is_zero() => {
                Err(self.error(value.span(), format!("`{key}` must be longer than 0s")))
            }
            _ => Ok(duration),
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
