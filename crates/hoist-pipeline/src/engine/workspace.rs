//! A job's workspace: `<ci_dir>/work/<job>`, emptied for each run and held exclusively (a lock
//! file with the owner's pid) for the job's duration.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

/// A job's workspace, held until dropped.
pub(crate) struct Workspace {
    /// The directory the job's steps run in.
    pub dir: PathBuf,
    lock: PathBuf,
}

impl Drop for Workspace {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.lock);
    }
}

impl Workspace {
    /// Takes `<ci_dir>/work/<job>` for this run, empty. The path is stable so that cached
    /// virtualenvs (which hold absolute paths) work when restored. A lock left by a process
    /// that is gone is reclaimed; one held by a live process is an error naming it.
    pub fn take(ci_dir: &Path, job: &str) -> Result<Self, String> {
        let work = ci_dir.join("work");
        fs::create_dir_all(&work).map_err(|e| format!("cannot create {}: {e}", work.display()))?;
        let dir = work.join(job);
        let lock = work.join(format!("{job}.lock"));
        for _ in 0..2 {
            match fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&lock)
            {
                Ok(mut file) => {
                    let _ = write!(file, "{}", std::process::id());
                    // Held from here: dropping the value on an error below frees the lock.
                    let workspace = Self { dir, lock };
                    workspace.empty()?;
                    return Ok(workspace);
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    let owner = fs::read_to_string(&lock).unwrap_or_default();
                    let alive = owner
                        .trim()
                        .parse::<u32>()
                        .is_ok_and(|pid| Path::new(&format!("/proc/{pid}")).exists());
                    if alive {
                        return Err(format!("the workspace {} is in use by another run (pid {}); wait for it, or use another HOIST_CI_DIR", dir.display(), owner.trim()));
                    }
                    // Left by a run that died: reclaim it.
                    let _ = fs::remove_file(&lock);
                }
                Err(e) => return Err(format!("cannot lock {}: {e}", lock.display())),
            }
        }
        Err(format!("cannot lock {}", lock.display()))
    }

    fn empty(&self) -> Result<(), String> {
        if self.dir.exists() {
            fs::remove_dir_all(&self.dir)
                .map_err(|e| format!("cannot empty the workspace {}: {e}", self.dir.display()))?;
        }
        fs::create_dir_all(&self.dir)
            .map_err(|e| format!("cannot create the workspace {}: {e}", self.dir.display()))
    }
}
