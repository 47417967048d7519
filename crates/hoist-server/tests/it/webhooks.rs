//! `POST /hooks/<project>` as a forge and a forger see it.

use hoist_store::{RunQuery, TriggerKind};

use crate::support::*;

const C1: &str = "1111111111111111111111111111111111111111";
const C2: &str = "2222222222222222222222222222222222222222";

async fn server() -> (Repo, TestServer) {
    let repo = Repo::new(&pipeline("true"));
    // Only master is built, so that the filter's 204 can be seen; runs of commits the
    // repository does not have fail quickly in the runner, which these tests do not look at.
    let server =
        TestServer::start(&repo.path(), "branches = [\"master\", \"release/*\"]", "").await;
    (repo, server)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_signed_push_is_stored_before_its_202_and_runs_the_head_commit() {
    let (_repo, mut server) = server().await;
    let body = github_push(
        "master",
        &[(C1, "first change"), (C2, "second change\n\nbody")],
    );
    let answer = post_github(server.addr(), "push", "d-1", SECRET, &body).await;
    assert_eq!(answer.status, 202, "{}", answer.body);
    let json = answer.json();
    let id = json["run"].as_i64().unwrap();
    assert_eq!(
        json["url"],
        format!("http://{}/api/runs/{id}", server.addr())
    );
    let run = server
        .store()
        .run(id)
        .await
        .unwrap()
        .expect("the run is in the store");
    assert_eq!(run.commit, C2);
    assert_eq!(run.branch, "master");
    assert_eq!(run.message, "second change\n\nbody");
    assert_eq!(run.author, "ada");
    assert_eq!(run.trigger.kind, TriggerKind::Webhook);
    assert_eq!(run.trigger.by, "ada");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_redelivery_answers_the_first_run_and_starts_nothing() {
    let (_repo, mut server) = server().await;
    let body = github_push("master", &[(C1, "change")]);
    let first = post_github(server.addr(), "push", "same-id", SECRET, &body).await;
    assert_eq!(first.status, 202);
    let again = post_github(server.addr(), "push", "same-id", SECRET, &body).await;
    assert_eq!(again.status, 200, "{}", again.body);
    assert_eq!(again.json()["run"], first.json()["run"]);
    assert_eq!(again.json()["duplicate"], true);
    let runs = server.store().runs(&RunQuery::default()).await.unwrap();
    assert_eq!(runs.len(), 1);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn forgeries_are_refused_with_401_and_store_nothing() {
    let (_repo, mut server) = server().await;
    let addr = server.addr();
    let body = github_push("master", &[(C1, "change")]);
    let wrong = post_github(addr, "push", "f-1", "not-the-secret", &body).await;
    assert_eq!(wrong.status, 401);
    assert_eq!(
        wrong.json()["error"],
        "the signature does not match this project's webhook secret"
    );
    // The signature of the whole body, sent with a body cut short (its length consistent).
    let signature = github_signature(SECRET, &body);
    let cut = &body[..body.len() - 20];
    let truncated = request(
        addr,
        "POST",
        "/hooks/app",
        &[
            ("Content-Type", "application/json".into()),
            ("X-GitHub-Event", "push".into()),
            ("X-GitHub-Delivery", "f-2".into()),
            ("X-Hub-Signature-256", signature.clone()),
        ],
        cut,
        None,
    )
    .await;
    assert_eq!(truncated.status, 401);
    let unsigned = request(
        addr,
        "POST",
        "/hooks/app",
        &[
            ("Content-Type", "application/json".into()),
            ("X-GitHub-Event", "push".into()),
            ("X-GitHub-Delivery", "f-3".into()),
        ],
        &body,
        None,
    )
    .await;
    assert_eq!(unsigned.status, 401);
    assert_eq!(
        unsigned.json()["error"],
        "the delivery is not signed (X-Hub-Signature-256 is missing)"
    );
    let not_hex = request(
        addr,
        "POST",
        "/hooks/app",
        &[
            ("Content-Type", "application/json".into()),
            ("X-GitHub-Event", "push".into()),
            ("X-GitHub-Delivery", "f-4".into()),
            ("X-Hub-Signature-256", "sha256=zz".into()),
        ],
        &body,
        None,
    )
    .await;
    assert_eq!(not_hex.status, 401);
    assert!(server
        .store()
        .runs(&RunQuery::default())
        .await
        .unwrap()
        .is_empty());
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_body_cut_off_in_transit_is_a_400_and_an_oversized_one_a_413() {
    let (_repo, mut server) = server().await;
    let addr = server.addr();
    let body = github_push("master", &[(C1, "change")]);
    let headers = [
        ("Content-Type", "application/json".to_string()),
        ("X-GitHub-Event", "push".into()),
        ("X-GitHub-Delivery", "t-1".into()),
        ("X-Hub-Signature-256", github_signature(SECRET, &body)),
    ];
    // Announces the whole body, sends half of it, closes.
    let cut = request(
        addr,
        "POST",
        "/hooks/app",
        &headers,
        &body[..body.len() / 2],
        Some(body.len()),
    )
    .await;
    assert_eq!(cut.status, 400, "{}", cut.body);
    let huge = vec![b' '; 26 * 1024 * 1024];
    let big = request(addr, "POST", "/hooks/app", &headers, &huge, None).await;
    assert_eq!(big.status, 413, "{}", big.body);
    assert_eq!(big.json()["error"], "the body is over 25 MiB");
    assert!(server
        .store()
        .runs(&RunQuery::default())
        .await
        .unwrap()
        .is_empty());
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn every_other_answer_of_the_hook() {
    let (_repo, mut server) = server().await;
    let addr = server.addr();
    let body = github_push("master", &[(C1, "change")]);

    let unknown = request(
        addr,
        "POST",
        "/hooks/nope",
        &[("Content-Type", "application/json".into())],
        &body,
        None,
    )
    .await;
    assert_eq!(unknown.status, 404);
    assert_eq!(unknown.json()["error"], "no project named \"nope\"");

    let text = request(
        addr,
        "POST",
        "/hooks/app",
        &[
            ("Content-Type", "text/plain".into()),
            ("X-GitHub-Event", "push".into()),
        ],
        &body,
        None,
    )
    .await;
    assert_eq!(text.status, 415);

    let ping = post_github(
        addr,
        "ping",
        "p-1",
        SECRET,
        br#"{"zen":"Keep it logically awesome."}"#,
    )
    .await;
    assert_eq!(ping.status, 200);

    let garbage = post_github(addr, "push", "g-1", SECRET, b"{not json").await;
    assert_eq!(garbage.status, 400);
    assert!(garbage.json()["error"]
        .as_str()
        .unwrap()
        .starts_with("unparseable payload: "));

    let no_forge = request(
        addr,
        "POST",
        "/hooks/app",
        &[("Content-Type", "application/json".into())],
        &body,
        None,
    )
    .await;
    assert_eq!(no_forge.status, 400);

    let other_branch = post_github(
        addr,
        "push",
        "b-1",
        SECRET,
        &github_push("feature", &[(C1, "x")]),
    )
    .await;
    assert_eq!(other_branch.status, 204);
    assert_eq!(
        other_branch.header("hoist-reason"),
        Some("branch feature is not built (branches = [\"master\", \"release/*\"])")
    );

    let mut deleted = github_push("master", &[]);
    deleted = String::from_utf8(deleted)
        .unwrap()
        .replace("\"deleted\":false", "\"deleted\":true")
        .into_bytes();
    let gone = post_github(addr, "push", "b-2", SECRET, &deleted).await;
    assert_eq!(gone.status, 204);
    assert_eq!(
        gone.header("hoist-reason"),
        Some("branch master was deleted")
    );

    let tag = br#"{"ref":"refs/tags/v1.0","after":"1111111111111111111111111111111111111111"}"#;
    let tagged = post_github(addr, "push", "b-3", SECRET, tag).await;
    assert_eq!(tagged.status, 204);
    assert_eq!(
        tagged.header("hoist-reason"),
        Some("tag v1.0: tag pushes start no run")
    );

    let issue = post_github(addr, "issues", "b-4", SECRET, b"{}").await;
    assert_eq!(issue.status, 204);
    assert_eq!(
        issue.header("hoist-reason"),
        Some("event \"issues\" starts no run")
    );

    assert!(server
        .store()
        .runs(&RunQuery::default())
        .await
        .unwrap()
        .is_empty());
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn gitea_gitlab_and_github_form_deliveries_are_recognised() {
    let (_repo, mut server) = server().await;
    let addr = server.addr();
    let body = github_push("release/2", &[(C1, "change")]);

    let gitea = request(
        addr,
        "POST",
        "/hooks/app",
        &[
            ("Content-Type", "application/json".into()),
            ("X-Gitea-Event", "push".into()),
            ("X-Gitea-Delivery", "gt-1".into()),
            ("X-Gitea-Signature", hmac_hex(SECRET, &body)),
        ],
        &body,
        None,
    )
    .await;
    assert_eq!(gitea.status, 202, "{}", gitea.body);
    let forged_gitea = request(
        addr,
        "POST",
        "/hooks/app",
        &[
            ("Content-Type", "application/json".into()),
            ("X-Gitea-Event", "push".into()),
            ("X-Gitea-Delivery", "gt-2".into()),
            ("X-Gitea-Signature", hmac_hex("wrong", &body)),
        ],
        &body,
        None,
    )
    .await;
    assert_eq!(forged_gitea.status, 401);

    let gitlab_body = serde_json::to_vec(&serde_json::json!({
        "object_kind": "push",
        "ref": "refs/heads/master",
        "before": C1,
        "after": C2,
        "checkout_sha": C2,
        "user_name": "Ada Lovelace",
        "user_username": "ada",
        "commits": [
            { "id": C2, "message": "newest\n", "author": { "name": "Ada" } },
            { "id": C1, "message": "older\n", "author": { "name": "Ada" } }
        ]
    }))
    .unwrap();
    let gitlab = |token: &str, uuid: &str| {
        let headers = vec![
            ("Content-Type", "application/json".to_string()),
            ("X-Gitlab-Event", "Push Hook".to_string()),
            ("X-Gitlab-Event-UUID", uuid.to_string()),
            ("X-Gitlab-Token", token.to_string()),
        ];
        let body = gitlab_body.clone();
        async move { request(addr, "POST", "/hooks/app", &headers, &body, None).await }
    };
    let accepted = gitlab(SECRET, "gl-1").await;
    assert_eq!(accepted.status, 202, "{}", accepted.body);
    let run = server
        .store()
        .run(accepted.json()["run"].as_i64().unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (
            run.commit.as_str(),
            run.message.as_str(),
            run.trigger.by.as_str()
        ),
        (C2, "newest", "ada")
    );
    assert_eq!(gitlab("s3cret-for-test", "gl-2").await.status, 401);

    let form: String = form_encode(&body);
    let form_answer = request(
        addr,
        "POST",
        "/hooks/app",
        &[
            ("Content-Type", "application/x-www-form-urlencoded".into()),
            ("X-GitHub-Event", "push".into()),
            ("X-GitHub-Delivery", "gh-form".into()),
            (
                "X-Hub-Signature-256",
                github_signature(SECRET, form.as_bytes()),
            ),
        ],
        form.as_bytes(),
        None,
    )
    .await;
    assert_eq!(form_answer.status, 202, "{}", form_answer.body);
    server.stop().await;
}

fn form_encode(json: &[u8]) -> String {
    let mut out = String::from("payload=");
    for b in json {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'*' => {
                out.push(*b as char)
            }
            b' ' => out.push('+'),
            other => out.push_str(&format!("%{other:02X}")),
        }
    }
    out
}
