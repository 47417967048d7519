//! Names the commit a binary was built from in `hoist --version` (when built from a git
//! checkout; "unknown commit" from a source archive).

use std::process::Command;

fn main() {
    let commit = Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .output()
        .ok()
        .filter(|out| out.status.success())
        .map(|out| String::from_utf8_lossy(&out.stdout).trim().to_string())
        .filter(|c| !c.is_empty());
    let dirty = Command::new("git")
        .args(["status", "--porcelain", "--untracked-files=no"])
        .output()
        .ok()
        .filter(|out| out.status.success())
        .is_some_and(|out| !out.stdout.is_empty());
    let version = match commit {
        Some(c) if dirty => format!("{} (commit {c}, modified)", env!("CARGO_PKG_VERSION")),
        Some(c) => format!("{} (commit {c})", env!("CARGO_PKG_VERSION")),
        None => format!("{} (unknown commit)", env!("CARGO_PKG_VERSION")),
    };
    println!("cargo:rustc-env=HOIST_VERSION={version}");
    // Rebuilt when HEAD moves (a commit, a checkout) or the index changes, not on every build.
    for path in git_paths(&[
        &["rev-parse", "--git-path", "HEAD"],
        &["rev-parse", "--git-path", "index"],
        &["rev-parse", "--symbolic-full-name", "HEAD"],
    ]) {
        println!("cargo:rerun-if-changed={path}");
    }
}

/// The files that say which commit is checked out: HEAD, the index and the branch's ref.
fn git_paths(queries: &[&[&str]]) -> Vec<String> {
    let run = |args: &[&str]| {
        Command::new("git")
            .args(args)
            .output()
            .ok()
            .filter(|out| out.status.success())
            .map(|out| String::from_utf8_lossy(&out.stdout).trim().to_string())
    };
    let mut paths = Vec::new();
    for query in queries {
        let Some(answer) = run(query) else { continue };
        if answer.starts_with("refs/") {
            if let Some(path) = run(&["rev-parse", "--git-path", &answer]) {
                paths.push(path);
            }
        } else {
            paths.push(answer);
        }
    }
    paths
        .into_iter()
        .filter(|p| std::path::Path::new(p).exists())
        .map(|p| std::fs::canonicalize(&p).map_or(p, |abs| abs.to_string_lossy().into_owned()))
        .collect()
}
