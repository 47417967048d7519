//! `hoist import ansible`, the playbook's side: what the roles' tasks do that hoist.toml can say.
//! A `supervisorctl` task (or a `command`/`shell` running `supervisorctl restart …`) becomes a
//! `[[process]]` with `restart = "supervisor"`; rsync's `--exclude`/`--exclude-from` become
//! `[app] exclude`. A play that runs its roles with `become` makes its hosts `become = "all"`.
//! Pure: the caller reads the playbooks, the task files and the exclude files.

use std::collections::BTreeMap;

use crate::import_ansible::{
    ansible_bool, parse_group_vars, value_text, AnsibleImport, AnsibleImportError, BecomeValue,
    Connection, ProcessTable,
};

/// What the tasks of a playbook's roles say about restarts and the upload.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AnsibleTasks {
    /// Supervisor programs the tasks restart, in order, without repeats.
    pub restarts: Vec<String>,
    /// rsync `--exclude` patterns.
    pub exclude: Vec<String>,
    /// rsync `--exclude-from` files, with the `{{ var }}` references that `vars` resolve
    /// substituted.
    pub exclude_from: Vec<String>,
    /// Plays that run their roles with `become`: the playbook file, the play's `hosts` and
    /// its `become_user`.
    pub become_plays: Vec<BecomePlay>,
    /// What was read, or not, one sentence each.
    pub notes: Vec<String>,
}

/// A play whose roles run with `become` (on the play or on a role).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BecomePlay {
    /// The playbook, as the caller named it.
    pub file: String,
    /// The play's `hosts`: a group, a host or `all`.
    pub hosts: String,
    /// `become_user`, when the play sets one.
    pub user: Option<String>,
}

/// Reads a playbook (a YAML list of plays) for the plays that run with `become`. Returns false,
/// reading nothing, when the text is not a list of plays (another YAML file of the directory).
pub fn read_ansible_playbook(file: &str, yaml: &str, into: &mut AnsibleTasks) -> bool {
    let Ok(Some(plays)) = serde_saphyr::from_str::<Option<Vec<serde_json::Value>>>(yaml) else {
        return false;
    };
    let is_play = |p: &serde_json::Value| p.get("hosts").is_some_and(serde_json::Value::is_string);
    if plays.is_empty() || !plays.iter().all(is_play) {
        return false;
    }
    let flag = |v: &serde_json::Value| match v.get("become") {
        Some(serde_json::Value::Bool(on)) => *on,
        Some(serde_json::Value::String(text)) => ansible_bool(text).unwrap_or(false),
        _ => false,
    };
    let text = |v: &serde_json::Value, key: &str| {
        v.get(key)
            .and_then(serde_json::Value::as_str)
            .map(str::to_owned)
    };
    for play in &plays {
        let roles = play.get("roles").and_then(serde_json::Value::as_array);
        let role_with_become = roles.into_iter().flatten().find(|r| flag(r));
        if !flag(play) && role_with_become.is_none() {
            continue;
        }
        let user = text(play, "become_user")
            .or_else(|| role_with_become.and_then(|r| text(r, "become_user")));
        let hosts = text(play, "hosts").unwrap_or_default();
        let seen = into
            .become_plays
            .iter()
            .any(|p| p.hosts == hosts && p.user == user);
        if !seen {
            into.become_plays.push(BecomePlay {
                file: file.to_owned(),
                hosts,
                user,
            });
        }
    }
    true
}

/// `group_vars/all`'s variables as text, for [`read_ansible_tasks`].
///
/// # Errors
///
/// When the text is not a YAML mapping.
pub fn ansible_vars(group_vars_all: &str) -> Result<BTreeMap<String, String>, AnsibleImportError> {
    Ok(parse_group_vars(group_vars_all)?
        .iter()
        .map(|(k, v)| (k.clone(), value_text(v)))
        .collect())
}

