//! What `Transport::upload_tree` costs for a redeploy with one file changed, locally and over
//! SSH to a real sshd on 127.0.0.1 (hoist-testkit), on examples/flask-app and on a generated tree.
//!
//! `cargo run -p hoist-transport --example upload_bench -- [--runs N] [--files N]`
//!
//! Each run uploads the tree into a fresh release, edits one file (same size, same mtime, so
//! only its content says it changed), then times the upload of the next release with the first
//! as `link_dest`. Prints the median, min and max per tree and transport, and the same for the
//! alternative of plain `rsync -a --checksum --link-dest` (over the same SSH master).

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use hoist_testkit::SshServer;
use hoist_transport::{Local, Ssh, SshTarget, Transport};

fn main() {
    let mut runs = 5usize;
    let mut generated = 5000usize;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let value = args.next().and_then(|v| v.parse().ok());
        match (arg.as_str(), value) {
            ("--runs", Some(n)) => runs = n,
            ("--files", Some(n)) => generated = n,
            _ => {
                eprintln!("usage: upload_bench [--runs N] [--files N]");
                std::process::exit(2);
            }
        }
    }
    let work = tempfile::tempdir().expect("temp dir");
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/flask-app");
    let example_files = list(&example);
    let big = work.path().join("generated");
    let big_files = generate(&big, generated);

    let server = SshServer::start();
    let mut target = SshTarget::new("web1", "web1");
    target.config_file = Some(server.client_config.clone());
    let ssh = Ssh::connect(&target).expect("connect to the test sshd");
    let local = Local::default();
    let socket = ssh.control_socket();
    let hosts: [(&str, &dyn Transport); 2] = [("local", &local), ("ssh", &ssh)];

    for (tree, dir, files) in [
        ("examples/flask-app", example.as_path(), &example_files),
        ("generated", big.as_path(), &big_files),
    ] {
        for (name, host) in hosts {
            let mut times = Vec::new();
            let mut checksum_times = Vec::new();
            for run in 0..runs {
                let src = work.path().join(format!("src-{name}-{run}"));
                copy_tree(dir, &src, files);
                let root = work.path().join(format!("root-{name}-{run}"));
                let one = root.join("one");
                host.upload_tree(&src, files, &one, None)
                    .expect("first upload");
                edit_in_place(&src.join(&files[files.len() / 2]));
                let two = root.join("two");
                let since = Instant::now();
                let stats = host
                    .upload_tree(&src, files, &two, Some(&one))
                    .expect("second upload");
                times.push(since.elapsed());
                let since = Instant::now();
                rsync_checksum(
                    &src,
                    &one,
                    &root.join("three"),
                    (name == "ssh").then_some(&socket),
                );
                checksum_times.push(since.elapsed());
                if run == 0 {
                    eprintln!("{tree} {name}: {stats:?}");
                }
                let _ = fs::remove_dir_all(&root);
                let _ = fs::remove_dir_all(&src);
            }
            report(
                &format!("{tree} ({} files), {name}", files.len()),
                &mut times,
            );
            report(
                &format!("{tree} ({} files), {name}, rsync --checksum", files.len()),
                &mut checksum_times,
            );
        }
    }
}

fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

fn report(what: &str, times: &mut [Duration]) {
    times.sort();
    println!(
        "{what}: median {:.3}s (min {:.3}s, max {:.3}s, {} runs)",
        secs(times[times.len() / 2]),
        secs(times[0]),
        secs(times[times.len() - 1]),
        times.len()
    );
}

/// The alternative to a manifest: rsync comparing every file by checksum, on both sides.
fn rsync_checksum(src: &Path, link_dest: &Path, dest: &Path, socket: Option<&PathBuf>) {
    let mut command = std::process::Command::new("rsync");
    command
        .args(["-a", "--checksum"])
        .arg(format!("--link-dest={}", link_dest.display()));
    let mut from = src.as_os_str().to_owned();
    from.push("/");
    let to = match socket {
        Some(socket) => {
            command.arg("-e").arg(format!(
                "ssh -S {} -o ControlMaster=no -o BatchMode=yes -p 9",
                socket.display()
            ));
            format!("hoist:{}/", dest.display())
        }
        None => format!("{}/", dest.display()),
    };
    let status = command.arg(from).arg(to).status().expect("run rsync");
    assert!(status.success(), "rsync --checksum failed");
}

fn list(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![PathBuf::new()];
    while let Some(rel) = stack.pop() {
        for entry in fs::read_dir(dir.join(&rel)).expect("read the tree") {
            let entry = entry.expect("read the tree");
            let name = entry.file_name();
            if name == "__pycache__" || name == ".venv" {
                continue;
            }
            let path = rel.join(&name);
            if entry.file_type().expect("file type").is_dir() {
                stack.push(path);
            } else {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

/// `count` files of 1-4 KiB in 100 directories.
fn generate(dir: &Path, count: usize) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for i in 0..count {
        let rel = PathBuf::from(format!("pkg{:02}/mod{i:05}.py", i % 100));
        fs::create_dir_all(dir.join(&rel).parent().unwrap()).unwrap();
        let line = format!("value_{i} = {i}  # generated\n");
        fs::write(dir.join(&rel), line.repeat(1024 * (1 + i % 4) / line.len())).unwrap();
        files.push(rel);
    }
    files
}

fn copy_tree(from: &Path, to: &Path, files: &[PathBuf]) {
    for rel in files {
        fs::create_dir_all(to.join(rel).parent().unwrap()).unwrap();
        fs::copy(from.join(rel), to.join(rel)).unwrap();
        let mtime = fs::metadata(from.join(rel)).unwrap().modified().unwrap();
        fs::File::options()
            .write(true)
            .open(to.join(rel))
            .unwrap()
            .set_modified(mtime)
            .unwrap();
    }
}

/// Flips the first byte of a file and puts its mtime back: same size, same time, new content.
fn edit_in_place(path: &Path) {
    let mtime = fs::metadata(path).unwrap().modified().unwrap();
    let mut bytes = fs::read(path).unwrap();
    bytes[0] ^= 0x20;
    fs::write(path, bytes).unwrap();
    fs::File::options()
        .write(true)
        .open(path)
        .unwrap()
        .set_modified(mtime)
        .unwrap();
}
