//! JUnit XML test reports (as pytest's `--junitxml` writes them).

use serde::{Deserialize, Serialize};
use std::path::Path;

/// How one test case ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Passed.
    Passed,
    /// An assertion failed.
    Failed,
    /// The test raised an unexpected error (or setup/teardown failed).
    Error,
    /// Skipped.
    Skipped,
}

/// One test case.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TestCase {
    /// The test's class or module, e.g. `tests.test_app`.
    pub classname: String,
    /// The test's name.
    pub name: String,
    /// Seconds the test took.
    pub seconds: f64,
    /// How it ended.
    pub outcome: Outcome,
    /// The failure's or error's one-line message.
    pub message: String,
    /// The failure's traceback (the element's text).
    pub details: String,
}

impl TestCase {
    /// `classname::name`, or `name` alone.
    pub fn id(&self) -> String {
        if self.classname.is_empty() {
            self.name.clone()
        } else {
            format!("{}::{}", self.classname, self.name)
        }
    }
}

/// All test cases of one or more report files.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct TestReport {
    /// Every test case, in file order.
    pub cases: Vec<TestCase>,
    /// The seconds the test runner reported for itself (sum of the suites' `time`).
    pub seconds: f64,
}

/// A report file that is not JUnit XML.
#[derive(Debug, thiserror::Error)]
#[error("{file}: not a JUnit XML report: {reason}")]
pub struct JunitError {
    /// The file.
    pub file: String,
    /// What is wrong.
    pub reason: String,
}

impl TestReport {
    /// Parses one report, `<testsuites>` or a bare `<testsuite>`, and adds its cases.
    pub fn add_xml(&mut self, xml: &str, file: &Path) -> Result<(), JunitError> {
        let err = |reason: String| JunitError {
            file: file.display().to_string(),
            reason,
        };
        let doc = roxmltree::Document::parse(xml).map_err(|e| err(e.to_string()))?;
        let root = doc.root_element();
        let suites: Vec<roxmltree::Node<'_, '_>> = match root.tag_name().name() {
            "testsuite" => vec![root],
            "testsuites" => root
                .children()
                .filter(|n| n.has_tag_name("testsuite"))
                .collect(),
            other => {
                return Err(err(format!(
                    "root element is <{other}>, expected <testsuites> or <testsuite>"
                )))
            }
        };
        for suite in suites {
            // Bounded: a sum of huge times must stay a number a record can hold.
            self.seconds = (self.seconds + seconds(suite.attribute("time"))).min(f64::MAX);
            for case in suite.descendants().filter(|n| n.has_tag_name("testcase")) {
                self.cases.push(parse_case(case));
            }
        }
        Ok(())
    }

    /// Failed and errored cases, in file order.
    pub fn failures(&self) -> Vec<&TestCase> {
        self.cases
            .iter()
            .filter(|c| matches!(c.outcome, Outcome::Failed | Outcome::Error))
            .collect()
    }

    /// The `n` slowest cases, slowest first.
    pub fn slowest(&self, n: usize) -> Vec<&TestCase> {
        let mut cases: Vec<&TestCase> = self.cases.iter().collect();
        cases.sort_by(|a, b| b.seconds.total_cmp(&a.seconds));
        cases.truncate(n);
        cases
    }

    /// How many cases ended this way.
    pub fn count(&self, outcome: &Outcome) -> usize {
        self.cases.iter().filter(|c| &c.outcome == outcome).count()
    }
}

fn seconds(attr: Option<&str>) -> f64 {
    attr.and_then(|t| t.trim().parse::<f64>().ok())
        .filter(|t| t.is_finite())
        .unwrap_or(0.0)
}

fn parse_case(case: roxmltree::Node<'_, '_>) -> TestCase {
    let mut outcome = Outcome::Passed;
    let mut message = String::new();
    let mut details = String::new();
    for child in case.children().filter(roxmltree::Node::is_element) {
        let this = match child.tag_name().name() {
            "failure" => Outcome::Failed,
            "error" => Outcome::Error,
            "skipped" => Outcome::Skipped,
            _ => continue,
        };
        // A failure outranks a teardown error reported alongside it; both outrank skipped.
        if outcome == Outcome::Passed || (outcome == Outcome::Skipped && this != Outcome::Skipped) {
            outcome = this;
            message = child.attribute("message").unwrap_or_default().to_string();
            details = child.text().unwrap_or_default().trim().to_string();
        }
    }
    TestCase {
        classname: case.attribute("classname").unwrap_or_default().to_string(),
        name: case.attribute("name").unwrap_or_default().to_string(),
        seconds: seconds(case.attribute("time")),
        outcome,
        message,
        details,
    }
}
