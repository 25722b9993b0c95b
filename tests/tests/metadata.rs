//! Faithful metadata: hard links, sparse files, extended attributes,
//! ownership, untouched access times, FIFOs recorded but never read.

use cairn_engine::backup::{backup, BackupOptions};
use cairn_engine::restore::restore;
use cairn_tests::*;
use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

fn xattrs(path: &Path) -> Vec<cairn_format::tree::Xattr> {
    cairn_engine::source::read_xattrs(path).unwrap()
}

fn round_trip(src: &Path, tmp: &Path) -> (cairn_engine::backup::BackupReport, std::path::PathBuf) {
    let mut repo = init_repo(&tmp.join("repo"));
    let report = backup(&mut repo, &[src.to_path_buf()], &BackupOptions::default()).unwrap();
    assert!(report.skipped.is_empty(), "{:?}", report.skipped);
    let out = tmp.join("out");
    let restored = restore(&repo, &report.snapshot, Some(src), &out).unwrap();
    assert!(restored.errors.is_empty(), "{:?}", restored.errors);
    (report, out.join(src.file_name().unwrap()))
}

#[test]
fn hard_links_are_read_once_and_restored_as_links() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    std::fs::create_dir_all(src.join("sub")).unwrap();
    let data = Noise::new(8).bytes(300_000);
    std::fs::write(src.join("a"), &data).unwrap();
    std::fs::hard_link(src.join("a"), src.join("b")).unwrap();
    std::fs::hard_link(src.join("a"), src.join("sub/c")).unwrap();
    std::fs::write(src.join("separate"), &data).unwrap();
    let (report, out) = round_trip(&src, tmp.path());
    assert_eq!(
        report.snapshot.summary.bytes_read,
        2 * 300_000,
        "the linked file was read more than once"
    );
    let ino = |p: &str| std::fs::metadata(out.join(p)).unwrap().ino();
    assert_eq!(ino("a"), ino("b"));
    assert_eq!(ino("a"), ino("sub/c"));
    assert_ne!(ino("a"), ino("separate"));
    assert_eq!(std::fs::metadata(out.join("a")).unwrap().nlink(), 3);
    assert_eq!(std::fs::read(out.join("sub/c")).unwrap(), data);
}

#[test]
fn a_link_to_a_file_that_cannot_be_restored_is_removed_with_it() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    std::fs::create_dir_all(src.join("sub")).unwrap();
    // Large enough not to be bundled with `c`.
    std::fs::write(src.join("a"), Noise::new(9).bytes(300_000)).unwrap();
    std::fs::hard_link(src.join("a"), src.join("sub/b")).unwrap();
    std::fs::write(src.join("c"), b"intact").unwrap();
    let repo_path = tmp.path().join("repo");
    let mut repo = init_repo(&repo_path);
    let snapshot = backup_dir(&mut repo, &src).snapshot;
    let node = cairn_engine::browse::find_node(&repo, &snapshot.tree, &src.join("a"))
        .unwrap()
        .unwrap();
    let cairn_format::tree::NodeKind::File { content } = node.kind else {
        panic!("{:?}", node.kind)
    };
    damage_blob(&repo_path, &repo, &content[0]);

    let out = tmp.path().join("out");
    let report = restore(&repo, &snapshot, Some(&src), &out).unwrap();
    let failed: Vec<_> = report.errors.iter().map(|(p, _)| p.clone()).collect();
    assert_eq!(
        failed,
        [out.join("src/a"), out.join("src/sub/b")],
        "{:?}",
        report.errors
    );
    assert!(report.errors[0].1.is_integrity());
    assert!(!out.join("src/a").exists() && !out.join("src/sub/b").exists());
    assert_eq!(std::fs::read(out.join("src/c")).unwrap(), b"intact");
}

#[test]
fn sparse_files_restore_sparse() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    std::fs::create_dir(&src).unwrap();
    let sparse = src.join("disk.img");
    {
        use std::io::{Seek, SeekFrom, Write};
        let mut f = std::fs::File::create(&sparse).unwrap();
        f.write_all(&Noise::new(1).bytes(100_000)).unwrap();
        f.seek(SeekFrom::Start(64 << 20)).unwrap();
        f.write_all(b"tail data").unwrap();
        f.set_len(96 << 20).unwrap();
    }
    let (_, out) = round_trip(&src, tmp.path());
    let restored = out.join("disk.img");
    let meta = std::fs::metadata(&restored).unwrap();
    assert_eq!(meta.len(), 96 << 20);
    assert!(
        meta.blocks() * 512 < 1 << 20,
        "{} bytes allocated for a 96 MiB sparse file",
        meta.blocks() * 512
    );
    assert_eq!(hash_file(&restored), hash_file(&sparse));
}

