//! Progress: the counters of backup, restore and check add up to what the
//! operation did, and the binary draws them only on a terminal.

use cairn_engine::backup::{backup, estimate, BackupOptions};
use cairn_engine::check::{check, CheckOptions};
use cairn_engine::progress::{Counts, Progress};
use cairn_engine::restore::{restore_with, RestoreOptions};
use cairn_tests::*;
use std::ffi::OsStr;
use std::process::{Command, Stdio};
use std::sync::Arc;

fn source(root: &std::path::Path) -> (u64, u64) {
    std::fs::create_dir_all(root.join("sub")).unwrap();
    for i in 0..40u64 {
        let dir = if i % 2 == 0 {
            root.join("sub")
        } else {
            root.to_path_buf()
        };
        std::fs::write(
            dir.join(format!("f{i}")),
            compressible_text(5_000 + 300 * i as usize, i),
        )
        .unwrap();
    }
    write_noise_file(&root.join("big"), 6 << 20, 1);
    (41, dir_size(root))
}

#[test]
fn counters_add_up_to_what_backup_restore_and_check_did() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    let (files, bytes) = source(&src);
    let mut repo = init_repo(&tmp.path().join("repo"));

    let progress = Arc::new(Progress::default());
    estimate(std::slice::from_ref(&src), &Default::default(), &progress).unwrap();
    let opts = BackupOptions {
        progress: Some(progress.clone()),
        ..Default::default()
    };
    let report = backup(&mut repo, std::slice::from_ref(&src), &opts).unwrap();
    let all = Counts {
        items: files,
        bytes,
        total_items: files,
        total_bytes: bytes,
        total_known: true,
    };
    assert_eq!(progress.counts(), all);

    // An unchanged file counts its size as done without being read.
    let again = Arc::new(Progress::default());
    let opts = BackupOptions {
        progress: Some(again.clone()),
        ..Default::default()
    };
    let second = backup(&mut repo, std::slice::from_ref(&src), &opts).unwrap();
    assert_eq!(second.snapshot.summary.bytes_read, 0);
    assert_eq!((again.counts().items, again.counts().bytes), (files, bytes));

    let restored = Arc::new(Progress::default());
    let opts = RestoreOptions {
        progress: Some(restored.clone()),
        ..Default::default()
    };
    let r = restore_with(
        &repo,
        &report.snapshot,
        Some(&src),
        &tmp.path().join("out"),
        &opts,
    )
    .unwrap();
    assert!(r.errors.is_empty(), "{:?}", r.errors);
    assert_eq!(restored.counts(), all);

    let checked = Arc::new(Progress::default());
    let opts = CheckOptions {
        read_data: true,
        progress: Some(checked.clone()),
        ..Default::default()
    };
    let c = check(&repo, &opts).unwrap();
    assert!(c.is_clean());
    let counts = checked.counts();
    assert_eq!((counts.items, counts.total_items), (c.packs, c.packs));
    assert!(counts.total_known && counts.bytes > 0);
    assert_eq!(counts.bytes, counts.total_bytes);
}

#[test]
fn the_binary_draws_progress_only_on_a_terminal() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    source(&src);
    let repo = tmp.path().join("repo");
    let init = cairn(&repo, &args(&["init"]), &[]);
    assert!(init.status.success());

    // Under a pseudo-terminal (script(1), from util-linux) the line is drawn.
    let on_terminal = |extra: &str| {
        let cmd = format!("{} {extra} backup {}", cairn_bin().display(), src.display());
        let out = Command::new("script")
            .args(["-q", "-e", "-c", &cmd, "/dev/null"])
            .env("CAIRN_REPOSITORY", &repo)
            .env("CAIRN_PASSWORD", PASSWORD)
            .stdin(Stdio::null())
            .output()
            .expect("run `script` (util-linux)");
        assert!(out.status.success(), "{out:?}");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let shown = on_terminal("");
    assert!(shown.contains("B/s") && shown.contains("files"), "{shown}");
    assert!(shown.contains("snapshot"), "{shown}");
    let hidden = on_terminal("--no-progress");
    assert!(!hidden.contains("B/s"), "{hidden}");

    // Standard error to a pipe: no progress, only the summary.
    let piped = cairn(&repo, &[OsStr::new("backup"), src.as_os_str()], &[]);
    assert!(piped.status.success());
    let err = String::from_utf8_lossy(&piped.stderr);
    assert!(!err.contains("B/s"), "{err}");
}
