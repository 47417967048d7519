//! Processes a killed server left behind. Every process the server starts — steps, services,
//! whatever they start — inherits `HOIST_SERVER_OWNER=<server pid>@<data dir>` (set in the
//! server's own environment at start). A server starting on the same data dir stops every
//! process whose owner is not alive any more, however it left its parent or process group.
//! The app servers a deploy step starts on this machine are not the run's: hoist's local
//! transport starts what a host runs (restart commands, hooks) without the mark, so a server
//! restart leaves the deployed app serving.

use std::path::Path;

/// The environment variable that marks the server's descendants.
pub const OWNER_VAR: &str = "HOIST_SERVER_OWNER";

/// The mark of this process's descendants.
#[must_use]
pub fn owner_mark(data_dir: &Path) -> String {
    format!("{}@{}", std::process::id(), data_dir.display())
}

/// The pids of live processes marked by a dead server of `data_dir`.
#[must_use]
pub fn orphans(data_dir: &Path) -> Vec<i32> {
    let suffix = format!("@{}", data_dir.display());
    let prefix = format!("{OWNER_VAR}=");
    let mut found = Vec::new();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return found;
    };
    for entry in entries.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<i32>().ok())
        else {
            continue;
        };
        if u32::try_from(pid).ok() == Some(std::process::id()) {
            continue;
        }
        let Ok(environ) = std::fs::read(entry.path().join("environ")) else {
            continue;
        };
        let owner = environ
            .split(|b| *b == 0)
            .filter_map(|var| std::str::from_utf8(var).ok())
            .find_map(|var| var.strip_prefix(&prefix).map(str::to_string));
        let Some(owner) = owner else { continue };
        let Some(server) = owner.strip_suffix(&suffix) else {
            continue;
        };
        let alive = Path::new(&format!("/proc/{server}")).exists();
        let zombie = std::fs::read_to_string(entry.path().join("stat"))
            .ok()
            .and_then(|s| {
                s.rsplit_once(')')
                    .map(|(_, rest)| rest.trim_start().starts_with('Z'))
            })
            .unwrap_or(false);
        if !alive && !zombie && server != std::process::id().to_string() {
            found.push(pid);
        }
    }
    found
}

/// Kills (SIGKILL) every process a dead server of `data_dir` left; returns how many.
#[must_use]
pub fn reap(data_dir: &Path) -> usize {
    let mut killed = 0;
    // A few passes: a process may start another while its siblings are being killed.
    for _ in 0..5 {
        let pids = orphans(data_dir);
        if pids.is_empty() {
            break;
        }
        for pid in pids {
            if kill(pid) {
                killed += 1;
            }
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    killed
}

fn kill(pid: i32) -> bool {
    rustix::process::Pid::from_raw(pid).is_some_and(|pid| {
        rustix::process::kill_process(pid, rustix::process::Signal::KILL).is_ok()
    })
}
