//! `[app]`: what is deployed and how its Python environment is built.

use std::fmt;
use std::path::{Path, PathBuf};

use crate::check::{has_parent_component, normalize, Checker};
use crate::raw::RawApp;
use crate::suggest::closest;
use crate::ConfigError;

/// The `[app]` table, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct App {
    /// The app's name: `[a-z0-9][a-z0-9_-]*`.
    pub name: String,
    /// The project directory that is deployed, absolute (resolved against hoist.toml's directory).
    pub source: PathBuf,
    /// The WSGI/ASGI application object.
    pub entry: Entry,
    /// The interpreter command on the target hosts, e.g. `python3.12`.
    pub python: String,
    /// Requirements files, relative to `source`; each one exists. Empty unless `dependencies`
    /// is [`DependencyFormat::Requirements`].
    pub requirements: Vec<PathBuf>,
    /// Where the environment's packages are declared.
    pub dependencies: DependencyFormat,
    /// Optional dependencies (`[project.optional-dependencies]`) installed too.
    pub extras: Vec<String>,
    /// Dependency groups installed too (PEP 735 `[dependency-groups]`, Poetry groups).
    pub groups: Vec<String>,
    /// Gitignore-style patterns left out of the upload, on top of hoist's built-in ones.
    pub exclude: Vec<String>,
    /// Which installer builds the environment.
    pub installer: InstallerChoice,
    /// Directories of the release, relative to it, that go first on the import path after the
    /// release itself (`[app] python_path`): `src` for a src-layout project unless hoist.toml
    /// says otherwise ([`crate::detect_python_path`]). Hooks, checks, the import check and
    /// hoist's loader use them; the project is never installed into the shared environment.
    pub python_path: Vec<PathBuf>,
}

/// `module:attribute` of the WSGI/ASGI application, e.g. `app:app` or `mysite.wsgi:application`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Entry {
    /// Dotted module path, e.g. `mysite.wsgi`.
    pub module: String,
    /// Attribute of the module: the application's name, or a factory's name followed by `()`,
    /// which the import check and hoist's loader call (once per worker) to get the application.
    pub attribute: String,
}

impl fmt::Display for Entry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.module, self.attribute)
    }
}

impl Entry {
    /// True for `module:factory()`: the attribute is called to get the application.
    pub fn is_factory(&self) -> bool {
        self.attribute.ends_with("()")
    }

    /// Parses `module:attribute`; the error says what is wrong, without location.
    ///
    /// # Errors
    ///
    /// When there is no `:`, or either side is not a Python name.
    pub fn parse(s: &str) -> Result<Self, String> {
        let Some((module, attribute)) = s.split_once(':') else {
            return Err(format!(
                "entry {s:?} has no \":\"; expected \"module:attribute\", e.g. \"app:app\""
            ));
        };
        if !module.split('.').all(is_identifier) {
            return Err(format!(
                "entry {s:?}: {module:?} is not a Python module path such as \"app\" or \"mysite.wsgi\""
            ));
        }
        if let Some((name, arguments)) = attribute
            .strip_suffix(')')
            .and_then(|call| call.split_once('('))
        {
            if is_identifier(name) && !arguments.is_empty() {
                return Err(format!(
                    "entry {s:?}: the factory {name:?} is given arguments; hoist calls a factory \
                     without any, e.g. \"{module}:{name}()\" (for arguments, add a function \
                     to {module} that passes them)"
                ));
            }
        }
        let name = attribute.strip_suffix("()").unwrap_or(attribute);
        if !is_identifier(name) {
            return Err(format!(
                "entry {s:?}: {attribute:?} is not a Python attribute such as \"app\" or \"create_app()\""
            ));
        }
        Ok(Self {
            module: module.to_owned(),
            attribute: attribute.to_owned(),
        })
    }
}

