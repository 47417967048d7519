//! Reading a `Pipfile.lock` without pipenv: the packages of `default` (and of the chosen
//! categories: `develop` for `dev`, or any other category pipenv locked) with their versions,
//! markers and hashes, as pip's requirements format.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::dependencies::Selection;
use crate::locked::Locked;
use crate::poetry_lock::normalize;

/// The locked requirements, one `name[extras]==version ; markers --hash=...` line each, sorted
/// by name. The error says what is wrong, without the file name.
pub(crate) fn export(text: &str, selection: &Selection) -> Result<String, String> {
    let doc: Value = serde_json::from_str(text).map_err(|e| format!("not valid JSON: {e}"))?;
    let doc = doc.as_object().ok_or("not a JSON object")?;
    if !selection.extras.is_empty() {
        return Err(format!(
            "a Pipfile has no extras ({} chosen in hoist.toml); choose Pipfile categories with \
             `groups`",
            selection.extras.join(", ")
        ));
    }
    let mut categories = vec!["default"];
    for group in &selection.groups {
        // pipenv locks [dev-packages] as "develop".
        let category = if group == "dev" || group == "dev-packages" {
            "develop"
        } else {
            group.as_str()
        };
        if !doc.contains_key(category) || category == "_meta" {
            let locked: Vec<&str> = doc
                .keys()
                .map(String::as_str)
                .filter(|k| *k != "_meta")
                .collect();
            return Err(format!(
                "the lock has no category {group:?} (locked: {}); run `pipenv lock`",
                locked.join(", ")
            ));
        }
        categories.push(category);
    }
    let mut pins: BTreeMap<String, Locked> = BTreeMap::new();
    for category in categories {
        let Some(packages) = doc.get(category) else {
            continue;
        };
        let packages = packages
            .as_object()
            .ok_or(format!("\"{category}\" is not a table of packages"))?;
        for (name, package) in packages {
            let strings = |key: &str| {
                package
                    .get(key)
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_str)
                    .map(str::to_string)
            };
            for source in ["path", "git", "file", "editable"] {
                if package.get(source).is_some() {
                    return Err(format!(
                        "package {name} is locked from a {source}; hoist installs locked \
                         packages from a package index only"
                    ));
                }
            }
            let version = package
                .get("version")
                .and_then(Value::as_str)
                .and_then(|v| v.strip_prefix("=="))
                .ok_or(format!("package {name} has no pinned version (\"==...\")"))?;
            let pin = pins.entry(normalize(name)).or_insert_with(|| Locked {
                name: name.clone(),
                version: version.to_string(),
                ..Locked::default()
            });
            if pin.version != version {
                return Err(format!(
                    "package {name} is locked at {} and at {version} in different categories",
                    pin.version
                ));
            }
            pin.extras.extend(strings("extras"));
            if let Some(markers) = package.get("markers").and_then(Value::as_str) {
                pin.marker = Some(markers.to_string());
            }
            pin.hashes.extend(strings("hashes"));
        }
    }
    Ok(pins.values().map(Locked::line).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOCK: &str = r#"{
    "_meta": {"hash": {"sha256": "x"}, "pipfile-spec": 6, "requires": {}, "sources": []},
    "default": {
        "six": {"hashes": ["sha256:bbb", "sha256:aaa"], "index": "pypi", "markers": "python_version >= '2.7'", "version": "==1.16.0"},
        "psycopg": {"extras": ["binary"], "hashes": ["sha256:ddd"], "version": "==3.2.1"}
    },
    "develop": {
        "pytest": {"hashes": ["sha256:eee"], "version": "==8.0.0"}
    }
}"#;

    #[test]
    fn the_default_packages_with_extras_markers_and_hashes() {
        assert_eq!(
            export(LOCK, &Selection::default()).unwrap(),
            "psycopg[binary]==3.2.1 \\\n    --hash=sha256:ddd\n\
             six==1.16.0 ; python_version >= '2.7' \\\n    --hash=sha256:aaa \\\n    --hash=sha256:bbb\n"
        );
    }

    #[test]
    fn dev_means_develop_and_unknown_categories_or_extras_are_refused() {
        let dev = Selection {
            extras: vec![],
            groups: vec!["dev".into()],
        };
        assert!(export(LOCK, &dev)
            .unwrap()
            .contains("pytest==8.0.0 \\\n    --hash=sha256:eee\n"));
        let docs = Selection {
            extras: vec![],
            groups: vec!["docs".into()],
        };
        assert_eq!(
            export(LOCK, &docs).unwrap_err(),
            "the lock has no category \"docs\" (locked: default, develop); run `pipenv lock`"
        );
        let extra = Selection {
            extras: vec!["pg".into()],
            groups: vec![],
        };
        assert!(export(LOCK, &extra)
            .unwrap_err()
            .starts_with("a Pipfile has no extras"));
    }

    #[test]
    fn packages_from_git_or_a_path_are_refused() {
        let lock = r#"{"default": {"lib": {"editable": true, "path": "."}}}"#;
        assert_eq!(
            export(lock, &Selection::default()).unwrap_err(),
            "package lib is locked from a path; hoist installs locked packages from a package index only"
        );
    }
}
