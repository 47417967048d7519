//! [`ConfigError`]: every problem with a config file, located at its line and column.

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

use crate::suggest::closest;

/// Every config error: the file, the line (1-based) and column when known, what is wrong, and a
/// hint.
///
/// Displays as `hoist.toml:12:5: unknown restart strategy "supervisr"; expected one of …`, with
/// the path as it was given. The hint is not part of the display: the CLI prints it on a
/// `hint:` line of its own.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ConfigError {
    /// The config file, as the caller named it.
    pub path: PathBuf,
    /// 1-based line of the offending key or value, when known.
    pub line: Option<usize>,
    /// 1-based column (in characters) on that line, when known.
    pub column: Option<usize>,
    /// What is wrong, in one line.
    pub message: String,
    /// How to fix it, when there is more to say than the message.
    pub hint: Option<String>,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.path.display())?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
            if let Some(column) = self.column {
                write!(f, ":{column}")?;
            }
        }
        write!(f, ": {}", self.message)
    }
}

impl ConfigError {
    /// An error about the file as a whole, with no line.
    pub fn new(path: &Path, message: impl Into<String>) -> Self {
        Self {
            path: path.to_path_buf(),
            line: None,
            column: None,
            message: message.into(),
            hint: None,
        }
    }

    /// An error located at the start of `span`, a byte range of `text` (as given by
    /// `toml::Spanned::span` or `toml::de::Error::span`).
    pub fn at_span(
        path: &Path,
        text: &str,
        span: Range<usize>,
        message: impl Into<String>,
    ) -> Self {
        let (line, column) = line_and_column(text, span.start);
        Self {
            line: Some(line),
            column: Some(column),
            ..Self::new(path, message)
        }
    }

    /// The same error with a hint.
    #[must_use]
    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    /// Turns an error of `toml`'s deserializer into a located, readable one: unknown keys name
    /// their table, list the valid keys and suggest the closest; missing keys name their table;
    /// type errors name the key. Reusable by any crate that deserializes TOML with serde.
    pub fn from_toml(path: &Path, text: &str, err: toml::de::Error) -> Self {
        let raw = err.message().to_owned();
        let Some(span) = err.span() else {
            return Self::new(path, describe_plain(&raw));
        };
        let place = Place::find(text, span.start);
        if let Some(rest) = raw.strip_prefix("unknown field `") {
            let (key, expected) = split_unknown_field(rest);
            return unknown_key(path, text, span, &place, &key, &expected);
        }
        if let Some(rest) = raw.strip_prefix("missing field `") {
            let key = rest.trim_end_matches('`').to_owned();
            return missing_key(path, text, span, &place, &key);
        }
        if let Some(rest) = raw.strip_prefix("invalid type: ") {
            return wrong_type(path, text, span, &place, rest);
        }
        Self::at_span(path, text, span, describe_plain(&raw))
    }
}

/// 1-based line and column (in characters) of byte `offset` in `text`.
pub(crate) fn line_and_column(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = text.get(..offset).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before[line_start..].chars().count() + 1;
    (line, column)
}

/// Serde and syntax messages that need no rewording beyond one line and a prefix.
fn describe_plain(raw: &str) -> String {
    let one_line = raw.trim().replace('\n', "; ");
    let from_serde = [
        "invalid value",
        "invalid length",
        "duplicate field",
        "unknown variant",
    ]
    .iter()
    .any(|prefix| one_line.starts_with(prefix));
    if from_serde {
        one_line
    } else {
        format!("malformed TOML: {one_line}")
    }
}

/// Where in the document an error points: the header of the table it is in, and whether the
/// error's own line is that header (then the error is about the table itself).
struct Place {
    /// The header as written, e.g. `[release]` or `[[hook]]`; `None` at the top level.
    header: Option<String>,
    /// The dotted name inside the header, e.g. `release` or `release.foo`.
    table: Option<String>,
    /// True when the error's position is on the header line itself.
    on_header: bool,
    /// The key assigned on the error's line (`key = …`), if any.
    line_key: Option<String>,
}