/// Reads one task file (`roles/<role>/tasks/main.yml`, named `file` in errors) into `into`.
/// `vars` resolve `{{ var }}` references in rsync options: `group_vars/all`'s, and the
/// caller's `playbook_dir`.
///
/// # Errors
///
/// When the file is not a YAML list of tasks.
pub fn read_ansible_tasks(
    file: &str,
    yaml: &str,
    vars: &BTreeMap<String, String>,
    into: &mut AnsibleTasks,
) -> Result<(), AnsibleImportError> {
    let tasks: Option<Vec<serde_json::Value>> =
        serde_saphyr::from_str(yaml).map_err(|e| AnsibleImportError {
            file: file.to_owned(),
            line: None,
            message: format!(
                "not a YAML list of tasks: {}",
                e.to_string().lines().next().unwrap_or_default()
            ),
        })?;
    for task in tasks.unwrap_or_default() {
        let Some(task) = task.as_object() else {
            continue;
        };
        for (module, args) in task {
            let module = module.rsplit('.').next().unwrap_or(module);
            match module {
                "supervisorctl" => {
                    let name = args.get("name").and_then(|n| n.as_str());
                    let state = args.get("state").and_then(|s| s.as_str());
                    if let (Some(name), Some("restarted" | "started")) = (name, state) {
                        into.restart(name);
                    }
                }
                "command" | "shell" => {
                    let line = args
                        .as_str()
                        .or_else(|| args.get("cmd").and_then(|c| c.as_str()))
                        .unwrap_or_default();
                    let words: Vec<&str> = line.split_whitespace().collect();
                    if let [first, "restart", programs @ ..] = words.as_slice() {
                        if first.ends_with("supervisorctl") {
                            for program in programs.iter().filter(|p| !p.starts_with('-')) {
                                into.restart(program);
                            }
                        }
                    }
                }
                "synchronize" => {
                    let options = args.get("rsync_opts").and_then(|o| o.as_array());
                    for option in options.into_iter().flatten().filter_map(|o| o.as_str()) {
                        if let Some(path) = option.strip_prefix("--exclude-from=") {
                            let path = substitute(path, vars);
                            if !into.exclude_from.contains(&path) {
                                into.exclude_from.push(path);
                            }
                        } else if let Some(pattern) = option.strip_prefix("--exclude=") {
                            into.exclude
                                .push(pattern.trim_matches(['"', '\'']).to_owned());
                        }
                    }
                }
                _ => {}
            }
        }
    }
    Ok(())
}

impl AnsibleTasks {
    fn restart(&mut self, program: &str) {
        if !self.restarts.iter().any(|p| p == program) {
            self.restarts.push(program.to_owned());
        }
    }

    /// Adds the patterns of an rsync exclude file: one per line, `#`/`;` comments and blank
    /// lines skipped.
    pub fn add_exclude_file(&mut self, text: &str) {
        for line in text.lines().map(str::trim) {
            if !line.is_empty() && !line.starts_with(['#', ';']) {
                self.exclude.push(line.to_owned());
            }
        }
    }

    /// Puts what the tasks say into an import made by
    /// [`import_ansible`](crate::import_ansible): `exclude` into `[app]`, and a `[[process]]`
    /// per restarted program at the end; its text is rendered again.
    pub fn apply(&self, import: &mut AnsibleImport) {
        import.file.app.exclude.extend(self.exclude.iter().cloned());
        for program in &self.restarts {
            let name: String = program
                .chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                        c
                    } else {
                        '-'
                    }
                })
                .collect();
            import.file.processes.push(ProcessTable {
                name,
                restart: "supervisor".to_owned(),
                program: program.clone(),
            });
        }
        for play in &self.become_plays {
            apply_become(play, import);
        }
        if self.restarts.is_empty() {
            import.notes.push(
                "the playbook's roles restart no supervisor program hoist could read: add a [[process]] that says how the app restarts (docs/restart.md)".to_owned(),
            );
        }
        import.notes.extend(self.notes.iter().cloned());
        import.toml = import.file.render();
    }
}

/// `become = "all"` (and `become_user`) on the group or host a play with `become` targets, or
/// on every group and host of the environment for `hosts: all`.
fn apply_become(play: &BecomePlay, import: &mut AnsibleImport) {
    let file = &mut import.file;
    let set = |c: &mut Connection| {
        c.become_mode = Some(BecomeValue::ALL);
        if play.user.is_some() {
            c.become_user.clone_from(&play.user);
        }
    };
    let pattern = play.hosts.trim();
    if let Some(group) = file.groups.get_mut(pattern) {
        set(group);
    } else if let Some(host) = file.hosts.get_mut(pattern) {
        set(&mut host.connection);
    } else if pattern == "all" {
        for group in &file.environment.groups {
            if let Some(c) = file.groups.get_mut(group) {
                set(c);
            }
        }
        for host in &file.environment.hosts {
            if let Some(h) = file.hosts.get_mut(host) {
                set(&mut h.connection);
            }
        }
    } else {
        import.notes.push(format!(
            "{}: the play for hosts {pattern:?} runs with become, but hoist could not tell which hosts that is: set become = \"all\" on them",
            play.file
        ));
        return;
    }
    import.notes.push(format!(
        "{}: the play for {pattern} runs its roles with become, so every step of the deploy ran as {}: become = \"all\" does the same; become = true would run only restarts, status queries and setup through sudo -n, with the release root owned by the login user",
        play.file,
        play.user.as_deref().unwrap_or("root")
    ));
}

