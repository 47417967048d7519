//! Masking secret values out of everything the pipeline writes or shows.
//!
//! The engine masks at its edges, not field by field: every event goes through
//! [`SecretMasker::mask_value`] on its way to the front end, the run's record through the same
//! function before it is written or returned, and the files it copies (test reports) through
//! [`SecretMasker::mask`]. A field added later is masked without anyone remembering to.

use serde::de::DeserializeOwned;
use serde::Serialize;

/// Replaces secret values with `****`.
///
/// Values shorter than 4 characters are not masked (they would mask ordinary words); a multi-line
/// secret is masked line by line, since output reaches us one line at a time. A value is also
/// masked in its XML-escaped form (`&` as `&amp;` ...), as it appears in a copied JUnit report.
#[derive(Debug, Clone, Default)]
pub struct SecretMasker {
    needles: Vec<String>,
}

/// What a masked value is replaced with.
pub const MASK: &str = "****";

/// A value that could not be checked for secrets: it does not survive a round trip through
/// JSON (a path that is not UTF-8), or masking broke its own format (a secret equal to one of
/// its words, such as `passed`).
#[derive(Debug, thiserror::Error)]
#[error("cannot check {what} for secrets: {source}")]
pub struct MaskError {
    /// What was being masked.
    pub what: &'static str,
    /// Why it could not be.
    pub source: serde_json::Error,
}

impl SecretMasker {
    /// A masker for these secret values.
    pub fn new<I, S>(values: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut needles: Vec<String> = Vec::new();
        for value in values {
            let value = value.as_ref();
            for piece in std::iter::once(value).chain(value.lines()) {
                let piece = piece.trim_end_matches('\r');
                if piece.chars().count() < 4 {
                    continue;
                }
                for form in std::iter::once(piece.to_string()).chain(xml_escaped(piece)) {
                    if !needles.contains(&form) {
                        needles.push(form);
                    }
                }
            }
        }
        // Longest first, so that a value containing another is masked whole.
        needles.sort_by_key(|n| std::cmp::Reverse(n.len()));
        Self { needles }
    }

    /// `text` with every secret value replaced.
    pub fn mask(&self, text: &str) -> String {
        let mut out = text.to_string();
        for needle in &self.needles {
            if out.contains(needle.as_str()) {
                out = out.replace(needle.as_str(), MASK);
            }
        }
        out
    }

    /// Whether `text` holds a secret value.
    pub fn reveals(&self, text: &str) -> bool {
        self.needles.iter().any(|n| text.contains(n.as_str()))
    }

    /// `value` with every string in it masked — every field, however deep, present or future.
    pub fn mask_value<T>(&self, value: T, what: &'static str) -> Result<T, MaskError>
    where
        T: Serialize + DeserializeOwned,
    {
        if self.is_empty() {
            return Ok(value);
        }
        let err = |source| MaskError { what, source };
        let mut json = serde_json::to_value(&value).map_err(err)?;
        if !self.mask_json(&mut json) {
            // Nothing to hide (the common case, e.g. an ordinary line of output).
            return Ok(value);
        }
        serde_json::from_value(json).map_err(err)
    }

    /// Masks the strings in `json`; whether any changed.
    fn mask_json(&self, json: &mut serde_json::Value) -> bool {
        use serde_json::Value;
        match json {
            Value::String(s) => {
                let revealed = self.reveals(s);
                if revealed {
                    *s = self.mask(s);
                }
                revealed
            }
            Value::Array(items) => {
                let mut changed = false;
                for item in items {
                    changed |= self.mask_json(item);
                }
                changed
            }
            // Keys are the types' field names, never data.
            Value::Object(map) => {
                let mut changed = false;
                for item in map.values_mut() {
                    changed |= self.mask_json(item);
                }
                changed
            }
            Value::Null | Value::Bool(_) | Value::Number(_) => false,
        }
    }

    /// Whether there is anything to mask.
    pub fn is_empty(&self) -> bool {
        self.needles.is_empty()
    }
}

/// The forms `text` may take in XML: writers always escape `&` and `<` (most `>` too) and
/// escape quotes in attributes only, some of them both kinds.
fn xml_escaped(text: &str) -> [String; 3] {
    let text = text
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;");
    let quot = text.replace('"', "&quot;");
    let both = quot.replace('\'', "&apos;");
    [text, quot, both]
}
