//! gunicorn's warm reload: the new release's workers start and import the app while the old
//! ones still serve, and the old ones retire only once every new one has loaded it.
//!
//! A HUP makes gunicorn spawn the new workers and stop the old ones at once, so for the length
//! of one import (0.4 s for the example, more for a large app) the new workers cannot answer
//! yet and the old ones are gone. Instead, under the same master and listening socket:
//!
//! 1. grow: one `TTIN` per worker, each adding one worker (a new one, which loads the release
//!    `current` points at through hoist's loader), while the old workers keep answering;
//! 2. warm: wait until as many new workers as there were old ones have loaded the release
//!    (their ready files);
//! 3. retire: one `TTOU` per old worker; gunicorn stops the oldest workers first, with SIGTERM,
//!    which lets a sync worker finish the request it is serving.
//!
//! The master, its pid and its supervisor program never change, so this works under
//! supervisord or systemd, unlike USR2 (a new master, which a supervisor sees as its program
//! exiting). The worker count to return to is kept in `<ready dir>/warm-target` while a warm
//! reload runs, so one that was interrupted (hoist killed between grow and retire) or failed is
//! finished by the next one (every worker from before retires) rather than doubling the
//! workers again.

use std::collections::BTreeSet;
use std::path::Path;
use std::time::{Duration, Instant};

use hoist_transport::{Cmd, Transport};

use crate::workers::{
    list_workers, list_workers_script, reload_progress, wait_for_new_workers, ReloadProgress,
    Worker, WorkerListing, WorkerWatch,
};
use crate::ServiceError;

/// How long a grow signal may show no effect before it is sent again (signals of one kind that
/// arrive together are delivered once), and an old worker may outlive its retirement before it
/// is stopped directly.
const RESEND_AFTER: Duration = Duration::from_secs(2);

/// The file in the ready directory that holds the worker count to return to while a warm reload
/// runs (hoist's loader reads its presence).
pub(crate) const TARGET_FILE: &str = "warm-target";

/// The poll interval while workers are forked or retire: each takes the master a few
/// milliseconds, and the next signal waits for the last one's effect.
const POLL: Duration = Duration::from_millis(10);