fn is_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Where the environment's packages are declared: `[app] dependencies`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DependencyFormat {
    /// `requirements` files (default).
    #[default]
    Requirements,
    /// `uv.lock`, exported with `uv export --locked --no-dev --no-emit-project`.
    UvLock,
    /// `poetry.lock`, read by hoist (main group, chosen groups and extras).
    PoetryLock,
    /// `pdm.lock`, read by hoist (the `default` group, chosen groups and extras).
    PdmLock,
    /// `Pipfile.lock`, read by hoist (`default`, and the chosen categories).
    PipfileLock,
    /// `[project] dependencies` of `pyproject.toml`, without a lock.
    Pyproject,
}

impl DependencyFormat {
    /// The value as written in hoist.toml.
    pub fn as_str(self) -> &'static str {
        match self {
            DependencyFormat::Requirements => "requirements",
            DependencyFormat::UvLock => "uv.lock",
            DependencyFormat::PoetryLock => "poetry.lock",
            DependencyFormat::PdmLock => "pdm.lock",
            DependencyFormat::PipfileLock => "Pipfile.lock",
            DependencyFormat::Pyproject => "pyproject.toml",
        }
    }

    /// The file that declares the packages: `Pipfile` for `Pipfile.lock`, else
    /// `pyproject.toml`; with the lock, it decides the environment.
    pub fn manifest(self) -> &'static str {
        match self {
            DependencyFormat::PipfileLock => "Pipfile",
            _ => "pyproject.toml",
        }
    }
}

const DEPENDENCY_FORMATS: &[&str] = &[
    "requirements",
    "uv.lock",
    "poetry.lock",
    "pdm.lock",
    "Pipfile.lock",
    "pyproject.toml",
];

/// Which installer builds the release's environment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum InstallerChoice {
    /// `uv` when the host has it, else `python -m venv` + pip.
    #[default]
    Auto,
    /// Always `uv`; a host without it is an error.
    Uv,
    /// Always `python -m venv` + pip.
    Pip,
}

const INSTALLERS: &[&str] = &["auto", "uv", "pip"];

/// True for names of the form `[a-z0-9][a-z0-9_-]*`.
pub(crate) fn is_valid_app_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-')
}

/// The closest valid app name to `raw`, e.g. `My Shop!` → `my-shop`; `app` when nothing is left.
pub(crate) fn sanitize_app_name(raw: &str) -> String {
    let mut name = String::new();
    for c in raw.chars().flat_map(char::to_lowercase) {
        if c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-' {
            name.push(c);
        } else if !name.ends_with('-') {
            name.push('-');
        }
    }
    let name = name
        .trim_start_matches(['-', '_'])
        .trim_end_matches('-')
        .to_owned();
    if name.is_empty() {
        "app".to_owned()
    } else {
        name
    }
}

