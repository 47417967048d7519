//! Ctrl-C for the commands that may be stopped. Every local command runs in a process group
//! of its own (so that hoist can kill what it started), which the terminal's SIGINT does not
//! reach; a command marked [`Cmd::interruptible`](crate::Cmd::interruptible) — a pre-switch
//! hook, which can be stopped without leaving a host between releases — is registered here
//! while it runs, and [`interrupt_commands`] sends its group SIGTERM. Restarts and health
//! commands are never marked: once `current` has moved they must finish.

use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

static REQUESTED: AtomicBool = AtomicBool::new(false);
static GROUPS: Mutex<Vec<u32>> = Mutex::new(Vec::new());

/// Stops every interruptible command running now, and each one started from now on.
pub fn interrupt_commands() {
    REQUESTED.store(true, Ordering::SeqCst);
    let groups = GROUPS
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    for &group in groups.iter() {
        terminate_group(group);
    }
}

/// Whether [`interrupt_commands`] was called.
pub fn commands_interrupted() -> bool {
    REQUESTED.load(Ordering::SeqCst)
}

/// Registered while an interruptible command's process group runs.
pub(crate) struct Registered(u32);

pub(crate) fn register(group: u32) -> Registered {
    GROUPS
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .push(group);
    // Asked before it started (or while it was being registered): stop it now.
    if commands_interrupted() {
        terminate_group(group);
    }
    Registered(group)
}

impl Drop for Registered {
    fn drop(&mut self) {
        let mut groups = GROUPS
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        groups.retain(|&g| g != self.0);
    }
}

fn terminate_group(group: u32) {
    // `kill(1)` rather than the syscall: this crate has no unsafe code.
    let _ = Command::new("kill")
        .args(["-s", "TERM", "--", &format!("-{group}")])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}
