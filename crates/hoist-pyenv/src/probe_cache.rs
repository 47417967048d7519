//! The interpreter and installer probes, remembered on the host between deploys.
//!
//! Starting Python and uv to ask their versions costs about 0.2 s on every deploy (more on a
//! busy host), for answers that change only when a package upgrade replaces the binaries. The
//! answers are kept in a file on the host with the identity of the two binaries (device,
//! inode, modification and change times to the nanosecond, and size of what `command -v`
//! finds, symlinks followed): a new binary, even at the same path, is probed again. A command that is not a binary of its own
//! (a pyenv or asdf shim, a `#!` script whose answer depends on where it runs) is probed every
//! time.

use std::path::Path;

use hoist_transport::{Cmd, Transport};
use serde::{Deserialize, Serialize};

use crate::error::PyenvError;
use crate::installer::{probe_installer, Installer, InstallerChoice};
use crate::interpreter::{probe_interpreter, Interpreter};

/// Prints `key <identity>` for interpreter command `$1` and the `uv` on PATH, then the cache
/// file `$2`, or nothing when the interpreter cannot be cached (missing, not a path, a script,
/// a `stat` that cannot say it all).
const KEY: &str = r#"p=$(command -v "$1" 2>/dev/null) || exit 0
case $p in /*) ;; *) exit 0 ;; esac
[ "$(head -c 2 "$p" 2>/dev/null)" = '#!' ] && exit 0
pi=$(stat -L -c '%d:%i:%.9Y:%.9Z:%s' "$p" 2>/dev/null) && [ -n "$pi" ] || exit 0
u=$(command -v uv 2>/dev/null)
case $u in /*) ui=$(stat -L -c '%d:%i:%.9Y:%.9Z:%s' "$u" 2>/dev/null) || exit 0 ;; *) u= ui= ;; esac
printf 'key %s %s uv %s %s\n' "$p" "$pi" "$u" "$ui"
cat -- "$2" 2>/dev/null
exit 0"#;

#[derive(Serialize, Deserialize)]
struct Cached {
    key: String,
    interpreter: Interpreter,
    installer: Installer,
}

/// [`probe_interpreter`] and [`probe_installer`], answered from `cache` (a file on the host)
/// when neither binary changed since they were last asked, and remembered there otherwise when
/// `remember` (not when nothing may change on the host, as for `hoist deploy --plan`). A cache
/// that cannot be written only means the next deploy probes again.
pub fn probe_python(
    transport: &dyn Transport,
    python: &str,
    choice: InstallerChoice,
    cache: &Path,
    remember: bool,
) -> Result<(Interpreter, Installer), PyenvError> {
    let out = transport.exec(
        &Cmd::new("sh")
            .arg("-c")
            .arg(KEY)
            .arg("hoist-probe")
            .arg(python)
            .path_arg(cache),
    )?;
    let text = out.stdout_text();
    let mut lines = text.splitn(2, '\n');
    let key = lines
        .next()
        .and_then(|l| l.strip_prefix("key "))
        .map(|identity| format!("{python} {choice:?} {identity}"));
    if let Some(key) = &key {
        let cached = lines
            .next()
            .and_then(|json| serde_json::from_str::<Cached>(json.trim()).ok());
        if let Some(hit) = cached.filter(|c| &c.key == key) {
            return Ok((hit.interpreter, hit.installer));
        }
    }
    let interpreter = probe_interpreter(transport, python)?;
    let installer = probe_installer(transport, &interpreter, choice)?;
    if let Some(key) = key.filter(|_| remember) {
        let record = Cached {
            key,
            interpreter: interpreter.clone(),
            installer: installer.clone(),
        };
        if let Ok(json) = serde_json::to_vec(&record) {
            let _ = transport.write_file_atomic(cache, &json);
        }
    }
    Ok((interpreter, installer))
}