impl Place {
    fn find(text: &str, offset: usize) -> Self {
        let offset = offset.min(text.len());
        let line_start = text[..offset].rfind('\n').map_or(0, |i| i + 1);
        let line_end = text[offset..].find('\n').map_or(text.len(), |i| offset + i);
        let own_line = &text[line_start..line_end];
        let on_header = header_name(own_line).is_some();
        let header_line = text[..line_end]
            .lines()
            .rev()
            .find(|line| header_name(line).is_some());
        let line_key = own_line
            .split_once('=')
            .filter(|(key, _)| !key.trim_start().starts_with('#') && !on_header)
            .map(|(key, _)| unquote(key.trim().rsplit('.').next().unwrap_or_default()))
            .filter(|key| !key.is_empty() && !key.contains([' ', '"', '[', '{']));
        Self {
            header: header_line.map(|line| strip_comment(line).trim().to_owned()),
            table: header_line.and_then(header_name),
            on_header,
            line_key,
        }
    }

    /// `[release]`, or "the top level" when the key is outside any table.
    fn table_label(&self) -> String {
        self.header
            .as_ref()
            .map_or_else(|| "the top level".to_owned(), |header| header.clone())
    }
}

/// The dotted name of a `[name]` or `[[name]]` header line, else `None`.
fn header_name(line: &str) -> Option<String> {
    let line = strip_comment(line).trim();
    let inner = line
        .strip_prefix("[[")
        .and_then(|l| l.strip_suffix("]]"))
        .or_else(|| line.strip_prefix('[').and_then(|l| l.strip_suffix(']')))?;
    let parts: Vec<String> = inner.split('.').map(|p| unquote(p.trim())).collect();
    Some(parts.join("."))
}

fn strip_comment(line: &str) -> &str {
    // Good enough for headers and keys: a `#` inside a quoted key is rare enough not to matter.
    line.split_once('#').map_or(line, |(before, _)| before)
}

fn unquote(s: &str) -> String {
    s.trim_matches(|c| c == '"' || c == '\'').to_owned()
}

/// Splits serde's "X`, expected one of `a`, `b`" into `X` and the expected names.
fn split_unknown_field(rest: &str) -> (String, Vec<String>) {
    let (key, tail) = rest.split_once('`').unwrap_or((rest, ""));
    let expected = tail
        .split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_owned)
        .collect();
    (key.to_owned(), expected)
}

/// Top-level keys that are arrays of tables, written `[[name]]`.
const ARRAY_TABLES: &[&str] = &["hook", "process"];

fn as_table(name: &str) -> String {
    if ARRAY_TABLES.contains(&name) {
        format!("[[{name}]]")
    } else {
        format!("[{name}]")
    }
}

fn unknown_key(
    path: &Path,
    text: &str,
    span: Range<usize>,
    place: &Place,
    key: &str,
    expected: &[String],
) -> ConfigError {
    let candidates: Vec<&str> = expected.iter().map(String::as_str).collect();
    let suggestion = closest(key, &candidates);
    let is_table = place.on_header
        && place
            .table
            .as_deref()
            .is_some_and(|t| t.rsplit('.').next() == Some(key));
    let message = if is_table && place.table.as_deref() == Some(key) {
        // A top-level table that does not exist, e.g. `[pipline]` or `[[hooks]]`.
        let header = place.header.clone().unwrap_or_else(|| format!("[{key}]"));
        let valid: Vec<String> = candidates.iter().map(|c| as_table(c)).collect();
        let guess = suggestion.map(|s| format!("did you mean {}?", as_table(s)));
        sentence(
            format!("unknown table {header}"),
            guess,
            format!("valid tables are {}", valid.join(", ")),
        )
    } else {
        let table = if is_table {
            // `[release.foo]`: the unknown key is `foo` in `[release]`.
            let parent = place.table.as_deref().and_then(|t| t.rsplit_once('.'));
            parent.map_or_else(|| "the top level".to_owned(), |(p, _)| format!("[{p}]"))
        } else {
            place.table_label()
        };
        let guess = suggestion.map(|s| format!("did you mean `{s}`?"));
        let valid = if candidates.is_empty() {
            "this table takes no keys".to_owned()
        } else {
            format!("valid keys are {}", candidates.join(", "))
        };
        sentence(format!("unknown key `{key}` in {table}"), guess, valid)
    };
    let hint = match suggestion {
        Some(suggestion) => format!("rename `{key}` to `{suggestion}`"),
        None => format!("remove `{key}`; docs/config.md describes every key"),
    };
    ConfigError::at_span(path, text, span, message).with_hint(hint)
}

/// "what; did you mean x? valid …" or "what; valid …".
fn sentence(what: String, guess: Option<String>, valid: String) -> String {
    match guess {
        Some(guess) => format!("{what}; {guess} {valid}"),
        None => format!("{what}; {valid}"),
    }
}

