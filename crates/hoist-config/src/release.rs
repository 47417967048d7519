//! `[release]`: where releases live on the hosts and how many are kept.

use std::path::{Component, Path, PathBuf};
use std::time::Duration;

use toml::Spanned;

use crate::check::{has_parent_component, Checker};
use crate::raw::RawRelease;
use crate::ConfigError;

/// The `[release]` table, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Release {
    /// Absolute directory on each host that holds releases, shared files and `current`; never `/`.
    pub root: PathBuf,
    /// How many good releases pruning keeps; at least 2.
    pub keep_releases: usize,
    /// Paths kept in `<root>/shared` and linked into each release.
    pub shared: Vec<SharedPath>,
    /// Folder name under `root` that holds the releases (`releases`; `builds` for an adopted seed).
    pub releases_dir: String,
    /// Name of the symlink under `root` that points at the live release.
    pub current_link: String,
    /// How long a deploy waits for another deploy's lock by default.
    pub lock_wait: Duration,
}

/// A path kept across releases in `<root>/shared` and linked into each release.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SharedPath {
    /// Relative to the release (and to `<root>/shared`), without a trailing `/`.
    pub path: PathBuf,
    /// True when written with a trailing `/`: a directory, else a file.
    pub is_dir: bool,
}

/// Names under `root` that hoist itself uses, so neither folder name may take them.
const RESERVED_UNDER_ROOT: &[&str] = &["shared", "envs", "wheels", ".hoist"];

/// Names inside a release that hoist writes itself, so a shared path must not replace them.
const RESERVED_IN_RELEASE: &[&str] = &[".venv", "RELEASE.json", ".hoist-manifest"];

pub(crate) fn validate(check: &Checker<'_>, raw: &RawRelease) -> Result<Release, ConfigError> {
    let root = root(check, &raw.root)?;

    let keep_releases = match &raw.keep_releases {
        None => 5,
        Some(keep) => {
            let n = *keep.get_ref();
            if n < 2 {
                return Err(check
                    .error(
                        keep.span(),
                        format!(
                            "keep_releases must be at least 2: with {n}, hoist would have to delete the release it rolls back to"
                        ),
                    )
                    .with_hint("keep_releases counts `current` too; 2 keeps one rollback target"));
            }
            usize::try_from(n)
                .map_err(|_| check.error(keep.span(), format!("keep_releases {n} is too large")))?
        }
    };

    let shared = shared(check, raw.shared.as_deref().unwrap_or_default())?;

    let releases_dir = folder_name(check, raw.releases_dir.as_ref(), "releases_dir", "releases")?;
    let current_link = folder_name(check, raw.current_link.as_ref(), "current_link", "current")?;
    if releases_dir == current_link {
        let span = raw
            .current_link
            .as_ref()
            .or(raw.releases_dir.as_ref())
            .map_or(raw.root.span(), Spanned::span);
        return Err(check.error(
            span,
            format!("releases_dir and current_link are both {releases_dir:?}; they must differ"),
        ));
    }

    let lock_wait = check.duration(raw.lock_wait.as_ref(), "lock_wait", Duration::ZERO)?;

    Ok(Release {
        root,
        keep_releases,
        shared,
        releases_dir,
        current_link,
        lock_wait,
    })
}

fn root(check: &Checker<'_>, raw: &Spanned<String>) -> Result<PathBuf, ConfigError> {
    match check_root(raw.get_ref()) {
        Ok(root) => Ok(root),
        Err((message, hint)) => Err(check.error(raw.span(), message).with_hint(hint)),
    }
}

