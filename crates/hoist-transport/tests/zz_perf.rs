use hoist_testkit::SshServer;
use hoist_transport::{Cmd, Ssh, SshTarget, Transport};
use std::time::{Duration, Instant};

fn med(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

#[test]
fn perf() {
    let server = SshServer::start();
    let mut target = SshTarget::new("web1", "web1");
    target.config_file = Some(server.client_config.clone());
    target.connect_timeout = Duration::from_secs(5);
    let t0 = Instant::now();
    let ssh = Ssh::connect(&target).unwrap();
    eprintln!("connect {:?}", t0.elapsed());
    let t0 = Instant::now();
    ssh.exec(&Cmd::new("true")).unwrap();
    eprintln!("first (shell start) {:?}", t0.elapsed());
    let o = ssh
        .exec(&Cmd::new("timeout").arg("60s").arg("bash").arg("-c").arg(
            "echo SHLVL=$SHLVL; type pyenv | head -1; ls -l /proc/self/fd/0; echo $SSH_CLIENT",
        ))
        .unwrap();
    eprintln!("{}", o.stdout_text());
    let cases: Vec<(&str, Cmd, bool)> = vec![
        ("true", Cmd::new("true"), false),
        ("true live", Cmd::new("true"), true),
        (
            "timeout bash true",
            Cmd::new("timeout")
                .arg("60s")
                .arg("bash")
                .arg("-eo")
                .arg("pipefail")
                .arg("-c")
                .arg("true"),
            false,
        ),
        (
            "timeout bash true live",
            Cmd::new("timeout")
                .arg("60s")
                .arg("bash")
                .arg("-eo")
                .arg("pipefail")
                .arg("-c")
                .arg("true"),
            true,
        ),
        ("stdin", Cmd::new("cat").stdin(vec![b'x'; 100]), false),
    ];
    for (name, cmd, live) in cases {
        let mut v = vec![];
        for _ in 0..30 {
            let t = Instant::now();
            let sink = |_s: hoist_transport::Stream, _l: &str| {};
            if live {
                ssh.exec_streaming(&cmd, &sink).unwrap();
            } else {
                ssh.exec(&cmd).unwrap();
            }
            v.push(t.elapsed().as_secs_f64() * 1000.0);
        }
        eprintln!(
            "{name:28} median {:.2} ms  min {:.2}",
            med(v.clone()),
            v.iter().cloned().fold(f64::MAX, f64::min)
        );
    }
}
