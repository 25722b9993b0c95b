//! Helpers shared by the end-to-end tests: generated trees, tree comparison,
//! repository fixtures and a runner for the `cairn` binary.

pub mod faults;
pub mod http;
pub mod postgres;
pub mod proxy;
pub mod remote;
pub mod s3;
pub mod sinks;
pub mod sshd;
pub mod webdriver;

use cairn_engine::backend::LocalBackend;
use cairn_engine::{InitOptions, Repository};
use cairn_format::key::KdfParams;
use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::fs;
use std::io::{Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The test password.
pub const PASSWORD: &str = "correct horse battery staple";

/// Repository options with cheap password hashing, so tests run fast.
pub fn fast_init() -> InitOptions {
    InitOptions {
        kdf: KdfParams::argon2id(64, 1, 1),
        ..Default::default()
    }
}

/// Creates a repository at `path` with the test password.
pub fn init_repo(path: &Path) -> Repository {
    Repository::init(LocalBackend::new(path), PASSWORD.as_bytes(), &fast_init()).expect("init")
}

/// The master keys of the repository at `repo`, as anyone holding the test
/// password has them.
pub fn master_keys(repo: &Path) -> cairn_format::crypto::MasterKeys {
    walk_files(&repo.join("keys"))
        .iter()
        .find_map(|f| {
            cairn_format::key::open_key_file(&fs::read(f).unwrap(), PASSWORD.as_bytes()).ok()
        })
        .expect("a key file opens with the test password")
        .0
}

/// Opens the repository at `path` with the test password.
pub fn open_repo(path: &Path) -> Repository {
    Repository::open(LocalBackend::new(path), PASSWORD.as_bytes()).expect("open")
}

/// Deterministic pseudo-random bytes (xorshift64*), fast enough for gigabytes.
pub struct Noise(u64);

impl Noise {
    /// A generator seeded with `seed`.
    pub fn new(seed: u64) -> Self {
        Noise(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    /// Fills `buf`.
    pub fn fill(&mut self, buf: &mut [u8]) {
        for chunk in buf.chunks_mut(8) {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            let v = self.0.wrapping_mul(0x2545_F491_4F6C_DD1D).to_le_bytes();
            chunk.copy_from_slice(&v[..chunk.len()]);
        }
    }

    /// `len` bytes.
    pub fn bytes(&mut self, len: usize) -> Vec<u8> {
        let mut v = vec![0u8; len];
        self.fill(&mut v);
        v
    }
}

/// Writes a file of `len` pseudo-random bytes without holding it in memory.
pub fn write_noise_file(path: &Path, len: u64, seed: u64) {
    let mut f = std::io::BufWriter::new(fs::File::create(path).unwrap());
    let mut noise = Noise::new(seed);
    let mut buf = vec![0u8; 1 << 20];
    let mut left = len;
    while left > 0 {
        let n = left.min(buf.len() as u64) as usize;
        noise.fill(&mut buf[..n]);
        f.write_all(&buf[..n]).unwrap();
        left -= n as u64;
    }
    f.flush().unwrap();
}

/// Text that compresses well.
pub fn compressible_text(len: usize, seed: u64) -> Vec<u8> {
    let words = [
        "backup",
        "restore",
        "snapshot",
        "chunk",
        "pack",
        "index",
        "tree",
        "blob",
        "key",
        "repository",
    ];
    let mut noise = Noise::new(seed);
    let mut out = Vec::with_capacity(len + 16);
    let mut b = [0u8; 8];
    while out.len() < len {
        noise.fill(&mut b);
        out.extend_from_slice(words[(b[0] % 10) as usize].as_bytes());
        out.push(if b[1] % 12 == 0 { b'\n' } else { b' ' });
    }
    out.truncate(len);
    out
}

/// Builds the tree the round-trip guarantee is stated for: empty files and
/// directories, 60 levels of nesting, 1,000 entries in one directory, symlinks
/// (dangling too), names with spaces, newlines, unicode and non-UTF-8 bytes,
/// odd modes and old and new timestamps.
pub fn build_varied_tree(root: &Path) {
    fs::create_dir_all(root).unwrap();
    fs::write(root.join("empty file"), b"").unwrap();
    fs::create_dir(root.join("empty dir")).unwrap();
    fs::write(root.join("line\nbreak"), b"newline in the name").unwrap();
    fs::write(root.join("ünïcødé ✓ 名前"), b"unicode name").unwrap();
    fs::write(
        root.join(OsStr::from_bytes(b"latin1-\xe9\xff")),
        b"not utf-8",
    )
    .unwrap();
    fs::write(root.join("  spaces  "), compressible_text(10_000, 1)).unwrap();
    fs::write(root.join("noise.bin"), Noise::new(2).bytes(3 << 20)).unwrap();
    std::os::unix::fs::symlink("noise.bin", root.join("link")).unwrap();
    std::os::unix::fs::symlink("/does/not/exist", root.join("dangling")).unwrap();
    std::os::unix::fs::symlink(
        OsStr::from_bytes(b"target-\xfe"),
        root.join("link-to-non-utf8"),
    )
    .unwrap();
    let script = root.join("script.sh");
    fs::write(&script, b"#!/bin/sh\necho hi\n").unwrap();
    fs::set_permissions(&script, fs::Permissions::from_mode(0o750)).unwrap();
    let private = root.join("private");
    fs::write(&private, b"secret").unwrap();
    fs::set_permissions(&private, fs::Permissions::from_mode(0o400)).unwrap();

    let mut deep = root.join("deep");
    for level in 0..60 {
        deep.push(format!("d{level}"));
    }
    fs::create_dir_all(&deep).unwrap();
    fs::write(deep.join("bottom.txt"), b"at the bottom").unwrap();

    let wide = root.join("wide");
    fs::create_dir(&wide).unwrap();
    for i in 0..1000 {
        fs::write(
            wide.join(format!("f{i:04}")),
            format!("file {i}\n").repeat(i % 7),
        )
        .unwrap();
    }
    let old = filetime::FileTime::from_unix_time(-86_400 * 365, 123_456_789);
    let future = filetime::FileTime::from_unix_time(4_102_444_800, 987_654_321);
    filetime::set_file_mtime(root.join("empty file"), old).unwrap();
    filetime::set_file_mtime(root.join("noise.bin"), future).unwrap();
    filetime::set_symlink_file_times(root.join("link"), old, old).unwrap();
    // Directory times last, after their contents were written.
    filetime::set_file_mtime(root.join("empty dir"), old).unwrap();
    filetime::set_file_mtime(&wide, future).unwrap();
}

/// One entry as compared by [`assert_same_tree`].
#[derive(Debug, PartialEq, Eq)]
pub struct Entry {
    /// `f`, `d`, `l` or `o`.
    pub kind: char,
    /// Permission bits (not for symlinks).
    pub mode: u32,
    /// Modification time (seconds, nanoseconds).
    pub mtime: (i64, i64),
    /// BLAKE3 of the content for files, the target for symlinks.
    pub content: Vec<u8>,
}

/// Every entry below `root`, keyed by its path relative to `root`.
pub fn tree_listing(root: &Path) -> BTreeMap<Vec<u8>, Entry> {
    let mut out = BTreeMap::new();
    list_into(root, root, &mut out);
    out
}

fn list_into(root: &Path, dir: &Path, out: &mut BTreeMap<Vec<u8>, Entry>) {
    for e in fs::read_dir(dir).unwrap() {
        let path = e.unwrap().path();
        let meta = fs::symlink_metadata(&path).unwrap();
        let ft = meta.file_type();
        let (kind, content) = if ft.is_symlink() {
            (
                'l',
                fs::read_link(&path)
                    .unwrap()
                    .as_os_str()
                    .as_bytes()
                    .to_vec(),
            )
        } else if ft.is_dir() {
            ('d', vec![])
        } else if ft.is_file() {
            ('f', hash_file(&path).to_vec())
        } else {
            ('o', vec![])
        };
        let rel = path
            .strip_prefix(root)
            .unwrap()
            .as_os_str()
            .as_bytes()
            .to_vec();
        let mode = if kind == 'l' { 0 } else { meta.mode() & 0o7777 };
        out.insert(
            rel,
            Entry {
                kind,
                mode,
                mtime: (meta.mtime(), meta.mtime_nsec()),
                content,
            },
        );
        if kind == 'd' {
            list_into(root, &path, out);
        }
    }
}

/// BLAKE3 of a file's content, read in pieces.
pub fn hash_file(path: &Path) -> [u8; 32] {
    let mut f = fs::File::open(path).unwrap();
    let mut h = blake3::Hasher::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    *h.finalize().as_bytes()
}

/// Asserts two trees have the same names, types, modes, symlink targets,
/// file contents and modification times (files, directories and symlinks).
pub fn assert_same_tree(expected: &Path, actual: &Path) {
    let a = tree_listing(expected);
    let b = tree_listing(actual);
    let names_a: Vec<_> = a.keys().collect();
    let names_b: Vec<_> = b.keys().collect();
    assert_eq!(names_a, names_b, "different entries");
    for (name, ea) in &a {
        assert_eq!(
            Some(ea),
            b.get(name),
            "entry {:?} differs",
            String::from_utf8_lossy(name)
        );
    }
}

/// Total bytes of all files below `dir`.
pub fn dir_size(dir: &Path) -> u64 {
    walk_files(dir)
        .iter()
        .map(|p| fs::symlink_metadata(p).unwrap().len())
        .sum()
}

/// Every file below `dir`.
pub fn walk_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if fs::symlink_metadata(&p).unwrap().is_dir() {
            out.extend(walk_files(&p));
        } else {
            out.push(p);
        }
    }
    out.sort();
    out
}

/// Paths and content hashes of everything below `dir`, to show nothing changed.
pub fn fingerprint(dir: &Path) -> BTreeMap<PathBuf, [u8; 32]> {
    walk_files(dir)
        .into_iter()
        .map(|p| (p.clone(), hash_file(&p)))
        .collect()
}

/// The `cairn` binary built alongside the tests.
pub fn cairn_bin() -> PathBuf {
    let mut dir = std::env::current_exe().unwrap();
    dir.pop();
    if dir.ends_with("deps") {
        dir.pop();
    }
    let bin = dir.join("cairn");
    assert!(
        bin.exists(),
        "{} not built: run scripts/test.sh (it builds the binary first)",
        bin.display()
    );
    bin
}

/// Runs `cairn` with `args`, the repository `repo` and the test password
/// (unless `CAIRN_PASSWORD` is given in `env`).
pub fn cairn(repo: &Path, args: &[&OsStr], env: &[(&str, &str)]) -> Output {
    cairn_command(repo, args, env).output().unwrap()
}

/// The command [`cairn`] runs, to be started some other way.
pub fn cairn_command(repo: &Path, args: &[&OsStr], env: &[(&str, &str)]) -> Command {
    let mut cmd = Command::new(cairn_bin());
    cmd.env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("CAIRN_REPOSITORY", repo)
        .env("CAIRN_PASSWORD", PASSWORD)
        .stdin(std::process::Stdio::null())
        .args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd
}

/// Runs `cairn --config CONFIG` with `list`, the test password in
/// `CAIRN_PASSWORD` and no repository in the environment.
pub fn cairn_configured(config: &Path, list: &[&str], env: &[(&str, &str)]) -> Output {
    let mut all = vec!["--config", config.to_str().unwrap()];
    all.extend(list);
    cairn(Path::new(""), &args(&all), env)
}

/// A temporary folder holding a varied tree in `src`, a policy file
/// `cairn.toml` whose source `files` (that tree, RPO 1 hour, `extra` added
/// to its table) goes to the repositories `main` and `copy`, and both
/// repositories made; and the folder's path and the policy file's.
pub fn files_policy(extra: &str) -> (tempfile::TempDir, PathBuf, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path().canonicalize().unwrap();
    let text = format!(
        "[repositories.main]\nurl = \"{main}\"\n\n\
         [repositories.copy]\nurl = \"{copy}\"\n\n\
         [sources.files]\npaths = [\"{src}\"]\nrpo = \"1h\"\nto = [\"main\", \"copy\"]\n{extra}\n",
        main = base.join("main").display(),
        copy = base.join("copy").display(),
        src = base.join("src").display(),
    );
    let config = base.join("cairn.toml");
    fs::write(&config, text).unwrap();
    build_varied_tree(&base.join("src"));
    init_named(&config, &["main", "copy"]);
    (tmp, base, config)
}

/// Makes the repositories `names` of the policy file `config` (`-r @NAME`
/// for each), with cheap password hashing.
pub fn init_named(config: &Path, names: &[&str]) {
    for name in names {
        let repo = format!("@{name}");
        ok_text(&cairn_configured(
            config,
            &["-r", &repo, "init", "--kdf-memory-kib", "64"],
            &[],
        ));
    }
}

/// `OsStr` arguments from string slices.
pub fn args<'a>(list: &[&'a str]) -> Vec<&'a OsStr> {
    list.iter().map(|s| OsStr::new(*s)).collect()
}

