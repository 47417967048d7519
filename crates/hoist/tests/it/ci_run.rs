//! `hoist ci run` and `hoist ci jobs` as a user sees them: exit codes, lines, JSON events.

use assert_cmd::Command;
use std::path::Path;

fn project(toml: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("hoist.toml"), toml).unwrap();
    let ok = std::process::Command::new("sh")
        .arg("-ec")
        .arg("git init -q -b master . && git add -A && git -c user.name=t -c user.email=t@t commit -qm init")
        .current_dir(dir.path())
        .status()
        .unwrap()
        .success();
    assert!(ok);
    dir
}

fn hoist(dir: &Path) -> Command {
    let mut cmd = Command::cargo_bin("hoist").unwrap();
    cmd.current_dir(dir)
        .env("HOIST_CACHE_DIR", dir.join(".cache"))
        .env("NO_COLOR", "1")
        .env_remove("HOIST_CI_DIR")
        .env_remove("HOIST_CONFIG");
    cmd
}

const PIPELINE: &str = r#"
[pipeline.jobs.test]
steps = [
  "checkout",
  { run = "mkdir -p reports && printf '%s' \"$JUNIT\" > reports/junit.xml && echo tested", name = "tests", environment = { JUNIT = '<testsuite time="0.5"><testcase classname="t" name="ok" time="0.1"/><testcase classname="t" name="bad" time="0.4"><failure message="assert 1 == 2">trace line</failure></testcase></testsuite>' } },
  { test_results = "reports" },
]
[pipeline.jobs.deploy]
requires = ["test"]
only = "master"
steps = [{ deploy = true }]
"#;

#[test]
fn a_run_prints_its_steps_then_failures_counts_and_jobs_and_exits_zero() {
    let dir = project(PIPELINE);
    let out = hoist(dir.path())
        .args(["ci", "run", "--no-deploy"])
        .output()
        .unwrap();
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    for line in [
        "test  [2] tests",
        "test  | tested",
        "test  · 2 test(s) from 1 file(s): 1 failed, 0 errors, 0 skipped",
        "FAILED t::bad: assert 1 == 2",
        "    trace line",
        "tests: 2 total, 1 passed, 1 failed, 0 errors, 0 skipped (500 ms reported)",
        "  400 ms t::bad",
        "deploy  · skipped: deploy steps are off for this run (--no-deploy)",
    ] {
        assert!(
            stderr.lines().any(|l| l == line),
            "no line {line:?} in:\n{stderr}"
        );
    }
    assert!(
        stderr
            .lines()
            .last()
            .unwrap()
            .starts_with("pipeline passed in "),
        "{stderr}"
    );
    assert!(out.stdout.is_empty(), "data only on stdout");
    assert!(
        dir.path().join(".hoist-ci/.gitignore").is_file(),
        "the CI directory ignores itself"
    );
}

#[test]
fn a_failing_job_exits_seven_and_json_prints_one_event_per_line() {
    let dir =
        project("[pipeline.jobs.t]\nsteps = [{ run = \"echo x; exit 3\", name = \"boom\" }]\n");
    let out = hoist(dir.path())
        .args(["ci", "run", "--json"])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(7),
        "a failed pipeline, not an internal error"
    );
    let events: Vec<serde_json::Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let kinds: Vec<&str> = events
        .iter()
        .map(|e| e["event"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        [
            "run_started",
            "job_started",
            "step_started",
            "output",
            "step_note",
            "step_finished",
            "job_finished",
            "run_finished"
        ]
    );
    assert_eq!(events[3]["line"], "x");
    assert_eq!(events[5]["exit_code"], 3);
    assert_eq!(events[7]["record"]["passed"], false);
    // What a person reads: the steps, the job, the verdict; with --quiet, the verdict alone.
    let out = hoist(dir.path()).args(["ci", "run"]).output().unwrap();
    crate::user_sees!("exit-7-pipeline-failed", out);
    let out = hoist(dir.path())
        .args(["--quiet", "ci", "run"])
        .output()
        .unwrap();
    crate::user_sees!("exit-7-pipeline-failed-quietly", out);
    let help = hoist(dir.path()).arg("--help").output().unwrap();
    assert!(
        String::from_utf8(help.stdout)
            .unwrap()
            .lines()
            .any(|l| l == "  7  hoist ci run: a job failed, timed out or was cancelled"),
        "--help lists the code"
    );
    assert_eq!(
        events[7]["record"]["jobs"][0]["steps"][0]["status"],
        "failed"
    );
}

