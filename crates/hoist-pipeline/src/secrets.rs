//! Secrets: read from the environment, or from a `KEY=value` file that is never committed.

use std::path::Path;
use std::process::Command;

/// A secret that cannot be had.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    /// Neither the environment nor the file has it.
    #[error("secret {name} is not set")]
    Missing {
        /// The secret's name.
        name: String,
        /// Where we looked.
        hint: String,
    },
    /// The secrets file is tracked by git.
    #[error("the secrets file {file} is committed to git")]
    Committed {
        /// The file.
        file: String,
    },
    /// The secrets file cannot be read or parsed.
    #[error("{file}:{line}: {message}")]
    File {
        /// The file.
        file: String,
        /// 1-based line (0 when the file cannot be read).
        line: usize,
        /// What is wrong.
        message: String,
    },
}

impl SecretError {
    /// How to fix it.
    pub fn hint(&self) -> String {
        match self {
            Self::Missing { hint, .. } => hint.clone(),
            Self::Committed { file } => format!("remove it from git (git rm --cached {file}), add it to .gitignore, and change the secrets it held"),
            Self::File { .. } => "write one KEY=value per line; a multi-line value goes between double quotes".into(),
        }
    }
}

/// Parses a secrets file: `KEY=value` lines, `#` comments, optional `export `, values in
/// single quotes (literal) or double quotes (may span lines, `\n` `\"` `\\` escapes).
pub fn parse_file(text: &str, label: &str) -> Result<Vec<(String, String)>, SecretError> {
    let mut out = Vec::new();
    let mut lines = text.lines().enumerate();
    while let Some((n, line)) = lines.next() {
        let line = line.trim_start();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line = line.strip_prefix("export ").unwrap_or(line);
        let Some((key, value)) = line.split_once('=') else {
            return Err(SecretError::File {
                file: label.into(),
                line: n + 1,
                message: "expected KEY=value".into(),
            });
        };
        let key = key.trim().to_string();
        if let Some(rest) = value.strip_prefix('"') {
            let mut raw = rest.to_string();
            while !closes(&raw) {
                let Some((_, next)) = lines.next() else {
                    return Err(SecretError::File {
                        file: label.into(),
                        line: n + 1,
                        message: format!("the value of {key} has no closing double quote"),
                    });
                };
                raw.push('\n');
                raw.push_str(next);
            }
            out.push((key, unescape(&raw[..raw.trim_end().len() - 1])));
        } else if let Some(rest) = value.strip_prefix('\'') {
            let end = rest.rfind('\'').ok_or_else(|| SecretError::File {
                file: label.into(),
                line: n + 1,
                message: format!("the value of {key} has no closing single quote"),
            })?;
            out.push((key, rest[..end].to_string()));
        } else {
            out.push((key, value.trim().to_string()));
        }
    }
    Ok(out)
}

/// Whether a double-quoted value (without its opening quote) ends with an unescaped quote.
fn closes(raw: &str) -> bool {
    let trimmed = raw.trim_end();
    if !trimmed.ends_with('"') {
        return false;
    }
    let backslashes = trimmed[..trimmed.len() - 1]
        .chars()
        .rev()
        .take_while(|c| *c == '\\')
        .count();
    backslashes % 2 == 0
}

fn unescape(raw: &str) -> String {
    let mut out = String::new();
    let mut chars = raw.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some(other) => out.push(other),
            None => out.push('\\'),
        }
    }
    out
}

/// Reads the named secrets: the environment first, then the secrets file.
pub fn load(
    names: &[String],
    file: Option<&Path>,
    project_dir: &Path,
) -> Result<Vec<(String, String)>, SecretError> {
    let mut from_file = Vec::new();
    if let Some(file) = file {
        let label = file
            .strip_prefix(project_dir)
            .unwrap_or(file)
            .display()
            .to_string();
        if file.exists() {
            let tracked = Command::new("git")
                .arg("-C")
                .arg(project_dir)
                .args(["ls-files", "--error-unmatch", "--"])
                .arg(file)
                .output()
                .is_ok_and(|o| o.status.success());
            if tracked {
                return Err(SecretError::Committed { file: label });
            }
            let text = std::fs::read_to_string(file).map_err(|e| SecretError::File {
                file: label.clone(),
                line: 0,
                message: e.to_string(),
            })?;
            from_file = parse_file(&text, &label)?;
        }
    }
    names
        .iter()
        .map(|name| {
            let value = std::env::var(name).ok().or_else(|| {
                from_file
                    .iter()
                    .rev()
                    .find(|(k, _)| k == name)
                    .map(|(_, v)| v.clone())
            });
            value
                .map(|v| (name.clone(), v))
                .ok_or_else(|| SecretError::Missing {
                    name: name.clone(),
                    hint: match file {
                        Some(f) => format!(
                            "export {name}=..., or add {name}=... to {} (never commit that file)",
                            f.display()
                        ),
                        None => format!(
                            "export {name}=..., or set [pipeline] secrets_file and put it there"
                        ),
                    },
                })
        })
        .collect()
}
