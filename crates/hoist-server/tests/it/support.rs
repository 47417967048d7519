//! A server in a temp dir, a raw HTTP client, signed deliveries, a git repository to push to.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hmac::{Hmac, Mac};
use hoist_server::{config, RunningServer};
use hoist_store::{RunId, RunStatus, Store};
use sha2::Sha256;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

pub const SECRET: &str = "s3cret-for-tests";

/// A started server and the temp dir it lives in.
pub struct TestServer {
    _dir: tempfile::TempDir,
    pub server: Option<RunningServer>,
    pub config: hoist_server::ServerConfig,
}

impl TestServer {
    /// A server whose project `app` builds `repository`; `extra` is appended to its
    /// `[[project]]` table (or, before any table, to the top level when it starts with `!`).
    pub async fn start(repository: &Path, project_extra: &str, top_extra: &str) -> TestServer {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("secret"), format!("{SECRET}\n")).unwrap();
        let text = format!(
            r#"listen = "127.0.0.1:0"
allow_root = true
shutdown_grace = "5s"
{top_extra}

[[project]]
name = "app"
repository = "{}"
secret_file = "secret"
{project_extra}
"#,
            repository.display()
        );
        let path = dir.path().join("hoist-server.toml");
        std::fs::write(&path, &text).unwrap();
        let config = config::load(&path).unwrap();
        let server = hoist_server::start(config.clone()).await.unwrap();
        TestServer {
            _dir: dir,
            server: Some(server),
            config,
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.server.as_ref().unwrap().addr()
    }

    pub fn store(&self) -> Arc<dyn Store> {
        self.server.as_ref().unwrap().store()
    }

    /// Waits until run `id` has finished; returns its status.
    pub async fn wait_finished(&self, id: RunId, timeout: Duration) -> RunStatus {
        let store = self.store();
        let deadline = Instant::now() + timeout;
        loop {
            let run = store.run(id).await.unwrap().unwrap();
            if run.status.is_finished() {
                return run.status;
            }
            assert!(
                Instant::now() < deadline,
                "run {id} still {} after {timeout:?}",
                run.status
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits until run `id` is in `status`.
    pub async fn wait_status(&self, id: RunId, status: RunStatus, timeout: Duration) {
        let store = self.store();
        let deadline = Instant::now() + timeout;
        loop {
            let run = store.run(id).await.unwrap().unwrap();
            if run.status == status {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "run {id} is {} after {timeout:?}, not {status}",
                run.status
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The run's whole log, one string per line.
    pub async fn log(&self, id: RunId) -> Vec<String> {
        self.store()
            .log_after(id, 0, 10_000)
            .await
            .unwrap()
            .into_iter()
            .map(|l| l.text)
            .collect()
    }

    pub async fn stop(&mut self) {
        if let Some(server) = self.server.take() {
            server.shutdown(Duration::from_secs(5)).await.unwrap();
        }
    }
}

/// An HTTP answer.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Answer {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {}", self.body))
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Sends a raw HTTP/1.1 request: `content_length` (default: the body's) may lie, to send a
/// truncated body.
pub async fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, String)],
    body: &[u8],
    content_length: Option<usize>,
) -> Answer {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str(&format!(
        "Content-Length: {}\r\n\r\n",
        content_length.unwrap_or(body.len())
    ));
    stream.write_all(head.as_bytes()).await.unwrap();
    // The server may answer (413) before the whole body is sent: a write error then is fine.
    let _ = stream.write_all(body).await;
    if content_length.is_some_and(|n| n > body.len()) {
        // The rest of the announced body never comes: the connection ends here.
        let _ = stream.shutdown().await;
    }
    let mut raw = Vec::new();
    let _ = stream.read_to_end(&mut raw).await;
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no HTTP answer: {text:?}"));
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    Answer {
        status,
        headers,
        body: body.to_string(),
    }
}

/// `sha256=<hex>` of the body under `secret`, as GitHub signs.
pub fn github_signature(secret: &str, body: &[u8]) -> String {
    format!("sha256={}", hmac_hex(secret, body))
}

pub fn hmac_hex(secret: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

/// A GitHub push payload: `commits` oldest first, the last is the head.
pub fn github_push(branch: &str, commits: &[(&str, &str)]) -> Vec<u8> {
    let list: Vec<serde_json::Value> = commits
        .iter()
        .map(|(id, message)| {
            serde_json::json!({ "id": id, "message": message, "author": { "name": "Ada", "username": "ada" } })
        })
        .collect();
    let head = list.last().cloned().unwrap_or(serde_json::Value::Null);
    let after = commits
        .last()
        .map_or("0000000000000000000000000000000000000000", |c| c.0);
    serde_json::to_vec(&serde_json::json!({
        "ref": format!("refs/heads/{branch}"),
        "before": "0000000000000000000000000000000000000000",
        "after": after,
        "deleted": false,
        "commits": list,
        "head_commit": head,
        "pusher": { "name": "ada" },
    }))
    .unwrap()
}

/// Posts a GitHub delivery signed with `secret`.
pub async fn post_github(
    addr: SocketAddr,
    event: &str,
    delivery: &str,
    secret: &str,
    body: &[u8],
) -> Answer {
    request(
        addr,
        "POST",
        "/hooks/app",
        &[
            ("Content-Type", "application/json".into()),
            ("X-GitHub-Event", event.into()),
            ("X-GitHub-Delivery", delivery.into()),
            ("X-Hub-Signature-256", github_signature(secret, body)),
        ],
        body,
        None,
    )
    .await
}

/// A git repository with a hoist.toml, on branch master, in a temp dir.
pub struct Repo {
    pub dir: tempfile::TempDir,
}

impl Repo {
    pub fn new(hoist_toml: &str) -> Repo {
        let dir = tempfile::tempdir().unwrap();
        let repo = Repo { dir };
        repo.git(&["init", "-q", "-b", "master", "."]);
        std::fs::write(repo.path().join("hoist.toml"), hoist_toml).unwrap();
        repo.commit("first");
        repo
    }

    pub fn path(&self) -> PathBuf {
        self.dir.path().to_path_buf()
    }

    pub fn git(&self, args: &[&str]) -> String {
        let out = std::process::Command::new("git")
            .args(["-c", "user.name=Ada", "-c", "user.email=ada@example.com"])
            .args(args)
            .current_dir(self.dir.path())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "git {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// Commits everything with `message`; returns the commit id.
    pub fn commit(&self, message: &str) -> String {
        self.git(&["add", "-A"]);
        self.git(&["commit", "-q", "--allow-empty", "-m", message]);
        self.git(&["rev-parse", "HEAD"])
    }
}

/// A pipeline of one job whose one step runs `script`.
pub fn pipeline(script: &str) -> String {
    format!(
        "[pipeline.jobs.test]\nsteps = [\n  \"checkout\",\n  {{ run = '''{script}''', name = \"script\" }},\n]\n"
    )
}
