//! Every refusal of a hoist.toml, exactly as the user reads it: file:line:column: message.

mod support;

use support::{minimal_with, Project};

#[test]
fn an_unknown_key_names_its_table_suggests_the_closest_and_lists_the_valid_ones() {
    let project = Project::new();
    let error = project.error(&minimal_with("keep_release = 3\n"));
    assert_eq!(
        error.to_string().replacen(
            &project.config_path().display().to_string(),
            "hoist.toml",
            1
        ),
        "hoist.toml:7:1: unknown key `keep_release` in [release]; did you mean `keep_releases`? \
         valid keys are root, keep_releases, shared, releases_dir, current_link, lock_wait"
    );
    assert_eq!((error.line, error.column), (Some(7), Some(1)));
    assert_eq!(
        error.hint.as_deref(),
        Some("rename `keep_release` to `keep_releases`")
    );
}

#[test]
fn an_unknown_key_without_a_close_match_lists_the_valid_keys_only() {
    let message = Project::new().message(&minimal_with(
        "\n[[process]]\nname = \"web\"\nrestart = \"systemd\"\nunit = \"example.service\"\ncolour = \"blue\"\n",
    ));
    assert_eq!(
        message,
        "hoist.toml:12:1: unknown key `colour` in [[process]]; \
         valid keys are name, restart, command, program, unit, fifo, pidfile, timeout, run, supervisor_conf, settle, check"
    );
}

#[test]
fn an_unknown_key_in_app_is_found_in_its_table() {
    let message = Project::new().message("[app]\nname = \"example\"\nentry = \"app:app\"\nentrypoint = \"x\"\n\n[release]\nroot = \"/srv/example\"\n");
    assert_eq!(
        message,
        "hoist.toml:4:1: unknown key `entrypoint` in [app]; \
         valid keys are name, source, entry, python, requirements, dependencies, extras, groups, exclude, installer, installer_env, python_path"
    );
}

#[test]
fn a_python_path_outside_the_project_or_missing_is_refused_with_its_place() {
    let project = Project::new();
    let config = |dir: &str| {
        format!(
            "[app]\nname = \"example\"\nentry = \"app:app\"\npython_path = [{dir:?}]\n\n[release]\nroot = \"/srv/example\"\n"
        )
    };
    let error = project.error(&config("../lib"));
    assert_eq!(
        error.to_string().replacen(
            &project.config_path().display().to_string(),
            "hoist.toml",
            1
        ),
        "hoist.toml:4:16: python_path \"../lib\" must be a directory inside the release"
    );
    assert_eq!(
        error.hint.as_deref(),
        Some("write it relative to the project, e.g. python_path = [\"src\"]")
    );
    let error = project.error(&config("lib"));
    let expected = format!(
        "python_path \"lib\" is not a directory of the project ({})",
        project.path().join("lib").display()
    );
    assert!(error.to_string().ends_with(&expected), "{error}");
}

#[test]
fn an_unknown_table_is_called_a_table() {
    let project = Project::new();
    assert_eq!(
        project.message(&minimal_with("\n[pipline]\n")),
        "hoist.toml:8:2: unknown table [pipline]; did you mean [pipeline]? \
         valid tables are [app], [release], [[hook]], [[process]], [health], [setup], [pipeline], [env], \
         [ssh], [hosts], [groups], [environments]"
    );
    assert_eq!(
        project.message(&minimal_with("\n[[hooks]]\nname = \"x\"\nrun = \"true\"\n")),
        "hoist.toml:8:3: unknown table [[hooks]]; did you mean [[hook]]? \
         valid tables are [app], [release], [[hook]], [[process]], [health], [setup], [pipeline], [env], \
         [ssh], [hosts], [groups], [environments]"
    );
}

#[test]
fn a_single_bracket_hook_explains_the_double_brackets() {
    let error = Project::new().error(&minimal_with("\n[hook]\nname = \"x\"\nrun = \"true\"\n"));
    assert_eq!((error.line, error.column), (Some(8), Some(1)));
    assert_eq!(error.message, "`hook` must be an array, not a table");
    assert_eq!(
        error.hint.as_deref(),
        Some("write [[hook]] with double brackets: each [[hook]] adds one hook")
    );
}

#[test]
fn malformed_toml_is_reported_where_the_parser_stopped() {
    let project = Project::new();
    assert_eq!(
        project.message("[app]\nname = \"example\nentry = \"app:app\"\n"),
        "hoist.toml:2:16: malformed TOML: invalid basic string"
    );
    let message = project.message("[app\nname = \"example\"\n");
    assert!(
        message.starts_with("hoist.toml:1:5: malformed TOML: "),
        "{message}"
    );
}

