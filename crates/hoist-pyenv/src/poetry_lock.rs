//! Reading a `poetry.lock` without Poetry: the packages of the main group (and the chosen
//! groups and extras) with their versions, markers and hashes, as pip's requirements format.

use toml::Value;

use crate::dependencies::Selection;

/// The locked requirements, one `name==version ; markers --hash=...` line each, sorted by
/// name. Needs a lock that records each package's groups (Poetry 2: `groups`, Poetry 1.0-1.4:
/// `category`). The error says what is wrong, without the file name.
pub(crate) fn export(text: &str, selection: &Selection) -> Result<String, String> {
    let doc: Value = toml::from_str(text).map_err(|e| format!("not valid TOML: {e}"))?;
    let version = doc
        .get("metadata")
        .and_then(|m| m.get("lock-version"))
        .and_then(Value::as_str)
        .unwrap_or("unknown");
    let packages = doc
        .get("package")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let mut wanted_groups = vec!["main".to_string()];
    wanted_groups.extend(selection.groups.iter().cloned());
    let extra_packages: Vec<String> = selection
        .extras
        .iter()
        .map(|extra| {
            doc.get("extras")
                .and_then(|e| e.get(extra))
                .and_then(Value::as_array)
                .map(|names| {
                    names
                        .iter()
                        .filter_map(Value::as_str)
                        .map(|n| normalize(n.split([' ', '[', '(']).next().unwrap_or(n)))
                        .collect::<Vec<_>>()
                })
                .ok_or_else(|| format!("no extra {extra:?} in [extras]"))
        })
        .collect::<Result<Vec<_>, _>>()?
        .concat();

    let mut lines = Vec::new();
    for package in &packages {
        let field = |key: &str| package.get(key).and_then(Value::as_str);
        let name = field("name").ok_or("a [[package]] without a name")?;
        let pinned = field("version").ok_or(format!("package {name} has no version"))?;
        let groups: Vec<String> = match (package.get("groups"), field("category")) {
            (Some(groups), _) => groups
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect(),
            (None, Some(category)) => vec![category.to_string()],
            (None, None) => {
                return Err(format!(
                    "lock version {version} does not record which group each package \
                     belongs to (package {name})"
                ))
            }
        };
        let chosen: Vec<&String> = groups
            .iter()
            .filter(|g| wanted_groups.contains(g))
            .collect();
        if chosen.is_empty() {
            continue;
        }
        let optional = package
            .get("optional")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        if optional && !extra_packages.contains(&normalize(name)) {
            continue;
        }
        if let Some(kind) = package
            .get("source")
            .and_then(|s| s.get("type"))
            .and_then(Value::as_str)
        {
            if kind != "legacy" {
                return Err(format!(
                    "package {name} is locked from a {kind} source; hoist installs locked \
                     packages from a package index only"
                ));
            }
        }
        let mut line = format!("{name}=={pinned}");
        if let Some(markers) = markers(package.get("markers"), &chosen) {
            line.push_str(" ; ");
            line.push_str(&resolve_extras(&markers, &doc, &selection.extras));
        }
        for hash in hashes(&doc, package, name) {
            line.push_str(" \\\n    --hash=");
            line.push_str(&hash);
        }
        lines.push((normalize(name), line));
    }
    lines.sort();
    let mut out = String::new();
    for (_, line) in lines {
        out.push_str(&line);
        out.push('\n');
    }
    Ok(out)
}

/// `markers` is one string for every group, or a table by group; a package needed by two of
/// the chosen groups under different conditions is installed when either holds. `None` when
/// a chosen group needs it unconditionally.
fn markers(value: Option<&Value>, chosen: &[&String]) -> Option<String> {
    match value? {
        Value::String(markers) => Some(markers.clone()),
        Value::Table(by_group) => {
            let mut any = Vec::new();
            for group in chosen {
                match by_group.get(group.as_str()).and_then(Value::as_str) {
                    Some(markers) => any.push(markers),
                    None => return None,
                }
            }
            match any.as_slice() {
                [one] => Some((*one).to_string()),
                _ => Some(
                    any.iter()
                        .map(|m| format!("({m})"))
                        .collect::<Vec<_>>()
                        .join(" or "),
                ),
            }
        }
        _ => None,
    }
}

