//! Reading a `pdm.lock` without PDM: the packages of the `default` group (and the chosen
//! groups and extras, which PDM locks as groups of their own) with their versions, markers and
//! hashes, as pip's requirements format.

use std::collections::BTreeMap;

use toml::Value;

use crate::dependencies::Selection;
use crate::locked::Locked;
use crate::poetry_lock::normalize;

/// The locked requirements, one `name[extras]==version ; marker --hash=...` line each, sorted
/// by name. Needs a lock that records each package's groups (PDM's `inherit_metadata`
/// strategy, the default since lock version 4.4.1). The error says what is wrong, without the
/// file name.
pub(crate) fn export(text: &str, selection: &Selection) -> Result<String, String> {
    let doc: Value = toml::from_str(text).map_err(|e| format!("not valid TOML: {e}"))?;
    let metadata = doc.get("metadata");
    let version = metadata
        .and_then(|m| m.get("lock_version"))
        .and_then(Value::as_str)
        .unwrap_or("unknown");
    let locked: Vec<&str> = metadata
        .and_then(|m| m.get("groups"))
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    let mut wanted = vec!["default".to_string()];
    for name in selection.extras.iter().chain(&selection.groups) {
        if !locked.contains(&name.as_str()) {
            return Err(format!(
                "the lock has no group {name:?} (locked: {}); run `pdm lock -G {name}`",
                locked.join(", ")
            ));
        }
        wanted.push(name.clone());
    }

    // A package with extras is locked once plainly and once per set of extras (`name` and
    // `extras`), with the same version and files: one line, the extras merged.
    let mut pins: BTreeMap<String, Locked> = BTreeMap::new();
    for package in doc
        .get("package")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let field = |key: &str| package.get(key).and_then(Value::as_str);
        let strings = |key: &str| {
            package
                .get(key)
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
        };
        let name = field("name").ok_or("a [[package]] without a name")?;
        if package.get("groups").is_none() {
            return Err(format!(
                "lock version {version} does not record which group each package belongs to \
                 (package {name}); run `pdm lock --strategy inherit_metadata`"
            ));
        }
        if !strings("groups").any(|g| wanted.iter().any(|w| w == g)) {
            continue;
        }
        for source in ["path", "git", "url"] {
            if package.get(source).is_some() {
                return Err(format!(
                    "package {name} is locked from a {source}; hoist installs locked packages \
                     from a package index only"
                ));
            }
        }
        let version = field("version").ok_or(format!("package {name} has no version"))?;
        let pin = pins.entry(normalize(name)).or_insert_with(|| Locked {
            name: name.to_string(),
            version: version.to_string(),
            ..Locked::default()
        });
        pin.extras.extend(strings("extras").map(str::to_string));
        if let Some(marker) = field("marker") {
            pin.marker = Some(marker.to_string());
        }
        pin.hashes.extend(
            package
                .get("files")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(|f| f.get("hash").and_then(Value::as_str))
                .map(str::to_string),
        );
    }
    Ok(pins.values().map(Locked::line).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOCK: &str = r#"
[metadata]
groups = ["default", "dev", "pg"]
strategy = ["inherit_metadata"]
lock_version = "4.5.0"

[[package]]
name = "six"
version = "1.16.0"
groups = ["default"]
files = [
    {file = "six-1.16.0.tar.gz", hash = "sha256:bbb"},
    {file = "six-1.16.0-py2.py3-none-any.whl", hash = "sha256:aaa"},
]

[[package]]
name = "colorama"
version = "0.4.6"
groups = ["default", "dev"]
marker = "sys_platform == \"win32\""
files = [{file = "colorama-0.4.6-py2.py3-none-any.whl", hash = "sha256:ccc"}]

[[package]]
name = "psycopg"
version = "3.2.1"
groups = ["pg"]
files = [{file = "psycopg-3.2.1-py3-none-any.whl", hash = "sha256:ddd"}]

[[package]]
name = "psycopg"
version = "3.2.1"
extras = ["binary"]
groups = ["pg"]
files = [{file = "psycopg-3.2.1-py3-none-any.whl", hash = "sha256:ddd"}]

[[package]]
name = "pytest"
version = "8.0.0"
groups = ["dev"]
files = [{file = "pytest-8.0.0-py3-none-any.whl", hash = "sha256:eee"}]
"#;

    #[test]
    fn the_default_group_with_markers_and_hashes() {
        assert_eq!(
            export(LOCK, &Selection::default()).unwrap(),
            "colorama==0.4.6 ; sys_platform == \"win32\" \\\n    --hash=sha256:ccc\n\
             six==1.16.0 \\\n    --hash=sha256:aaa \\\n    --hash=sha256:bbb\n"
        );
    }

    #[test]
    fn extras_and_groups_are_locked_groups_and_a_package_s_extras_merge() {
        let chosen = Selection {
            extras: vec!["pg".into()],
            groups: vec!["dev".into()],
        };
        let out = export(LOCK, &chosen).unwrap();
        assert!(out.contains("pytest==8.0.0 \\\n"), "{out}");
        assert!(
            out.contains("psycopg[binary]==3.2.1 \\\n    --hash=sha256:ddd\n"),
            "{out}"
        );
        assert_eq!(
            export(
                LOCK,
                &Selection {
                    extras: vec![],
                    groups: vec!["docs".into()],
                }
            )
            .unwrap_err(),
            "the lock has no group \"docs\" (locked: default, dev, pg); run `pdm lock -G docs`"
        );
    }

    #[test]
    fn locks_without_groups_and_path_sources_are_refused() {
        let old =
            "[metadata]\nlock_version = \"4.2\"\n[[package]]\nname = \"six\"\nversion = \"1\"\n";
        assert!(export(old, &Selection::default())
            .unwrap_err()
            .starts_with("lock version 4.2 does not record which group"));
        let path = "[[package]]\nname = \"lib\"\nversion = \"1\"\ngroups = [\"default\"]\npath = \"../lib\"\n";
        assert_eq!(
            export(path, &Selection::default()).unwrap_err(),
            "package lib is locked from a path; hoist installs locked packages from a package index only"
        );
    }
}