/// Replaces `{{ var }}` by the value of `var` in `vars`, itself substituted (a few levels
/// deep); unknown variables are left as written.
fn substitute(text: &str, vars: &BTreeMap<String, String>) -> String {
    let mut text = text.to_owned();
    for _ in 0..4 {
        let mut out = String::new();
        let mut rest = text.as_str();
        while let Some(start) = rest.find("{{") {
            let Some(len) = rest[start..].find("}}") else {
                break;
            };
            let name = rest[start + 2..start + len].trim();
            out.push_str(&rest[..start]);
            out.push_str(
                vars.get(name)
                    .map_or(&rest[start..start + len + 2], String::as_str),
            );
            rest = &rest[start + len + 2..];
        }
        out.push_str(rest);
        if out == text {
            break;
        }
        text = out;
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The seed playbook's two roles, as its deploy and rollback run them.
    const DEPLOY: &str = r#"---
- name: "Rsync repo content to build directory"
  synchronize:
    src: "{{ project_source }}"
    dest: "{{ build_dir }}"
    rsync_opts:
      - "--exclude-from={{ excludes_file }}"
      - "--exclude=*.pyc"

- name: "Reload UWSGI"
  supervisorctl:
    name: "uwsgi"
    state: restarted
"#;
    const REVERT: &str = r#"---
- name: "Reload supervisord"
  service:
      name: "supervisord"
      state: "reloaded"

- name: "Restart uwsgi"
  command: "supervisorctl restart uwsgi"

- name: "Restart the worker"
  shell: /usr/bin/supervisorctl restart rq-worker
"#;

    #[test]
    fn restarts_and_excludes_of_the_roles_are_read() {
        let vars = BTreeMap::from([
            (
                "excludes_file".to_owned(),
                "{{ playbook_dir }}/rsync_excludes".to_owned(),
            ),
            ("playbook_dir".to_owned(), "/home/me/deploy".to_owned()),
        ]);
        let mut tasks = AnsibleTasks::default();
        read_ansible_tasks("roles/deploy/tasks/main.yml", DEPLOY, &vars, &mut tasks).unwrap();
        read_ansible_tasks("roles/revert/tasks/main.yml", REVERT, &vars, &mut tasks).unwrap();
        assert_eq!(tasks.restarts, ["uwsgi", "rq-worker"]);
        assert_eq!(tasks.exclude_from, ["/home/me/deploy/rsync_excludes"]);
        assert_eq!(tasks.exclude, ["*.pyc"]);

        tasks.add_exclude_file("# build junk\n.git\n\n*.log\n");
        let mut import = crate::import_ansible("hosts", "", None).unwrap();
        let notes_before = import.notes.len();
        tasks.apply(&mut import);
        let toml = &import.toml;
        assert!(
            toml.contains("# From the playbook's rsync excludes.\nexclude = [\"*.pyc\", \".git\", \"*.log\"]\n\n[release]"),
            "{toml}"
        );
        assert!(
            toml.contains(
                "[[process]]\nname = \"uwsgi\"\nrestart = \"supervisor\"\nprogram = \"uwsgi\"\n"
            ),
            "{toml}"
        );
        assert!(
            toml.contains("# The playbook's `supervisorctl restart rq-worker`: a stop and a start, which drops\n# requests; restart = \"uwsgi-chain\" or \"gunicorn-hup\" reloads without (docs/restart.md).\n[[process]]\nname = \"rq-worker\"\nrestart = \"supervisor\"\nprogram = \"rq-worker\"\n"),
            "{toml}"
        );
        assert_eq!(import.notes.len(), notes_before, "{:?}", import.notes);
    }

    #[test]
    fn roles_without_a_restart_leave_a_note() {
        let mut tasks = AnsibleTasks::default();
        read_ansible_tasks("t.yml", "- debug: msg=hi\n", &BTreeMap::new(), &mut tasks).unwrap();
        let mut import = crate::import_ansible("hosts", "", None).unwrap();
        let before = import.clone();
        tasks.apply(&mut import);
        assert_eq!(import.toml, before.toml);
        assert_eq!(import.notes.len(), before.notes.len() + 1);
        assert!(import
            .notes
            .last()
            .unwrap()
            .starts_with("the playbook's roles restart no supervisor program"));
        assert!(read_ansible_tasks("t.yml", "a: [", &BTreeMap::new(), &mut tasks).is_err());
    }
}
