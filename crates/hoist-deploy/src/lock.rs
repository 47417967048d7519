//! Invariant 7: one deploy at a time per app. The lock is a directory made atomically by
//! `rename(2)` of a fully written temporary directory (so a lock never exists without its
//! owner record), released on every exit path, and reclaimable when its holder is dead.
//!
//! Whether the holder is alive is decided by something the host itself can check. While a
//! deploy runs it renews a lease: it touches `lock/heartbeat`, whose modification time is set
//! by the host's clock and compared with the host's clock, so clocks that disagree between the
//! controller and the host do not matter. A lock whose heartbeat is older than its lease is
//! stale. The holder's pid is checked only on a host that is the holder's own machine (same
//! machine id, boot and pid namespace): there, a killed deploy's lock is reclaimed at once.
//!
//! Every lock carries a random owner token (`lock/token`). Releasing, switching and pruning
//! check that the token is still theirs, so a deploy whose lock was taken from it (`hoist lock
//! release --force`, or an expired lease) never removes the next deploy's lock nor acts for it.

use std::path::{Path, PathBuf};
use std::sync::{mpsc, Mutex};
use std::time::{Duration, Instant};

use chrono::Utc;
use hoist_release::{LockOwner, ReleaseId};
use hoist_transport::{Cmd, Transport, TransportError};

use crate::event::{Event, EventSink, Step, Stepper};
use crate::host::Fleet;
use crate::{DeployError, FailureKind, Layout};

/// How long a lock stays held without a heartbeat.
pub(crate) const LEASE: Duration = Duration::from_secs(30);
/// How often a holder renews its lease: several renewals fit in one lease, so a slow or
/// briefly stalled connection does not lose it.
const RENEW_EVERY: Duration = Duration::from_secs(5);

/// Who holds the lock, if anyone.
#[derive(Debug, Clone)]
pub enum LockStatus {
    Free,
    Held(LockOwner),
    /// Its holder is gone (a process on the host that no longer runs, or a lease not renewed
    /// in time): safe to reclaim.
    Stale(LockOwner),
}

/// A held lock; [`HeldLock::release`] removes it if it is still ours.
#[derive(Debug)]
pub(crate) struct HeldLock {
    path: PathBuf,
    token: String,
}

impl HeldLock {
    /// Removes the lock, unless it is no longer ours (then it is left to its new holder).
    pub(crate) fn release(self, transport: &dyn Transport) -> Result<(), DeployError> {
        let out = transport.exec(
            &script(RELEASE, &self.path)
                .arg(&self.token)
                .path_arg(&aside(&self.path, "released")),
        )?;
        match out.status {
            0 => Ok(()),
            NOT_OURS => {
                self.ensure_ours(transport)?;
                Err(DeployError::internal(
                    "the lock was not ours a moment ago and is ours again",
                ))
            }
            _ => Err(DeployError::before_switch(format!(
                "{}: cannot remove the lock {}: {}",
                transport.host(),
                self.path.display(),
                out.tail(3)
            ))),
        }
    }

    /// Fails with a clear message when the lock on this host was taken from us.
    pub(crate) fn ensure_ours(&self, transport: &dyn Transport) -> Result<(), DeployError> {
        let token = transport.read_file(&token_path(&self.path))?;
        if token.as_deref() == Some(self.token.as_bytes()) {
            return Ok(());
        }
        let now = match lock_owner(transport, &self.path)? {
            Some(owner) => format!("it is now {}", owner.describe(Utc::now())),
            None => "nobody holds it now".to_string(),
        };
        Err(DeployError::new(
            FailureKind::LockHeld,
            format!(
                "{}: this deploy lost its lock (released with `hoist lock release --force`, or \
                 reclaimed after its lease expired); {now}",
                transport.host()
            ),
        ))
    }

    /// Touches the heartbeat if the lock is still ours; `false` when it is not.
    fn renew(&self, transport: &dyn Transport) -> Result<bool, TransportError> {
        let out = transport.exec(&script(RENEW, &self.path).arg(&self.token))?;
        Ok(out.success())
    }
}

fn owner_path(lock: &Path) -> PathBuf {
    lock.join("owner.json")
}

fn token_path(lock: &Path) -> PathBuf {
    lock.join("token")
}

