//! Webhook deliveries on SQLite, committed in groups: the deliveries that arrive while one
//! group is being written are written together, in one transaction and a few statements.
//!
//! A delivery must be committed before its `202`, and SQLite has one writer: written one by
//! one, with a round trip to the connection's thread per statement, 200 deliveries at once
//! queued behind each other for ~0.5 ms each. A group costs about the same as one delivery, so
//! the queue's length no longer adds up.
//!
//! What a group writes is what writing its deliveries one after the other, in the order they
//! arrived, would have written: the same run ids, the same redeliveries answered with the first
//! delivery's run (also within a group), the same runs cancelled by the same newer run.

use std::collections::{BTreeMap, HashMap};

use sqlx::sqlite::SqlitePool;
use sqlx::{QueryBuilder, Row, Sqlite};
use tokio::sync::{broadcast, mpsc, oneshot};

use super::project_id_in;
use crate::{DeliveryOutcome, Enqueued, NewDelivery, NewRun, RunId, StoreError};

/// The most deliveries written in one transaction (10 parameters each in the runs' insert,
/// far under SQLite's limit of 32,766).
const MAX_GROUP: usize = 256;

/// A delivery waiting for the writer, and where its outcome goes.
pub(super) struct Pending {
    pub(super) delivery: NewDelivery,
    pub(super) run: NewRun,
    pub(super) answer: oneshot::Sender<Result<DeliveryOutcome, StoreError>>,
}

/// Starts the writer; it ends when every sender is gone (the store is dropped).
pub(super) fn start(
    write: SqlitePool,
    changes: broadcast::Sender<RunId>,
) -> mpsc::UnboundedSender<Pending> {
    let (queue, waiting) = mpsc::unbounded_channel();
    tokio::spawn(writer(write, changes, waiting));
    queue
}

async fn writer(
    write: SqlitePool,
    changes: broadcast::Sender<RunId>,
    mut waiting: mpsc::UnboundedReceiver<Pending>,
) {
    while let Some(first) = waiting.recv().await {
        let mut group = vec![first];
        while group.len() < MAX_GROUP {
            match waiting.try_recv() {
                Ok(next) => group.push(next),
                Err(_) => break,
            }
        }
        match write_group(&write, &group).await {
            Ok(outcomes) => {
                for (pending, outcome) in group.into_iter().zip(outcomes) {
                    answer(&changes, pending, Ok(outcome));
                }
            }
            Err(error) if group.len() == 1 => answer(&changes, group.remove(0), Err(error)),
            // Nothing of the group was written: each delivery on its own, for its own answer.
            Err(_) => {
                for pending in group {
                    let outcome = write_group(&write, std::slice::from_ref(&pending))
                        .await
                        .map(|mut one| one.remove(0));
                    answer(&changes, pending, outcome);
                }
            }
        }
    }
}

/// Wakes the subscribers of the runs a new delivery cancelled, then answers its caller. A
/// caller that went away (its client hung up) still had its delivery written: the forge's
/// redelivery then finds it and answers with its run.
fn answer(
    changes: &broadcast::Sender<RunId>,
    pending: Pending,
    outcome: Result<DeliveryOutcome, StoreError>,
) {
    if let Ok(DeliveryOutcome::Created(enqueued)) = &outcome {
        for cancelled in &enqueued.cancelled {
            // No subscriber is not an error.
            let _ = changes.send(*cancelled);
        }
    }
    let _ = pending.answer.send(outcome);
}

