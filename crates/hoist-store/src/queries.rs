//! The SQL both backends share. SQLite and PostgreSQL accept the same statements here (`$N`
//! parameters, `ON CONFLICT`, `RETURNING`); what differs — claiming, transactions, wake-ups —
//! each backend provides as inherent items that [`impl_store!`] calls:
//!
//! - fields `write` and `read`: the pools for writes and reads (the same one on PostgreSQL);
//! - `begin_write()`: a transaction that holds the write lock from its first statement;
//! - `CLAIM_SQL`: the statement that takes the oldest queued run;
//! - `notify_in_tx(tx, run)` / `notify_after_commit(run)`: wake the run's subscribers;
//! - `lock_branch(tx, project, branch)`: orders the transactions that enqueue on one branch;
//! - `write_delivery(delivery, run)`: commits a webhook's delivery and its run (names checked);
//! - `wakeups()`: where a new subscription listens.

/// The columns of a run, joined with its project's name.
pub(crate) const RUN_SELECT: &str = "SELECT r.id, p.name AS project, r.branch, r.commit_sha, \
     r.message, r.author, r.trigger_kind, r.triggered_by, r.rerun_of, r.status, r.queued_at, \
     r.started_at, r.finished_at, r.runner_id, r.heartbeat_at, r.cancelled_by \
     FROM runs r JOIN projects p ON p.id = r.project_id";

/// Finished runs older than `$1` (epoch ms) that retention may delete: not the newest finished
/// run of its project's branch (the branch's badge), and not a run whose deployment names the release the newest
/// deployment recorded for that host names (what the host serves, as far as the store knows).
pub(crate) const EXPIRED_RUNS_SQL: &str = "\
    WITH latest AS ( \
        SELECT d.project_id, d.environment, d.host, d.release_id FROM deployments d \
        WHERE d.id IN (SELECT MAX(id) FROM deployments GROUP BY project_id, environment, host)), \
    live AS ( \
        SELECT d.run_id FROM deployments d JOIN latest l \
        ON d.project_id = l.project_id AND d.environment = l.environment \
        AND d.host = l.host AND d.release_id = l.release_id \
        WHERE d.run_id IS NOT NULL), \
    newest AS (SELECT MAX(id) AS id FROM runs \
        WHERE status IN ('passed', 'failed', 'cancelled', 'interrupted') \
        GROUP BY project_id, branch) \
    SELECT r.id FROM runs r \
    WHERE r.status IN ('passed', 'failed', 'cancelled', 'interrupted') \
    AND r.finished_at < $1 \
    AND r.id NOT IN (SELECT id FROM newest) \
    AND r.id NOT IN (SELECT run_id FROM live) \
    ORDER BY r.id";

/// What [`crate::Store::delete_run`] deletes or unlinks before the run itself (`$1`: the run),
/// children before the rows they reference.
pub(crate) const DELETE_RUN_SQL: [&str; 12] = [
    "DELETE FROM run_caches WHERE run_id = $1",
    "DELETE FROM run_services WHERE run_id = $1",
    // A deployment row outlives its run (the history); only its link to the step goes.
    "UPDATE deployments SET step_id = NULL WHERE step_id IN \
     (SELECT s.id FROM steps s JOIN jobs j ON s.job_id = j.id WHERE j.run_id = $1)",
    "DELETE FROM test_cases WHERE suite_id IN (SELECT id FROM test_suites WHERE run_id = $1)",
    "DELETE FROM test_suites WHERE run_id = $1",
    "DELETE FROM log_lines WHERE run_id = $1",
    "DELETE FROM steps WHERE job_id IN (SELECT id FROM jobs WHERE run_id = $1)",
    "DELETE FROM jobs WHERE run_id = $1",
    "DELETE FROM artifacts WHERE run_id = $1",
    "DELETE FROM deliveries WHERE run_id = $1",
    "UPDATE deployments SET run_id = NULL WHERE run_id = $1",
    "UPDATE runs SET rerun_of = NULL WHERE rerun_of = $1",
];

/// Lines per `INSERT` when appending a log batch (5 parameters each, under both backends'
/// parameter limits).
pub(crate) const LOG_CHUNK: usize = 1000;

