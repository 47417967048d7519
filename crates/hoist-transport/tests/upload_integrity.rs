//! A release holds exactly the content of its source, whatever the files' sizes and times say:
//! `upload_tree` decides "unchanged" by content, locally and over SSH (a real sshd on
//! 127.0.0.1 from hoist-testkit; its "remote" directories are on this machine, so each
//! assertion reads the files directly).

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use hoist_testkit::SshServer;
use hoist_transport::{Local, Ssh, SshTarget, Transport};
use proptest::prelude::*;

/// The time stamp reproducible builds, `git archive` trees and artifact pipelines give every file.
const NORMALISED: u64 = 1_700_000_000;

fn ssh(server: &SshServer) -> Ssh {
    let mut target = SshTarget::new("web1", "web1");
    target.config_file = Some(server.client_config.clone());
    target.connect_timeout = Duration::from_secs(5);
    Ssh::connect(&target).unwrap_or_else(|e| panic!("connect: {e}\nsshd log: {}", server.log()))
}

fn set_mtime(path: &Path, at: SystemTime) {
    fs::File::options()
        .write(true)
        .open(path)
        .unwrap()
        .set_modified(at)
        .unwrap();
}

fn mtime(path: &Path) -> SystemTime {
    fs::metadata(path).unwrap().modified().unwrap()
}

/// Every mtime of the tree set to one instant, as `touch -d @1700000000` on each file does.
fn normalise_mtimes(dir: &Path, files: &[PathBuf]) {
    let at = SystemTime::UNIX_EPOCH + Duration::from_secs(NORMALISED);
    for rel in files {
        set_mtime(&dir.join(rel), at);
    }
}

fn write(dir: &Path, rel: &str, contents: &str) -> PathBuf {
    let path = dir.join(rel);
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(&path, contents).unwrap();
    PathBuf::from(rel)
}

/// Each shipped file of `dest` is a regular file (or the same symlink) with the source's bytes
/// and permission bits.
fn assert_byte_equal(src: &Path, files: &[PathBuf], dest: &Path) {
    for rel in files {
        let from = fs::symlink_metadata(src.join(rel)).unwrap();
        let to = fs::symlink_metadata(dest.join(rel))
            .unwrap_or_else(|e| panic!("{} missing in the release: {e}", rel.display()));
        if from.file_type().is_symlink() {
            assert!(
                to.file_type().is_symlink(),
                "{} is not a symlink",
                rel.display()
            );
            assert_eq!(
                fs::read_link(src.join(rel)).unwrap(),
                fs::read_link(dest.join(rel)).unwrap()
            );
            continue;
        }
        assert!(to.is_file(), "{} is not a regular file", rel.display());
        assert_eq!(
            fs::read(dest.join(rel)).unwrap(),
            fs::read(src.join(rel)).unwrap(),
            "{} in {} differs from its source",
            rel.display(),
            dest.display()
        );
        assert_eq!(
            to.permissions().mode() & 0o7777,
            from.permissions().mode() & 0o7777,
            "mode of {}",
            rel.display()
        );
    }
}

/// Two same-size edits within one second: the second release must hold the second edit.
fn same_size_edit_in_the_same_second(host: &dyn Transport) {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    let files = vec![
        write(&src, "templates/index.html", "<h1>version A</h1>\n"),
        write(&src, "app.py", "print('hello')\n"),
    ];
    let root = tmp.path().join("root");
    let one = root.join("releases/one");
    host.upload_tree(&src, &files, &one, None).unwrap();
    let before = mtime(&src.join("templates/index.html"));
    fs::write(src.join("templates/index.html"), "<h1>version B</h1>\n").unwrap();
    // The edit lands in the same second as the first: size and time stamp say "unchanged".
    set_mtime(&src.join("templates/index.html"), before);
    let two = root.join("releases/two");
    let stats = host.upload_tree(&src, &files, &two, Some(&one)).unwrap();
    assert_eq!(
        fs::read_to_string(two.join("templates/index.html")).unwrap(),
        "<h1>version B</h1>\n",
        "the new release serves the old file"
    );
    assert_byte_equal(&src, &files, &two);
    assert_eq!((stats.copied, stats.linked), (1, 1), "{stats:?}");
    let ino = |p: &Path| fs::metadata(p).unwrap().ino();
    assert_eq!(ino(&one.join("app.py")), ino(&two.join("app.py")));
    assert_eq!(
        fs::read_to_string(one.join("templates/index.html")).unwrap(),
        "<h1>version A</h1>\n",
        "the previous release was changed"
    );
}

