//! Which tool installs the requirements: uv when the host has it, else venv + pip.

use std::fmt;
use std::str::FromStr;

use hoist_transport::{Cmd, Output, Transport};
use serde::{Deserialize, Serialize};

use crate::error::PyenvError;
use crate::interpreter::Interpreter;

/// The installer that builds environments, with the version that goes into the dep-key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "name", rename_all = "lowercase")]
pub enum Installer {
    /// `uv venv` + `uv pip install`, the `uv` on the host's `PATH`.
    Uv { version: String },
    /// `python -m venv` + the pip that venv bundles (`ensurepip`), whose version this is.
    Pip { version: String },
}

impl Installer {
    /// `uv` or `pip`.
    pub fn name(&self) -> &'static str {
        match self {
            Installer::Uv { .. } => "uv",
            Installer::Pip { .. } => "pip",
        }
    }

    /// The installer's version, e.g. `0.4.30` or `23.2.1`.
    pub fn version(&self) -> &str {
        match self {
            Installer::Uv { version } | Installer::Pip { version } => version,
        }
    }
}

impl fmt::Display for Installer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.name(), self.version())
    }
}

/// What the configuration asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum InstallerChoice {
    /// uv when `uv --version` works on the host, pip otherwise.
    #[default]
    Auto,
    /// uv, and an error when the host has none.
    Uv,
    /// `python -m venv` + pip, even when uv is there.
    Pip,
}

impl FromStr for InstallerChoice {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "auto" => Ok(InstallerChoice::Auto),
            "uv" => Ok(InstallerChoice::Uv),
            "pip" => Ok(InstallerChoice::Pip),
            other => Err(format!(
                "unknown installer {other:?}; expected one of auto, uv, pip"
            )),
        }
    }
}

/// Finds the installer on the host: for uv, `uv --version`; for pip, the pip that `python -m
/// venv` will put into a new environment (`ensurepip.version()`), since that pip is the one
/// that installs.
pub fn probe_installer(
    transport: &dyn Transport,
    interpreter: &Interpreter,
    choice: InstallerChoice,
) -> Result<Installer, PyenvError> {
    match choice {
        InstallerChoice::Uv => probe_uv(transport),
        InstallerChoice::Pip => probe_pip(transport, interpreter),
        InstallerChoice::Auto => match probe_uv(transport) {
            Ok(uv) => Ok(uv),
            Err(PyenvError::UvNotFound { .. }) => probe_pip(transport, interpreter),
            Err(e) => Err(e),
        },
    }
}

fn probe_uv(transport: &dyn Transport) -> Result<Installer, PyenvError> {
    let not_found = |output: String| PyenvError::UvNotFound {
        host: transport.host().to_string(),
        output,
    };
    // A transport that cannot start `uv` at all (not on PATH) is the same answer as a
    // failing `uv --version`: this host has no usable uv.
    let out = transport
        .exec(&Cmd::new("uv").arg("--version"))
        .map_err(|_| not_found(String::new()))?;
    uv_from(transport, &out)
}

/// What the output of `uv --version` says.
pub(crate) fn uv_from(transport: &dyn Transport, out: &Output) -> Result<Installer, PyenvError> {
    let not_found = |output: String| PyenvError::UvNotFound {
        host: transport.host().to_string(),
        output,
    };
    // 127: the shell's "uv: not found", which the message says already.
    if out.status == 127 {
        return Err(not_found(String::new()));
    }
    if !out.success() {
        return Err(not_found(out.tail(3)));
    }
    // `uv 0.4.30 (61ed2a236 2024-11-04)`
    let text = out.stdout_text();
    match text.split_whitespace().collect::<Vec<_>>().as_slice() {
        ["uv", version, ..] => Ok(Installer::Uv {
            version: (*version).to_string(),
        }),
        _ => Err(not_found(out.tail(3))),
    }
}

pub(crate) fn probe_pip(
    transport: &dyn Transport,
    interpreter: &Interpreter,
) -> Result<Installer, PyenvError> {
    let out = transport.exec(
        &Cmd::new(&interpreter.executable)
            .arg("-c")
            .arg("import ensurepip, venv; print(ensurepip.version())"),
    )?;
    let version = out.stdout_text().trim().to_string();
    if !out.success() || version.is_empty() {
        return Err(PyenvError::PipUnavailable {
            host: transport.host().to_string(),
            python: interpreter.executable.clone(),
            output: out.tail(5),
        });
    }
    Ok(Installer::Pip { version })
}