/// A warm reload of the gunicorn master `master` onto `release`, whose workers write ready
/// files into `ready`. `warming` is called once every new worker has been started. `begun`
/// is the workers' listing and the worker count to return to when the caller has them (from
/// the command that found the master); else they are asked here.
#[allow(clippy::too_many_arguments)]
pub(crate) fn warm_reload(
    t: &dyn Transport,
    process: &str,
    master: u32,
    release: &Path,
    ready: &Path,
    timeout: Duration,
    begun: Option<(WorkerListing, usize)>,
    warming: &dyn Fn(),
) -> Result<(), ServiceError> {
    let start = Instant::now();
    let target_file = ready.join(TARGET_FILE);
    let (before, target) = match begun {
        Some(begun) => begun,
        None => {
            let before = list_workers(t, master, release, Some(ready))?;
            let target = keep_target(t, process, ready, &target_file, before.workers.len().max(1))?;
            (before, target)
        }
    };
    // Every worker from before retires, even one that already runs the release (left by an
    // interrupted reload, or by a failed one that was switched back): gunicorn retires the
    // oldest first, so only the workers started here can be the ones kept.
    let old: BTreeSet<u32> = before.workers.iter().map(|w| w.pid).collect();
    let fail = |detail: String| {
        ServiceError::ReloadFailed {
        host: t.host().to_string(),
        process: process.to_string(),
        detail,
        hint: "see the gunicorn error log; new workers load the app through hoist's loader (`hoist setup` writes it); raise the process `timeout` if the app is slow to start".into(),
    }
    };

    // 1. Grow: one new worker per missing one, the old ones still serving.
    // The worker count the last TTIN should bring, and when it was sent.
    let mut asked: Option<(usize, Instant)> = None;
    // The listing from before serves as the first one; each `TTIN`'s command lists the
    // workers after it, and the last of those is where the wait for them to load starts.
    let mut watch = WorkerWatch::new(t, master, release, Some(ready));
    let mut next = Some(before);
    let mut grown = None;
    loop {
        let now = match next.take() {
            Some(listing) => listing,
            None => list_workers(t, master, release, Some(ready))?,
        };
        if !now.master_alive {
            return Err(fail(format!(
                "the master (pid {master}) exited during the reload"
            )));
        }
        // A worker that failed to load another release (left from a failed reload) does not
        // count.
        let fresh = now
            .workers
            .iter()
            .filter(|w| {
                !old.contains(&w.pid)
                    && !w.ready.as_deref().is_some_and(|r| {
                        r.starts_with("failed:") && r != format!("failed:{}", now.release)
                    })
            })
            .count();
        if fresh >= target {
            break;
        }
        if start.elapsed() >= timeout {
            return Err(fail(format!(
                "{fresh} of {target} new workers started after {timeout:?}"
            )));
        }
        let send = asked
            .is_none_or(|(want, at)| now.workers.len() >= want || at.elapsed() >= RESEND_AFTER);
        if send {
            // Waits on the host until the master has forked each worker: no poll interval.
            let more = target - fresh;
            let listing =
                grow(t, master, now.workers.len(), more, release, ready).map_err(&fail)?;
            next = Some(watch.seen(&listing));
            grown = next.clone();
            // Met once one more worker shows (a fork that came late stops the command's
            // loop; the rest are asked for again then).
            asked = Some((now.workers.len() + 1, Instant::now()));
        } else {
            std::thread::sleep(POLL);
        }
    }

    // 2. Warm: every new worker has imported the app.
    warming();
    let warmed = loop {
        let now = match grown.take() {
            Some(listing) => listing,
            None => watch.changed()?,
        };
        if !now.master_alive {
            return Err(fail(format!(
                "the master (pid {master}) exited during the reload"
            )));
        }
        let failed = format!("failed:{}", now.release);
        if let Some(w) = now
            .workers
            .iter()
            .find(|w| !old.contains(&w.pid) && w.ready.as_deref() == Some(failed.as_str()))
        {
            let reason = t
                .read_file(&ready.join(w.pid.to_string()))?
                .map(|text| {
                    String::from_utf8_lossy(&text)
                        .lines()
                        .nth(1)
                        .unwrap_or("")
                        .to_string()
                })
                .unwrap_or_default();
            return Err(ServiceError::ReloadFailed {
                host: t.host().to_string(),
                process: process.to_string(),
                detail: format!(
                    "the new workers cannot load {}: {reason}; the old workers still serve",
                    now.release
                ),
                hint: "the traceback is in the gunicorn error log".into(),
            });
        }
        let warm = now
            .workers
            .iter()
            .filter(|w| !old.contains(&w.pid) && loaded(w, &now.release))
            .count();
        if warm >= target {
            break now;
        }
        if start.elapsed() >= timeout {
            return Err(fail(format!(
                "{warm} of {target} new workers loaded {} after {timeout:?}",
                now.release
            )));
        }
    };

    // Killed here, hoist leaves twice the workers and `warm-target`: the next reload finishes.
    fault_point("warm:grown");

    // 3. Retire: gunicorn stops the oldest workers first.
    shrink(t, master, warmed.workers.len().saturating_sub(target)).map_err(&fail)?;
    let left = timeout.saturating_sub(start.elapsed());
    let retired = retire(
        t, &mut watch, process, master, release, ready, &old, target, left,
    );
    if retired.is_ok() {
        t.remove_all(&target_file)?;
    }
    retired
}

