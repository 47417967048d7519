//! The cache store's semantics: prefix match with the newest winning, no overwrite, atomic
//! concurrent saves, and the bounds.

use hoist_pipeline::cache_store::{verify_blob, CacheStore, SaveOutcome};
use std::fs;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// A store whose clock advances one second each time it is read: every save is newer than the
/// one before, whatever the machine's clock does.
fn ticking_store(dir: &Path) -> CacheStore {
    let now = Arc::new(AtomicU64::new(1_700_000_000_000));
    CacheStore::open(dir)
        .unwrap()
        .with_clock(move || now.fetch_add(1000, Ordering::SeqCst))
}

fn workspace_with(dir: &Path, content: &str) {
    fs::create_dir_all(dir.join("env/lib")).unwrap();
    fs::write(dir.join("env/lib/marker.txt"), content).unwrap();
    fs::write(dir.join("env/big.bin"), content.repeat(2000)).unwrap();
    let _ = fs::remove_file(dir.join("env/python"));
    std::os::unix::fs::symlink("lib/marker.txt", dir.join("env/python")).unwrap();
}

fn save(store: &CacheStore, key: &str, ws: &Path, content: &str) -> SaveOutcome {
    workspace_with(ws, content);
    store.save(key, &["env".into()], ws).unwrap()
}

fn restored_marker(store: &CacheStore, keys: &[&str]) -> Option<(String, String)> {
    let ws = tempfile::tempdir().unwrap();
    let keys: Vec<String> = keys.iter().map(|k| k.to_string()).collect();
    let hit = store.restore(&keys, ws.path()).unwrap()?;
    let marker = fs::read_to_string(ws.path().join("env/lib/marker.txt")).unwrap();
    assert_eq!(
        fs::read_link(ws.path().join("env/python")).unwrap(),
        Path::new("lib/marker.txt"),
        "symlinks are restored as symlinks"
    );
    Some((hit.entry.key, marker))
}

#[test]
fn restore_takes_the_newest_prefix_match_even_over_an_exact_match() {
    let tmp = tempfile::tempdir().unwrap();
    let store = ticking_store(&tmp.path().join("store"));
    let ws = tmp.path().join("ws");
    save(&store, "deps-abc", &ws, "exact");
    save(&store, "deps-abcd", &ws, "newer");
    assert_eq!(
        restored_marker(&store, &["deps-abc"]),
        Some(("deps-abcd".into(), "newer".into()))
    );
}

#[test]
fn restore_tries_keys_in_order_and_a_miss_is_none() {
    let tmp = tempfile::tempdir().unwrap();
    let store = ticking_store(&tmp.path().join("store"));
    let ws = tmp.path().join("ws");
    save(&store, "deps-master-1", &ws, "master");
    save(&store, "other-1", &ws, "other");
    assert_eq!(
        restored_marker(&store, &["deps-feature-", "deps-"]),
        Some(("deps-master-1".into(), "master".into()))
    );
    assert_eq!(restored_marker(&store, &["nothing-", "neither-"]), None);
}

#[test]
fn save_never_overwrites_a_key() {
    let tmp = tempfile::tempdir().unwrap();
    let store = CacheStore::open(&tmp.path().join("store")).unwrap();
    let ws = tmp.path().join("ws");
    assert!(matches!(
        save(&store, "k", &ws, "first"),
        SaveOutcome::Saved(_)
    ));
    assert!(matches!(save(&store, "k", &ws, "second"), SaveOutcome::Exists(e) if e.key == "k"));
    assert_eq!(
        restored_marker(&store, &["k"]),
        Some(("k".into(), "first".into()))
    );
    assert_eq!(store.list().unwrap().len(), 1);
}

