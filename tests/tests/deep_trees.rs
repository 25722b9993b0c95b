//! Hostile tree shapes, written by a client that had the keys: a chain of
//! nested directories past the format's limit (SPEC §12.5), and one tree
//! shared at an exponential number of paths. Every walk refuses the too-deep
//! part with a one-line error, none overflows the stack, even on a thread
//! with a small one, and none allocates without bound.

use cairn_engine::packer::PackWriter;
use cairn_engine::repair::repair_snapshots;
use cairn_engine::restore::restore;
use cairn_engine::{browse, diff, dump, find, stats, Error, Repository};
use cairn_format::snapshot::Snapshot;
use cairn_format::tree::{NodeKind, Tree, MAX_DEPTH};
use cairn_format::{BlobId, BlobKind};
use cairn_tests::*;
use std::fs;
use std::path::Path;

/// Stack of the threads the walks run on: a quarter of Rust's default.
const SMALL_STACK: usize = 512 * 1024;

/// Stores the trees `build` saves and a snapshot whose root is the tree it
/// returns, a second newer than the newest snapshot (so walks that go
/// through every snapshot meet them in the order they were made).
fn crafted(repo: &mut Repository, build: impl FnOnce(&mut PackWriter) -> BlobId) -> Snapshot {
    let mut writer = PackWriter::new(repo);
    let tree = build(&mut writer);
    let (packs, _) = writer.finish().unwrap();
    repo.save_index(packs).unwrap();
    let template = repo.snapshots().unwrap().pop().unwrap().1;
    let mut time = template.time;
    time.secs += 1;
    let snapshot = Snapshot {
        tree,
        time,
        ..template
    };
    repo.save_snapshot(&snapshot).unwrap();
    snapshot
}

fn save_tree(writer: &mut PackWriter, nodes: Vec<cairn_format::tree::Node>) -> BlobId {
    writer
        .save(BlobKind::Tree, Tree::new(nodes).encode())
        .unwrap()
}

/// A file `f` under `depth` nested directories named `d`: the deepest tree
/// is at level `depth`. Returns the root tree.
fn chain(writer: &mut PackWriter, depth: usize) -> BlobId {
    let content = b"at the bottom".to_vec();
    let data = writer.save(BlobKind::Data, content.clone()).unwrap();
    let file = NodeKind::File {
        content: vec![data],
    };
    let mut tree = save_tree(writer, vec![plain_node(b"f", file, content.len() as u64)]);
    for _ in 0..depth {
        let dir = NodeKind::Dir { subtree: tree };
        tree = save_tree(writer, vec![plain_node(b"d", dir, 0)]);
    }
    tree
}

/// Runs `f` on a thread with [`SMALL_STACK`].
fn on_small_stack<T: Send>(f: impl FnOnce() -> T + Send) -> T {
    std::thread::scope(|s| {
        std::thread::Builder::new()
            .stack_size(SMALL_STACK)
            .spawn_scoped(s, f)
            .unwrap()
            .join()
            .unwrap()
    })
}

fn is_too_deep<T: std::fmt::Debug>(result: cairn_engine::Result<T>) -> bool {
    match result {
        Err(e @ Error::TooDeep(_)) => {
            let text = e.to_string();
            assert!(text.ends_with("directories nest deeper than 2048 levels"));
            assert!(text.len() < 200 && !text.contains('\n'), "{text}");
            true
        }
        other => panic!("expected a too-deep error, got {other:?}"),
    }
}

