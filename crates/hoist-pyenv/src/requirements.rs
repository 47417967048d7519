//! Which requirements files decide an environment: the roots and their `-r`/`-c` includes.

use std::collections::HashSet;
use std::io::ErrorKind;
use std::path::{Component, Path, PathBuf};

use crate::error::{IncludedFrom, PyenvError};

/// How one requirements file pulls in another.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum IncludeKind {
    /// `-r` / `--requirement`: its requirements are installed.
    Requirement,
    /// `-c` / `--constraint`: it only pins versions.
    Constraint,
}

/// One `-r`/`-c` line of a requirements file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Include {
    pub kind: IncludeKind,
    /// The file name as written (quotes removed).
    pub target: String,
    /// 1-based line where the logical line starts.
    pub line: usize,
}

/// The logical lines of a requirements file with the 1-based line each starts on, comments
/// removed and trimmed. Follows pip's reading of the file: lines ending in `\\` continue on
/// the next one, and `#` starts a comment at the start of a line or after whitespace.
fn logical_lines(text: &str) -> Vec<(usize, String)> {
    let mut lines = Vec::new();
    let mut logical = String::new();
    let mut start = 0;
    for (index, raw) in text.lines().enumerate() {
        if logical.is_empty() {
            start = index + 1;
        }
        match raw.strip_suffix('\\') {
            Some(head) => {
                logical.push_str(head);
                continue;
            }
            None => logical.push_str(raw),
        }
        let line = std::mem::take(&mut logical);
        lines.push((start, strip_comment(&line).trim().to_string()));
    }
    if !logical.is_empty() {
        lines.push((start, strip_comment(&logical).trim().to_string()));
    }
    lines
}

/// The `-r`/`-c` includes written in a requirements file, in order.
pub(crate) fn parse_includes(text: &str) -> Vec<Include> {
    logical_lines(text)
        .into_iter()
        .filter_map(|(line, text)| {
            include_of(&text).map(|(kind, target)| Include { kind, target, line })
        })
        .collect()
}

/// The `-e`/`--editable` lines of a requirements file that name a local directory: (line, the
/// line as written). A VCS editable (`-e git+https://...`) is checked out inside the
/// environment itself, so it does not point into a release.
pub(crate) fn editable_lines(text: &str) -> Vec<(usize, String)> {
    logical_lines(text)
        .into_iter()
        .filter(|(_, text)| {
            let Some(rest) = text
                .strip_prefix("--editable")
                .or_else(|| text.strip_prefix("-e"))
            else {
                return false;
            };
            if !(rest.is_empty() || rest.starts_with([' ', '\t', '=', '.', '/'])) {
                return false;
            }
            let target = rest.trim_start_matches(['=', ' ', '\t']);
            !target.contains("://")
        })
        .collect()
}

fn strip_comment(line: &str) -> &str {
    let bytes = line.as_bytes();
    for (i, &b) in bytes.iter().enumerate() {
        if b == b'#' && (i == 0 || bytes[i - 1].is_ascii_whitespace()) {
            return &line[..i];
        }
    }
    line
}

fn include_of(line: &str) -> Option<(IncludeKind, String)> {
    const FORMS: [(&str, IncludeKind); 4] = [
        ("--requirement", IncludeKind::Requirement),
        ("--constraint", IncludeKind::Constraint),
        ("-r", IncludeKind::Requirement),
        ("-c", IncludeKind::Constraint),
    ];
    for (option, kind) in FORMS {
        let Some(rest) = line.strip_prefix(option) else {
            continue;
        };
        let long = option.starts_with("--");
        // `--requirementsfoo` is not our option; `-rfoo` is (optparse allows it).
        if long
            && !(rest.is_empty() || rest.starts_with('=') || rest.starts_with(char::is_whitespace))
        {
            continue;
        }
        let value = rest.strip_prefix('=').unwrap_or(rest).trim();
        return Some((kind, unquote(value).to_string()));
    }
    None
}

fn unquote(value: &str) -> &str {
    for q in ['"', '\''] {
        if let Some(inner) = value.strip_prefix(q).and_then(|v| v.strip_suffix(q)) {
            return inner;
        }
    }
    value
}

/// `path` made relative to `source_dir` with `.` and `..` resolved lexically; `None` when it
/// leaves `source_dir`.
fn relative_inside(source_dir: &Path, path: &Path) -> Option<PathBuf> {
    let rel = if path.is_absolute() {
        path.strip_prefix(source_dir).ok()?
    } else {
        path
    };
    let mut out = PathBuf::new();
    for component in rel.components() {
        match component {
            Component::Normal(part) => out.push(part),
            Component::CurDir => {}
            Component::ParentDir => {
                if !out.pop() {
                    return None;
                }
            }
            Component::RootDir | Component::Prefix(_) => return None,
        }
    }
    (!out.as_os_str().is_empty()).then_some(out)
}