/// Writes `group` in one transaction; its outcomes in the group's order.
async fn write_group(
    write: &SqlitePool,
    group: &[Pending],
) -> Result<Vec<DeliveryOutcome>, StoreError> {
    // `BEGIN IMMEDIATE`: nothing else writes until the commit, so the ids read below are the
    // ones the inserts get, and no delivery can be written in between by another store.
    let mut tx = write.begin_with("BEGIN IMMEDIATE").await?;
    let mut projects: HashMap<&str, i64> = HashMap::new();
    for pending in group {
        let name = pending.run.project.as_str();
        if !projects.contains_key(name) {
            projects.insert(name, project_id_in(&mut tx, name).await?);
        }
    }
    // Deliveries seen before: their first run.
    let mut seen = QueryBuilder::<Sqlite>::new(
        "SELECT provider, delivery_id, run_id FROM deliveries WHERE delivery_id IN (",
    );
    let mut ids = seen.separated(", ");
    for pending in group {
        ids.push_bind(&pending.delivery.delivery_id);
    }
    seen.push(")");
    let rows = seen.build().fetch_all(&mut *tx).await?;
    let seen: Vec<(String, String, RunId)> = rows
        .iter()
        .map(|row| {
            Ok((
                row.try_get("provider")?,
                row.try_get("delivery_id")?,
                row.try_get::<Option<RunId>, _>("run_id")?
                    .unwrap_or_default(),
            ))
        })
        .collect::<Result<_, sqlx::Error>>()?;
    let mut known: HashMap<(&str, &str), RunId> = HashMap::new();
    for (provider, delivery_id, run) in &seen {
        known.insert((provider.as_str(), delivery_id.as_str()), *run);
    }
    // New runs take the ids SQLite would give them one by one.
    let mut next: RunId = sqlx::query_scalar("SELECT COALESCE(MAX(id), 0) FROM runs")
        .fetch_one(&mut *tx)
        .await?;
    let mut outcomes = Vec::with_capacity(group.len());
    let mut new: Vec<(RunId, &Pending)> = Vec::new();
    for pending in group {
        let key = (
            pending.delivery.provider.as_str(),
            pending.delivery.delivery_id.as_str(),
        );
        if let Some(first) = known.get(&key) {
            outcomes.push(DeliveryOutcome::Duplicate(*first));
            continue;
        }
        next += 1;
        known.insert(key, next);
        new.push((next, pending));
        outcomes.push(DeliveryOutcome::Created(Enqueued {
            run: next,
            cancelled: Vec::new(),
        }));
    }
    if new.is_empty() {
        tx.commit().await?;
        return Ok(outcomes);
    }
    let now = crate::model::now_ms();
    let mut runs = QueryBuilder::<Sqlite>::new(
        "INSERT INTO runs (id, project_id, branch, commit_sha, message, author, trigger_kind, \
         triggered_by, status, queued_at) ",
    );
    runs.push_values(&new, |mut row, (id, pending)| {
        let run = &pending.run;
        row.push_bind(*id)
            .push_bind(projects[run.project.as_str()])
            .push_bind(&run.branch)
            .push_bind(&run.commit)
            .push_bind(&run.message)
            .push_bind(&run.author)
            .push_bind(run.trigger.kind.as_str())
            .push_bind(&run.trigger.by)
            .push_bind("queued")
            .push_bind(now);
    });
    runs.build().execute(&mut *tx).await?;
    let cancellers: Vec<(RunId, i64, &str)> = new
        .iter()
        .filter(|(_, pending)| pending.run.auto_cancel)
        .map(|(id, pending)| {
            let run = &pending.run;
            (*id, projects[run.project.as_str()], run.branch.as_str())
        })
        .collect();
    // Each new run with auto_cancel cancels the queued runs of its project and branch older
    // than itself: a run is cancelled by the first such run after it.
    let mut cancelled_by: BTreeMap<RunId, Vec<RunId>> = BTreeMap::new();
    if !cancellers.is_empty() {
        let mut cancel = QueryBuilder::<Sqlite>::new("WITH c (id, project_id, branch) AS (");
        cancel.push_values(&cancellers, |mut row, (id, project, branch)| {
            row.push_bind(*id).push_bind(*project).push_bind(*branch);
        });
        // `c CROSS JOIN runs`: SQLite walks the few new runs and finds the older ones of each
        // branch by index, instead of testing every queued run against each new one.
        cancel.push(") UPDATE runs SET status = 'cancelled', finished_at = ");
        cancel.push_bind(now);
        cancel.push(
            ", cancelled_by = 'superseded by run ' || (SELECT MIN(c.id) FROM c \
             WHERE c.project_id = runs.project_id AND c.branch = runs.branch AND c.id > runs.id) \
             WHERE id IN (SELECT o.id FROM c CROSS JOIN runs o \
             ON o.project_id = c.project_id AND o.branch = c.branch AND o.id < c.id \
             WHERE o.status = 'queued') \
             RETURNING id, project_id, branch",
        );
        let rows = cancel.build().fetch_all(&mut *tx).await?;
        for row in rows {
            let (id, project, branch): (RunId, i64, String) = (
                row.try_get("id")?,
                row.try_get("project_id")?,
                row.try_get("branch")?,
            );
            let by = cancellers
                .iter()
                .filter(|(n, p, b)| *n > id && *p == project && *b == branch)
                .map(|(n, _, _)| *n)
                .min();
            if let Some(by) = by {
                cancelled_by.entry(by).or_default().push(id);
            }
        }
    }
    let mut deliveries = QueryBuilder::<Sqlite>::new(
        "INSERT INTO deliveries (provider, delivery_id, project_id, received_at, run_id) ",
    );
    deliveries.push_values(&new, |mut row, (id, pending)| {
        row.push_bind(&pending.delivery.provider)
            .push_bind(&pending.delivery.delivery_id)
            .push_bind(projects[pending.run.project.as_str()])
            .push_bind(now)
            .push_bind(*id);
    });
    deliveries.build().execute(&mut *tx).await?;
    tx.commit().await?;
    for outcome in &mut outcomes {
        if let DeliveryOutcome::Created(enqueued) = outcome {
            if let Some(mut cancelled) = cancelled_by.remove(&enqueued.run) {
                cancelled.sort_unstable();
                enqueued.cancelled = cancelled;
            }
        }
    }
    Ok(outcomes)
}
