//! `hoist import ansible`: an Ansible INI inventory and `group_vars/all` → hoist.toml text.
//!
//! Pure: the caller reads the files and writes the result. What has no hoist equivalent (Jinja
//! templates, unknown variables, host patterns with letters) is listed in the notes rather than
//! guessed. Hosts keep their inventory names; `ansible_host`, `ansible_port`, `ansible_user` and
//! `ansible_ssh_private_key_file` become `address`, `port`, `user` and `identity_file`, and
//! `ansible_become`/`ansible_become_user` become `become`/`become_user`, on the host or, from
//! `[group:vars]`, on the group. Every group with hosts is selected by one
//! environment, `production`, as the seed's playbooks target them all.

use indexmap::IndexMap;
use serde::Serialize;
use std::collections::BTreeMap;

use crate::app::sanitize_app_name;
use crate::release::check_root;

/// What [`import_ansible`] produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnsibleImport {
    /// A complete hoist.toml, rendered from the typed tables below.
    pub toml: String,
    /// What was not converted, or was guessed and should be checked, one sentence each.
    pub notes: Vec<String>,
    /// The tables [`AnsibleImport::toml`] is rendered from; the roles' tasks add to them.
    pub(crate) file: ImportedFile,
}

/// The hoist.toml an import writes, table by table: serialised with `toml` (the one writer of
/// keys and strings), with the comments for what needs checking put between the tables.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct ImportedFile {
    pub app: AppTable,
    pub release: ReleaseTable,
    pub hosts: IndexMap<String, HostTable>,
    pub groups: IndexMap<String, Connection>,
    pub environment: EnvironmentTable,
    pub processes: Vec<ProcessTable>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub(crate) struct AppTable {
    pub name: String,
    pub entry: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub exclude: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub(crate) struct ReleaseTable {
    pub root: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub releases_dir: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub current_link: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub keep_releases: Option<i64>,
}

/// `[hosts.<name>]`: the address, then the connection settings it shares with groups.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct HostTable {
    pub address: String,
    #[serde(flatten)]
    pub connection: Connection,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<String>,
}

/// The connection settings of a host or a group, as hoist.toml spells them.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub(crate) struct Connection {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub identity_file: Option<String>,
    #[serde(rename = "become", skip_serializing_if = "Option::is_none")]
    pub become_mode: Option<BecomeValue>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub become_user: Option<String>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub vars: BTreeMap<String, String>,
}

/// `become` as hoist.toml spells it: `true`/`false`, or `"all"` for every step of a deploy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub(crate) enum BecomeValue {
    Set(bool),
    All(&'static str),
}

impl BecomeValue {
    /// `become = "all"`.
    pub const ALL: BecomeValue = BecomeValue::All("all");
}

impl Connection {
    fn is_empty(&self) -> bool {
        self == &Self::default()
    }
}

/// `[environments.production]`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub(crate) struct EnvironmentTable {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub hosts: Vec<String>,
}

/// A `[[process]]` the playbook restarts with supervisorctl.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct ProcessTable {
    pub name: String,
    pub restart: String,
    pub program: String,
}

impl ImportedFile {
    /// The file's text: each part serialised, the comments between them.
    pub fn render(&self) -> String {
        let mut out = String::from(
            "# Converted from an Ansible inventory and group_vars/all by `hoist import ansible`.\n\
             # docs/config.md describes every key.\n\n",
        );
        let app = serialise(&Tables {
            app: Some(&self.app),
            release: Some(&self.release),
            ..Tables::default()
        });
        for line in app.lines() {
            if line.starts_with("entry = ") {
                out.push_str(
                    "# Ansible does not say which WSGI/ASGI object to serve: check this.\n",
                );
            } else if line.starts_with("exclude = ") {
                out.push_str("# From the playbook's rsync excludes.\n");
            }
            out.push_str(line);
            out.push('\n');
        }
        let groups: IndexMap<&String, &Connection> =
            self.groups.iter().filter(|(_, c)| !c.is_empty()).collect();
        let mut environments = IndexMap::new();
        if self.environment != EnvironmentTable::default() {
            environments.insert("production", &self.environment);
        }
        let inventory = serialise(&Tables {
            hosts: self.hosts.iter().collect(),
            groups,
            environments,
            ..Tables::default()
        });
        if !inventory.is_empty() {
            out.push('\n');
            out.push_str(&inventory);
        }
        for process in &self.processes {
            out.push_str(&format!(
                "\n# The playbook's `supervisorctl restart {}`: a stop and a start, which drops\n\
                 # requests; restart = \"uwsgi-chain\" or \"gunicorn-hup\" reloads without (docs/restart.md).\n",
                process.program
            ));
            out.push_str(&serialise(&Tables {
                process: std::slice::from_ref(process),
                ..Tables::default()
            }));
        }
        out
    }
}

