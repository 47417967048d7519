//! The shared store: a PostgreSQL database that several `hoist serve` processes and runners use
//! at once. The queue is claimed with `FOR UPDATE SKIP LOCKED`; log lines wake subscribers in
//! every process through `LISTEN/NOTIFY`.

use std::str::FromStr;
use std::time::Duration;

use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgListener, PgPool, PgPoolOptions};
use sqlx::{Postgres, Transaction};

use crate::subscription::{Wakeups, LOG_CHANNEL};
use crate::{redact_url, Backend, DeliveryOutcome, NewDelivery, NewRun, RunId, StoreError};

static MIGRATOR: Migrator = sqlx::migrate!("migrations/postgres");

/// The PostgreSQL store.
#[derive(Clone)]
pub struct PostgresStore {
    write: PgPool,
    read: PgPool,
}

impl PostgresStore {
    /// Connects to `url` (`postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE`) and applies the
    /// migrations (under PostgreSQL's advisory lock: replicas starting together are safe).
    ///
    /// # Errors
    ///
    /// When the URL is not a PostgreSQL one, the server cannot be reached or the schema cannot
    /// be brought up to date.
    pub async fn connect(url: &str) -> Result<PostgresStore, StoreError> {
        let redacted = redact_url(url);
        let options = PgConnectOptions::from_str(url).map_err(|_| StoreError::UnsupportedUrl {
            url: redacted.clone(),
        })?;
        let pool = PgPoolOptions::new()
            .max_connections(16)
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(options)
            .await
            .map_err(|cause| StoreError::Open {
                url: redacted.clone(),
                cause,
            })?;
        MIGRATOR
            .run(&pool)
            .await
            .map_err(|cause| StoreError::Migrate {
                url: redacted,
                cause,
            })?;
        Ok(PostgresStore {
            write: pool.clone(),
            read: pool,
        })
    }

    /// `SKIP LOCKED`: a claimer passes over the row another claimer has just locked instead of
    /// waiting for it and then finding it taken.
    const CLAIM_SQL: &'static str = "UPDATE runs \
         SET status = 'running', runner_id = $1, started_at = $2, heartbeat_at = $2 \
         WHERE id = (SELECT id FROM runs WHERE status = 'queued' ORDER BY id LIMIT 1 \
                     FOR UPDATE SKIP LOCKED) \
         AND status = 'queued' RETURNING id";

    async fn begin_write(&self) -> Result<Transaction<'static, Postgres>, sqlx::Error> {
        self.write.begin().await
    }

    /// Sent inside the transaction: PostgreSQL delivers it at commit, and only then.
    async fn notify_in_tx(
        tx: &mut Transaction<'static, Postgres>,
        run: RunId,
    ) -> Result<(), StoreError> {
        sqlx::query("SELECT pg_notify($1, $2)")
            .bind(LOG_CHANNEL)
            .bind(run.to_string())
            .execute(&mut **tx)
            .await?;
        Ok(())
    }

    fn notify_after_commit(&self, _run: RunId) {}

    /// Until the commit, no other transaction enqueues on this branch: a push that arrives
    /// while another one's transaction is open sees its run, and cancels it, instead of both
    /// staying queued (neither sees the other's uncommitted run).
    async fn lock_branch(
        tx: &mut Transaction<'static, Postgres>,
        project: i64,
        branch: &str,
    ) -> Result<(), StoreError> {
        sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))")
            .bind(format!("hoist run queue {project} {branch}"))
            .execute(&mut **tx)
            .await?;
        Ok(())
    }

    /// One transaction per delivery: replicas write at once, each on its own connection.
    async fn write_delivery(
        &self,
        delivery: &NewDelivery,
        run: &NewRun,
    ) -> Result<DeliveryOutcome, StoreError> {
        // The run first and the delivery last, naming it: a delivery seen before rolls the
        // whole transaction back (its run and its auto-cancel with it).
        let mut tx = self.begin_write().await?;
        let project = project_id_in(&mut tx, &run.project).await?;
        let enqueued = enqueue_in(&mut tx, project, run, None).await?;
        // A concurrent insert of the same key waits here for the first transaction, then
        // conflicts.
        let inserted: Option<i64> = sqlx::query_scalar(
            "INSERT INTO deliveries (provider, delivery_id, project_id, received_at, run_id) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (provider, delivery_id) DO NOTHING \
             RETURNING id",
        )
        .bind(&delivery.provider)
        .bind(&delivery.delivery_id)
        .bind(project)
        .bind(crate::model::now_ms())
        .bind(enqueued.run)
        .fetch_optional(&mut *tx)
        .await?;
        if inserted.is_none() {
            tx.rollback().await?;
            let first: Option<i64> = sqlx::query_scalar(
                "SELECT run_id FROM deliveries WHERE provider = $1 AND delivery_id = $2",
            )
            .bind(&delivery.provider)
            .bind(&delivery.delivery_id)
            .fetch_one(&self.read)
            .await?;
            return Ok(DeliveryOutcome::Duplicate(first.unwrap_or_default()));
        }
        for cancelled in &enqueued.cancelled {
            Self::notify_in_tx(&mut tx, *cancelled).await?;
        }
        tx.commit().await?;
        Ok(DeliveryOutcome::Created(enqueued))
    }

    async fn wakeups(&self) -> Result<Wakeups, StoreError> {
        let mut listener = PgListener::connect_with(&self.read).await?;
        listener.listen(LOG_CHANNEL).await?;
        Ok(Wakeups::Postgres(Box::new(listener)))
    }
}

crate::queries::impl_store!(PostgresStore, sqlx::Postgres, Backend::Postgres);
