//! `dump`, `tag` and snapshot selection (`snapshots --host/--tag/--path/
//! --group-by/--latest`), through the library and through the binary.

use cairn_engine::backup::{backup, BackupOptions, BackupReport};
use cairn_engine::dump::{self, DumpTarget};
use cairn_engine::restore::restore;
use cairn_engine::select::{group, keep_latest, GroupBy, SnapshotFilter};
use cairn_engine::tag::{change_tags, TagChange};
use cairn_engine::{Error, Repository};
use cairn_format::tree::NodeKind;
use cairn_format::SnapshotId;
use cairn_tests::*;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::ffi::{CString, OsStr};
use std::fs;
use std::io::Read;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;

fn snap(repo: &mut Repository, paths: &[PathBuf], opts: &BackupOptions) -> BackupReport {
    let r = backup(repo, paths, opts).unwrap();
    assert!(r.skipped.is_empty(), "{:?}", r.skipped);
    r
}

/// A new directory `name` in `parent`, by the absolute path a backup records.
fn new_dir(parent: &Path, name: &str) -> PathBuf {
    let dir = parent.canonicalize().unwrap().join(name);
    fs::create_dir_all(&dir).unwrap();
    dir
}

fn ok(out: &std::process::Output) -> &[u8] {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    &out.stdout
}