/// Waits until no old worker is left. An old worker still there after [`RESEND_AFTER`] gets a
/// SIGTERM of its own (what gunicorn's `TTOU` sends it: it finishes the request it serves):
/// another `TTOU` would be wrong when the worker is only slow to finish a long request, since
/// the master would then retire a new worker too and serve with one fewer. When the master did
/// miss a `TTOU`, it replaces the worker stopped here with a new one, which loads the release.
/// `watch` last listed the workers before the `TTOU`s: its next listing is the first change.
#[allow(clippy::too_many_arguments)]
fn retire(
    t: &dyn Transport,
    watch: &mut WorkerWatch<'_>,
    process: &str,
    master: u32,
    release: &Path,
    ready: &Path,
    old: &BTreeSet<u32>,
    target: usize,
    timeout: Duration,
) -> Result<(), ServiceError> {
    let start = Instant::now();
    let mut last = Instant::now();
    loop {
        let now = watch.changed()?;
        if reload_progress(old, &now, target) == ReloadProgress::Done {
            return Ok(());
        }
        let old_left = now.workers.iter().any(|w| old.contains(&w.pid));
        if !old_left || start.elapsed() >= timeout || !now.master_alive {
            break;
        }
        if last.elapsed() >= RESEND_AFTER {
            let pids: Vec<String> = now
                .workers
                .iter()
                .filter(|w| old.contains(&w.pid))
                .map(|w| w.pid.to_string())
                .collect();
            // A worker that exits meanwhile makes kill fail for its pid only: not an error.
            let _ = t.exec(&Cmd::new("kill").arg("-TERM").args(pids));
            last = Instant::now();
        }
    }
    wait_for_new_workers(
        t,
        process,
        master,
        release,
        Some(ready),
        old,
        target,
        timeout.saturating_sub(start.elapsed()),
    )
}

/// The shell function `keep_target DIR FILE N`: prints the worker count in `FILE` (in the ready
/// directory `DIR`) when it holds one above zero; else writes `N` there (through a new file and
/// `rename(2)`) and prints that. Not synced: it matters only while the master that reads it
/// runs, which a crash of the host ends.
macro_rules! keep_target_script {
    () => {
        r#"keep_target() {
if read -r n 2>/dev/null < "$2"; then
  case $n in ''|*[!0-9]*) ;; *) if [ "$n" -gt 0 ] 2>/dev/null; then echo "$n"; return 0; fi ;; esac
fi
[ -d "$1" ] || mkdir -p -- "$1" || return 1
tmp=$(mktemp -- "$2.XXXXXXXXXX") || return 1
if printf '%s\n' "$3" > "$tmp" && mv -f -- "$tmp" "$2"; then echo "$3"; return 0; fi
rm -f -- "$tmp"; return 1
}
"#
    };
}
pub(crate) use keep_target_script;

