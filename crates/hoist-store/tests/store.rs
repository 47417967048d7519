//! The store's behaviour, one function per behaviour, run against both backends: a SQLite file in
//! a temp dir and a real PostgreSQL started by `hoist_testkit::PostgresServer` (one server per
//! test process, a database per test).

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use chrono::Utc;
use hoist_store::{
    open, Backend, DeliveryOutcome, NewAudit, NewCacheUse, NewDelivery, NewDeployment, NewJob,
    NewLogLine, NewRun, NewService, Role, RunQuery, RunStatus, StepStatus, Store, StoreError,
    TestCase, TestOutcome, TestSuite, Trigger, TriggerKind,
};
use hoist_testkit::PostgresServer;

/// How long a test waits for something that should happen at once, before failing.
const PATIENCE: Duration = Duration::from_secs(20);

struct Fixture {
    store: Arc<dyn Store>,
    url: String,
    _postgres: Option<Arc<PostgresServer>>,
    _dir: Option<tempfile::TempDir>,
}

impl Fixture {
    async fn sqlite() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}/hoist.db", dir.path().display());
        Fixture {
            store: open(&url).await.unwrap(),
            url,
            _postgres: None,
            _dir: Some(dir),
        }
    }

    async fn postgres(database: &str) -> Fixture {
        let server = shared_postgres();
        // PostgreSQL cuts identifiers at 63 bytes.
        let url = server.create_database(&database[..database.len().min(60)]);
        Fixture {
            store: open(&url).await.unwrap(),
            url,
            _postgres: Some(server),
            _dir: None,
        }
    }

    /// Another store on the same database: another pool, as another process would have.
    async fn second(&self) -> Arc<dyn Store> {
        open(&self.url).await.unwrap()
    }

    /// One value read with plain SQL, bypassing the store (what is really on disk).
    async fn raw_text(&self, sql: &str) -> String {
        if self.url.starts_with("sqlite:") {
            let pool = sqlx::SqlitePool::connect(&self.url).await.unwrap();
            let value: String = sqlx::query_scalar(sql).fetch_one(&pool).await.unwrap();
            pool.close().await;
            value
        } else {
            let pool = sqlx::PgPool::connect(&self.url).await.unwrap();
            let value: String = sqlx::query_scalar(sql).fetch_one(&pool).await.unwrap();
            pool.close().await;
            value
        }
    }
}

/// One PostgreSQL for the tests of this process that run at the same time; it stops when the
/// last of them drops it (pass or fail).
fn shared_postgres() -> Arc<PostgresServer> {
    static SERVER: Mutex<Weak<PostgresServer>> = Mutex::new(Weak::new());
    let mut slot = SERVER
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some(server) = slot.upgrade() {
        return server;
    }
    let server = Arc::new(PostgresServer::start());
    *slot = Arc::downgrade(&server);
    server
}

fn push(project: &str, branch: &str, commit: &str) -> NewRun {
    NewRun {
        project: project.into(),
        branch: branch.into(),
        commit: commit.into(),
        message: format!("commit {commit}"),
        author: "Ada <ada@example.org>".into(),
        trigger: Trigger {
            kind: TriggerKind::Webhook,
            by: "ada".into(),
        },
        auto_cancel: true,
    }
}

fn line(text: &str) -> NewLogLine {
    NewLogLine {
        step: None,
        at: Utc::now(),
        text: text.into(),
    }
}

async fn next_line(
    stream: &mut hoist_store::LogStream,
) -> Option<Result<hoist_store::LogLine, StoreError>> {
    tokio::time::timeout(PATIENCE, stream.next())
        .await
        .expect("no line within the patience")
}

async fn status(store: &dyn Store, run: i64) -> RunStatus {
    store.run(run).await.unwrap().unwrap().status
}

/// Runs each behaviour against SQLite and against PostgreSQL.
macro_rules! on_both_backends {
    ($($behaviour:ident),+ $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $behaviour() {
                    let fixture = super::Fixture::sqlite().await;
                    super::$behaviour(&fixture).await;
                }
            )+
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $behaviour() {
                    let fixture = super::Fixture::postgres(stringify!($behaviour)).await;
                    super::$behaviour(&fixture).await;
                }
            )+
        }
    };
}

on_both_backends!(
    a_redelivery_returns_the_first_run_and_creates_nothing,
    concurrent_deliveries_of_one_id_make_one_run,
    many_deliveries_at_once_end_as_one_after_the_other_would,
    claimers_on_two_connections_never_take_a_run_twice,
    a_new_push_cancels_the_queued_runs_of_its_branch_only,
    runs_that_were_running_come_back_interrupted,
    only_stale_runners_lose_their_runs,
    cancel_and_rerun,
    log_lines_are_numbered_paged_and_resumed,
    a_subscription_gives_stored_then_new_lines_and_ends_with_the_run,
    tokens_are_stored_hashed_and_found_by_their_secret,
    users_have_roles_and_argon2id_passwords,
    audit_entries_are_kept_newest_first,
    jobs_steps_tests_artifacts_and_deployments_are_kept,
    a_runs_services_and_cache_uses_are_kept_in_order,
    sessions_are_stored_hashed_expire_and_end_when_deleted,
    retention_deletes_old_runs_but_each_branchs_last_and_what_is_live,
);

/// A run of `push`, claimed and finished `passed`.
async fn finished(store: &dyn Store, push: &NewRun) -> i64 {
    let run = store.enqueue(push).await.unwrap().run;
    let claimed = store.claim("runner-1").await.unwrap().unwrap();
    assert_eq!(claimed.id, run);
    assert!(store
        .finish(run, "runner-1", RunStatus::Passed)
        .await
        .unwrap());
    run
}

fn deployment(run: Option<i64>, host: &str, release: &str, outcome: &str) -> NewDeployment {
    NewDeployment {
        run,
        project: "shop".into(),
        environment: "production".into(),
        host: host.into(),
        release: release.into(),
        outcome: outcome.into(),
        detail: None,
        who: run.map_or_else(|| "token ops".into(), |r| format!("run {r}")),
        step: None,
        millis: None,
    }
}