pub(crate) fn validate(check: &Checker<'_>, dir: &Path, raw: &RawApp) -> Result<App, ConfigError> {
    let name = raw.name.get_ref();
    if !is_valid_app_name(name) {
        return Err(check
            .error(
                raw.name.span(),
                format!(
                    "app name {name:?} is invalid: use lowercase letters, digits, \"-\" and \"_\", starting with a letter or digit"
                ),
            )
            .with_hint(format!("e.g. name = \"{}\"", sanitize_app_name(name))));
    }

    let source = match &raw.source {
        None => dir.to_path_buf(),
        Some(source) => {
            let resolved = normalize(&dir.join(source.get_ref()));
            if !resolved.is_dir() {
                return Err(check
                    .error(
                        source.span(),
                        format!(
                            "source directory {:?} does not exist (resolved to {})",
                            source.get_ref(),
                            resolved.display()
                        ),
                    )
                    .with_hint("`source` is relative to the directory that holds hoist.toml"));
            }
            resolved
        }
    };

    let entry = Entry::parse(raw.entry.get_ref()).map_err(|message| {
        check.error(raw.entry.span(), message).with_hint(
            "the part after \":\" names the WSGI/ASGI object in the module, e.g. app:app for an app.py that defines `app`",
        )
    })?;

    let python = match &raw.python {
        Some(python) => check.non_empty(python, "python")?,
        None => "python3".to_owned(),
    };

    let dependencies = dependency_format(check, &source, raw)?;
    let requirements = if dependencies == DependencyFormat::Requirements {
        requirements(check, &source, raw)?
    } else {
        Vec::new()
    };
    let names =
        |list: &Option<Vec<crate::raw::Text>>, key: &str| -> Result<Vec<String>, ConfigError> {
            match list {
                None => Ok(Vec::new()),
                Some(list) => list.iter().map(|name| check.non_empty(name, key)).collect(),
            }
        };
    let extras = names(&raw.extras, "extras")?;
    let groups = names(&raw.groups, "groups")?;

    let exclude = match &raw.exclude {
        None => Vec::new(),
        Some(patterns) => patterns
            .iter()
            .map(|pattern| check.non_empty(pattern, "exclude"))
            .collect::<Result<_, _>>()?,
    };

    let installer = match raw.installer.as_ref() {
        None => InstallerChoice::Auto,
        Some(value) => match value.get_ref().as_str() {
            "auto" => InstallerChoice::Auto,
            "uv" => InstallerChoice::Uv,
            "pip" => InstallerChoice::Pip,
            other => {
                let mut error = check.error(
                    value.span(),
                    format!("unknown installer {other:?}; expected one of auto, uv, pip"),
                );
                if let Some(suggestion) = closest(other, INSTALLERS) {
                    error = error.with_hint(format!("did you mean \"{suggestion}\"?"));
                }
                return Err(error);
            }
        },
    };

    let python_path = match &raw.python_path {
        None => crate::detect_python_path(&source),
        Some(dirs) => dirs
            .iter()
            .map(|dir| python_path_dir(check, &source, dir))
            .collect::<Result<_, _>>()?,
    };

    Ok(App {
        name: name.clone(),
        source,
        entry,
        python,
        requirements,
        dependencies,
        extras,
        groups,
        exclude,
        installer,
        python_path,
    })
}

/// One `python_path` entry: a directory of the project, relative, inside it.
fn python_path_dir(
    check: &Checker<'_>,
    source: &Path,
    dir: &crate::raw::Text,
) -> Result<PathBuf, ConfigError> {
    let text = check.non_empty(dir, "python_path")?;
    let path = normalize(Path::new(&text));
    if path.is_absolute() || has_parent_component(&text) || path.as_os_str().is_empty() {
        return Err(check
            .error(
                dir.span(),
                format!("python_path {text:?} must be a directory inside the release"),
            )
            .with_hint("write it relative to the project, e.g. python_path = [\"src\"]"));
    }
    if !source.join(&path).is_dir() {
        return Err(check
            .error(
                dir.span(),
                format!(
                    "python_path {text:?} is not a directory of the project ({})",
                    source.join(&path).display()
                ),
            )
            .with_hint("list the folder that holds the project's package, e.g. \"src\""));
    }
    Ok(path)
}

fn dependency_format(
    check: &Checker<'_>,
    source: &Path,
    raw: &RawApp,
) -> Result<DependencyFormat, ConfigError> {
    let Some(value) = &raw.dependencies else {
        return Ok(DependencyFormat::Requirements);
    };
    let format = match value.get_ref().as_str() {
        "requirements" => DependencyFormat::Requirements,
        "uv.lock" => DependencyFormat::UvLock,
        "poetry.lock" => DependencyFormat::PoetryLock,
        "pdm.lock" => DependencyFormat::PdmLock,
        "Pipfile.lock" => DependencyFormat::PipfileLock,
        "pyproject.toml" => DependencyFormat::Pyproject,
        other => {
            let mut error = check.error(
                value.span(),
                format!(
                    "unknown dependencies {other:?}; expected one of {}",
                    DEPENDENCY_FORMATS.join(", ")
                ),
            );
            if let Some(suggestion) = closest(other, DEPENDENCY_FORMATS) {
                error = error.with_hint(format!("did you mean \"{suggestion}\"?"));
            }
            return Err(error);
        }
    };
    if format != DependencyFormat::Requirements {
        if raw.requirements.is_some() {
            return Err(check
                .error(
                    value.span(),
                    format!(
                        "`dependencies = \"{}\"` and `requirements` both say where the \
                         packages come from",
                        format.as_str()
                    ),
                )
                .with_hint("keep one of them"));
        }
        for file in [format.manifest(), format.as_str()] {
            if !source.join(file).is_file() {
                return Err(check
                    .error(
                        value.span(),
                        format!("{file} does not exist in {}", source.display()),
                    )
                    .with_hint("commit the file, or change `dependencies`"));
            }
        }
    }
    Ok(format)
}

