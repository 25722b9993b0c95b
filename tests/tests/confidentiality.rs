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