/// Every file stamped 1700000000 (as a `git archive` tree or a reproducible build is): an edit
/// is still shipped, and the unchanged files are still hard-linked.
fn normalised_mtimes_never_hide_an_edit(host: &dyn Transport) {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    let mut files = Vec::new();
    for i in 0..26 {
        files.push(write(
            &src,
            &format!("pkg/mod{i:02}.py"),
            &format!("x = {i:03}\n"),
        ));
    }
    files.push(write(&src, "static/site.css", "body { color: red; }\n"));
    normalise_mtimes(&src, &files);
    let root = tmp.path().join("root");
    let one = root.join("releases/one");
    host.upload_tree(&src, &files, &one, None).unwrap();
    fs::write(src.join("static/site.css"), "body { color: tan; }\n").unwrap();
    normalise_mtimes(&src, &files);
    let two = root.join("releases/two");
    let stats = host.upload_tree(&src, &files, &two, Some(&one)).unwrap();
    assert_eq!(
        fs::read_to_string(two.join("static/site.css")).unwrap(),
        "body { color: tan; }\n"
    );
    assert_byte_equal(&src, &files, &two);
    assert_eq!((stats.copied, stats.linked), (1, 26), "{stats:?}");
}

/// Content decides, not time: a tree whose every mtime moved (a fresh `git archive` of a new
/// commit) still hard-links what did not change.
fn new_mtimes_with_the_same_content_are_linked(host: &dyn Transport) {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    let files = vec![write(&src, "a.py", "a\n"), write(&src, "b/c.py", "c\n")];
    fs::set_permissions(src.join("a.py"), fs::Permissions::from_mode(0o755)).unwrap();
    normalise_mtimes(&src, &files);
    let one = tmp.path().join("one");
    host.upload_tree(&src, &files, &one, None).unwrap();
    for rel in &files {
        set_mtime(&src.join(rel), SystemTime::now());
    }
    let two = tmp.path().join("two");
    let stats = host.upload_tree(&src, &files, &two, Some(&one)).unwrap();
    assert_eq!((stats.copied, stats.linked), (0, 2), "{stats:?}");
    assert_byte_equal(&src, &files, &two);
    // A mode change alone is a change: the file is copied with its new mode.
    fs::set_permissions(src.join("a.py"), fs::Permissions::from_mode(0o644)).unwrap();
    let three = tmp.path().join("three");
    let stats = host.upload_tree(&src, &files, &three, Some(&two)).unwrap();
    assert_eq!((stats.copied, stats.linked), (1, 1), "{stats:?}");
    assert_byte_equal(&src, &files, &three);
    assert_eq!(
        fs::metadata(two.join("a.py")).unwrap().permissions().mode() & 0o777,
        0o755
    );
}

#[test]
fn a_same_size_edit_in_the_same_second_is_shipped_locally() {
    same_size_edit_in_the_same_second(&Local::default());
}

#[test]
fn a_same_size_edit_in_the_same_second_is_shipped_over_ssh() {
    let server = SshServer::start();
    same_size_edit_in_the_same_second(&ssh(&server));
}

#[test]
fn normalised_mtimes_never_hide_an_edit_locally() {
    normalised_mtimes_never_hide_an_edit(&Local::default());
}

#[test]
fn normalised_mtimes_never_hide_an_edit_over_ssh() {
    let server = SshServer::start();
    normalised_mtimes_never_hide_an_edit(&ssh(&server));
}

#[test]
fn unchanged_content_is_linked_whatever_its_mtime_locally() {
    new_mtimes_with_the_same_content_are_linked(&Local::default());
}

#[test]
fn unchanged_content_is_linked_whatever_its_mtime_over_ssh() {
    let server = SshServer::start();
    new_mtimes_with_the_same_content_are_linked(&ssh(&server));
}