fn requirements(
    check: &Checker<'_>,
    source: &Path,
    raw: &RawApp,
) -> Result<Vec<PathBuf>, ConfigError> {
    let Some(listed) = &raw.requirements else {
        let default = PathBuf::from("requirements.txt");
        return Ok(if source.join(&default).is_file() {
            vec![default]
        } else {
            Vec::new()
        });
    };
    // Errors point at `requirements` itself (the array starts on the key's line).
    let at = listed.span();
    let mut files = Vec::new();
    for file in listed.get_ref() {
        let file = file.get_ref();
        if file.starts_with('/') || has_parent_component(file) {
            return Err(check
                .error(
                    at.clone(),
                    format!("requirements file {file:?} must be a relative path inside source"),
                )
                .with_hint(
                    "only the source directory is uploaded, so requirements must live in it",
                ));
        }
        if !source.join(file).is_file() {
            return Err(check
                .error(
                    at.clone(),
                    format!(
                        "requirements file {file:?} does not exist in {}",
                        source.display()
                    ),
                )
                .with_hint(
                    "requirements paths are relative to the source directory; create the file or remove it from `requirements`",
                ));
        }
        files.push(PathBuf::from(file));
    }
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_reads_module_and_attribute() {
        let entry = Entry::parse("mysite.wsgi:application").unwrap();
        assert_eq!(entry.module, "mysite.wsgi");
        assert_eq!(entry.attribute, "application");
        assert_eq!(entry.to_string(), "mysite.wsgi:application");
        assert_eq!(
            Entry::parse("app:create_app()").unwrap().attribute,
            "create_app()"
        );
    }

    #[test]
    fn entry_refuses_what_python_cannot_import() {
        assert!(Entry::parse("my-app:app").is_err());
        assert!(Entry::parse("app:").is_err());
        assert!(Entry::parse(":app").is_err());
        assert!(Entry::parse("app:1x").is_err());
        assert!(Entry::parse("app.:app").is_err());
        assert!(Entry::parse("app:create_app(").is_err());
        assert!(Entry::parse("app:create_app)").is_err());
        assert!(Entry::parse("app:()").is_err());
    }

    #[test]
    fn a_factory_is_called_without_arguments() {
        let entry = Entry::parse("app:create_app()").unwrap();
        assert!(entry.is_factory());
        assert!(!Entry::parse("app:app").unwrap().is_factory());
        assert_eq!(
            Entry::parse("app:create_app('production')").unwrap_err(),
            "entry \"app:create_app('production')\": the factory \"create_app\" is given \
             arguments; hoist calls a factory without any, e.g. \"app:create_app()\" (for \
             arguments, add a function to app that passes them)"
        );
    }

    #[test]
    fn app_names_follow_the_pattern() {
        for good in ["example", "a", "0day", "my-app_2"] {
            assert!(is_valid_app_name(good), "{good}");
        }
        for bad in ["", "-x", "_x", "My", "a b", "a.b", "é"] {
            assert!(!is_valid_app_name(bad), "{bad}");
        }
    }

    #[test]
    fn sanitize_makes_a_valid_name() {
        assert_eq!(sanitize_app_name("My Shop!"), "my-shop");
        assert_eq!(sanitize_app_name("flask_app"), "flask_app");
        assert_eq!(sanitize_app_name("__init__"), "init__");
        assert_eq!(sanitize_app_name("..."), "app");
        for raw in ["My Shop!", "__init__", "...", "Ça va", "x--y"] {
            assert!(is_valid_app_name(&sanitize_app_name(raw)), "{raw}");
        }
    }
}
