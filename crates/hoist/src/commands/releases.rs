//! `hoist releases`.

use std::path::Path;

use anstream::println;
use hoist_release::ReleaseId;

use crate::cli::{HostsOutputArgs, MarkGoodArgs, ReleasesArgs, ReleasesCommand};
use crate::commands::{command_line, fleet, load_config, lock_wait};
use crate::{exit, printer};

pub fn run(args: &ReleasesArgs, config: Option<&Path>) -> i32 {
    match &args.command {
        Some(ReleasesCommand::MarkGood(mark)) => mark_good(mark, config),
        None => list(&args.list, config),
    }
}

/// `hoist releases mark-good ID`.
fn mark_good(args: &MarkGoodArgs, config: Option<&Path>) -> i32 {
    let config = match load_config(config) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let id = match ReleaseId::parse(&args.id) {
        Ok(id) => id,
        Err(e) => {
            printer::error(
                &format!("mark-good: {e}"),
                &["`hoist releases` lists the release ids".into()],
            );
            return exit::CONFIG;
        }
    };
    let lock_wait = match lock_wait(args.lock_wait.as_deref(), &config) {
        Ok(d) => d,
        Err(code) => return code,
    };
    let fleet = match fleet(&config, &args.target) {
        Ok(f) => f,
        Err(code) => return code,
    };
    let sink = printer::events(false);
    match hoist_deploy::mark_good(
        &config,
        &fleet,
        &id,
        &hoist_deploy::who(),
        &command_line(),
        lock_wait,
        &sink,
    ) {
        Ok(hosts) => {
            println!(
                "marked {id} good on {}; it can be a rollback target again",
                hosts.join(", ")
            );
            exit::OK
        }
        Err(e) => {
            printer::deploy_error(&e);
            exit::code(e.kind)
        }
    }
}

fn list(args: &HostsOutputArgs, config: Option<&Path>) -> i32 {
    let config = match load_config(config) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let fleet = match fleet(&config, &args.target) {
        Ok(f) => f,
        Err(code) => return code,
    };
    let mut per_host = Vec::new();
    for (host, rows) in fleet
        .hosts
        .iter()
        .zip(fleet.each(|_, h| hoist_deploy::releases(h)))
    {
        match rows {
            Ok(rows) => per_host.push((host.name.clone(), rows)),
            Err(e) => {
                printer::deploy_error(&e);
                return exit::code(e.kind);
            }
        }
    }
    if per_host.len() > 1 {
        return fleet_table(&per_host, args.json);
    }
    let rows = per_host.pop().map(|(_, rows)| rows).unwrap_or_default();
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
                commit_label(r),
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

/// The commit column of a release: its short sha, marked `-dirty` when the files shipped were
/// not exactly that commit's.
pub fn commit_label(row: &hoist_deploy::ReleaseRow) -> String {
    match (&row.commit, row.dirty) {
        (Some(commit), true) => format!("{}-dirty", short_commit(commit)),
        (Some(commit), false) => short_commit(commit),
        (None, _) => "-".into(),
    }
}

/// The first 10 characters of a sha, keeping a `-dirty` mark (older releases recorded it so).
pub fn short_commit(commit: &str) -> String {
    match commit.split_once('-') {
        Some((sha, rest)) => format!("{}-{rest}", &sha[..sha.len().min(10)]),
        None => commit[..commit.len().min(10)].to_string(),
    }
}

/// One table for a fleet: a row per release, its state on every host, where it is current or
/// the rollback target, and where it is missing; drift is flagged on stderr.
fn fleet_table(per_host: &[(String, Vec<hoist_deploy::ReleaseRow>)], json: bool) -> i32 {
    use std::collections::BTreeMap;
    let mut ids: BTreeMap<String, Vec<Option<&hoist_deploy::ReleaseRow>>> = BTreeMap::new();
    for (i, (_, rows)) in per_host.iter().enumerate() {
        for row in rows {
            ids.entry(row.id.clone())
                .or_insert_with(|| vec![None; per_host.len()])[i] = Some(row);
        }
    }
    let names: Vec<&str> = per_host.iter().map(|(n, _)| n.as_str()).collect();
    let on = |hosts: Vec<&str>| {
        if hosts.len() == names.len() {
            "all".to_string()
        } else {
            hosts.join(", ")
        }
    };
    let mut drift = Vec::new();
    let currents: Vec<(String, Option<String>)> = per_host
        .iter()
        .map(|(name, rows)| {
            (
                name.clone(),
                rows.iter().find(|r| r.current).map(|r| r.id.clone()),
            )
        })
        .collect();
    if currents.iter().any(|(_, c)| *c != currents[0].1) {
        drift.push(format!(
            "hosts serve different releases: {}",
            currents
                .iter()
                .map(|(h, c)| format!("{h} -> {}", c.as_deref().unwrap_or("nothing")))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    let mut cells = Vec::new();
    for (id, rows) in &ids {
        let first = rows
            .iter()
            .flatten()
            .next()
            .expect("at least one host has it");
        let states: Vec<&str> = rows
            .iter()
            .map(|r| {
                r.map_or("missing", |r| {
                    if r.on_disk {
                        r.state.as_str()
                    } else {
                        "missing"
                    }
                })
            })
            .collect();
        let state = if states.iter().all(|s| *s == states[0]) {
            states[0].to_string()
        } else {
            names
                .iter()
                .zip(&states)
                .map(|(h, s)| format!("{h} {s}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let pick = |f: &dyn Fn(&hoist_deploy::ReleaseRow) -> bool| -> Vec<&str> {
            names
                .iter()
                .zip(rows)
                .filter(|(_, r)| r.is_some_and(f))
                .map(|(h, _)| *h)
                .collect()
        };
        let mut marks = Vec::new();
        let current = pick(&|r| r.current);
        if !current.is_empty() {
            marks.push(format!("current on {}", on(current)));
        }
        let target = pick(&|r| r.rollback_target);
        if !target.is_empty() {
            marks.push(format!("rollback target on {}", on(target)));
        }
        let missing: Vec<&str> = names
            .iter()
            .zip(rows)
            .filter(|(_, r)| r.is_none_or(|r| !r.on_disk))
            .map(|(h, _)| *h)
            .collect();
        let good_somewhere = rows.iter().flatten().any(|r| r.state == "good");
        if !missing.is_empty() && good_somewhere {
            drift.push(format!("release {id} is missing on {}", missing.join(", ")));
        }
        cells.push(vec![
            id.clone(),
            commit_label(first),
            first.created.map_or("-".into(), printer::age),
            first.who.clone().unwrap_or_else(|| "-".into()),
            state,
            marks.join("; "),
        ]);
    }
    if json {
        let hosts: BTreeMap<&str, &Vec<hoist_deploy::ReleaseRow>> =
            per_host.iter().map(|(n, r)| (n.as_str(), r)).collect();
        printer::json_line(&serde_json::json!({ "hosts": hosts, "drift": drift }));
        return exit::OK;
    }
    printer::table(&["RELEASE", "COMMIT", "AGE", "WHO", "STATE", ""], &cells);
    for d in &drift {
        printer::warning(&format!("drift: {d}"));
    }
    exit::OK
}