/// How the time stamps of a step's edits are left.
#[derive(Debug, Clone, Copy)]
enum Stamp {
    /// As the edit left them (now, within the same second as the last upload).
    Fresh,
    /// Put back to what the file had before the edit.
    Preserved,
    /// Every file of the tree set to 1700000000.
    Normalised,
}

/// Paths that never clash (no file is also a directory).
fn path() -> impl Strategy<Value = String> {
    prop::sample::select(vec!["a", "b.py", "d/a", "d/e/b", "d/e/f g", "x/y"]).prop_map(String::from)
}

/// Tiny contents from a two-letter alphabet: same sizes and equal contents are frequent.
fn contents() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(prop::sample::select(vec![b'a', b'b']), 0..4)
}

fn stamp() -> impl Strategy<Value = Stamp> {
    prop_oneof![
        Just(Stamp::Fresh),
        Just(Stamp::Preserved),
        Just(Stamp::Normalised)
    ]
}

/// One step: each named path is rewritten (`Some`) or deleted (`None`), then stamped; and
/// whether the file gets the executable bit.
type Step = (BTreeMap<String, Option<(Vec<u8>, bool)>>, Stamp);

fn steps() -> impl Strategy<Value = (BTreeMap<String, Vec<u8>>, Vec<Step>)> {
    let initial = prop::collection::btree_map(path(), contents(), 1..6);
    let step = (
        prop::collection::btree_map(
            path(),
            prop::option::weighted(0.85, (contents(), any::<bool>())),
            1..4,
        ),
        stamp(),
    );
    (initial, prop::collection::vec(step, 1..4))
}

/// Uploads the initial tree, then one release per step with the previous one as `link_dest`;
/// every release must be byte-equal to its source.
fn every_release_equals_its_source(
    host: &dyn Transport,
    initial: &BTreeMap<String, Vec<u8>>,
    steps: &[Step],
) {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    for (rel, bytes) in initial {
        fs::create_dir_all(src.join(rel).parent().unwrap()).unwrap();
        fs::write(src.join(rel), bytes).unwrap();
    }
    let listed = |tree: &BTreeMap<String, Vec<u8>>| -> Vec<PathBuf> {
        tree.keys().map(PathBuf::from).collect()
    };
    let mut tree = initial.clone();
    let mut previous = tmp.path().join("releases/0");
    host.upload_tree(&src, &listed(&tree), &previous, None)
        .unwrap();
    assert_byte_equal(&src, &listed(&tree), &previous);
    for (n, (edits, stamp)) in steps.iter().enumerate() {
        for (rel, edit) in edits {
            let path = src.join(rel);
            let before = path.exists().then(|| mtime(&path));
            match edit {
                None => {
                    let _ = fs::remove_file(&path);
                    tree.remove(rel);
                }
                Some((bytes, exec)) => {
                    fs::create_dir_all(path.parent().unwrap()).unwrap();
                    fs::write(&path, bytes).unwrap();
                    let mode = if *exec { 0o755 } else { 0o644 };
                    fs::set_permissions(&path, fs::Permissions::from_mode(mode)).unwrap();
                    if let (Stamp::Preserved, Some(at)) = (stamp, before) {
                        set_mtime(&path, at);
                    }
                    tree.insert(rel.clone(), bytes.clone());
                }
            }
        }
        if let Stamp::Normalised = stamp {
            normalise_mtimes(&src, &listed(&tree));
        }
        let next = tmp.path().join(format!("releases/{}", n + 1));
        host.upload_tree(&src, &listed(&tree), &next, Some(&previous))
            .unwrap();
        assert_byte_equal(&src, &listed(&tree), &next);
        previous = next;
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn every_local_release_equals_its_source((initial, steps) in steps()) {
        every_release_equals_its_source(&Local::default(), &initial, &steps);
    }
}

#[test]
fn every_release_over_ssh_equals_its_source() {
    let server = SshServer::start();
    let host = ssh(&server);
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig {
        cases: 12,
        failure_persistence: None,
        ..ProptestConfig::default()
    });
    runner
        .run(&steps(), |(initial, steps)| {
            every_release_equals_its_source(&host, &initial, &steps);
            Ok(())
        })
        .unwrap();
}
