//! The tables people read: `hoist status`, `hoist check`, `hoist releases` (one host, and one
//! table for a fleet with drift flagged).

use std::collections::BTreeMap;

use hoist_config::Config;
use hoist_deploy::{CheckItem, CheckStatus, ReleaseRow, Status};
use owo_colors::OwoColorize;

use super::{age, Printer};

/// `hoist status` for one host (headed by its name when there are several).
pub fn status(printer: Printer, config: &Config, status: &Status, many: bool) {
    if printer.json {
        printer.json_line(status);
        return;
    }
    if many {
        printer.data(format!("[{}]", status.host));
    }
    printer.data(format!(
        "app:      {} at {} on {}",
        config.app.name, status.root, status.host
    ));
    printer.data(match &status.current {
        Some(r) => format!(
            "live:     {} ({}, commit {}, {} by {})",
            r.id,
            r.state,
            commit_label(r),
            r.created.map_or("-".into(), age),
            r.who.as_deref().unwrap_or("-")
        ),
        None => "live:     nothing deployed yet".to_string(),
    });
    printer.data(format!(
        "rollback: {}",
        status.rollback_target.as_deref().unwrap_or("no target")
    ));
    printer.data(match &status.lock {
        None => "lock:     free".to_string(),
        Some(owner) => {
            let stale = status
                .lock_stale_reason
                .as_ref()
                .map_or(String::new(), |why| {
                    format!(" [stale: {why}; the next deploy reclaims it]")
                });
            format!("lock:     {}{stale}", owner.describe(chrono::Utc::now()))
        }
    });
}

/// `hoist check`: `config ... is valid`, then a line per check (and its hint).
pub fn check(printer: Printer, config: &Config, items: &[CheckItem]) {
    if printer.json {
        printer.json_line(&items);
        return;
    }
    printer.data(format!("config    {} is valid", config.path.display()));
    for item in items {
        let mark = match item.status {
            CheckStatus::Ok => "ok".green().to_string(),
            CheckStatus::Warning => "warning".yellow().to_string(),
            CheckStatus::Failed => "FAILED".red().bold().to_string(),
        };
        printer.data(format!(
            "{}  {mark} {}: {}",
            item.host, item.what, item.detail
        ));
        if let Some(hint) = &item.hint {
            printer.data(format!("{}  hint: {hint}", item.host));
        }
    }
}

/// `hoist releases` for one host.
pub fn releases(printer: Printer, config: &Config, rows: &[ReleaseRow]) {
    if printer.json {
        printer.json_line(&rows);
        return;
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
                r.message.as_deref().map_or("-".into(), |m| clip(m, 50)),
                r.created.map_or("-".into(), age),
                r.who.clone().unwrap_or_else(|| "-".into()),
                r.state.clone(),
                marks.join(", "),
            ]
        })
        .collect();
    if cells.is_empty() {
        printer.info(format!(
            "no releases yet under {}",
            config.release.root.display()
        ));
        return;
    }
    printer.table(
        &["RELEASE", "COMMIT", "MESSAGE", "AGE", "WHO", "STATE", ""],
        &cells,
    );
}

/// `hoist releases --history`: one row per outcome, with the host when there are several.
pub fn history(printer: Printer, per_host: &[(String, Vec<hoist_deploy::HistoryRow>)]) {
    if printer.json {
        let rows: Vec<serde_json::Value> = per_host
            .iter()
            .flat_map(|(host, rows)| {
                rows.iter().map(move |r| {
                    let mut value = serde_json::to_value(r).unwrap_or_default();
                    value["host"] = host.clone().into();
                    value
                })
            })
            .collect();
        printer.json_line(&rows);
        return;
    }
    let fleet = per_host.len() > 1;
    let mut rows: Vec<(&str, &hoist_deploy::HistoryRow)> = per_host
        .iter()
        .flat_map(|(host, rows)| rows.iter().map(move |r| (host.as_str(), r)))
        .collect();
    rows.sort_by_key(|(_, r)| r.at);
    if rows.is_empty() {
        printer.info("the journal is empty: nothing deployed yet");
        return;
    }
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|(host, r)| {
            let mut cells = vec![r.at.format("%Y-%m-%d %H:%M:%S").to_string()];
            if fleet {
                cells.push((*host).to_string());
            }
            cells.extend([
                r.who.clone(),
                r.event.clone(),
                r.release.clone(),
                r.took_ms.map_or("-".into(), super::millis),
                r.detail.clone().unwrap_or_default(),
            ]);
            cells
        })
        .collect();
    let mut header = vec!["TIME (UTC)"];
    if fleet {
        header.push("HOST");
    }
    header.extend(["WHO", "EVENT", "RELEASE", "TOOK", "DETAIL"]);
    printer.table(&header, &cells);
}

/// `text` cut to `max` characters, with `…` when cut.
fn clip(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let mut cut: String = text.chars().take(max - 1).collect();
    cut.push('…');
    cut
}

/// The first 10 characters of a sha, keeping a `-dirty` mark.
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
pub fn fleet_releases(printer: Printer, per_host: &[(String, Vec<ReleaseRow>)]) {
    let mut ids: BTreeMap<String, Vec<Option<&ReleaseRow>>> = BTreeMap::new();
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
        let pick = |f: &dyn Fn(&ReleaseRow) -> bool| -> Vec<&str> {
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
            first.created.map_or("-".into(), age),
            first.who.clone().unwrap_or_else(|| "-".into()),
            state,
            marks.join("; "),
        ]);
    }
    if printer.json {
        let hosts: BTreeMap<&str, &Vec<ReleaseRow>> =
            per_host.iter().map(|(n, r)| (n.as_str(), r)).collect();
        printer.json_line(&serde_json::json!({ "hosts": hosts, "drift": drift }));
        return;
    }
    printer.table(&["RELEASE", "COMMIT", "AGE", "WHO", "STATE", ""], &cells);
    for d in &drift {
        crate::warn_user!(printer, "drift: {d}");
    }
}
