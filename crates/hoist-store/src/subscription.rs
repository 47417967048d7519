//! Live log lines: a stream of a run's lines that wakes when lines are appended.
//!
//! The lines themselves are always read from the store; the wake-up only says "run N has new
//! lines or changed state". On PostgreSQL the wake-up is a `NOTIFY hoist_log, '<run id>'` sent
//! in the appending transaction, so it reaches listeners in every process once committed; on
//! SQLite (one process) it is a broadcast channel. The listener is set up before the first read,
//! so a line appended in between is never missed.

use sqlx::postgres::PgListener;
use tokio::sync::{broadcast, mpsc};
use tokio::task::JoinHandle;

use crate::{LogLine, RunId, Store, StoreError};

/// The PostgreSQL channel that carries "run N has new lines or finished".
pub(crate) const LOG_CHANNEL: &str = "hoist_log";

/// How many lines a subscription reads per query.
const PAGE: u32 = 500;

/// A run's log lines as they come: see [`Store::subscribe`]. Dropping it stops its reader.
pub struct LogStream {
    lines: mpsc::Receiver<Result<LogLine, StoreError>>,
    reader: JoinHandle<()>,
}

impl LogStream {
    /// The next line; `None` once the run has finished and every line has been given.
    pub async fn next(&mut self) -> Option<Result<LogLine, StoreError>> {
        self.lines.recv().await
    }
}

/// For `axum`'s SSE and stream combinators: the same items as [`LogStream::next`].
impl futures_core::Stream for LogStream {
    type Item = Result<LogLine, StoreError>;

    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        self.lines.poll_recv(cx)
    }
}

impl Drop for LogStream {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

/// Where a subscription learns that a run changed.
pub(crate) enum Wakeups {
    /// In-process (SQLite).
    Local(broadcast::Receiver<RunId>),
    /// `LISTEN hoist_log` on its own PostgreSQL connection.
    Postgres(Box<PgListener>),
}

enum Wake {
    /// This run changed.
    Run(RunId),
    /// Something may have been missed (a lagging receiver, a reconnection): read again.
    Unknown,
    /// No more wake-ups will come.
    Closed,
}

impl Wakeups {
    async fn next(&mut self) -> Result<Wake, StoreError> {
        match self {
            Wakeups::Local(rx) => Ok(match rx.recv().await {
                Ok(run) => Wake::Run(run),
                Err(broadcast::error::RecvError::Lagged(_)) => Wake::Unknown,
                Err(broadcast::error::RecvError::Closed) => Wake::Closed,
            }),
            // `try_recv` answers `None` when the connection was lost (it reconnects on the next
            // call): notifications may have been missed meanwhile.
            Wakeups::Postgres(listener) => Ok(match listener.try_recv().await? {
                Some(n) => n.payload().parse().map_or(Wake::Unknown, Wake::Run),
                None => Wake::Unknown,
            }),
        }
    }
}

/// Starts the reader task of a subscription to `run` from `after`.
pub(crate) fn spawn<S: Store + Clone>(
    store: S,
    run: RunId,
    after: i64,
    mut wakeups: Wakeups,
) -> LogStream {
    let (tx, rx) = mpsc::channel(PAGE as usize);
    let reader = tokio::spawn(async move {
        let mut last = after;
        loop {
            // Whether the run is over is read *before* its lines: a run finishes after its last
            // line is committed, so lines read after seeing it finished are all of them.
            let finished = match store.run(run).await {
                Ok(Some(r)) => r.status.is_finished(),
                Ok(None) => true,
                Err(e) => {
                    let _ = tx.send(Err(e)).await;
                    return;
                }
            };
            loop {
                let lines = match store.log_after(run, last, PAGE).await {
                    Ok(lines) => lines,
                    Err(e) => {
                        let _ = tx.send(Err(e)).await;
                        return;
                    }
                };
                let full = lines.len() == PAGE as usize;
                for line in lines {
                    last = line.seq;
                    if tx.send(Ok(line)).await.is_err() {
                        return;
                    }
                }
                if !full {
                    break;
                }
            }
            if finished {
                return;
            }
            // Wait for this run to change (or for the subscriber to go away).
            loop {
                let wake = tokio::select! {
                    wake = wakeups.next() => wake,
                    () = tx.closed() => return,
                };
                match wake {
                    Ok(Wake::Run(id)) if id != run => continue,
                    Ok(Wake::Run(_) | Wake::Unknown) => break,
                    Ok(Wake::Closed) => return,
                    Err(e) => {
                        let _ = tx.send(Err(e)).await;
                        return;
                    }
                }
            }
        }
    });
    LogStream { lines: rx, reader }
}
