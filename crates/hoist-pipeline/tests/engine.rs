//! The run semantics users of the hosted CI rely on, on real processes, files and git.

mod common;
use common::{sh, Project};
use hoist_pipeline::event::Event;
use std::sync::atomic::Ordering;

fn statuses(run: &common::Run, job: &str) -> Vec<String> {
    run.steps(job)
        .into_iter()
        .map(|(n, s)| format!("{n}: {s}"))
        .collect()
}

#[test]
fn after_a_failing_step_only_always_on_fail_artifacts_and_test_results_run() {
    let p = Project::new(
        r#"
[pipeline.jobs.test]
steps = [
  "checkout",
  { run = "mkdir -p reports && cp junit.xml reports/ && echo made", name = "make reports" },
  { run = "echo failing; exit 7", name = "fails" },
  { run = "echo never", name = "on success" },
  { save_cache = "k", paths = ["reports"] },
  { run = "echo cleanup", name = "always", when = "always" },
  { run = "echo diagnosing", name = "on fail", when = "on_fail" },
  { deploy = true },
  { artifacts = "reports", destination = "out" },
  { test_results = "reports" },
]
"#,
        &[(
            "junit.xml",
            r#"<testsuite time="0.1"><testcase classname="t" name="a" time="0.1"/></testsuite>"#,
        )],
    );
    let run = p.run();
    assert_eq!(
        statuses(&run, "test"),
        [
            "checkout: passed",
            "make reports: passed",
            "fails: failed",
            "on success: skipped",
            "save cache: skipped",
            "always: passed",
            "on fail: passed",
            "deploy: skipped",
            "store artifacts: passed",
            "store test results: passed",
        ]
    );
    assert!(!run.record.passed);
    let job = run.job("test");
    assert_eq!(job.reason.as_deref(), Some("step 3 (fails) failed"));
    assert_eq!(job.steps[2].exit_code, Some(7));
    assert_eq!(
        run.output("test")[1..],
        ["made", "failing", "cleanup", "diagnosing"]
    );
    assert!(run
        .record
        .dir
        .join("artifacts/test/out/junit.xml")
        .is_file());
    assert_eq!(job.tests.as_ref().unwrap().cases.len(), 1);
    let record: serde_json::Value =
        serde_json::from_slice(&std::fs::read(run.record.dir.join("record.json")).unwrap())
            .unwrap();
    assert_eq!(record["jobs"][0]["steps"][2]["exit_code"], 7);
}

#[test]
fn on_fail_steps_do_not_run_when_nothing_failed() {
    let p = Project::new("[pipeline.jobs.t]\nsteps = [{ run = \"true\" }, { run = \"echo x\", when = \"on_fail\", name = \"f\" }]\n", &[]);
    let run = p.run();
    assert_eq!(statuses(&run, "t"), ["true: passed", "f: skipped"]);
    assert!(run.record.passed);
}

#[test]
fn run_steps_use_bash_with_errexit_and_pipefail_in_a_new_shell_each() {
    let p = Project::new(
        r#"
[pipeline]
environment = { LEVEL = "pipeline", P = "p" }
[pipeline.jobs.t]
environment = { LEVEL = "job", J = "j" }
steps = [
  { run = "export CARRIED=1; echo $LEVEL $P $J $S", environment = { LEVEL = "step", S = "s" } },
  { run = "echo carried=${CARRIED:-no} $LEVEL" },
  { run = "false | true; echo reached", name = "pipefail" },
]
"#,
        &[],
    );
    let run = p.run();
    assert_eq!(run.output("t"), ["step p j s", "carried=no job"]);
    assert_eq!(statuses(&run, "t")[2], "pipefail: failed");
}

