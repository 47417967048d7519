//! The interpreter and installer probes, remembered on the host between deploys.
//!
//! Starting Python and uv to ask their versions costs about 0.2 s on every deploy (more on a
//! busy host), for answers that change only when a package upgrade replaces the binaries. The
//! answers are kept in a file on the host with the identity of the two binaries (device,
//! inode, modification and change times to the nanosecond, and size of what `command -v`
//! finds, symlinks followed): a new binary, even at the same path, is probed again. A command
//! that is not a binary of its own (a pyenv or asdf shim, a `#!` script whose answer depends on
//! where it runs and which binary it runs) is probed every time; then the interpreter and uv
//! are asked side by side. Except a pyenv shim whose version hoist can read as pyenv does
//! (`PYENV_PICK!`): its answers are remembered with that version's binaries and the version's
//! name, once the shim has been seen to run that binary.

use std::path::Path;

use hoist_transport::{Cmd, Output, Transport};
use serde::{Deserialize, Serialize};

use crate::error::PyenvError;
use crate::installer::{probe_installer, probe_pip, uv_from, Installer, InstallerChoice};
use crate::interpreter::{interpreter_from, probe_interpreter, Interpreter, PROBE};

/// Sets `b` to the binary that pyenv shim `$p` runs for `$1`, `v` to its version, without
/// starting pyenv (a bash start and ~40 processes): as pyenv picks it, from `$PYENV_VERSION`,
/// else the first `.python-version` from the working directory up, else
/// `$PYENV_ROOT/version`, each read as pyenv reads it. `b` stays empty where the answer is not
/// that simple (not pyenv's shim, `$PYENV_DIR` set, no version or more than one, `system`, a
/// version that is not a directory of its own, no such command in it): the shim is then
/// started, as every time before. What the shim did run is compared with `b` before the
/// answer is remembered ([`probe_python`]).
macro_rules! PYENV_PICK {
    () => {
        concat!(
            r#"  b= r= x=
  while IFS= read -r l; do
    case $l in
      'export PYENV_ROOT="'*'"') r=${l#*\"}; r=${r%\"} ;;
      'exec "'*'/libexec/pyenv" exec "$program" "$@"') x=1 ;;
    esac
  done < "$p"
  if [ -n "$r" ] && [ -n "$x" ] && [ "${p%/*}" = "$r/shims" ] && [ -z "${PYENV_DIR-}" ]; then
    v=${PYENV_VERSION-}
    if [ -z "$v" ]; then
      d=$PWD f=
      while :; do
        if [ -f "$d/.python-version" ]; then f=$d/.python-version; break; fi
        [ -n "$d" ] || break
        d=${d%/*}
      done
      [ -n "$f" ] || f=$r/version
      n=0 ws=" "#,
            // pyenv splits a version file's lines at spaces, tabs and carriage returns.
            "\t\r",
            r#""
      if [ -f "$f" ]; then
        while IFS="$ws" read -r w _ || [ -n "$w" ]; do
          case $w in ''|'#'*|..|*/*) continue ;; esac
          v=$w n=$((n + 1))
        done < "$f"
      fi
      [ "$n" = 1 ] || v=
    fi
    case $v in ''|system|*:*|*/*|.|..) ;; *)
      c=$r/versions/$v/bin/${p##*/}
      [ -d "$r/versions/$v" ] && [ -f "$c" ] && [ -x "$c" ] && b=$c ;;
    esac
  fi"#
        )
    };
}

