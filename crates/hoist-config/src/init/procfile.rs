//! What a Procfile line says: which server runs the app, its entry point, pid file, FIFO and port.

use std::path::Path;

use crate::Entry;

/// One `type: command` line of a Procfile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ProcfileLine {
    pub kind: String,
    pub command: String,
}

/// The lines of a Procfile, skipping blanks and comments.
pub(crate) fn parse_procfile(text: &str) -> Vec<ProcfileLine> {
    text.lines()
        .filter(|line| !line.trim_start().starts_with('#'))
        .filter_map(|line| line.split_once(':'))
        .map(|(kind, command)| ProcfileLine {
            kind: kind.trim().to_owned(),
            command: command.trim().to_owned(),
        })
        .filter(|line| {
            !line.kind.is_empty() && !line.kind.contains(' ') && !line.command.is_empty()
        })
        .collect()
}

/// The WSGI/ASGI servers hoist recognises on a command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Server {
    Gunicorn,
    Uwsgi,
    Uvicorn,
}

/// What a server command line tells about the app.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ServerCommand {
    pub server: Server,
    pub entry: Option<Entry>,
    /// gunicorn's `--pid`.
    pub pidfile: Option<String>,
    /// uWSGI's `--master-fifo`.
    pub fifo: Option<String>,
    /// The TCP port it listens on, when written as a number.
    pub port: Option<u16>,
}

/// Reads a command such as `gunicorn app:app --bind 0.0.0.0:8000` or `uvicorn main:app`.
/// `project` is where a uWSGI `.ini` named on the command line is looked up.
pub(crate) fn analyze(command: &str, project: &Path) -> Option<ServerCommand> {
    let tokens = split_words(command);
    let (position, server) = tokens.iter().enumerate().find_map(|(i, token)| {
        let program = token.rsplit('/').next().unwrap_or(token);
        let server = match program {
            "gunicorn" => Server::Gunicorn,
            "uwsgi" => Server::Uwsgi,
            "uvicorn" => Server::Uvicorn,
            _ => return None,
        };
        Some((i, server))
    })?;
    let options = Options::read(&tokens[position + 1..]);
    let mut found = ServerCommand {
        server,
        entry: None,
        pidfile: None,
        fifo: None,
        port: None,
    };
    match server {
        Server::Gunicorn => {
            found.entry = options.positional_entry();
            found.pidfile = options.value(&["--pid", "-p"]);
            found.port = options
                .value(&["--bind", "-b"])
                .or_else(|| {
                    let config = options.value(&["--config", "-c"])?;
                    bind_in_gunicorn_config(&std::fs::read_to_string(project.join(config)).ok()?)
                })
                .and_then(|b| port_of(&b));
        }
        Server::Uvicorn => {
            found.entry = options.positional_entry().map(|entry| {
                if options.flag("--factory") && !entry.attribute.ends_with(')') {
                    Entry {
                        attribute: format!("{}()", entry.attribute),
                        ..entry
                    }
                } else {
                    entry
                }
            });
            found.port = options
                .value(&["--port"])
                .and_then(|p| p.parse().ok())
                .or(Some(8000));
        }
        Server::Uwsgi => {
            let mut settings = UwsgiSettings::from_options(&options);
            let ini = options.value(&["--ini"]).or_else(|| {
                options
                    .positional
                    .iter()
                    .find(|p| p.ends_with(".ini"))
                    .cloned()
            });
            if let Some(ini) = ini {
                if let Ok(text) = std::fs::read_to_string(project.join(ini)) {
                    settings.fill_from_ini(&text);
                }
            }
            found.entry = settings.entry();
            found.fifo = settings.fifo;
            found.port = settings.http.as_deref().and_then(port_of);
        }
    }
    Some(found)
}

/// The first address of `bind = "..."` (or `bind = ["...", ...]`) in a gunicorn.conf.py.
fn bind_in_gunicorn_config(text: &str) -> Option<String> {
    text.lines().find_map(|line| {
        let value = line.strip_prefix("bind")?.trim_start().strip_prefix('=')?;
        let value = value.trim().trim_start_matches('[').trim_start();
        let quote = value.chars().next().filter(|c| *c == '"' || *c == '\'')?;
        value[1..].split(quote).next().map(str::to_owned)
    })
}