#[test]
fn concurrent_saves_of_one_key_leave_one_whole_cache() {
    let tmp = tempfile::tempdir().unwrap();
    let store = CacheStore::open(&tmp.path().join("store")).unwrap();
    let outcomes: Vec<SaveOutcome> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..6)
            .map(|i| {
                let store = store.clone();
                let ws = tmp.path().join(format!("ws{i}"));
                s.spawn(move || save(&store, "same-key", &ws, &format!("writer {i} ")))
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let saved = outcomes
        .iter()
        .filter(|o| matches!(o, SaveOutcome::Saved(_)))
        .count();
    assert_eq!(
        saved, 1,
        "exactly one writer publishes the key: {outcomes:?}"
    );
    let entries = store.list().unwrap();
    assert_eq!(entries.len(), 1);
    assert!(
        verify_blob(&store, &entries[0]).unwrap(),
        "the archive is whole: its hash is its name"
    );
    let (_, marker) = restored_marker(&store, &["same-key"]).unwrap();
    let ws = tempfile::tempdir().unwrap();
    store.restore(&["same-key".into()], ws.path()).unwrap();
    assert_eq!(
        fs::read_to_string(ws.path().join("env/big.bin")).unwrap(),
        marker.repeat(2000),
        "files come from one writer only"
    );
    assert!(
        fs::read_dir(tmp.path().join("store/tmp"))
            .unwrap()
            .next()
            .is_none(),
        "no temporary files are left"
    );
}

#[test]
fn saving_paths_that_do_not_exist_is_an_error() {
    let tmp = tempfile::tempdir().unwrap();
    let store = CacheStore::open(&tmp.path().join("store")).unwrap();
    let e = store
        .save("k", &["env".into(), "node_modules".into()], tmp.path())
        .unwrap_err();
    assert_eq!(e.to_string(), "none of the paths to cache exist: env, node_modules; make sure an earlier step creates them");
}

#[test]
fn identical_content_is_stored_once() {
    let tmp = tempfile::tempdir().unwrap();
    let store = CacheStore::open(&tmp.path().join("store")).unwrap();
    let ws = tmp.path().join("ws");
    workspace_with(&ws, "same");
    let a = store.save("a", &["env/lib".into()], &ws).unwrap();
    let b = store.save("b", &["env/lib".into()], &ws).unwrap();
    let (SaveOutcome::Saved(a), SaveOutcome::Saved(b)) = (a, b) else {
        panic!("both are new keys")
    };
    // tar stores mtimes, which are equal here: same bytes, same blob.
    assert_eq!(a.blob, b.blob);
    assert_eq!(
        fs::read_dir(tmp.path().join("store/blobs"))
            .unwrap()
            .count(),
        1
    );
}

#[test]
fn rm_and_prune_keep_the_store_within_its_bounds() {
    let tmp = tempfile::tempdir().unwrap();
    let store = ticking_store(&tmp.path().join("store"));
    let ws = tmp.path().join("ws");
    for (i, key) in ["old-1", "mid-1", "new-1"].iter().enumerate() {
        save(&store, key, &ws, &format!("content {i} "));
    }
    let newest = store.list().unwrap()[0].bytes;
    let report = store.prune(newest, Duration::from_secs(3600)).unwrap();
    assert_eq!(
        report.removed,
        ["mid-1", "old-1"],
        "the oldest go first when over the size bound"
    );
    assert_eq!(
        store
            .list()
            .unwrap()
            .iter()
            .map(|e| e.key.clone())
            .collect::<Vec<_>>(),
        ["new-1"]
    );
    let report = store.prune(u64::MAX, Duration::ZERO).unwrap();
    assert_eq!(
        report.removed,
        ["new-1"],
        "everything older than the age bound goes"
    );
    save(&store, "x-1", &ws, "x");
    save(&store, "y-1", &ws, "y");
    let removed = store.remove("x-").unwrap();
    assert_eq!(
        removed.iter().map(|e| e.key.as_str()).collect::<Vec<_>>(),
        ["x-1"]
    );
    assert_eq!(store.list().unwrap().len(), 1);
}

#[test]
fn a_warm_restore_hard_links_from_the_unpacked_tree_and_survives_its_loss() {
    use std::os::unix::fs::MetadataExt;
    let store_dir = tempfile::tempdir().unwrap();
    let store = CacheStore::open(store_dir.path()).unwrap();
    let ws = tempfile::tempdir().unwrap();
    save(&store, "deps-1", ws.path(), "warm");

    let one = tempfile::tempdir().unwrap();
    let two = tempfile::tempdir().unwrap();
    store
        .restore(&["deps-".into()], one.path())
        .unwrap()
        .unwrap();
    store
        .restore(&["deps-".into()], two.path())
        .unwrap()
        .unwrap();
    let ino = |d: &Path| fs::metadata(d.join("env/big.bin")).unwrap().ino();
    assert_eq!(
        ino(one.path()),
        ino(two.path()),
        "both restores link the same unpacked file"
    );
    assert_eq!(
        fs::read_to_string(two.path().join("env/lib/marker.txt")).unwrap(),
        "warm"
    );

    // The unpacked trees are a convenience: without them the archive is unpacked again.
    fs::remove_dir_all(store_dir.path().join("trees")).unwrap();
    assert_eq!(
        restored_marker(&store, &["deps-"]),
        Some(("deps-1".into(), "warm".into()))
    );
}