/// `$1` the lock, `$2` the token, `$3` a new name beside it: removes the lock if it is still
/// ours (else exit [`NOT_OURS`]). It is renamed away first, then deleted: a deploy waiting for
/// the lock sees it whole or not at all, never an emptied directory that its own rename would
/// replace (and this removal then fail on, or delete).
const RELEASE: &str = r#"[ "$(cat -- "$1/token" 2>/dev/null)" = "$2" ] || exit 3
mv -T -- "$1" "$3" || exit 1
exec rm -rf -- "$3""#;

const NOT_OURS: i32 = 3;

/// `$1` the lock, `$2` the token: renews only a lock that is still ours.
const RENEW: &str = r#"[ "$(cat -- "$1/token" 2>/dev/null)" = "$2" ] || exit 3
touch -c -- "$1/heartbeat""#;

/// `$1` the lock: seconds since the last heartbeat, by the host's clock (a lock from an older
/// version has no heartbeat: the age of its owner record counts).
const HEARTBEAT_AGE: &str = r#"h=$(stat -c %Y -- "$1/heartbeat" 2>/dev/null || stat -c %Y -- "$1/owner.json") || exit 44
echo $(( $(date +%s) - h ))"#;

/// `$1` the state directory, `$2` a new temporary lock, `$3` the lock, `$4` the token, the
/// owner record on stdin: takes the lock in one command on the host. The temporary lock is
/// filled and synced, then renamed onto the lock (`rename(2)` refuses a lock that is there), so
/// the lock appears whole or not at all; a failure leaves no temporary behind. A rename that
/// failed on a lock that is gone when looked at again met a release: it is tried again. Exit
/// [`TAKE_HELD`] when the lock is held, [`TAKE_NO_STATE_DIR`] when the state directory cannot
/// be made. The directories are made under the login's `umask`, the files under 022 (0644);
/// a state directory that is there costs no `mkdir`.
const TAKE: &str = r#"[ -d "$1" ] || mkdir -p -- "$1" || exit 47
mkdir -- "$2" || exit 1
umask 022
if ! { cat > "$2/owner.json" && printf '%s' "$4" > "$2/token" && : > "$2/heartbeat" &&
  sync -- "$2/owner.json" "$2/token" "$2/heartbeat" "$2"; }; then
  rm -rf -- "$2"; exit 1
fi
n=0
until e=$(mv -T -- "$2" "$3" 2>&1); do
  if [ -e "$3" ] || [ -L "$3" ]; then rm -rf -- "$2"; exit 45; fi
  n=$((n + 1))
  if [ "$n" -ge 3 ]; then rm -rf -- "$2"; printf '%s\n' "$e" >&2; exit 1; fi
done"#;

const TAKE_HELD: i32 = 45;
const TAKE_NO_STATE_DIR: i32 = 47;

fn script(text: &str, lock: &Path) -> Cmd {
    Cmd::new("sh")
        .brief()
        .arg("-c")
        .arg(text)
        .arg("hoist")
        .path_arg(lock)
}

fn lock_owner(transport: &dyn Transport, lock: &Path) -> Result<Option<LockOwner>, DeployError> {
    // A lock released and taken again by another deploy while this one reads it fails the read
    // (the file was there, then gone, then there again): read again.
    let mut tries = 1;
    loop {
        match transport.read_file(&owner_path(lock)) {
            Ok(bytes) => return Ok(bytes.and_then(|b| serde_json::from_slice(&b).ok())),
            Err(_) if tries < 3 => tries += 1,
            Err(e) => return Err(e.into()),
        }
    }
}

/// Reads the lock's owner and decides whether it is stale.
pub fn lock_status(transport: &dyn Transport, layout: &Layout) -> Result<LockStatus, DeployError> {
    let lock = layout.lock();
    if !transport.kind(&lock)?.exists() {
        return Ok(LockStatus::Free);
    }
    let Some(owner) = lock_owner(transport, &lock)? else {
        // Only an old-style or hand-made lock can lack a readable owner; treat it as held.
        return Ok(LockStatus::Held(LockOwner {
            pid: 0,
            host: "?".into(),
            user: "?".into(),
            started: Utc::now(),
            command: "unknown (no readable owner.json)".into(),
            release: None,
            message: None,
            machine: None,
            lease_secs: None,
        }));
    };
    if holder_is_gone(transport, &lock, &owner)? {
        return Ok(LockStatus::Stale(owner));
    }
    Ok(LockStatus::Held(owner))
}

