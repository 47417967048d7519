//! The [pipeline] schema: what parses, and the errors (with their lines, columns and hints) for
//! what does not.

use hoist_config::pipeline::{parse, BranchFilter, BranchPattern, StepKind, When};
use proptest::prelude::*;
use std::path::Path;

fn err(text: &str) -> (String, Option<String>) {
    let e = parse(Path::new("hoist.toml"), text).unwrap_err();
    (e.to_string(), e.hint)
}

#[test]
fn a_full_pipeline_parses_in_definition_order() {
    let text = r#"
[app]
name = "other tables are not ours"

[pipeline]
max_parallel = 3
environment = { TZ = "UTC", N = 1 }
secrets = ["TOKEN"]

[pipeline.jobs.test]
only = ["master", "/release-.*/"]
timeout = "30m"
services.postgres = { environment = { POSTGRES_USER = "app", POSTGRES_PASSWORD = "pw" } }
steps = [
  "checkout",
  { restore_cache = ["deps-{{ .Branch }}", "deps-"] },
  { run = "pytest", name = "tests", no_output_timeout = "2m", environment = { A = "b" } },
  { save_cache = "deps-{{ .Branch }}", paths = ["env"] },
  { artifacts = "reports", destination = "out" },
  { test_results = "reports" },
  { run = "echo bye", when = "always" },
]

[pipeline.jobs.deploy]
requires = ["test"]

[[pipeline.jobs.deploy.steps]]
deploy = "production"
"#;
    let p = parse(Path::new("hoist.toml"), text).unwrap().unwrap();
    assert_eq!(p.max_parallel, 3);
    assert_eq!(
        p.environment,
        vec![("TZ".into(), "UTC".into()), ("N".into(), "1".into())]
    );
    assert_eq!(
        p.jobs.iter().map(|j| j.name.as_str()).collect::<Vec<_>>(),
        ["test", "deploy"]
    );
    let test = &p.jobs[0];
    assert_eq!(test.timeout, Some(std::time::Duration::from_secs(1800)));
    assert_eq!(test.steps.len(), 7);
    assert!(
        matches!(&test.steps[2].kind, StepKind::Run(r) if r.no_output_timeout.as_secs() == 120 && r.shell == ["bash", "-eo", "pipefail"])
    );
    assert_eq!(test.steps[2].name, "tests");
    assert_eq!(
        test.steps[4].when,
        When::Always,
        "artifacts run after a failure by default"
    );
    assert_eq!(
        test.steps[5].when,
        When::Always,
        "test results run after a failure by default"
    );
    assert_eq!(test.steps[6].when, When::Always);
    assert_eq!(test.steps[2].line, 17);
    assert!(
        matches!(&p.jobs[1].steps[0].kind, StepKind::Deploy { environment: Some(e) } if e == "production")
    );
    assert_eq!(p.jobs[1].requires, ["test"]);
}

#[test]
fn no_pipeline_table_is_none() {
    assert!(parse(Path::new("hoist.toml"), "[app]\nname = 'x'\n")
        .unwrap()
        .is_none());
}