/// The commands of a shell line chained with `;` or `&&`, in order, trimmed; separators
/// inside quotes are part of their command.
pub(crate) fn split_chain(command: &str) -> Vec<String> {
    let mut parts = Vec::new();
    let mut part = String::new();
    let mut quote: Option<char> = None;
    let mut chars = command.chars().peekable();
    while let Some(c) = chars.next() {
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None if c == '\'' || c == '"' => quote = Some(c),
            None if c == ';' => {
                parts.push(std::mem::take(&mut part));
                continue;
            }
            None if c == '&' && chars.peek() == Some(&'&') => {
                chars.next();
                parts.push(std::mem::take(&mut part));
                continue;
            }
            None => {}
        }
        part.push(c);
    }
    parts.push(part);
    parts
        .into_iter()
        .map(|p| p.trim().to_owned())
        .filter(|p| !p.is_empty())
        .collect()
}

/// Options of a command line: `--key value`, `--key=value`, `-k value` and positionals.
struct Options {
    pairs: Vec<(String, Option<String>)>,
    positional: Vec<String>,
}

/// Options that take no value, so the word after them is not theirs.
const FLAGS: &[&str] = &[
    "--factory",
    "--reload",
    "--master",
    "-M",
    "--daemon",
    "-D",
    "--preload",
    "--enable-threads",
    "--vacuum",
    "--die-on-term",
    "--lazy-apps",
    "--proxy-headers",
    "--no-access-log",
];

impl Options {
    fn read(tokens: &[String]) -> Self {
        let mut pairs = Vec::new();
        let mut positional = Vec::new();
        let mut i = 0;
        while i < tokens.len() {
            let token = &tokens[i];
            if token.starts_with('-') && token.len() > 1 {
                if let Some((key, value)) =
                    token.split_once('=').filter(|_| token.starts_with("--"))
                {
                    pairs.push((key.to_owned(), Some(value.to_owned())));
                } else if FLAGS.contains(&token.as_str()) {
                    pairs.push((token.clone(), None));
                } else {
                    let value = tokens
                        .get(i + 1)
                        .filter(|next| !next.starts_with('-'))
                        .cloned();
                    if value.is_some() {
                        i += 1;
                    }
                    pairs.push((token.clone(), value));
                }
            } else {
                positional.push(token.clone());
            }
            i += 1;
        }
        Self { pairs, positional }
    }

    fn value(&self, names: &[&str]) -> Option<String> {
        self.pairs
            .iter()
            .find(|(key, value)| names.contains(&key.as_str()) && value.is_some())
            .and_then(|(_, value)| value.clone())
    }

    fn flag(&self, name: &str) -> bool {
        self.pairs.iter().any(|(key, _)| key == name)
    }

    fn positional_entry(&self) -> Option<Entry> {
        self.positional
            .iter()
            .rev()
            .find_map(|p| Entry::parse(p).ok())
    }
}

#[derive(Default)]
struct UwsgiSettings {
    module: Option<String>,
    wsgi_file: Option<String>,
    callable: Option<String>,
    fifo: Option<String>,
    http: Option<String>,
}

impl UwsgiSettings {
    fn from_options(options: &Options) -> Self {
        Self {
            module: options.value(&["--module", "-w", "--wsgi"]),
            wsgi_file: options.value(&["--wsgi-file", "--file"]),
            callable: options.value(&["--callable"]),
            fifo: options.value(&["--master-fifo"]),
            http: options.value(&["--http", "--http-socket", "--socket", "-s"]),
        }
    }

    /// Settings of the `[uwsgi]` section that the command line did not set.
    fn fill_from_ini(&mut self, text: &str) {
        let mut in_uwsgi = false;
        for line in text.lines() {
            let line = line.trim();
            if line.starts_with('[') {
                in_uwsgi = line == "[uwsgi]";
                continue;
            }
            let Some((key, value)) = line.split_once('=').filter(|_| in_uwsgi) else {
                continue;
            };
            let value = Some(value.trim().to_owned());
            let slot = match key.trim() {
                "module" | "wsgi" => &mut self.module,
                "wsgi-file" | "file" => &mut self.wsgi_file,
                "callable" => &mut self.callable,
                "master-fifo" => &mut self.fifo,
                "http" | "http-socket" | "socket" => &mut self.http,
                _ => continue,
            };
            if slot.is_none() {
                *slot = value;
            }
        }
    }

    /// uWSGI's entry: `module:callable`, or a module / file with `callable` (default
    /// `application`, as uWSGI assumes).
    fn entry(&self) -> Option<Entry> {
        let callable = self.callable.as_deref().unwrap_or("application");
        let text = match (&self.module, &self.wsgi_file) {
            (Some(module), _) if module.contains(':') => module.clone(),
            (Some(module), _) => format!("{module}:{callable}"),
            (None, Some(file)) => {
                let module = file
                    .trim_start_matches("./")
                    .trim_end_matches(".py")
                    .replace('/', ".");
                format!("{module}:{callable}")
            }
            (None, None) => return None,
        };
        Entry::parse(&text).ok()
    }
}