/// The root as a clean absolute path, or what is wrong with it and how to fix it.
pub(crate) fn check_root(text: &str) -> Result<PathBuf, (String, String)> {
    let example = "e.g. root = \"/srv/example\"";
    if !text.starts_with('/') {
        return Err((
            format!("release root {text:?} must be an absolute path"),
            format!("the root is a directory on each host, not relative to anything; {example}"),
        ));
    }
    if has_parent_component(text) {
        return Err((
            format!("release root {text:?} must not contain \"..\" components"),
            format!("write the directory it means without \"..\"; {example}"),
        ));
    }
    // Components drop `.`, repeated and trailing slashes: "/srv/app/" and "/srv/./app" are "/srv/app".
    let root: PathBuf = Path::new(text).components().collect();
    if root.components().all(|c| c == Component::RootDir) {
        return Err((
            format!(
                "release root {text:?} is the file system root; hoist needs a directory of its own"
            ),
            format!("hoist creates and prunes folders under the root; {example}"),
        ));
    }
    Ok(root)
}

fn shared(check: &Checker<'_>, raw: &[Spanned<String>]) -> Result<Vec<SharedPath>, ConfigError> {
    let mut shared: Vec<SharedPath> = Vec::new();
    for entry in raw {
        let text = entry.get_ref();
        let problem = if text.chars().any(char::is_control) {
            Some("must not contain control characters (NUL, newline, tab...)")
        } else if text.starts_with('/') {
            Some("must be relative to the release, not absolute")
        } else if has_parent_component(text) {
            Some("must not contain \"..\" components")
        } else if text.trim_matches('/').is_empty() || text == "." || text == "./" {
            Some("must name a file or folder inside the release")
        } else {
            None
        };
        if let Some(problem) = problem {
            return Err(check
                .error(entry.span(), format!("shared path {text:?} {problem}"))
                .with_hint("e.g. shared = [\"instance/settings.py\", \"logs/\"]; a trailing \"/\" marks a folder"));
        }
        let is_dir = text.ends_with('/');
        // Normalised before any comparison, so that "./.venv/" is ".venv" and "./logs/" is "logs".
        let path: PathBuf = Path::new(text)
            .components()
            .filter(|c| !matches!(c, Component::CurDir))
            .collect();
        if path.as_os_str().is_empty() {
            return Err(check
                .error(
                    entry.span(),
                    format!("shared path {text:?} must name a file or folder inside the release"),
                )
                .with_hint("e.g. shared = [\"instance/settings.py\", \"logs/\"]"));
        }
        if let Some(reserved) = RESERVED_IN_RELEASE
            .iter()
            .find(|reserved| path.starts_with(reserved))
        {
            return Err(check.error(
                entry.span(),
                format!("shared path {text:?} would replace the release's own {reserved}"),
            ));
        }
        if shared.iter().any(|other| other.path == path) {
            return Err(check.error(
                entry.span(),
                format!("shared path {text:?} is listed twice"),
            ));
        }
        // One shared path inside another would be linked through the other's link, into
        // `shared/` itself; the outer one already carries it.
        if let Some(other) = shared
            .iter()
            .find(|other| path.starts_with(&other.path) || other.path.starts_with(&path))
        {
            return Err(check
                .error(
                    entry.span(),
                    format!(
                        "shared path {text:?} overlaps the shared path \"{}\"",
                        other.path.display()
                    ),
                )
                .with_hint("list only the outer folder: everything inside it is shared with it"));
        }
        shared.push(SharedPath { path, is_dir });
    }
    Ok(shared)
}

fn folder_name(
    check: &Checker<'_>,
    raw: Option<&Spanned<String>>,
    key: &str,
    default: &str,
) -> Result<String, ConfigError> {
    let Some(raw) = raw else {
        return Ok(default.to_owned());
    };
    let name = raw.get_ref();
    if name.is_empty() || name == "." || name == ".." || name.contains('/') {
        return Err(check
            .error(
                raw.span(),
                format!("{key} {name:?} must be a single folder name under root"),
            )
            .with_hint(format!("e.g. {key} = \"{default}\"")));
    }
    if RESERVED_UNDER_ROOT.contains(&name.as_str()) {
        return Err(check.error(
            raw.span(),
            format!(
                "{key} {name:?} is taken: hoist uses {} under root",
                RESERVED_UNDER_ROOT.join(", ")
            ),
        ));
    }
    Ok(name.clone())
}