#[test]
fn each_output_line_is_logged_with_a_timestamp_and_its_stream() {
    let p = Project::new(
        "[pipeline.jobs.t]\nsteps = [{ run = \"echo out; echo err >&2\" }]\n",
        &[],
    );
    let run = p.run();
    let log = std::fs::read_to_string(run.job("t").steps[0].log.as_ref().unwrap()).unwrap();
    let lines: Vec<&str> = log.lines().collect();
    assert_eq!(lines.len(), 2);
    let mut seen: Vec<String> = lines
        .iter()
        .map(|l| l.split_once(' ').unwrap().1.to_string())
        .collect();
    seen.sort();
    assert_eq!(seen, ["err err", "out out"]);
    for line in lines {
        let time = line.split(' ').next().unwrap();
        assert!(chrono::DateTime::parse_from_rfc3339(time).is_ok(), "{time}");
    }
}

#[test]
fn a_step_without_output_for_its_timeout_is_killed_and_always_steps_still_run() {
    let p = Project::new(
        "[pipeline.jobs.t]\nsteps = [{ run = \"echo start; sleep 30\", no_output_timeout = \"1s\", name = \"hangs\" }, { run = \"echo after\", when = \"always\", name = \"after\" }]\n",
        &[],
    );
    let run = p.run();
    assert_eq!(statuses(&run, "t"), ["hangs: timed_out", "after: passed"]);
    assert_eq!(
        run.notes("t", 1),
        ["killed after 1s without output (no_output_timeout)"]
    );
    assert_eq!(serde_json::to_value(run.job("t").status).unwrap(), "failed");
}

#[test]
fn a_timed_out_job_runs_nothing_more() {
    let p = Project::new(
        "[pipeline.jobs.t]\ntimeout = \"1s\"\nsteps = [{ run = \"sleep 30\", name = \"slow\" }, { run = \"echo x\", when = \"always\", name = \"always\" }, { artifacts = \"x\" }, { test_results = \"x\" }]\n",
        &[],
    );
    let run = p.run();
    assert_eq!(
        statuses(&run, "t"),
        [
            "slow: timed_out",
            "always: skipped",
            "store artifacts: skipped",
            "store test results: skipped"
        ]
    );
    let job = run.job("t");
    assert_eq!(serde_json::to_value(job.status).unwrap(), "timed_out");
    assert_eq!(
        job.reason.as_deref(),
        Some("the job ran past its timeout of 1s")
    );
    assert!(run.output("t").is_empty());
}

#[test]
fn a_cancelled_job_runs_nothing_more() {
    let p = Project::new(
        "[pipeline.jobs.t]\nsteps = [{ run = \"echo started; sleep 30\", name = \"slow\" }, { run = \"echo x\", when = \"always\", name = \"always\" }, { artifacts = \"x\" }]\n",
        &[],
    );
    let opts = p.options();
    let cancel = opts.cancel.clone();
    // The gate is the step's own first line: cancel once it has been seen, no polling. Were
    // the cancel lost, the step would end after its 30 s and the statuses below would say so.
    let run = p.run_observed(opts, |event| {
        if matches!(event, Event::Output { line, .. } if line == "started") {
            cancel.store(true, Ordering::Relaxed);
        }
    });
    assert_eq!(
        statuses(&run, "t"),
        [
            "slow: cancelled",
            "always: skipped",
            "store artifacts: skipped"
        ]
    );
    assert_eq!(
        serde_json::to_value(run.job("t").status).unwrap(),
        "cancelled"
    );
}

#[test]
fn checkout_is_a_clean_worktree_of_the_exact_commit() {
    let p = Project::new("[pipeline.jobs.t]\nsteps = [\"checkout\", { run = \"git rev-parse HEAD; ls -A | grep -v '^.git$'; git status --porcelain\" }]\n", &[("a.txt", "committed")]);
    let first = git_head(&p);
    sh(&p.dir, "echo changed > a.txt && echo new > untracked.txt");
    let run = p.run();
    assert_eq!(
        run.output("t")[1..],
        [first.as_str(), "a.txt", "hoist.toml"]
    );
    assert!(run.events.iter().any(
        |e| matches!(e, Event::Warning { message, .. } if message.contains("uncommitted changes"))
    ));
    assert_eq!(
        std::fs::read_to_string(p.ci.join("work/t/a.txt")).unwrap(),
        "committed"
    );
    // A later commit is what the next run gets; leftovers of the last run are gone.
    sh(
        &p.dir,
        "git -c user.name=t -c user.email=t@t commit -qam second",
    );
    std::fs::write(p.ci.join("work/t/leftover"), "x").unwrap();
    let run = p.run();
    assert_eq!(run.output("t")[1], git_head(&p));
    assert!(!p.ci.join("work/t/leftover").exists());
}

