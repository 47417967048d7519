//! The worker processes of an app server's master, and the wait until every one of them runs
//! the new release: what makes `uwsgi-chain` and `gunicorn-hup` more than "a signal was sent".

use std::collections::BTreeSet;
use std::path::Path;
use std::time::{Duration, Instant};

use hoist_transport::{Cmd, Transport};

use crate::ServiceError;

/// One worker: its pid and the directory it runs in (`/proc/<pid>/cwd`). hoist's loader
/// changes into the resolved release directory in each new worker, so the working directory
/// says which release a worker serves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Worker {
    pub pid: u32,
    pub cwd: String,
    /// The release the worker says it has loaded (hoist's loader writes it to the ready
    /// directory once the app is imported), when it has said so.
    pub ready: Option<String>,
}

/// The master's workers, and the resolved path of the release they should run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkerListing {
    /// `false` when the master pid is no longer a running process.
    pub master_alive: bool,
    /// The release path as the host resolves it (`realpath`).
    pub release: String,
    pub workers: Vec<Worker>,
    /// Whether the ready directory exists, i.e. the loader reports loaded apps. A loader
    /// written by an older `hoist setup` does not: then a worker's directory is all there is.
    pub tracks_ready: bool,
}

/// Where hoist's loader reports each worker that has loaded its release: `hoist-ready/`
/// beside the pid file or FIFO, one file per worker pid holding the worker's start time and
/// the release path. `hoist setup` renders the same path into the loader.
#[must_use]
pub fn ready_dir(pidfile_or_fifo: &Path) -> std::path::PathBuf {
    pidfile_or_fifo
        .parent()
        .unwrap_or(Path::new("/"))
        .join("hoist-ready")
}

/// Lists the live children of `$1` as `worker <pid> <cwd>`, prints `release <realpath of $2>`,
/// and `master gone` when `$1` has exited. With the ready directory `$3` present it prints
/// `tracks ready`, and `ready <pid> <release>` for each worker whose ready file carries its own
/// start time (a file left by an earlier process with the same pid does not count). Plain sh
/// and /proc: no procps needed on the host. The master's children come from
/// `/proc/<pid>/task/*/children` where the kernel has it (a walk of all of /proc took 30-60 ms
/// on a busy host, and a reload lists the workers many times), else from that walk.
///
/// Only the shell's own commands (`read`, `cd -P`, `printf`): a reload lists the workers every
/// few milliseconds while new ones import the app on the same cores, and a `realpath`,
/// `readlink` or `awk` process per listing and worker cost 20-50 ms of them each time. A
/// directory's resolved path is `cd -P`'s `$PWD`, as `realpath` and `readlink` would say.
const LIST_WORKERS: &str = list_workers_script!();