#[test]
fn extended_attributes_survive_a_round_trip() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    std::fs::create_dir_all(src.join("dir")).unwrap();
    std::fs::write(src.join("file"), b"x").unwrap();
    set_xattr(&src.join("file"), "user.comment", b"quarterly numbers").unwrap();
    set_xattr(&src.join("file"), "user.binary", &[0, 255, 10, 13]).unwrap();
    set_xattr(&src.join("dir"), "user.tag", b"").unwrap();
    let (_, out) = round_trip(&src, tmp.path());
    assert_eq!(xattrs(&out.join("file")).len(), 2);
    assert_eq!(xattrs(&out.join("file")), xattrs(&src.join("file")));
    assert_eq!(xattrs(&out.join("dir")), xattrs(&src.join("dir")));
}

#[test]
fn an_incremental_backup_records_changed_attributes_of_unchanged_files() {
    // Unchanged entries keep the parent's attributes without reading them;
    // setting one changes the status change time, so it is read again.
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    std::fs::create_dir_all(&src).unwrap();
    for name in ["kept", "changed"] {
        std::fs::write(src.join(name), name).unwrap();
        set_xattr(&src.join(name), "user.v", b"1").unwrap();
    }
    let mut repo = init_repo(&tmp.path().join("repo"));
    backup_dir(&mut repo, &src);
    set_xattr(&src.join("changed"), "user.v", b"2").unwrap();
    let second = backup_dir(&mut repo, &src).snapshot;
    assert_eq!(
        second.summary.files_unchanged, 1,
        "`changed` has a new ctime"
    );
    let value = |name: &str| {
        let node = cairn_engine::browse::find_node(&repo, &second.tree, &src.join(name))
            .unwrap()
            .unwrap();
        assert_eq!(node.xattrs.len(), 1);
        node.xattrs[0].value.clone()
    };
    assert_eq!(value("kept"), b"1");
    assert_eq!(value("changed"), b"2");
}

#[test]
fn ownership_is_restored_by_name_with_a_numeric_fallback() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    std::fs::create_dir(&src).unwrap();
    std::fs::write(src.join("nobodys"), b"x").unwrap();
    std::fs::write(src.join("unnamed"), b"x").unwrap();
    let as_root = unsafe { libc::geteuid() } == 0;
    if as_root {
        std::os::unix::fs::lchown(src.join("nobodys"), Some(65534), Some(65534)).unwrap();
        std::os::unix::fs::lchown(src.join("unnamed"), Some(54321), Some(54321)).unwrap();
    }
    let (report, out) = round_trip(&src, tmp.path());
    let owner = |p: &str| {
        let m = std::fs::metadata(out.join(p)).unwrap();
        (m.uid(), m.gid())
    };
    if as_root {
        assert_eq!(owner("nobodys"), (65534, 65534));
        assert_eq!(owner("unnamed"), (54321, 54321));
        let repo = open_repo(&tmp.path().join("repo"));
        let node =
            cairn_engine::browse::find_node(&repo, &report.snapshot.tree, &src.join("nobodys"))
                .unwrap()
                .unwrap();
        assert_eq!(node.user, "nobody");
    } else {
        let me = unsafe { (libc::geteuid(), libc::getegid()) };
        assert_eq!(owner("nobodys"), me);
    }
}

#[test]
fn reading_for_backup_leaves_access_times_alone_and_never_opens_fifos() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    std::fs::create_dir(&src).unwrap();
    let file = src.join("old");
    std::fs::write(&file, b"read me").unwrap();
    let two_days_ago = filetime::FileTime::from_unix_time(
        filetime::FileTime::now().unix_seconds() - 2 * 86_400,
        0,
    );
    let three_days_ago =
        filetime::FileTime::from_unix_time(two_days_ago.unix_seconds() - 86_400, 0);
    filetime::set_file_times(&file, two_days_ago, three_days_ago).unwrap();
    let fifo = CString::new(src.join("pipe").as_os_str().as_bytes()).unwrap();
    assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o644) }, 0);

    // A FIFO with no writer blocks whoever opens it: the backup must not.
    let (tx, rx) = std::sync::mpsc::channel();
    let (src2, repo_path) = (src.clone(), tmp.path().join("repo"));
    std::thread::spawn(move || {
        let mut repo = init_repo(&repo_path);
        let r = backup(&mut repo, &[src2], &BackupOptions::default()).unwrap();
        tx.send(r).unwrap();
    });
    let report = rx
        .recv_timeout(std::time::Duration::from_secs(60))
        .expect("backup blocked on a FIFO");
    assert_eq!(report.snapshot.summary.bytes_read, 7);
    assert_eq!(report.snapshot.summary.others, 1);
    let atime = filetime::FileTime::from_last_access_time(&std::fs::metadata(&file).unwrap());
    assert_eq!(atime, two_days_ago, "backup updated the access time");
}
