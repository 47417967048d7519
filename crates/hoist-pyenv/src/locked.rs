//! One package pinned by a lock file, as a line of pip's requirements format; shared by the
//! readers of `pdm.lock` and `Pipfile.lock`.

use std::collections::BTreeSet;

/// A locked package: `name[extras]==version ; marker --hash=...`.
#[derive(Debug, Default)]
pub(crate) struct Locked {
    pub name: String,
    pub version: String,
    pub extras: BTreeSet<String>,
    pub marker: Option<String>,
    pub hashes: BTreeSet<String>,
}

impl Locked {
    /// The requirement line, its hashes on continuation lines, ending in a newline.
    pub(crate) fn line(&self) -> String {
        let mut line = self.name.clone();
        if !self.extras.is_empty() {
            let extras: Vec<&str> = self.extras.iter().map(String::as_str).collect();
            line.push_str(&format!("[{}]", extras.join(",")));
        }
        line.push_str("==");
        line.push_str(&self.version);
        if let Some(marker) = &self.marker {
            line.push_str(" ; ");
            line.push_str(marker);
        }
        for hash in &self.hashes {
            line.push_str(" \\\n    --hash=");
            line.push_str(hash);
        }
        line.push('\n');
        line
    }
}
