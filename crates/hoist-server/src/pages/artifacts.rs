//! `GET /runs/<id>/artifacts`: a run's artifacts with sizes; `GET /runs/<id>/files/<name>[/<path>]`
//! downloads one, under the same rule as the API: only recorded names, only files inside the
//! artifact once symlinks are resolved.

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::header;
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
    let listed = crate::api::artifact_listing(&app, id).await?;
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