fn missing_key(
    path: &Path,
    text: &str,
    span: Range<usize>,
    place: &Place,
    key: &str,
) -> ConfigError {
    if span.is_empty() || !place.on_header {
        // The document root reports an empty span: a whole top-level table is missing, and
        // there is no line to point at.
        return ConfigError::new(path, format!("missing required table {}", as_table(key)))
            .with_hint(missing_hint(key));
    }
    let table = place.table_label();
    ConfigError::at_span(
        path,
        text,
        span,
        format!("missing required key `{key}` in {table}"),
    )
    .with_hint(missing_hint(key))
}

fn missing_hint(key: &str) -> String {
    match key {
        "app" => "add an [app] table with `name` and `entry`, e.g. name = \"example\" and entry = \"app:app\"".to_owned(),
        "release" => "add a [release] table with `root`, e.g. root = \"/srv/example\"".to_owned(),
        "name" => "add `name = \"…\"`".to_owned(),
        "entry" => "add `entry = \"module:attribute\"`, the WSGI/ASGI app, e.g. entry = \"app:app\"".to_owned(),
        "root" => "add `root = \"/srv/<app name>\"`, the absolute directory that holds the releases".to_owned(),
        "run" => "add `run = \"…\"`, the command the hook runs in the new release".to_owned(),
        "restart" => "add `restart = \"…\"`, one of supervisor, systemd, uwsgi-chain, gunicorn-hup, command".to_owned(),
        other => format!("add `{other} = …`"),
    }
}

fn wrong_type(
    path: &Path,
    text: &str,
    span: Range<usize>,
    place: &Place,
    rest: &str,
) -> ConfigError {
    let (found, expected) = rest.split_once(", expected ").unwrap_or((rest, ""));
    let found = describe_found(found);
    let expected = describe_expected(expected);
    let key = if place.on_header {
        place
            .table
            .as_deref()
            .map(|t| t.rsplit('.').next().unwrap_or(t).to_owned())
    } else {
        place.line_key.clone()
    };
    let message = match &key {
        Some(key) => format!("`{key}` must be {expected}, not {found}"),
        None => format!("expected {expected}, found {found}"),
    };
    let mut error = ConfigError::at_span(path, text, span, message);
    if let Some(key) = &key {
        if place.on_header && expected == "an array" && ARRAY_TABLES.contains(&key.as_str()) {
            error = error.with_hint(format!(
                "write [[{key}]] with double brackets: each [[{key}]] adds one {key}"
            ));
        } else if ["timeout", "interval", "lock_wait"].contains(&key.as_str()) {
            error = error.with_hint(format!(
                "durations are strings with a unit, e.g. {key} = \"30s\""
            ));
        }
    }
    error
}

fn describe_found(found: &str) -> String {
    match found {
        "map" => "a table".to_owned(),
        "sequence" => "an array".to_owned(),
        other => other.replace('`', ""),
    }
}

fn describe_expected(expected: &str) -> String {
    match expected {
        "a sequence" => "an array".to_owned(),
        "i64" | "u64" | "u16" | "usize" => "an integer".to_owned(),
        "a borrowed string" => "a string".to_owned(),
        "a map" => "a table".to_owned(),
        other if other.starts_with("struct ") => "a table".to_owned(),
        other => other.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_shows_path_line_and_column_but_not_the_hint() {
        let error = ConfigError::at_span(Path::new("hoist.toml"), "a\nbc = 1\n", 4..5, "bad")
            .with_hint("fix it");
        assert_eq!(error.to_string(), "hoist.toml:2:3: bad");
        assert_eq!(error.hint.as_deref(), Some("fix it"));
    }

    #[test]
    fn display_without_a_line_shows_the_path_only() {
        let error = ConfigError::new(Path::new("conf/hoist.toml"), "missing");
        assert_eq!(error.to_string(), "conf/hoist.toml: missing");
    }

    #[test]
    fn columns_count_characters_not_bytes() {
        assert_eq!(line_and_column("é = 1", 5), (1, 5));
        assert_eq!(line_and_column("x\n", 2), (2, 1));
    }

    #[test]
    fn finds_the_table_a_line_belongs_to() {
        let text = "[app]\nname = 1\n\n[[hook]] # first\nrun = 2\n";
        let place = Place::find(text, text.find("run").unwrap());
        assert_eq!(place.header.as_deref(), Some("[[hook]]"));
        assert_eq!(place.line_key.as_deref(), Some("run"));
        assert!(!place.on_header);
        let top = Place::find("x = 1\n[app]\n", 0);
        assert_eq!(top.table_label(), "the top level");
    }
}
