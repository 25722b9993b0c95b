//! Each backup filter selects exactly the expected set of paths.

use cairn_engine::backup::{backup, BackupOptions};
use cairn_engine::browse;
use cairn_engine::filter::FilterOptions;
use cairn_tests::*;
use std::collections::BTreeSet;
use std::ffi::OsStr;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

fn build(src: &Path) {
    let files: &[(&str, usize)] = &[
        ("a.txt", 10),
        ("b.o", 10),
        ("keep/c.txt", 10),
        ("keep/D.O", 10),
        ("build/x.o", 10),
        ("build/y.txt", 10),
        ("cache/CACHEDIR.TAG", 0),
        ("cache/z", 10),
        ("fakecache/CACHEDIR.TAG", 0),
        ("fakecache/w", 10),
        ("nobackup/.nobackup", 0),
        ("nobackup/v", 10),
        ("big.bin", 2 << 20),
        ("small.bin", 1024),
        ("deep/a/target/t", 10),
    ];
    for (name, len) in files {
        let p = src.join(name);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, vec![b'x'; *len]).unwrap();
    }
    std::fs::write(
        src.join("cache/CACHEDIR.TAG"),
        b"Signature: 8a477f597d28d172789f06886806bc55\n# a cache\n",
    )
    .unwrap();
    std::fs::write(src.join("fakecache/CACHEDIR.TAG"), b"not a real signature").unwrap();
}

/// Paths below `src` recorded in the newest snapshot, relative to `src`.
fn recorded(
    repo: &cairn_engine::Repository,
    snapshot: &cairn_format::snapshot::Snapshot,
    src: &Path,
) -> BTreeSet<String> {
    let node = browse::find_node(repo, &snapshot.tree, src)
        .unwrap()
        .unwrap();
    let cairn_format::tree::NodeKind::Dir { subtree } = node.kind else {
        panic!("not a dir")
    };
    let mut out = BTreeSet::new();
    browse::walk(repo, &subtree, b"", &mut |p, _| {
        out.insert(String::from_utf8_lossy(&p[1..]).into_owned());
    })
    .unwrap();
    out
}

fn all() -> BTreeSet<String> {
    [
        "a.txt",
        "b.o",
        "keep",
        "keep/c.txt",
        "keep/D.O",
        "build",
        "build/x.o",
        "build/y.txt",
        "cache",
        "cache/CACHEDIR.TAG",
        "cache/z",
        "fakecache",
        "fakecache/CACHEDIR.TAG",
        "fakecache/w",
        "nobackup",
        "nobackup/.nobackup",
        "nobackup/v",
        "big.bin",
        "small.bin",
        "deep",
        "deep/a",
        "deep/a/target",
        "deep/a/target/t",
    ]
    .into_iter()
    .map(String::from)
    .collect()
}

fn without(remove: &[&str]) -> BTreeSet<String> {
    let mut set = all();
    for r in remove {
        assert!(set.remove(*r), "{r} not in the tree");
    }
    set
}

