//! Pure pieces: cache key templates, the secrets file, the masker.

use hoist_pipeline::cache_key::{render, KeyContext, KeyError};
use hoist_pipeline::mask::SecretMasker;
use hoist_pipeline::secrets::parse_file;
use proptest::prelude::*;
use std::path::Path;

fn ctx<'a>(dir: &'a Path, env: &'a dyn Fn(&str) -> Option<String>) -> KeyContext<'a> {
    KeyContext {
        branch: "feat/x",
        revision: "abc123",
        epoch: 1700000000,
        base_dir: dir,
        env,
    }
}

#[test]
fn templates_render_every_variable() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("r.txt"), "").unwrap();
    let env = |n: &str| (n == "PY").then(|| "3.11".to_string());
    let got = render(
        "v1-{{ .Branch }}-{{.Revision}}-{{ epoch }}-{{ .Environment.PY }}-{{ checksum \"r.txt\" }}",
        &ctx(dir.path(), &env),
    )
    .unwrap();
    // SHA-256 of the empty file, base64.
    assert_eq!(
        got,
        "v1-feat/x-abc123-1700000000-3.11-47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="
    );
    assert_eq!(render("plain", &ctx(dir.path(), &env)).unwrap(), "plain");
}

#[test]
fn templates_that_cannot_render_say_why() {
    let dir = tempfile::tempdir().unwrap();
    let env = |_: &str| None;
    let c = ctx(dir.path(), &env);
    assert_eq!(
        render("k-{{ .Environment.NOPE }}", &c).unwrap_err(),
        KeyError::MissingVariable {
            template: "k-{{ .Environment.NOPE }}".into(),
            name: "NOPE".into()
        }
    );
    assert_eq!(
        render("k-{{ checksum requirements.txt }}", &c).unwrap_err().to_string(),
        "cache key \"k-{{ checksum requirements.txt }}\": cannot understand {{ checksum requirements.txt }}; expected checksum \"file\", .Branch, .Revision, epoch, arch or .Environment.NAME"
    );
    assert!(matches!(
        render("k-{{ .Branch", &c),
        Err(KeyError::Unknown { .. })
    ));
}

#[test]
fn the_secrets_file_takes_plain_quoted_and_multi_line_values() {
    let text = "# comment\n\nA=plain value \nexport B='single $quoted'\nC=\"line1\nline2\\\"x\\\"\"\nD=\"esc\\nnew\"\n";
    let got = parse_file(text, "s.env").unwrap();
    assert_eq!(
        got,
        [
            ("A".into(), "plain value".into()),
            ("B".into(), "single $quoted".into()),
            ("C".into(), "line1\nline2\"x\"".into()),
            ("D".into(), "esc\nnew".into())
        ] as [(String, String); 4]
    );
    assert_eq!(
        parse_file("X=\"open\nstill\n", "s.env")
            .unwrap_err()
            .to_string(),
        "s.env:1: the value of X has no closing double quote"
    );
    assert_eq!(
        parse_file("just words\n", "s.env").unwrap_err().to_string(),
        "s.env:1: expected KEY=value"
    );
}

proptest! {
    #[test]
    fn no_secret_of_four_or_more_characters_survives_masking(secret in "[a-zA-Z0-9!@#%^&*]{4,24}", before in "[ a-z]{0,10}", after in "[ a-z]{0,10}") {
        let masker = SecretMasker::new([secret.as_str()]);
        let masked = masker.mask(&format!("{before}{secret}{after}{secret}"));
        prop_assert!(!masked.contains(&secret));
    }

    #[test]
    fn each_line_of_a_multi_line_secret_is_masked_alone(lines in proptest::collection::vec("[a-zA-Z0-9+/=]{4,30}", 2..5)) {
        let masker = SecretMasker::new([lines.join("\n")]);
        for line in &lines {
            let masked = masker.mask(&format!("> {line} <"));
            prop_assert!(!masked.contains(line.as_str()), "{} kept {}", masked, line);
        }
    }
}

proptest! {
    #[test]
    fn no_secret_survives_in_any_field_of_an_event_or_a_record(secret in "[a-zA-Z0-9!@#%^&*<>\"']{4,24}", before in "[ a-z]{0,10}") {
        use hoist_pipeline::event::Event;
        use hoist_pipeline::junit::{Outcome, TestCase, TestReport};
        use hoist_pipeline::record::{JobRecord, JobStatus};
        let masker = SecretMasker::new([secret.as_str()]);
        let holding = format!("{before}{secret}{before}");
        let job = JobRecord {
            name: "t".into(),
            status: JobStatus::Failed,
            reason: Some(holding.clone()),
            millis: 1,
            services: Vec::new(),
            steps: Vec::new(),
            tests: Some(TestReport {
                cases: vec![TestCase {
                    classname: holding.clone(),
                    name: "n".into(),
                    seconds: 0.5,
                    outcome: Outcome::Failed,
                    message: holding.clone(),
                    details: format!("line 1\n{holding}\nline 3"),
                }],
                seconds: 0.5,
            }),
        };
        let masked = masker.mask_value(job, "a job").unwrap();
        let case = &masked.tests.as_ref().unwrap().cases[0];
        for text in [masked.reason.as_deref().unwrap(), &case.classname, &case.message, &case.details] {
            prop_assert!(!text.contains(&secret), "{} kept {}", text, secret);
            prop_assert!(text.contains("****"), "{}", text);
        }
        prop_assert_eq!(case.seconds, 0.5, "the rest is as it was");
        let event = Event::JobSkipped { job: "t".into(), reason: holding };
        let Event::JobSkipped { reason, .. } = masker.mask_value(event, "an event").unwrap() else {
            panic!("the same kind of event")
        };
        prop_assert!(!reason.contains(&secret));
    }

    #[test]
    fn a_secret_is_masked_in_the_forms_xml_writers_give_it(secret in "[a-z]{2,8}[&<>\"'][a-z]{2,8}") {
        let masker = SecretMasker::new([secret.as_str()]);
        let minimal = secret.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;");
        let quoted = minimal.replace('"', "&quot;");
        let full = quoted.replace('\'', "&apos;");
        for form in [minimal, quoted, full] {
            let masked = masker.mask(&format!("<failure message=\"{form}\">{form}</failure>"));
            prop_assert_eq!(masked, "<failure message=\"****\">****</failure>");
        }
    }
}