/// Some of hoist.toml's tables, in the order the file lists them.
#[derive(Serialize, Default)]
struct Tables<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    app: Option<&'a AppTable>,
    #[serde(skip_serializing_if = "Option::is_none")]
    release: Option<&'a ReleaseTable>,
    #[serde(skip_serializing_if = "IndexMap::is_empty")]
    hosts: IndexMap<&'a String, &'a HostTable>,
    #[serde(skip_serializing_if = "IndexMap::is_empty")]
    groups: IndexMap<&'a String, &'a Connection>,
    #[serde(skip_serializing_if = "IndexMap::is_empty")]
    environments: IndexMap<&'static str, &'a EnvironmentTable>,
    #[serde(skip_serializing_if = "<[ProcessTable]>::is_empty")]
    process: &'a [ProcessTable],
}

fn serialise(tables: &Tables<'_>) -> String {
    // Strings, numbers and tables of them always serialise; an error would be a bug in the types
    // above, and the text says so rather than dropping a table silently.
    toml::to_string(tables).unwrap_or_else(|e| format!("# hoist could not write this part: {e}\n"))
}

/// Why an inventory could not be read; names the file and line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}{}: {message}", line.map(|l| format!(":{l}")).unwrap_or_default())]
pub struct AnsibleImportError {
    /// The file as the caller named it.
    pub file: String,
    /// 1-based line, when known.
    pub line: Option<usize>,
    /// What is wrong.
    pub message: String,
}

/// Connection settings Ansible spells as variables.
#[derive(Debug, Default, Clone)]
struct Settings {
    address: Option<String>,
    port: Option<String>,
    user: Option<String>,
    identity_file: Option<String>,
    become_mode: Option<String>,
    become_user: Option<String>,
    vars: BTreeMap<String, String>,
}

#[derive(Debug, Default)]
struct Parsed {
    /// Hosts in order of first appearance, with their own settings.
    hosts: Vec<(String, Settings)>,
    /// Group → its hosts in order, and its `:vars`.
    groups: BTreeMap<String, (Vec<String>, Settings)>,
    /// Group names in order of first appearance.
    group_order: Vec<String>,
    /// Parent → child groups (`[parent:children]`).
    children: BTreeMap<String, Vec<String>>,
}

/// Converts an Ansible INI inventory (`inventory`, read from `inventory_name`) and the YAML text
/// of `group_vars/all` (when there is one) into hoist.toml text.
///
/// # Errors
///
/// A line of the inventory that is not INI, or YAML that does not parse.
pub fn import_ansible(
    inventory_name: &str,
    inventory: &str,
    group_vars_all: Option<&str>,
) -> Result<AnsibleImport, AnsibleImportError> {
    let mut notes = Vec::new();
    let parsed = parse_inventory(inventory_name, inventory, &mut notes)?;
    let vars = match group_vars_all {
        None => BTreeMap::new(),
        Some(text) => parse_group_vars(text)?,
    };
    let release = release_settings(&vars, &mut notes);

    let app_name = release
        .root
        .as_deref()
        .and_then(|r| r.rsplit('/').find(|part| !part.is_empty()))
        .map_or_else(|| "app".to_owned(), sanitize_app_name);
    notes.push(format!(
        "app.name {app_name:?} and app.entry \"app:app\" are guesses: Ansible's files do not name the application; set them"
    ));
    let root = release.root.clone().unwrap_or_else(|| {
        notes.push("no usable project_root in group_vars/all: release.root is set to \"/srv/app\"; set it to the directory that holds the builds".to_owned());
        "/srv/app".to_owned()
    });
    let mut file = ImportedFile {
        app: AppTable {
            name: app_name,
            entry: "app:app".to_owned(),
            exclude: Vec::new(),
        },
        release: ReleaseTable {
            root,
            releases_dir: release.releases_dir.clone(),
            current_link: release.current_link.clone(),
            keep_releases: release.keep_releases,
        },
        ..ImportedFile::default()
    };

    for (name, settings) in &parsed.hosts {
        let host = HostTable {
            address: settings.address.clone().unwrap_or_else(|| name.clone()),
            connection: connection(settings, &format!("host {name}"), &mut notes),
            groups: groups_of(&parsed, name),
        };
        file.hosts.insert(name.clone(), host);
    }

    for group in &parsed.group_order {
        let Some((_, settings)) = parsed.groups.get(group) else {
            continue;
        };
        if settings.address.is_some() {
            notes.push(format!(
                "ansible_host in [{group}:vars] is not converted: an address belongs to one host"
            ));
        }
        let connection = connection(settings, &format!("group {group}"), &mut notes);
        file.groups.insert(group.clone(), connection);
    }

    file.environment.groups = parsed
        .group_order
        .iter()
        .filter(|g| !groups_hosts(&parsed, g).is_empty() && *g != "ungrouped")
        .cloned()
        .collect();
    file.environment.hosts = parsed
        .hosts
        .iter()
        .map(|(name, _)| name)
        .filter(|name| groups_of(&parsed, name).is_empty())
        .cloned()
        .collect();
    if file.environment == EnvironmentTable::default() {
        notes.push(
            "the inventory lists no hosts: no [hosts] or [environments] were written".to_owned(),
        );
    }

    Ok(AnsibleImport {
        toml: file.render(),
        notes,
        file,
    })
}