fn strings(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

fn mkfifo(path: &Path) {
    let p = CString::new(path.as_os_str().as_bytes()).unwrap();
    assert_eq!(unsafe { libc::mkfifo(p.as_ptr(), 0o640) }, 0);
}

#[test]
fn dump_of_a_file_is_byte_identical_and_streams_several_blobs() {
    let tmp = tempfile::tempdir().unwrap();
    let src = new_dir(tmp.path(), "src");
    let big = src.join("big.bin");
    write_noise_file(&big, (9 << 20) + 12_345, 7);
    std::os::unix::fs::symlink("big.bin", src.join("link")).unwrap();
    let repo_path = tmp.path().join("repo");
    let mut repo = init_repo(&repo_path);
    let report = snap(
        &mut repo,
        std::slice::from_ref(&src),
        &BackupOptions::default(),
    );

    let target = dump::resolve(&repo, &report.snapshot, &big).unwrap();
    assert!(!target.is_tar());
    let DumpTarget::File(node) = &target else {
        panic!("{target:?}")
    };
    let NodeKind::File { content } = &node.kind else {
        panic!("{node:?}")
    };
    assert!(content.len() >= 3, "only {} blobs", content.len());

    let mut out = Vec::new();
    dump::dump(&repo, &report.snapshot, &big, &mut out).unwrap();
    assert_eq!(blake3::hash(&out).as_bytes(), &hash_file(&big));

    let out = cairn(
        &repo_path,
        &[
            OsStr::new("dump"),
            OsStr::new(&report.id.short()),
            big.as_os_str(),
        ],
        &[],
    );
    assert_eq!(blake3::hash(ok(&out)).as_bytes(), &hash_file(&big));

    // What is neither a file nor a directory, or is not there, is refused
    // before anything is written.
    let mut out = Vec::new();
    let err = dump::dump(&repo, &report.snapshot, &src.join("link"), &mut out).unwrap_err();
    assert!(err.to_string().contains("not a regular file"), "{err}");
    let err = dump::dump(&repo, &report.snapshot, &src.join("nope"), &mut out).unwrap_err();
    assert!(matches!(err, Error::PathNotInSnapshot(_)), "{err}");
    assert!(out.is_empty());
}

/// One entry of a tar archive as read back by the tar crate.
struct TarEntry {
    /// The type byte.
    kind: u8,
    /// Its pax records.
    pax: BTreeMap<String, Vec<u8>>,
    /// Link target, long ones included.
    link: Option<Vec<u8>>,
    header: tar::Header,
}

/// Every entry of a tar archive, by path.
fn tar_entries(archive: &[u8]) -> BTreeMap<Vec<u8>, TarEntry> {
    let mut out = BTreeMap::new();
    let mut ar = tar::Archive::new(archive);
    for entry in ar.entries().unwrap() {
        let mut entry = entry.unwrap();
        let mut pax = BTreeMap::new();
        if let Some(exts) = entry.pax_extensions().unwrap() {
            for ext in exts {
                let ext = ext.unwrap();
                pax.insert(ext.key().unwrap().to_string(), ext.value_bytes().to_vec());
            }
        }
        let path = entry.path_bytes().into_owned();
        let header = entry.header().clone();
        let link = entry.link_name_bytes().map(|l| l.into_owned());
        let mut data = Vec::new();
        entry.read_to_end(&mut data).unwrap();
        assert_eq!(data.len() as u64, header.size().unwrap());
        let kind = header.entry_type().as_byte();
        out.insert(
            path,
            TarEntry {
                kind,
                pax,
                link,
                header,
            },
        );
    }
    out
}

#[test]
fn dump_of_a_directory_is_a_tar_archive_of_the_same_tree() {
    let tmp = tempfile::tempdir().unwrap();
    let src = new_dir(tmp.path(), "src");
    build_varied_tree(&src);
    fs::create_dir(src.join("links")).unwrap();
    fs::write(src.join("links/one"), b"linked twice").unwrap();
    fs::hard_link(src.join("links/one"), src.join("links/two")).unwrap();
    mkfifo(&src.join("links/fifo"));
    let with_xattr = set_xattr(&src.join("script.sh"), "user.note", b"bin\x00ary").is_ok();
    let long_name = "n".repeat(180);
    fs::write(src.join(&long_name), b"long name").unwrap();
    let long_raw = [&b"\xff\xfe"[..], &[b'r'; 200]].concat();
    fs::write(src.join(OsStr::from_bytes(&long_raw)), b"long, not UTF-8").unwrap();
    std::os::unix::fs::symlink("a//./b/", src.join("odd-link")).unwrap();
    let long_target = [&b"./x//\xfe/"[..], &[b't'; 300]].concat();
    std::os::unix::fs::symlink(OsStr::from_bytes(&long_target), src.join("long-link")).unwrap();
    // The times of the directories written to above, set again last.
    filetime::set_file_mtime(&src, filetime::FileTime::from_unix_time(1_500_000_000, 1)).unwrap();
    let links_time = filetime::FileTime::from_unix_time(1_400_000_000, 999_999_999);
    filetime::set_file_mtime(src.join("links"), links_time).unwrap();

    let repo_path = tmp.path().join("repo");
    let mut repo = init_repo(&repo_path);
    let report = snap(
        &mut repo,
        std::slice::from_ref(&src),
        &BackupOptions::default(),
    );

    // Through the binary, unpacked by GNU tar: everything assert_same_tree
    // compares comes back, directory times with nanoseconds included.
    let out = cairn(
        &repo_path,
        &[OsStr::new("dump"), OsStr::new("latest"), src.as_os_str()],
        &[],
    );
    let archive = ok(&out).to_vec();
    let mut lib = Vec::new();
    dump::dump(&repo, &report.snapshot, &src, &mut lib).unwrap();
    assert_eq!(lib.len(), archive.len());

    let unpacked = tmp.path().join("gnu");
    fs::create_dir(&unpacked).unwrap();
    let tar_file = tmp.path().join("src.tar");
    fs::write(&tar_file, &archive).unwrap();
    let status = Command::new("tar")
        .args(["-x", "-p", "--warning=no-timestamp", "-f"])
        .arg(&tar_file)
        .arg("-C")
        .arg(&unpacked)
        .status()
        .expect("GNU tar");
    assert!(status.success());
    assert_same_tree(&src, &unpacked);
    let ino = |p: &str| fs::metadata(unpacked.join(p)).unwrap().ino();
    assert_eq!(ino("links/one"), ino("links/two"), "hard link kept");

    // Read with the tar crate: paths are relative to the dumped directory,
    // raw bytes survive, the owner's names are recorded, times that need
    // more than the header can hold are in pax records.
    let entries = tar_entries(&archive);
    let mut expected: BTreeSet<Vec<u8>> = tree_listing(&src).into_keys().collect();
    let listed: BTreeSet<Vec<u8>> = entries
        .keys()
        .map(|p| p.strip_suffix(b"/").unwrap_or(p).to_vec())
        .collect();
    assert_eq!(listed, std::mem::take(&mut expected));
    assert!(entries.contains_key(&b"latin1-\xe9\xff"[..]));
    assert!(entries.contains_key(long_name.as_bytes()));
    assert!(entries.contains_key(&long_raw));
    let e = &entries[&b"long-link"[..]];
    assert_eq!((e.kind, e.link.as_ref()), (b'2', Some(&long_target)));
    assert!(entries.contains_key(&b"wide/"[..]));
    let e = &entries[&b"empty file"[..]];
    assert_eq!(e.kind, b'0');
    assert_eq!(e.pax["mtime"], b"-31535999.876543211");
    let e = &entries[&b"links/two"[..]];
    assert_eq!((e.kind, e.link.as_deref()), (b'1', Some(&b"links/one"[..])));
    assert_eq!(entries[&b"links/fifo"[..]].kind, b'6');
    let e = &entries[&b"link-to-non-utf8"[..]];
    assert_eq!(
        (e.kind, e.link.as_deref()),
        (b'2', Some(&b"target-\xfe"[..]))
    );
    let meta = fs::metadata(src.join("noise.bin")).unwrap();
    let header = &entries[&b"noise.bin"[..]].header;
    assert_eq!(header.uid().unwrap(), u64::from(meta.uid()));
    assert_eq!(header.mode().unwrap(), meta.mode() & 0o7777);
    if let Some(name) = cairn_engine::sysinfo::user_name(meta.uid()) {
        assert_eq!(header.username().unwrap(), Some(name.as_str()));
    }
    if with_xattr {
        assert_eq!(
            entries[&b"script.sh"[..]].pax["SCHILY.xattr.user.note"],
            b"bin\x00ary"
        );
    }

    // Unpacked by the tar crate, which sets whole-second times only and
    // makes FIFOs regular files: everything else matches.
    let by_crate = tmp.path().join("crate");
    let mut ar = tar::Archive::new(&archive[..]);
    ar.set_preserve_permissions(true);
    ar.unpack(&by_crate).unwrap();
    let a = tree_listing(&src);
    let b = tree_listing(&by_crate);
    assert_eq!(a.keys().collect::<Vec<_>>(), b.keys().collect::<Vec<_>>());
    for (name, ea) in a.iter().filter(|(_, e)| e.kind != 'o') {
        let eb = &b[name];
        assert_eq!(
            (ea.kind, ea.mode, &ea.content),
            (eb.kind, eb.mode, &eb.content),
            "{}",
            String::from_utf8_lossy(name)
        );
    }

    // The whole snapshot: paths start below the root, and the directories
    // above the backed-up one are there too.
    let mut whole = Vec::new();
    dump::dump(&repo, &report.snapshot, Path::new("/"), &mut whole).unwrap();
    let entries = tar_entries(&whole);
    let rel = src
        .strip_prefix("/")
        .unwrap()
        .as_os_str()
        .as_bytes()
        .to_vec();
    let mut noise = rel.clone();
    noise.extend_from_slice(b"/noise.bin");
    assert_eq!(entries[&noise].header.size().unwrap(), 3 << 20);
    let mut top = rel.split(|&b| b == b'/').next().unwrap().to_vec();
    top.push(b'/');
    assert_eq!(entries[&top].kind, b'5');
    assert!(entries.keys().all(|p| !p.starts_with(b"/")));
}

#[test]
fn a_tar_archive_is_not_written_to_a_terminal() {
    let tmp = tempfile::tempdir().unwrap();
    let src = new_dir(tmp.path(), "src");
    fs::write(src.join("f"), b"x").unwrap();
    let repo_path = tmp.path().join("repo");
    let mut repo = init_repo(&repo_path);
    snap(
        &mut repo,
        std::slice::from_ref(&src),
        &BackupOptions::default(),
    );
    // `script` runs the command with a pseudo-terminal as its output.
    let run = |path: &Path| {
        let cmd = format!(
            "{} dump latest {}; echo exit=$?",
            cairn_bin().display(),
            path.display()
        );
        Command::new("script")
            .args(["-q", "-e", "-c", &cmd, "/dev/null"])
            .env("CAIRN_REPOSITORY", &repo_path)
            .env("CAIRN_PASSWORD", PASSWORD)
            .stdin(std::process::Stdio::null())
            .output()
    };
    // `script` is in util-linux, which every Debian system has.
    let out = run(&src).expect("run `script` (util-linux)");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("refusing to write"), "{text}");
    assert!(text.contains("exit=1"), "{text}");
    let text = String::from_utf8_lossy(&run(&src.join("f")).unwrap().stdout).into_owned();
    assert!(
        text.contains("exit=0"),
        "a plain file may go to a terminal: {text}"
    );
}

