//! Cache key templates: `deps-{{ checksum "requirements.txt" }}-{{ .Branch }}`.
//!
//! Supported: `{{ checksum "file" }}` (base64 of the file's SHA-256, the file relative to the
//! job's workspace), `{{ .Branch }}`, `{{ .Revision }}`, `{{ epoch }}` (seconds since 1970),
//! `{{ arch }}` and `{{ .Environment.NAME }}`.

use base64::Engine as _;
use sha2::{Digest, Sha256};
use std::path::Path;

/// What a key template can refer to.
pub struct KeyContext<'a> {
    /// The pipeline's branch.
    pub branch: &'a str,
    /// The pipeline's commit (full hex).
    pub revision: &'a str,
    /// Seconds since the Unix epoch, fixed for the whole step.
    pub epoch: u64,
    /// Where `checksum` looks for files.
    pub base_dir: &'a Path,
    /// The step's environment.
    pub env: &'a dyn Fn(&str) -> Option<String>,
}

/// A template that cannot be rendered.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum KeyError {
    /// `{{ checksum "f" }}` of a file that is not there.
    #[error("cache key {template:?}: checksum of {file:?} failed: {reason}; make sure an earlier step creates it (paths are relative to the job's workspace)")]
    Checksum {
        /// The whole template.
        template: String,
        /// The file named.
        file: String,
        /// What went wrong reading it.
        reason: String,
    },
    /// `{{ .Environment.X }}` where X is not set.
    #[error("cache key {template:?}: environment variable {name} is not set; set it in the pipeline's, job's or step's environment")]
    MissingVariable {
        /// The whole template.
        template: String,
        /// The variable.
        name: String,
    },
    /// The rendered key holds a secret's value. Keys are stored in clear (the store's index,
    /// `hoist cache ls`) and shown in logs and records, so the step is refused rather than
    /// masked (a masked key would no longer tell caches apart) or hashed (a hash of a short
    /// secret can be brute-forced by anyone who can read the store).
    #[error("cache key {template:?} would hold the value of secret {name}: cache keys are stored and shown in clear (the cache index, hoist cache ls, logs); build the key from values that are not secret, e.g. {{{{ checksum \"file\" }}}}")]
    Secret {
        /// The whole template.
        template: String,
        /// The secret whose value it would hold.
        name: String,
    },
    /// Unknown or malformed `{{ ... }}`.
    #[error("cache key {template:?}: cannot understand {{{{ {expr} }}}}; expected checksum \"file\", .Branch, .Revision, epoch, arch or .Environment.NAME")]
    Unknown {
        /// The whole template.
        template: String,
        /// The expression between the braces.
        expr: String,
    },
}

/// The architecture string used by `{{ arch }}`, e.g. `linux-x86_64`.
pub fn arch() -> String {
    format!("{}-{}", std::env::consts::OS, std::env::consts::ARCH)
}

/// base64 of the SHA-256 of `bytes`, as `{{ checksum }}` renders it.
pub fn checksum_of(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(Sha256::digest(bytes))
}

/// Renders a key template.
pub fn render(template: &str, ctx: &KeyContext<'_>) -> Result<String, KeyError> {
    let mut out = String::new();
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else {
            return Err(KeyError::Unknown {
                template: template.into(),
                expr: after.trim().into(),
            });
        };
        out.push_str(&expand(after[..end].trim(), template, ctx)?);
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    Ok(out)
}

fn expand(expr: &str, template: &str, ctx: &KeyContext<'_>) -> Result<String, KeyError> {
    let unknown = || KeyError::Unknown {
        template: template.into(),
        expr: expr.into(),
    };
    match expr {
        ".Branch" => return Ok(ctx.branch.to_string()),
        ".Revision" => return Ok(ctx.revision.to_string()),
        "epoch" => return Ok(ctx.epoch.to_string()),
        "arch" => return Ok(arch()),
        _ => {}
    }
    if let Some(name) = expr.strip_prefix(".Environment.") {
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(unknown());
        }
        return (ctx.env)(name).ok_or_else(|| KeyError::MissingVariable {
            template: template.into(),
            name: name.into(),
        });
    }
    if let Some(arg) = expr.strip_prefix("checksum") {
        let arg = arg.trim();
        let file = arg
            .strip_prefix('"')
            .and_then(|a| a.strip_suffix('"'))
            .filter(|f| !f.is_empty() && !f.contains('"'))
            .ok_or_else(unknown)?;
        let bytes = std::fs::read(ctx.base_dir.join(file)).map_err(|e| KeyError::Checksum {
            template: template.into(),
            file: file.into(),
            reason: if e.kind() == std::io::ErrorKind::NotFound {
                "no such file".into()
            } else {
                e.to_string()
            },
        })?;
        return Ok(checksum_of(&bytes));
    }
    Err(unknown())
}
