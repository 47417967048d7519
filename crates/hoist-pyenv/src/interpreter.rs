//! What Python the host has.

use std::io::ErrorKind;

use hoist_transport::{Cmd, Output, Transport, TransportError};
use serde::{Deserialize, Serialize};

use crate::error::PyenvError;

/// Prints one JSON line describing the interpreter. Only the standard library, and nothing
/// that Python 3.6 lacks, so an old interpreter still gets a clear answer.
pub(crate) const PROBE: &str = "import json, platform, sys\n\
print(json.dumps({'version': platform.python_version(), \
'implementation': sys.implementation.name, 'platform': sys.platform, \
'machine': platform.machine(), 'abiflags': getattr(sys, 'abiflags', ''), \
'executable': sys.executable}))";

/// How [`PROBE`] is run: `-S`, without the `site` module, which the answer does not depend on
/// and which costs the most of a start on an interpreter with many packages (`.pth` files):
/// 40 → 20 ms here (medians of 9).
pub(crate) const PROBE_FLAGS: [&str; 2] = ["-S", "-c"];

/// What the host's interpreter is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Interpreter {
    /// The command as configured (`python3`, `/opt/py/bin/python3.12`).
    pub command: String,
    /// The absolute `sys.executable` it resolved to; venvs are built from this.
    pub executable: String,
    /// `platform.python_version()`, e.g. `3.11.7`.
    pub version: String,
    /// `<implementation>-<sys.platform>-<machine>`, plus `-<abiflags>` when there are any
    /// (a free-threaded `t` build needs other wheels), e.g. `cpython-linux-x86_64`.
    pub platform: String,
}

#[derive(Deserialize)]
struct ProbeOutput {
    version: String,
    implementation: String,
    platform: String,
    machine: String,
    abiflags: String,
    executable: String,
}

/// Runs `python -c` on the host to learn its version, implementation, `sys.platform`,
/// `platform.machine()` and absolute `sys.executable`. A missing interpreter is
/// [`PyenvError::InterpreterNotFound`].
pub fn probe_interpreter(
    transport: &dyn Transport,
    python: &str,
) -> Result<Interpreter, PyenvError> {
    let not_found = || PyenvError::InterpreterNotFound {
        host: transport.host().to_string(),
        python: python.to_string(),
    };
    let out = match transport.exec(&Cmd::new(python).args(PROBE_FLAGS).arg(PROBE)) {
        Ok(out) => out,
        Err(TransportError::Spawn { source, .. }) if source.kind() == ErrorKind::NotFound => {
            return Err(not_found())
        }
        Err(e) => return Err(e.into()),
    };
    interpreter_from(transport, python, &out)
}

/// What the output of [`PROBE`] run with `python` says (or why it says nothing).
pub(crate) fn interpreter_from(
    transport: &dyn Transport,
    python: &str,
    out: &Output,
) -> Result<Interpreter, PyenvError> {
    let not_found = || PyenvError::InterpreterNotFound {
        host: transport.host().to_string(),
        python: python.to_string(),
    };
    // 127 is a shell's (or a pyenv shim's) "command not found".
    if out.status == 127 {
        return Err(not_found());
    }
    let broken = || PyenvError::InterpreterBroken {
        host: transport.host().to_string(),
        python: python.to_string(),
        output: out.tail(10),
    };
    if !out.success() {
        return Err(broken());
    }
    let stdout = out.stdout_text();
    let line = stdout.lines().last().unwrap_or_default();
    let probe: ProbeOutput = serde_json::from_str(line).map_err(|_| broken())?;
    if !probe.executable.starts_with('/') {
        return Err(broken());
    }
    let mut platform = format!(
        "{}-{}-{}",
        probe.implementation, probe.platform, probe.machine
    );
    if !probe.abiflags.is_empty() {
        platform.push('-');
        platform.push_str(&probe.abiflags);
    }
    Ok(Interpreter {
        command: python.to_string(),
        executable: probe.executable,
        version: probe.version,
        platform,
    })
}