#[test]
fn nesting_up_to_the_limit_is_read_and_beyond_it_is_refused_by_every_walk() {
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path().canonicalize().unwrap();
    let mut repo = one_snapshot_repo(&base);
    let ordinary = repo.snapshots().unwrap().remove(0).1;
    // `deepest` reaches level MAX_DEPTH exactly. `over` holds the very same
    // chain one level further down (walks that read each tree once meet it
    // after `deepest`, whole), and `far` goes 8 times as deep.
    let deepest = crafted(&mut repo, |w| chain(w, MAX_DEPTH));
    let over = crafted(&mut repo, |w| {
        let below = chain(w, MAX_DEPTH);
        save_tree(
            w,
            vec![plain_node(b"x", NodeKind::Dir { subtree: below }, 0)],
        )
    });
    let far = crafted(&mut repo, |w| chain(w, 8 * MAX_DEPTH));
    let snapshots = repo.snapshots().unwrap();
    let id_of = |s: &Snapshot| snapshots.iter().find(|(_, t)| t.tree == s.tree).unwrap().0;

    on_small_stack(|| {
        // check names the two snapshots that nest too deep, and only them,
        // whichever snapshot it reads the shared chain for first.
        let report = check_all(&repo);
        let mut flagged: Vec<_> = report.damaged.iter().map(|d| d.snapshot).collect();
        flagged.dedup();
        let mut expected = vec![id_of(&over), id_of(&far)];
        expected.sort();
        flagged.sort();
        assert_eq!(flagged, expected, "{} damaged", report.damaged.len());
        assert_eq!(report.damaged.len(), 2);
        for d in &report.damaged {
            let depth = d.path.matches('/').count();
            assert_eq!(depth, MAX_DEPTH + 1, "{}", d.cause);
            assert!(
                d.cause.contains("nest deeper than 2048 levels"),
                "{}",
                d.cause
            );
        }
        assert_eq!(report.errors.len(), 2, "{:?}", report.errors);

        // Each walk reads the deepest chain whole and refuses the others.
        let one = |s: &Snapshot| vec![(id_of(s), s.clone())];
        let totals = stats::stats(&repo, &one(&deepest)).unwrap();
        assert_eq!((totals.files, totals.restore_size), (1, 13));
        assert!(is_too_deep(stats::stats(&repo, &one(&over))));
        assert!(is_too_deep(stats::stats(&repo, &one(&far))));

        let found = find::find(&repo, &one(&deepest), "f", false).unwrap();
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].path.len(), 2 * MAX_DEPTH + 2);
        assert!(is_too_deep(find::find(&repo, &one(&over), "f", false)));
        assert!(is_too_deep(find::find(&repo, &one(&far), "f", false)));

        let mut entries = 0;
        browse::walk(&repo, &deepest.tree, b"/", &mut |_, _| entries += 1).unwrap();
        assert_eq!(entries, MAX_DEPTH + 1);
        for s in [&over, &far] {
            assert!(is_too_deep(browse::walk(
                &repo,
                &s.tree,
                b"/",
                &mut |_, _| {}
            )));
        }

        let mut tar = Vec::new();
        dump::dump(&repo, &deepest, Path::new("/"), &mut tar).unwrap();
        assert!(tar.len() > MAX_DEPTH * 512);
        for s in [&over, &far] {
            assert!(is_too_deep(dump::dump(
                &repo,
                s,
                Path::new("/"),
                &mut Vec::new()
            )));
        }

        let changes = diff::diff(&repo, &ordinary.tree, &deepest.tree).unwrap();
        assert!(changes.len() > MAX_DEPTH, "{}", changes.len());
        assert!(is_too_deep(diff::diff(&repo, &deepest.tree, &far.tree)));

        // A restore resolves no paths (it holds a handle per level), so it
        // goes down to the nesting limit, or as far as its open-file limit
        // allows; it reports where it stopped and writes nothing outside its
        // target.
        let target = base.join("target");
        let report = restore(&repo, &far, None, &target).unwrap();
        assert!(!report.errors.is_empty());
        let outside: Vec<_> = fs::read_dir(&base)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(outside.len(), 3, "{outside:?}");
    });

    // repair snapshots cuts the too-deep directories, and check is then clean.
    let repaired = on_small_stack(|| repair_snapshots(&mut repo, false).unwrap());
    assert_eq!(repaired.len(), 2);
    for r in &repaired {
        assert_eq!(r.removed.len(), 1, "{:?}", r.removed);
        assert!(r.removed[0].1.contains("nest deeper"), "{:?}", r.removed);
    }
    let report = on_small_stack(|| check_all(&repo));
    assert!(report.is_clean(), "{:?}", report.errors);
    assert!(report.damaged.is_empty());
}

