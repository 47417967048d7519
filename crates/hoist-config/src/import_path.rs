//! `[app] python_path`: directories of a release that go first on the import path, because the
//! project's own package lives there (a `src/` layout) and is never installed into the shared
//! environment.

use std::path::{Path, PathBuf};

/// `["src"]` when the project in `source` keeps its package under `src/`: pyproject.toml says
/// so for its build backend (setuptools' `package-dir = {"" = "src"}` or `packages.find.where`,
/// hatch's wheel `packages = ["src/…"]`, Poetry's `packages = [{ from = "src" }]`, PDM's
/// `package-dir = "src"`), or `src/<package>/__init__.py` exists. Else empty.
#[must_use]
pub fn detect_python_path(source: &Path) -> Vec<PathBuf> {
    if declares_src_layout(source) || has_src_package(source) {
        vec![PathBuf::from("src")]
    } else {
        Vec::new()
    }
}

fn declares_src_layout(source: &Path) -> bool {
    let Ok(text) = std::fs::read_to_string(source.join("pyproject.toml")) else {
        return false;
    };
    let Ok(doc) = text.parse::<toml::Table>() else {
        return false;
    };
    let at = |path: &[&str]| -> Option<&toml::Value> {
        let (first, rest) = path.split_first()?;
        rest.iter().try_fold(doc.get(*first)?, |v, key| v.get(key))
    };
    let is_src = |v: &toml::Value| v.as_str().is_some_and(|s| s.trim_end_matches('/') == "src");
    let any = |v: Option<&toml::Value>, test: &dyn Fn(&toml::Value) -> bool| {
        v.and_then(toml::Value::as_array)
            .is_some_and(|items| items.iter().any(test))
    };
    at(&["tool", "setuptools", "package-dir", ""]).is_some_and(is_src)
        || any(
            at(&["tool", "setuptools", "packages", "find", "where"]),
            &is_src,
        )
        || any(
            at(&["tool", "hatch", "build", "targets", "wheel", "packages"]),
            &|v| v.as_str().is_some_and(|s| s.starts_with("src/")),
        )
        || any(at(&["tool", "poetry", "packages"]), &|v| {
            v.get("from").is_some_and(is_src)
        })
        || at(&["tool", "pdm", "build", "package-dir"]).is_some_and(is_src)
}

fn has_src_package(source: &Path) -> bool {
    std::fs::read_dir(source.join("src")).is_ok_and(|entries| {
        entries
            .flatten()
            .any(|entry| entry.path().join("__init__.py").is_file())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn project(files: &[(&str, &str)]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for (path, text) in files {
            let path = dir.path().join(path);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        }
        dir
    }

    #[test]
    fn each_build_backend_s_src_layout_is_seen() {
        for pyproject in [
            "[tool.setuptools]\npackage-dir = {\"\" = \"src\"}\n",
            "[tool.setuptools.packages.find]\nwhere = [\"src\"]\n",
            "[tool.hatch.build.targets.wheel]\npackages = [\"src/shop\"]\n",
            "[tool.poetry]\npackages = [{ include = \"shop\", from = \"src\" }]\n",
            "[tool.pdm.build]\npackage-dir = \"src\"\n",
        ] {
            let dir = project(&[("pyproject.toml", pyproject)]);
            assert_eq!(
                detect_python_path(dir.path()),
                vec![PathBuf::from("src")],
                "{pyproject}"
            );
        }
    }

    #[test]
    fn a_package_under_src_is_a_src_layout_and_a_flat_project_is_not() {
        let src = project(&[("src/shop/__init__.py", "")]);
        assert_eq!(detect_python_path(src.path()), vec![PathBuf::from("src")]);
        let flat = project(&[
            ("shop/__init__.py", ""),
            ("src/README", "not a package"),
            ("pyproject.toml", "[project]\nname = \"shop\"\n"),
        ]);
        assert!(detect_python_path(flat.path()).is_empty());
    }
}