#[test]
fn a_missing_required_key_names_the_key_and_its_table() {
    let error =
        Project::new().error("[app]\nname = \"example\"\n\n[release]\nroot = \"/srv/example\"\n");
    assert_eq!(error.line, Some(1));
    assert_eq!(error.message, "missing required key `entry` in [app]");
    assert_eq!(
        error.hint.as_deref(),
        Some("add `entry = \"module:attribute\"`, the WSGI/ASGI app, e.g. entry = \"app:app\"")
    );
    let message = Project::new().message(&minimal_with("\n[[hook]]\nname = \"migrate\"\n"));
    assert_eq!(
        message,
        "hoist.toml:8:1: missing required key `run` in [[hook]]"
    );
}

#[test]
fn a_missing_table_has_no_line_to_point_at() {
    let message = Project::new().message("[app]\nname = \"example\"\nentry = \"app:app\"\n");
    assert_eq!(message, "hoist.toml: missing required table [release]");
}

#[test]
fn the_root_must_not_be_the_file_system_root() {
    let error = Project::new()
        .error("[app]\nname = \"example\"\nentry = \"app:app\"\n\n[release]\nroot = \"/\"\n");
    assert_eq!((error.line, error.column), (Some(6), Some(8)));
    assert_eq!(
        error.message,
        "release root \"/\" is the file system root; hoist needs a directory of its own"
    );
    assert_eq!(
        Project::new().message("[app]\nname = \"example\"\nentry = \"app:app\"\n\n[release]\nroot = \"//.\"\n"),
        "hoist.toml:6:8: release root \"//.\" is the file system root; hoist needs a directory of its own"
    );
}

#[test]
fn the_root_must_be_absolute() {
    let message = Project::new().message(
        "[app]\nname = \"example\"\nentry = \"app:app\"\n\n[release]\nroot = \"srv/example\"\n",
    );
    assert_eq!(
        message,
        "hoist.toml:6:8: release root \"srv/example\" must be an absolute path"
    );
}

#[test]
fn the_root_must_not_climb_with_dot_dot() {
    let message = Project::new().message("[app]\nname = \"example\"\nentry = \"app:app\"\n\n[release]\nroot = \"/srv/example/../../etc\"\n");
    assert_eq!(
        message,
        "hoist.toml:6:8: release root \"/srv/example/../../etc\" must not contain \"..\" components"
    );
}

#[test]
fn keep_releases_below_two_is_refused_with_the_reason() {
    let project = Project::new();
    assert_eq!(
        project.message(&minimal_with("keep_releases = 1\n")),
        "hoist.toml:7:17: keep_releases must be at least 2: with 1, hoist would have to delete the release it rolls back to"
    );
    assert_eq!(
        project.message(&minimal_with("keep_releases = 0\n")),
        "hoist.toml:7:17: keep_releases must be at least 2: with 0, hoist would have to delete the release it rolls back to"
    );
}

#[test]
fn an_unknown_restart_strategy_lists_the_strategies_and_suggests_one() {
    let error = Project::new().error(&minimal_with(
        "\n[[process]]\nname = \"web\"\nrestart = \"supervisr\"\nprogram = \"uwsgi\"\n",
    ));
    assert_eq!((error.line, error.column), (Some(10), Some(11)));
    assert_eq!(
        error.message,
        "unknown restart strategy \"supervisr\"; expected one of supervisor, systemd, uwsgi-chain, gunicorn-hup, command"
    );
    assert_eq!(error.hint.as_deref(), Some("did you mean \"supervisor\"?"));
}

#[test]
fn a_key_of_another_strategy_is_refused_naming_the_chosen_strategy_keys() {
    let error = Project::new().error(&minimal_with(
        "\n[[process]]\nname = \"web\"\nrestart = \"systemd\"\nunit = \"example.service\"\nprogram = \"uwsgi\"\n",
    ));
    assert_eq!((error.line, error.column), (Some(12), Some(11)));
    assert_eq!(
        error.message,
        "key `program` does not belong to restart strategy \"systemd\", which takes `unit` (and run, settle, check, name, restart, timeout)"
    );
    assert_eq!(
        error.hint.as_deref(),
        Some("`program` is for restart = \"supervisor\"; remove it or change the strategy")
    );
}