/// Every requirements file that decides the environment: the roots plus every
/// `-r`/`--requirement` and `-c`/`--constraint` include, recursively (relative to the including
/// file), each once, in a stable order (depth first, in the order written). Paths are returned
/// relative to `source_dir`; `roots` may be relative to it or absolute inside it. A missing
/// file is an error naming it and the `file:line` that included it.
pub fn requirement_files(source_dir: &Path, roots: &[PathBuf]) -> Result<Vec<PathBuf>, PyenvError> {
    let mut walk = Walk {
        source_dir,
        seen: HashSet::new(),
        files: Vec::new(),
    };
    for root in roots {
        let rel = relative_inside(source_dir, root).ok_or_else(|| {
            PyenvError::RequirementsOutsideProject {
                path: root.clone(),
                source_dir: source_dir.to_path_buf(),
            }
        })?;
        walk.visit(rel, None)?;
    }
    Ok(walk.files)
}

struct Walk<'a> {
    source_dir: &'a Path,
    seen: HashSet<PathBuf>,
    files: Vec<PathBuf>,
}

impl Walk<'_> {
    fn visit(&mut self, rel: PathBuf, from: Option<IncludedFrom>) -> Result<(), PyenvError> {
        if !self.seen.insert(rel.clone()) {
            return Ok(());
        }
        let path = self.source_dir.join(&rel);
        let bytes = match std::fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == ErrorKind::NotFound => {
                return Err(PyenvError::RequirementsNotFound {
                    path,
                    included_from: from,
                })
            }
            Err(source) => return Err(PyenvError::RequirementsUnreadable { path, source }),
        };
        self.files.push(rel.clone());
        let text = String::from_utf8_lossy(&bytes);
        if let Some((line, requirement)) = editable_lines(&text).into_iter().next() {
            return Err(PyenvError::EditableRequirement {
                at: IncludedFrom {
                    file: rel.clone(),
                    line,
                },
                requirement,
            });
        }
        for include in parse_includes(&text) {
            let at = IncludedFrom {
                file: rel.clone(),
                line: include.line,
            };
            let target = resolve_include(self.source_dir, &rel, &include, &at)?;
            self.visit(target, Some(at))?;
        }
        Ok(())
    }
}

/// Where an include points, relative to the source directory.
pub(crate) fn resolve_include(
    source_dir: &Path,
    including: &Path,
    include: &Include,
    at: &IncludedFrom,
) -> Result<PathBuf, PyenvError> {
    let bad = |problem: String, hint| PyenvError::BadInclude {
        at: at.clone(),
        problem,
        hint,
    };
    if include.target.is_empty() {
        return Err(bad(
            "`-r`/`-c` without a file name".into(),
            "name the file to include",
        ));
    }
    if include.target.contains("://") {
        return Err(bad(
            format!("include of a URL ({})", include.target),
            "hoist hashes every file that decides the environment, so copy it into the project",
        ));
    }
    let written = Path::new(&include.target);
    let joined = if written.is_absolute() {
        written.to_path_buf()
    } else {
        including.parent().unwrap_or(Path::new("")).join(written)
    };
    relative_inside(source_dir, &joined).ok_or_else(|| {
        bad(
            format!("include of {} leaves the project", include.target),
            "keep every requirements file inside the project so it is uploaded with the release",
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn targets(text: &str) -> Vec<(IncludeKind, String, usize)> {
        parse_includes(text)
            .into_iter()
            .map(|i| (i.kind, i.target, i.line))
            .collect()
    }

    #[test]
    fn every_spelling_of_an_include_is_found() {
        use IncludeKind::{Constraint as C, Requirement as R};
        let text = "flask==3.0\n-r a.txt\n-rb.txt\n--requirement c.txt\n--requirement=d.txt\n\
                    -c e.txt\n--constraint=\"f g.txt\"\n  -r h.txt  # why\n# -r commented.txt\n\
                    --requirements-typo x\nfoo#-r not-a-comment\n";
        assert_eq!(
            targets(text),
            vec![
                (R, "a.txt".into(), 2),
                (R, "b.txt".into(), 3),
                (R, "c.txt".into(), 4),
                (R, "d.txt".into(), 5),
                (C, "e.txt".into(), 6),
                (C, "f g.txt".into(), 7),
                (R, "h.txt".into(), 8),
            ]
        );
    }

    #[test]
    fn editable_lines_are_found_in_every_spelling() {
        let text = "six\n-e .\n--editable=./pkg\n-e./other\n  # -e commented\n-extra-not\n\
                    -e git+https://example.org/lib.git#egg=lib\n-e /abs/path\n";
        let lines: Vec<usize> = editable_lines(text).into_iter().map(|(l, _)| l).collect();
        assert_eq!(lines, [2, 3, 4, 8]);
    }

    #[test]
    fn continued_lines_report_their_first_line() {
        let text = "six\n-r \\\n  base.txt\n-c last.txt";
        assert_eq!(
            targets(text),
            vec![
                (IncludeKind::Requirement, "base.txt".into(), 2),
                (IncludeKind::Constraint, "last.txt".into(), 4),
            ]
        );
    }

    #[test]
    fn paths_are_resolved_lexically_inside_the_source() {
        let src = Path::new("/src");
        assert_eq!(
            relative_inside(src, Path::new("req/../base.txt")),
            Some(PathBuf::from("base.txt"))
        );
        assert_eq!(
            relative_inside(src, Path::new("/src/./req/a.txt")),
            Some(PathBuf::from("req/a.txt"))
        );
        assert_eq!(relative_inside(src, Path::new("../etc/passwd")), None);
        assert_eq!(relative_inside(src, Path::new("/etc/passwd")), None);
    }
}
