//! What hooks and restarts say reaches the user as it comes, line by line and prefixed by the
//! host, and `--json` carries each line as an event. A migration that runs for minutes must not
//! look hung.

use std::io::{BufRead, BufReader};
use std::process::Stdio;

use crate::support::*;

/// A hook that prints a line, then waits for the file `seen` that only someone who read that
/// line creates; and a second process whose restart command says something.
const TALKING: &str = r#"[[hook]]
name = "progress"
run = '''
echo "migrating 1/2"
for i in $(seq 600); do [ -e "$HOIST_ROOT/seen" ] && break; sleep 0.1; done
if [ -e "$HOIST_ROOT/seen" ]; then echo "migrating 2/2"; else echo "nobody saw line one"; fi
'''

[[process]]
name = "notify"
restart = "command"
command = "echo notified the workers; echo 'queue drained' >&2"
"#;

fn talking_site() -> Site {
    Site::with(SiteOptions {
        extra_hooks: TALKING.into(),
        ..SiteOptions::default()
    })
}

#[test]
fn hook_and_restart_lines_are_shown_as_they_come_prefixed_by_the_host() {
    let site = talking_site();
    let mut child = site
        .command(&["deploy"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = Vec::new();
    for line in BufReader::new(child.stderr.take().unwrap()).lines() {
        let line = line.unwrap();
        if line == "local  hook  | migrating 1/2" {
            std::fs::write(site.root.join("seen"), "").unwrap();
        }
        lines.push(line);
    }
    let status = child.wait().unwrap();
    let text = lines.join("\n");
    assert!(status.success(), "{text}");
    for expected in [
        "local  hook  | migrating 1/2",
        "local  hook  | migrating 2/2",
        "local  restart  | notified the workers",
        "local  restart  | queue drained",
    ] {
        assert!(
            lines.iter().any(|l| l == expected),
            "no {expected:?} in:\n{text}"
        );
    }
    let first = lines
        .iter()
        .position(|l| l.ends_with("| migrating 1/2"))
        .unwrap();
    let passed = lines
        .iter()
        .position(|l| l.contains("ok hook: progress passed"))
        .unwrap();
    assert!(first < passed, "{text}");
}

#[test]
fn json_carries_each_line_as_an_event() {
    let site = talking_site();
    std::fs::create_dir_all(&site.root).unwrap();
    std::fs::write(site.root.join("seen"), "").unwrap();
    let out = site.hoist(&["deploy", "--json"]);
    assert_exit(&out, EXIT_OK);
    let events: Vec<serde_json::Value> = stdout(&out)
        .lines()
        .map(|l| serde_json::from_str(l).expect("each line is JSON"))
        .collect();
    let said: Vec<(String, String)> = events
        .iter()
        .filter(|e| e["event"] == "output" && e["host"] == "local")
        .filter(|e| e["step"] == "hook" || e["step"] == "restart")
        .map(|e| {
            (
                e["step"].as_str().unwrap().to_owned(),
                e["line"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let hook: Vec<&str> = said
        .iter()
        .filter(|(step, line)| step == "hook" && line.starts_with("migrating"))
        .map(|(_, line)| line.as_str())
        .collect();
    assert_eq!(hook, ["migrating 1/2", "migrating 2/2"], "{said:?}");
    // The example's own restart command says which gunicorn it started.
    for line in [
        "notified the workers",
        "queue drained",
        "restart-web: release ",
    ] {
        assert!(
            said.iter()
                .any(|(step, l)| step == "restart" && l.starts_with(line)),
            "no restart line {line:?} in {said:?}"
        );
    }
}