/// The settings hoist.toml can hold; what it cannot (Jinja, a port that is not one) is noted.
fn connection(settings: &Settings, owner: &str, notes: &mut Vec<String>) -> Connection {
    let mut out = Connection {
        user: settings.user.clone(),
        ..Connection::default()
    };
    if let Some(port) = &settings.port {
        match port.parse::<u16>() {
            Ok(p) if p > 0 => out.port = Some(p),
            _ => notes.push(format!(
                "{owner}: ansible_port {port:?} is not a port number and was not converted"
            )),
        }
    }
    if let Some(key_file) = &settings.identity_file {
        if key_file.contains("{{") {
            notes.push(format!("{owner}: ansible_ssh_private_key_file {key_file:?} uses Jinja and was not converted"));
        } else {
            out.identity_file = Some(key_file.clone());
        }
    }
    if let Some(flag) = &settings.become_mode {
        match ansible_bool(flag) {
            Some(on) => out.become_mode = Some(BecomeValue::Set(on)),
            None => notes.push(format!(
                "{owner}: ansible_become {flag:?} is not a boolean and was not converted"
            )),
        }
    }
    if let Some(user) = &settings.become_user {
        if user.contains("{{") {
            notes.push(format!(
                "{owner}: ansible_become_user {user:?} uses Jinja and was not converted"
            ));
        } else {
            out.become_user = Some(user.clone());
        }
    }
    for (k, v) in &settings.vars {
        if v.contains("{{") {
            notes.push(format!(
                "{owner}: variable {k} = {v:?} uses Jinja and was not converted"
            ));
        } else {
            out.vars.insert(k.clone(), v.clone());
        }
    }
    out
}

/// Ansible's booleans: `yes`/`no`, `true`/`false` (any case), `on`/`off`, `1`/`0`.
pub(crate) fn ansible_bool(text: &str) -> Option<bool> {
    match text.trim().to_ascii_lowercase().as_str() {
        "yes" | "true" | "on" | "1" | "y" => Some(true),
        "no" | "false" | "off" | "0" | "n" => Some(false),
        _ => None,
    }
}

/// Groups a host belongs to, directly or through `[parent:children]`, in inventory order.
fn groups_of(parsed: &Parsed, host: &str) -> Vec<String> {
    parsed
        .group_order
        .iter()
        .filter(|g| *g != "ungrouped" && *g != "all")
        .filter(|g| groups_hosts(parsed, g).iter().any(|h| h == host))
        .cloned()
        .collect()
}

/// A group's hosts, including those of its child groups.
fn groups_hosts(parsed: &Parsed, group: &str) -> Vec<String> {
    let mut hosts = Vec::new();
    let mut stack = vec![group.to_owned()];
    let mut seen = Vec::new();
    while let Some(g) = stack.pop() {
        if seen.contains(&g) {
            continue;
        }
        if let Some((members, _)) = parsed.groups.get(&g) {
            hosts.extend(members.iter().cloned());
        }
        if let Some(kids) = parsed.children.get(&g) {
            stack.extend(kids.iter().cloned());
        }
        seen.push(g);
    }
    hosts
}

