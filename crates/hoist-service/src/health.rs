use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

use hoist_config::{Health, HealthProbe};
use hoist_transport::{Cmd, Transport};

use crate::ServiceError;

/// How a passing health check went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthReport {
    pub attempts: u32,
    pub waited: Duration,
}

/// An HTTP answer: status and body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpAnswer {
    pub status: u16,
    pub body: String,
}

/// Server errors answered in a row, over at least [`CONFIRM_SPAN`], that end the wait early.
pub const CONFIRM_ANSWERS: u32 = 3;

/// The shortest time over which [`CONFIRM_ANSWERS`] server errors are final: long enough not
/// to fail on a worker that errs once while it starts, short enough that users are not served
/// errors for the whole timeout.
pub const CONFIRM_SPAN: Duration = Duration::from_secs(1);

/// Polls the health probe until it passes or `health.timeout` is spent (invariant 8).
/// HTTP probes are made from this machine; command probes run on the host.
///
/// An app that is not there yet (connection refused, a proxy's 502/504, a failing command) is
/// waited for until the timeout. An app that answers with a server error (any other 5xx, e.g.
/// the 500 of a broken view or the 503 of hoist's loader when the release failed to load) has
/// answered: the error is final once [`CONFIRM_ANSWERS`] answers in a row over at least
/// [`CONFIRM_SPAN`] were server errors.
///
/// `interrupted` is asked between attempts (and every 100 ms of a pause): when it answers
/// true the wait ends with [`ServiceError::Interrupted`], so that Ctrl-C is honoured however
/// long the timeout. One attempt takes at most [`MAX_ATTEMPT`].
pub fn wait_healthy(
    transport: &dyn Transport,
    health: &Health,
    env: &[(String, String)],
    interrupted: &dyn Fn() -> bool,
) -> Result<HealthReport, ServiceError> {
    wait_healthy_reporting(transport, health, env, interrupted, &|_, _| {})
}

/// [`wait_healthy`], telling `on_attempt` the number and finding of every attempt that did not
/// pass, as it happens: a slow start shows what the probe gets meanwhile.
pub fn wait_healthy_reporting(
    transport: &dyn Transport,
    health: &Health,
    env: &[(String, String)],
    interrupted: &dyn Fn() -> bool,
    on_attempt: &dyn Fn(u32, &str),
) -> Result<HealthReport, ServiceError> {
    let start = Instant::now();
    let mut attempts = 0;
    let mut errors = ServerErrors::default();
    let stopped = |attempts| ServiceError::Interrupted {
        host: transport.host().to_string(),
        attempts,
        waited: start.elapsed(),
    };
    loop {
        if interrupted() {
            return Err(stopped(attempts));
        }
        attempts += 1;
        let remaining = health.timeout.saturating_sub(start.elapsed());
        let verdict = probe_once(
            transport,
            &health.probe,
            env,
            remaining.clamp(Duration::from_millis(100), MAX_ATTEMPT),
        );
        let last = match verdict {
            Probe::Pass => {
                return Ok(HealthReport {
                    attempts,
                    waited: start.elapsed(),
                })
            }
            Probe::NotYet(last) => {
                errors = ServerErrors::default();
                last
            }
            Probe::ServerError(last) => {
                if errors.record(Instant::now()) {
                    return Err(ServiceError::Unhealthy {
                        host: transport.host().to_string(),
                        attempts,
                        waited: start.elapsed(),
                        last: format!(
                            "{last}; {} server errors in a row over {:.1}s are final, not waited out",
                            errors.count,
                            errors.span(Instant::now()).as_secs_f64()
                        ),
                    });
                }
                last
            }
        };
        on_attempt(attempts, &last);
        if start.elapsed() + health.interval >= health.timeout {
            return Err(ServiceError::Unhealthy {
                host: transport.host().to_string(),
                attempts,
                waited: start.elapsed(),
                last,
            });
        }
        let pause = if errors.count > 0 {
            // Confirming a server error: no need to wait a long interval for each answer.
            health.interval.min(CONFIRM_SPAN / 2)
        } else {
            health.interval
        };
        let resume = Instant::now() + pause;
        while Instant::now() < resume {
            if interrupted() {
                return Err(stopped(attempts));
            }
            std::thread::sleep((resume - Instant::now()).min(Duration::from_millis(100)));
        }
    }
}

/// The longest one health attempt may take, whatever the timeout: a probe that hangs is
/// tried again rather than waited on for the whole timeout (and Ctrl-C is seen between).
pub const MAX_ATTEMPT: Duration = Duration::from_secs(30);

/// What one attempt found.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Probe {
    Pass,
    /// Nothing (or only a proxy) answered, or the answer was not the expected one: wait.
    NotYet(String),
    /// The app answered with a server error.
    ServerError(String),
}

/// Server errors answered in a row, since the first of them.
#[derive(Debug, Default)]
struct ServerErrors {
    count: u32,
    first: Option<Instant>,
}

impl ServerErrors {
    /// Records one server error at `now`; true when the errors are final.
    fn record(&mut self, now: Instant) -> bool {
        self.count += 1;
        let first = *self.first.get_or_insert(now);
        self.count >= CONFIRM_ANSWERS && now.duration_since(first) >= CONFIRM_SPAN
    }

    /// Time since the first of them.
    fn span(&self, now: Instant) -> Duration {
        self.first
            .map_or(Duration::ZERO, |first| now.duration_since(first))
    }
}

/// True for a status that is the app's own server error. 502 and 504 are a proxy saying the
/// app does not answer (yet), which is waited for like a refused connection.
fn is_server_error(status: u16) -> bool {
    (500..600).contains(&status) && status != 502 && status != 504
}