#[test]
fn errors_name_the_file_the_line_and_a_fix() {
    let cases: &[(&str, &str, &str)] = &[
        ("[pipeline]\nmax_paralel = 2\n", "hoist.toml:2:1: unknown key `max_paralel` in [pipeline]; did you mean `max_parallel`?", "rename `max_paralel` to `max_parallel`"),
        (
            "[pipeline.jobs.t]\nsteps = [\n  \"checkout\",\n  { run = \"x\", paths = [] },\n]\n",
            "hoist.toml:4:24: job \"t\", step 2: unknown key \"paths\" in a run step",
            "a run step takes: name, when, shell",
        ),
        ("[pipeline.jobs.t]\nsteps = [{ run = \"x\", when = \"sometimes\" }]\n", "hoist.toml:2:30: job \"t\", step 1: unknown when = \"sometimes\"", "on_success, always or on_fail"),
        ("[pipeline.jobs.t]\nsteps = [{ name = \"x\" }]\n", "hoist.toml:2:10: job \"t\", step 1: the step has no kind", "checkout, run, restore_cache"),
        ("[pipeline.jobs.t]\nrequires = [\"build\"]\nsteps = [\"checkout\"]\n", "hoist.toml:2:12: job \"t\" requires \"build\", which is not a job", "jobs are: t"),
        (
            "[pipeline.jobs.a]\nrequires = [\"b\"]\nsteps = [\"checkout\"]\n[pipeline.jobs.b]\nrequires = [\"a\"]\nsteps = [\"checkout\"]\n",
            "hoist.toml:1:16: jobs require each other in a cycle: a -> b -> a",
            "remove one",
        ),
        ("[pipeline.jobs.t]\nonly = \"/[/\"\nsteps = [\"checkout\"]\n", "hoist.toml:2:8: branch pattern \"/[/\" is not a valid regular expression", "whole branch name"),
        ("[pipeline.jobs.t]\nservices.mysql = {}\nsteps = [\"checkout\"]\n", "hoist.toml:2:10: unknown service \"mysql\"", "postgres, redis"),
        ("[pipeline.jobs.t]\ntimeout = \"soon\"\nsteps = [\"checkout\"]\n", "hoist.toml:2:11: invalid duration \"soon\" for `timeout`: expected a duration like 30s, 5m, 250ms", "units are ms, s, m and h"),
        ("[pipeline.jobs.t]\nsteps = [{ save_cache = \"k\" }]\n", "hoist.toml:2:10: job \"t\", step 1: save_cache has no paths", "paths = [\"env\"]"),
        ("[pipeline.jobs.t]\nsteps = []\n", "hoist.toml:1:16: job \"t\" has no steps", "steps = ["),
        ("[pipeline.jobs.t]\nsteps = [{ run = \"x\", nope = 1 }]\n", "hoist.toml:2:23: unknown key `nope` in [pipeline.jobs.t]", "remove `nope`"),
        ("[pipeline.jobs.t]\nsteps = [{ checkout = false }]\n", "hoist.toml:2:23: job \"t\", step 1: checkout = false is not a step", "checkout = true"),
        ("[pipeline.jobs.t]\nsteps = [{ deploy = false }]\n", "hoist.toml:2:21: job \"t\", step 1: deploy = false is not a step", "deploy = true"),
        ("[pipeline]\ncache = { max_age = \"15d\" }\n", "hoist.toml:2:21: invalid duration \"15d\" for `max_age`", "units are ms, s, m and h"),
    ];
    for (text, message, hint) in cases {
        let (got, got_hint) = err(text);
        assert!(
            got.starts_with(message),
            "for {text:?}\n got: {got}\nwant: {message}"
        );
        assert!(
            got_hint.as_deref().unwrap_or_default().contains(hint),
            "for {text:?}: hint {got_hint:?} lacks {hint:?}"
        );
    }
}

#[test]
fn a_pipeline_in_its_own_file_is_followed_and_its_errors_name_it() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("hoist.toml"),
        "[pipeline]\nfile = \"ci.toml\"\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("ci.toml"),
        "[pipeline.jobs.t]\nsteps = [\"checkout\"]\n",
    )
    .unwrap();
    let p = hoist_config::pipeline::load(&dir.path().join("hoist.toml")).unwrap();
    assert_eq!(p.jobs[0].name, "t");
    std::fs::write(
        dir.path().join("ci.toml"),
        "[pipeline.jobs.t]\n\nsteps = [3]\n",
    )
    .unwrap();
    let e = hoist_config::pipeline::load(&dir.path().join("hoist.toml")).unwrap_err();
    assert_eq!(e.path, dir.path().join("ci.toml"));
    assert_eq!((e.line, e.column), (Some(3), Some(10)));
    assert!(
        e.message.starts_with(
            "`steps` must be \"checkout\" or a table such as { run = \"pytest\" }, not integer 3"
        ),
        "{e}"
    );
}

#[test]
fn a_bare_number_duration_in_a_step_is_refused_with_a_hint() {
    let text = "[pipeline.jobs.t]\nsteps = [\n  { run = \"make\", no_output_timeout = 30 },\n]\n";
    let error = parse(Path::new("hoist.toml"), text).unwrap_err();
    assert_eq!(
        error.to_string(),
        "hoist.toml:3:39: `no_output_timeout` = 30 has no unit: expected a duration like 30s, 5m, 250ms"
    );
    assert_eq!(
        error.hint.as_deref(),
        Some("write \"30s\" (units are ms, s, m and h; a bare number is not guessed)")
    );
}

#[test]
fn durations_follow_the_config_grammar_with_milliseconds() {
    let text = "[pipeline]\ncache = { max_age = \"360h\" }\n[pipeline.jobs.t]\ntimeout = \"1m30s\"\nsteps = [{ run = \"x\", no_output_timeout = \"1500ms\" }]\n";
    let p = parse(Path::new("hoist.toml"), text).unwrap().unwrap();
    assert_eq!(p.cache.max_age, std::time::Duration::from_secs(360 * 3600));
    assert_eq!(p.jobs[0].timeout, Some(std::time::Duration::from_secs(90)));
    assert!(matches!(
        &p.jobs[0].steps[0].kind,
        StepKind::Run(r) if r.no_output_timeout == std::time::Duration::from_millis(1500)
    ));
}