async fn retention_deletes_old_runs_but_each_branchs_last_and_what_is_live(f: &Fixture) {
    let store = &*f.store;
    // master: r1 deployed release A to web1 and web2, r2 deployed B to web1 (then web1 was
    // rolled back to A by hand), r3 deployed C to web2 (live there), r4 re-ran r3's commit,
    // r5 is master's newest.
    let r1 = finished(store, &push("shop", "master", "1")).await;
    store
        .record_deployment(&deployment(Some(r1), "web1", "A", "live"))
        .await
        .unwrap();
    store
        .record_deployment(&deployment(Some(r1), "web2", "A", "live"))
        .await
        .unwrap();
    let r2 = match store
        .record_delivery(
            &NewDelivery {
                provider: "github".into(),
                delivery_id: "d-2".into(),
            },
            &push("shop", "master", "2"),
        )
        .await
        .unwrap()
    {
        DeliveryOutcome::Created(enqueued) => enqueued.run,
        DeliveryOutcome::Duplicate(_) => panic!("a new delivery"),
    };
    assert_eq!(store.claim("runner-1").await.unwrap().unwrap().id, r2);
    let job = store
        .add_job(
            r2,
            &NewJob {
                name: "test".into(),
                position: 0,
                requires: vec![],
            },
        )
        .await
        .unwrap();
    let step = store.add_step(job, "pytest", 1).await.unwrap();
    store
        .append_log(
            r2,
            &[NewLogLine {
                step: Some(step),
                at: Utc::now(),
                text: "collected 1 item".into(),
            }],
        )
        .await
        .unwrap();
    store
        .add_test_suite(
            r2,
            &TestSuite {
                name: "pytest".into(),
                step: Some(step),
                tests: 1,
                failures: 0,
                errors: 0,
                skipped: 0,
                duration: Duration::from_millis(5),
                cases: vec![TestCase {
                    classname: "tests.test_app".into(),
                    name: "test_ok".into(),
                    outcome: TestOutcome::Passed,
                    duration: Duration::from_millis(5),
                    message: None,
                }],
            },
        )
        .await
        .unwrap();
    store
        .add_artifact(r2, "reports", "runs/2/ci/artifacts/reports", 10)
        .await
        .unwrap();
    assert!(store
        .finish(r2, "runner-1", RunStatus::Passed)
        .await
        .unwrap());
    // The facts of the run page, and a deployment that names its step: deleting the run must
    // take them (or, for the deployment, its link to the step) first.
    store
        .record_service(
            r2,
            &NewService {
                job: "test".into(),
                service: "postgres".into(),
                port: Some(5432),
                millis: 800,
                error: None,
            },
        )
        .await
        .unwrap();
    store
        .record_cache(
            r2,
            &NewCacheUse {
                job: "test".into(),
                step: Some(step),
                action: "restore".into(),
                outcome: "miss".into(),
                keys: vec!["deps-1".into()],
                matched: None,
                bytes: 0,
                millis: 3,
            },
        )
        .await
        .unwrap();
    store
        .record_deployment(&NewDeployment {
            step: Some(step),
            millis: Some(900),
            ..deployment(Some(r2), "web1", "B", "live")
        })
        .await
        .unwrap();
    store
        .record_deployment(&deployment(None, "web1", "A", "rolled_back"))
        .await
        .unwrap();
    let r3 = finished(store, &push("shop", "master", "3")).await;
    store
        .record_deployment(&deployment(Some(r3), "web2", "C", "live"))
        .await
        .unwrap();
    let r4 = store.rerun(r3, "ada").await.unwrap();
    assert_eq!(store.claim("runner-1").await.unwrap().unwrap().id, r4);
    store
        .finish(r4, "runner-1", RunStatus::Failed)
        .await
        .unwrap();
    let r5 = finished(store, &push("shop", "master", "5")).await;
    // A branch's only run is its last; on `fix`, the last finished run stays while a newer
    // one runs (the badge shows it), the one before goes.
    let feature = finished(store, &push("shop", "feature", "f")).await;
    let fix_old = finished(store, &push("shop", "fix", "x0")).await;
    let fix_last = finished(store, &push("shop", "fix", "x1")).await;
    let fix_running = store.enqueue(&push("shop", "fix", "x2")).await.unwrap().run;
    assert_eq!(
        store.claim("runner-1").await.unwrap().unwrap().id,
        fix_running
    );
    let other = finished(store, &push("blog", "master", "b")).await;

    // Nothing finished before an hour ago.
    let an_hour_ago = Utc::now() - chrono::Duration::hours(1);
    assert_eq!(
        store.expired_runs(an_hour_ago).await.unwrap(),
        Vec::<i64>::new()
    );
    let later = Utc::now() + chrono::Duration::seconds(1);
    let expired = store.expired_runs(later).await.unwrap();
    // r1 made what web1 serves again (A), r3 what web2 serves (C); r5, feature, fix_last and
    // blog's run are their branches' last finished runs; fix_running has not finished.
    assert_eq!(expired, vec![r2, r4, fix_old]);
    for run in &expired {
        assert!(store.delete_run(*run).await.unwrap());
    }
    assert!(!store.delete_run(r2).await.unwrap(), "already gone");
    assert!(store.run(r2).await.unwrap().is_none());
    assert!(store.jobs(r2).await.unwrap().is_empty());
    assert!(store.log_after(r2, 0, 100).await.unwrap().is_empty());
    assert!(store.test_suites(r2).await.unwrap().is_empty());
    assert!(store.artifacts(r2).await.unwrap().is_empty());
    assert!(store.run_services(r2).await.unwrap().is_empty());
    assert!(store.run_caches(r2).await.unwrap().is_empty());
    let left: Vec<i64> = store
        .runs(&RunQuery {
            limit: 100,
            ..RunQuery::default()
        })
        .await
        .unwrap()
        .iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(
        left,
        vec![other, fix_running, fix_last, feature, r5, r3, r1]
    );
    // What the hosts were told stays, without the deleted run.
    let history: Vec<(Option<i64>, String, String)> = store
        .deployments("shop")
        .await
        .unwrap()
        .into_iter()
        .map(|d| (d.run, d.host, d.release))
        .collect();
    assert_eq!(
        history,
        vec![
            (Some(r3), "web2".into(), "C".into()),
            (None, "web1".into(), "A".into()),
            (None, "web1".into(), "B".into()),
            (Some(r1), "web2".into(), "A".into()),
            (Some(r1), "web1".into(), "A".into()),
        ]
    );
    // The delivery went with its run: a forge's redelivery starts a new one.
    let again = store
        .record_delivery(
            &NewDelivery {
                provider: "github".into(),
                delivery_id: "d-2".into(),
            },
            &push("shop", "master", "2"),
        )
        .await
        .unwrap();
    assert!(matches!(again, DeliveryOutcome::Created(_)), "{again:?}");
    assert_eq!(store.expired_runs(later).await.unwrap(), Vec::<i64>::new());
}