#[test]
fn tag_changes_exactly_the_tags_and_replaces_the_snapshot_file() {
    let tmp = tempfile::tempdir().unwrap();
    let src = new_dir(tmp.path(), "src");
    fs::write(src.join("file"), b"content").unwrap();
    let repo_path = tmp.path().join("repo");
    let mut repo = init_repo(&repo_path);
    let opts = BackupOptions {
        tags: strings(&["a"]),
        ..Default::default()
    };
    let first = snap(&mut repo, std::slice::from_ref(&src), &opts);
    let other = snap(
        &mut repo,
        std::slice::from_ref(&src),
        &BackupOptions::default(),
    );
    let file = |id: &SnapshotId| repo_path.join("snapshots").join(id.to_hex());

    let cases: [(TagChange, &[&str]); 5] = [
        (
            TagChange {
                add: strings(&["b", "c", "a"]),
                ..Default::default()
            },
            &["a", "b", "c"],
        ),
        (
            TagChange {
                remove: strings(&["a", "missing"]),
                ..Default::default()
            },
            &["b", "c"],
        ),
        (
            TagChange {
                add: strings(&["d"]),
                remove: strings(&["b"]),
                set: None,
                hold_until: None,
            },
            &["c", "d"],
        ),
        (
            TagChange {
                set: Some(strings(&["z", "y"])),
                ..Default::default()
            },
            &["z", "y"],
        ),
        (
            TagChange {
                set: Some(vec![]),
                ..Default::default()
            },
            &[],
        ),
    ];
    let mut id = first.id;
    for (change, want) in cases {
        let before = repo.load_snapshot(&id).unwrap();
        let changed = change_tags(&repo, &[id, id], &change).unwrap();
        assert_eq!(changed.len(), 1, "{change:?}");
        let (old, new) = changed[0];
        assert_eq!(old, id);
        assert!(!file(&old).exists(), "old snapshot file still there");
        let after = repo.load_snapshot(&new).unwrap();
        assert_eq!(after.tags, strings(want), "{change:?}");
        let mut same = after.clone();
        same.tags = before.tags.clone();
        assert_eq!(same, before, "only the tags changed");
        id = new;
    }
    // No change, no new file.
    let names = || fs::read_dir(repo_path.join("snapshots")).unwrap().count();
    let count = names();
    let unchanged = TagChange {
        remove: strings(&["never"]),
        ..Default::default()
    };
    assert!(change_tags(&repo, &[id, other.id], &unchanged)
        .unwrap()
        .is_empty());
    assert_eq!(names(), count);
    // A snapshot that is gone is named in the error, and nothing is written.
    let err = change_tags(&repo, &[first.id], &unchanged).unwrap_err();
    assert!(err.to_string().contains(&first.id.to_hex()), "{err}");
    assert_eq!(names(), count);
    assert!(TagChange::default().validate().is_err());

    // Through the binary, with comma lists; the result restores the same tree.
    let out = cairn(
        &repo_path,
        &args(&["tag", "--add", "p,q", "--add", "r", &id.short(), "latest"]),
        &[],
    );
    let text = String::from_utf8_lossy(ok(&out)).into_owned();
    assert!(text.contains("2 snapshots changed, 0 unchanged"), "{text}");
    let repo = open_repo(&repo_path);
    let list = repo.snapshots().unwrap();
    assert_eq!(list.len(), 2);
    assert!(list.iter().all(|(i, _)| *i != id && *i != other.id));
    for (_, s) in &list {
        assert_eq!(s.tags, strings(&["p", "q", "r"]));
        assert_eq!(s.tree, first.snapshot.tree);
    }
    let out = cairn(
        &repo_path,
        &args(&["tag", "--remove", "q", "--set", "x", "latest"]),
        &[],
    );
    assert!(!out.status.success(), "--set with --remove accepted");
    let out = cairn(&repo_path, &args(&["tag", "latest"]), &[]);
    assert!(!out.status.success(), "no change accepted");
    let out = cairn(&repo_path, &args(&["tag", "--set", "", "latest"]), &[]);
    ok(&out);
    let (_, latest) = repo.find_snapshot("latest").unwrap();
    assert!(latest.tags.is_empty(), "{:?}", latest.tags);
    let target = tmp.path().join("restored");
    let r = restore(&repo, &latest, Some(&src), &target).unwrap();
    assert!(r.errors.is_empty(), "{:?}", r.errors);
    assert_same_tree(&src, &target.join("src"));
}

