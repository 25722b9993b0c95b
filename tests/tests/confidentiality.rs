//! Nothing readable about the source appears in the repository's bytes.

use cairn_engine::backup::{backup, BackupOptions};
use cairn_tests::*;

#[test]
fn no_name_path_host_tag_or_content_appears_in_the_repository() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("Quarterly-Report-Folder");
    std::fs::create_dir_all(src.join("Confidential-Subdir")).unwrap();
    std::fs::write(
        src.join("Confidential-Subdir/merger-plans.txt"),
        b"ACQUISITION TARGET: Zebra Holdings ".repeat(200),
    )
    .unwrap();
    std::fs::write(
        src.join("payroll-secret.csv"),
        b"name,salary\nalice,100000\n",
    )
    .unwrap();
    std::os::unix::fs::symlink("hidden-link-target-xyz", src.join("linkname-qwerty")).unwrap();
    let repo_path = tmp.path().join("repo");
    let mut repo = init_repo(&repo_path);
    let opts = BackupOptions {
        hostname: Some("host-name-marker-7781".into()),
        tags: vec!["tag-marker-5512".into()],
        ..Default::default()
    };
    backup(&mut repo, std::slice::from_ref(&src), &opts).unwrap();

    let tmpname = tmp
        .path()
        .file_name()
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    let markers = [
        "Quarterly-Report-Folder",
        "Confidential-Subdir",
        "merger-plans",
        "ACQUISITION TARGET",
        "Zebra Holdings",
        "payroll-secret",
        "alice,100000",
        "hidden-link-target-xyz",
        "linkname-qwerty",
        "host-name-marker-7781",
        "tag-marker-5512",
        &tmpname,
    ];
    let files = walk_files(&repo_path);
    assert!(
        files.len() >= 4,
        "expected config, key, pack, index and snapshot: {files:?}"
    );
    for file in files {
        let bytes = std::fs::read(&file).unwrap();
        for m in &markers {
            let found = bytes.windows(m.len()).any(|w| w == m.as_bytes());
            assert!(!found, "{m:?} appears in {}", file.display());
            let lower = m.to_ascii_lowercase();
            assert!(
                !bytes
                    .windows(lower.len())
                    .any(|w| w.eq_ignore_ascii_case(lower.as_bytes())),
                "{m:?} (any case) in {}",
                file.display()
            );
        }
    }
}

#[test]
fn repository_files_and_folders_are_private_to_their_owner() {
    let (_tmp, base, repo) = cli_fixture();
    std::fs::write(base.join("src/f"), b"some content").unwrap();
    std::fs::write(base.join("pw2"), b"a second password").unwrap();
    ok_text(&cairn(
        &repo,
        &args(&["backup", base.join("src").to_str().unwrap()]),
        &[],
    ));
    let pw2 = base.join("pw2");
    let add = [
        "key",
        "add",
        "--new-password-file",
        pw2.to_str().unwrap(),
        "--kdf-memory-kib",
        "64",
    ];
    ok_text(&cairn(&repo, &args(&add), &[]));
    let files = walk_files(&repo);
    // config, two key files, a pack, an index file, a snapshot, lock records.
    assert!(files.len() >= 6, "only {files:?}");
    let mut checked = std::collections::BTreeSet::new();
    for file in &files {
        for path in file.ancestors().take_while(|p| p.starts_with(&repo)) {
            if checked.insert(path.to_path_buf()) {
                let mode = std::os::unix::fs::MetadataExt::mode(&std::fs::metadata(path).unwrap());
                let open = mode & 0o077;
                assert_eq!(
                    open,
                    0,
                    "{} is open to others: {:o}",
                    path.display(),
                    mode & 0o777
                );
            }
        }
    }
}