/// A requirements file has no `extra` to test, so pip would read `extra == "pg"` as false:
/// each such test becomes a condition that is always true (the extra is chosen) or always
/// false (it is not), as `poetry export --extras` decides them.
fn resolve_extras(markers: &str, doc: &Value, chosen: &[String]) -> String {
    let mut out = markers.to_string();
    let names = doc
        .get("extras")
        .and_then(Value::as_table)
        .map(|t| t.keys().cloned().collect::<Vec<_>>())
        .unwrap_or_default();
    for name in names {
        let value = if chosen.contains(&name) {
            "python_version >= \"0\""
        } else {
            "python_version < \"0\""
        };
        for quote in ['"', '\''] {
            out = out.replace(&format!("extra == {quote}{name}{quote}"), value);
        }
    }
    out
}

/// Poetry 1.x kept hashes under `[metadata.files]`, Poetry 1.5+ under each package's `files`.
fn hashes(doc: &Value, package: &Value, name: &str) -> Vec<String> {
    let files = package.get("files").or_else(|| {
        doc.get("metadata")
            .and_then(|m| m.get("files"))
            .and_then(|f| f.get(name))
    });
    let mut hashes: Vec<String> = files
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|f| f.get("hash").and_then(Value::as_str))
        .map(str::to_string)
        .collect();
    hashes.sort();
    hashes.dedup();
    hashes
}

/// PEP 503 normalized name.
pub(crate) fn normalize(name: &str) -> String {
    name.to_ascii_lowercase().replace(['_', '.'], "-")
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOCK: &str = r#"
[[package]]
name = "six"
version = "1.16.0"
optional = false
groups = ["main"]
files = [
    {file = "six-1.16.0.tar.gz", hash = "sha256:bbb"},
    {file = "six-1.16.0-py2.py3-none-any.whl", hash = "sha256:aaa"},
]

[[package]]
name = "colorama"
version = "0.4.6"
optional = false
groups = ["main", "dev"]
markers = {main = "sys_platform == \"win32\"", dev = "platform_system == \"Windows\""}
files = [{file = "colorama-0.4.6-py2.py3-none-any.whl", hash = "sha256:ccc"}]

[[package]]
name = "pytest"
version = "8.0.0"
optional = false
groups = ["dev"]
files = []

[[package]]
name = "psycopg2-binary"
version = "2.9.9"
optional = true
groups = ["main"]
files = [{file = "p.whl", hash = "sha256:ddd"}]

[extras]
pg = ["psycopg2-binary"]

[metadata]
lock-version = "2.1"
"#;

    #[test]
    fn the_main_group_with_markers_and_hashes() {
        assert_eq!(
            export(LOCK, &Selection::default()).unwrap(),
            "colorama==0.4.6 ; sys_platform == \"win32\" \\\n    --hash=sha256:ccc\n\
             six==1.16.0 \\\n    --hash=sha256:aaa \\\n    --hash=sha256:bbb\n"
        );
    }

    #[test]
    fn chosen_groups_and_extras_are_added() {
        let chosen = Selection {
            extras: vec!["pg".into()],
            groups: vec!["dev".into()],
        };
        let out = export(LOCK, &chosen).unwrap();
        assert!(out.contains("pytest==8.0.0\n"), "{out}");
        assert!(out.contains("psycopg2-binary==2.9.9"), "{out}");
        assert!(
            out.contains(
                "colorama==0.4.6 ; (sys_platform == \"win32\") or (platform_system == \"Windows\")"
            ),
            "{out}"
        );
    }

    #[test]
    fn locks_without_groups_and_path_sources_are_refused() {
        let old =
            "[[package]]\nname = \"six\"\nversion = \"1\"\n[metadata]\nlock-version = \"2.0\"\n";
        assert_eq!(
            export(old, &Selection::default()).unwrap_err(),
            "lock version 2.0 does not record which group each package belongs to (package six)"
        );
        let path = "[[package]]\nname = \"lib\"\nversion = \"1\"\ngroups = [\"main\"]\n\
                    [package.source]\ntype = \"directory\"\nurl = \"../lib\"\n";
        assert!(export(path, &Selection::default())
            .unwrap_err()
            .contains("locked from a directory source"));
    }
}