#[test]
fn snapshot_filters_and_groups() {
    let tmp = tempfile::tempdir().unwrap();
    let a = new_dir(tmp.path(), "a");
    let b = new_dir(tmp.path(), "b");
    fs::write(a.join("f"), b"a").unwrap();
    fs::write(b.join("f"), b"b").unwrap();
    let repo_path = tmp.path().join("repo");
    let mut repo = init_repo(&repo_path);
    let plan: [(&str, &str, &[&PathBuf], &[&str]); 5] = [
        ("s1", "h1", &[&a], &["daily", "db"]),
        ("s2", "h1", &[&a, &b], &["daily"]),
        ("s3", "h2", &[&a], &["db", "weekly"]),
        ("s4", "h2", &[&b], &[]),
        ("s5", "h1", &[&a], &["db", "daily"]),
    ];
    let mut names: HashMap<SnapshotId, &str> = HashMap::new();
    for (name, host, paths, tags) in plan {
        let paths: Vec<PathBuf> = paths.iter().map(|p| p.to_path_buf()).collect();
        let opts = BackupOptions {
            hostname: Some(host.into()),
            tags: strings(tags),
            ..Default::default()
        };
        names.insert(snap(&mut repo, &paths, &opts).id, name);
    }
    let all = repo.snapshots().unwrap();
    let named = |list: &[(SnapshotId, cairn_format::snapshot::Snapshot)]| -> Vec<&str> {
        list.iter().map(|(id, _)| names[id]).collect()
    };
    assert_eq!(named(&all), ["s1", "s2", "s3", "s4", "s5"]);

    let tags =
        |lists: &[&[&str]]| -> Vec<Vec<String>> { lists.iter().map(|l| strings(l)).collect() };
    let mut with_slash = a.clone().into_os_string();
    with_slash.push("/");
    let cases: Vec<(&str, SnapshotFilter, &[&str])> = vec![
        (
            "nothing",
            SnapshotFilter::default(),
            &["s1", "s2", "s3", "s4", "s5"],
        ),
        (
            "one host",
            SnapshotFilter {
                hosts: strings(&["h1"]),
                ..Default::default()
            },
            &["s1", "s2", "s5"],
        ),
        (
            "either host",
            SnapshotFilter {
                hosts: strings(&["h2", "h1"]),
                ..Default::default()
            },
            &["s1", "s2", "s3", "s4", "s5"],
        ),
        (
            "unknown host",
            SnapshotFilter {
                hosts: strings(&["h9"]),
                ..Default::default()
            },
            &[],
        ),
        (
            "both tags",
            SnapshotFilter {
                tags: tags(&[&["daily", "db"]]),
                ..Default::default()
            },
            &["s1", "s5"],
        ),
        (
            "either tag",
            SnapshotFilter {
                tags: tags(&[&["daily"], &["weekly"]]),
                ..Default::default()
            },
            &["s1", "s2", "s3", "s5"],
        ),
        (
            "tag or untagged",
            SnapshotFilter {
                tags: tags(&[&["weekly"], &[]]),
                ..Default::default()
            },
            &["s3", "s4"],
        ),
        (
            "tags never together",
            SnapshotFilter {
                tags: tags(&[&["daily", "weekly"]]),
                ..Default::default()
            },
            &[],
        ),
        (
            "one path",
            SnapshotFilter {
                paths: vec![a.clone()],
                ..Default::default()
            },
            &["s1", "s2", "s3", "s5"],
        ),
        (
            "path with a trailing slash",
            SnapshotFilter {
                paths: vec![PathBuf::from(&with_slash)],
                ..Default::default()
            },
            &["s1", "s2", "s3", "s5"],
        ),
        (
            "all of two paths",
            SnapshotFilter {
                paths: vec![b.clone(), a.clone()],
                ..Default::default()
            },
            &["s2"],
        ),
        (
            "a path below a backed-up one",
            SnapshotFilter {
                paths: vec![a.join("f")],
                ..Default::default()
            },
            &[],
        ),
        (
            "host and tag",
            SnapshotFilter {
                hosts: strings(&["h2"]),
                tags: tags(&[&["db"]]),
                ..Default::default()
            },
            &["s3"],
        ),
        (
            "host, tag and path",
            SnapshotFilter {
                hosts: strings(&["h1"]),
                tags: tags(&[&["daily"]]),
                paths: vec![b.clone()],
            },
            &["s2"],
        ),
    ];
    for (what, filter, want) in &cases {
        assert_eq!(named(&filter.apply(all.clone())), *want, "{what}");
    }

    type Groups = Vec<(Vec<String>, Vec<&'static str>)>;
    let grouped = |by: &str, latest: Option<usize>| -> Groups {
        let mut groups = group(all.clone(), by.parse::<GroupBy>().unwrap());
        if let Some(n) = latest {
            keep_latest(&mut groups, n);
        }
        groups
            .iter()
            .map(|(key, list)| {
                let mut k = Vec::new();
                k.extend(key.hostname.clone());
                if let Some(p) = &key.paths {
                    k.push(format!("{} paths", p.len()));
                }
                if let Some(t) = &key.tags {
                    k.push(t.join(","));
                }
                let list = list.iter().map(|(id, _)| names[id]).collect();
                (k, list)
            })
            .collect()
    };
    let g = |k: &[&str], l: &[&'static str]| (strings(k), l.to_vec());
    assert_eq!(grouped("", None), [g(&[], &["s1", "s2", "s3", "s4", "s5"])]);
    assert_eq!(grouped("", Some(2)), [g(&[], &["s4", "s5"])]);
    assert_eq!(
        grouped("host", None),
        [g(&["h1"], &["s1", "s2", "s5"]), g(&["h2"], &["s3", "s4"])]
    );
    assert_eq!(
        grouped("tags", None),
        [
            g(&[""], &["s4"]),
            g(&["daily"], &["s2"]),
            g(&["daily,db"], &["s1", "s5"]),
            g(&["db,weekly"], &["s3"]),
        ]
    );
    assert_eq!(
        grouped("host,paths", Some(1)),
        [
            g(&["h1", "1 paths"], &["s5"]),
            g(&["h1", "2 paths"], &["s2"]),
            g(&["h2", "1 paths"], &["s3"]),
            g(&["h2", "1 paths"], &["s4"]),
        ]
    );

    // The same through the binary, as JSON.
    let json = |extra: &[&str]| -> serde_json::Value {
        let mut list = vec!["snapshots", "--json"];
        list.extend_from_slice(extra);
        serde_json::from_slice(ok(&cairn(&repo_path, &args(&list), &[]))).unwrap()
    };
    let ids = |v: &serde_json::Value| -> Vec<&str> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|s| {
                let id = SnapshotId::from_hex(s["id"].as_str().unwrap()).unwrap();
                names[&id]
            })
            .collect()
    };
    let a_str = a.to_str().unwrap();
    let b_str = b.to_str().unwrap();
    let cli_cases: [(&[&str], &[&str]); 7] = [
        (&[], &["s1", "s2", "s3", "s4", "s5"]),
        (&["--host", "h1"], &["s1", "s2", "s5"]),
        (&["--tag", "daily,db"], &["s1", "s5"]),
        (
            &["--tag", "daily", "--tag", "weekly"],
            &["s1", "s2", "s3", "s5"],
        ),
        (&["--tag", "weekly", "--tag", ""], &["s3", "s4"]),
        (&["--path", a_str, "--path", b_str], &["s2"]),
        (
            &["--host", "h1", "--host", "h2", "--latest", "2"],
            &["s4", "s5"],
        ),
    ];
    for (extra, want) in cli_cases {
        assert_eq!(ids(&json(extra)), want, "{extra:?}");
    }
    let groups = json(&["--group-by", "host,paths", "--latest", "1", "--tag", "db"]);
    let groups = groups.as_array().unwrap();
    assert_eq!(groups.len(), 2);
    assert_eq!(groups[0]["group"]["hostname"], "h1");
    assert_eq!(groups[0]["group"]["paths"], serde_json::json!([a_str]));
    assert!(groups[0]["group"].get("tags").is_none());
    assert_eq!(ids(&groups[0]["snapshots"]), ["s5"]);
    assert_eq!(groups[1]["group"]["hostname"], "h2");
    assert_eq!(ids(&groups[1]["snapshots"]), ["s3"]);

    let text = ok(&cairn(
        &repo_path,
        &args(&["snapshots", "--group-by", "tags"]),
        &[],
    ))
    .to_vec();
    let text = String::from_utf8(text).unwrap();
    assert!(text.contains("snapshots with no tags:"), "{text}");
    assert!(text.contains("snapshots with tags daily,db:"), "{text}");
    assert!(text.ends_with("5 snapshots\n"), "{text}");
    for bad in [&["--group-by", "colour"][..], &["--path", "relative/dir"]] {
        let mut list = vec!["snapshots"];
        list.extend_from_slice(bad);
        let out = cairn(&repo_path, &args(&list), &[]);
        assert!(!out.status.success(), "{bad:?} accepted");
    }
}

