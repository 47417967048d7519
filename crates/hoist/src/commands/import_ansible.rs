//! `hoist import ansible <dir>`: an Ansible inventory and `group_vars/all` → hoist.toml.

use std::path::{Path, PathBuf};

use crate::command_error::CommandError;
use crate::printer::Printer;
use crate::warn_user;

/// `hoist import ansible`
#[derive(clap::Args, Debug)]
pub struct AnsibleArgs {
    /// The Ansible directory: it holds the inventory (`hosts`) and `group_vars/all`.
    #[arg(default_value = ".", value_name = "DIR")]
    pub dir: PathBuf,
    /// The INI inventory, when it is not `<DIR>/hosts`.
    #[arg(long, value_name = "FILE")]
    pub inventory: Option<PathBuf>,
    /// Write hoist.toml (or --config) instead of printing it; refuses to replace one.
    #[arg(long)]
    pub write: bool,
}

/// Inventory file names tried in order when `--inventory` is not given.
const INVENTORY_NAMES: &[&str] = &["hosts", "inventory", "hosts.ini", "inventory.ini"];

/// `group_vars/all` in the spellings Ansible reads.
const ALL_VARS_NAMES: &[&str] = &[
    "group_vars/all",
    "group_vars/all.yml",
    "group_vars/all.yaml",
];

/// Runs `hoist import ansible`.
pub fn run(
    args: &AnsibleArgs,
    config: Option<&Path>,
    printer: Printer,
) -> Result<(), CommandError> {
    let inventory_path = match &args.inventory {
        Some(path) => path.clone(),
        None => INVENTORY_NAMES
            .iter()
            .map(|name| args.dir.join(name))
            .find(|p| p.is_file())
            .ok_or_else(|| {
                CommandError::config(format!(
                    "no Ansible inventory in {} (looked for {})",
                    args.dir.display(),
                    INVENTORY_NAMES.join(", ")
                ))
                .hint("pass it: hoist import ansible <dir> --inventory <file>")
            })?,
    };
    let read = |path: &Path| {
        std::fs::read_to_string(path)
            .map_err(|e| CommandError::config(format!("cannot read {}: {e}", path.display())))
    };
    let inventory = read(&inventory_path)?;
    let vars_path = ALL_VARS_NAMES
        .iter()
        .map(|name| args.dir.join(name))
        .find(|p| p.is_file());
    let vars = vars_path.as_deref().map(read).transpose()?;
    let shown = inventory_path.display().to_string();
    let mut import =
        hoist_config::import_ansible(&shown, &inventory, vars.as_deref()).map_err(|e| {
            CommandError::from(e).hint(
                "hoist reads Ansible's INI inventory format; fix the line or convert it by hand",
            )
        })?;
    import_roles(&args.dir, vars.as_deref(), &mut import)?;
    for note in &import.notes {
        printer.info(format!("note: {note}"));
    }
    for other in other_var_files(&args.dir, vars_path.as_deref()) {
        warn_user!(
            printer,
            "not converted: {} (only group_vars/all and the inventory are read)",
            other.display()
        );
    }
    if !args.write {
        printer.raw(&import.toml);
        return Ok(());
    }
    let target = config.map_or_else(|| PathBuf::from(hoist_config::FILE_NAME), Path::to_path_buf);
    if target.exists() {
        return Err(
            CommandError::config(format!("{} already exists", target.display()))
                .hint("run without --write and merge the printed file by hand"),
        );
    }
    std::fs::write(&target, &import.toml)
        .map_err(|e| CommandError::internal(format!("cannot write {}: {e}", target.display())))?;
    printer.outcome(format!(
        "wrote {}; check [app] and the notes above, then: hoist check",
        target.display()
    ));
    Ok(())
}

/// Files under group_vars/ and host_vars/ other than the one that was read.
fn other_var_files(dir: &Path, read: Option<&Path>) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for sub in ["group_vars", "host_vars"] {
        let Ok(entries) = std::fs::read_dir(dir.join(sub)) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if Some(path.as_path()) != read {
                found.push(path);
            }
        }
    }
    found.sort();
    found
}

/// What the playbook's roles do (`<dir>/roles/*/tasks/main.yml`): supervisor restarts become
/// `[[process]]` tables, rsync excludes `[app] exclude`; plays with `become` (`<dir>/*.yml`)
/// `become = "all"` on their hosts.
fn import_roles(
    dir: &Path,
    vars: Option<&str>,
    import: &mut hoist_config::AnsibleImport,
) -> Result<(), CommandError> {
    let mut known = vars
        .map(hoist_config::ansible_vars)
        .transpose()?
        .unwrap_or_default();
    let playbook_dir = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
    known.insert("playbook_dir".into(), playbook_dir.display().to_string());
    let mut task_files: Vec<PathBuf> = std::fs::read_dir(dir.join("roles"))
        .into_iter()
        .flatten()
        .flatten()
        .flat_map(|role| ["main.yml", "main.yaml"].map(|name| role.path().join("tasks").join(name)))
        .filter(|p| p.is_file())
        .collect();
    task_files.sort();
    let mut tasks = hoist_config::AnsibleTasks::default();
    for file in &task_files {
        let read = std::fs::read_to_string(file)
            .map_err(|e| hoist_config::AnsibleImportError {
                file: file.display().to_string(),
                line: None,
                message: e.to_string(),
            })
            .and_then(|text| {
                hoist_config::read_ansible_tasks(
                    &file.display().to_string(),
                    &text,
                    &known,
                    &mut tasks,
                )
            });
        read.map_err(|e| CommandError::from(e).hint("fix the file, or convert its tasks by hand"))?;
    }
    // The playbooks beside the inventory: a play that runs its roles with `become`.
    let mut playbooks: Vec<PathBuf> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|entry| entry.path())
        .filter(|p| p.is_file() && p.extension().is_some_and(|e| e == "yml" || e == "yaml"))
        .collect();
    playbooks.sort();
    for file in &playbooks {
        if let Ok(text) = std::fs::read_to_string(file) {
            let name = file.file_name().unwrap_or_default().to_string_lossy();
            hoist_config::read_ansible_playbook(&name, &text, &mut tasks);
        }
    }
    for path in tasks.exclude_from.clone() {
        match std::fs::read_to_string(&path) {
            Ok(text) => tasks.add_exclude_file(&text),
            Err(e) => import.notes.push(format!(
                "the playbook's rsync excludes {path} could not be read ({e}): add its patterns to [app] exclude"
            )),
        }
    }
    tasks.apply(import);
    Ok(())
}