fn probe_once(
    transport: &dyn Transport,
    probe: &HealthProbe,
    env: &[(String, String)],
    budget: Duration,
) -> Probe {
    match probe {
        HealthProbe::Http { url, status, body } => {
            let answer = match http_get(url, budget.min(Duration::from_secs(5))) {
                Ok(answer) => answer,
                Err(e) => return Probe::NotYet(e),
            };
            if answer.status != *status {
                let last = format!("{url} answered {} (expected {status})", answer.status);
                return if is_server_error(answer.status) {
                    Probe::ServerError(last)
                } else {
                    Probe::NotYet(last)
                };
            }
            if let Some(want) = body {
                if !answer.body.contains(want.as_str()) {
                    return Probe::NotYet(format!("{url} answered without {want:?} in its body"));
                }
            }
            Probe::Pass
        }
        HealthProbe::Command { command } => {
            let secs = budget.as_secs().clamp(1, 30);
            let mut cmd = Cmd::new("timeout")
                .arg(format!("{secs}s"))
                .args(["bash", "-eo", "pipefail", "-c"])
                .arg(command.clone());
            for (k, v) in env {
                cmd = cmd.env(k.clone(), v.clone());
            }
            match transport.exec(&cmd) {
                Err(e) => Probe::NotYet(e.to_string()),
                Ok(out) if out.success() => Probe::Pass,
                Ok(out) => Probe::NotYet(format!(
                    "`{command}` exited {}: {}",
                    out.status,
                    out.tail(3)
                )),
            }
        }
    }
}

/// A plain HTTP/1.1 GET of an `http://` URL, for health checks against loopback services.
pub fn http_get(url: &str, timeout: Duration) -> Result<HttpAnswer, String> {
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| format!("{url}: only http:// URLs can be checked"))?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let with_port = if authority.contains(':') {
        authority.to_string()
    } else {
        format!("{authority}:80")
    };
    let addr = with_port
        .to_socket_addrs()
        .map_err(|e| format!("{url}: cannot resolve {authority}: {e}"))?
        .next()
        .ok_or_else(|| format!("{url}: {authority} has no address"))?;
    let mut stream = TcpStream::connect_timeout(&addr, timeout)
        .map_err(|e| format!("{url}: connection failed: {e}"))?;
    stream.set_read_timeout(Some(timeout)).ok();
    stream.set_write_timeout(Some(timeout)).ok();
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {authority}\r\nUser-Agent: hoist\r\nConnection: close\r\n\r\n"
    );
    stream
        .write_all(request.as_bytes())
        .map_err(|e| format!("{url}: sending the request failed: {e}"))?;
    let mut raw = Vec::new();
    stream
        .read_to_end(&mut raw)
        .map_err(|e| format!("{url}: reading the answer failed: {e}"))?;
    let text = String::from_utf8_lossy(&raw);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .lines()
        .next()
        .and_then(|line| line.split_whitespace().nth(1))
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| format!("{url}: not an HTTP answer"))?;
    let chunked = head.lines().any(|l| {
        l.to_ascii_lowercase()
            .starts_with("transfer-encoding: chunked")
    });
    let body = if chunked {
        dechunk(body)
    } else {
        body.to_string()
    };
    Ok(HttpAnswer { status, body })
}

fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let Ok(n) = usize::from_str_radix(size.trim(), 16) else {
            break;
        };
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        body = rest[n..].trim_start_matches("\r\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    fn serve_once(answer: &'static str) -> String {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        std::thread::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            let mut buf = [0u8; 1024];
            let _ = s.read(&mut buf);
            s.write_all(answer.as_bytes()).unwrap();
        });
        format!("http://127.0.0.1:{port}/health")
    }

    #[test]
    fn server_errors_are_final_after_three_answers_over_a_second() {
        let t0 = Instant::now();
        let mut errors = ServerErrors::default();
        assert!(!errors.record(t0));
        assert!(!errors.record(t0 + Duration::from_millis(100)));
        // Three answers, but in less than a second: a worker may err while it starts.
        assert!(!errors.record(t0 + Duration::from_millis(200)));
        assert!(errors.record(t0 + CONFIRM_SPAN));

        let mut slow = ServerErrors::default();
        assert!(!slow.record(t0));
        assert!(!slow.record(t0 + Duration::from_secs(5)));
        assert!(slow.record(t0 + Duration::from_secs(10)));
    }

    #[test]
    fn a_proxy_without_its_app_is_not_a_server_error() {
        for status in [500, 501, 503, 505, 599] {
            assert!(is_server_error(status), "{status}");
        }
        for status in [200, 404, 429, 502, 504] {
            assert!(!is_server_error(status), "{status}");
        }
    }

    #[test]
    fn reads_status_and_body() {
        let url = serve_once("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
        let a = http_get(&url, Duration::from_secs(2)).unwrap();
        assert_eq!(
            a,
            HttpAnswer {
                status: 200,
                body: "ok".into()
            }
        );
    }

    #[test]
    fn reads_chunked_body() {
        let url = serve_once(
            "HTTP/1.1 503 Unavailable\r\nTransfer-Encoding: chunked\r\n\r\n4\r\ndown\r\n0\r\n\r\n",
        );
        let a = http_get(&url, Duration::from_secs(2)).unwrap();
        assert_eq!(
            a,
            HttpAnswer {
                status: 503,
                body: "down".into()
            }
        );
    }

    #[test]
    fn refused_connection_is_an_error_naming_the_url() {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let url = format!("http://127.0.0.1:{port}/health");
        let err = http_get(&url, Duration::from_secs(1)).unwrap_err();
        assert!(
            err.starts_with(&format!("{url}: connection failed")),
            "{err}"
        );
    }
}