/// Why a stale lock is stale: its process is gone (seen on its own machine), or its lease
/// expired (seen from any other).
pub fn stale_reason(t: &dyn Transport, owner: &LockOwner) -> &'static str {
    if owner.machine.is_some() && owner.machine == host_identity(t).ok() {
        "that process is gone"
    } else {
        "its lease expired: no heartbeat from its holder"
    }
}

/// A hand-made lock (pid 0) is never stale. On the holder's own machine its pid decides; any
/// other host can only see whether the lease was renewed in time.
fn holder_is_gone(
    transport: &dyn Transport,
    lock: &Path,
    owner: &LockOwner,
) -> Result<bool, DeployError> {
    if owner.pid == 0 {
        return Ok(false);
    }
    if let Some(machine) = &owner.machine {
        if *machine == host_identity(transport)? {
            return Ok(!process_alive(transport, owner.pid)?);
        }
    }
    let lease = owner.lease_secs.unwrap_or(LEASE.as_secs());
    let out = transport.exec(&script(HEARTBEAT_AGE, lock))?;
    if !out.success() {
        // The lock vanished while we looked: its holder released it.
        return Ok(!transport.kind(lock)?.exists());
    }
    let age: i64 = String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .unwrap_or(0);
    Ok(age > i64::try_from(lease).unwrap_or(i64::MAX))
}

/// The identity of the controller's machine as the lock records it: machine id, boot id and
/// pid namespace, so that a pid is compared only where it names the same process table.
fn controller_identity() -> String {
    identity_of(&hoist_transport::Local::default()).unwrap_or_default()
}

/// The same identity, read on the host through `t`.
fn host_identity(transport: &dyn Transport) -> Result<String, TransportError> {
    identity_of(transport)
}

fn identity_of(transport: &dyn Transport) -> Result<String, TransportError> {
    let read = |path: &str| -> Result<String, TransportError> {
        Ok(transport
            .read_file(Path::new(path))?
            .map(|b| String::from_utf8_lossy(&b).trim().to_string())
            .unwrap_or_default())
    };
    let machine = read("/etc/machine-id")?;
    let boot = read("/proc/sys/kernel/random/boot_id")?;
    let pid_ns = transport
        .read_link(Path::new("/proc/self/ns/pid"))?
        .map(|p| p.display().to_string())
        .unwrap_or_default();
    Ok(format!("{machine}/{boot}/{pid_ns}"))
}

