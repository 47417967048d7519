//! `[project] dependencies` of a `pyproject.toml` (PEP 621), with extras and PEP 735
//! dependency groups, as a requirements list.

use toml::Value;

use crate::dependencies::Selection;

/// The requirements of the project's `[project] dependencies`, the chosen
/// `[project.optional-dependencies]` and the chosen `[dependency-groups]`, one per line, in
/// the order written. The error says what is missing, without the file name.
pub(crate) fn requirements(text: &str, selection: &Selection) -> Result<String, String> {
    let doc: Value = toml::from_str(text).map_err(|e| format!("not valid TOML: {e}"))?;
    let Some(project) = doc.get("project") else {
        let poetry = doc.get("tool").and_then(|t| t.get("poetry")).is_some();
        return Err(if poetry {
            "no [project] table: the dependencies are Poetry's; run `poetry lock` and set \
             `dependencies = \"poetry.lock\"` in hoist.toml"
                .into()
        } else {
            "no [project] table with `dependencies`".into()
        });
    };
    let mut lines = strings(project.get("dependencies"), "[project] dependencies")?;
    for extra in &selection.extras {
        let table = project
            .get("optional-dependencies")
            .and_then(|t| t.get(extra))
            .ok_or_else(|| format!("no extra {extra:?} in [project.optional-dependencies]"))?;
        lines.extend(strings(Some(table), &format!("extra {extra:?}"))?);
    }
    for group in &selection.groups {
        group_requirements(&doc, group, &mut Vec::new(), &mut lines)?;
    }
    let mut out = String::new();
    for line in lines {
        out.push_str(&line);
        out.push('\n');
    }
    Ok(out)
}

fn strings(value: Option<&Value>, what: &str) -> Result<Vec<String>, String> {
    let Some(value) = value else {
        return Ok(Vec::new());
    };
    let array = value
        .as_array()
        .ok_or_else(|| format!("{what} is not a list of requirements"))?;
    array
        .iter()
        .map(|v| {
            v.as_str()
                .map(str::to_string)
                .ok_or_else(|| format!("{what} holds {v}, not a requirement string"))
        })
        .collect()
}

/// A PEP 735 group: requirement strings and `{include-group = "name"}` tables.
fn group_requirements(
    doc: &Value,
    group: &str,
    seen: &mut Vec<String>,
    out: &mut Vec<String>,
) -> Result<(), String> {
    if seen.iter().any(|g| g == group) {
        return Err(format!("dependency group {group:?} includes itself"));
    }
    seen.push(group.to_string());
    let items = doc
        .get("dependency-groups")
        .and_then(|t| t.get(group))
        .and_then(Value::as_array)
        .ok_or_else(|| format!("no dependency group {group:?} in [dependency-groups]"))?;
    for item in items {
        match item {
            Value::String(requirement) => out.push(requirement.clone()),
            Value::Table(table) => match table.get("include-group").and_then(Value::as_str) {
                Some(included) => group_requirements(doc, included, seen, out)?,
                None => return Err(format!("dependency group {group:?} holds {item}")),
            },
            other => return Err(format!("dependency group {group:?} holds {other}")),
        }
    }
    seen.pop();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const PYPROJECT: &str = r#"
[project]
name = "shop"
version = "1"
dependencies = ["flask>=3", "six"]

[project.optional-dependencies]
pg = ["psycopg2-binary"]

[dependency-groups]
prod = ["gunicorn", {include-group = "metrics"}]
metrics = ["prometheus-client"]
dev = ["pytest"]
"#;

    #[test]
    fn main_dependencies_then_chosen_extras_and_groups() {
        assert_eq!(
            requirements(PYPROJECT, &Selection::default()).unwrap(),
            "flask>=3\nsix\n"
        );
        let chosen = Selection {
            extras: vec!["pg".into()],
            groups: vec!["prod".into()],
        };
        assert_eq!(
            requirements(PYPROJECT, &chosen).unwrap(),
            "flask>=3\nsix\npsycopg2-binary\ngunicorn\nprometheus-client\n"
        );
    }

    #[test]
    fn unknown_names_and_poetry_projects_are_explained() {
        let missing = Selection {
            groups: vec!["docs".into()],
            ..Selection::default()
        };
        assert_eq!(
            requirements(PYPROJECT, &missing).unwrap_err(),
            "no dependency group \"docs\" in [dependency-groups]"
        );
        let poetry = "[tool.poetry]\nname = \"x\"\n[tool.poetry.dependencies]\nsix = \"*\"\n";
        assert!(requirements(poetry, &Selection::default())
            .unwrap_err()
            .contains("poetry.lock"));
    }
}
