//! A throwaway project directory with a hoist.toml, as a user would have it.

#![allow(dead_code)] // Each test binary uses a different part of this.

use std::path::{Path, PathBuf};

use hoist_config::{Config, ConfigError};

pub struct Project {
    dir: tempfile::TempDir,
}

impl Project {
    pub fn new() -> Self {
        Self {
            dir: tempfile::tempdir().expect("a temporary directory"),
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Writes `contents` to `relative`, creating folders as needed.
    pub fn file(&self, relative: &str, contents: &str) -> &Self {
        let path = self.path().join(relative);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, contents).unwrap();
        self
    }

    pub fn config_path(&self) -> PathBuf {
        self.path().join("hoist.toml")
    }

    /// Writes hoist.toml and loads it, as `hoist` does.
    pub fn load(&self, toml: &str) -> Result<Config, ConfigError> {
        self.file("hoist.toml", toml);
        hoist_config::load(&self.config_path())
    }

    /// Loads a config that must be valid.
    pub fn config(&self, toml: &str) -> Config {
        self.load(toml)
            .unwrap_or_else(|err| panic!("expected a valid config, got: {err}"))
    }

    /// Loads a config that must be refused.
    pub fn error(&self, toml: &str) -> ConfigError {
        match self.load(toml) {
            Ok(config) => panic!("expected an error, got a valid config: {config:?}"),
            Err(err) => err,
        }
    }

    /// The refusal as the user reads it, with the temporary directory shown as the bare file name.
    pub fn message(&self, toml: &str) -> String {
        let shown = self.error(toml).to_string();
        let full = self.config_path().display().to_string();
        assert!(
            shown.starts_with(&full),
            "{shown:?} should start with {full:?}"
        );
        shown.replacen(&full, "hoist.toml", 1)
    }
}

/// The smallest valid hoist.toml: [app] on lines 1-3, [release] on lines 5-6.
pub const MINIMAL: &str = r#"[app]
name = "example"
entry = "app:app"

[release]
root = "/srv/example"
"#;

/// MINIMAL followed by `extra`, which therefore starts on line 7.
pub fn minimal_with(extra: &str) -> String {
    format!("{MINIMAL}{extra}")
}
