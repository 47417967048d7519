//! `hoist setup`: shows what it would write as a diff, writes only with --apply, says when
//! the host is up to date, and takes the user's templates in place of its own.

use std::fs;
use std::path::PathBuf;

use crate::support::{assert_exit, stderr, stdout, Site, EXIT_CONFIG, EXIT_OK};

struct SetupSite {
    site: Site,
    supervisor_dir: PathBuf,
    nginx_dir: PathBuf,
    config_dir: PathBuf,
}

fn site_with_setup(server: &str) -> SetupSite {
    let site = Site::new();
    let base = site.dir.path().to_path_buf();
    let mut config = fs::read_to_string(&site.config).unwrap();
    config.push_str(&format!(
        "\n[setup]\nserver = \"{server}\"\nport = 8123\nworkers = 3\nsupervisor_dir = \"{b}/supervisor.d\"\nnginx_dir = \"{b}/nginx.d\"\nnginx_listen = \"127.0.0.1:8124\"\n",
        b = base.display()
    ));
    fs::write(&site.config, config).unwrap();
    SetupSite {
        supervisor_dir: base.join("supervisor.d"),
        nginx_dir: base.join("nginx.d"),
        config_dir: site.root.join("shared/setup"),
        site,
    }
}

#[test]
fn setup_shows_a_diff_writes_only_with_apply_and_then_is_up_to_date() {
    let s = site_with_setup("gunicorn");
    let nginx = s.nginx_dir.join("example.conf");
    let program = s.supervisor_dir.join("example.conf");
    let gunicorn = s.config_dir.join("gunicorn.conf.py");
    let loader = s.config_dir.join("hoist_loader.py");

    let out = s.site.hoist(&["setup"]);
    assert_exit(&out, EXIT_OK);
    let shown = stdout(&out);
    for (path, template) in [
        (&loader, "hoist_loader.py"),
        (&gunicorn, "gunicorn.conf.py"),
        (&program, "supervisor.conf"),
        (&nginx, "nginx.conf"),
    ] {
        assert!(
            shown.contains(&format!("create {} (from {template})", path.display())),
            "{shown}"
        );
        assert!(!path.exists(), "{} written without --apply", path.display());
    }
    assert!(
        shown.contains(&format!("+++ {}", nginx.display())),
        "{shown}"
    );
    assert!(shown.contains("+    listen 127.0.0.1:8124;"), "{shown}");
    assert!(shown.contains("+workers = 3"), "{shown}");
    assert!(
        stderr(&out).contains("nothing written; run `hoist setup --apply`"),
        "{}",
        stderr(&out)
    );

    let out = s.site.hoist(&["setup", "--apply"]);
    assert_exit(&out, EXIT_OK);
    let conf = fs::read_to_string(&gunicorn).unwrap();
    assert!(conf.contains("bind = \"127.0.0.1:8123\""), "{conf}");
    assert!(
        conf.contains("wsgi_app = \"hoist_loader:application\""),
        "{conf}"
    );
    assert!(conf.contains("preload_app = False"), "{conf}");
    let program_text = fs::read_to_string(&program).unwrap();
    assert!(
        program_text.contains("[program:example-web]"),
        "{program_text}"
    );
    assert!(
        program_text.contains(&format!(
            "command = {}/current/.venv/bin/gunicorn --config {}",
            s.site.root.display(),
            gunicorn.display()
        )),
        "{program_text}"
    );
    let loader_text = fs::read_to_string(&loader).unwrap();
    assert!(
        loader_text.contains(&format!("ROOT = \"{}\"", s.site.root.display())),
        "{loader_text}"
    );
    assert!(loader_text.contains("ENTRY = \"app:app\""), "{loader_text}");
    assert!(s.site.root.join("shared/run").is_dir());
    assert!(s.site.root.join("shared/logs").is_dir());

    let out = s.site.hoist(&["setup"]);
    assert_exit(&out, EXIT_OK);
    assert!(
        stdout(&out).contains(&format!("unchanged {} (from nginx.conf)", nginx.display())),
        "{}",
        stdout(&out)
    );
    assert!(!stdout(&out).contains("+++"), "{}", stdout(&out));
    assert!(
        stderr(&out).contains("setup: local is up to date"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn uwsgi_gets_an_ini_with_lazy_apps_and_the_fifo_the_process_names() {
    let s = site_with_setup("uwsgi");
    let out = s.site.hoist(&["setup", "--apply"]);
    assert_exit(&out, EXIT_OK);
    let ini = fs::read_to_string(s.config_dir.join("uwsgi.ini")).unwrap();
    assert!(ini.contains("lazy-apps = true"), "{ini}");
    assert!(ini.contains("http-socket = 127.0.0.1:8123"), "{ini}");
    assert!(ini.contains("processes = 3"), "{ini}");
    assert!(
        ini.contains(&format!(
            "master-fifo = {}",
            s.site.root.join("shared/run/uwsgi.fifo").display()
        )),
        "{ini}"
    );
    assert!(!s.config_dir.join("gunicorn.conf.py").exists());
}

#[test]
fn a_template_in_deploy_templates_replaces_the_embedded_one() {
    let s = site_with_setup("gunicorn");
    let templates = s.site.project.join("deploy/templates");
    fs::create_dir_all(&templates).unwrap();
    fs::write(
        templates.join("nginx.conf"),
        "# ours\nserver { listen {{ nginx_listen }}; location / { proxy_pass http://127.0.0.1:{{ port }}; } }\n",
    )
    .unwrap();
    let out = s.site.hoist(&["setup", "--apply"]);
    assert_exit(&out, EXIT_OK);
    assert_eq!(
        fs::read_to_string(s.nginx_dir.join("example.conf")).unwrap(),
        "# ours\nserver { listen 127.0.0.1:8124; location / { proxy_pass http://127.0.0.1:8123; } }\n"
    );
}

#[test]
fn an_unknown_variable_in_a_template_is_an_error_naming_the_file() {
    let s = site_with_setup("gunicorn");
    let templates = s.site.project.join("deploy/templates");
    fs::create_dir_all(&templates).unwrap();
    fs::write(templates.join("nginx.conf"), "listen {{ nginx_prot }};\n").unwrap();
    let out = s.site.hoist(&["setup", "--apply"]);
    assert_exit(&out, EXIT_CONFIG);
    let err = stderr(&out);
    assert!(
        err.contains(&format!(
            "error: setup of example: template {}",
            templates.join("nginx.conf").display()
        )),
        "{err}"
    );
    assert!(err.contains("undefined"), "{err}");
    assert!(
        err.contains("the variables are: app, root, entry, port"),
        "{err}"
    );
    assert!(
        !s.nginx_dir.join("example.conf").exists(),
        "nothing written on error"
    );
}