#[derive(Clone, Copy, PartialEq)]
enum Section {
    Hosts,
    Vars,
    Children,
}

fn parse_inventory(
    file: &str,
    text: &str,
    notes: &mut Vec<String>,
) -> Result<Parsed, AnsibleImportError> {
    let mut parsed = Parsed::default();
    let mut group = "ungrouped".to_owned();
    let mut section = Section::Hosts;
    let error = |line: usize, message: String| AnsibleImportError {
        file: file.to_owned(),
        line: Some(line),
        message,
    };
    for (index, raw_line) in text.lines().enumerate() {
        let number = index + 1;
        let line = raw_line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(header) = line.strip_prefix('[') {
            let header = header.strip_suffix(']').ok_or_else(|| {
                error(
                    number,
                    format!("section header {line:?} has no closing \"]\""),
                )
            })?;
            let (name, kind) = header.split_once(':').unwrap_or((header, ""));
            section = match kind {
                "" => Section::Hosts,
                "vars" => Section::Vars,
                "children" => Section::Children,
                other => {
                    return Err(error(
                        number,
                        format!(
                            "unknown section kind \":{other}\"; Ansible knows :vars and :children"
                        ),
                    ))
                }
            };
            group = name.trim().to_owned();
            if !is_name(&group) {
                return Err(error(number, format!("group name {group:?} has characters hoist does not allow in names (letters, digits, . _ -)")));
            }
            ensure_group(&mut parsed, &group);
            continue;
        }
        match section {
            Section::Hosts => {
                let mut words = split_words(line).into_iter();
                let pattern = words.next().unwrap_or_default();
                let mut conn = Settings::default();
                for word in words {
                    let (k, v) = word.split_once('=').ok_or_else(|| {
                        error(
                            number,
                            format!("{word:?} after host {pattern:?} is not key=value"),
                        )
                    })?;
                    set_var(&mut conn, k, v, &format!("host {pattern}"), notes);
                }
                for name in expand_pattern(&pattern).map_err(|m| error(number, m))? {
                    if !is_name(&name) {
                        return Err(error(number, format!("host {name:?} has characters hoist does not allow in names (letters, digits, . _ -)")));
                    }
                    ensure_group(&mut parsed, &group);
                    if let Some((_, existing)) = parsed.hosts.iter_mut().find(|(n, _)| *n == name) {
                        merge(existing, &conn);
                    } else {
                        parsed.hosts.push((name.clone(), conn.clone()));
                    }
                    let members = &mut parsed.groups.get_mut(&group).expect("ensured").0;
                    if !members.contains(&name) {
                        members.push(name);
                    }
                }
            }
            Section::Vars => {
                let (k, v) = line.split_once('=').ok_or_else(|| {
                    error(
                        number,
                        format!("{line:?} in [{group}:vars] is not key=value"),
                    )
                })?;
                let conn = &mut parsed.groups.get_mut(&group).expect("ensured").1;
                set_var(
                    conn,
                    k.trim(),
                    &unquote(v.trim()),
                    &format!("group {group}"),
                    notes,
                );
            }
            Section::Children => {
                let child = line.to_owned();
                ensure_group(&mut parsed, &child);
                parsed
                    .children
                    .entry(group.clone())
                    .or_default()
                    .push(child);
            }
        }
    }
    Ok(parsed)
}

fn ensure_group(parsed: &mut Parsed, group: &str) {
    if !parsed.groups.contains_key(group) {
        parsed
            .groups
            .insert(group.to_owned(), (Vec::new(), Settings::default()));
        parsed.group_order.push(group.to_owned());
    }
}

fn merge(base: &mut Settings, top: &Settings) {
    if top.address.is_some() {
        base.address.clone_from(&top.address);
    }
    if top.port.is_some() {
        base.port.clone_from(&top.port);
    }
    if top.user.is_some() {
        base.user.clone_from(&top.user);
    }
    if top.identity_file.is_some() {
        base.identity_file.clone_from(&top.identity_file);
    }
    if top.become_mode.is_some() {
        base.become_mode.clone_from(&top.become_mode);
    }
    if top.become_user.is_some() {
        base.become_user.clone_from(&top.become_user);
    }
    base.vars.extend(top.vars.clone());
}

