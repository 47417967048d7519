//! Invariant 7: one deploy at a time per app. The lock is a directory made atomically by
//! `rename(2)` of a fully written temporary directory (so a lock never exists without its
//! owner record), released on every exit path, and reclaimable when its holder is dead.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use chrono::Utc;
use hoist_release::{LockOwner, ReleaseId};
use hoist_transport::{Transport, TransportError};

use crate::event::{Event, EventSink, Step};
use crate::{DeployError, FailureKind, Layout};

/// Who holds the lock, if anyone.
#[derive(Debug, Clone)]
pub enum LockStatus {
    Free,
    Held(LockOwner),
    /// Held by a process on this host that no longer runs (killed): safe to reclaim.
    Stale(LockOwner),
}

/// A held lock; [`HeldLock::release`] removes it.
#[derive(Debug)]
pub(crate) struct HeldLock {
    path: PathBuf,
}

impl HeldLock {
    pub(crate) fn release(self, t: &dyn Transport) -> Result<(), DeployError> {
        remove_lock_dir(t, &self.path)
    }
}

fn owner_path(lock: &Path) -> PathBuf {
    lock.join("owner.json")
}

/// Reads the lock's owner and decides whether it is stale.
pub fn lock_status(t: &dyn Transport, layout: &Layout) -> Result<LockStatus, DeployError> {
    let lock = layout.lock();
    if !t.kind(&lock)?.exists() {
        return Ok(LockStatus::Free);
    }
    let owner = match t.read_file(&owner_path(&lock))? {
        Some(bytes) => serde_json::from_slice::<LockOwner>(&bytes).ok(),
        None => None,
    };
    let Some(owner) = owner else {
        // Only an old-style or hand-made lock can lack a readable owner; treat it as held.
        return Ok(LockStatus::Held(LockOwner {
            pid: 0,
            host: "?".into(),
            user: "?".into(),
            started: Utc::now(),
            command: "unknown (no readable owner.json)".into(),
            release: None,
            message: None,
        }));
    };
    if owner.pid != 0 && owner.host == crate::hostname() && !process_alive(t, owner.pid)? {
        return Ok(LockStatus::Stale(owner));
    }
    Ok(LockStatus::Held(owner))
}

/// Whether `pid` runs on the host and is a hoist process (not a zombie, not a reused pid).
fn process_alive(t: &dyn Transport, pid: u32) -> Result<bool, TransportError> {
    let Some(stat) = t.read_file(Path::new(&format!("/proc/{pid}/stat")))? else {
        return Ok(false);
    };
    let stat = String::from_utf8_lossy(&stat);
    let zombie = stat
        .rsplit_once(')')
        .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z'));
    if zombie {
        return Ok(false);
    }
    let cmdline = t
        .read_file(Path::new(&format!("/proc/{pid}/cmdline")))?
        .unwrap_or_default();
    Ok(String::from_utf8_lossy(&cmdline).contains("hoist"))
}

pub(crate) struct LockRequest<'a> {
    pub who: &'a str,
    pub command: &'a str,
    pub release: Option<&'a ReleaseId>,
    pub message: Option<&'a str>,
    pub wait: Duration,
    /// `0` marks a lock taken by hand (`hoist lock acquire`), which no process backs.
    pub pid: u32,
}

