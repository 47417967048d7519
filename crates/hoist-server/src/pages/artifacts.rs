//! `GET /runs/<id>/artifacts`: a run's artifacts with sizes; `GET /runs/<id>/files/<name>[/<path>]`
//! downloads one, under the same rule as the API: only recorded names, only files inside the
//! artifact once symlinks are resolved.

use std::path::Path as FsPath;

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use hoist_store::RunId;
use minijinja::context;

use super::run::find_run;
use super::{not_found, render, runs::row, App, PageError, Reader};

/// `1.5 KiB`.
pub(super) fn size(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["B", "KiB", "MiB", "GiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// Files listed per artifact at most (an artifact can be a whole directory tree).
const MAX_FILES: usize = 1000;

/// The files of an artifact (a file, or a directory walked without following symlinks), as
/// paths relative to it with their sizes, sorted.
fn files(root: &FsPath) -> Vec<(String, u64)> {
    let mut found = Vec::new();
    let Ok(meta) = std::fs::symlink_metadata(root) else {
        return found;
    };
    if meta.is_file() {
        found.push((String::new(), meta.len()));
        return found;
    }
    let mut dirs = vec![root.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let Ok(meta) = entry.path().symlink_metadata() else {
                continue;
            };
            if meta.is_dir() {
                dirs.push(entry.path());
            } else if meta.is_file() && found.len() < MAX_FILES {
                let relative = entry
                    .path()
                    .strip_prefix(root)
                    .map_or_else(|_| String::new(), |p| p.to_string_lossy().into_owned());
                found.push((relative, meta.len()));
            }
        }
    }
    found.sort();
    found
}

/// A path for a URL: each segment percent-encoded, the slashes kept.
fn href_path(name: &str) -> String {
    name.split('/')
        .map(|segment| {
            segment
                .bytes()
                .map(|b| {
                    if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                        char::from(b).to_string()
                    } else {
                        format!("%{b:02X}")
                    }
                })
                .collect::<String>()
        })
        .collect::<Vec<_>>()
        .join("/")
}

pub(crate) async fn page(
    State(app): App,
    reader: Reader,
    Path(id): Path<RunId>,
) -> Result<Response, PageError> {
    let run = find_run(app.store.as_ref(), id).await?;
    let artifacts = app.store.artifacts(id).await?;
    let data_dir = app.config.data_dir.clone();
    let listed = tokio::task::spawn_blocking(move || {
        artifacts
            .iter()
            .flat_map(|a| {
                files(&data_dir.join(&a.path))
                    .into_iter()
                    .map(|(relative, bytes)| {
                        let name = if relative.is_empty() {
                            a.name.clone()
                        } else {
                            format!("{}/{relative}", a.name)
                        };
                        (name, bytes)
                    })
                    .collect::<Vec<_>>()
            })
            .collect::<Vec<_>>()
    })
    .await
    .map_err(|e| PageError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    let files: Vec<_> = listed
        .iter()
        .map(|(name, bytes)| {
            context! {
                name => name,
                href => format!("/runs/{id}/files/{}", href_path(name)),
                size => size(*bytes),
                bytes => bytes,
            }
        })
        .collect();
    Ok(render(
        "artifacts.html",
        context! { me => reader.context(), run => row(&run), files => files },
    ))
}

/// Downloads one file, found as the API finds it ([`crate::api::artifact_file`]).
pub(crate) async fn download(
    State(app): App,
    _reader: Reader,
    Path((id, name)): Path<(RunId, String)>,
) -> Result<Response, PageError> {
    let missing = || not_found(format!("run {id} has no artifact {name:?}"));
    let file = crate::api::artifact_file(&app, id, &name)
        .await?
        .ok_or_else(missing)?;
    let bytes = tokio::fs::read(&file).await.map_err(|_| missing())?;
    Ok((
        [
            (header::CONTENT_TYPE, "application/octet-stream"),
            (header::CONTENT_DISPOSITION, "attachment"),
        ],
        Body::from(bytes),
    )
        .into_response())
}

#[cfg(test)]
mod tests {
    #[test]
    fn sizes_read_in_binary_units() {
        assert_eq!(super::size(12), "12 B");
        assert_eq!(super::size(1536), "1.5 KiB");
        assert_eq!(super::size(3 * 1024 * 1024), "3.0 MiB");
    }

    #[test]
    fn an_artifact_path_in_a_link_keeps_its_slashes_and_escapes_the_rest() {
        assert_eq!(
            super::href_path("test/reports/my report#1.xml"),
            "test/reports/my%20report%231.xml"
        );
    }
}
