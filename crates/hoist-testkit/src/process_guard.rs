//! [`ProcessGuard`]: a server a test starts, stopped with everything it started when the guard
//! is dropped — also when the test fails or panics.

use std::path::Path;
use std::process::{Child, Command, ExitStatus};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The environment variable whose value marks every process started under one guard.
pub const GUARD_MARK: &str = "HOIST_TEST_GUARD";

/// How long the processes of a guard get to exit after SIGTERM before they are killed, unless
/// [`ProcessGuard::grace`] says otherwise.
const GRACE: Duration = Duration::from_secs(15);

/// A child process started in a process group of its own and marked in its environment
/// (`HOIST_TEST_GUARD=<unique mark>`), which every process it starts inherits.
///
/// Dropping the guard sends SIGTERM to the group and to every process that carries the mark,
/// waits for them to exit (15 s unless [`ProcessGuard::grace`] says otherwise), then sends
/// SIGKILL to what is left. The mark finds the
/// processes a process group misses: supervisord puts each program in a group of its own, a
/// daemon calls `setsid`, and a server's master that lost its parent is re-parented to init.
pub struct ProcessGuard {
    child: Child,
    what: String,
    mark: String,
    grace: Duration,
}

impl ProcessGuard {
    /// Starts `command` in a new process group, marked; `what` names it in panic messages.
    ///
    /// # Panics
    ///
    /// When the program cannot be started: the message names `what` and `install`, the
    /// package that provides it.
    #[must_use]
    pub fn spawn(command: &mut Command, what: &str, install: &str) -> ProcessGuard {
        ProcessGuard::spawn_with_mark(command, what, install, unique_mark())
    }

    /// [`ProcessGuard::spawn`] with a mark made beforehand by [`unique_mark`] (for a server
    /// whose configuration hands the mark on, as sshd's `SetEnv` does to its sessions).
    pub(crate) fn spawn_with_mark(
        command: &mut Command,
        what: &str,
        install: &str,
        mark: String,
    ) -> ProcessGuard {
        let child =
            std::os::unix::process::CommandExt::process_group(command.env(GUARD_MARK, &mark), 0)
                .spawn()
                .unwrap_or_else(|e| {
                    panic!(
                        "cannot start {what} ({e}): install {install} (scripts/install-deps does)"
                    )
                });
        ProcessGuard {
            child,
            what: what.to_owned(),
            mark,
            grace: GRACE,
        }
    }

    /// Gives the processes `grace` to exit after SIGTERM before they are killed (15 s unless set).
    #[must_use]
    pub fn grace(mut self, grace: Duration) -> ProcessGuard {
        self.grace = grace;
        self
    }

    /// The pid of the process the guard started (the leader of its process group).
    #[must_use]
    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// The value of [`GUARD_MARK`] in the environment of this guard's processes.
    #[must_use]
    pub fn mark(&self) -> &str {
        &self.mark
    }

    /// The exit status of the process the guard started, if it has exited.
    ///
    /// # Panics
    ///
    /// When waiting fails (the process is not this guard's child any more).
    pub fn try_wait(&mut self) -> Option<ExitStatus> {
        self.child
            .try_wait()
            .unwrap_or_else(|e| panic!("wait for {}: {e}", self.what))
    }

    /// The pids of the running processes started under this guard (the first one included).
    #[must_use]
    pub fn processes(&self) -> Vec<u32> {
        marked_processes(&format!("{GUARD_MARK}={}", self.mark))
    }

    /// Stops every process of this guard: SIGTERM, the grace period, then SIGKILL. Returns
    /// the pids that were still running after the grace period (and were killed).
    pub fn stop(&mut self) -> Vec<u32> {
        let group = self.child.id();
        signal("TERM", Some(group), &self.processes());
        let deadline = Instant::now() + self.grace;
        let mut left = self.running(group);
        while !left.is_empty() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
            left = self.running(group);
        }
        if !left.is_empty() {
            signal("KILL", Some(group), &left);
        }
        let _ = self.child.wait();
        // A SIGKILL is delivered asynchronously: wait (bounded) until they are gone, so that
        // "stopped" means stopped when this returns.
        let deadline = Instant::now() + Duration::from_secs(10);
        while !self.processes().is_empty() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        left
    }

    /// The processes still running: the marked ones and the first one until it is reaped.
    fn running(&mut self, group: u32) -> Vec<u32> {
        let _ = self.child.try_wait();
        let mut pids = self.processes();
        if matches!(self.child.try_wait(), Ok(None)) && !pids.contains(&group) {
            pids.push(group);
        }
        pids
    }
}