/// Takes the lock, waiting up to `req.wait`, reclaiming a stale one (with a warning that says
/// whose it was). A live holder past the wait is [`FailureKind::LockHeld`] with its details.
pub(crate) fn acquire(
    t: &dyn Transport,
    layout: &Layout,
    req: &LockRequest<'_>,
    events: EventSink<'_>,
) -> Result<HeldLock, DeployError> {
    let lock = layout.lock();
    t.create_dir_all(&layout.state_dir()).map_err(|e| {
        DeployError::before_switch(e.to_string()).hint(format!(
            "check that {} is writable by this user",
            layout.root.display()
        ))
    })?;
    let (user, _) = req.who.split_once('@').unwrap_or((req.who, ""));
    let owner = LockOwner {
        pid: req.pid,
        host: crate::hostname(),
        user: user.to_string(),
        started: Utc::now(),
        command: req.command.to_string(),
        release: req.release.cloned(),
        message: req.message.map(str::to_string),
    };
    let deadline = Instant::now() + req.wait;
    let mut announced = false;
    loop {
        let tmp = layout
            .state_dir()
            .join(format!("lock.{}.{}.tmp", std::process::id(), nanos()));
        t.create_dir(&tmp)?;
        let json = serde_json::to_vec_pretty(&owner).expect("lock owner serialises");
        if let Err(e) = t.write_file_atomic(&owner_path(&tmp), &json) {
            // A full disk: leave no half-made lock behind.
            let _ = t.remove_all(&tmp);
            return Err(e.into());
        }
        match t.rename(&tmp, &lock) {
            Ok(()) => return Ok(HeldLock { path: lock }),
            Err(TransportError::AlreadyExists { .. }) => {
                t.remove_all(&tmp)?;
            }
            Err(e) => {
                let _ = t.remove_all(&tmp);
                return Err(e.into());
            }
        }
        match lock_status(t, layout)? {
            LockStatus::Free => continue,
            LockStatus::Stale(old) => {
                events(Event::Warning {
                    host: t.host().into(),
                    message: format!(
                        "reclaiming a stale lock: {} (that process is gone)",
                        old.describe(Utc::now())
                    ),
                });
                reclaim(t, layout)?;
                continue;
            }
            LockStatus::Held(holder) => {
                if Instant::now() >= deadline {
                    let mut err = DeployError::new(
                        FailureKind::LockHeld,
                        format!(
                            "{}: another deploy holds the lock: {}",
                            t.host(),
                            holder.describe(Utc::now())
                        ),
                    );
                    err = err.hint("wait for it, or pass --lock-wait 5m to queue behind it");
                    err = err.hint(
                        "if that deploy is dead on another machine: hoist lock release --force",
                    );
                    return Err(err);
                }
                if !announced {
                    announced = true;
                    events(Event::Output {
                        host: t.host().into(),
                        step: Step::Lock,
                        line: format!("waiting for the lock: {}", holder.describe(Utc::now())),
                    });
                }
                std::thread::sleep(Duration::from_millis(200));
            }
        }
    }
}

/// Moves a stale lock aside (atomic) and deletes it; a racing reclaimer simply finds it gone.
fn reclaim(t: &dyn Transport, layout: &Layout) -> Result<(), DeployError> {
    let aside = layout
        .state_dir()
        .join(format!("lock.stale.{}.{}", std::process::id(), nanos()));
    match t.rename(&layout.lock(), &aside) {
        Ok(()) => remove_lock_dir(t, &aside),
        Err(_) => Ok(()),
    }
}

fn remove_lock_dir(t: &dyn Transport, path: &Path) -> Result<(), DeployError> {
    t.remove_all(path).map_err(DeployError::from)
}

fn nanos() -> u32 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos())
}

/// `hoist lock acquire -m "msg"`: a lock no process backs, released by `hoist lock release`.
pub fn acquire_manual_lock(
    t: &dyn Transport,
    layout: &Layout,
    who: &str,
    message: Option<&str>,
    events: EventSink<'_>,
) -> Result<LockOwner, DeployError> {
    let req = LockRequest {
        who,
        command: "hoist lock acquire",
        release: None,
        message,
        wait: Duration::ZERO,
        pid: 0,
    };
    acquire(t, layout, &req, events)?;
    match lock_status(t, layout)? {
        LockStatus::Held(owner) | LockStatus::Stale(owner) => Ok(owner),
        LockStatus::Free => Err(DeployError::internal(
            "the lock vanished right after taking it",
        )),
    }
}

/// `hoist lock release [--force]`. Without `force`, a lock held by a live deploy is refused;
/// a hand-made or stale lock is released. Returns the owner that was removed, if any.
pub fn release_lock(
    t: &dyn Transport,
    layout: &Layout,
    force: bool,
) -> Result<Option<LockOwner>, DeployError> {
    match lock_status(t, layout)? {
        LockStatus::Free => Ok(None),
        LockStatus::Held(owner) if owner.pid != 0 && !force => Err(DeployError::new(
            FailureKind::LockHeld,
            format!(
                "{}: the lock belongs to a running deploy: {}",
                t.host(),
                owner.describe(Utc::now())
            ),
        )
        .hint("if you are sure it is dead: hoist lock release --force")),
        LockStatus::Held(owner) | LockStatus::Stale(owner) => {
            reclaim(t, layout)?;
            Ok(Some(owner))
        }
    }
}