/// Whether `pid` runs on the host and is a hoist process (not a zombie, not a reused pid).
fn process_alive(transport: &dyn Transport, pid: u32) -> Result<bool, TransportError> {
    let Some(stat) = transport.read_file(Path::new(&format!("/proc/{pid}/stat")))? else {
        return Ok(false);
    };
    let stat = String::from_utf8_lossy(&stat);
    let zombie = stat
        .rsplit_once(')')
        .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z'));
    if zombie {
        return Ok(false);
    }
    let cmdline = transport
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
    transport: &dyn Transport,
    layout: &Layout,
    req: &LockRequest<'_>,
    events: EventSink<'_>,
) -> Result<HeldLock, DeployError> {
    let lock = layout.lock();
    let (user, _) = req.who.split_once('@').unwrap_or((req.who, ""));
    let owner = LockOwner {
        pid: req.pid,
        host: crate::hostname(),
        user: user.to_string(),
        started: Utc::now(),
        command: req.command.to_string(),
        release: req.release.cloned(),
        message: req.message.map(str::to_string),
        machine: Some(controller_identity()),
        lease_secs: Some(LEASE.as_secs()),
    };
    let token = new_token();
    let deadline = Instant::now() + req.wait;
    let mut announced = false;
    loop {
        let tmp = layout
            .state_dir()
            .join(format!("lock.{}.{}.tmp", std::process::id(), nanos()));
        let json = serde_json::to_vec_pretty(&owner).expect("lock owner serialises");
        let took = transport.exec(
            &Cmd::new("sh")
                .brief()
                .arg("-c")
                .arg(TAKE)
                .arg("hoist")
                .path_arg(&layout.state_dir())
                .path_arg(&tmp)
                .path_arg(&lock)
                .arg(&token)
                .stdin(json),
        )?;
        match took.status {
            0 => {
                return Ok(HeldLock {
                    path: lock,
                    token: token.clone(),
                })
            }
            TAKE_HELD => {}
            TAKE_NO_STATE_DIR => {
                return Err(DeployError::before_switch(format!(
                    "{}: cannot create {}: {}",
                    transport.host(),
                    layout.state_dir().display(),
                    took.tail(3)
                ))
                .hint(format!(
                    "check that {} is writable by this user",
                    layout.root.display()
                )))
            }
            _ => {
                return Err(DeployError::before_switch(format!(
                    "{}: cannot write the lock {}: {}",
                    transport.host(),
                    lock.display(),
                    took.tail(3)
                )))
            }
        }
        match lock_status(transport, layout)? {
            LockStatus::Free => continue,
            LockStatus::Stale(old) => {
                events(Event::Warning {
                    host: transport.host().into(),
                    message: format!(
                        "reclaiming a stale lock: {} ({})",
                        old.describe(Utc::now()),
                        stale_reason(transport, &old)
                    ),
                });
                reclaim(transport, layout)?;
                continue;
            }
            LockStatus::Held(holder) => {
                if crate::cancel::requested() {
                    return Err(DeployError::before_switch(format!(
                        "{}: interrupted (Ctrl-C) while waiting for the lock: {}",
                        transport.host(),
                        holder.describe(Utc::now())
                    )));
                }
                if Instant::now() >= deadline {
                    let mut err = DeployError::new(
                        FailureKind::LockHeld,
                        if holder.pid == 0 {
                            format!(
                                "{}: the deploy lock is {}",
                                transport.host(),
                                holder.describe(Utc::now())
                            )
                        } else {
                            format!(
                                "{}: another deploy holds the lock: {}",
                                transport.host(),
                                holder.describe(Utc::now())
                            )
                        },
                    );
                    if holder.pid == 0 {
                        err = err.hint(
                            "ask its holder, or once the work it protects is done: hoist lock release",
                        );
                    } else {
                        err = err.hint("wait for it, or pass --lock-wait 5m to queue behind it");
                        err = err.hint(format!(
                            "a deploy that died on another machine loses the lock {}s after its \
                             last heartbeat; to take it at once: hoist lock release --force",
                            holder.lease_secs.unwrap_or(LEASE.as_secs())
                        ));
                    }
                    return Err(err);
                }
                if !announced {
                    announced = true;
                    events(Event::Output {
                        host: transport.host().into(),
                        step: Step::Lock,
                        line: format!("waiting for the lock: {}", holder.describe(Utc::now())),
                    });
                }
                std::thread::sleep(Duration::from_millis(200));
            }
        }
    }
}

