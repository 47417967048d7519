//! `hoist releases`.

use std::path::Path;

use crate::cli::OutputArgs;
use crate::commands::{load_config, transport};
use crate::{exit, printer};

pub fn run(args: &OutputArgs, config: Option<&Path>) -> i32 {
    let config = match load_config(config) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let t = transport(&config);
    let rows = match hoist_deploy::releases(&config, &t) {
        Ok(rows) => rows,
        Err(e) => {
            printer::deploy_error(&e);
            return exit::code(e.kind);
        }
    };
    if args.json {
        printer::json_line(&rows);
        return exit::OK;
    }
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            let mut marks = Vec::new();
            if r.current {
                marks.push("current");
            }
            if r.rollback_target {
                marks.push("rollback target");
            }
            if !r.on_disk {
                marks.push("missing on disk");
            }
            vec![
                r.id.clone(),
                r.commit.as_deref().map_or("-".into(), short_commit),
                r.created.map_or("-".into(), printer::age),
                r.who.clone().unwrap_or_else(|| "-".into()),
                r.state.clone(),
                marks.join(", "),
            ]
        })
        .collect();
    if cells.is_empty() {
        anstream::eprintln!("no releases yet under {}", config.release.root.display());
        return exit::OK;
    }
    printer::table(&["RELEASE", "COMMIT", "AGE", "WHO", "STATE", ""], &cells);
    exit::OK
}

/// The first 10 characters of a sha, keeping a `-dirty` mark.
pub fn short_commit(commit: &str) -> String {
    match commit.split_once('-') {
        Some((sha, rest)) => format!("{}-{rest}", &sha[..sha.len().min(10)]),
        None => commit[..commit.len().min(10)].to_string(),
    }
}