fn set_var(conn: &mut Settings, key: &str, value: &str, owner: &str, notes: &mut Vec<String>) {
    let value = unquote(value);
    match key {
        "ansible_host" | "ansible_ssh_host" => conn.address = Some(value),
        "ansible_port" | "ansible_ssh_port" => conn.port = Some(value),
        "ansible_user" | "ansible_ssh_user" => conn.user = Some(value),
        "ansible_ssh_private_key_file" | "ansible_private_key_file" => {
            conn.identity_file = Some(value);
        }
        "ansible_become" => conn.become_mode = Some(value),
        "ansible_become_user" => conn.become_user = Some(value),
        "ansible_become_method" if value == "sudo" => {}
        "ansible_become_method" => notes.push(format!(
            "{owner}: ansible_become_method={value} is not converted: hoist's become runs `sudo -n`"
        )),
        "ansible_become_pass" | "ansible_become_password" => notes.push(format!(
            "{owner}: {key} is not converted: hoist never types a sudo password; give the login user a NOPASSWD rule in /etc/sudoers.d (docs/config.md, `become`)"
        )),
        other if other.starts_with("ansible_") => notes.push(format!(
            "{owner}: {other}={value} is an Ansible connection setting with no hoist.toml key; not converted (an ssh_config can carry it: [ssh] config_file)"
        )),
        other => {
            conn.vars.insert(other.to_owned(), value);
        }
    }
}

/// Splits a host line on whitespace, keeping quoted values (`k="a b"`) whole.
fn split_words(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut current = String::new();
    let mut quote_char: Option<char> = None;
    for c in line.chars() {
        match quote_char {
            Some(q) if c == q => quote_char = None,
            Some(_) => current.push(c),
            None if c == '"' || c == '\'' => quote_char = Some(c),
            None if c.is_whitespace() => {
                if !current.is_empty() {
                    words.push(std::mem::take(&mut current));
                }
            }
            None if c == '#' && current.is_empty() => break,
            None => current.push(c),
        }
    }
    if !current.is_empty() {
        words.push(current);
    }
    words
}

fn unquote(value: &str) -> String {
    let v = value.trim();
    for q in ['"', '\''] {
        if v.len() >= 2 && v.starts_with(q) && v.ends_with(q) {
            return v[1..v.len() - 1].to_owned();
        }
    }
    v.to_owned()
}

/// `web[01:03].example.com` → web01, web02, web03 (numeric ranges keep their zero padding).
fn expand_pattern(pattern: &str) -> Result<Vec<String>, String> {
    let Some((before, rest)) = pattern.split_once('[') else {
        return Ok(vec![pattern.to_owned()]);
    };
    let (range, after) = rest
        .split_once(']')
        .ok_or_else(|| format!("host pattern {pattern:?} has no closing \"]\""))?;
    let (start, end) = range
        .split_once(':')
        .ok_or_else(|| format!("host pattern {pattern:?}: expected a range like [01:10]"))?;
    let (Ok(first), Ok(last)) = (start.parse::<u32>(), end.parse::<u32>()) else {
        return Err(format!(
            "host pattern {pattern:?}: only numeric ranges like [01:10] are converted; list the hosts one per line"
        ));
    };
    if first > last {
        return Err(format!(
            "host pattern {pattern:?}: the range runs backwards"
        ));
    }
    let width = if start.starts_with('0') {
        start.len()
    } else {
        0
    };
    let mut names = Vec::new();
    for n in first..=last {
        for tail in expand_pattern(after)? {
            names.push(format!("{before}{n:0width$}{tail}"));
        }
    }
    Ok(names)
}

