//! The app's environment variables on a host. `[env]` (with the environment's own on top) and
//! `[app] installer_env` are resolved once on the controller — secrets read from its
//! environment or from files — and written on every host as `<root>/shared/env` and
//! `<root>/shared/installer-env`, mode 0600 from their creation, atomically. Hooks, the import
//! check and restart and health commands export `shared/env`; environment builds export
//! `shared/installer-env`. The values travel only inside those files: never on a command line,
//! in an event, the journal or RELEASE.json.

use std::path::{Path, PathBuf};

use hoist_config::{Config, EnvValue, EnvVar};
use hoist_transport::{shell_quote, Cmd, CommandLayer, Output, Transport, TransportError};

use crate::host::Host;
use crate::DeployError;

/// Resolved variables, values included. Deliberately not `Debug`: a value must not reach a
/// log line by accident.
pub(crate) struct ResolvedEnv {
    app: Vec<(String, String)>,
    installer: Vec<(String, String)>,
}

/// True when the config has app variables, so that `shared/env` is written and used.
pub(crate) fn uses_env_file(config: &Config) -> bool {
    !config.env.vars.is_empty() || config.env.per_environment.values().any(|v| !v.is_empty())
}

/// Reads every value for environment `environment`, refusing a secret that is missing or that
/// the release would ship.
pub(crate) fn resolve(
    config: &Config,
    environment: &str,
    shipped: &[PathBuf],
    source_dir: &Path,
) -> Result<ResolvedEnv, DeployError> {
    let app = config.env.for_environment(environment);
    Ok(ResolvedEnv {
        app: resolve_vars(&app, "[env]", shipped, source_dir)?,
        installer: resolve_vars(
            &config.env.installer,
            "[app] installer_env",
            shipped,
            source_dir,
        )?,
    })
}

fn resolve_vars(
    vars: &[EnvVar],
    table: &str,
    shipped: &[PathBuf],
    source_dir: &Path,
) -> Result<Vec<(String, String)>, DeployError> {
    vars.iter()
        .map(|var| {
            let value = match &var.value {
                EnvValue::Plain(text) => text.clone(),
                EnvValue::FromEnv(name) => std::env::var(name).map_err(|_| {
                    DeployError::config(format!(
                        "{table} {}: the variable {name} is not set on this machine (from_env)",
                        var.name
                    ))
                    .hint(format!(
                        "export {name}=... before running hoist; nothing was changed"
                    ))
                })?,
                EnvValue::FromFile(path) => {
                    read_secret_file(table, &var.name, path, shipped, source_dir)?
                }
            };
            if value.contains('\0') {
                return Err(DeployError::config(format!(
                    "{table} {}: the value contains a NUL character",
                    var.name
                )));
            }
            Ok((var.name.clone(), value))
        })
        .collect()
}

fn read_secret_file(
    table: &str,
    name: &str,
    path: &Path,
    shipped: &[PathBuf],
    source_dir: &Path,
) -> Result<String, DeployError> {
    if let Ok(relative) = path.strip_prefix(source_dir) {
        if shipped.iter().any(|f| f == relative) {
            return Err(DeployError::config(format!(
                "{table} {name}: the secret file {} is part of the app's files, so every release would carry it",
                path.display()
            ))
            .hint(format!(
                "keep it out of the release: add {} to .gitignore, .hoistignore or [app] exclude",
                relative.display()
            )));
        }
    }
    let text = std::fs::read_to_string(path).map_err(|e| {
        DeployError::config(format!(
            "{table} {name}: cannot read {} (from_file): {e}",
            path.display()
        ))
        .hint("nothing was changed")
    })?;
    Ok(text
        .strip_suffix('\n')
        .map(|t| t.strip_suffix('\r').unwrap_or(t))
        .unwrap_or(&text)
        .to_string())
}

/// The file's text: one `NAME=value` line per variable, the value quoted for a POSIX shell.
fn render(vars: &[(String, String)]) -> String {
    let mut text = String::from(
        "# Written by `hoist deploy` from hoist.toml's [env]; the next deploy rewrites it.\n",
    );
    for (name, value) in vars {
        text.push_str(name);
        text.push('=');
        text.push_str(&shell_quote(value));
        text.push('\n');
    }
    text
}

/// Writes `shared/env` (when the config has app variables) and `shared/installer-env` (when it
/// has installer variables) on `host`.
pub(crate) fn write(config: &Config, host: &Host, env: &ResolvedEnv) -> Result<(), DeployError> {
    let transport = host.transport();
    let layout = &host.layout;
    if uses_env_file(config) {
        transport.create_dir_all(&layout.shared())?;
        transport.write_private_file_atomic(&layout.env_file(), render(&env.app).as_bytes())?;
    }
    if !env.installer.is_empty() {
        transport.create_dir_all(&layout.shared())?;
        transport.write_private_file_atomic(
            &layout.installer_env_file(),
            render(&env.installer).as_bytes(),
        )?;
    }
    Ok(())
}

/// `host`'s transport with every command run with the app's `shared/env` exported, when the
/// config has app variables; else the transport itself.
pub(crate) fn app_transport<'a>(config: &Config, host: &'a Host) -> WithEnvFile<'a> {
    WithEnvFile {
        inner: host.transport(),
        file: uses_env_file(config).then(|| host.layout.env_file()),
    }
}

/// `host`'s transport with `shared/installer-env` exported when the config has installer
/// variables.
pub(crate) fn installer_transport<'a>(config: &Config, host: &'a Host) -> WithEnvFile<'a> {
    WithEnvFile {
        inner: host.transport(),
        file: (!config.env.installer.is_empty()).then(|| host.layout.installer_env_file()),
    }
}

/// A transport whose commands run with the variables of an environment file exported.
pub(crate) struct WithEnvFile<'a> {
    inner: &'a dyn Transport,
    file: Option<PathBuf>,
}

impl WithEnvFile<'_> {
    /// `cmd`, with the file's variables when there is a file.
    pub(crate) fn command(&self, cmd: Cmd) -> Cmd {
        match &self.file {
            Some(file) => cmd.with_env_file(file),
            None => cmd,
        }
    }
}

impl CommandLayer for WithEnvFile<'_> {
    fn inner(&self) -> &dyn Transport {
        self.inner
    }
    fn layer_exec(&self, cmd: &Cmd) -> Result<Output, TransportError> {
        self.inner.exec(&self.command(cmd.clone()))
    }
    fn layer_exec_streaming(
        &self,
        cmd: &Cmd,
        on_line: hoist_transport::LineSink<'_>,
    ) -> Result<Output, TransportError> {
        self.inner
            .exec_streaming(&self.command(cmd.clone()), on_line)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_file_is_shell_syntax_with_every_value_quoted() {
        let text = render(&[
            ("PLAIN".into(), "production".into()),
            ("SPACED".into(), "a b $HOME `id` \"q\"".into()),
            ("QUOTE".into(), "it's".into()),
        ]);
        assert_eq!(
            text.lines().skip(1).collect::<Vec<_>>(),
            [
                "PLAIN=production",
                "SPACED='a b $HOME `id` \"q\"'",
                "QUOTE='it'\\''s'",
            ]
        );
        let out = std::process::Command::new("bash")
            .args([
                "-c",
                "set -a; eval \"$1\"; set +a; printf '%s|' \"$PLAIN\" \"$SPACED\" \"$QUOTE\"",
                "-",
                &text,
            ])
            .output()
            .unwrap();
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            "production|a b $HOME `id` \"q\"|it's|"
        );
    }
}