#[test]
fn the_whole_config_checks_its_pipeline_too() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("app.py"), "app = 1\n").unwrap();
    let path = dir.path().join("hoist.toml");
    let text = "[app]\nname = \"a\"\nentry = \"app:app\"\n[release]\nroot = \"/srv/a\"\n[pipeline.jobs.t]\nsteps = [{ run = \"x\", when = \"later\" }]\n";
    let error = hoist_config::parse(&path, text).unwrap_err();
    assert_eq!((error.line, error.column), (Some(7), Some(30)));
    assert!(
        error.message.contains("unknown when = \"later\""),
        "{error}"
    );
}

fn filter(only: &[&str], ignore: &[&str]) -> BranchFilter {
    BranchFilter {
        only: only
            .iter()
            .map(|p| BranchPattern::parse(p).unwrap())
            .collect(),
        ignore: ignore
            .iter()
            .map(|p| BranchPattern::parse(p).unwrap())
            .collect(),
    }
}

#[test]
fn branch_filters_match_literals_and_whole_regexes() {
    let table: &[(&[&str], &[&str], &str, bool)] = &[
        (&[], &[], "anything", true),
        (&["master"], &[], "master", true),
        (&["master"], &[], "master2", false),
        (&["master"], &[], "old-master", false),
        (&["/feature-.*/"], &[], "feature-login", true),
        (&["/feature-.*/"], &[], "my-feature-login", false),
        (&["/feature/"], &[], "feature-x", false),
        (&["/release-\\d+/"], &[], "release-12", true),
        (&["/release-\\d+/"], &[], "release-12b", false),
        (&["/a|b/"], &[], "b", true),
        (&["/a|b/"], &[], "ab", false),
        (&[], &["/wip-.*/"], "wip-x", false),
        (&[], &["/wip-.*/"], "x-wip-x", true),
        (&["/.*/"], &["master"], "master", false),
        (&["/.*/"], &["master"], "dev", true),
        (&["master", "/hotfix\\/.*/"], &[], "hotfix/1", true),
    ];
    for (only, ignore, branch, allowed) in table {
        assert_eq!(
            filter(only, ignore).allows(branch),
            *allowed,
            "only {only:?} ignore {ignore:?} on {branch:?}"
        );
    }
    assert_eq!(
        filter(&["master"], &[]).refusal("dev").unwrap(),
        "branch \"dev\" is not in only [master]"
    );
    assert_eq!(
        filter(&[], &["/wip-.*/"]).refusal("wip-1").unwrap(),
        "branch \"wip-1\" matches ignore /wip-.*/"
    );
}

proptest! {
    #[test]
    fn a_literal_matches_only_itself(name in "[a-z0-9/_.-]{1,20}", other in "[a-z0-9/_.-]{1,20}") {
        // A pattern written between slashes is a regex, not a literal.
        prop_assume!(!(name.len() >= 2 && name.starts_with('/') && name.ends_with('/')));
        let f = filter(&[&name], &[]);
        prop_assert!(f.allows(&name));
        prop_assert_eq!(f.allows(&other), other == name);
    }

    #[test]
    fn a_regex_must_match_the_whole_name(prefix in "[a-z]{1,8}", rest in "[a-z0-9-]{0,8}", junk in "[a-z]{1,4}") {
        let f = filter(&[&format!("/{prefix}-.*/")], &[]);
        let branch = format!("{prefix}-{rest}");
        let junked = format!("{junk}{branch}");
        prop_assert!(f.allows(&branch));
        prop_assert!(!f.allows(&junked));
        prop_assert!(!f.allows(&prefix));
    }

    #[test]
    fn ignore_always_wins(name in "[a-z]{1,10}") {
        prop_assert!(!filter(&[&name], &[&name]).allows(&name));
    }
}

#[test]
fn tables_named_only_through_deeper_headers_are_read() {
    // What the CircleCI importer writes: the job and its service exist only through these.
    let text = "[pipeline.jobs.build.environment]\nA = \"1\"\n\n[pipeline.jobs.build.services.postgres.environment]\nPOSTGRES_USER = \"notes\"\n\n[[pipeline.jobs.build.steps]]\ncheckout = true\n";
    let p = parse(Path::new("hoist.toml"), text).unwrap().unwrap();
    assert_eq!(p.jobs[0].environment, [("A".to_owned(), "1".to_owned())]);
    assert_eq!(p.jobs[0].services[0].kind(), "postgres");
    assert!(matches!(p.jobs[0].steps[0].kind, StepKind::Checkout));
}
