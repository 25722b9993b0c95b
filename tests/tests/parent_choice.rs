//! Which snapshot a backup takes as its parent. Any key holder can write a
//! snapshot claiming this host's name and paths; one dated in the future is
//! never the parent, and a backup from the command line prefers the newest
//! of the snapshots its own machine wrote.

use cairn_engine::backup::{backup, BackupOptions, ParentChoice};
use cairn_format::Timestamp;
use cairn_tests::*;
use std::fs;
use std::path::Path;

/// Backs up `src` with the binary, remembering in `cache`; returns the
/// short IDs of the snapshot saved and of its parent.
fn cli_backup(repo: &Path, src: &Path, cache: &Path) -> (String, Option<String>) {
    let out = ok_text(&cairn(
        repo,
        &args(&["backup", src.to_str().unwrap()]),
        &[("XDG_CACHE_HOME", cache.to_str().unwrap())],
    ));
    let field = |prefix: &str, suffix: &str| {
        out.lines()
            .find_map(|l| l.strip_prefix(prefix)?.strip_suffix(suffix))
            .map(str::to_string)
    };
    (
        field("snapshot ", " saved").expect(&out),
        field("parent snapshot ", ""),
    )
}

#[test]
fn a_snapshot_dated_in_the_future_is_never_the_parent() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    fs::create_dir(&src).unwrap();
    fs::write(src.join("a"), b"honest content").unwrap();
    let mut repo = init_repo(&tmp.path().join("repo"));
    let honest = backup_dir(&mut repo, &src);
    // Another key holder's snapshot of "our" host and paths, a day ahead.
    let forged = BackupOptions {
        time: Some(Timestamp {
            secs: Timestamp::now().secs + 86_400,
            nanos: 0,
        }),
        ..Default::default()
    };
    let forged = backup(&mut repo, std::slice::from_ref(&src), &forged).unwrap();
    assert_eq!(forged.snapshot.parent, Some(honest.id));
    let next = backup(
        &mut repo,
        std::slice::from_ref(&src),
        &BackupOptions::default(),
    )
    .unwrap();
    assert_eq!(
        next.snapshot.parent,
        Some(honest.id),
        "not the one from the future"
    );
    // Among this machine's own snapshots when one fits, else any.
    let among = |own: Vec<_>| BackupOptions {
        parent: ParentChoice::AutoAmong(own),
        ..Default::default()
    };
    let r = backup(
        &mut repo,
        std::slice::from_ref(&src),
        &among(vec![honest.id]),
    )
    .unwrap();
    assert_eq!(r.snapshot.parent, Some(honest.id));
    let r2 = backup(
        &mut repo,
        std::slice::from_ref(&src),
        &among(vec![forged.id]),
    )
    .unwrap();
    assert_eq!(
        r2.snapshot.parent,
        Some(r.id),
        "a future one is passed over even when listed"
    );
}

#[test]
fn the_command_line_prefers_snapshots_its_machine_wrote() {
    let (_tmp, base, repo) = cli_fixture();
    let (src, cache) = (base.join("src"), base.join("cache"));
    fs::write(src.join("a"), b"honest content").unwrap();
    let (own, none) = cli_backup(&repo, &src, &cache);
    assert_eq!(none, None);
    // A newer snapshot of the same host and paths, written by someone else.
    let forged = backup_dir(&mut open_repo(&repo), &src);
    let (next, parent) = cli_backup(&repo, &src, &cache);
    assert_eq!(
        parent.as_deref(),
        Some(own.as_str()),
        "not the forged {}",
        forged.id.short()
    );
    // Without this machine's records, the newest fitting snapshot is taken.
    let newest = backup_dir(&mut open_repo(&repo), &src);
    let (_, parent) = cli_backup(&repo, &src, &base.join("elsewhere"));
    assert_eq!(parent, Some(newest.id.short()));
    // And with them, this machine's newest.
    assert_eq!(cli_backup(&repo, &src, &cache).1, Some(next));
}