async fn a_redelivery_returns_the_first_run_and_creates_nothing(f: &Fixture) {
    let store = &*f.store;
    let delivery = NewDelivery {
        provider: "github".into(),
        delivery_id: "72d3162e-cc78-11e3-81ab-4c9367dc0958".into(),
    };
    let first = store
        .record_delivery(&delivery, &push("shop", "master", "aaa111"))
        .await
        .unwrap();
    let DeliveryOutcome::Created(created) = &first else {
        panic!("the first delivery created nothing: {first:?}");
    };
    let again = store
        .record_delivery(&delivery, &push("shop", "master", "aaa111"))
        .await
        .unwrap();
    assert_eq!(again, DeliveryOutcome::Duplicate(created.run));
    let runs = store.runs(&RunQuery::default()).await.unwrap();
    assert_eq!(runs.len(), 1, "{runs:?}");
    assert_eq!(runs[0].status, RunStatus::Queued);
    assert_eq!(runs[0].commit, "aaa111");
    // The same id from another provider is another delivery.
    let other = store
        .record_delivery(
            &NewDelivery {
                provider: "gitea".into(),
                delivery_id: delivery.delivery_id.clone(),
            },
            &push("shop", "master", "bbb222"),
        )
        .await
        .unwrap();
    assert!(matches!(other, DeliveryOutcome::Created(_)), "{other:?}");
}

async fn concurrent_deliveries_of_one_id_make_one_run(f: &Fixture) {
    // The project exists already, so that nothing but the delivery itself orders the racers.
    f.store.ensure_project("shop").await.unwrap();
    let stores = [f.store.clone(), f.second().await];
    let start = Arc::new(tokio::sync::Barrier::new(24));
    let mut tasks = Vec::new();
    for i in 0..24 {
        let start = start.clone();
        let store = stores[i % 2].clone();
        tasks.push(tokio::spawn(async move {
            start.wait().await;
            store
                .record_delivery(
                    &NewDelivery {
                        provider: "github".into(),
                        delivery_id: "same-delivery".into(),
                    },
                    &push("shop", "master", "c0ffee"),
                )
                .await
                .unwrap()
        }));
    }
    let mut created = 0;
    let mut runs = BTreeSet::new();
    for task in tasks {
        let outcome = task.await.unwrap();
        if matches!(outcome, DeliveryOutcome::Created(_)) {
            created += 1;
        }
        runs.insert(outcome.run());
    }
    assert_eq!(created, 1, "deliveries that created a run");
    assert_eq!(runs.len(), 1, "runs answered: {runs:?}");
    let stored = f.store.runs(&RunQuery::default()).await.unwrap();
    assert_eq!(stored.len(), 1, "{stored:?}");
    assert_eq!(Some(&stored[0].id), runs.first());
}