#[test]
fn settle_is_only_for_processes_a_supervisor_keeps_and_bad_values_are_named() {
    let error = Project::new().error(&minimal_with(
        "\n[[process]]\nname = \"web\"\nrestart = \"gunicorn-hup\"\npidfile = \"/run/g.pid\"\nsettle = \"3s\"\n",
    ));
    assert_eq!((error.line, error.column), (Some(12), Some(10)));
    assert_eq!(
        error.message,
        "key `settle` does not belong to restart strategy \"gunicorn-hup\", which takes `pidfile` (and program or unit, supervisor_conf, check, name, restart, timeout)"
    );
    let error = Project::new().error(&minimal_with(
        "\n[[process]]\nname = \"worker\"\nrestart = \"supervisor\"\nprogram = \"q\"\nsettle = 3\n",
    ));
    assert_eq!(error.line, Some(12));
    let error = Project::new().error(&minimal_with(
        "\n[[process]]\nname = \"worker\"\nrestart = \"supervisor\"\nprogram = \"q\"\ncheck = \" \"\n",
    ));
    assert_eq!(error.message, "`check` must not be empty");
}

#[test]
fn a_strategy_without_its_key_says_which_key() {
    let error = Project::new().error(&minimal_with(
        "\n[[process]]\nname = \"web\"\nrestart = \"uwsgi-chain\"\n",
    ));
    assert_eq!(error.line, Some(10));
    assert_eq!(
        error.message,
        "restart strategy \"uwsgi-chain\" needs `fifo`"
    );
    assert_eq!(
        error.hint.as_deref(),
        Some("add the uWSGI master FIFO, e.g. fifo = \"/run/example/uwsgi.fifo\"")
    );
}

#[test]
fn a_relative_pidfile_is_refused() {
    let message = Project::new().message(&minimal_with(
        "\n[[process]]\nname = \"web\"\nrestart = \"gunicorn-hup\"\npidfile = \"gunicorn.pid\"\n",
    ));
    assert_eq!(
        message,
        "hoist.toml:11:11: `pidfile` \"gunicorn.pid\" must be an absolute path on the host"
    );
}

#[test]
fn duplicate_hook_names_point_at_the_second_and_name_the_first() {
    let message = Project::new().message(&minimal_with(
        "\n[[hook]]\nname = \"migrate\"\nrun = \"flask db upgrade\"\n\n[[hook]]\nname = \"migrate\"\nrun = \"flask seed\"\n",
    ));
    assert_eq!(
        message,
        "hoist.toml:13:8: duplicate hook name \"migrate\"; hook names must be unique (first used on line 9)"
    );
}

#[test]
fn duplicate_process_names_are_refused() {
    let message = Project::new().message(&minimal_with(
        "\n[[process]]\nname = \"web\"\nrestart = \"systemd\"\nunit = \"a.service\"\n\n[[process]]\nname = \"web\"\nrestart = \"systemd\"\nunit = \"b.service\"\n",
    ));
    assert_eq!(
        message,
        "hoist.toml:14:8: duplicate process name \"web\"; process names must be unique (first used on line 9)"
    );
}

#[test]
fn a_bad_duration_shows_the_expected_form() {
    let project = Project::new();
    let error = project.error(&minimal_with(
        "\n[[hook]]\nname = \"migrate\"\nrun = \"flask db upgrade\"\ntimeout = \"10 minutes\"\n",
    ));
    assert_eq!((error.line, error.column), (Some(11), Some(11)));
    assert_eq!(
        error.message,
        "invalid duration \"10 minutes\" for `timeout`: expected a duration like 30s, 5m, 250ms"
    );
    assert_eq!(
        project.message(&minimal_with("lock_wait = \"5\"\n")),
        "hoist.toml:7:13: invalid duration \"5\" for `lock_wait`: expected a duration like 30s, 5m, 250ms"
    );
}

#[test]
fn a_duration_written_as_a_number_is_a_type_error_with_a_hint() {
    let error = Project::new().error(&minimal_with("lock_wait = 5\n"));
    assert_eq!((error.line, error.column), (Some(7), Some(13)));
    assert_eq!(error.message, "`lock_wait` must be a string, not integer 5");
    assert_eq!(
        error.hint.as_deref(),
        Some("durations are strings with a unit, e.g. lock_wait = \"30s\"")
    );
}

#[test]
fn a_zero_timeout_is_refused() {
    let message = Project::new().message(&minimal_with(
        "\n[[hook]]\nname = \"migrate\"\nrun = \"true\"\ntimeout = \"0s\"\n",
    ));
    assert_eq!(
        message,
        "hoist.toml:11:11: `timeout` must be longer than 0s"
    );
}