#[test]
fn each_filter_selects_exactly_the_expected_paths() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    build(&src);
    let mut repo = init_repo(&tmp.path().join("repo"));
    let cases: Vec<(&str, FilterOptions, BTreeSet<String>)> = vec![
        ("nothing", FilterOptions::default(), all()),
        (
            "*.o",
            FilterOptions {
                exclude: vec!["*.o".into()],
                ..Default::default()
            },
            without(&["b.o", "build/x.o"]),
        ),
        (
            "iexclude *.o",
            FilterOptions {
                iexclude: vec!["*.o".into()],
                ..Default::default()
            },
            without(&["b.o", "build/x.o", "keep/D.O"]),
        ),
        (
            "directory name",
            FilterOptions {
                exclude: vec!["build".into()],
                ..Default::default()
            },
            without(&["build", "build/x.o", "build/y.txt"]),
        ),
        (
            "anchored",
            FilterOptions {
                exclude: vec![format!("{}/keep/*.txt", src.display())],
                ..Default::default()
            },
            without(&["keep/c.txt"]),
        ),
        (
            "double star",
            FilterOptions {
                exclude: vec!["**/target".into()],
                ..Default::default()
            },
            without(&["deep/a/target", "deep/a/target/t"]),
        ),
        (
            "if present",
            FilterOptions {
                exclude_if_present: vec![".nobackup".into()],
                ..Default::default()
            },
            without(&["nobackup", "nobackup/.nobackup", "nobackup/v"]),
        ),
        (
            "caches",
            FilterOptions {
                exclude_caches: true,
                ..Default::default()
            },
            without(&["cache", "cache/CACHEDIR.TAG", "cache/z"]),
        ),
        (
            "larger than",
            FilterOptions {
                exclude_larger_than: Some(1024),
                ..Default::default()
            },
            without(&["big.bin"]),
        ),
    ];
    for (what, filter, expected) in cases {
        let r = backup(
            &mut repo,
            std::slice::from_ref(&src),
            &BackupOptions {
                filter,
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(
            recorded(&repo, &r.snapshot, &src),
            expected,
            "filter {what}"
        );
    }
}

#[test]
fn one_file_system_records_other_mounts_as_empty_directories() {
    let dev = std::fs::metadata("/dev").unwrap().dev();
    let mount = ["/dev/shm", "/dev/pts", "/dev/mqueue"]
        .into_iter()
        .find(|m| std::fs::metadata(m).is_ok_and(|md| md.is_dir() && md.dev() != dev))
        .expect("no file system mounted below /dev to test with");
    let tmp = tempfile::tempdir().unwrap();
    let mut repo = init_repo(&tmp.path().join("repo"));
    let mount_path = Path::new(mount);
    let mut count_below = |one_file_system: bool| {
        let filter = FilterOptions {
            one_file_system,
            ..Default::default()
        };
        let r = backup(
            &mut repo,
            &["/dev".into()],
            &BackupOptions {
                filter,
                ..Default::default()
            },
        )
        .unwrap();
        let node = browse::find_node(&repo, &r.snapshot.tree, mount_path)
            .unwrap()
            .expect("mount point recorded");
        let cairn_format::tree::NodeKind::Dir { subtree } = node.kind else {
            panic!()
        };
        let null = browse::find_node(&repo, &r.snapshot.tree, Path::new("/dev/null"))
            .unwrap()
            .unwrap();
        assert!(matches!(
            null.kind,
            cairn_format::tree::NodeKind::CharDevice { .. }
        ));
        repo.load_tree(&subtree).unwrap().nodes.len()
    };
    // Make sure the other file system has something in it.
    let marker = mount_path.join(format!("cairn-test-{}", std::process::id()));
    let made = std::fs::create_dir(&marker).is_ok();
    assert_eq!(count_below(true), 0);
    if made {
        assert!(count_below(false) > 0);
        std::fs::remove_dir(&marker).unwrap();
    }
}

#[test]
fn the_binary_takes_files_from_and_exclude_files() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    build(&src);
    let repo = tmp.path().join("repo");
    let list = tmp.path().join("list");
    std::fs::write(
        &list,
        format!(
            "# what to back up\n{}\n\n{}\n",
            src.join("keep").display(),
            src.join("build").display()
        ),
    )
    .unwrap();
    let excludes = tmp.path().join("excludes");
    std::fs::write(&excludes, "# objects\n*.o\n").unwrap();
    let out = cairn(
        &repo,
        &args(&["init", "--kdf-memory-kib", "64", "--kdf-iterations", "1"]),
        &[],
    );
    assert!(out.status.success());
    let out = cairn(
        &repo,
        &[
            OsStr::new("backup"),
            OsStr::new("--files-from"),
            list.as_os_str(),
            OsStr::new("--exclude-file"),
            excludes.as_os_str(),
            OsStr::new("--iexclude"),
            OsStr::new("*.O"),
        ],
        &[],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = cairn(&repo, &args(&["ls", "latest"]), &[]);
    let listed: BTreeSet<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            l.strip_prefix(&format!("{}/", src.display()))
                .map(String::from)
        })
        .collect();
    let expected: BTreeSet<String> = ["keep", "keep/c.txt", "build", "build/y.txt"]
        .into_iter()
        .map(String::from)
        .collect();
    assert_eq!(listed, expected);
    let out = cairn(&repo, &args(&["backup", "/tmp", "--exclude", "a["]), &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("invalid pattern"));
}