/// 120 deliveries at once on two stores (SQLite writes them in groups): redeliveries among
/// them, a project that does not exist yet, seven branches, auto-cancel on most. The outcome is
/// what writing them one after the other in the order of their run ids gives.
async fn many_deliveries_at_once_end_as_one_after_the_other_would(f: &Fixture) {
    f.store.ensure_project("shop").await.unwrap();
    let stores = [f.store.clone(), f.second().await];
    let start = Arc::new(tokio::sync::Barrier::new(120));
    let mut tasks = Vec::new();
    for i in 0..120usize {
        let start = start.clone();
        let store = stores[i % 2].clone();
        let delivery = NewDelivery {
            provider: "github".into(),
            // Deliveries 0..30 come twice.
            delivery_id: format!("d-{}", i % 90),
        };
        let project = if i % 10 == 3 { "new-shop" } else { "shop" };
        let mut run = push(project, &format!("b{}", i % 7), &format!("c{i}"));
        run.auto_cancel = i % 5 != 0;
        tasks.push(tokio::spawn(async move {
            start.wait().await;
            let outcome = store.record_delivery(&delivery, &run).await.unwrap();
            (delivery.delivery_id, run, outcome)
        }));
    }
    let mut answers = Vec::new();
    for task in tasks {
        answers.push(task.await.unwrap());
    }
    // One run per delivery id; its redelivery answers with it.
    let mut created: std::collections::BTreeMap<i64, (NewRun, Vec<i64>)> = Default::default();
    let mut run_of: std::collections::BTreeMap<String, i64> = Default::default();
    for (id, run, outcome) in &answers {
        if let DeliveryOutcome::Created(enqueued) = outcome {
            assert!(
                run_of.insert(id.clone(), enqueued.run).is_none(),
                "{id} created two runs"
            );
            created.insert(enqueued.run, (run.clone(), enqueued.cancelled.clone()));
        }
    }
    assert_eq!(run_of.len(), 90, "delivery ids with a run");
    for (id, _, outcome) in &answers {
        assert_eq!(outcome.run(), run_of[id], "{id} answered {outcome:?}");
    }
    // Replay them one by one in the order of their ids.
    let mut queued: Vec<(i64, String, String)> = Vec::new();
    let mut expected_status = std::collections::BTreeMap::new();
    for (id, (run, cancelled)) in &created {
        let mut by_this = Vec::new();
        if run.auto_cancel {
            queued.retain(|(older, project, branch)| {
                let superseded = *project == run.project && *branch == run.branch;
                if superseded {
                    by_this.push(*older);
                    expected_status.insert(
                        *older,
                        (
                            RunStatus::Cancelled,
                            Some(format!("superseded by run {id}")),
                        ),
                    );
                }
                !superseded
            });
        }
        assert_eq!(cancelled, &by_this, "the runs run {id} says it cancelled");
        queued.push((*id, run.project.clone(), run.branch.clone()));
        expected_status.insert(*id, (RunStatus::Queued, None));
    }
    for (older, _, _) in &queued {
        assert_eq!(expected_status[older].0, RunStatus::Queued);
    }
    let stored = f
        .store
        .runs(&RunQuery {
            limit: 1000,
            ..RunQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(stored.len(), 90, "runs stored");
    for run in &stored {
        let (status, by) = &expected_status[&run.id];
        assert_eq!(
            (&run.status, &run.cancelled_by),
            (status, by),
            "run {}",
            run.id
        );
        let (submitted, _) = &created[&run.id];
        assert_eq!(
            (&run.project, &run.branch, &run.commit),
            (&submitted.project, &submitted.branch, &submitted.commit)
        );
    }
}

async fn claimers_on_two_connections_never_take_a_run_twice(f: &Fixture) {
    let mut queued = Vec::new();
    for i in 0..30 {
        let mut run = push("shop", &format!("feature-{i}"), &format!("c{i:03}"));
        run.auto_cancel = false;
        queued.push(f.store.enqueue(&run).await.unwrap().run);
    }
    let stores = [f.store.clone(), f.second().await];
    let mut claimers = Vec::new();
    for i in 0..6 {
        let store = stores[i % 2].clone();
        claimers.push(tokio::spawn(async move {
            let runner = format!("runner-{i}");
            let mut taken = Vec::new();
            while let Some(run) = store.claim(&runner).await.unwrap() {
                assert_eq!(run.status, RunStatus::Running);
                assert_eq!(run.runner.as_deref(), Some(runner.as_str()));
                taken.push(run.id);
            }
            taken
        }));
    }
    let mut taken = Vec::new();
    for claimer in claimers {
        taken.extend(claimer.await.unwrap());
    }
    let unique: BTreeSet<i64> = taken.iter().copied().collect();
    assert_eq!(
        unique.len(),
        taken.len(),
        "a run was claimed twice: {taken:?}"
    );
    assert_eq!(
        unique,
        queued.iter().copied().collect::<BTreeSet<i64>>(),
        "claimed vs queued"
    );
    assert!(f.store.claim("late").await.unwrap().is_none());
}

async fn a_new_push_cancels_the_queued_runs_of_its_branch_only(f: &Fixture) {
    let store = &*f.store;
    let a = store.enqueue(&push("shop", "master", "a1")).await.unwrap();
    let b = store.enqueue(&push("shop", "master", "b2")).await.unwrap();
    assert_eq!(b.cancelled, vec![a.run], "b supersedes a");
    let running = store.claim("r1").await.unwrap().unwrap();
    assert_eq!(running.id, b.run);
    let other_branch = store.enqueue(&push("shop", "dev", "c3")).await.unwrap();
    let other_project = store.enqueue(&push("blog", "master", "d4")).await.unwrap();
    let mut manual = push("shop", "master", "e5");
    manual.auto_cancel = false;
    let kept = store.enqueue(&manual).await.unwrap();
    assert!(kept.cancelled.is_empty());
    let newest = store.enqueue(&push("shop", "master", "f6")).await.unwrap();
    assert_eq!(newest.cancelled, vec![kept.run]);

    let a_run = store.run(a.run).await.unwrap().unwrap();
    assert_eq!(a_run.status, RunStatus::Cancelled);
    assert_eq!(
        a_run.cancelled_by.as_deref(),
        Some(format!("superseded by run {}", b.run).as_str())
    );
    assert!(a_run.finished_at.is_some());
    // A running run is left to its runner; other branches and projects are untouched.
    assert_eq!(status(store, b.run).await, RunStatus::Running);
    assert_eq!(status(store, other_branch.run).await, RunStatus::Queued);
    assert_eq!(status(store, other_project.run).await, RunStatus::Queued);
    assert_eq!(status(store, newest.run).await, RunStatus::Queued);
    let queued = store
        .runs(&RunQuery {
            project: Some("shop".into()),
            status: Some(RunStatus::Queued),
            ..RunQuery::default()
        })
        .await
        .unwrap();
    let ids: Vec<i64> = queued.iter().map(|r| r.id).collect();
    assert_eq!(ids, vec![newest.run, other_branch.run], "newest first");
}

async fn runs_that_were_running_come_back_interrupted(f: &Fixture) {
    let run = f
        .store
        .enqueue(&push("shop", "master", "abc"))
        .await
        .unwrap()
        .run;
    let waiting = f
        .store
        .enqueue(&push("shop", "dev", "def"))
        .await
        .unwrap()
        .run;
    assert_eq!(f.store.claim("old-server").await.unwrap().unwrap().id, run);
    // The server is killed and starts again: a new store on the same database.
    let restarted = f.second().await;
    assert_eq!(
        restarted.interrupt_stale(Duration::ZERO).await.unwrap(),
        vec![run]
    );
    let after = restarted.run(run).await.unwrap().unwrap();
    assert_eq!(after.status, RunStatus::Interrupted);
    assert!(after.finished_at.is_some());
    // The queued run is still there, and the old runner cannot finish what it lost.
    assert_eq!(status(&*restarted, waiting).await, RunStatus::Queued);
    assert!(!f
        .store
        .finish(run, "old-server", RunStatus::Passed)
        .await
        .unwrap());
    assert_eq!(status(&*restarted, run).await, RunStatus::Interrupted);
    // A runner restarted under the same id interrupts what it held.
    let claimed = restarted.claim("runner-a").await.unwrap().unwrap();
    assert_eq!(claimed.id, waiting);
    assert_eq!(
        restarted.interrupt_runner("runner-a").await.unwrap(),
        vec![waiting]
    );
    assert_eq!(status(&*restarted, waiting).await, RunStatus::Interrupted);
}

async fn only_stale_runners_lose_their_runs(f: &Fixture) {
    let store = &*f.store;
    let mut no_cancel = push("shop", "master", "1");
    no_cancel.auto_cancel = false;
    let first = store.enqueue(&no_cancel).await.unwrap().run;
    let second = store.enqueue(&no_cancel).await.unwrap().run;
    store.claim("alive").await.unwrap().unwrap();
    store.claim("alive").await.unwrap().unwrap();
    assert_eq!(store.heartbeat("alive").await.unwrap(), 2);
    assert!(store
        .interrupt_stale(Duration::from_secs(3600))
        .await
        .unwrap()
        .is_empty());
    assert!(store
        .finish(first, "alive", RunStatus::Passed)
        .await
        .unwrap());
    assert!(store
        .finish(second, "alive", RunStatus::Failed)
        .await
        .unwrap());
    assert_eq!(status(store, first).await, RunStatus::Passed);
    assert_eq!(status(store, second).await, RunStatus::Failed);
    let refused = store
        .finish(first, "alive", RunStatus::Cancelled)
        .await
        .unwrap_err();
    assert_eq!(
        refused.to_string(),
        "invalid final run status `cancelled`; a runner finishes a run as passed or failed"
    );
}

async fn cancel_and_rerun(f: &Fixture) {
    let store = &*f.store;
    let run = store
        .enqueue(&push("shop", "master", "deadbeef"))
        .await
        .unwrap()
        .run;
    assert!(store.cancel(run, "ada").await.unwrap());
    assert!(
        !store.cancel(run, "bob").await.unwrap(),
        "already cancelled"
    );
    let cancelled = store.run(run).await.unwrap().unwrap();
    assert_eq!(cancelled.status, RunStatus::Cancelled);
    assert_eq!(cancelled.cancelled_by.as_deref(), Some("ada"));
    assert!(
        store.claim("r").await.unwrap().is_none(),
        "a cancelled run is not claimed"
    );

    let again = store.rerun(run, "bob").await.unwrap();
    let rerun = store.run(again).await.unwrap().unwrap();
    assert_ne!(again, run);
    assert_eq!(rerun.status, RunStatus::Queued);
    assert_eq!(rerun.commit, "deadbeef");
    assert_eq!(rerun.branch, "master");
    assert_eq!(rerun.rerun_of, Some(run));
    assert_eq!(
        rerun.trigger,
        Trigger {
            kind: TriggerKind::Rerun,
            by: "bob".into()
        }
    );
    let missing = store.rerun(9999, "bob").await.unwrap_err();
    assert_eq!(missing.to_string(), "no run `9999`");
}

async fn log_lines_are_numbered_paged_and_resumed(f: &Fixture) {
    let store = &*f.store;
    let run = store
        .enqueue(&push("shop", "master", "1"))
        .await
        .unwrap()
        .run;
    let job = store
        .add_job(
            run,
            &NewJob {
                name: "test".into(),
                position: 0,
                requires: vec![],
            },
        )
        .await
        .unwrap();
    let step = store.add_step(job, "pytest", 0).await.unwrap();
    let first: Vec<NewLogLine> = (1..=1204).map(|i| line(&format!("line {i}"))).collect();
    assert_eq!(store.append_log(run, &first).await.unwrap(), 1204);
    let last = NewLogLine {
        step: Some(step),
        at: Utc::now(),
        text: "ünïcødé ✓ \t tabs kept, <b>not html</b>".into(),
    };
    assert_eq!(
        store
            .append_log(run, std::slice::from_ref(&last))
            .await
            .unwrap(),
        1205
    );
    assert_eq!(store.append_log(run, &[]).await.unwrap(), 1205);

    let page = store.log_after(run, 0, 500).await.unwrap();
    assert_eq!(page.len(), 500);
    assert_eq!((page[0].seq, page[0].text.as_str()), (1, "line 1"));
    assert_eq!(page[499].seq, 500);
    let resumed = store.log_after(run, 1200, 500).await.unwrap();
    let seqs: Vec<i64> = resumed.iter().map(|l| l.seq).collect();
    assert_eq!(seqs, vec![1201, 1202, 1203, 1204, 1205]);
    let tail = resumed.last().unwrap();
    assert_eq!(tail.text, last.text);
    assert_eq!(tail.step, Some(step));
    assert_eq!(tail.at.timestamp_millis(), last.at.timestamp_millis());
    assert!(store.log_after(run, 1205, 500).await.unwrap().is_empty());

    let missing = store.append_log(4242, &[line("x")]).await.unwrap_err();
    assert_eq!(missing.to_string(), "no run `4242`");
}

async fn a_subscription_gives_stored_then_new_lines_and_ends_with_the_run(f: &Fixture) {
    let store = &*f.store;
    let run = store
        .enqueue(&push("shop", "master", "1"))
        .await
        .unwrap()
        .run;
    store.claim("r").await.unwrap().unwrap();
    store
        .append_log(run, &[line("one"), line("two")])
        .await
        .unwrap();
    // Resuming after line 1, as an SSE client sending Last-Event-ID: 1.
    let mut stream = store.subscribe(run, 1).await.unwrap();
    let two = next_line(&mut stream).await.unwrap().unwrap();
    assert_eq!((two.seq, two.text.as_str()), (2, "two"));
    store.append_log(run, &[line("three")]).await.unwrap();
    let three = next_line(&mut stream).await.unwrap().unwrap();
    assert_eq!((three.seq, three.text.as_str()), (3, "three"));
    store.append_log(run, &[line("four")]).await.unwrap();
    assert!(store.finish(run, "r", RunStatus::Passed).await.unwrap());
    // The same stream through `futures_core::Stream`, as an SSE response reads it.
    let four = tokio::time::timeout(
        PATIENCE,
        std::future::poll_fn(|cx| {
            futures_core::Stream::poll_next(std::pin::Pin::new(&mut stream), cx)
        }),
    )
    .await
    .expect("no line within the patience")
    .unwrap()
    .unwrap();
    assert_eq!(four.seq, 4);
    assert!(
        next_line(&mut stream).await.is_none(),
        "the stream ends with the run"
    );
}

async fn tokens_are_stored_hashed_and_found_by_their_secret(f: &Fixture) {
    let store = &*f.store;
    let created = store
        .create_token("ci-bot", Role::Deployer, "admin")
        .await
        .unwrap();
    assert!(created.secret.starts_with("hoist_"), "{}", created.secret);
    assert_eq!(created.secret.len(), "hoist_".len() + 64);
    let found = store
        .token_by_secret(&created.secret)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found, created.token);
    assert_eq!(found.role, Role::Deployer);
    assert!(store
        .token_by_secret(&format!("{}0", created.secret))
        .await
        .unwrap()
        .is_none());
    let stored = f
        .raw_text("SELECT token_sha256 FROM api_tokens WHERE name = 'ci-bot'")
        .await;
    assert_eq!(stored, hoist_store::secret::token_digest(&created.secret));
    assert!(!stored.contains(&created.secret[6..]));

    let taken = store
        .create_token("ci-bot", Role::Viewer, "admin")
        .await
        .unwrap_err();
    assert_eq!(taken.to_string(), "token `ci-bot` already exists");
    assert_eq!(store.tokens().await.unwrap(), vec![created.token.clone()]);
    assert!(store.revoke_token("ci-bot").await.unwrap());
    assert!(store
        .token_by_secret(&created.secret)
        .await
        .unwrap()
        .is_none());
    assert!(!store.revoke_token("ci-bot").await.unwrap());
}

async fn users_have_roles_and_argon2id_passwords(f: &Fixture) {
    let store = &*f.store;
    let ada = store
        .add_user("ada", Role::Deployer, "correct horse")
        .await
        .unwrap();
    assert_eq!(ada.role, Role::Deployer);
    let hash = f
        .raw_text("SELECT password_hash FROM users WHERE name = 'ada'")
        .await;
    assert!(hash.starts_with("$argon2id$"), "{hash}");
    assert!(!hash.contains("correct horse"));

    let login = store.login("ada", "correct horse").await.unwrap().unwrap();
    assert_eq!((login.name.as_str(), login.role), ("ada", Role::Deployer));
    assert!(store.login("ada", "correct horsE").await.unwrap().is_none());
    assert!(store.login("eve", "correct horse").await.unwrap().is_none());

    let again = store.add_user("ada", Role::Viewer, "x").await.unwrap_err();
    assert_eq!(again.to_string(), "user `ada` already exists");
    let empty = store.add_user("bob", Role::Viewer, "").await.unwrap_err();
    assert_eq!(
        empty.to_string(),
        "invalid password for user `bob`: it is empty"
    );
    let blank = store.add_user(" ", Role::Viewer, "x").await.unwrap_err();
    assert!(
        matches!(
            blank,
            StoreError::Invalid {
                what: "user name",
                ..
            }
        ),
        "{blank}"
    );

    assert!(store.set_user_role("ada", Role::Admin).await.unwrap());
    assert!(!store.set_user_role("eve", Role::Admin).await.unwrap());
    let users = store.users().await.unwrap();
    assert_eq!(users.len(), 1);
    assert_eq!(users[0].role, Role::Admin);
    assert!(store.remove_user("ada").await.unwrap());
    assert!(store.login("ada", "correct horse").await.unwrap().is_none());
}

async fn audit_entries_are_kept_newest_first(f: &Fixture) {
    let store = &*f.store;
    for (who, action, target) in [
        ("ada", "token.create", "token ci-bot"),
        ("ci-bot", "run.cancel", "run 7"),
        ("ada", "rollback", "production"),
    ] {
        store
            .audit(&NewAudit {
                who: who.into(),
                action: action.into(),
                target: target.into(),
                detail: String::new(),
            })
            .await
            .unwrap();
    }
    let entries = store.audit_log(2).await.unwrap();
    let seen: Vec<(&str, &str, &str)> = entries
        .iter()
        .map(|e| (e.who.as_str(), e.action.as_str(), e.target.as_str()))
        .collect();
    assert_eq!(
        seen,
        vec![
            ("ada", "rollback", "production"),
            ("ci-bot", "run.cancel", "run 7")
        ]
    );
    assert!(entries[0].id > entries[1].id);
    assert!(entries[0].at >= entries[1].at);
}

async fn jobs_steps_tests_artifacts_and_deployments_are_kept(f: &Fixture) {
    let store = &*f.store;
    let run = store
        .enqueue(&push("shop", "master", "1"))
        .await
        .unwrap()
        .run;
    let test = store
        .add_job(
            run,
            &NewJob {
                name: "test".into(),
                position: 0,
                requires: vec![],
            },
        )
        .await
        .unwrap();
    let deploy = store
        .add_job(
            run,
            &NewJob {
                name: "deploy".into(),
                position: 1,
                requires: vec!["test".into()],
            },
        )
        .await
        .unwrap();
    let install = store.add_step(test, "install", 0).await.unwrap();
    let pytest = store.add_step(test, "pytest", 1).await.unwrap();
    store
        .set_job_status(test, StepStatus::Running)
        .await
        .unwrap();
    store.start_step(install).await.unwrap();
    store
        .finish_step(
            install,
            StepStatus::Passed,
            Some(0),
            Duration::from_millis(1500),
        )
        .await
        .unwrap();
    store.start_step(pytest).await.unwrap();
    store
        .finish_step(
            pytest,
            StepStatus::Failed,
            Some(1),
            Duration::from_millis(2500),
        )
        .await
        .unwrap();
    store
        .set_job_status(test, StepStatus::Failed)
        .await
        .unwrap();
    store
        .set_job_status(deploy, StepStatus::Skipped)
        .await
        .unwrap();

    let jobs = store.jobs(run).await.unwrap();
    assert_eq!(jobs.len(), 2);
    assert_eq!(jobs[0].name, "test");
    assert_eq!(jobs[0].status, StepStatus::Failed);
    assert!(jobs[0].started_at.is_some() && jobs[0].finished_at.is_some());
    assert_eq!(jobs[1].requires, vec!["test".to_string()]);
    assert_eq!(jobs[1].status, StepStatus::Skipped);
    let steps: Vec<(&str, StepStatus, Option<i32>, Option<Duration>)> = jobs[0]
        .steps
        .iter()
        .map(|s| (s.name.as_str(), s.status, s.exit_code, s.duration))
        .collect();
    assert_eq!(
        steps,
        vec![
            (
                "install",
                StepStatus::Passed,
                Some(0),
                Some(Duration::from_millis(1500))
            ),
            (
                "pytest",
                StepStatus::Failed,
                Some(1),
                Some(Duration::from_millis(2500))
            ),
        ]
    );

    let suite = TestSuite {
        name: "pytest".into(),
        step: Some(pytest),
        tests: 3,
        failures: 1,
        errors: 0,
        skipped: 1,
        duration: Duration::from_millis(420),
        cases: vec![
            TestCase {
                classname: "tests.test_app".into(),
                name: "test_home".into(),
                outcome: TestOutcome::Passed,
                duration: Duration::from_millis(20),
                message: None,
            },
            TestCase {
                classname: "tests.test_app".into(),
                name: "test_login".into(),
                outcome: TestOutcome::Failed,
                duration: Duration::from_millis(300),
                message: Some("assert 302 == 200".into()),
            },
            TestCase {
                classname: "tests.test_app".into(),
                name: "test_slow".into(),
                outcome: TestOutcome::Skipped,
                duration: Duration::ZERO,
                message: Some("slow".into()),
            },
        ],
    };
    store.add_test_suite(run, &suite).await.unwrap();
    assert_eq!(store.test_suites(run).await.unwrap(), vec![suite]);
    let summary = store.test_summary(run).await.unwrap();
    assert_eq!(
        (
            summary.tests,
            summary.failures,
            summary.errors,
            summary.skipped
        ),
        (3, 1, 0, 1)
    );

    store
        .add_artifact(run, "coverage.xml", "artifacts/1/coverage.xml", 2048)
        .await
        .unwrap();
    let twice = store
        .add_artifact(run, "coverage.xml", "artifacts/1/other", 1)
        .await
        .unwrap_err();
    assert_eq!(
        twice.to_string(),
        format!("artifact `coverage.xml of run {run}` already exists")
    );
    let artifacts = store.artifacts(run).await.unwrap();
    assert_eq!(artifacts.len(), 1);
    assert_eq!(
        (artifacts[0].path.as_str(), artifacts[0].size),
        ("artifacts/1/coverage.xml", 2048)
    );

    for (host, outcome) in [("web1", "switched"), ("web2", "switched back")] {
        store
            .record_deployment(&NewDeployment {
                run: Some(run),
                project: "shop".into(),
                environment: "production".into(),
                host: host.into(),
                release: "20261201T045500Z".into(),
                outcome: outcome.into(),
                detail: (outcome != "switched").then(|| "the health check failed".into()),
                who: "ada".into(),
                step: Some(install),
                millis: (host == "web1").then_some(1234),
            })
            .await
            .unwrap();
    }
    let deployments = store.deployments("shop").await.unwrap();
    let seen: Vec<(&str, &str)> = deployments
        .iter()
        .map(|d| (d.host.as_str(), d.outcome.as_str()))
        .collect();
    assert_eq!(seen, vec![("web2", "switched back"), ("web1", "switched")]);
    assert_eq!(deployments[0].run, Some(run));
    assert_eq!(
        deployments[0].detail.as_deref(),
        Some("the health check failed")
    );
    assert_eq!(deployments[1].detail, None);
    assert_eq!(
        (deployments[1].step, deployments[1].millis),
        (Some(install), Some(1234))
    );
    assert_eq!(deployments[0].millis, None);
    let of_run: Vec<String> = store
        .run_deployments(run)
        .await
        .unwrap()
        .into_iter()
        .map(|d| d.host)
        .collect();
    assert_eq!(of_run, ["web1", "web2"]);
    assert!(store.run_deployments(run + 1).await.unwrap().is_empty());
    assert!(store.deployments("blog").await.unwrap().is_empty());
}

async fn a_runs_services_and_cache_uses_are_kept_in_order(f: &Fixture) {
    let store = &*f.store;
    let run = store
        .enqueue(&push("shop", "master", "1"))
        .await
        .unwrap()
        .run;
    let job = store
        .add_job(
            run,
            &NewJob {
                name: "test".into(),
                position: 0,
                requires: vec![],
            },
        )
        .await
        .unwrap();
    let restore = store.add_step(job, "restore wheels", 1).await.unwrap();
    let postgres = NewService {
        job: "test".into(),
        service: "postgres".into(),
        port: Some(54_321),
        millis: 812,
        error: None,
    };
    let redis = NewService {
        job: "test".into(),
        service: "redis".into(),
        port: None,
        millis: 30,
        error: Some("redis-server is not installed".into()),
    };
    store.record_service(run, &postgres).await.unwrap();
    store.record_service(run, &redis).await.unwrap();
    let services: Vec<NewService> = store
        .run_services(run)
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.service)
        .collect();
    assert_eq!(services, vec![postgres, redis]);

    let miss = NewCacheUse {
        job: "test".into(),
        step: Some(restore),
        action: "restore".into(),
        outcome: "miss".into(),
        keys: vec!["wheels-abc".into(), "wheels-".into()],
        matched: None,
        bytes: 0,
        millis: 3,
    };
    let saved = NewCacheUse {
        job: "test".into(),
        step: None,
        action: "save".into(),
        outcome: "saved".into(),
        keys: vec!["wheels-abc".into()],
        matched: None,
        bytes: 4096,
        millis: 120,
    };
    store.record_cache(run, &miss).await.unwrap();
    store.record_cache(run, &saved).await.unwrap();
    let caches: Vec<NewCacheUse> = store
        .run_caches(run)
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.cache)
        .collect();
    assert_eq!(caches, vec![miss, saved]);
    assert!(store.run_services(run + 1).await.unwrap().is_empty());
    assert!(store.run_caches(run + 1).await.unwrap().is_empty());
}

