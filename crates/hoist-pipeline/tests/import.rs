//! `hoist import circleci` on the seed's config: refused where it is broken, and converted into a
//! pipeline that runs green against the example app with a real PostgreSQL.

mod common;
use common::{sh, Project};
use hoist_pipeline::import::circleci;
use std::path::{Path, PathBuf};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/circleci")
}

fn example_app() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/flask-app")
}

#[test]
fn the_misindented_config_is_refused_naming_line_43() {
    let yaml = std::fs::read_to_string(fixtures().join("misindented.yml")).unwrap();
    let e = circleci(&yaml, ".circleci/config.yml", None).unwrap_err();
    assert_eq!(e.to_string(), ".circleci/config.yml:43:7: not valid YAML: while parsing a block mapping, did not find expected key");
    assert_eq!(e.hint(), "fix the indentation or syntax at line 43 (CircleCI would refuse this file too), then import again");
}

#[test]
fn the_corrected_config_converts_and_says_what_changed() {
    let yaml = std::fs::read_to_string(fixtures().join("config.yml")).unwrap();
    let c = circleci(&yaml, ".circleci/config.yml", Some(&example_app())).unwrap();
    let p = hoist_config::pipeline::parse(Path::new("hoist.toml"), &c.toml)
        .unwrap()
        .unwrap();
    let job = &p.jobs[0];
    assert_eq!(job.name, "build");
    assert!(job.filter.allows("master") && !job.filter.allows("dev"));
    assert_eq!(
        job.services,
        [hoist_config::pipeline::ServiceSpec::Postgres {
            user: "notes".into(),
            db: "notes_test".into(),
            password: Some("notes-secret".into()),
            settings: Default::default()
        }]
    );
    let kinds: Vec<&str> = job.steps.iter().map(|s| s.kind.key()).collect();
    assert_eq!(
        kinds,
        [
            "checkout",
            "restore_cache",
            "run",
            "save_cache",
            "run",
            "test_results",
            "artifacts",
            "deploy"
        ]
    );
    assert!(
        job.environment.is_empty(),
        "the Ansible variables are dropped (and listed)"
    );
    let install = match &job.steps[2].kind {
        hoist_config::pipeline::StepKind::Run(r) => r.clone(),
        other => panic!("{other:?}"),
    };
    assert_eq!(install.command, "python3 -m venv venv\n. venv/bin/activate\npip install -r requirements.txt\npip install -r requirements-dev.txt\n");
    assert!(install.unless_cache_hit);
    for expected in [
        "removed `pip install ansible`: only the Ansible deploy needed it",
        "removed `sudo apt-get update`: jobs run on the host",
        "removed `sudo apt-get install -y rsync`: jobs run on the host, not in a disposable image; install rsync on this machine once (apt-get install rsync)",
        "`ansible-playbook -i deploy/hosts deploy/site.yml` becomes hoist's deploy step",
        "environment ANSIBLE_HOST_KEY_CHECKING, ANSIBLE_RETRY_FILES_ENABLED dropped",
        "primary image circleci/python:3.7.4 becomes this machine's own toolchain",
        "image circleci/postgres:11.5 becomes a native PostgreSQL service",
        "added --junitxml",
        "added `pip install -r requirements-dev.txt`",
    ] {
        assert!(c.notes.iter().any(|n| n.contains(expected)), "no note says {expected:?}: {:#?}", c.notes);
    }
    assert!(c.unconverted.is_empty(), "{:?}", c.unconverted);
}

#[test]
fn what_cannot_be_converted_is_listed_and_orbs_are_refused() {
    let yaml = r#"
version: 2.1
executors:
  py: { docker: [{ image: cimg/python:3.12 }] }
jobs:
  test:
    docker:
      - image: cimg/python:3.12
      - image: mysql:8
    parallelism: 4
    steps:
      - checkout
      - persist_to_workspace: { root: ., paths: [x] }
      - run: { name: serve, command: "python -m http.server", background: true }
workflows:
  main:
    jobs:
      - test:
          context: prod
          filters: { tags: { only: /v.*/ }, branches: { ignore: [/wip-.*/] } }
"#;
    let c = circleci(yaml, "config.yml", None).unwrap();
    let expected = [
        "top-level `executors` (2.1 commands, executors and parameters are not expanded)",
        "job test: service image mysql:8 (hoist starts only postgres and redis natively)",
        "job test: `parallelism` (hoist runs jobs on the host, without executors or parallelism)",
        "job test, step 2: `persist_to_workspace` has no hoist equivalent",
        "job test, step 3: background = true (run it with `&` and stop it in a later step)",
        "workflow main, job test: tag filters (hoist ci runs branches)",
        "workflow main, job test: `context`",
    ];
    let mut got = c.unconverted.clone();
    got.sort();
    let mut want: Vec<String> = expected.iter().map(|s| s.to_string()).collect();
    want.sort();
    assert_eq!(got, want);
    let p = hoist_config::pipeline::parse(Path::new("hoist.toml"), &c.toml)
        .unwrap()
        .unwrap();
    assert!(!p.jobs[0].filter.allows("wip-1") && p.jobs[0].filter.allows("main"));
    let e = circleci(
        "version: 2.1\norbs:\n  python: circleci/python@2\njobs: {}\n",
        "config.yml",
        None,
    )
    .unwrap_err();
    assert_eq!(
        e.to_string(),
        "config.yml: the config uses orbs (python), which hoist cannot convert"
    );
}

#[test]
fn the_imported_seed_pipeline_runs_green_against_the_example_app_with_postgresql() {
    let yaml = std::fs::read_to_string(fixtures().join("config.yml")).unwrap();
    let example = example_app();
    let c = circleci(&yaml, ".circleci/config.yml", Some(&example)).unwrap();
    let p = Project::new("", &[]);
    sh(&p.dir, &format!("cp -r {}/. . && rm -rf .venv instance/*.sqlite3 && find . -name __pycache__ -prune -exec rm -rf {{}} +", example.display()));
    let app_config = std::fs::read_to_string(example.join("hoist.toml")).unwrap();
    std::fs::write(p.config(), format!("{app_config}\n{}", c.toml)).unwrap();
    sh(
        &p.dir,
        "git add -A && git -c user.name=t -c user.email=t@t commit -qm app",
    );
    let mut opts = p.options();
    opts.deploy = false;
    let run = p.run_with(opts.clone());
    let job = run.job("build");
    assert!(
        run.record.passed,
        "{:#?}\n{}",
        job,
        run.output("build").join("\n")
    );
    let tests = job.tests.as_ref().expect("pytest wrote JUnit XML");
    let pg = tests
        .cases
        .iter()
        .find(|c| c.name == "test_notes_are_stored_in_postgresql")
        .expect("the PostgreSQL test ran");
    assert_eq!(
        pg.outcome,
        hoist_pipeline::junit::Outcome::Passed,
        "it talked to the service"
    );
    assert!(tests.failures().is_empty());
    assert!(run
        .record
        .dir
        .join("artifacts/build/test-reports/junit.xml")
        .is_file());
    // Warm: the environment comes from the cache and the install step is skipped.
    let warm = p.run_with(opts);
    assert!(warm.record.passed);
    let steps: Vec<String> = warm
        .steps("build")
        .into_iter()
        .map(|(n, s)| format!("{n}: {s}"))
        .collect();
    assert_eq!(
        steps[1..4],
        [
            "restore cache: passed",
            "Set up the virtualenv: skipped",
            "save cache: passed"
        ]
    );
    assert_eq!(steps[7], "Ship to production: skipped");
}
