//! Masking secret values out of everything the pipeline writes or shows.

/// Replaces secret values with `****`.
///
/// Values shorter than 4 characters are not masked (they would mask ordinary words); a multi-line
/// secret is masked line by line, since output reaches us one line at a time.
#[derive(Debug, Clone, Default)]
pub struct SecretMasker {
    needles: Vec<String>,
}

/// What a masked value is replaced with.
pub const MASK: &str = "****";

impl SecretMasker {
    /// A masker for these secret values.
    pub fn new<I, S>(values: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut needles = Vec::new();
        for value in values {
            let value = value.as_ref();
            for piece in std::iter::once(value).chain(value.lines()) {
                let piece = piece.trim_end_matches('\r');
                if piece.chars().count() >= 4 && !needles.iter().any(|n| n == piece) {
                    needles.push(piece.to_string());
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

    /// Whether there is anything to mask.
    pub fn is_empty(&self) -> bool {
        self.needles.is_empty()
    }
}
