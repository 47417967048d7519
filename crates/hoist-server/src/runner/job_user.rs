//! `[runner] user`: the unprivileged account a run's processes (its checkout, the pipeline
//! engine, steps, services) run as. The server, started as root, switches to it when it spawns
//! them (setgroups to the user's own groups, as a login's initgroups would, then setgid, then
//! setuid; root's supplementary groups are gone) and gives them its HOME; the run's directory
//! and the CI cache store belong to it. The server's own files (the store, the mirrors'
//! remotes' credentials) stay the server's.

use std::ffi::CString;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

/// Variables of the server's environment that are the server's own session, never a job's:
/// its SSH agent (which may hold deploy keys the job user was not given), its runtime and
/// config dirs.
const SERVER_SESSION_VARS: &[&str] = &[
    "SSH_AUTH_SOCK",
    "SSH_AGENT_PID",
    "XDG_RUNTIME_DIR",
    "XDG_CONFIG_HOME",
    "XDG_CACHE_HOME",
    "XDG_DATA_HOME",
    "XDG_STATE_HOME",
    "DBUS_SESSION_BUS_ADDRESS",
    "MAIL",
    "PWD",
    "OLDPWD",
    "HOIST_SERVER_CONFIG",
];

/// The account jobs run as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobUser {
    /// Its login name.
    pub name: String,
    /// Its uid.
    pub uid: u32,
    /// Its primary group.
    pub gid: u32,
    /// Every group it is in, the primary one included: its supplementary groups from the
    /// group database (`getgrouplist`, so NSS sources count too), which jobs get as a login does.
    pub groups: Vec<u32>,
    /// Its home directory (the jobs' HOME).
    pub home: String,
}

impl JobUser {
    /// Looks `name` up in the system's user database (`getent passwd`, so that users from NSS
    /// sources count as well as `/etc/passwd`'s).
    ///
    /// # Errors
    ///
    /// When there is no such user.
    pub fn lookup(name: &str) -> Result<JobUser, String> {
        let out = Command::new("getent")
            .args(["passwd", name])
            .output()
            .map_err(|e| format!("cannot run getent to look the user up: {e}"))?;
        let line = String::from_utf8_lossy(&out.stdout);
        let fields: Vec<&str> = line.trim_end().split(':').collect();
        if !out.status.success() || fields.len() < 7 || fields[0] != name {
            return Err(format!("there is no user {name:?} on this machine"));
        }
        let number = |i: usize| {
            fields[i]
                .parse::<u32>()
                .map_err(|_| format!("user {name:?} has no usable uid/gid"))
        };
        let gid = number(3)?;
        Ok(JobUser {
            name: name.to_string(),
            uid: number(2)?,
            gid,
            groups: group_list(name, gid)?,
            home: fields[5].to_string(),
        })
    }

    /// True when jobs would run as root.
    #[must_use]
    pub fn is_root(&self) -> bool {
        self.uid == 0
    }

    /// Makes `cmd` run as this user: its groups, gid and uid, its HOME, USER and LOGNAME, and
    /// none of the server's session variables. (The server's secrets are already gone from the
    /// environment every child inherits: see `read_secrets`.)
    #[allow(
        unsafe_code,
        reason = "std's CommandExt::groups is unstable: the groups are set in pre_exec"
    )]
    pub fn apply(&self, cmd: &mut Command) {
        use std::os::unix::process::CommandExt;
        if rustix::process::geteuid().as_raw() != self.uid {
            // Not `cmd.uid/gid`: std would switch before the closure runs, and then setgroups
            // is no longer allowed.
            let (uid, gid, groups) = (self.uid, self.gid, self.groups.clone());
            // SAFETY: the closure runs in the child between fork and exec, where only
            // async-signal-safe calls are sound. setgroups, setgid and setuid are plain
            // syscalls; the closure allocates nothing (the group list was built before the
            // fork and is only read) and takes no lock.
            unsafe {
                cmd.pre_exec(move || {
                    if libc::setgroups(groups.len(), groups.as_ptr()) != 0
                        || libc::setgid(gid) != 0
                        || libc::setuid(uid) != 0
                    {
                        return Err(std::io::Error::last_os_error());
                    }
                    Ok(())
                });
            }
        }
        for var in SERVER_SESSION_VARS {
            cmd.env_remove(var);
        }
        cmd.env("HOME", &self.home)
            .env("USER", &self.name)
            .env("LOGNAME", &self.name);
    }

    /// Makes `dir` (created when missing) this user's, mode 0700; with `recursive`, everything
    /// in it too when the directory itself is not the user's yet (a cache written before the
    /// server was told to switch users).
    ///
    /// # Errors
    ///
    /// When it cannot be created or given away.
    pub fn own_dir(&self, dir: &Path, recursive: bool) -> Result<(), String> {
        let fail =
            |e: std::io::Error| format!("cannot give {} to {}: {e}", dir.display(), self.name);
        std::fs::create_dir_all(dir).map_err(fail)?;
        let meta = std::fs::metadata(dir).map_err(fail)?;
        use std::os::unix::fs::MetadataExt;
        if meta.uid() != self.uid && recursive {
            chown_tree(dir, self.uid, self.gid).map_err(fail)?;
        }
        std::os::unix::fs::chown(dir, Some(self.uid), Some(self.gid)).map_err(fail)?;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).map_err(fail)
    }
}