impl Drop for ProcessGuard {
    fn drop(&mut self) {
        let left = self.stop();
        if !left.is_empty() && !std::thread::panicking() {
            eprintln!(
                "hoist-testkit: {} left {} process(es) running {:?} after SIGTERM: killed {left:?}",
                self.what,
                left.len(),
                self.grace
            );
        }
    }
}

/// A fresh mark: give a command `GUARD_MARK=<mark>` in its environment, and [`stop_marked`]
/// stops it and everything it started, however they left their parent or process group.
#[must_use]
pub fn new_mark() -> String {
    unique_mark()
}

/// Stops every running process carrying `GUARD_MARK=<mark>`: SIGTERM, up to `grace` for them to
/// exit, then SIGKILL. Returns the pids that were still running after `grace` (and were killed).
pub fn stop_marked(mark: &str, grace: Duration) -> Vec<u32> {
    let entry = format!("{GUARD_MARK}={mark}");
    signal("TERM", None, &marked_processes(&entry));
    let deadline = Instant::now() + grace;
    let mut left = marked_processes(&entry);
    while !left.is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
        left = marked_processes(&entry);
    }
    signal("KILL", None, &left);
    // A SIGKILL is delivered asynchronously: wait (bounded) until they are gone, so that
    // "stopped" means stopped when this returns.
    let deadline = Instant::now() + Duration::from_secs(10);
    while !marked_processes(&entry).is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    left
}

/// The pids of the running processes whose environment holds `entry` (`NAME=value`), read from
/// `/proc/<pid>/environ`; zombies are not running.
#[must_use]
pub fn marked_processes(entry: &str) -> Vec<u32> {
    let mut pids = Vec::new();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return pids;
    };
    for proc_entry in dir.flatten() {
        let Some(pid) = proc_entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        if pid == std::process::id() {
            continue;
        }
        let Ok(environ) = std::fs::read(proc_entry.path().join("environ")) else {
            continue;
        };
        let marked = environ
            .split(|b| *b == 0)
            .any(|var| var == entry.as_bytes());
        if marked && !is_zombie(&proc_entry.path()) {
            pids.push(pid);
        }
    }
    pids
}

fn is_zombie(proc_dir: &Path) -> bool {
    std::fs::read_to_string(proc_dir.join("stat")).map_or(true, |stat| {
        // The state follows the command name, which is in parentheses and may hold spaces.
        stat.rsplit_once(") ")
            .is_none_or(|(_, rest)| rest.starts_with('Z') || rest.starts_with('X'))
    })
}

/// `kill -<sig>` to the process group `group` and to `pids`; errors (already gone) are ignored.
fn signal(sig: &str, group: Option<u32>, pids: &[u32]) {
    let mut targets: Vec<String> = group.map(|g| format!("-{g}")).into_iter().collect();
    targets.extend(pids.iter().map(u32::to_string));
    if targets.is_empty() {
        return;
    }
    let _ = Command::new("kill")
        .arg(format!("-{sig}"))
        .arg("--")
        .args(&targets)
        .stderr(std::process::Stdio::null())
        .status();
}

pub(crate) fn unique_mark() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    format!(
        "{}-{}-{nanos}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Waits (bounded) until `guard` has `n` running processes; returns them.
    fn wait_for(guard: &ProcessGuard, n: usize) -> Vec<u32> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let pids = guard.processes();
            if pids.len() >= n {
                return pids;
            }
            assert!(
                Instant::now() < deadline,
                "only {pids:?} of {n} processes started"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    #[test]
    fn dropping_the_guard_stops_a_process_that_left_the_group_and_one_that_ignores_term() {
        // sh, a `sleep` in a session of its own (as supervisord's programs and daemons leave
        // the group), and a shell that ignores SIGTERM running a `sleep`.
        let guard = ProcessGuard::spawn(
            Command::new("sh").args([
                "-c",
                "setsid sleep 300 & sh -c 'trap \"\" TERM; sleep 300' & wait",
            ]),
            "a shell",
            "dash",
        )
        .grace(Duration::from_millis(500));
        let pids = wait_for(&guard, 4);
        let mark = format!("{GUARD_MARK}={}", guard.mark());
        drop(guard);
        assert_eq!(marked_processes(&mark), Vec::<u32>::new(), "of {pids:?}");
        for pid in pids {
            assert!(
                !Path::new(&format!("/proc/{pid}")).exists()
                    || is_zombie(Path::new(&format!("/proc/{pid}")))
            );
        }
    }
}