#[test]
fn a_tree_shared_at_exponentially_many_paths_is_read_once_and_listed_within_bounds() {
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path().canonicalize().unwrap();
    let mut repo = one_snapshot_repo(&base);
    let ordinary_trees = check_all(&repo).trees;
    // Level 64 holds a file `f`; each level above holds two directories with
    // the same tree: 2^64 paths to `f`. In `bomb` the data of `f` is not
    // stored, in `whole` it is.
    let bomb_with = |w: &mut PackWriter, data: BlobId| {
        let file = NodeKind::File {
            content: vec![data],
        };
        let mut tree = save_tree(w, vec![plain_node(b"f", file, 12)]);
        for _ in 0..64 {
            let dir = || NodeKind::Dir { subtree: tree };
            let nodes = vec![plain_node(b"a", dir(), 0), plain_node(b"b", dir(), 0)];
            tree = save_tree(w, nodes);
        }
        tree
    };
    let missing = repo.blob_id(b"never stored");
    let bomb = crafted(&mut repo, |w| bomb_with(w, missing));
    let whole = crafted(&mut repo, |w| {
        let data = w.save(BlobKind::Data, b"twelve bytes".to_vec()).unwrap();
        bomb_with(w, data)
    });
    let snapshots = repo.snapshots().unwrap();
    let id_of = |s: &Snapshot| snapshots.iter().find(|(_, t)| t.tree == s.tree).unwrap().0;
    on_small_stack(|| {
        let report = check_all(&repo);
        assert_eq!(report.errors.len(), 1, "{:?}", report.errors);
        assert!(report.errors[0].to_string().contains("is missing"));
        // Listed up to the budget (64 MiB of text), counted beyond it.
        let listed = report.damaged.len();
        assert!(listed > 100_000, "{listed}");
        let bytes: usize = report
            .damaged
            .iter()
            .map(|d| d.path.len() + d.cause.len())
            .sum();
        assert!(bytes <= 64 << 20, "{bytes}");
        let total = (listed as u64).saturating_add(report.unlisted_damage);
        assert_eq!(total, u64::MAX, "2^64 paths: the count saturates");
        assert!(report.damaged.iter().all(|d| d.snapshot == id_of(&bomb)));
        assert_eq!(
            report.trees,
            ordinary_trees + 2 * 65,
            "each tree is read once"
        );

        let totals = stats::stats(&repo, &[(id_of(&whole), whole.clone())]).unwrap();
        assert_eq!(totals.files, u64::MAX, "2^64 files: the count saturates");
        assert_eq!(totals.tree_blobs, 65);
        println!(
            "tree shared at 2^64 paths: {} trees read, {listed} damaged paths listed, {} counted",
            report.trees, report.unlisted_damage
        );
    });
    // repair snapshots cuts the lost file everywhere at once, lists what
    // fits in the repaired snapshot, and counts the rest.
    let repaired = on_small_stack(|| repair_snapshots(&mut repo, false).unwrap());
    assert_eq!(repaired.len(), 1);
    let r = &repaired[0];
    assert_eq!(r.old, id_of(&bomb));
    let total = (r.removed.len() as u64).saturating_add(r.unlisted);
    assert_eq!(total, u64::MAX, "2^64 paths: the count saturates");
    let new = repo.load_snapshot(&r.new.unwrap()).unwrap();
    assert_eq!(new.skipped.len(), r.removed.len() + 1);
    let report = on_small_stack(|| check_all(&repo));
    assert!(report.is_clean(), "{:?}", report.errors);
}
