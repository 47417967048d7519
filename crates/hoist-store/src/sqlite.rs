//! The embedded store: one SQLite file in the data dir, for one `hoist serve` process.

use std::str::FromStr;
use std::time::Duration;

use sqlx::migrate::Migrator;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{Sqlite, Transaction};
use tokio::sync::broadcast;

use crate::subscription::Wakeups;
use crate::{redact_url, Backend, DeliveryOutcome, NewDelivery, NewRun, RunId, StoreError};

mod deliveries;

static MIGRATOR: Migrator = sqlx::migrate!("migrations/sqlite");

/// How long a statement waits for another process's write lock (`hoist serve user add` while
/// the server runs) before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// The SQLite store. Writes go through one connection, so they queue in the process instead of
/// contending for SQLite's lock; reads use their own connections and see every committed write
/// (WAL). Log subscribers are woken in-process.
#[derive(Clone)]
pub struct SqliteStore {
    write: SqlitePool,
    read: SqlitePool,
    changes: broadcast::Sender<RunId>,
    /// Webhook deliveries waiting to be written, in groups ([`deliveries`]).
    deliveries: tokio::sync::mpsc::UnboundedSender<deliveries::Pending>,
}

impl SqliteStore {
    /// Opens (creating when missing) the SQLite database at `url` (`sqlite://PATH`) and applies
    /// the migrations.
    ///
    /// # Errors
    ///
    /// When the URL is not a SQLite one, its directory is missing, the file cannot be opened or
    /// the schema cannot be brought up to date.
    pub async fn open(url: &str) -> Result<SqliteStore, StoreError> {
        let options =
            SqliteConnectOptions::from_str(url).map_err(|_| StoreError::UnsupportedUrl {
                url: redact_url(url),
            })?;
        let in_memory = url.contains(":memory:")
            || url.contains("mode=memory")
            || options
                .get_filename()
                .to_string_lossy()
                .starts_with("file:sqlx-in-memory-");
        if in_memory {
            return Err(StoreError::Invalid {
                what: "database",
                reason: format!(
                    "`{url}`: an in-memory database would lose every run; give a file, e.g. sqlite:///var/lib/hoist/hoist.db"
                ),
            });
        }
        if let Some(dir) = options.get_filename().parent() {
            if !dir.as_os_str().is_empty() && !dir.is_dir() {
                return Err(StoreError::MissingDirectory {
                    url: url.to_string(),
                    dir: dir.display().to_string(),
                });
            }
        }
        let options = options
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(BUSY_TIMEOUT)
            .foreign_keys(true);
        let open_error = |cause| StoreError::Open {
            url: url.to_string(),
            cause,
        };
        // A pool pings a connection before handing it out (a round trip to its worker thread)
        // unless told not to: a connection to a local file does not go stale.
        let write = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .test_before_acquire(false)
            .connect_with(options.clone())
            .await
            .map_err(open_error)?;
        MIGRATOR
            .run(&write)
            .await
            .map_err(|cause| StoreError::Migrate {
                url: url.to_string(),
                cause,
            })?;
        let read = SqlitePoolOptions::new()
            .max_connections(4)
            .test_before_acquire(false)
            .connect_with(options.read_only(true))
            .await
            .map_err(open_error)?;
        let (changes, _) = broadcast::channel(1024);
        let deliveries = deliveries::start(write.clone(), changes.clone());
        Ok(SqliteStore {
            write,
            read,
            changes,
            deliveries,
        })
    }

    /// Claims in one statement, inside a write transaction: the subquery and the update see
    /// the same snapshot and no other writer can run in between.
    const CLAIM_SQL: &'static str = "UPDATE runs \
         SET status = 'running', runner_id = $1, started_at = $2, heartbeat_at = $2 \
         WHERE id = (SELECT id FROM runs WHERE status = 'queued' ORDER BY id LIMIT 1) \
         AND status = 'queued' RETURNING id";

    /// `BEGIN IMMEDIATE`: the write lock is taken at once, so a transaction that reads before
    /// it writes never fails half-way on a lock upgrade.
    async fn begin_write(&self) -> Result<Transaction<'static, Sqlite>, sqlx::Error> {
        self.write.begin_with("BEGIN IMMEDIATE").await
    }

    async fn notify_in_tx(
        _tx: &mut Transaction<'static, Sqlite>,
        _run: RunId,
    ) -> Result<(), StoreError> {
        Ok(())
    }

    fn notify_after_commit(&self, run: RunId) {
        // No subscriber is not an error.
        let _ = self.changes.send(run);
    }

    /// Writers are serialised already (`BEGIN IMMEDIATE`).
    #[allow(clippy::unused_async)]
    async fn lock_branch(
        _tx: &mut Transaction<'static, Sqlite>,
        _project: i64,
        _branch: &str,
    ) -> Result<(), StoreError> {
        Ok(())
    }

    /// Queued for the group writer, which answers once the delivery is committed.
    async fn write_delivery(
        &self,
        delivery: &NewDelivery,
        run: &NewRun,
    ) -> Result<DeliveryOutcome, StoreError> {
        let (answer, outcome) = tokio::sync::oneshot::channel();
        self.deliveries
            .send(deliveries::Pending {
                delivery: delivery.clone(),
                run: run.clone(),
                answer,
            })
            .map_err(|_| StoreError::WriterGone)?;
        outcome.await.map_err(|_| StoreError::WriterGone)?
    }

    async fn wakeups(&self) -> Result<Wakeups, StoreError> {
        Ok(Wakeups::Local(self.changes.subscribe()))
    }
}

crate::queries::impl_store!(SqliteStore, sqlx::Sqlite, Backend::Sqlite);
