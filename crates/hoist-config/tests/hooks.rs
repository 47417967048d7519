//! When hooks run.

mod support;

use hoist_config::HookWhen;
use support::{minimal_with, Project};

#[test]
fn hooks_run_before_the_switch_unless_told_otherwise() {
    let project = Project::new();
    let config = project.config(&minimal_with(
        r#"
[[hook]]
name = "migrate"
run = "flask db upgrade"

[[hook]]
name = "warm"
run = "true"
when = "after-switch"

[[hook]]
name = "page"
run = "true"
when = "after-rollback"

[[hook]]
name = "init-db"
run = "flask init-db"
when = "first-deploy"

[[hook]]
name = "seed"
run = "true"
when = "after-switch"
first_deploy_only = true
"#,
    ));
    let moments: Vec<(String, HookWhen, bool)> = config
        .hooks
        .iter()
        .map(|h| (h.name.clone(), h.when, h.first_deploy_only))
        .collect();
    assert_eq!(
        moments,
        [
            ("migrate".into(), HookWhen::BeforeSwitch, false),
            ("warm".into(), HookWhen::AfterSwitch, false),
            ("page".into(), HookWhen::AfterRollback, false),
            ("init-db".into(), HookWhen::BeforeSwitch, true),
            ("seed".into(), HookWhen::AfterSwitch, true),
        ]
    );
}

#[test]
fn hook_moment_mistakes_are_named() {
    let project = Project::new();
    assert_eq!(
        project.message(&minimal_with(
            "[[hook]]\nname = \"x\"\nrun = \"true\"\nwhen = \"post-deploy\"\n"
        )),
        "hoist.toml:10:8: unknown hook moment \"post-deploy\"; expected one of before-switch, after-switch, after-rollback, first-deploy"
    );
    assert_eq!(
        project.message(&minimal_with(
            "[[hook]]\nname = \"x\"\nrun = \"true\"\nwhen = \"after-rollback\"\nfirst_deploy_only = true\n"
        )),
        "hoist.toml:11:21: an after-rollback hook cannot be first_deploy_only: a first deploy has nothing to roll back to"
    );
}