#[test]
fn branch_filters_follow_the_branch_given() {
    let dir = project(PIPELINE);
    let out = hoist(dir.path())
        .args(["ci", "run", "--branch", "feature-x", "--json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let stdout = String::from_utf8(out.stdout).unwrap();
    let skipped: serde_json::Value = stdout
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .find(|e| e["event"] == "job_skipped")
        .unwrap();
    assert_eq!(skipped["job"], "deploy");
    assert_eq!(
        skipped["reason"],
        "branch \"feature-x\" is not in only [master]"
    );
}

#[test]
fn jobs_are_listed() {
    let dir = project(PIPELINE);
    hoist(dir.path())
        .args(["ci", "jobs"])
        .assert()
        .success()
        .stdout("test  3 step(s)\ndeploy  1 step(s); requires test; only master\n");
}

#[test]
fn a_bad_pipeline_is_a_configuration_error_with_its_line() {
    let dir = project("[pipeline.jobs.t]\nsteps = [\n  { run = \"x\", when = \"later\" },\n]\n");
    let out = hoist(dir.path()).args(["ci", "run"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    // The same form as every config error: the file as found, its line and column, a hint.
    assert_eq!(
        String::from_utf8(out.stderr).unwrap(),
        format!(
            "error: {}:3:23: job \"t\", step 1: unknown when = \"later\"\nhint: use on_success, always or on_fail\n",
            dir.path().join("hoist.toml").display()
        )
    );
}

#[test]
fn an_unknown_job_is_refused() {
    let dir = project(PIPELINE);
    let out = hoist(dir.path())
        .args(["ci", "run", "--job", "lint"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(String::from_utf8(out.stderr).unwrap(), "error: no job named \"lint\" in the pipeline\nhint: hoist ci jobs lists the pipeline's jobs\n");
}

#[test]
fn a_secret_never_reaches_the_terminal_the_json_events_the_run_files_or_the_cache_store() {
    let dir = project(
        r#"
[pipeline]
secrets = ["TOKEN"]
[pipeline.jobs.t]
steps = [
  { run = '''
mkdir -p reports env && echo x > env/f
printf '<testsuite time="0.1"><testcase classname="t" name="login" time="0.1"><failure message="login with %s refused">token=%s</failure></testcase></testsuite>' "$TOKEN" "$TOKEN" > reports/junit.xml
''', name = "tests" },
  { test_results = "reports" },
  { save_cache = "deps-{{ .Environment.TOKEN }}", paths = ["env"], when = "always" },
]
"#,
    );
    let secret = "pa55-w0rd-xyz";
    let text = hoist(dir.path())
        .env("TOKEN", secret)
        .args(["ci", "run"])
        .output()
        .unwrap();
    let stderr = String::from_utf8(text.stderr).unwrap();
    assert_eq!(text.status.code(), Some(7), "{stderr}");
    assert!(
        stderr
            .lines()
            .any(|l| l == "FAILED t::login: login with **** refused"),
        "{stderr}"
    );
    assert!(stderr.lines().any(|l| l == "    token=****"), "{stderr}");
    assert!(
        stderr.contains(
            "cache key \"deps-{{ .Environment.TOKEN }}\" would hold the value of secret TOKEN"
        ),
        "{stderr}"
    );
    assert!(
        !stderr.contains(secret),
        "a secret on the terminal:\n{stderr}"
    );
    let json = hoist(dir.path())
        .env("TOKEN", secret)
        .args(["ci", "run", "--json"])
        .output()
        .unwrap();
    let stdout = String::from_utf8(json.stdout).unwrap();
    let last: serde_json::Value = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
    assert_eq!(last["event"], "run_finished");
    assert_eq!(
        last["record"]["jobs"][0]["tests"]["cases"][0]["message"],
        "login with **** refused"
    );
    assert!(!stdout.contains(secret), "a secret in --json:\n{stdout}");
    let ls = hoist(dir.path()).args(["cache", "ls"]).output().unwrap();
    assert!(
        !String::from_utf8_lossy(&ls.stdout).contains(secret),
        "a secret in hoist cache ls"
    );
    // Everything hoist wrote: the runs (records, logs, copied reports) and the cache store. (The
    // job's workspace holds what the job itself wrote.)
    for written in [".hoist-ci/runs", ".cache"] {
        let found = std::process::Command::new("grep")
            .args(["-rl", secret, written])
            .current_dir(dir.path())
            .output()
            .unwrap();
        assert!(
            found.stdout.is_empty(),
            "a secret in {}",
            String::from_utf8_lossy(&found.stdout)
        );
    }
}

#[test]
fn the_deploy_step_reports_the_outcome_hoist_deploy_gave_in_its_own_words() {
    let root = tempfile::tempdir().unwrap();
    // A `current` that is a real directory: hoist deploy refuses it before changing anything.
    std::fs::create_dir(root.path().join("current")).unwrap();
    let dir = project(&format!(
        r#"
[app]
name = "demo"
entry = "app:app"
requirements = []
[release]
root = "{}"
[pipeline.jobs.ship]
steps = [{{ deploy = true }}]
"#,
        root.path().display()
    ));
    let out = hoist(dir.path())
        .args(["ci", "run", "--json"])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(7),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let notes: Vec<String> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|e| e["event"] == "step_note")
        .map(|e| e["message"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        notes,
        [
            format!(
                "hoist deploy failed: local: {}/current is a real directory or file, not a symlink",
                root.path().display()
            ),
            "hint: hoist switches releases by replacing a symlink; move the directory into releases/ and point a symlink at it".into(),
            "exited with code 2".into(),
        ]
    );
    assert!(root.path().join("current").is_dir(), "nothing was changed");
}