/// Sets an extended attribute on `path` (not following a symlink).
pub fn set_xattr(path: &Path, name: &str, value: &[u8]) -> std::io::Result<()> {
    let p = std::ffi::CString::new(path.as_os_str().as_bytes()).unwrap();
    let n = std::ffi::CString::new(name).unwrap();
    // SAFETY: both strings are NUL-terminated and live across the call.
    let rc = unsafe {
        libc::lsetxattr(
            p.as_ptr(),
            n.as_ptr(),
            value.as_ptr().cast(),
            value.len(),
            0,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// Backs up `dir` with the default options.
pub fn backup_dir(repo: &mut Repository, dir: &Path) -> cairn_engine::backup::BackupReport {
    let opts = cairn_engine::backup::BackupOptions::default();
    cairn_engine::backup::backup(repo, &[dir.to_path_buf()], &opts).unwrap()
}

/// Asserts that a command succeeded (printing its error output if not) and
/// returns its standard output as text.
#[track_caller]
pub fn ok_text(out: &Output) -> String {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Asserts that a command failed cleanly: exit `code`, one line on standard
/// error starting `cairn: ` and mentioning `needle`, no panic.
#[track_caller]
pub fn assert_clean_failure(out: &Output, code: i32, needle: &str) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(code), "stderr: {stderr}");
    assert_eq!(stderr.lines().count(), 1, "not one line: {stderr:?}");
    assert!(stderr.starts_with("cairn: "), "{stderr:?}");
    assert!(
        stderr.contains(needle),
        "{stderr:?} does not mention {needle:?}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
}

/// A temporary directory (by its canonical path, as backups record it) with
/// a repository made by `cairn init` at `repo` in it, and an empty `src`.
pub fn cli_fixture() -> (tempfile::TempDir, PathBuf, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path().canonicalize().unwrap();
    let repo = base.join("repo");
    ok_text(&cairn(
        &repo,
        &args(&["init", "--kdf-memory-kib", "64"]),
        &[],
    ));
    fs::create_dir(base.join("src")).unwrap();
    (tmp, base, repo)
}

/// Paths relative to `dir`, and content hashes, of the files below it: what
/// a snapshot of `dir` must restore to.
pub fn relative_fingerprint(dir: &Path) -> BTreeMap<PathBuf, [u8; 32]> {
    fingerprint(dir)
        .into_iter()
        .map(|(p, h)| (p.strip_prefix(dir).unwrap().to_path_buf(), h))
        .collect()
}

/// Copies the repository at `from` to `to`, replacing what is there (the
/// empty directories a repository has included).
pub fn copy_repo(from: &Path, to: &Path) {
    let _ = fs::remove_dir_all(to);
    for f in walk_files(from) {
        let target = to.join(f.strip_prefix(from).unwrap());
        fs::create_dir_all(target.parent().unwrap()).unwrap();
        fs::copy(&f, &target).unwrap();
    }
    for d in ["keys", "data", "index", "snapshots", "locks", "marks"] {
        fs::create_dir_all(to.join(d)).unwrap();
    }
}

/// Creates a repository at `path` with 1 MiB packs (so that a small tree
/// spans several) and cheap password hashing.
pub fn init_small_pack_repo(path: &Path) -> Repository {
    let opts = InitOptions {
        pack_size: Some(1 << 20),
        ..fast_init()
    };
    Repository::init(LocalBackend::new(path), PASSWORD.as_bytes(), &opts).expect("init")
}

/// Checks the repository, reading every pack whole.
pub fn check_all(repo: &Repository) -> cairn_engine::check::CheckReport {
    let opts = cairn_engine::check::CheckOptions {
        read_data: true,
        ..Default::default()
    };
    cairn_engine::check::check(repo, &opts).expect("check runs")
}

/// A tree entry named `name` of `kind` and `size`, mode 0755, every other
/// field zero or empty: for trees crafted by hand.
pub fn plain_node(
    name: &[u8],
    kind: cairn_format::tree::NodeKind,
    size: u64,
) -> cairn_format::tree::Node {
    cairn_format::tree::Node {
        name: name.to_vec(),
        kind,
        mode: 0o755,
        uid: 0,
        gid: 0,
        user: String::new(),
        group: String::new(),
        mtime: cairn_format::Timestamp::default(),
        ctime: cairn_format::Timestamp::default(),
        size,
        inode: 0,
        device: 0,
        links: 1,
        xattrs: vec![],
    }
}

/// A repository at `base/repo` with one snapshot of `base/src`, which holds
/// one small file: the template for snapshots crafted by hand.
pub fn one_snapshot_repo(base: &Path) -> Repository {
    let src = base.join("src");
    fs::create_dir_all(&src).unwrap();
    fs::write(src.join("f"), b"ordinary").unwrap();
    let mut repo = init_repo(&base.join("repo"));
    backup_dir(&mut repo, &src);
    repo
}

/// Flips one bit inside the first blob of the largest data pack of the
/// repository at `repo`; returns the pack's path.
pub fn damage_largest_pack(repo: &Path) -> PathBuf {
    let pack = walk_files(&repo.join("data"))
        .into_iter()
        .max_by_key(|p| fs::metadata(p).unwrap().len())
        .unwrap();
    let mut bytes = fs::read(&pack).unwrap();
    bytes[100] ^= 0x01;
    fs::write(&pack, &bytes).unwrap();
    pack
}

/// Flips one bit inside the sealed data blob `id` where the index of `repo`
/// (the repository at `path`) says it is stored.
pub fn damage_blob(path: &Path, repo: &Repository, id: &cairn_format::BlobId) {
    let loc = repo.index().get(cairn_format::BlobKind::Data, id).unwrap();
    let pack = path
        .join("data")
        .join(&loc.pack.to_hex()[..2])
        .join(loc.pack.to_hex());
    let mut bytes = fs::read(&pack).unwrap();
    bytes[loc.offset as usize + 40] ^= 1;
    fs::write(&pack, bytes).unwrap();
}