#[test]
fn a_dump_that_fails_midway_reports_why_and_leaves_the_archive_unfinished() {
    let tmp = tempfile::tempdir().unwrap();
    let src = new_dir(tmp.path(), "src");
    write_noise_file(&src.join("big.bin"), 20 << 20, 3);
    fs::write(src.join("small.txt"), b"after the big one").unwrap();
    let repo_path = tmp.path().join("repo");
    let mut repo = init_repo(&repo_path);
    let report = snap(
        &mut repo,
        std::slice::from_ref(&src),
        &BackupOptions::default(),
    );
    let DumpTarget::File(node) =
        dump::resolve(&repo, &report.snapshot, &src.join("big.bin")).unwrap()
    else {
        panic!()
    };
    let NodeKind::File { content } = &node.kind else {
        panic!()
    };
    // The first pack holds only the start of big.bin: trees are written last.
    let pack = repo
        .index()
        .get(cairn_format::BlobKind::Data, &content[0])
        .unwrap()
        .pack
        .to_hex();
    fs::remove_file(repo_path.join("data").join(&pack[..2]).join(&pack)).unwrap();

    for path in [src.join("big.bin"), src.clone()] {
        let mut out = Vec::new();
        let err = dump::dump(&repo, &report.snapshot, &path, &mut out).unwrap_err();
        assert!(
            matches!(&err, Error::Missing(what) if what.contains(&pack)),
            "{err}"
        );
        if path == src {
            // No end-of-archive marker: a reader sees the archive is cut short.
            let tar_file = tmp.path().join("cut.tar");
            fs::write(&tar_file, &out).unwrap();
            let listed = Command::new("tar")
                .arg("-tf")
                .arg(&tar_file)
                .output()
                .unwrap();
            assert!(!listed.status.success(), "a cut archive read as whole");
        }
    }
    let out = cairn(
        &repo_path,
        &[OsStr::new("dump"), OsStr::new("latest"), src.as_os_str()],
        &[],
    );
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&pack) && err.contains("missing"), "{err}");
}