/// Implements [`crate::Store`] for a backend struct (see the module documentation).
macro_rules! impl_store {
    ($store:ty, $db:ty, $backend:expr) => {
        mod shared_rows {
            use std::time::Duration;

            use sqlx::Row;

            use crate::model::from_millis;
            use crate::{
                ApiToken, AuditEntry, Artifact, Deployment, Job, LogLine, Project, Run,
                RunStatus, Step, StepStatus, StoreError, TestCase, TestOutcome, TestSuite,
                Trigger, TriggerKind, User, Role,
            };

            type DbRow = <$db as sqlx::Database>::Row;

            /// The one way a column becomes a model value: times stored as epoch milliseconds,
            /// enums stored as their names, counts and sizes stored as non-negative integers.
            pub(super) trait Columns {
                /// A time column (milliseconds since the epoch).
                fn time(&self, column: &str) -> Result<chrono::DateTime<chrono::Utc>, StoreError>;
                /// A nullable time column.
                fn opt_time(&self, column: &str) -> Result<Option<chrono::DateTime<chrono::Utc>>, StoreError>;
                /// A text column holding an enum's name, read with its `from_db`.
                fn named<T>(&self, column: &str, from_db: fn(&str) -> Result<T, StoreError>) -> Result<T, StoreError>;
                /// A count or size (never negative; a negative value reads as 0).
                fn unsigned(&self, column: &str) -> Result<u64, StoreError>;
                /// A count that fits a `u32`.
                fn count(&self, column: &str) -> Result<u32, StoreError>;
                /// A nullable duration in milliseconds.
                fn opt_duration(&self, column: &str) -> Result<Option<Duration>, StoreError>;
                /// A duration in milliseconds.
                fn duration(&self, column: &str) -> Result<Duration, StoreError> {
                    Ok(Duration::from_millis(self.unsigned(column)?))
                }
            }

            impl Columns for DbRow {
                fn time(&self, column: &str) -> Result<chrono::DateTime<chrono::Utc>, StoreError> {
                    Ok(from_millis(self.try_get(column)?))
                }

                fn opt_time(&self, column: &str) -> Result<Option<chrono::DateTime<chrono::Utc>>, StoreError> {
                    Ok(self.try_get::<Option<i64>, _>(column)?.map(from_millis))
                }

                fn named<T>(&self, column: &str, from_db: fn(&str) -> Result<T, StoreError>) -> Result<T, StoreError> {
                    from_db(&self.try_get::<String, _>(column)?)
                }

                fn unsigned(&self, column: &str) -> Result<u64, StoreError> {
                    Ok(u64::try_from(self.try_get::<i64, _>(column)?).unwrap_or(0))
                }

                fn count(&self, column: &str) -> Result<u32, StoreError> {
                    Ok(u32::try_from(self.unsigned(column)?).unwrap_or(u32::MAX))
                }

                fn opt_duration(&self, column: &str) -> Result<Option<Duration>, StoreError> {
                    Ok(self
                        .try_get::<Option<i64>, _>(column)?
                        .map(|ms| Duration::from_millis(u64::try_from(ms).unwrap_or(0))))
                }
            }

            pub(super) fn project(row: &DbRow) -> Result<Project, StoreError> {
                Ok(Project {
                    id: row.try_get("id")?,
                    name: row.try_get("name")?,
                    created_at: row.time("created_at")?,
                })
            }

            pub(super) fn run(row: &DbRow) -> Result<Run, StoreError> {
                Ok(Run {
                    id: row.try_get("id")?,
                    project: row.try_get("project")?,
                    branch: row.try_get("branch")?,
                    commit: row.try_get("commit_sha")?,
                    message: row.try_get("message")?,
                    author: row.try_get("author")?,
                    trigger: Trigger {
                        kind: row.named("trigger_kind", TriggerKind::from_db)?,
                        by: row.try_get("triggered_by")?,
                    },
                    rerun_of: row.try_get("rerun_of")?,
                    status: row.named("status", RunStatus::from_db)?,
                    queued_at: row.time("queued_at")?,
                    started_at: row.opt_time("started_at")?,
                    finished_at: row.opt_time("finished_at")?,
                    runner: row.try_get("runner_id")?,
                    heartbeat_at: row.opt_time("heartbeat_at")?,
                    cancelled_by: row.try_get("cancelled_by")?,
                })
            }

            pub(super) fn job(row: &DbRow) -> Result<Job, StoreError> {
                let requires: String = row.try_get("requires")?;
                Ok(Job {
                    id: row.try_get("id")?,
                    run: row.try_get("run_id")?,
                    name: row.try_get("name")?,
                    position: row.try_get("position")?,
                    requires: serde_json::from_str(&requires).map_err(|_| {
                        StoreError::UnknownValue { column: "job requires", value: requires.clone() }
                    })?,
                    status: row.named("status", StepStatus::from_db)?,
                    started_at: row.opt_time("started_at")?,
                    finished_at: row.opt_time("finished_at")?,
                    steps: Vec::new(),
                })
            }

            pub(super) fn step(row: &DbRow) -> Result<Step, StoreError> {
                Ok(Step {
                    id: row.try_get("id")?,
                    job: row.try_get("job_id")?,
                    name: row.try_get("name")?,
                    position: row.try_get("position")?,
                    status: row.named("status", StepStatus::from_db)?,
                    exit_code: row
                        .try_get::<Option<i64>, _>("exit_code")?
                        .map(|c| i32::try_from(c).unwrap_or(i32::MIN)),
                    duration: row.opt_duration("duration_ms")?,
                    started_at: row.opt_time("started_at")?,
                })
            }

            pub(super) fn log_line(row: &DbRow) -> Result<LogLine, StoreError> {
                Ok(LogLine {
                    run: row.try_get("run_id")?,
                    seq: row.try_get("seq")?,
                    step: row.try_get("step_id")?,
                    at: row.time("at")?,
                    text: row.try_get("text")?,
                })
            }

            pub(super) fn test_case(row: &DbRow) -> Result<(i64, TestCase), StoreError> {
                Ok((
                    row.try_get("suite_id")?,
                    TestCase {
                        classname: row.try_get("classname")?,
                        name: row.try_get("name")?,
                        outcome: row.named("outcome", TestOutcome::from_db)?,
                        duration: row.duration("duration_ms")?,
                        message: row.try_get("message")?,
                    },
                ))
            }

            pub(super) fn test_suite(row: &DbRow) -> Result<(i64, TestSuite), StoreError> {
                Ok((
                    row.try_get("id")?,
                    TestSuite {
                        name: row.try_get("name")?,
                        step: row.try_get("step_id")?,
                        tests: row.count("tests")?,
                        failures: row.count("failures")?,
                        errors: row.count("errors")?,
                        skipped: row.count("skipped")?,
                        duration: row.duration("duration_ms")?,
                        cases: Vec::new(),
                    },
                ))
            }

            pub(super) fn artifact(row: &DbRow) -> Result<Artifact, StoreError> {
                Ok(Artifact {
                    run: row.try_get("run_id")?,
                    name: row.try_get("name")?,
                    path: row.try_get("path")?,
                    size: row.unsigned("size_bytes")?,
                    created_at: row.time("created_at")?,
                })
            }

            pub(super) fn user(row: &DbRow) -> Result<User, StoreError> {
                Ok(User {
                    name: row.try_get("name")?,
                    role: row.named("role", Role::from_db)?,
                    created_at: row.time("created_at")?,
                })
            }

            pub(super) fn token(row: &DbRow) -> Result<ApiToken, StoreError> {
                Ok(ApiToken {
                    name: row.try_get("name")?,
                    role: row.named("role", Role::from_db)?,
                    created_by: row.try_get("created_by")?,
                    created_at: row.time("created_at")?,
                })
            }

            pub(super) fn audit(row: &DbRow) -> Result<AuditEntry, StoreError> {
                Ok(AuditEntry {
                    id: row.try_get("id")?,
                    at: row.time("at")?,
                    who: row.try_get("who")?,
                    action: row.try_get("action")?,
                    target: row.try_get("target")?,
                    detail: row.try_get("detail")?,
                })
            }

            pub(super) fn deployment(row: &DbRow) -> Result<Deployment, StoreError> {
                Ok(Deployment {
                    id: row.try_get("id")?,
                    run: row.try_get("run_id")?,
                    project: row.try_get("project")?,
                    environment: row.try_get("environment")?,
                    host: row.try_get("host")?,
                    release: row.try_get("release_id")?,
                    outcome: row.try_get("outcome")?,
                    detail: row.try_get("detail")?,
                    who: row.try_get("who")?,
                    step: row.try_get("step_id")?,
                    millis: row.try_get::<Option<i64>, _>("millis")?.map(|ms| u64::try_from(ms).unwrap_or(0)),
                    at: row.time("at")?,
                })
            }

            pub(super) fn service(row: &DbRow) -> Result<crate::RunService, StoreError> {
                Ok(crate::RunService {
                    run: row.try_get("run_id")?,
                    service: crate::NewService {
                        job: row.try_get("job")?,
                        service: row.try_get("service")?,
                        port: row
                            .try_get::<Option<i64>, _>("port")?
                            .and_then(|p| u16::try_from(p).ok()),
                        millis: row.unsigned("millis")?,
                        error: row.try_get("error")?,
                    },
                    at: row.time("at")?,
                })
            }

            pub(super) fn cache(row: &DbRow) -> Result<crate::CacheUse, StoreError> {
                let keys: String = row.try_get("keys")?;
                Ok(crate::CacheUse {
                    run: row.try_get("run_id")?,
                    cache: crate::NewCacheUse {
                        job: row.try_get("job")?,
                        step: row.try_get("step_id")?,
                        action: row.try_get("action")?,
                        outcome: row.try_get("outcome")?,
                        keys: keys.lines().map(str::to_string).collect(),
                        matched: row.try_get("matched")?,
                        bytes: row.unsigned("bytes")?,
                        millis: row.unsigned("millis")?,
                    },
                    at: row.time("at")?,
                })
            }

            pub(super) fn session(row: &DbRow) -> Result<crate::Session, StoreError> {
                Ok(crate::Session {
                    user: row.try_get("user_name")?,
                    csrf: row.try_get("csrf")?,
                    created_at: row.time("created_at")?,
                    last_used_at: row.time("last_used_at")?,
                })
            }
        }

        /// Gets or creates a project inside a write transaction.
        async fn project_id_in(
            tx: &mut sqlx::Transaction<'static, $db>,
            name: &str,
        ) -> Result<i64, crate::StoreError> {
            crate::check_name("project name", name)?;
            // Nearly always there: one statement, not an insert and a select (each statement is
            // a round trip to SQLite's worker thread, on every webhook's critical path).
            let find = || sqlx::query_scalar("SELECT id FROM projects WHERE name = $1").bind(name);
            if let Some(id) = find().fetch_optional(&mut **tx).await? {
                return Ok(id);
            }
            sqlx::query(
                "INSERT INTO projects (name, created_at) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING",
            )
            .bind(name)
            .bind(crate::model::now_ms())
            .execute(&mut **tx)
            .await?;
            Ok(find().fetch_one(&mut **tx).await?)
        }

        /// Inserts a queued run (and applies `auto_cancel`) inside a write transaction.
        async fn enqueue_in(
            tx: &mut sqlx::Transaction<'static, $db>,
            project: i64,
            run: &crate::NewRun,
            rerun_of: Option<i64>,
        ) -> Result<crate::Enqueued, crate::StoreError> {
            crate::check_name("branch", &run.branch)?;
            crate::check_name("commit", &run.commit)?;
            <$store>::lock_branch(tx, project, &run.branch).await?;
            let now = crate::model::now_ms();
            let id: i64 = sqlx::query_scalar(
                "INSERT INTO runs (project_id, branch, commit_sha, message, author, trigger_kind, \
                 triggered_by, rerun_of, status, queued_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'queued', $9) RETURNING id",
            )
            .bind(project)
            .bind(&run.branch)
            .bind(&run.commit)
            .bind(&run.message)
            .bind(&run.author)
            .bind(run.trigger.kind.as_str())
            .bind(&run.trigger.by)
            .bind(rerun_of)
            .bind(now)
            .fetch_one(&mut **tx)
            .await?;
            let mut cancelled: Vec<i64> = if run.auto_cancel {
                sqlx::query_scalar(
                    "UPDATE runs SET status = 'cancelled', finished_at = $1, cancelled_by = $2 \
                     WHERE project_id = $3 AND branch = $4 AND status = 'queued' AND id < $5 \
                     RETURNING id",
                )
                .bind(now)
                .bind(format!("superseded by run {id}"))
                .bind(project)
                .bind(&run.branch)
                .bind(id)
                .fetch_all(&mut **tx)
                .await?
            } else {
                Vec::new()
            };
            cancelled.sort_unstable();
            Ok(crate::Enqueued { run: id, cancelled })
        }

        #[async_trait::async_trait]
        impl crate::Store for $store {
            fn backend(&self) -> crate::Backend {
                $backend
            }

            async fn ensure_project(&self, name: &str) -> Result<crate::Project, crate::StoreError> {
                let mut tx = self.begin_write().await?;
                let id = project_id_in(&mut tx, name).await?;
                let row = sqlx::query("SELECT id, name, created_at FROM projects WHERE id = $1")
                    .bind(id)
                    .fetch_one(&mut *tx)
                    .await?;
                tx.commit().await?;
                shared_rows::project(&row)
            }

            async fn projects(&self) -> Result<Vec<crate::Project>, crate::StoreError> {
                sqlx::query("SELECT id, name, created_at FROM projects ORDER BY name")
                    .fetch_all(&self.read)
                    .await?
                    .iter()
                    .map(shared_rows::project)
                    .collect()
            }

            async fn record_delivery(
                &self,
                delivery: &crate::NewDelivery,
                run: &crate::NewRun,
            ) -> Result<crate::DeliveryOutcome, crate::StoreError> {
                crate::check_name("delivery provider", &delivery.provider)?;
                crate::check_name("delivery id", &delivery.delivery_id)?;
                crate::check_name("project name", &run.project)?;
                crate::check_name("branch", &run.branch)?;
                crate::check_name("commit", &run.commit)?;
                self.write_delivery(delivery, run).await
            }

            async fn enqueue(&self, run: &crate::NewRun) -> Result<crate::Enqueued, crate::StoreError> {
                let mut tx = self.begin_write().await?;
                let project = project_id_in(&mut tx, &run.project).await?;
                let enqueued = enqueue_in(&mut tx, project, run, None).await?;
                for cancelled in &enqueued.cancelled {
                    Self::notify_in_tx(&mut tx, *cancelled).await?;
                }
                tx.commit().await?;
                for cancelled in &enqueued.cancelled {
                    self.notify_after_commit(*cancelled);
                }
                Ok(enqueued)
            }

            async fn run(&self, id: crate::RunId) -> Result<Option<crate::Run>, crate::StoreError> {
                sqlx::query(&format!("{} WHERE r.id = $1", crate::queries::RUN_SELECT))
                    .bind(id)
                    .fetch_optional(&self.read)
                    .await?
                    .as_ref()
                    .map(shared_rows::run)
                    .transpose()
            }

            async fn runs(&self, query: &crate::RunQuery) -> Result<Vec<crate::Run>, crate::StoreError> {
                let mut sql = sqlx::QueryBuilder::<$db>::new(crate::queries::RUN_SELECT);
                sql.push(" WHERE 1 = 1");
                if let Some(project) = &query.project {
                    sql.push(" AND p.name = ").push_bind(project.clone());
                }
                if let Some(branch) = &query.branch {
                    sql.push(" AND r.branch = ").push_bind(branch.clone());
                }
                if let Some(status) = query.status {
                    sql.push(" AND r.status = ").push_bind(status.as_str());
                }
                if let Some(before) = query.before {
                    sql.push(" AND r.id < ").push_bind(before);
                }
                sql.push(" ORDER BY r.id DESC LIMIT ")
                    .push_bind(i64::from(query.limit));
                sql.build()
                    .fetch_all(&self.read)
                    .await?
                    .iter()
                    .map(shared_rows::run)
                    .collect()
            }

            async fn claim(&self, runner: &str) -> Result<Option<crate::Run>, crate::StoreError> {
                crate::check_name("runner id", runner)?;
                let mut tx = self.begin_write().await?;
                let claimed: Option<i64> = sqlx::query_scalar(Self::CLAIM_SQL)
                    .bind(runner)
                    .bind(crate::model::now_ms())
                    .fetch_optional(&mut *tx)
                    .await?;
                let run = match claimed {
                    Some(id) => sqlx::query(&format!("{} WHERE r.id = $1", crate::queries::RUN_SELECT))
                        .bind(id)
                        .fetch_optional(&mut *tx)
                        .await?
                        .as_ref()
                        .map(shared_rows::run)
                        .transpose()?,
                    None => None,
                };
                tx.commit().await?;
                Ok(run)
            }

            async fn heartbeat(&self, runner: &str) -> Result<u64, crate::StoreError> {
                let done = sqlx::query(
                    "UPDATE runs SET heartbeat_at = $1 WHERE runner_id = $2 AND status = 'running'",
                )
                .bind(crate::model::now_ms())
                .bind(runner)
                .execute(&self.write)
                .await?;
                Ok(done.rows_affected())
            }

            async fn finish(
                &self,
                run: crate::RunId,
                runner: &str,
                status: crate::RunStatus,
            ) -> Result<bool, crate::StoreError> {
                if !matches!(status, crate::RunStatus::Passed | crate::RunStatus::Failed) {
                    return Err(crate::StoreError::Invalid {
                        what: "final run status",
                        reason: format!("`{status}`; a runner finishes a run as passed or failed"),
                    });
                }
                let mut tx = self.begin_write().await?;
                let done = sqlx::query(
                    "UPDATE runs SET status = $1, finished_at = $2 \
                     WHERE id = $3 AND runner_id = $4 AND status = 'running'",
                )
                .bind(status.as_str())
                .bind(crate::model::now_ms())
                .bind(run)
                .bind(runner)
                .execute(&mut *tx)
                .await?;
                Self::notify_in_tx(&mut tx, run).await?;
                tx.commit().await?;
                self.notify_after_commit(run);
                Ok(done.rows_affected() == 1)
            }

            async fn cancel(&self, run: crate::RunId, who: &str) -> Result<bool, crate::StoreError> {
                let mut tx = self.begin_write().await?;
                let done = sqlx::query(
                    "UPDATE runs SET status = 'cancelled', finished_at = $1, cancelled_by = $2 \
                     WHERE id = $3 AND status IN ('queued', 'running')",
                )
                .bind(crate::model::now_ms())
                .bind(who)
                .bind(run)
                .execute(&mut *tx)
                .await?;
                Self::notify_in_tx(&mut tx, run).await?;
                tx.commit().await?;
                self.notify_after_commit(run);
                Ok(done.rows_affected() == 1)
            }

            async fn rerun(&self, run: crate::RunId, who: &str) -> Result<crate::RunId, crate::StoreError> {
                let Some(old) = self.run(run).await? else {
                    return Err(crate::StoreError::NotFound { what: "run", name: run.to_string() });
                };
                let new = crate::NewRun {
                    project: old.project,
                    branch: old.branch,
                    commit: old.commit,
                    message: old.message,
                    author: old.author,
                    trigger: crate::Trigger { kind: crate::TriggerKind::Rerun, by: who.to_string() },
                    // A re-run of an older commit must not cancel newer work.
                    auto_cancel: false,
                };
                let mut tx = self.begin_write().await?;
                let project = project_id_in(&mut tx, &new.project).await?;
                let enqueued = enqueue_in(&mut tx, project, &new, Some(run)).await?;
                tx.commit().await?;
                Ok(enqueued.run)
            }

            async fn interrupt_runner(&self, runner: &str) -> Result<Vec<crate::RunId>, crate::StoreError> {
                let mut tx = self.begin_write().await?;
                let mut ids: Vec<i64> = sqlx::query_scalar(
                    "UPDATE runs SET status = 'interrupted', finished_at = $1 \
                     WHERE runner_id = $2 AND status = 'running' RETURNING id",
                )
                .bind(crate::model::now_ms())
                .bind(runner)
                .fetch_all(&mut *tx)
                .await?;
                for id in &ids {
                    Self::notify_in_tx(&mut tx, *id).await?;
                }
                tx.commit().await?;
                ids.sort_unstable();
                for id in &ids {
                    self.notify_after_commit(*id);
                }
                Ok(ids)
            }

            async fn interrupt_stale(&self, older_than: std::time::Duration) -> Result<Vec<crate::RunId>, crate::StoreError> {
                let now = crate::model::now_ms();
                let cutoff = now - i64::try_from(older_than.as_millis()).unwrap_or(i64::MAX / 2);
                let mut tx = self.begin_write().await?;
                let mut ids: Vec<i64> = sqlx::query_scalar(
                    "UPDATE runs SET status = 'interrupted', finished_at = $1 \
                     WHERE status = 'running' AND (heartbeat_at IS NULL OR heartbeat_at <= $2) \
                     RETURNING id",
                )
                .bind(now)
                .bind(cutoff)
                .fetch_all(&mut *tx)
                .await?;
                for id in &ids {
                    Self::notify_in_tx(&mut tx, *id).await?;
                }
                tx.commit().await?;
                ids.sort_unstable();
                for id in &ids {
                    self.notify_after_commit(*id);
                }
                Ok(ids)
            }

            async fn expired_runs(&self, before: chrono::DateTime<chrono::Utc>) -> Result<Vec<crate::RunId>, crate::StoreError> {
                let ids: Vec<i64> = sqlx::query_scalar(crate::queries::EXPIRED_RUNS_SQL)
                    .bind(before.timestamp_millis())
                    .fetch_all(&self.read)
                    .await?;
                Ok(ids)
            }

            async fn delete_run(&self, run: crate::RunId) -> Result<bool, crate::StoreError> {
                let mut tx = self.begin_write().await?;
                for statement in crate::queries::DELETE_RUN_SQL {
                    sqlx::query(statement).bind(run).execute(&mut *tx).await?;
                }
                let done = sqlx::query("DELETE FROM runs WHERE id = $1")
                    .bind(run)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok(done.rows_affected() == 1)
            }

            async fn add_job(&self, run: crate::RunId, job: &crate::NewJob) -> Result<crate::JobId, crate::StoreError> {
                crate::check_name("job name", &job.name)?;
                let requires = serde_json::to_string(&job.requires)
                    .map_err(|e| crate::StoreError::Invalid { what: "requires", reason: e.to_string() })?;
                let id: i64 = sqlx::query_scalar(
                    "INSERT INTO jobs (run_id, name, position, requires, status) \
                     VALUES ($1, $2, $3, $4, 'pending') RETURNING id",
                )
                .bind(run)
                .bind(&job.name)
                .bind(job.position)
                .bind(requires)
                .fetch_one(&self.write)
                .await?;
                Ok(id)
            }

            async fn set_job_status(&self, job: crate::JobId, status: crate::StepStatus) -> Result<(), crate::StoreError> {
                let now = crate::model::now_ms();
                let (started, finished) = match status {
                    crate::StepStatus::Pending => (None, None),
                    crate::StepStatus::Running => (Some(now), None),
                    _ => (None, Some(now)),
                };
                sqlx::query(
                    "UPDATE jobs SET status = $1, started_at = COALESCE(started_at, $2), \
                     finished_at = $3 WHERE id = $4",
                )
                .bind(status.as_str())
                .bind(started)
                .bind(finished)
                .bind(job)
                .execute(&self.write)
                .await?;
                Ok(())
            }

            async fn add_step(&self, job: crate::JobId, name: &str, position: i64) -> Result<crate::StepId, crate::StoreError> {
                crate::check_name("step name", name)?;
                let id: i64 = sqlx::query_scalar(
                    "INSERT INTO steps (job_id, name, position, status) VALUES ($1, $2, $3, 'pending') \
                     RETURNING id",
                )
                .bind(job)
                .bind(name)
                .bind(position)
                .fetch_one(&self.write)
                .await?;
                Ok(id)
            }

            async fn start_step(&self, step: crate::StepId) -> Result<(), crate::StoreError> {
                sqlx::query("UPDATE steps SET status = 'running', started_at = $1 WHERE id = $2")
                    .bind(crate::model::now_ms())
                    .bind(step)
                    .execute(&self.write)
                    .await?;
                Ok(())
            }

            async fn finish_step(
                &self,
                step: crate::StepId,
                status: crate::StepStatus,
                exit_code: Option<i32>,
                duration: std::time::Duration,
            ) -> Result<(), crate::StoreError> {
                sqlx::query(
                    "UPDATE steps SET status = $1, exit_code = $2, duration_ms = $3 WHERE id = $4",
                )
                .bind(status.as_str())
                .bind(exit_code.map(i64::from))
                .bind(i64::try_from(duration.as_millis()).unwrap_or(i64::MAX))
                .bind(step)
                .execute(&self.write)
                .await?;
                Ok(())
            }

            async fn jobs(&self, run: crate::RunId) -> Result<Vec<crate::Job>, crate::StoreError> {
                let mut jobs: Vec<crate::Job> = sqlx::query(
                    "SELECT id, run_id, name, position, requires, status, started_at, finished_at \
                     FROM jobs WHERE run_id = $1 ORDER BY position, id",
                )
                .bind(run)
                .fetch_all(&self.read)
                .await?
                .iter()
                .map(shared_rows::job)
                .collect::<Result<_, _>>()?;
                let steps: Vec<crate::Step> = sqlx::query(
                    "SELECT s.id, s.job_id, s.name, s.position, s.status, s.exit_code, \
                     s.duration_ms, s.started_at FROM steps s JOIN jobs j ON j.id = s.job_id \
                     WHERE j.run_id = $1 ORDER BY s.position, s.id",
                )
                .bind(run)
                .fetch_all(&self.read)
                .await?
                .iter()
                .map(shared_rows::step)
                .collect::<Result<_, _>>()?;
                for step in steps {
                    if let Some(job) = jobs.iter_mut().find(|j| j.id == step.job) {
                        job.steps.push(step);
                    }
                }
                Ok(jobs)
            }

            async fn append_log(&self, run: crate::RunId, lines: &[crate::NewLogLine]) -> Result<i64, crate::StoreError> {
                let mut tx = self.begin_write().await?;
                let count = i64::try_from(lines.len()).unwrap_or(i64::MAX);
                // The run's counter hands out the numbers: the row lock orders concurrent batches.
                let last: Option<i64> = sqlx::query_scalar(
                    "UPDATE runs SET log_seq = log_seq + $1 WHERE id = $2 RETURNING log_seq",
                )
                .bind(count)
                .bind(run)
                .fetch_optional(&mut *tx)
                .await?;
                let Some(last) = last else {
                    return Err(crate::StoreError::NotFound { what: "run", name: run.to_string() });
                };
                if lines.is_empty() {
                    tx.commit().await?;
                    return Ok(last);
                }
                let mut seq = last - count;
                for chunk in lines.chunks(crate::queries::LOG_CHUNK) {
                    let mut sql = sqlx::QueryBuilder::<$db>::new(
                        "INSERT INTO log_lines (run_id, seq, step_id, at, text) ",
                    );
                    sql.push_values(chunk, |mut row, line| {
                        seq += 1;
                        row.push_bind(run)
                            .push_bind(seq)
                            .push_bind(line.step)
                            .push_bind(crate::model::millis(line.at))
                            .push_bind(line.text.clone());
                    });
                    sql.build().execute(&mut *tx).await?;
                }
                Self::notify_in_tx(&mut tx, run).await?;
                tx.commit().await?;
                self.notify_after_commit(run);
                Ok(last)
            }

            async fn log_after(&self, run: crate::RunId, after: i64, limit: u32) -> Result<Vec<crate::LogLine>, crate::StoreError> {
                sqlx::query(
                    "SELECT run_id, seq, step_id, at, text FROM log_lines \
                     WHERE run_id = $1 AND seq > $2 ORDER BY seq LIMIT $3",
                )
                .bind(run)
                .bind(after)
                .bind(i64::from(limit))
                .fetch_all(&self.read)
                .await?
                .iter()
                .map(shared_rows::log_line)
                .collect()
            }

            async fn subscribe(&self, run: crate::RunId, after: i64) -> Result<crate::LogStream, crate::StoreError> {
                let wakeups = self.wakeups().await?;
                Ok(crate::subscription::spawn(self.clone(), run, after, wakeups))
            }

            async fn add_test_suite(&self, run: crate::RunId, suite: &crate::TestSuite) -> Result<(), crate::StoreError> {
                let ms = |d: std::time::Duration| i64::try_from(d.as_millis()).unwrap_or(i64::MAX);
                let mut tx = self.begin_write().await?;
                let suite_id: i64 = sqlx::query_scalar(
                    "INSERT INTO test_suites (run_id, step_id, name, tests, failures, errors, skipped, \
                     duration_ms) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id",
                )
                .bind(run)
                .bind(suite.step)
                .bind(&suite.name)
                .bind(i64::from(suite.tests))
                .bind(i64::from(suite.failures))
                .bind(i64::from(suite.errors))
                .bind(i64::from(suite.skipped))
                .bind(ms(suite.duration))
                .fetch_one(&mut *tx)
                .await?;
                for chunk in suite.cases.chunks(crate::queries::LOG_CHUNK) {
                    let mut sql = sqlx::QueryBuilder::<$db>::new(
                        "INSERT INTO test_cases (suite_id, classname, name, outcome, duration_ms, message) ",
                    );
                    sql.push_values(chunk, |mut row, case| {
                        row.push_bind(suite_id)
                            .push_bind(case.classname.clone())
                            .push_bind(case.name.clone())
                            .push_bind(case.outcome.as_str())
                            .push_bind(ms(case.duration))
                            .push_bind(case.message.clone());
                    });
                    sql.build().execute(&mut *tx).await?;
                }
                tx.commit().await?;
                Ok(())
            }

            async fn test_suites(&self, run: crate::RunId) -> Result<Vec<crate::TestSuite>, crate::StoreError> {
                let rows = sqlx::query(
                    "SELECT id, step_id, name, tests, failures, errors, skipped, duration_ms \
                     FROM test_suites WHERE run_id = $1 ORDER BY id",
                )
                .bind(run)
                .fetch_all(&self.read)
                .await?;
                let mut suites = Vec::with_capacity(rows.len());
                let mut ids = Vec::with_capacity(rows.len());
                for row in &rows {
                    let (id, suite) = shared_rows::test_suite(row)?;
                    ids.push(id);
                    suites.push(suite);
                }
                let cases = sqlx::query(
                    "SELECT c.suite_id, c.classname, c.name, c.outcome, c.duration_ms, c.message \
                     FROM test_cases c JOIN test_suites s ON s.id = c.suite_id \
                     WHERE s.run_id = $1 ORDER BY c.id",
                )
                .bind(run)
                .fetch_all(&self.read)
                .await?;
                for row in &cases {
                    let (suite_id, case) = shared_rows::test_case(row)?;
                    if let Some(i) = ids.iter().position(|id| *id == suite_id) {
                        suites[i].cases.push(case);
                    }
                }
                Ok(suites)
            }

            async fn add_artifact(&self, run: crate::RunId, name: &str, path: &str, size: u64) -> Result<(), crate::StoreError> {
                crate::check_name("artifact name", name)?;
                let done = sqlx::query(
                    "INSERT INTO artifacts (run_id, name, path, size_bytes, created_at) \
                     VALUES ($1, $2, $3, $4, $5)",
                )
                .bind(run)
                .bind(name)
                .bind(path)
                .bind(i64::try_from(size).unwrap_or(i64::MAX))
                .bind(crate::model::now_ms())
                .execute(&self.write)
                .await;
                match done {
                    Ok(_) => Ok(()),
                    Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
                        Err(crate::StoreError::Exists { what: "artifact", name: format!("{name} of run {run}") })
                    }
                    Err(e) => Err(e.into()),
                }
            }

            async fn artifacts(&self, run: crate::RunId) -> Result<Vec<crate::Artifact>, crate::StoreError> {
                sqlx::query(
                    "SELECT run_id, name, path, size_bytes, created_at FROM artifacts \
                     WHERE run_id = $1 ORDER BY name",
                )
                .bind(run)
                .fetch_all(&self.read)
                .await?
                .iter()
                .map(shared_rows::artifact)
                .collect()
            }

            async fn record_service(&self, run: crate::RunId, service: &crate::NewService) -> Result<(), crate::StoreError> {
                sqlx::query(
                    "INSERT INTO run_services (run_id, job, service, port, millis, error, at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7)",
                )
                .bind(run)
                .bind(&service.job)
                .bind(&service.service)
                .bind(service.port.map(i64::from))
                .bind(i64::try_from(service.millis).unwrap_or(i64::MAX))
                .bind(&service.error)
                .bind(crate::model::now_ms())
                .execute(&self.write)
                .await?;
                Ok(())
            }

            async fn run_services(&self, run: crate::RunId) -> Result<Vec<crate::RunService>, crate::StoreError> {
                sqlx::query(
                    "SELECT run_id, job, service, port, millis, error, at FROM run_services \
                     WHERE run_id = $1 ORDER BY id",
                )
                .bind(run)
                .fetch_all(&self.read)
                .await?
                .iter()
                .map(shared_rows::service)
                .collect()
            }

            async fn record_cache(&self, run: crate::RunId, cache: &crate::NewCacheUse) -> Result<(), crate::StoreError> {
                sqlx::query(
                    "INSERT INTO run_caches (run_id, job, step_id, action, outcome, keys, matched, \
                     bytes, millis, at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
                )
                .bind(run)
                .bind(&cache.job)
                .bind(cache.step)
                .bind(&cache.action)
                .bind(&cache.outcome)
                .bind(cache.keys.join("\n"))
                .bind(&cache.matched)
                .bind(i64::try_from(cache.bytes).unwrap_or(i64::MAX))
                .bind(i64::try_from(cache.millis).unwrap_or(i64::MAX))
                .bind(crate::model::now_ms())
                .execute(&self.write)
                .await?;
                Ok(())
            }

            async fn run_caches(&self, run: crate::RunId) -> Result<Vec<crate::CacheUse>, crate::StoreError> {
                sqlx::query(
                    "SELECT run_id, job, step_id, action, outcome, keys, matched, bytes, millis, at \
                     FROM run_caches WHERE run_id = $1 ORDER BY id",
                )
                .bind(run)
                .fetch_all(&self.read)
                .await?
                .iter()
                .map(shared_rows::cache)
                .collect()
            }

            async fn create_session(
                &self,
                id: &str,
                user: &str,
                csrf: &str,
                expired_before: chrono::DateTime<chrono::Utc>,
            ) -> Result<(), crate::StoreError> {
                let now = crate::model::now_ms();
                let mut tx = self.begin_write().await?;
                sqlx::query("DELETE FROM sessions WHERE last_used_at < $1")
                    .bind(crate::model::millis(expired_before))
                    .execute(&mut *tx)
                    .await?;
                sqlx::query(
                    "INSERT INTO sessions (id_sha256, user_name, csrf, created_at, last_used_at) \
                     VALUES ($1, $2, $3, $4, $4)",
                )
                .bind(crate::secret::token_digest(id))
                .bind(user)
                .bind(csrf)
                .bind(now)
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
                Ok(())
            }

            async fn session(
                &self,
                id: &str,
                expired_before: chrono::DateTime<chrono::Utc>,
            ) -> Result<Option<crate::Session>, crate::StoreError> {
                sqlx::query(
                    "SELECT user_name, csrf, created_at, last_used_at FROM sessions \
                     WHERE id_sha256 = $1 AND last_used_at >= $2",
                )
                .bind(crate::secret::token_digest(id))
                .bind(crate::model::millis(expired_before))
                .fetch_optional(&self.read)
                .await?
                .as_ref()
                .map(shared_rows::session)
                .transpose()
            }

            async fn touch_session(&self, id: &str) -> Result<(), crate::StoreError> {
                sqlx::query("UPDATE sessions SET last_used_at = $1 WHERE id_sha256 = $2")
                    .bind(crate::model::now_ms())
                    .bind(crate::secret::token_digest(id))
                    .execute(&self.write)
                    .await?;
                Ok(())
            }

            async fn delete_session(&self, id: &str) -> Result<bool, crate::StoreError> {
                let done = sqlx::query("DELETE FROM sessions WHERE id_sha256 = $1")
                    .bind(crate::secret::token_digest(id))
                    .execute(&self.write)
                    .await?;
                Ok(done.rows_affected() == 1)
            }

            async fn add_user(&self, name: &str, role: crate::Role, password: &str) -> Result<crate::User, crate::StoreError> {
                crate::check_name("user name", name)?;
                if password.is_empty() {
                    return Err(crate::StoreError::Invalid {
                        what: "password",
                        reason: format!("for user `{name}`: it is empty"),
                    });
                }
                let password = password.to_string();
                let hash = tokio::task::spawn_blocking(move || crate::secret::hash_password(&password))
                    .await
                    .map_err(|e| crate::StoreError::Crypto(e.to_string()))??;
                let now = crate::model::now_ms();
                let done = sqlx::query(
                    "INSERT INTO users (name, role, password_hash, created_at) VALUES ($1, $2, $3, $4)",
                )
                .bind(name)
                .bind(role.as_str())
                .bind(hash)
                .bind(now)
                .execute(&self.write)
                .await;
                match done {
                    Ok(_) => Ok(crate::User { name: name.to_string(), role, created_at: crate::model::from_millis(now) }),
                    Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
                        Err(crate::StoreError::Exists { what: "user", name: name.to_string() })
                    }
                    Err(e) => Err(e.into()),
                }
            }

            async fn set_user_role(&self, name: &str, role: crate::Role) -> Result<bool, crate::StoreError> {
                let done = sqlx::query("UPDATE users SET role = $1 WHERE name = $2")
                    .bind(role.as_str())
                    .bind(name)
                    .execute(&self.write)
                    .await?;
                Ok(done.rows_affected() == 1)
            }

            async fn remove_user(&self, name: &str) -> Result<bool, crate::StoreError> {
                let done = sqlx::query("DELETE FROM users WHERE name = $1")
                    .bind(name)
                    .execute(&self.write)
                    .await?;
                Ok(done.rows_affected() == 1)
            }

            async fn users(&self) -> Result<Vec<crate::User>, crate::StoreError> {
                sqlx::query("SELECT name, role, created_at FROM users ORDER BY name")
                    .fetch_all(&self.read)
                    .await?
                    .iter()
                    .map(shared_rows::user)
                    .collect()
            }

            async fn login(&self, name: &str, password: &str) -> Result<Option<crate::User>, crate::StoreError> {
                use sqlx::Row;
                let row = sqlx::query("SELECT name, role, created_at, password_hash FROM users WHERE name = $1")
                    .bind(name)
                    .fetch_optional(&self.read)
                    .await?;
                // An unknown name costs the same argon2 work, so timing does not tell names apart.
                let hash = match &row {
                    Some(row) => row.try_get::<String, _>("password_hash")?,
                    None => crate::secret::unknown_user_hash().to_string(),
                };
                let password = password.to_string();
                let matches = tokio::task::spawn_blocking(move || crate::secret::verify_password(&password, &hash))
                    .await
                    .map_err(|e| crate::StoreError::Crypto(e.to_string()))?;
                match row {
                    Some(row) if matches => Ok(Some(shared_rows::user(&row)?)),
                    _ => Ok(None),
                }
            }

            async fn create_token(&self, name: &str, role: crate::Role, created_by: &str) -> Result<crate::CreatedToken, crate::StoreError> {
                crate::check_name("token name", name)?;
                let secret = crate::secret::new_token_secret()?;
                let now = crate::model::now_ms();
                let done = sqlx::query(
                    "INSERT INTO api_tokens (name, role, token_sha256, created_by, created_at) \
                     VALUES ($1, $2, $3, $4, $5)",
                )
                .bind(name)
                .bind(role.as_str())
                .bind(crate::secret::token_digest(&secret))
                .bind(created_by)
                .bind(now)
                .execute(&self.write)
                .await;
                match done {
                    Ok(_) => Ok(crate::CreatedToken {
                        token: crate::ApiToken {
                            name: name.to_string(),
                            role,
                            created_by: created_by.to_string(),
                            created_at: crate::model::from_millis(now),
                        },
                        secret,
                    }),
                    Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
                        Err(crate::StoreError::Exists { what: "token", name: name.to_string() })
                    }
                    Err(e) => Err(e.into()),
                }
            }

            async fn token_by_secret(&self, secret: &str) -> Result<Option<crate::ApiToken>, crate::StoreError> {
                sqlx::query("SELECT name, role, created_by, created_at FROM api_tokens WHERE token_sha256 = $1")
                    .bind(crate::secret::token_digest(secret))
                    .fetch_optional(&self.read)
                    .await?
                    .as_ref()
                    .map(shared_rows::token)
                    .transpose()
            }

            async fn revoke_token(&self, name: &str) -> Result<bool, crate::StoreError> {
                let done = sqlx::query("DELETE FROM api_tokens WHERE name = $1")
                    .bind(name)
                    .execute(&self.write)
                    .await?;
                Ok(done.rows_affected() == 1)
            }

            async fn tokens(&self) -> Result<Vec<crate::ApiToken>, crate::StoreError> {
                sqlx::query("SELECT name, role, created_by, created_at FROM api_tokens ORDER BY name")
                    .fetch_all(&self.read)
                    .await?
                    .iter()
                    .map(shared_rows::token)
                    .collect()
            }

            async fn audit(&self, entry: &crate::NewAudit) -> Result<(), crate::StoreError> {
                sqlx::query(
                    "INSERT INTO audit_log (at, who, action, target, detail) VALUES ($1, $2, $3, $4, $5)",
                )
                .bind(crate::model::now_ms())
                .bind(&entry.who)
                .bind(&entry.action)
                .bind(&entry.target)
                .bind(&entry.detail)
                .execute(&self.write)
                .await?;
                Ok(())
            }

            async fn audit_log(&self, limit: u32) -> Result<Vec<crate::AuditEntry>, crate::StoreError> {
                sqlx::query(
                    "SELECT id, at, who, action, target, detail FROM audit_log ORDER BY id DESC LIMIT $1",
                )
                .bind(i64::from(limit))
                .fetch_all(&self.read)
                .await?
                .iter()
                .map(shared_rows::audit)
                .collect()
            }

            async fn record_deployment(&self, deployment: &crate::NewDeployment) -> Result<(), crate::StoreError> {
                let mut tx = self.begin_write().await?;
                let project = project_id_in(&mut tx, &deployment.project).await?;
                sqlx::query(
                    "INSERT INTO deployments (run_id, project_id, environment, host, release_id, \
                     outcome, detail, who, at, step_id, millis) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
                )
                .bind(deployment.run)
                .bind(project)
                .bind(&deployment.environment)
                .bind(&deployment.host)
                .bind(&deployment.release)
                .bind(&deployment.outcome)
                .bind(&deployment.detail)
                .bind(&deployment.who)
                .bind(crate::model::now_ms())
                .bind(deployment.step)
                .bind(deployment.millis.map(|ms| i64::try_from(ms).unwrap_or(i64::MAX)))
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
                Ok(())
            }

            async fn deployments(&self, project: &str) -> Result<Vec<crate::Deployment>, crate::StoreError> {
                sqlx::query(
                    "SELECT d.id, d.run_id, p.name AS project, d.environment, d.host, d.release_id, \
                     d.outcome, d.detail, d.who, d.at, d.step_id, d.millis FROM deployments d JOIN projects p ON p.id = d.project_id \
                     WHERE p.name = $1 ORDER BY d.id DESC",
                )
                .bind(project)
                .fetch_all(&self.read)
                .await?
                .iter()
                .map(shared_rows::deployment)
                .collect()
            }

            async fn run_deployments(&self, run: crate::RunId) -> Result<Vec<crate::Deployment>, crate::StoreError> {
                sqlx::query(
                    "SELECT d.id, d.run_id, p.name AS project, d.environment, d.host, d.release_id, \
                     d.outcome, d.detail, d.who, d.at, d.step_id, d.millis FROM deployments d JOIN projects p ON p.id = d.project_id \
                     WHERE d.run_id = $1 ORDER BY d.id",
                )
                .bind(run)
                .fetch_all(&self.read)
                .await?
                .iter()
                .map(shared_rows::deployment)
                .collect()
            }
        }
    };
}

pub(crate) use impl_store;