/// [`keep_target_script!`] of `$1`-`$3`.
const KEEP_TARGET: &str = concat!(keep_target_script!(), r#"keep_target "$@""#);

/// The worker count a warm reload returns to: the one an interrupted reload kept in
/// `target_file`, else `workers` (now kept there), in one round trip (of `process`).
fn keep_target(
    t: &dyn Transport,
    process: &str,
    ready: &Path,
    target_file: &Path,
    workers: usize,
) -> Result<usize, ServiceError> {
    let out = t.exec(
        &Cmd::new("sh")
            .brief()
            .arg("-c")
            .arg(KEEP_TARGET)
            .arg("hoist-warm")
            .path_arg(ready)
            .path_arg(target_file)
            .arg(workers.to_string()),
    )?;
    kept_target(
        t,
        process,
        target_file,
        out.success().then(|| out.stdout_text()).as_deref(),
        &out.tail(2),
    )
}

/// The worker count [`keep_target_script!`] printed (`printed`: `None` when it failed, having
/// said `said`).
pub(crate) fn kept_target(
    t: &dyn Transport,
    process: &str,
    target_file: &Path,
    printed: Option<&str>,
    said: &str,
) -> Result<usize, ServiceError> {
    match printed.map(|text| text.trim().parse::<usize>()) {
        Some(Ok(n)) if n > 0 => Ok(n),
        _ => Err(ServiceError::ReloadFailed {
            host: t.host().to_string(),
            process: process.to_string(),
            detail: format!(
                "cannot keep the worker count in {}: {said}",
                target_file.display(),
            ),
            hint:
                "hoist's login user must be able to write the ready directory beside the pid file"
                    .into(),
        }),
    }
}

/// Whether worker `w` has loaded `release` (its ready file names it).
fn loaded(w: &Worker, release: &str) -> bool {
    w.cwd == release && w.ready.as_deref() == Some(release)
}

/// Sends `TTIN` to master `$1`, then waits (up to ~0.2 s, checking every 5 ms with the shell's
/// own commands) until it has more children than the `$2` workers it had: a worker is forked
/// a few milliseconds after the signal, and the next `TTIN` must come after it (signals of
/// one kind that arrive together are delivered once). So `$5` times, each after the last
/// one's worker was forked (one command for all: the second worker starts a round trip
/// sooner); it stops early when a fork did not show. Where the kernel does not list children
/// (`/proc/<pid>/task/*/children`) or `sleep` takes no fraction, it sends one and goes on at
/// once, and the caller polls. Then lists the workers as [`LIST_WORKERS`](crate::workers)
/// does, with `$3` and `$4` as its release and ready directory: the listing the next `TTIN` is
/// decided on.
const GROW: &str = concat!(
    "list() {\n",
    list_workers_script!(),
    r#"}
grow() {
  kill -TTIN "$1" || exit 1
  [ -e "/proc/$1/task/$1/children" ] || return 1
  i=0
  while [ "$i" -lt 40 ]; do
    n=0
    for f in "/proc/$1"/task/*/children; do
      k=; read -r k < "$f" 2>/dev/null
      for p in $k; do n=$((n + 1)); done
    done
    [ "$n" -gt "$2" ] && return 0
    sleep 0.005 2>/dev/null || return 1
    i=$((i + 1))
  done
  return 1
}
had=$2 sent=0
while [ "$sent" -lt "$5" ]; do
  sent=$((sent + 1))
  grow "$1" "$had" || break
  had=$((had + 1))
done
list "$1" "$3" "$4"
"#
);

/// Sends `$2` `TTOU`s to master `$1`, each once the master has handled the last: signals of
/// one kind that arrive before its handler has run are delivered once, and a lost `TTOU`
/// leaves a worker too many (sent at once, the kill test caught it under load). gunicorn's
/// handler queues the signal and wakes its main loop by writing to a pipe, so the master's
/// count of writes (`syscw` in `/proc/<pid>/io`, read with the shell's own `read`) moving on
/// says the handler ran; it is checked every 2 ms, for up to 0.5 s. Where that count cannot be
/// read (a master of another user), the next one goes 30 ms after the last, as before.
/// Waiting for each one's worker to leave instead was slower (45-60 ms under load: the worker
/// finishes its request and the interpreter's exit first). The first is sent before the
/// command ends (it fails if the master is gone); the others from the background, so that the
/// wait for the old workers to leave starts with the first.
const SHRINK: &str = r#"m=$1
syscw() { c=; while read -r k v; do [ "$k" = syscw: ] && c=$v; done 2>/dev/null < "/proc/$m/io"; }
syscw
kill -TTOU "$m" || exit 1
n=$(($2 - 1))
[ "$n" -gt 0 ] || exit 0
( while :; do
  last=$c i=0
  limit=15
  [ -n "$last" ] && limit=250
  while [ "$i" -lt "$limit" ]; do
    sleep 0.002 2>/dev/null || { sleep 1; break; }
    syscw
    [ -n "$last" ] && [ -n "$c" ] && [ "$c" != "$last" ] && break
    i=$((i + 1))
  done
  sleep 0.002 2>/dev/null
  syscw
  kill -TTOU "$m" || exit 1
  n=$((n - 1))
  [ "$n" -gt 0 ] || exit 0
done ) </dev/null >/dev/null 2>&1 &"#;

/// [`SHRINK`]: `workers` fewer workers for `master`.
fn shrink(t: &dyn Transport, master: u32, workers: usize) -> Result<(), String> {
    if workers == 0 {
        return Ok(());
    }
    let cmd = Cmd::new("sh")
        .brief()
        .arg("-c")
        .arg(SHRINK)
        .arg("hoist-shrink")
        .arg(master.to_string())
        .arg(workers.to_string());
    send(t, &cmd, "TTOU", master)
}

/// [`GROW`]: `more` workers for `master`, which had `workers`; then the workers' listing.
fn grow(
    t: &dyn Transport,
    master: u32,
    workers: usize,
    more: usize,
    release: &Path,
    ready: &Path,
) -> Result<String, String> {
    let cmd = Cmd::new("sh")
        .brief()
        .arg("-c")
        .arg(GROW)
        .arg("hoist-grow")
        .arg(master.to_string())
        .arg(workers.to_string())
        .path_arg(release)
        .path_arg(ready)
        .arg(more.to_string());
    let sent = t.exec(&cmd).map_err(|e| e.to_string())?;
    if sent.success() {
        Ok(sent.stdout_text())
    } else {
        Err(failed_signal("TTIN", master, &sent))
    }
}

/// Runs `cmd`, which sends signal `name` to `master`.
fn send(t: &dyn Transport, cmd: &Cmd, name: &str, master: u32) -> Result<(), String> {
    let sent = t.exec(cmd).map_err(|e| e.to_string())?;
    if sent.success() {
        Ok(())
    } else {
        Err(failed_signal(name, master, &sent))
    }
}

/// The message for a `kill -<name> <master>` that failed with `sent`.
fn failed_signal(name: &str, master: u32, sent: &hoist_transport::Output) -> String {
    format!(
        "kill -{name} {master} failed: {} (run hoist as the user that runs gunicorn)",
        sent.tail(2)
    )
}

/// Test-only: `HOIST_FAIL_AT=<name>` kills hoist here (as `hoist_deploy`'s failure points do), so
/// the kill tests cover a warm reload cut off between its steps. Debug builds only.
#[cfg(debug_assertions)]
fn fault_point(name: &str) {
    if std::env::var("HOIST_FAIL_AT").is_ok_and(|v| v == name) {
        let _ = std::process::Command::new("kill")
            .args(["-9", &std::process::id().to_string()])
            .status();
        std::process::abort();
    }
}

#[cfg(not(debug_assertions))]
fn fault_point(_name: &str) {}

#[cfg(test)]
mod tests {
    use super::*;

    /// A stand-in for gunicorn's master as signals see it: a Python handler that queues each
    /// `TTOU` and wakes the main loop through a pipe (gunicorn's `Arbiter.signal`), and a main
    /// loop that is often busy in C code for 40 ms (an import, a fork), when no Python handler
    /// can run: two `TTOU`s in that time reach the handler once. It writes how many it handled
    /// to `handled`.
    const MASTER: &str = r#"
import hashlib, os, signal, sys, time
handled = []
r, w = os.pipe()
def on_ttou(sig, frame):
    handled.append(sig)
    os.write(w, b".")
signal.signal(signal.SIGTTOU, on_ttou)
data = b"x" * 80_000_000
print("ready", flush=True)
end = time.time() + 20
while time.time() < end:
    start = time.time()
    while time.time() - start < 0.1:
        hashlib.sha256(data).digest()
    with open(sys.argv[1], "w") as f:
        f.write(str(len(handled)))
    time.sleep(0.001)
"#;

    #[test]
    fn every_ttou_reaches_a_master_that_is_slow_to_handle_signals() {
        let dir = tempfile::tempdir().unwrap();
        let handled = dir.path().join("handled");
        let mut master = std::process::Command::new("python3")
            .arg("-c")
            .arg(MASTER)
            .arg(&handled)
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut ready = String::new();
        std::io::BufRead::read_line(
            &mut std::io::BufReader::new(master.stdout.take().unwrap()),
            &mut ready,
        )
        .unwrap();
        assert_eq!(ready, "ready\n");
        let t = hoist_transport::Local::default();
        let shrunk = shrink(&t, master.id(), 3);
        let deadline = Instant::now() + Duration::from_secs(5);
        let count = loop {
            let count = std::fs::read_to_string(&handled).unwrap_or_default();
            if count == "3" || Instant::now() > deadline {
                break count;
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let _ = master.kill();
        let _ = master.wait();
        assert_eq!(shrunk, Ok(()));
        assert_eq!(count, "3", "the master handled {count} of 3 TTOUs");
    }
}