/// The port of `host:port` or `:port`, when it is a number (not `$PORT` or a socket path).
fn port_of(bind: &str) -> Option<u16> {
    bind.rsplit_once(':')
        .and_then(|(_, port)| port.parse().ok())
}

/// Splits a command line into words, honouring single and double quotes.
fn split_words(command: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut quote: Option<char> = None;
    for c in command.chars() {
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => word.push(c),
            None if c == '\'' || c == '"' => {
                quote = Some(c);
                in_word = true;
            }
            None if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            None => {
                word.push(c);
                in_word = true;
            }
        }
    }
    if in_word {
        words.push(word);
    }
    words
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(command: &str) -> ServerCommand {
        analyze(command, Path::new("/nonexistent")).expect("a server command")
    }

    #[test]
    fn procfile_lines_are_kind_and_command() {
        let lines =
            parse_procfile("# comment\nweb: gunicorn app:app\n\nworker:  celery -A app worker\n");
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0].kind, "web");
        assert_eq!(lines[1].command, "celery -A app worker");
    }

    #[test]
    fn gunicorn_entry_pidfile_and_port() {
        let cmd =
            read("gunicorn --bind 0.0.0.0:8000 --pid /run/x/gunicorn.pid -w 3 'app:create_app()'");
        assert_eq!(cmd.server, Server::Gunicorn);
        assert_eq!(cmd.entry.unwrap().to_string(), "app:create_app()");
        assert_eq!(cmd.pidfile.as_deref(), Some("/run/x/gunicorn.pid"));
        assert_eq!(cmd.port, Some(8000));
    }

    #[test]
    fn a_bind_address_is_not_an_entry_point() {
        let cmd = read("exec .venv/bin/gunicorn -b localhost:5000 --bind=:$PORT wsgi:app");
        assert_eq!(cmd.entry.unwrap().to_string(), "wsgi:app");
        assert_eq!(cmd.port, Some(5000));
    }

    #[test]
    fn uvicorn_factory_becomes_a_call() {
        let cmd = read("uvicorn main:create_app --factory --host 0.0.0.0 --port 9000");
        assert_eq!(cmd.entry.unwrap().to_string(), "main:create_app()");
        assert_eq!(cmd.port, Some(9000));
    }

    #[test]
    fn uwsgi_module_file_and_fifo() {
        let cmd = read("uwsgi --http :8080 --module mysite.wsgi --master-fifo /run/u.fifo");
        assert_eq!(cmd.entry.unwrap().to_string(), "mysite.wsgi:application");
        assert_eq!(cmd.fifo.as_deref(), Some("/run/u.fifo"));
        assert_eq!(cmd.port, Some(8080));
        let cmd = read("uwsgi --wsgi-file app.py --callable app --master");
        assert_eq!(cmd.entry.unwrap().to_string(), "app:app");
    }

    #[test]
    fn uwsgi_reads_its_ini_file() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("uwsgi.ini"),
            "[uwsgi]\nmodule = app:app\nmaster-fifo = /run/app.fifo\nhttp = 127.0.0.1:8001\n",
        )
        .unwrap();
        let cmd = analyze("uwsgi --ini uwsgi.ini", dir.path()).unwrap();
        assert_eq!(cmd.entry.unwrap().to_string(), "app:app");
        assert_eq!(cmd.fifo.as_deref(), Some("/run/app.fifo"));
        assert_eq!(cmd.port, Some(8001));
    }

    #[test]
    fn chained_commands_are_split_outside_quotes() {
        assert_eq!(
            split_chain("flask db upgrade; flask translate compile; gunicorn microblog:app"),
            [
                "flask db upgrade",
                "flask translate compile",
                "gunicorn microblog:app"
            ]
        );
        assert_eq!(
            split_chain("python manage.py migrate && echo 'a; b && c' ;gunicorn x:y;"),
            [
                "python manage.py migrate",
                "echo 'a; b && c'",
                "gunicorn x:y"
            ]
        );
    }

    #[test]
    fn gunicorn_reads_bind_from_its_config_file() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("gunicorn.conf.py"),
            "workers = 3\nbind = [\"127.0.0.1:8123\", \"[::1]:8123\"]\n",
        )
        .unwrap();
        let cmd = analyze("gunicorn -c gunicorn.conf.py app:app", dir.path()).unwrap();
        assert_eq!(cmd.port, Some(8123));
    }

    #[test]
    fn other_programs_are_not_servers() {
        assert_eq!(analyze("celery -A app worker", Path::new(".")), None);
        assert_eq!(analyze("python manage.py runserver", Path::new(".")), None);
    }
}
