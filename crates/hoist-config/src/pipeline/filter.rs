//! Branch filters: which branches a job runs on.
//!
//! A pattern is a literal branch name, or `/regex/`, which must match the *whole* branch name
//! (as the hosted CI does): `/feature-.*/` matches `feature-x` but not `my-feature-x`.

use regex::Regex;

/// One `only` / `ignore` entry.
#[derive(Debug, Clone)]
pub enum BranchPattern {
    /// The branch name, compared exactly.
    Literal(String),
    /// A regular expression anchored at both ends; `source` is what the user wrote between slashes.
    Regex {
        /// The expression as written, without slashes.
        source: String,
        /// The compiled, anchored expression.
        regex: Regex,
    },
}

impl BranchPattern {
    /// Parses `name` or `/regex/`.
    pub fn parse(text: &str) -> Result<Self, regex::Error> {
        if text.len() >= 2 && text.starts_with('/') && text.ends_with('/') {
            let source = &text[1..text.len() - 1];
            let regex = Regex::new(&format!("^(?:{source})$"))?;
            Ok(Self::Regex {
                source: source.to_string(),
                regex,
            })
        } else {
            Ok(Self::Literal(text.to_string()))
        }
    }

    /// Whether `branch` is matched, wholly.
    pub fn matches(&self, branch: &str) -> bool {
        match self {
            Self::Literal(name) => name == branch,
            Self::Regex { regex, .. } => regex.is_match(branch),
        }
    }
}

/// Two patterns are equal when they are written alike.
impl PartialEq for BranchPattern {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Self::Literal(a), Self::Literal(b)) => a == b,
            (Self::Regex { source: a, .. }, Self::Regex { source: b, .. }) => a == b,
            _ => false,
        }
    }
}

impl std::fmt::Display for BranchPattern {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Literal(name) => f.write_str(name),
            Self::Regex { source, .. } => write!(f, "/{source}/"),
        }
    }
}

/// `only` and `ignore` of a job. Empty `only` means every branch.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BranchFilter {
    /// The job runs only on branches matching one of these (when not empty).
    pub only: Vec<BranchPattern>,
    /// The job never runs on branches matching one of these.
    pub ignore: Vec<BranchPattern>,
}

impl BranchFilter {
    /// Whether a job with this filter runs on `branch`.
    pub fn allows(&self, branch: &str) -> bool {
        let listed = self.only.is_empty() || self.only.iter().any(|p| p.matches(branch));
        listed && !self.ignore.iter().any(|p| p.matches(branch))
    }

    /// Why `branch` is filtered out, for the run's record; `None` when it is allowed.
    pub fn refusal(&self, branch: &str) -> Option<String> {
        if let Some(p) = self.ignore.iter().find(|p| p.matches(branch)) {
            return Some(format!("branch {branch:?} matches ignore {p}"));
        }
        if !self.only.is_empty() && !self.only.iter().any(|p| p.matches(branch)) {
            let list: Vec<String> = self.only.iter().map(ToString::to_string).collect();
            return Some(format!(
                "branch {branch:?} is not in only [{}]",
                list.join(", ")
            ));
        }
        None
    }
}