async fn sessions_are_stored_hashed_expire_and_end_when_deleted(f: &Fixture) {
    let store = &*f.store;
    let long_ago = Utc::now() - chrono::Duration::hours(12);
    store
        .create_session("session-one", "ada", "csrf-1", long_ago)
        .await
        .unwrap();
    let found = store
        .session("session-one", long_ago)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (found.user.as_str(), found.csrf.as_str()),
        ("ada", "csrf-1")
    );
    assert!(store
        .session("session-two", long_ago)
        .await
        .unwrap()
        .is_none());
    let stored = f.raw_text("SELECT id_sha256 FROM sessions").await;
    assert_eq!(stored, hoist_store::secret::token_digest("session-one"));

    // Unused since a moment that is now in the past: expired, and deleted by the next sign-in.
    let later = Utc::now() + chrono::Duration::seconds(60);
    assert!(store.session("session-one", later).await.unwrap().is_none());
    store.touch_session("session-one").await.unwrap();
    store
        .create_session("session-two", "grace", "csrf-2", later)
        .await
        .unwrap();
    assert!(store
        .session("session-one", long_ago)
        .await
        .unwrap()
        .is_none());

    assert!(store.delete_session("session-two").await.unwrap());
    assert!(store
        .session("session-two", long_ago)
        .await
        .unwrap()
        .is_none());
    assert!(!store.delete_session("session-two").await.unwrap());
}

