//! `hoist serve` runs jobs as the unprivileged `[runner] user`: the steps' uid, HOME and
//! process group, the server's secrets and store out of their reach, and the refusals.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use hoist_testkit::{free_port, ProcessGuard};

use crate::serve::{hoist, http, json, log_lines, sh, status_of, token, wait_for};

/// The test user jobs run as (scripts/install-deps.d/become creates it).
const JOB_USER: &str = "hoist-nosudo";

fn uid_of(user: &str) -> u32 {
    let out = std::process::Command::new("id")
        .args(["-u", user])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "user {user} is missing: run scripts/install-deps (scripts/install-deps.d/become creates it)"
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

/// A group, created when missing, for the job user's supplementary group (a name no machine has
/// for anything else).
const JOB_EXTRA_GROUP: &str = "hoist-test-job-extra";

/// Makes `user` a member of `group`, creating the group when missing (both idempotent, so
/// reruns on the same machine are fine); returns the group's gid.
fn supplementary_group(user: &str, group: &str) -> u32 {
    let run = |program: &str, args: &[&str]| {
        let out = std::process::Command::new(program)
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("run {program} (package passwd): {e}"));
        assert!(
            out.status.success(),
            "{program} {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    // -f: success when the group exists already.
    run("groupadd", &["-f", group]);
    run("usermod", &["-a", "-G", group, user]);
    let entry = run("getent", &["group", group]);
    entry.trim_end().split(':').nth(2).unwrap().parse().unwrap()
}

/// The gids `id -G` prints, sorted.
fn gids(id_g: &str) -> Vec<u32> {
    let mut gids: Vec<u32> = id_g
        .split_whitespace()
        .map(|g| g.parse().unwrap())
        .collect();
    gids.sort_unstable();
    gids
}

/// A bare repository `origin.git` in `dir` whose master runs `steps` (a TOML array body).
fn repository(dir: &Path, steps: &str) {
    let work = dir.join("work");
    std::fs::create_dir(&work).unwrap();
    std::fs::write(
        work.join("hoist.toml"),
        format!("[pipeline.jobs.test]\nsteps = [\n  \"checkout\",\n{steps}]\n"),
    )
    .unwrap();
    sh(
        &work,
        "git init -q -b master . && git add -A && git commit -qm steps && git init -q --bare ../origin.git && git remote add origin ../origin.git && git push -q origin master",
    );
}

/// Starts `hoist serve` with `config_text` (its listen address prepended) in `dir`, with `env`;
/// returns its port, a deployer's token and the server.
fn serve(dir: &Path, config_text: &str, env: &[(&str, &str)]) -> (u16, String, ProcessGuard) {
    let (port, config) = server_config(dir, config_text);
    let token = token(&config, "tests", "deployer");
    (port, token, start_server(dir, &config, env))
}

/// Writes `dir`'s hoist-server.toml: `config_text` with a free listen port prepended.
fn server_config(dir: &Path, config_text: &str) -> (u16, std::path::PathBuf) {
    let port = free_port();
    std::fs::write(dir.join("secret"), "hook-secret\n").unwrap();
    let config = dir.join("hoist-server.toml");
    std::fs::write(
        &config,
        format!("listen = \"127.0.0.1:{port}\"\n{config_text}"),
    )
    .unwrap();
    (port, config)
}

/// Starts `hoist serve --config <config>` in `dir` and waits until it listens.
fn start_server(dir: &Path, config: &Path, env: &[(&str, &str)]) -> ProcessGuard {
    let log = dir.join("serve.log");
    let file = std::fs::File::create(&log).unwrap();
    let mut cmd = hoist(config);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let guard = ProcessGuard::spawn(
        cmd.stdout(Stdio::null()).stderr(file),
        "hoist serve",
        "hoist",
    )
    .grace(Duration::from_secs(20));
    wait_for("hoist serve to listen", Duration::from_secs(30), || {
        std::fs::read_to_string(&log)
            .unwrap_or_default()
            .contains("listening on")
    });
    guard
}

fn trigger(port: u16, token: &str) -> i64 {
    let (code, body) = http(
        port,
        "POST",
        "/api/projects/app/runs",
        token,
        "{\"branch\":\"master\"}",
    );
    assert_eq!(code, 202, "{body}");
    json(&body)["run"].as_i64().unwrap()
}

#[test]
fn jobs_run_as_the_runner_user_in_their_own_group_without_the_servers_secrets_or_store() {
    let uid = uid_of(JOB_USER);
    let extra_gid = supplementary_group(JOB_USER, JOB_EXTRA_GROUP);
    // The user's groups as a login gets them (initgroups), the new one among them.
    let login_groups = std::process::Command::new("id")
        .args(["-G", JOB_USER])
        .output()
        .unwrap();
    let login_groups = gids(&String::from_utf8(login_groups.stdout).unwrap());
    assert!(login_groups.contains(&extra_gid), "{login_groups:?}");
    let dir = tempfile::tempdir().unwrap();
    // The job user must reach the data dir inside the test's (root's) temp dir.
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let data = dir.path().join("hoist-data");
    repository(
        dir.path(),
        &format!(
            r#"  {{ name = "who", run = "echo uid=$(id -u) gid=$(id -g) home=$HOME user=$USER; echo pgid=$(cut -d' ' -f5 /proc/$$/stat); echo groups=$(id -G)" }},
  {{ name = "secrets", run = "if env | grep -q -e webhook-value-123 -e pg-password-456; then echo leaked; else echo no-server-secrets; fi" }},
  {{ name = "store", run = "if cat {data}/hoist.db >/dev/null 2>&1; then echo read-the-store; else echo store-closed; fi; if ls {data} >/dev/null 2>&1; then echo listed-the-data-dir; else echo data-dir-closed; fi; touch $HOME/.cache-probe-$$ 2>/dev/null; echo wrote > {data}/runs/mine 2>/dev/null || echo runs-closed" }},
"#,
            data = data.display()
        ),
    );
    let origin = dir.path().join("origin.git");
    let (port, token, server) = serve(
        dir.path(),
        &format!(
            "max_concurrent_runs = 1\nshutdown_grace = \"5s\"\n\n[runner]\nuser = \"{JOB_USER}\"\n\n[[project]]\nname = \"app\"\nrepository = \"{}\"\nsecret_env = \"HOIST_TEST_JOBS_SECRET\"\n",
            origin.display()
        ),
        &[
            ("HOIST_TEST_JOBS_SECRET", "webhook-value-123"),
            ("PGPASSWORD", "pg-password-456"),
        ],
    );
    let run = trigger(port, &token);
    wait_for("the run to finish", Duration::from_secs(120), || {
        !matches!(status_of(port, &token, run).as_str(), "queued" | "running")
    });
    let log = log_lines(port, &token, run);
    assert_eq!(status_of(port, &token, run), "passed", "{log:#?}");
    let has = |line: &str| log.iter().any(|l| l == line);
    assert!(
        has(&format!(
            "uid={uid} gid={uid} home=/home/{JOB_USER} user={JOB_USER}"
        )),
        "{log:#?}"
    );
    // Its supplementary groups too, as a login or `sudo -u` has them, and none of root's.
    let job_groups = log.iter().find_map(|l| l.strip_prefix("groups=")).unwrap();
    assert_eq!(gids(job_groups), login_groups, "{log:#?}");
    let pgid: u32 = log
        .iter()
        .find_map(|l| l.strip_prefix("pgid="))
        .unwrap()
        .parse()
        .unwrap();
    assert_ne!(pgid, server.id(), "the step has a process group of its own");
    assert!(has("no-server-secrets"), "{log:#?}");
    assert!(has("store-closed"), "{log:#?}");
    assert!(has("data-dir-closed"), "{log:#?}");
    assert!(has("runs-closed"), "{log:#?}");
    // What the run wrote is the job user's; the store is the server's alone.
    let owner = |p: &Path| std::fs::metadata(p).unwrap().uid();
    let run_dir = data.join("runs").join(run.to_string());
    assert_eq!(owner(&run_dir.join("src/hoist.toml")), uid);
    assert_eq!(owner(&run_dir.join("ci")), uid);
    assert_eq!(owner(&data.join("cache")), uid);
    assert_eq!(owner(&data.join("hoist.db")), 0);
    let mode = std::fs::metadata(data.join("hoist.db")).unwrap().mode() & 0o777;
    assert_eq!(mode, 0o600);
    drop(server);
}

#[test]
fn jobs_never_run_as_root_unless_told_and_the_runner_user_must_exist() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("hoist-server.toml");
    let refused = |text: &str| {
        std::fs::write(&config, text).unwrap();
        let out = hoist(&config).output().unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    // This machine's tests run as root: with no [runner] user the jobs would too.
    assert_eq!(
        refused("listen = \"127.0.0.1:0\"\n"),
        (Some(2), "error: hoist serve runs pipelines (the repositories' own code) and refuses to run them as root\nhint: set [runner] user = \"NAME\" in hoist-server.toml (an unprivileged user the jobs run as; the server, as root, switches to it), run the server as an unprivileged user, or set allow_root = true if this machine is only for it\n".to_string())
    );
    assert_eq!(
        refused("listen = \"127.0.0.1:0\"\n[runner]\nuser = \"root\"\n").1,
        refused("listen = \"127.0.0.1:0\"\n").1,
        "naming root is no way around allow_root"
    );
    assert_eq!(
        refused("listen = \"127.0.0.1:0\"\n[runner]\nuser = \"hoist-no-such-user\"\n"),
        (Some(2), "error: [runner] user \"hoist-no-such-user\": there is no user \"hoist-no-such-user\" on this machine\nhint: create the user (`useradd --system --create-home hoist-ci`) and start hoist serve as root, which switches to it for every job; or remove [runner] user to run jobs as the server's own user\n".to_string())
    );
    assert_eq!(
        refused("[runner]\nuser = \"ci; rm\"\n"),
        (
            Some(2),
            format!("error: {}:2:8: [runner] user \"ci; rm\" is not a user name\nhint: the name of an unprivileged account on this machine, e.g. user = \"hoist-ci\"\n", config.display())
        )
    );
}

/// A GitLab push of `commit` to master (GitLab authenticates with the secret itself).
fn push_hook(port: u16, delivery: &str, commit: &str) -> serde_json::Value {
    let body = format!(
        "{{\"object_kind\":\"push\",\"ref\":\"refs/heads/master\",\"checkout_sha\":\"{commit}\",\"user_name\":\"Ada\"}}"
    );
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    std::io::Write::write_all(
        &mut stream,
        format!(
            "POST /hooks/app HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nContent-Type: application/json\r\nX-Gitlab-Event: Push Hook\r\nX-Gitlab-Token: hook-secret\r\nX-Gitlab-Event-UUID: {delivery}\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .as_bytes(),
    )
    .unwrap();
    let mut answer = String::new();
    std::io::Read::read_to_string(&mut stream, &mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 202"), "{answer}");
    json(answer.split_once("\r\n\r\n").unwrap().1)
}

fn head(repo: &Path) -> String {
    let out = std::process::Command::new("git")
        .args(["rev-parse", "HEAD"])
        .current_dir(repo)
        .output()
        .unwrap();
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

#[test]
fn with_auto_cancel_running_a_newer_push_cancels_the_running_run_and_its_steps_and_services_go() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let work = dir.path().join("work");
    std::fs::create_dir(&work).unwrap();
    std::fs::write(
        work.join("hoist.toml"),
        "[pipeline.jobs.test]\nservices.postgres = {}\nsteps = [\"checkout\", { name = \"slow\", run = \"echo started; sleep 3131\" }]\n",
    )
    .unwrap();
    sh(
        &work,
        "git init -q -b master . && git add -A && git commit -qm slow && git init -q --bare ../origin.git && git remote add origin ../origin.git && git push -q origin master",
    );
    let (port, token, server) = serve(
        dir.path(),
        &format!(
            "max_concurrent_runs = 1\nshutdown_grace = \"5s\"\n\n[runner]\nuser = \"{JOB_USER}\"\n\n[[project]]\nname = \"app\"\nrepository = \"{}\"\nsecret_file = \"secret\"\nauto_cancel_running = true\n",
            dir.path().join("origin.git").display()
        ),
        &[],
    );
    let slow = push_hook(port, "delivery-1", &head(&work))["run"]
        .as_i64()
        .unwrap();
    wait_for("the slow step to start", Duration::from_secs(120), || {
        log_lines(port, &token, slow).iter().any(|l| l == "started")
    });
    let running = server.processes();
    assert!(
        running.len() > 3,
        "the server, the job, its step and postgres run: {running:?}"
    );

    std::fs::write(
        work.join("hoist.toml"),
        "[pipeline.jobs.test]\nsteps = [\"checkout\", { name = \"quick\", run = \"echo quick\" }]\n",
    )
    .unwrap();
    sh(&work, "git commit -qam quick && git push -q origin master");
    let answer = push_hook(port, "delivery-2", &head(&work));
    let quick = answer["run"].as_i64().unwrap();
    assert_eq!(answer["cancelled"], serde_json::json!([slow]));
    wait_for("the newer run to pass", Duration::from_secs(120), || {
        status_of(port, &token, quick) == "passed"
    });
    let (_, body) = http(port, "GET", &format!("/api/runs/{slow}"), &token, "");
    let run = json(&body);
    assert_eq!(run["status"], "cancelled", "{run:#}");
    assert_eq!(
        run["cancelled_by"],
        format!("superseded by run {quick}"),
        "{run:#}"
    );
    // One run at a time: the newer one started once the cancelled one had stopped everything.
    assert_eq!(
        server.processes(),
        vec![server.id()],
        "only the server is left: no sleep, no postgres"
    );
}

#[test]
fn a_job_cancels_itself_when_its_server_is_killed() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    repository(
        dir.path(),
        "  { name = \"slow\", run = \"echo started; sleep 3132\" },\n",
    );
    let (port, token, mut server) = serve(
        dir.path(),
        &format!(
            "max_concurrent_runs = 1\n\n[runner]\nuser = \"{JOB_USER}\"\n\n[[project]]\nname = \"app\"\nrepository = \"{}\"\nsecret_file = \"secret\"\n",
            dir.path().join("origin.git").display()
        ),
        &[],
    );
    let run = trigger(port, &token);
    wait_for("the slow step to start", Duration::from_secs(120), || {
        log_lines(port, &token, run).iter().any(|l| l == "started")
    });
    assert!(server.processes().len() >= 3, "{:?}", server.processes());
    sh(dir.path(), &format!("kill -9 {}", server.id()));
    // No restart: the job saw its stdin close and stopped its step.
    wait_for(
        "the job and its step to stop",
        Duration::from_secs(20),
        || {
            let _ = server.try_wait();
            server.processes().is_empty()
        },
    );
}

#[test]
fn a_runs_deploy_step_deploys_as_the_runner_user_and_its_app_answers() {
    let uid = uid_of(JOB_USER);
    // The example app to a local root the job user owns, its environment built by Debian's
    // python3 with pip: the tests' uv and Python live under /root, out of the user's reach.
    let site = hoist_testkit::SiteBuilder::new()
        .prefix("hoist-serve-deploy-")
        .installer("pip")
        .app_extra("python = \"/usr/bin/python3\"")
        .requirements()
        .exclude("requirements-dev.txt")
        .shared("instance/settings.toml")
        .restart_timeout("60s")
        .health_timeout("30s")
        .extra("\n[pipeline.jobs.ship]\nsteps = [{ deploy = true }]\n")
        .build();
    let dir = site.dir.path();
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    let root = site.roots[0].clone();
    std::fs::create_dir_all(&root).unwrap();
    sh(dir, &format!("chown {JOB_USER}: {}", root.display()));
    sh(
        &site.project,
        "git init -q -b master . && git add -A && git -c user.name=Test -c user.email=test@example.invalid commit -qm deploy",
    );
    let commit = head(&site.project);
    let config = format!(
        "max_concurrent_runs = 1\nshutdown_grace = \"5s\"\n\n[runner]\nuser = \"{JOB_USER}\"\n\n[[project]]\nname = \"app\"\nrepository = \"{}\"\nsecret_file = \"secret\"\ndeploy_branches = [\"master\"]\n",
        site.project.display()
    );
    let (port, token, mut server) = serve(dir, &config, &[]);

    let run = push_hook(port, "delivery-deploy", &commit)["run"]
        .as_i64()
        .unwrap();
    wait_for("the run to finish", Duration::from_secs(300), || {
        !matches!(status_of(port, &token, run).as_str(), "queued" | "running")
    });
    let log = log_lines(port, &token, run);
    assert_eq!(status_of(port, &token, run), "passed", "{log:#?}");

    // The run's per-host outcome names the release that is live.
    let (_, body) = http(port, "GET", &format!("/api/runs/{run}"), &token, "");
    let detail = json(&body);
    let deployments = detail["deployments"].as_array().unwrap();
    assert_eq!(deployments.len(), 1, "{detail:#}");
    let d = &deployments[0];
    assert_eq!(
        (&d["host"], &d["outcome"]),
        (&"local".into(), &"live".into()),
        "{detail:#}"
    );
    let release = d["release"].as_str().unwrap().to_string();
    assert!(
        log.contains(&format!("deploy to local: local: live ({release})")),
        "{log:#?}"
    );

    // `current` points at the release of the pushed commit, and the app serves it.
    let current = std::fs::read_link(root.join("current")).unwrap();
    assert_eq!(
        current.file_name().unwrap().to_str(),
        Some(release.as_str())
    );
    let release_dir = root.join("releases").join(&release);
    let manifest = json(&std::fs::read_to_string(release_dir.join("RELEASE.json")).unwrap());
    assert_eq!(manifest["commit"], commit.as_str(), "{manifest:#}");
    let app_port = site.ports[0];
    let version = crate::support::http_get(app_port, "/version").expect("the app answers");
    assert_eq!(json(&version)["release"], release.as_str(), "{version}");

    // Everything the deploy wrote is the job user's, and so is the app server.
    let env = std::fs::canonicalize(release_dir.join(".venv")).unwrap();
    let built = std::fs::read_to_string(env.join(".hoist-complete")).unwrap();
    assert!(
        built.contains("\"executable\": \"/usr/bin/python3\""),
        "{built}"
    );
    for path in [
        release_dir.clone(),
        release_dir.join("RELEASE.json"),
        release_dir.join("app.py"),
        env.clone(),
        root.join("current"),
        root.join(".hoist/journal.jsonl"),
    ] {
        let meta = std::fs::symlink_metadata(&path).unwrap();
        assert_eq!(meta.uid(), uid, "owner of {}", path.display());
    }
    let pid: u32 = std::fs::read_to_string(root.join("shared/run/gunicorn.pid"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert_eq!(
        std::fs::metadata(format!("/proc/{pid}")).unwrap().uid(),
        uid,
        "the app server's user"
    );

    // The app is not the run's: a restart of hoist serve, which stops whatever a server that
    // is gone left behind, leaves it serving.
    sh(dir, &format!("kill -TERM {}", server.id()));
    wait_for("hoist serve to stop", Duration::from_secs(30), || {
        server.try_wait().is_some()
    });
    let restarted = start_server(dir, &dir.join("hoist-server.toml"), &[]);
    let version = crate::support::http_get(app_port, "/version").expect("the app still answers");
    assert_eq!(json(&version)["release"], release.as_str(), "{version}");
    assert!(
        Path::new(&format!("/proc/{pid}")).exists(),
        "the same app server"
    );
    drop(restarted);
    // The app server carries the first server's test mark: dropping its guard stops it.
    drop(server);
}
