//! hoist's integration tests: one binary (like uv's `crates/uv/tests/it/`), so `support` is
//! compiled once. Each module is the specification of one feature, asserting what a user sees
//! (exit codes, messages, files, HTTP answers) with real parts: sshd, rsync, virtualenvs,
//! gunicorn, uWSGI, supervisor. Run one module with `cargo test -p hoist --test it -- MODULE::`.

mod support;

mod adopt;
mod bad_input;
mod become_sudo;
mod check_probes;
mod ci_cache;
mod ci_import;
mod ci_run;
mod cli_misc;
mod deploy_failures;
mod deploy_faults;
mod deploy_lock;
mod deploy_story;
mod exit_codes;
mod import_ansible;
mod import_ansible_roles;
mod io_faults;
mod live_output;
mod nonroot_deploy;
mod pyproject_deploy;
mod release_integrity;
mod release_marks;
mod releases_log;
mod restart_load;
mod run_command;
mod serve;
mod serve_jobs;
mod setup_files;
mod setup_first_deploy;
mod source_commit;
mod ssh_fleet;