/// Runs `work` while a background thread per host renews the lease of `held` over the host's
/// own connection. The renewals stop when `work` returns.
pub(crate) fn while_held<R>(fleet: &Fleet, held: &[HeldLock], work: impl FnOnce() -> R) -> R {
    std::thread::scope(|scope| {
        let mut stops = Vec::new();
        for (host, lock) in fleet.hosts.iter().zip(held) {
            let (stop, stopped) = mpsc::channel::<()>();
            stops.push(stop);
            let transport = host.transport();
            scope.spawn(move || {
                while let Err(mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(RENEW_EVERY) {
                    // A lock that is no longer ours is reported where it matters: before the
                    // switch, the prune and the release.
                    if let Ok(false) = lock.renew(transport) {
                        break;
                    }
                }
            });
        }
        let result = work();
        drop(stops);
        result
    })
}

/// Takes the lock on every host, or none: on any failure the locks taken are released.
pub(crate) fn lock_all(
    fleet: &Fleet,
    who: &str,
    command: &str,
    wait: Duration,
    events: EventSink<'_>,
) -> Result<Vec<HeldLock>, DeployError> {
    let results = fleet.each(|_, host| {
        let step = Stepper {
            host: &host.name,
            events,
        };
        step.start(Step::Lock);
        let acquired = acquire(
            host.transport(),
            &host.layout,
            &LockRequest {
                who,
                command,
                release: None,
                message: None,
                wait,
                pid: std::process::id(),
            },
            events,
        );
        match &acquired {
            Ok(_) => step.done(Step::Lock, None),
            Err(e) => step.fail(Step::Lock, e),
        }
        acquired
    });
    let mut held = Vec::new();
    let mut first_error: Option<DeployError> = None;
    for (i, result) in results.into_iter().enumerate() {
        match result {
            Ok(lock) => held.push((i, lock)),
            Err(e) => {
                if first_error
                    .as_ref()
                    .is_none_or(|f| f.kind != FailureKind::LockHeld)
                {
                    first_error = Some(e);
                }
            }
        }
    }
    match first_error {
        None => Ok(held.into_iter().map(|(_, lock)| lock).collect()),
        Some(e) => {
            release_each(fleet, held, events);
            Err(e)
        }
    }
}

pub(crate) fn unlock_all(fleet: &Fleet, held: Vec<HeldLock>, events: EventSink<'_>) {
    release_each(fleet, held.into_iter().enumerate().collect(), events);
}

/// Releases each `(host index, lock)`, every host at once: each lock is its host's own.
fn release_each(fleet: &Fleet, held: Vec<(usize, HeldLock)>, events: EventSink<'_>) {
    let indexes: Vec<usize> = held.iter().map(|(i, _)| *i).collect();
    let locks: Vec<Mutex<Option<HeldLock>>> = held
        .into_iter()
        .map(|(_, lock)| Mutex::new(Some(lock)))
        .collect();
    fleet.each_of(&indexes, |i, host| {
        let k = indexes
            .iter()
            .position(|&j| j == i)
            .expect("an index of `held`");
        let Some(lock) = locks[k]
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take()
        else {
            return;
        };
        let step = Stepper {
            host: &host.name,
            events,
        };
        step.start(Step::Unlock);
        match lock.release(host.transport()) {
            Ok(()) => step.done(Step::Unlock, None),
            Err(e) if e.kind == FailureKind::LockHeld => {
                step.warn(format!("{e}; left it to its holder"));
            }
            Err(e) => step.warn(format!(
                "could not remove the lock: {e}; `hoist lock release` removes it"
            )),
        }
    });
}

/// Fails before the switch when the lock of some host was taken from this deploy.
pub(crate) fn ensure_all_ours(fleet: &Fleet, held: &[HeldLock]) -> Result<(), DeployError> {
    fleet
        .each(|i, host| {
            held[i].ensure_ours(host.transport()).map_err(|e| {
                DeployError::before_switch(e.message).hint(
                    "nothing was switched by this deploy; the one holding the lock now goes on",
                )
            })
        })
        .into_iter()
        .collect()
}

/// Moves a stale lock aside (atomic) and deletes it; a racing reclaimer simply finds it gone.
fn reclaim(transport: &dyn Transport, layout: &Layout) -> Result<(), DeployError> {
    let aside = aside(&layout.lock(), "stale");
    match transport.rename(&layout.lock(), &aside) {
        Ok(()) => remove_lock_dir(transport, &aside),
        Err(_) => Ok(()),
    }
}

/// A new name beside `lock` to move it to before deleting it: `lock.<why>.<pid>.<nanos>`.
fn aside(lock: &Path, why: &str) -> PathBuf {
    let name = lock
        .file_name()
        .map_or("lock".into(), |n| n.to_string_lossy());
    lock.with_file_name(format!("{name}.{why}.{}.{}", std::process::id(), nanos()))
}

fn remove_lock_dir(transport: &dyn Transport, path: &Path) -> Result<(), DeployError> {
    transport.remove_all(path).map_err(DeployError::from)
}

fn nanos() -> u32 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos())
}