fn git_head(p: &Project) -> String {
    let out = std::process::Command::new("git")
        .arg("-C")
        .arg(&p.dir)
        .args(["rev-parse", "HEAD"])
        .output()
        .unwrap();
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

#[test]
fn cache_keys_render_checksums_branch_revision_and_environment() {
    let p = Project::new(
        r#"
[pipeline.jobs.t]
environment = { FLAVOUR = "blue" }
steps = [
  "checkout",
  { run = "mkdir env && echo built > env/f" },
  { save_cache = 'deps-{{ checksum "requirements.txt" }}-{{ .Branch }}-{{ .Revision }}-{{ .Environment.FLAVOUR }}-{{ arch }}', paths = ["env"] },
]
"#,
        &[("requirements.txt", "flask\n")],
    );
    let run = p.run();
    let key = &run.job("t").steps[2].cache.as_ref().unwrap().keys[0];
    // base64 of the SHA-256 of "flask\n".
    let sum = hoist_pipeline::cache_key::checksum_of(b"flask\n");
    assert_eq!(sum.len(), 44);
    let arch = hoist_pipeline::cache_key::arch();
    assert_eq!(
        key,
        &format!("deps-{sum}-master-{}-blue-{arch}", git_head(&p))
    );
}

#[test]
fn a_checksum_of_a_missing_file_fails_the_step_with_a_clear_message() {
    let p = Project::new("[pipeline.jobs.t]\nsteps = [\"checkout\", { restore_cache = 'deps-{{ checksum \"requirements.txt\" }}' }]\n", &[]);
    let run = p.run();
    assert_eq!(statuses(&run, "t")[1], "restore cache: failed");
    assert_eq!(
        run.notes("t", 2),
        ["cache key \"deps-{{ checksum \\\"requirements.txt\\\" }}\": checksum of \"requirements.txt\" failed: no such file; make sure an earlier step creates it (paths are relative to the job's workspace)"]
    );
}

#[test]
fn no_cache_match_is_a_warning_and_an_existing_key_is_not_saved_again() {
    let toml = r#"
[pipeline.jobs.t]
steps = [
  "checkout",
  { restore_cache = ["deps-v1-{{ .Branch }}", "deps-v1-"] },
  { run = "test -f env/f && echo restored || (mkdir -p env && echo $HOIST_RUN_ID > env/f && echo built)", name = "install", unless_cache_hit = true },
  { save_cache = "deps-v1-{{ .Branch }}", paths = ["env"] },
]
"#;
    let p = Project::new(toml, &[]);
    let first = p.run();
    assert!(first.record.passed);
    assert_eq!(
        first.warnings("t", 2),
        ["no cache found for keys: deps-v1-master, deps-v1-"],
        "a miss is a note of severity warning"
    );
    assert_eq!(first.output("t")[1], "built");
    assert!(first.notes("t", 4)[0].starts_with("saved cache deps-v1-master ("));
    let second = p.run();
    assert!(second.record.passed);
    assert!(second.notes("t", 2)[0].starts_with("restored cache deps-v1-master ("));
    assert_eq!(
        statuses(&second, "t")[2],
        "install: skipped",
        "an exact hit skips unless_cache_hit steps"
    );
    assert_eq!(
        second.notes("t", 4),
        ["cache deps-v1-master already exists, not saved (a key is never overwritten)"]
    );
    assert_eq!(statuses(&second, "t")[3], "save cache: passed");
    // Another branch restores master's cache through the fallback prefix: not exact, so it installs.
    let mut opts = p.options();
    opts.branch = Some("feature".into());
    let third = p.run_with(opts);
    assert!(third.notes("t", 2)[0].starts_with("restored cache deps-v1-master ("));
    assert_eq!(third.output("t")[1], "restored");
}

#[test]
fn secrets_are_masked_everywhere_including_each_line_of_a_multi_line_secret() {
    let p = Project::new(
        "[pipeline]\nsecrets = [\"TOKEN\", \"KEY\", \"PIN\"]\nsecrets_file = \"secrets.env\"\n[pipeline.jobs.t]\nsteps = [{ run = 'echo token=$TOKEN; printf \"%s\\n\" \"$KEY\"; echo pin=$PIN; echo \"$KEY\" | tail -1 >&2' }]\n",
        &[(".gitignore", "secrets.env\n")],
    );
    std::fs::write(p.dir.join("secrets.env"), "# not committed\nKEY=\"-----BEGIN KEY-----\nc2VjcmV0LWxpbmUtMQ==\nc2VjcmV0LWxpbmUtMg==\n-----END KEY-----\"\nPIN=123\n").unwrap();
    std::env::set_var("TOKEN", "s3cr3t-t0ken");
    let run = p.run();
    std::env::remove_var("TOKEN");
    // stdout and stderr are two pipes: the line from stderr may land anywhere among the others.
    let mut out = run.output("t");
    out.sort();
    assert_eq!(
        out,
        [
            "****",
            "****",
            "****",
            "****",
            "****",
            "pin=123",
            "token=****"
        ],
        "every secret line masked; values under 4 characters are not"
    );
    let log = std::fs::read_to_string(run.job("t").steps[0].log.as_ref().unwrap()).unwrap();
    for secret in ["s3cr3t-t0ken", "c2VjcmV0LWxpbmUtMQ==", "BEGIN KEY"] {
        assert!(
            !log.contains(secret),
            "{secret} leaked into the log:\n{log}"
        );
    }
}

/// Every string of every event, as a front end would print it with `--json`.
fn events_json(run: &common::Run) -> String {
    run.events
        .iter()
        .map(|e| serde_json::to_string(e).unwrap())
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn a_secret_in_a_junit_report_is_masked_in_the_record_the_events_and_the_copied_report() {
    let p = Project::new(
        r#"
[pipeline]
secrets = ["JUNIT_TOKEN"]
secrets_file = "secrets.env"
[pipeline.jobs.t]
steps = [
  { run = '''
esc=$(printf %s "$JUNIT_TOKEN" | sed 's/&/\&amp;/g')
mkdir -p reports
printf '<testsuite time="0.1"><testcase classname="t" name="login" time="0.1"><failure message="login with %s refused">POST /login token=%s -> 401</failure></testcase></testsuite>' "$esc" "$esc" > reports/junit.xml
''', name = "tests" },
  { test_results = "reports" },
]
"#,
        &[(".gitignore", "secrets.env\n")],
    );
    // `&` is written `&amp;` in the XML: the copied report must not keep that form either.
    std::fs::write(p.dir.join("secrets.env"), "JUNIT_TOKEN='s3cr3t&t0ken-42'\n").unwrap();
    let run = p.run();
    let case = &run.job("t").tests.as_ref().unwrap().cases[0];
    assert_eq!(case.message, "login with **** refused");
    assert_eq!(case.details, "POST /login token=**** -> 401");
    let Some(Event::RunFinished { record }) = run.events.last() else {
        panic!("the last event is run_finished")
    };
    let finished = &record.jobs[0].tests.as_ref().unwrap().cases[0];
    assert_eq!(finished.message, "login with **** refused");
    let events = events_json(&run);
    assert!(
        !events.contains("s3cr3t"),
        "a secret in the events:\n{events}"
    );
    let on_disk = std::fs::read_to_string(run.record.dir.join("record.json")).unwrap();
    assert!(on_disk.contains("login with **** refused"), "{on_disk}");
    assert!(
        !on_disk.contains("s3cr3t"),
        "a secret in record.json:\n{on_disk}"
    );
    let copied = std::fs::read_to_string(run.record.dir.join("tests/t/reports/junit.xml")).unwrap();
    assert!(
        copied.contains(
            r#"<failure message="login with **** refused">POST /login token=**** -> 401</failure>"#
        ),
        "{copied}"
    );
    assert!(
        !copied.contains("s3cr3t"),
        "a secret in the copied report:\n{copied}"
    );
}

#[test]
fn a_cache_key_that_would_hold_a_secret_is_refused_and_nothing_is_stored() {
    let p = Project::new(
        r#"
[pipeline]
secrets = ["CACHE_TOKEN"]
secrets_file = "secrets.env"
[pipeline.jobs.t]
steps = [
  { run = "mkdir -p env && echo x > env/f", name = "make" },
  { save_cache = "deps-{{ .Environment.CACHE_TOKEN }}", paths = ["env"] },
  { restore_cache = ["deps-{{ .Environment.CACHE_TOKEN }}", "deps-"], when = "always" },
]
"#,
        &[(".gitignore", "secrets.env\n")],
    );
    std::fs::write(p.dir.join("secrets.env"), "CACHE_TOKEN=k3y-s3cr3t-99\n").unwrap();
    let run = p.run();
    assert_eq!(
        statuses(&run, "t"),
        [
            "make: passed",
            "save cache: failed",
            "restore cache: failed"
        ]
    );
    for step in [2, 3] {
        assert_eq!(
            run.notes("t", step),
            ["cache key \"deps-{{ .Environment.CACHE_TOKEN }}\" would hold the value of secret CACHE_TOKEN: cache keys are stored and shown in clear (the cache index, hoist cache ls, logs); build the key from values that are not secret, e.g. {{ checksum \"file\" }}"]
        );
    }
    let store = hoist_pipeline::cache_store::CacheStore::open(&p.cache).unwrap();
    assert_eq!(
        store.list().unwrap(),
        [],
        "nothing is saved under a secret key"
    );
    let events = events_json(&run);
    assert!(
        !events.contains("k3y-s3cr3t"),
        "a secret in the events:\n{events}"
    );
    let on_disk = std::fs::read_to_string(run.record.dir.join("record.json")).unwrap();
    assert!(
        !on_disk.contains("k3y-s3cr3t"),
        "a secret in record.json:\n{on_disk}"
    );
}

#[test]
fn a_committed_secrets_file_is_refused() {
    let p = Project::new("[pipeline]\nsecrets = [\"K\"]\nsecrets_file = \"secrets.env\"\n[pipeline.jobs.t]\nsteps = [\"checkout\"]\n", &[("secrets.env", "K=value\n")]);
    let e = hoist_pipeline::engine::run(&p.pipeline(), &p.options(), &|_| {}).unwrap_err();
    assert_eq!(
        e.to_string(),
        "the secrets file secrets.env is committed to git"
    );
    assert!(e
        .hint()
        .unwrap()
        .starts_with("remove it from git (git rm --cached secrets.env)"));
}

#[test]
fn jobs_run_after_what_they_require_and_branch_filters_skip_jobs() {
    let p = Project::new(
        r#"
[pipeline]
max_parallel = 2
[pipeline.jobs.lint]
steps = [{ run = "echo lint > $HOIST_WORKSPACE/../lint.done" }]
[pipeline.jobs.test]
steps = [{ run = "echo test > $HOIST_WORKSPACE/../test.done" }]
[pipeline.jobs.deploy]
requires = ["lint", "test"]
only = ["master", "/release-.*/"]
steps = [{ run = "cat $HOIST_WORKSPACE/../lint.done $HOIST_WORKSPACE/../test.done" }]
[pipeline.jobs.after]
requires = ["deploy"]
steps = [{ run = "echo after" }]
[pipeline.jobs.broken]
steps = [{ run = "exit 1" }]
[pipeline.jobs.downstream]
requires = ["broken"]
steps = [{ run = "echo never" }]
"#,
        &[],
    );
    let run = p.run();
    assert_eq!(run.output("deploy"), ["lint", "test"]);
    assert_eq!(run.output("after"), ["after"]);
    assert_eq!(
        run.job("downstream").reason.as_deref(),
        Some("required job \"broken\" failed")
    );
    let mut opts = p.options();
    opts.branch = Some("feature-x".into());
    let run = p.run_with(opts);
    assert_eq!(
        run.job("deploy").reason.as_deref(),
        Some("branch \"feature-x\" is not in only [master, /release-.*/]")
    );
    assert_eq!(
        run.job("after").reason.as_deref(),
        Some("required job \"deploy\" was skipped")
    );
    let mut opts = p.options();
    opts.branch = Some("release-2".into());
    assert_eq!(p.run_with(opts).output("deploy"), ["lint", "test"]);
}

#[test]
fn the_deploy_step_runs_hoist_deploy_with_the_pipelines_commit_and_reports_its_outcome() {
    let p = Project::new("[pipeline.jobs.t]\nsteps = [{ deploy = \"production\" }, { deploy = true, name = \"again\", when = \"always\" }, { deploy = \"broken\", when = \"always\" }]\n", &[]);
    // A stand-in hoist binary that reports its arguments, then ends as hoist deploy --json does:
    // progress events, then one final event saying what happened (or, refused before it could
    // start, nothing but a message on stderr).
    let fake = p.tmp.path().join("hoist");
    std::fs::write(
        &fake,
        r#"#!/bin/sh
echo "args: $*" >&2
case "$*" in
  *production*)
    echo '{"event":"step","host":"web1","step":"switch","status":"done"}'
    echo '{"event":"failed","kind":"LeftAsIs","message":"the health check failed on web1 after the switch; left as it was: web1 serves 20261201T000000Z","hints":["hoist rollback production"],"hosts":[],"exit_code":6}'
    exit 6;;
  *broken*)
    echo "error: no environment named broken" >&2
    exit 2;;
  *)
    echo '{"event":"deployed","release":"20261201T000001Z","commit":"c","hosts":[{"host":"local"}],"ms":5}';;
esac
"#,
    )
    .unwrap();
    sh(p.tmp.path(), "chmod +x hoist");
    let mut opts = p.options();
    opts.hoist_exe = fake;
    let run = p.run_with(opts);
    let config = p.config().display().to_string();
    let args: Vec<String> = run
        .output("t")
        .into_iter()
        .filter(|l| l.starts_with("args: "))
        .collect();
    let head = git_head(&p);
    assert_eq!(
        args,
        [
            format!("args: --config {config} deploy production --ref {head} --json"),
            format!("args: --config {config} deploy --ref {head} --json"),
            format!("args: --config {config} deploy broken --ref {head} --json"),
        ]
    );
    assert_eq!(
        run.notes("t", 1),
        [
            "hoist deploy failed: the health check failed on web1 after the switch; left as it was: web1 serves 20261201T000000Z",
            "hint: hoist rollback production",
            "exited with code 6"
        ]
    );
    assert_eq!(
        run.notes("t", 2),
        ["deployed release 20261201T000001Z to 1 host(s)"]
    );
    assert_eq!(
        run.notes("t", 3),
        [
            "hoist deploy reported no outcome; its output above says why",
            "exited with code 2"
        ]
    );
    assert_eq!(
        statuses(&run, "t"),
        [
            "deploy to production: failed",
            "again: passed",
            "deploy to broken: failed"
        ]
    );
    let mut opts = p.options();
    opts.deploy = false;
    let run = p.run_with(opts);
    assert_eq!(
        run.notes("t", 1),
        ["skipped: deploy steps are off for this run (--no-deploy)"]
    );
}
