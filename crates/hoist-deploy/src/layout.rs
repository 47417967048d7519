use std::path::{Path, PathBuf};

use hoist_config::Release;
use hoist_release::ReleaseId;

/// Where everything lives under a deploy root (DESIGN.md, "the release layout"). Every path
/// hoist touches on a host comes from here, so all of them stay under `root` (invariant 10).
#[derive(Debug, Clone)]
pub struct Layout {
    pub root: PathBuf,
    releases_dir: String,
    current_link: String,
}

impl Layout {
    pub fn new(release: &Release) -> Self {
        Layout::with_root(release, release.root.clone())
    }

    /// The layout of `release` under another root (a host's own `root`).
    pub fn with_root(release: &Release, root: PathBuf) -> Self {
        Layout {
            root,
            releases_dir: release.releases_dir.clone(),
            current_link: release.current_link.clone(),
        }
    }

    pub fn releases(&self) -> PathBuf {
        self.root.join(&self.releases_dir)
    }

    /// `<root>/releases/<id>`; a [`ReleaseId`] cannot contain `/` or `..`, so this stays inside.
    pub fn release(&self, id: &ReleaseId) -> PathBuf {
        self.releases().join(id.as_str())
    }

    /// What `current` should point to for `id`: relative, so the root can be moved.
    pub fn current_target(&self, id: &ReleaseId) -> PathBuf {
        Path::new(&self.releases_dir).join(id.as_str())
    }

    pub fn current(&self) -> PathBuf {
        self.root.join(&self.current_link)
    }

    pub fn shared(&self) -> PathBuf {
        self.root.join("shared")
    }

    /// `shared/env`: the app's `[env]`, written by each deploy (mode 0600).
    pub fn env_file(&self) -> PathBuf {
        self.shared().join("env")
    }

    /// `shared/installer-env`: `[app] installer_env`, for building environments (mode 0600).
    pub fn installer_env_file(&self) -> PathBuf {
        self.shared().join("installer-env")
    }

    pub fn envs(&self) -> PathBuf {
        self.root.join("envs")
    }

    pub fn state_dir(&self) -> PathBuf {
        self.root.join(".hoist")
    }

    pub fn journal(&self) -> PathBuf {
        self.state_dir().join("journal.jsonl")
    }

    pub fn lock(&self) -> PathBuf {
        self.state_dir().join("lock")
    }

    /// What the host's Python and installer said when last asked, with the identity of their
    /// binaries (`hoist_pyenv::probe_python`).
    pub fn probe_cache(&self) -> PathBuf {
        self.state_dir().join("python-probe.json")
    }

    /// Reads which release a `readlink current` value names, if it is one of ours.
    pub fn release_of_link(&self, target: &Path) -> Option<ReleaseId> {
        let name = target.file_name()?.to_str()?;
        let parent = target.parent()?;
        let ours = parent == Path::new(&self.releases_dir) || parent == self.releases();
        if !ours {
            return None;
        }
        ReleaseId::parse(name).ok()
    }
}