/// 128 random bits, hex: the owner token of one lock.
fn new_token() -> String {
    use std::io::Read;
    let mut bytes = [0u8; 16];
    let from_kernel =
        std::fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut bytes));
    if from_kernel.is_err() {
        // No /dev/urandom: still unique per process and instant, which is what the token is for.
        let seed = format!("{}.{}.{:?}", std::process::id(), nanos(), Instant::now());
        for (i, b) in seed.bytes().enumerate() {
            bytes[i % 16] ^= b;
        }
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// `hoist lock acquire -m "msg"`: a lock no process backs, released by `hoist lock release`.
pub fn acquire_manual_lock(
    transport: &dyn Transport,
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
    acquire(transport, layout, &req, events)?;
    match lock_status(transport, layout)? {
        LockStatus::Held(owner) | LockStatus::Stale(owner) => Ok(owner),
        LockStatus::Free => Err(DeployError::internal(
            "the lock vanished right after taking it",
        )),
    }
}

/// `hoist lock release [--force]`. Without `force`, a lock held by a live deploy is refused;
/// a hand-made or stale lock is released. Returns the owner that was removed, if any.
pub fn release_lock(
    transport: &dyn Transport,
    layout: &Layout,
    force: bool,
) -> Result<Option<LockOwner>, DeployError> {
    match lock_status(transport, layout)? {
        LockStatus::Free => Ok(None),
        LockStatus::Held(owner) if owner.pid != 0 && !force => Err(DeployError::new(
            FailureKind::LockHeld,
            format!(
                "{}: the lock belongs to a running deploy: {}",
                transport.host(),
                owner.describe(Utc::now())
            ),
        )
        .hint("if you are sure it is dead: hoist lock release --force")),
        LockStatus::Held(owner) | LockStatus::Stale(owner) => {
            reclaim(transport, layout)?;
            Ok(Some(owner))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hoist_testkit::SshServer;
    use hoist_transport::HostKeyPolicy;

    fn layout(root: &Path) -> Layout {
        Layout::with_root(
            &hoist_config::Release {
                root: root.to_path_buf(),
                keep_releases: 5,
                shared: Vec::new(),
                releases_dir: "releases".into(),
                current_link: "current".into(),
                lock_wait: Duration::ZERO,
            },
            root.to_path_buf(),
        )
    }

    fn connect(server: &SshServer, root: &Path) -> Box<dyn Transport> {
        crate::connect(
            &hoist_config::HostSpec {
                name: "web1".into(),
                address: "web1".into(),
                user: None,
                port: None,
                identity_file: None,
                config_file: Some(server.client_config.clone()),
                root: root.to_path_buf(),
                python: "python3".into(),
                groups: vec![],
                vars: Default::default(),
                accept_new_host_keys: false,
                connect_timeout: Duration::from_secs(10),
                become_mode: hoist_config::BecomeMode::Off,
                become_user: "root".into(),
            },
            HostKeyPolicy::Strict,
        )
        .unwrap()
    }

    /// Deploys from four machines that queue for one host's lock while the others take and
    /// release it: each gets it in turn. A waiter whose rename met a lock that was being
    /// released must not fail ("cannot write the lock"), nor put its lock in the place of one
    /// being removed (the release would then fail, or remove the waiter's lock).
    #[test]
    fn waiters_take_the_lock_in_turn_while_it_is_released_under_them() {
        let server = SshServer::start();
        let dir = tempfile::tempdir().unwrap();
        let layout = layout(dir.path());
        let quiet = |_: Event| {};
        let failures = Mutex::new(Vec::new());
        std::thread::scope(|scope| {
            for _ in 0..4 {
                let transport = connect(&server, dir.path());
                let (layout, quiet, failures) = (&layout, &quiet, &failures);
                scope.spawn(move || {
                    // 400 takes in all: before the fix about 1 in 240 failed.
                    for _ in 0..100 {
                        let req = LockRequest {
                            who: "tester@here",
                            command: "hoist deploy",
                            release: None,
                            message: None,
                            wait: Duration::from_secs(120),
                            pid: std::process::id(),
                        };
                        let result = acquire(&*transport, layout, &req, quiet)
                            .and_then(|held| held.release(&*transport));
                        if let Err(e) = result {
                            failures.lock().unwrap().push(e.to_string());
                        }
                    }
                });
            }
        });
        let failures = failures.into_inner().unwrap();
        assert!(
            failures.is_empty(),
            "{} failures, the first: {:?}",
            failures.len(),
            &failures[..failures.len().min(3)]
        );
        assert!(!layout.lock().exists());
    }
}