/// The text of [`LIST_WORKERS`], for [`WATCH_WORKERS`] to run it as a function.
macro_rules! list_workers_script {
    () => {
        r#"m="$1" rd="$3"
if cd -P -- "$2" 2>/dev/null; then printf 'release %s\n' "$PWD"; else printf 'release %s\n' "$2"; fi
state=Z
if read -r line < "/proc/$m/stat" 2>/dev/null; then set -- ${line##*) }; state="$1"; fi
if [ "$state" = Z ]; then
  echo 'master gone'
  exit 0
fi
[ -d "$rd" ] && echo 'tracks ready'
if [ -e "/proc/$m/task/$m/children" ]; then
  kids=
  for f in "/proc/$m"/task/*/children; do
    k=
    read -r k < "$f" 2>/dev/null
    kids="$kids $k"
  done
else
  kids=$(for d in /proc/[0-9]*; do
    read -r line < "$d/stat" 2>/dev/null || continue
    set -- ${line##*) }
    [ "$2" = "$m" ] && printf '%s\n' "${d#/proc/}"
  done)
fi
for p in $kids; do
  d="/proc/$p"
  read -r line < "$d/stat" 2>/dev/null || continue
  set -- ${line##*) }
  [ "$2" = "$m" ] && [ "$1" != Z ] || continue
  started="${20}"
  cwd=
  if cd -P -- "$d/cwd" 2>/dev/null; then cwd="$PWD"; fi
  printf 'worker %s %s\n' "$p" "$cwd"
  if [ -f "$rd/$p" ] && read -r at loaded < "$rd/$p" && [ "$at" = "$started" ]; then
    printf 'ready %s %s\n' "$p" "$loaded"
  fi
done
"#
    };
}
pub(crate) use list_workers_script;

/// [`LIST_WORKERS`] (`$1`-`$3` as there) every 5 ms on the host until what it prints differs
/// from `$4`, then that; after `$5` rounds with no change, the same listing and `unchanged`
/// (and `no sleep` where `sleep` takes no fraction: it answers at once). A wait for workers to
/// start, load the app or leave sees each change within milliseconds, and costs the host a
/// subshell per round rather than an SSH round trip. Where the kernel does not list children,
/// a listing walks /proc: every 50 ms then.
const WATCH_WORKERS: &str = concat!(
    "list() {\n",
    list_workers_script!(),
    r#"}
m=$1 rel=$2 rd=$3 last=$4 rounds=$5
every=0.005
[ -e "/proc/$m/task/$m/children" ] || every=0.05
i=0
while :; do
  out=$(list "$m" "$rel" "$rd")
  if [ "$out" != "$last" ]; then printf '%s\n' "$out"; exit 0; fi
  i=$((i + 1))
  if [ "$i" -ge "$rounds" ]; then printf '%s\nunchanged\n' "$out"; exit 0; fi
  if ! sleep "$every" 2>/dev/null; then printf '%s\nunchanged\nno sleep\n' "$out"; exit 0; fi
done
"#
);

/// Lists the workers of `master` on the host.
pub fn list_workers(
    t: &dyn Transport,
    master: u32,
    release: &Path,
    ready: Option<&Path>,
) -> Result<WorkerListing, ServiceError> {
    let out = t.exec(
        &Cmd::new("sh")
            .brief()
            .arg("-c")
            .arg(LIST_WORKERS)
            .arg("hoist-workers")
            .arg(master.to_string())
            .path_arg(release)
            .arg(ready.map(|p| p.display().to_string()).unwrap_or_default()),
    )?;
    Ok(parse_listing(&out.stdout_text()))
}

/// The rounds of [`WATCH_WORKERS`] before it answers with no change (~15 ms; ~40 ms when the
/// new workers' import keeps the cores busy, each round's `sleep` a process): a loop on the
/// listings checks its deadline and resends between them, and another thread's command (the
/// prune beside a deploy's warm reload) gets its turn at the host's shell within the 50 ms it
/// waits for one before it opens an SSH session of its own. With 40 rounds (~0.25 s) and with
/// 5 (60 ms under load) the prune's state read did, on the cores the new workers import on.
const WATCH_ROUNDS: u32 = 3;

/// The workers of one master as they change (see [`WATCH_WORKERS`]).
pub(crate) struct WorkerWatch<'a> {
    t: &'a dyn Transport,
    master: u32,
    release: &'a Path,
    ready: Option<&'a Path>,
    /// What the last listing printed, as the shell's `$(...)` keeps it.
    last: Option<String>,
    /// [`WATCH_ROUNDS`], or another count for a test.
    rounds: u32,
}

impl<'a> WorkerWatch<'a> {
    pub(crate) fn new(
        t: &'a dyn Transport,
        master: u32,
        release: &'a Path,
        ready: Option<&'a Path>,
    ) -> Self {
        WorkerWatch {
            t,
            master,
            release,
            ready,
            last: None,
            rounds: WATCH_ROUNDS,
        }
    }

    /// Takes `text`, what a listing of the same workers printed (another command's), as the
    /// last listing; returns it parsed.
    pub(crate) fn seen(&mut self, text: &str) -> WorkerListing {
        self.keep(text)
    }

    /// The workers now.
    pub(crate) fn now(&mut self) -> Result<WorkerListing, ServiceError> {
        let out = self.t.exec(&self.command(LIST_WORKERS))?;
        Ok(self.keep(&out.stdout_text()))
    }

    /// The workers once they differ from the last listing, or as they are after
    /// its rounds with no change; the first call lists at once.
    pub(crate) fn changed(&mut self) -> Result<WorkerListing, ServiceError> {
        let Some(last) = self.last.clone() else {
            return self.now();
        };
        let out = self.t.exec(
            &self
                .command(WATCH_WORKERS)
                .arg(last)
                .arg(self.rounds.to_string()),
        )?;
        let text = out.stdout_text();
        // A host whose `sleep` takes no fraction answers at once: poll from here then.
        if text.lines().any(|l| l == "no sleep") {
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(self.keep(&text))
    }

    fn command(&self, script: &str) -> Cmd {
        Cmd::new("sh")
            .brief()
            .arg("-c")
            .arg(script)
            .arg("hoist-workers")
            .arg(self.master.to_string())
            .path_arg(self.release)
            .arg(
                self.ready
                    .map(|p| p.display().to_string())
                    .unwrap_or_default(),
            )
    }

    fn keep(&mut self, text: &str) -> WorkerListing {
        let listing: String = text
            .lines()
            .filter(|l| *l != "unchanged" && *l != "no sleep")
            .collect::<Vec<_>>()
            .join("\n");
        self.last = Some(listing);
        parse_listing(text)
    }
}

/// Parses [`LIST_WORKERS`]'s output.
#[must_use]
pub fn parse_listing(text: &str) -> WorkerListing {
    let mut listing = WorkerListing {
        master_alive: true,
        release: String::new(),
        workers: Vec::new(),
        tracks_ready: false,
    };
    let mut ready = std::collections::BTreeMap::new();
    for line in text.lines() {
        if let Some(path) = line.strip_prefix("release ") {
            listing.release = path.to_string();
        } else if line == "master gone" {
            listing.master_alive = false;
        } else if line == "tracks ready" {
            listing.tracks_ready = true;
        } else if let Some(rest) = line.strip_prefix("ready ") {
            if let Some((pid, path)) = rest.split_once(' ') {
                if let Ok(pid) = pid.parse::<u32>() {
                    ready.insert(pid, path.to_string());
                }
            }
        } else if let Some(rest) = line.strip_prefix("worker ") {
            let (pid, cwd) = rest.split_once(' ').unwrap_or((rest, ""));
            if let Ok(pid) = pid.parse() {
                listing.workers.push(Worker {
                    pid,
                    cwd: cwd.to_string(),
                    ready: None,
                });
            }
        }
    }
    for worker in &mut listing.workers {
        worker.ready = ready.remove(&worker.pid);
    }
    listing.workers.sort_by_key(|w| w.pid);
    listing
}

/// Where a reload stands, judged from one listing against the workers from before it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReloadProgress {
    /// Every worker was started after the reload and runs the new release.
    Done,
    /// Not yet; the text says what is still in the way.
    Waiting(String),
    /// The master has exited: nothing will finish the reload.
    MasterGone,
}

/// Judges a listing: done when no worker from before remains, at least `min_workers` run, and
/// each of them runs from the release directory.
#[must_use]
pub fn reload_progress(
    before: &BTreeSet<u32>,
    now: &WorkerListing,
    min_workers: usize,
) -> ReloadProgress {
    if !now.master_alive {
        return ReloadProgress::MasterGone;
    }
    let old: Vec<String> = now
        .workers
        .iter()
        .filter(|w| before.contains(&w.pid))
        .map(|w| format!("{} in {}", w.pid, w.cwd))
        .collect();
    if !old.is_empty() {
        return ReloadProgress::Waiting(format!(
            "workers from before the reload still run: {}",
            old.join(", ")
        ));
    }
    if now.workers.len() < min_workers {
        return ReloadProgress::Waiting(format!(
            "{} of {min_workers} workers run",
            now.workers.len()
        ));
    }
    let elsewhere: Vec<String> = now
        .workers
        .iter()
        .filter(|w| w.cwd != now.release)
        .map(|w| format!("{} in {}", w.pid, w.cwd))
        .collect();
    if !elsewhere.is_empty() {
        return ReloadProgress::Waiting(format!(
            "new workers do not run {}: {}",
            now.release,
            elsewhere.join(", ")
        ));
    }
    if now.tracks_ready {
        let loading: Vec<String> = now
            .workers
            .iter()
            .filter(|w| w.ready.as_deref() != Some(now.release.as_str()))
            .map(|w| w.pid.to_string())
            .collect();
        if !loading.is_empty() {
            return ReloadProgress::Waiting(format!(
                "new workers have not loaded the app yet: {}",
                loading.join(", ")
            ));
        }
    }
    ReloadProgress::Done
}

/// Waits until every worker of `master` runs `release` and has loaded it, or `timeout` passes.
#[allow(clippy::too_many_arguments)]
pub(crate) fn wait_for_new_workers(
    t: &dyn Transport,
    process: &str,
    master: u32,
    release: &Path,
    ready: Option<&Path>,
    before: &BTreeSet<u32>,
    min_workers: usize,
    timeout: Duration,
) -> Result<(), ServiceError> {
    let start = Instant::now();
    let mut watch = WorkerWatch::new(t, master, release, ready);
    loop {
        let listing = watch.changed()?;
        match reload_progress(before, &listing, min_workers) {
            ReloadProgress::Done => return Ok(()),
            ReloadProgress::MasterGone => {
                return Err(ServiceError::ReloadFailed {
                    host: t.host().to_string(),
                    process: process.to_string(),
                    detail: format!("the master (pid {master}) exited during the reload"),
                    hint: "see the server's error log; its supervisor restarts it with the release `current` points at".into(),
                })
            }
            ReloadProgress::Waiting(why) => {
                if start.elapsed() >= timeout {
                    return Err(ServiceError::ReloadFailed {
                        host: t.host().to_string(),
                        process: process.to_string(),
                        detail: format!("not every worker runs the new release after {timeout:?}: {why}"),
                        hint: "new workers must load the app through hoist's loader (`hoist setup` writes it), which changes into the resolved release directory; raise the process `timeout` if the app is slow to start".into(),
                    });
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listing(text: &str) -> WorkerListing {
        parse_listing(text)
    }

    #[test]
    fn parses_workers_release_and_a_gone_master() {
        let l = listing("release /srv/app/releases/2\nworker 12 /srv/app/releases/2\nworker 9 /srv/app/releases/1\n");
        assert!(l.master_alive);
        assert_eq!(l.release, "/srv/app/releases/2");
        assert_eq!(
            l.workers,
            vec![
                Worker {
                    pid: 9,
                    cwd: "/srv/app/releases/1".into(),
                    ready: None,
                },
                Worker {
                    pid: 12,
                    cwd: "/srv/app/releases/2".into(),
                    ready: None,
                },
            ]
        );
        assert!(!listing("release /x\nmaster gone\n").master_alive);
    }

    #[test]
    fn a_reload_is_done_only_when_no_old_worker_remains_and_all_run_the_release() {
        let before: BTreeSet<u32> = [9, 10].into();
        let mixed = listing("release /r/2\nworker 10 /r/1\nworker 12 /r/2\n");
        assert_eq!(
            reload_progress(&before, &mixed, 2),
            ReloadProgress::Waiting("workers from before the reload still run: 10 in /r/1".into())
        );
        let short = listing("release /r/2\nworker 12 /r/2\n");
        assert_eq!(
            reload_progress(&before, &short, 2),
            ReloadProgress::Waiting("1 of 2 workers run".into())
        );
        let wrong_dir = listing("release /r/2\nworker 12 /r/2\nworker 13 /r/1\n");
        assert_eq!(
            reload_progress(&before, &wrong_dir, 2),
            ReloadProgress::Waiting("new workers do not run /r/2: 13 in /r/1".into())
        );
        let done = listing("release /r/2\nworker 12 /r/2\nworker 13 /r/2\n");
        assert_eq!(reload_progress(&before, &done, 2), ReloadProgress::Done);
        let loading = listing(
            "release /r/2\ntracks ready\nworker 12 /r/2\nworker 13 /r/2\nready 12 /r/2\nready 13 /r/1\n",
        );
        assert_eq!(
            reload_progress(&before, &loading, 2),
            ReloadProgress::Waiting("new workers have not loaded the app yet: 13".into())
        );
        let loaded = listing(
            "release /r/2\ntracks ready\nworker 12 /r/2\nworker 13 /r/2\nready 12 /r/2\nready 13 /r/2\n",
        );
        assert_eq!(reload_progress(&before, &loaded, 2), ReloadProgress::Done);
        let gone = listing("release /r/2\nmaster gone\n");
        assert_eq!(
            reload_progress(&before, &gone, 2),
            ReloadProgress::MasterGone
        );
    }

    /// A shell standing for a master, and its children, killed as one process group however the
    /// test ends (killing the shell alone left its sleeps running for 30 s).
    struct Group(Option<std::process::Child>);

    impl Group {
        fn start(script: &str, dir: &Path) -> Group {
            Group(Some(
                std::os::unix::process::CommandExt::process_group(
                    std::process::Command::new("sh")
                        .arg("-c")
                        .arg(script)
                        .current_dir(dir)
                        .stdin(std::process::Stdio::piped()),
                    0,
                )
                .spawn()
                .unwrap(),
            ))
        }

        fn pid(&self) -> u32 {
            self.0.as_ref().map_or(0, std::process::Child::id)
        }

        fn kill(&mut self) {
            if let Some(mut shell) = self.0.take() {
                let _ = std::process::Command::new("kill")
                    .args(["-KILL", "--", &format!("-{}", shell.id())])
                    .status();
                let _ = shell.wait();
            }
        }
    }

    impl Drop for Group {
        fn drop(&mut self) {
            self.kill();
        }
    }

    #[test]
    fn a_watch_answers_when_the_workers_change_and_with_the_same_when_they_do_not() {
        let dir = tempfile::tempdir().unwrap();
        let release = dir.path().canonicalize().unwrap();
        // A master that forks one worker at once and a second once a line comes on its input.
        let mut master = Group::start("sleep 30 & read -r go; sleep 30 & wait", &release);
        let t = hoist_transport::Local::default();
        let mut watch = WorkerWatch::new(&t, master.pid(), &release, None);
        // Rounds enough for the change below to come within one wait (~0.25 s).
        watch.rounds = 40;
        let deadline = Instant::now() + Duration::from_secs(5);
        let one = loop {
            let l = watch.now().unwrap();
            if l.workers.len() == 1 || Instant::now() > deadline {
                break l;
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        assert_eq!(one.workers.len(), 1, "{one:?}");
        // Nothing changes: after its rounds the watch answers with the same workers.
        let same = watch.changed().unwrap();
        assert_eq!(same.workers, one.workers);
        // The second worker comes 50 ms into the next wait, which answers with it (a watch that
        // answered at once would list one worker).
        let mut input = master.0.as_mut().unwrap().stdin.take().unwrap();
        let fork = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(50));
            std::io::Write::write_all(&mut input, b"go\n").unwrap();
            input
        });
        let two = watch.changed().unwrap();
        drop(fork.join());
        master.kill();
        assert_eq!(two.workers.len(), 2, "{two:?}");
        assert!(two.workers.contains(&one.workers[0]), "{two:?}");
    }

    #[test]
    fn lists_the_children_of_a_real_process() {
        let dir = tempfile::tempdir().unwrap();
        let release = dir.path().canonicalize().unwrap();
        let mut master = Group::start("sleep 30 & sleep 30 & wait", &release);
        let master_pid = master.pid();
        let t = hoist_transport::Local::default();
        // The release as `current` names it: through a symlink, which the listing resolves.
        let link = tempfile::tempdir().unwrap();
        let through = link.path().join("current");
        std::os::unix::fs::symlink(&release, &through).unwrap();
        let ready = tempfile::tempdir().unwrap();
        let deadline = Instant::now() + Duration::from_secs(5);
        let listing = loop {
            let l = list_workers(&t, master_pid, &through, Some(ready.path())).unwrap();
            if l.workers.len() == 2 || Instant::now() > deadline {
                break l;
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        // A ready file with the worker's own start time counts; one with another does not.
        let (first, second) = (listing.workers[0].pid, listing.workers[1].pid);
        let started = |pid: u32| {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
            let after = &stat[stat.rfind(')').unwrap() + 2..];
            after.split(' ').nth(19).unwrap().to_string()
        };
        std::fs::write(
            ready.path().join(first.to_string()),
            format!("{} {}\n", started(first), release.display()),
        )
        .unwrap();
        std::fs::write(ready.path().join(second.to_string()), "1 /elsewhere\n").unwrap();
        let readied = list_workers(&t, master_pid, &through, Some(ready.path())).unwrap();
        master.kill();
        assert!(listing.master_alive);
        assert!(listing.tracks_ready);
        assert_eq!(listing.release, release.display().to_string());
        assert_eq!(listing.workers.len(), 2, "{listing:?}");
        assert!(
            listing.workers.iter().all(|w| w.cwd == listing.release),
            "{listing:?}"
        );
        let ready_of = |pid: u32| {
            readied
                .workers
                .iter()
                .find(|w| w.pid == pid)
                .and_then(|w| w.ready.clone())
        };
        assert_eq!(
            ready_of(first),
            Some(release.display().to_string()),
            "{readied:?}"
        );
        assert_eq!(ready_of(second), None, "{readied:?}");
        let gone = list_workers(&t, master_pid, &through, None).unwrap();
        assert!(!gone.master_alive, "{gone:?}");
    }
}