/// The groups `name` (whose primary group is `gid`) is in, as initgroups would set them.
#[allow(unsafe_code, reason = "getgrouplist has no safe binding")]
fn group_list(name: &str, gid: u32) -> Result<Vec<u32>, String> {
    let c_name = CString::new(name).map_err(|_| format!("user {name:?} has a NUL in its name"))?;
    let mut groups: Vec<libc::gid_t> = vec![0; 32];
    loop {
        let mut count = libc::c_int::try_from(groups.len()).unwrap_or(libc::c_int::MAX);
        // SAFETY: `c_name` is a NUL-terminated string, and `groups` has room for the `count`
        // entries getgrouplist may write; it writes the number it needs to `count`.
        let found =
            unsafe { libc::getgrouplist(c_name.as_ptr(), gid, groups.as_mut_ptr(), &mut count) };
        let count = usize::try_from(count).unwrap_or(0);
        if found >= 0 {
            groups.truncate(count);
            return Ok(groups);
        }
        if groups.len() >= 1 << 16 {
            return Err(format!("cannot list the groups of user {name:?}"));
        }
        // Too small: `count` is how many there are (glibc); grow at least twofold otherwise.
        groups.resize(count.max(groups.len() * 2), 0);
    }
}

fn chown_tree(dir: &Path, uid: u32, gid: u32) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let path = entry.path();
        std::os::unix::fs::lchown(&path, Some(uid), Some(gid))?;
        if entry.file_type()?.is_dir() {
            chown_tree(&path, uid, gid)?;
        }
    }
    Ok(())
}

/// Closes the data dir to the job user where it holds the server's own files: the data dir
/// itself may be traversed (to reach the run directories and the cache) but not listed, and a
/// SQLite store is readable by the server alone.
///
/// # Errors
///
/// When the modes cannot be set.
pub fn close_data_dir(data_dir: &Path) -> Result<(), String> {
    let set = |path: &Path, mode: u32| {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
            .map_err(|e| format!("cannot set the mode of {}: {e}", path.display()))
    };
    set(data_dir, 0o711)?;
    let runs = data_dir.join("runs");
    std::fs::create_dir_all(&runs).map_err(|e| format!("cannot create {}: {e}", runs.display()))?;
    set(&runs, 0o711)
}

/// Makes a SQLite store file (and its WAL and shared-memory files, which SQLite creates with
/// the database's mode) readable by the server's user alone.
///
/// # Errors
///
/// When a mode cannot be set.
pub fn close_sqlite_file(database: &str) -> Result<(), String> {
    let Some(path) = database.strip_prefix("sqlite://") else {
        return Ok(());
    };
    let path = path.split('?').next().unwrap_or(path);
    for suffix in ["", "-wal", "-shm"] {
        let file = format!("{path}{suffix}");
        if Path::new(&file).exists() {
            std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600))
                .map_err(|e| format!("cannot set the mode of {file}: {e}"))?;
        }
    }
    Ok(())
}