/// Prints `key <identity>` for interpreter command `$1` and the `uv` on PATH (unless `$3` is
/// `pip`, which does not ask uv), then the cache file `$2`, or nothing when the answers cannot
/// be cached (a missing interpreter, not a path, a script, a `stat` that cannot say it all).
/// An interpreter that is a script with a uv that is a script in the same directory (shims of
/// one version manager) is `shims`, unless it is a pyenv shim whose version can be told
/// without starting it (`PYENV_PICK!`): then the key is the version's binaries', after a
/// line `runs <the interpreter binary>`, and the cache file.
const KEY: &str = concat!(
    r#"p=$(command -v "$1" 2>/dev/null) || exit 0
case $p in /*) ;; *) exit 0 ;; esac
k=
if [ "$(head -c 2 "$p" 2>/dev/null)" = '#!' ]; then
"#,
    PYENV_PICK!(),
    r#"
  if [ -z "$b" ]; then
    [ "$3" = pip ] && exit 0
    u=$(command -v uv 2>/dev/null) || exit 0
    [ "${u%/*}" = "${p%/*}" ] && [ "$(head -c 2 "$u" 2>/dev/null)" = '#!' ] && echo shims
    exit 0
  fi
  printf 'runs %s\n' "$b"
  k="pyenv $v "
  p=$b
  [ "$(head -c 2 "$p" 2>/dev/null)" = '#!' ] && exit 0
fi
pi=$(stat -L -c '%d:%i:%.9Y:%.9Z:%s' "$p" 2>/dev/null) && [ -n "$pi" ] || exit 0
u=
if [ "$3" != pip ]; then
  if [ -n "$k" ]; then u=${p%/*}/uv; [ -f "$u" ] && [ -x "$u" ] || exit 0
  else u=$(command -v uv 2>/dev/null); fi
fi
case $u in /*) ;; *) u= ;; esac
[ -n "$u" ] && [ "$(head -c 2 "$u" 2>/dev/null)" = '#!' ] && exit 0
ui=
[ -z "$u" ] || ui=$(stat -L -c '%d:%i:%.9Y:%.9Z:%s' "$u" 2>/dev/null) || exit 0
printf 'key %s%s %s uv %s %s\n' "$k" "$p" "$pi" "$u" "$ui"
cat -- "$2" 2>/dev/null
exit 0"#
);

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
            .brief()
            .arg("-c")
            .arg(KEY)
            .arg("hoist-probe")
            .arg(python)
            .path_arg(cache)
            .arg(if choice == InstallerChoice::Pip {
                "pip"
            } else {
                "uv"
            }),
    )?;
    let text = out.stdout_text();
    let mut lines = text.splitn(3, '\n').peekable();
    // A pyenv shim whose binary `PYENV_PICK!` found: remembered only if the shim runs it.
    let runs = lines
        .next_if(|l| l.starts_with("runs "))
        .map(|l| l["runs ".len()..].to_string());
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
    let shims = runs.is_some() || text.starts_with("shims\n");
    let (interpreter, installer) = match choice {
        InstallerChoice::Auto | InstallerChoice::Uv if shims => {
            probe_beside(transport, python, choice)?
        }
        InstallerChoice::Pip => {
            let interpreter = probe_interpreter(transport, python)?;
            let installer = probe_installer(transport, &interpreter, choice)?;
            (interpreter, installer)
        }
        InstallerChoice::Auto | InstallerChoice::Uv => probe_with_uv(transport, python, choice)?,
    };
    let key = key.filter(|_| runs.is_none_or(|binary| binary == interpreter.executable));
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

/// `$1` the interpreter command, `$2` its probe (run with `-S`, as [`probe_interpreter`] runs
/// it), `$3` a marker: runs the probe with `uv --version` beside it (on a host whose `python3`
/// and `uv` are pyenv shims, each costs a bash start of its own: 0.06-0.1 s). Prints the probe's output, a line `$3`, uv's output and a
/// line `$3 <uv's status>`; exits with the probe's status. Exit 98, having run nothing, when no
/// temporary file can be made.
const BOTH: &str = r#"u=$(mktemp 2>/dev/null) || exit 98
{ uv --version; printf '%s %s\n' "$3" "$?"; } >"$u" 2>&1 </dev/null &
"$1" -S -c "$2"
r=$?
wait
printf '\n%s\n' "$3"
cat -- "$u"
rm -f -- "$u"
exit $r"#;

/// [`probe_interpreter`] and [`probe_installer`] for a choice that asks uv, the two at once.
/// Falls back to one after the other when the host cannot run them side by side.
fn probe_with_uv(
    transport: &dyn Transport,
    python: &str,
    choice: InstallerChoice,
) -> Result<(Interpreter, Installer), PyenvError> {
    let marker = format!("HOIST-UV-PROBE-{}", std::process::id());
    let out = transport.exec(
        &Cmd::new("sh")
            .arg("-c")
            .arg(BOTH)
            .arg("hoist-probe")
            .arg(python)
            .arg(PROBE)
            .arg(&marker),
    )?;
    let Some((python_out, uv_out)) = split_both(&out, &marker) else {
        let interpreter = probe_interpreter(transport, python)?;
        let installer = probe_installer(transport, &interpreter, choice)?;
        return Ok((interpreter, installer));
    };
    let interpreter = interpreter_from(transport, python, &python_out)?;
    let installer = installer_from(transport, &interpreter, &uv_out, choice)?;
    Ok((interpreter, installer))
}

/// The installer `uv --version`'s output `uv_out` says, for `choice`: with `auto`, pip when
/// there is no uv.
fn installer_from(
    transport: &dyn Transport,
    interpreter: &Interpreter,
    uv_out: &Output,
    choice: InstallerChoice,
) -> Result<Installer, PyenvError> {
    match (uv_from(transport, uv_out), choice) {
        (Err(PyenvError::UvNotFound { .. }), InstallerChoice::Auto) => {
            probe_pip(transport, interpreter)
        }
        (answer, _) => answer,
    }
}

/// `uv --version` of the uv in directory `$1` when there is one, else of the uv on PATH.
const UV_BESIDE: &str = r#"u="$1/uv"
if [ -f "$u" ] && [ -x "$u" ]; then exec "$u" --version; fi
exec uv --version"#;

/// [`probe_interpreter`] and [`probe_installer`] where the interpreter and uv commands are
/// shims of one version manager (pyenv, asdf), which run the interpreter and the uv of the
/// version it picks (in one directory): the interpreter's shim is started, and the uv beside
/// the interpreter it ran is asked, not the uv's shim (each shim starts the manager's own
/// scripts: ~70 ms of CPU a shim here). With no uv there, the uv shim is asked. One case
/// answers otherwise: pyenv's `system` version, whose uv shim runs the first uv on PATH, not
/// the one beside the system interpreter, if both exist.
fn probe_beside(
    transport: &dyn Transport,
    python: &str,
    choice: InstallerChoice,
) -> Result<(Interpreter, Installer), PyenvError> {
    let interpreter = probe_interpreter(transport, python)?;
    let dir = Path::new(&interpreter.executable)
        .parent()
        .unwrap_or(Path::new("/"));
    let out = transport.exec(
        &Cmd::new("sh")
            .arg("-c")
            .arg(UV_BESIDE)
            .arg("hoist-probe")
            .path_arg(dir),
    )?;
    let installer = installer_from(transport, &interpreter, &out, choice)?;
    Ok((interpreter, installer))
}

/// The probe's output and uv's, as each would have been run alone; `None` when [`BOTH`] did
/// not run them.
fn split_both(out: &Output, marker: &str) -> Option<(Output, Output)> {
    let stdout = out.stdout_text();
    let (probe, uv) = stdout.rsplit_once(&format!("\n{marker}\n"))?;
    let (uv_text, status) = uv
        .trim_end_matches('\n')
        .rsplit_once(&format!("{marker} "))?;
    let status = status.trim().parse().ok()?;
    Some((
        Output {
            status: out.status,
            stdout: probe.as_bytes().to_vec(),
            stderr: out.stderr.clone(),
        },
        Output {
            status,
            stdout: uv_text.as_bytes().to_vec(),
            stderr: Vec::new(),
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn output(status: i32, stdout: &str) -> Output {
        Output {
            status,
            stdout: stdout.as_bytes().to_vec(),
            stderr: b"warning".to_vec(),
        }
    }

    #[test]
    fn the_two_answers_are_told_apart() {
        let m = "HOIST-UV-PROBE-7";
        let (py, uv) = split_both(
            &output(0, &format!("{{\"v\": 1}}\n\n{m}\nuv 0.4.30 (x)\n{m} 0\n")),
            m,
        )
        .unwrap();
        assert_eq!((py.status, py.stdout_text().as_str()), (0, "{\"v\": 1}\n"));
        assert_eq!(py.stderr, b"warning");
        assert_eq!(
            (uv.status, uv.stdout_text().as_str()),
            (0, "uv 0.4.30 (x)\n")
        );

        // No uv, and an interpreter that printed without a newline and failed.
        let (py, uv) = split_both(
            &output(127, &format!("oops\n{m}\nsh: 1: uv: not found\n{m} 127\n")),
            m,
        )
        .unwrap();
        assert_eq!((py.status, py.stdout_text().as_str()), (127, "oops"));
        assert_eq!(uv.status, 127);
        assert_eq!(uv.stdout_text(), "sh: 1: uv: not found\n");

        // Nothing ran (no temporary file): the probes run one after the other.
        assert!(split_both(&output(98, ""), m).is_none());
    }
}