#[test]
fn health_with_both_url_and_command_is_refused_at_the_second() {
    let message = Project::new().message(&minimal_with(
        "\n[health]\nurl = \"http://127.0.0.1:8000/health\"\ncommand = \"curl -fsS localhost\"\n",
    ));
    assert_eq!(
        message,
        "hoist.toml:10:11: [health] sets both `url` and `command`; set exactly one"
    );
}

#[test]
fn health_with_neither_url_nor_command_points_at_the_table() {
    let error = Project::new().error(&minimal_with("\n[health]\ntimeout = \"30s\"\n"));
    assert_eq!((error.line, error.column), (Some(8), Some(1)));
    assert_eq!(
        error.message,
        "[health] needs exactly one of `url` or `command`"
    );
}

#[test]
fn health_urls_are_plain_http() {
    let message = Project::new().message(&minimal_with(
        "\n[health]\nurl = \"https://example.com/health\"\n",
    ));
    assert_eq!(
        message,
        "hoist.toml:9:7: health url \"https://example.com/health\" must start with http:// and name a host"
    );
}

#[test]
fn http_only_keys_are_refused_for_a_command_check() {
    let message = Project::new().message(&minimal_with(
        "\n[health]\ncommand = \"bin/check\"\nstatus = 204\n",
    ));
    assert_eq!(
        message,
        "hoist.toml:10:10: `status` applies to an HTTP check (`url`), not to `command`"
    );
}

#[test]
fn a_missing_requirements_file_is_reported_at_requirements() {
    let project = Project::new();
    project.file("requirements/base.txt", "flask\n");
    let message = project.message(
        "[app]\nname = \"example\"\nentry = \"app:app\"\nrequirements = [\"requirements/base.txt\", \"requirements/prod.txt\"]\n\n[release]\nroot = \"/srv/example\"\n",
    );
    assert_eq!(
        message,
        format!(
            "hoist.toml:4:16: requirements file \"requirements/prod.txt\" does not exist in {}",
            project.path().display()
        )
    );
}

#[test]
fn requirements_are_looked_up_in_source_not_next_to_hoist_toml() {
    let project = Project::new();
    project.file("requirements.txt", "flask\n");
    project.file("src/app.py", "app = 1\n");
    let error = project.error(
        "[app]\nname = \"example\"\nsource = \"src\"\nentry = \"app:app\"\nrequirements = [\"requirements.txt\"]\n\n[release]\nroot = \"/srv/example\"\n",
    );
    assert_eq!(error.line, Some(5));
    assert_eq!(
        error.message,
        format!(
            "requirements file \"requirements.txt\" does not exist in {}",
            project.path().join("src").display()
        )
    );
}

#[test]
fn a_missing_source_directory_is_refused() {
    let project = Project::new();
    let error = project.error(
        "[app]\nname = \"example\"\nsource = \"web\"\nentry = \"app:app\"\n\n[release]\nroot = \"/srv/example\"\n",
    );
    assert_eq!((error.line, error.column), (Some(3), Some(10)));
    assert_eq!(
        error.message,
        format!(
            "source directory \"web\" does not exist (resolved to {})",
            project.path().join("web").display()
        )
    );
}

#[test]
fn an_entry_without_a_colon_is_refused() {
    let error = Project::new().error(
        "[app]\nname = \"example\"\nentry = \"app\"\n\n[release]\nroot = \"/srv/example\"\n",
    );
    assert_eq!((error.line, error.column), (Some(3), Some(9)));
    assert_eq!(
        error.message,
        "entry \"app\" has no \":\"; expected \"module:attribute\", e.g. \"app:app\""
    );
}

#[test]
fn an_entry_module_must_be_importable() {
    let message = Project::new().message(
        "[app]\nname = \"example\"\nentry = \"my-app:app\"\n\n[release]\nroot = \"/srv/example\"\n",
    );
    assert_eq!(
        message,
        "hoist.toml:3:9: entry \"my-app:app\": \"my-app\" is not a Python module path such as \"app\" or \"mysite.wsgi\""
    );
}

#[test]
fn an_invalid_app_name_suggests_a_valid_one() {
    let error = Project::new().error(
        "[app]\nname = \"My App\"\nentry = \"app:app\"\n\n[release]\nroot = \"/srv/example\"\n",
    );
    assert_eq!(error.line, Some(2));
    assert_eq!(
        error.message,
        "app name \"My App\" is invalid: use lowercase letters, digits, \"-\" and \"_\", starting with a letter or digit"
    );
    assert_eq!(error.hint.as_deref(), Some("e.g. name = \"my-app\""));
}