fn is_name(text: &str) -> bool {
    !text.is_empty()
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

pub(crate) fn parse_group_vars(
    text: &str,
) -> Result<BTreeMap<String, serde_json::Value>, AnsibleImportError> {
    let doc: Option<BTreeMap<String, serde_json::Value>> =
        serde_saphyr::from_str(text).map_err(|e| AnsibleImportError {
            file: "group_vars/all".to_owned(),
            line: None,
            message: format!(
                "not a YAML mapping of variables: {}",
                e.to_string().lines().next().unwrap_or_default()
            ),
        })?;
    Ok(doc.unwrap_or_default())
}

#[derive(Default)]
struct ReleaseSettings {
    root: Option<String>,
    releases_dir: Option<String>,
    current_link: Option<String>,
    keep_releases: Option<i64>,
}

/// The seed's variables: project_root, builds_dir, current_release_dir, keep_releases.
fn release_settings(
    vars: &BTreeMap<String, serde_json::Value>,
    notes: &mut Vec<String>,
) -> ReleaseSettings {
    let mut out = ReleaseSettings::default();
    let text = |key: &str| vars.get(key).map(value_text);
    let jinja = |notes: &mut Vec<String>, key: &str, value: &str| {
        notes.push(format!(
            "group_vars/all: {key} = {value:?} uses Jinja ({{{{ }}}}) and was not converted"
        ));
    };
    if let Some(root) = text("project_root") {
        if root.contains("{{") {
            jinja(notes, "project_root", &root);
        } else {
            match check_root(&root) {
                Ok(path) => out.root = Some(path.display().to_string()),
                Err((message, _)) => notes.push(format!(
                    "group_vars/all: project_root: {message}; not converted"
                )),
            }
        }
    }
    let under_root = |value: &str, key: &str, notes: &mut Vec<String>| -> Option<String> {
        if value.contains("{{") {
            jinja(notes, key, value);
            return None;
        }
        let root = out.root.as_deref()?;
        let name = value
            .trim_end_matches('/')
            .strip_prefix(root)?
            .strip_prefix('/')?;
        if is_name(name) && name != "." && name != ".." {
            Some(name.to_owned())
        } else {
            notes.push(format!("group_vars/all: {key} = {value:?} is not a folder directly under project_root; not converted"));
            None
        }
    };
    if let Some(builds) = text("builds_dir") {
        out.releases_dir = under_root(&builds, "builds_dir", notes);
    }
    if let Some(current) = text("current_release_dir") {
        out.current_link = under_root(&current, "current_release_dir", notes);
    }
    if let Some(keep) = vars.get("keep_releases") {
        match keep.as_i64().or_else(|| value_text(keep).parse().ok()) {
            Some(n) if n >= 2 => out.keep_releases = Some(n),
            Some(n) => {
                notes.push(format!("group_vars/all: keep_releases = {n} is below hoist's minimum of 2 (it would delete the rollback target); keep_releases = 2 was written"));
                out.keep_releases = Some(2);
            }
            None => notes.push(format!(
                "group_vars/all: keep_releases = {keep} is not a number; not converted"
            )),
        }
    }
    for (key, value) in vars {
        let value = value_text(value);
        let jinja = if value.contains("{{") {
            " uses Jinja and"
        } else {
            ""
        };
        match key.as_str() {
            "project_root" | "builds_dir" | "current_release_dir" | "keep_releases" => {}
            "project_source" => notes.push(format!(
                "group_vars/all: project_source = {value:?}{jinja} is not converted: hoist deploys the directory that holds hoist.toml (set app.source to change it)"
            )),
            "excludes_file" => notes.push(format!(
                "group_vars/all: excludes_file = {value:?}{jinja} is not converted: copy its patterns into app.exclude (hoist already leaves out .git and what .gitignore ignores)"
            )),
            other => notes.push(format!("group_vars/all: {other} = {value:?}{jinja} is not converted: hoist.toml has no equivalent")),
        }
    }
    out
}

pub(crate) fn value_text(value: &serde_json::Value) -> String {
    match value {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numeric_ranges_expand_with_padding() {
        assert_eq!(
            expand_pattern("web[01:03].example.com").unwrap(),
            vec![
                "web01.example.com",
                "web02.example.com",
                "web03.example.com"
            ]
        );
        assert_eq!(
            expand_pattern("db[8:10]").unwrap(),
            vec!["db8", "db9", "db10"]
        );
        assert!(expand_pattern("web[a:c]")
            .unwrap_err()
            .contains("only numeric ranges"));
    }

    #[test]
    fn quoted_values_stay_whole() {
        assert_eq!(
            split_words("web1 ansible_host=10.0.0.1 motd=\"hello world\" # comment"),
            vec!["web1", "ansible_host=10.0.0.1", "motd=hello world"]
        );
    }

    #[test]
    fn hosts_with_dots_are_quoted_keys_and_the_text_parses_back() {
        let import = import_ansible(
            "hosts",
            "[web]\nour.url.com ansible_user=deploy share=C:\\dir\\\n",
            None,
        )
        .unwrap();
        assert!(
            import.toml.contains(
                "[hosts.\"our.url.com\"]\naddress = \"our.url.com\"\nuser = \"deploy\"\n"
            ),
            "{}",
            import.toml
        );
        let back: toml::Table = toml::from_str(&import.toml).unwrap();
        assert_eq!(
            back["hosts"]["our.url.com"]["vars"]["share"].as_str(),
            Some("C:\\dir\\")
        );
    }
}