// ---- PostgreSQL only: what several processes sharing one database rely on ----

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_notify_reaches_a_subscriber_on_another_connection() {
    let writer = Fixture::postgres("notify_across").await;
    let reader = writer.second().await;
    assert_eq!(reader.backend(), Backend::Postgres);
    let run = writer
        .store
        .enqueue(&push("shop", "master", "1"))
        .await
        .unwrap()
        .run;
    writer.store.claim("r").await.unwrap().unwrap();
    let mut stream = reader.subscribe(run, 0).await.unwrap();
    writer
        .store
        .append_log(run, &[line("from the other replica")])
        .await
        .unwrap();
    let got = tokio::time::timeout(PATIENCE, stream.next())
        .await
        .expect("the NOTIFY did not reach the other connection")
        .unwrap()
        .unwrap();
    assert_eq!((got.seq, got.text.as_str()), (1, "from the other replica"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_claim_skips_a_run_locked_by_another_claimer() {
    let f = Fixture::postgres("skip_locked").await;
    let mut run = push("shop", "a", "1");
    run.auto_cancel = false;
    let first = f.store.enqueue(&run).await.unwrap().run;
    let second = f.store.enqueue(&run).await.unwrap().run;
    // Another claimer's transaction holds the oldest queued row.
    let pool = sqlx::PgPool::connect(&f.url).await.unwrap();
    let mut other = pool.begin().await.unwrap();
    let locked: i64 = sqlx::query_scalar(
        "SELECT id FROM runs WHERE status = 'queued' ORDER BY id LIMIT 1 FOR UPDATE",
    )
    .fetch_one(&mut *other)
    .await
    .unwrap();
    assert_eq!(locked, first);
    let claimed = tokio::time::timeout(PATIENCE, f.store.claim("r"))
        .await
        .expect("claim waited for the locked row instead of skipping it")
        .unwrap()
        .unwrap();
    assert_eq!(claimed.id, second);
    other.rollback().await.unwrap();
    assert_eq!(f.store.claim("r").await.unwrap().unwrap().id, first);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_refuses_what_it_cannot_use_with_the_fix() {
    let error = open("mysql://root@localhost/hoist").await.err().unwrap();
    assert_eq!(
        error.to_string(),
        "unsupported database URL `mysql://root@localhost/hoist`: expected sqlite://PATH (e.g. sqlite:///var/lib/hoist/hoist.db) or postgres://USER@HOST/DATABASE"
    );
    let error = open("mysql://root:s3cret@localhost/hoist")
        .await
        .err()
        .unwrap();
    assert!(!error.to_string().contains("s3cret"), "{error}");
    let error = open("sqlite::memory:").await.err().unwrap();
    assert_eq!(
        error.to_string(),
        "invalid database `sqlite::memory:`: an in-memory database would lose every run; give a file, e.g. sqlite:///var/lib/hoist/hoist.db"
    );
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/missing/hoist.db", dir.path().display());
    let error = open(&url).await.err().unwrap();
    assert_eq!(
        error.to_string(),
        format!(
            "cannot open the database {url}: the directory {}/missing does not exist; create it, or point `database` elsewhere",
            dir.path().display()
        )
    );
    assert!(!dir.path().join("missing").exists());
}

// ---- Two runner processes on one PostgreSQL ----

/// A runner process: this test binary re-run as the ignored test `claimer_process`; killed and
/// reaped when dropped.
struct ClaimerProcess {
    child: std::process::Child,
    lines: std::io::Lines<std::io::BufReader<std::process::ChildStdout>>,
}

impl ClaimerProcess {
    fn spawn(url: &str, runner: &str, mode: &str) -> ClaimerProcess {
        let mut child = std::process::Command::new(std::env::current_exe().unwrap())
            .args(["--ignored", "--exact", "claimer_process", "--nocapture"])
            .args(["--test-threads", "1", "-q"])
            .env("HOIST_STORE_CLAIMER_URL", url)
            .env("HOIST_STORE_CLAIMER_RUNNER", runner)
            .env("HOIST_STORE_CLAIMER_MODE", mode)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        ClaimerProcess {
            child,
            lines: std::io::BufRead::lines(std::io::BufReader::new(stdout)),
        }
    }

    /// The next line the runner printed that starts with `prefix` (its own lines, not the test
    /// harness's); `None` at the end of its output.
    fn next_line(&mut self, prefix: &str) -> Option<String> {
        self.lines
            .by_ref()
            .map_while(Result::ok)
            .find(|l| l.starts_with(prefix))
    }

    fn go(&mut self) {
        use std::io::Write;
        let stdin = self.child.stdin.as_mut().unwrap();
        stdin.write_all(b"go\n").unwrap();
        stdin.flush().unwrap();
    }
}

impl Drop for ClaimerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The runner process's body (see [`ClaimerProcess`]): `hold` claims one run and keeps it until
/// killed; `drain` says `ready`, waits for `go`, then claims and finishes runs until none is
/// left, printing `claimed <id>` for each.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "the runner process of postgres_two_runner_processes_share_one_queue, not a test"]
async fn claimer_process() {
    let url = std::env::var("HOIST_STORE_CLAIMER_URL")
        .expect("started by postgres_two_runner_processes_share_one_queue only");
    let runner = std::env::var("HOIST_STORE_CLAIMER_RUNNER").unwrap();
    let store = open(&url).await.unwrap();
    let mut stdin = String::new();
    if std::env::var("HOIST_STORE_CLAIMER_MODE").as_deref() == Ok("hold") {
        let run = store.claim(&runner).await.unwrap().unwrap();
        println!("claimed {}", run.id);
        // Held until the test kills this process.
        let _ = std::io::stdin().read_line(&mut stdin);
        return;
    }
    println!("ready");
    let _ = std::io::stdin().read_line(&mut stdin);
    while let Some(run) = store.claim(&runner).await.unwrap() {
        println!("claimed {}", run.id);
        assert!(store
            .finish(run.id, &runner, RunStatus::Passed)
            .await
            .unwrap());
    }
    println!("drained");
}

fn claimed_id(line: &str) -> i64 {
    line.trim_start_matches("claimed ").parse().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_two_runner_processes_share_one_queue() {
    let f = Fixture::postgres("two_processes").await;
    let mut queued = BTreeSet::new();
    for i in 0..60 {
        let mut run = push("shop", &format!("b{i}"), &format!("c{i}"));
        run.auto_cancel = false;
        queued.insert(f.store.enqueue(&run).await.unwrap().run);
    }
    let url = f.url.clone();
    let held = tokio::task::spawn_blocking(move || {
        // A runner takes a run and is killed with it.
        let mut killed = ClaimerProcess::spawn(&url, "runner-killed", "hold");
        let line = killed.next_line("claimed ").expect("the held run");
        drop(killed);
        claimed_id(&line)
    });
    let held = tokio::time::timeout(PATIENCE * 3, held)
        .await
        .expect("the killed runner never claimed")
        .unwrap();
    assert_eq!(status(&*f.store, held).await, RunStatus::Running);
    // Its heartbeat stops: the run comes back interrupted and is re-run; nothing is lost.
    assert_eq!(
        f.store.interrupt_stale(Duration::ZERO).await.unwrap(),
        vec![held]
    );
    let rerun = f.store.rerun(held, "hoist").await.unwrap();

    let url = f.url.clone();
    let drained = tokio::task::spawn_blocking(move || {
        let mut runners = [
            ClaimerProcess::spawn(&url, "runner-a", "drain"),
            ClaimerProcess::spawn(&url, "runner-b", "drain"),
        ];
        for runner in &mut runners {
            runner.next_line("ready").expect("runner ready");
        }
        for runner in &mut runners {
            runner.go();
        }
        runners
            .iter_mut()
            .map(|runner| {
                let mut ids = Vec::new();
                while let Some(line) = runner.next_line("") {
                    if line == "drained" {
                        break;
                    }
                    if line.starts_with("claimed ") {
                        ids.push(claimed_id(&line));
                    }
                }
                ids
            })
            .collect::<Vec<_>>()
    });
    let taken = tokio::time::timeout(PATIENCE * 3, drained)
        .await
        .expect("the runners did not drain the queue")
        .unwrap();
    let all: Vec<i64> = taken.iter().flatten().copied().collect();
    let unique: BTreeSet<i64> = all.iter().copied().collect();
    assert_eq!(unique.len(), all.len(), "a run was taken twice: {taken:?}");
    let mut expected = queued.clone();
    expected.remove(&held);
    expected.insert(rerun);
    assert_eq!(unique, expected, "runs taken by the two runners");
    for run in &expected {
        assert_eq!(
            status(&*f.store, *run).await,
            RunStatus::Passed,
            "run {run}"
        );
    }
    assert_eq!(status(&*f.store, held).await, RunStatus::Interrupted);
    eprintln!(
        "runner-a took {}, runner-b took {}",
        taken[0].len(),
        taken[1].len()
    );
}