#[test]
fn an_unknown_installer_is_refused() {
    let error = Project::new().error("[app]\nname = \"example\"\nentry = \"app:app\"\ninstaller = \"pipx\"\n\n[release]\nroot = \"/srv/example\"\n");
    assert_eq!(error.line, Some(4));
    assert_eq!(
        error.message,
        "unknown installer \"pipx\"; expected one of auto, uv, pip"
    );
    assert_eq!(error.hint.as_deref(), Some("did you mean \"pip\"?"));
}

#[test]
fn shared_paths_stay_inside_the_release() {
    let project = Project::new();
    assert_eq!(
        project.message(&minimal_with("shared = [\"logs/\", \"../secrets\"]\n")),
        "hoist.toml:7:20: shared path \"../secrets\" must not contain \"..\" components"
    );
    assert_eq!(
        project.message(&minimal_with("shared = [\"/etc/app.conf\"]\n")),
        "hoist.toml:7:11: shared path \"/etc/app.conf\" must be relative to the release, not absolute"
    );
    assert_eq!(
        project.message(&minimal_with("shared = [\".venv/\"]\n")),
        "hoist.toml:7:11: shared path \".venv/\" would replace the release's own .venv"
    );
}

#[test]
fn shared_paths_are_normalised_before_they_are_checked() {
    let project = Project::new();
    for (shared, column, message) in [
        (
            "\"./.venv/\"",
            11,
            "shared path \"./.venv/\" would replace the release's own .venv",
        ),
        (
            "\".venv/lib/x\"",
            11,
            "shared path \".venv/lib/x\" would replace the release's own .venv",
        ),
        (
            "\"./RELEASE.json\"",
            11,
            "shared path \"./RELEASE.json\" would replace the release's own RELEASE.json",
        ),
        (
            "\".hoist-manifest\"",
            11,
            "shared path \".hoist-manifest\" would replace the release's own .hoist-manifest",
        ),
        (
            "\"logs/\", \"./logs/\"",
            20,
            "shared path \"./logs/\" is listed twice",
        ),
        (
            "\"logs/\", \"logs/app.log\"",
            20,
            "shared path \"logs/app.log\" overlaps the shared path \"logs\"",
        ),
        (
            "\"a\\u0000b\"",
            11,
            "shared path \"a\\0b\" must not contain control characters (NUL, newline, tab...)",
        ),
        (
            "\"./\"",
            11,
            "shared path \"./\" must name a file or folder inside the release",
        ),
    ] {
        assert_eq!(
            project.message(&minimal_with(&format!("shared = [{shared}]\n"))),
            format!("hoist.toml:7:{column}: {message}"),
            "{shared}"
        );
    }
}

#[test]
fn folder_names_under_root_are_single_and_distinct() {
    let project = Project::new();
    assert_eq!(
        project.message(&minimal_with("releases_dir = \"a/b\"\n")),
        "hoist.toml:7:16: releases_dir \"a/b\" must be a single folder name under root"
    );
    assert_eq!(
        project.message(&minimal_with("releases_dir = \"current\"\n")),
        "hoist.toml:7:16: releases_dir and current_link are both \"current\"; they must differ"
    );
    assert_eq!(
        project.message(&minimal_with("current_link = \"shared\"\n")),
        "hoist.toml:7:16: current_link \"shared\" is taken: hoist uses shared, envs, wheels, .hoist under root"
    );
}

#[test]
fn a_wrong_type_names_the_key() {
    let message = Project::new().message(
        "[app]\nname = \"example\"\nentry = \"app:app\"\n\n[release]\nroot = [\"/srv/example\"]\n",
    );
    assert_eq!(
        message,
        "hoist.toml:6:8: `root` must be a string, not an array"
    );
}

#[test]
fn a_missing_file_says_how_to_make_one() {
    let project = Project::new();
    let error = hoist_config::load(&project.config_path()).unwrap_err();
    assert_eq!(error.line, None);
    assert!(
        error.message.starts_with("cannot read the config file: "),
        "{}",
        error.message
    );
    assert_eq!(
        error.hint.as_deref(),
        Some("run `hoist init` in the project directory to write one")
    );
}

#[test]
fn the_path_is_shown_as_given() {
    let error =
        hoist_config::parse(std::path::Path::new("conf/hoist.toml"), "[app]\n").unwrap_err();
    assert_eq!(
        error.to_string(),
        "conf/hoist.toml:1:1: missing required key `name` in [app]"
    );
}
