//! JUnit XML from pytest, in both shapes.

use hoist_pipeline::junit::{Outcome, TestReport};
use std::path::Path;

const SUITES: &str = r#"<?xml version="1.0" encoding="utf-8"?>
<testsuites name="pytest tests"><testsuite name="pytest" errors="1" failures="1" skipped="1" tests="4" time="1.250" timestamp="2026-01-01T00:00:00" hostname="h">
<testcase classname="tests.test_app" name="test_ok" time="0.010" />
<testcase classname="tests.test_app" name="test_slow" time="0.900" />
<testcase classname="tests.test_app" name="test_bad" time="0.020"><failure message="assert 1 == 2">def test_bad():
&gt;       assert 1 == 2
E       assert 1 == 2

tests/test_app.py:9: AssertionError</failure></testcase>
<testcase classname="tests.test_app" name="test_skip" time="0.000"><skipped type="pytest.skip" message="no db">tests/test_app.py:12: no db</skipped></testcase>
<testcase classname="tests.test_db" name="test_conn" time="0.300"><error message="failed on setup with &quot;OperationalError&quot;">conn refused</error></testcase>
</testsuite></testsuites>"#;

const BARE: &str = r#"<testsuite name="pytest" tests="2" time="0.5"><testcase classname="t" name="a" time="0.1"/><testcase classname="t" name="b" time="0.4"><failure message="boom">trace</failure></testcase></testsuite>"#;

#[test]
fn testsuites_are_parsed_with_failures_errors_skips_and_times() {
    let mut report = TestReport::default();
    report
        .add_xml(SUITES, Path::new("test-reports/junit.xml"))
        .unwrap();
    assert_eq!(report.cases.len(), 5);
    assert!((report.seconds - 1.25).abs() < 1e-9);
    assert_eq!(report.count(&Outcome::Passed), 2);
    assert_eq!(report.count(&Outcome::Failed), 1);
    assert_eq!(report.count(&Outcome::Error), 1);
    assert_eq!(report.count(&Outcome::Skipped), 1);
    let failures = report.failures();
    assert_eq!(
        failures.iter().map(|c| c.id()).collect::<Vec<_>>(),
        ["tests.test_app::test_bad", "tests.test_db::test_conn"]
    );
    assert_eq!(failures[0].message, "assert 1 == 2");
    assert!(
        failures[0]
            .details
            .contains(">       assert 1 == 2\nE       assert 1 == 2"),
        "{}",
        failures[0].details
    );
    assert_eq!(
        failures[1].message,
        "failed on setup with \"OperationalError\""
    );
    let slowest: Vec<String> = report.slowest(2).iter().map(|c| c.name.clone()).collect();
    assert_eq!(slowest, ["test_slow", "test_conn"]);
}

#[test]
fn a_bare_testsuite_is_parsed_and_reports_add_up() {
    let mut report = TestReport::default();
    report.add_xml(BARE, Path::new("a.xml")).unwrap();
    report.add_xml(SUITES, Path::new("b.xml")).unwrap();
    assert_eq!(report.cases.len(), 7);
    assert_eq!(report.failures()[0].id(), "t::b");
    assert_eq!(report.failures()[0].details, "trace");
    assert!((report.seconds - 1.75).abs() < 1e-9);
}

#[test]
fn other_xml_is_refused_with_the_file_named() {
    let mut report = TestReport::default();
    let e = report
        .add_xml("<html/>", Path::new("r/index.xml"))
        .unwrap_err();
    assert_eq!(e.to_string(), "r/index.xml: not a JUnit XML report: root element is <html>, expected <testsuites> or <testsuite>");
    let e = report
        .add_xml("<testsuite", Path::new("r/cut.xml"))
        .unwrap_err();
    assert!(
        e.to_string()
            .starts_with("r/cut.xml: not a JUnit XML report: "),
        "{e}"
    );
}
