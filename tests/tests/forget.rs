//! `cairn forget` through the binary: what `--dry-run` prints matches a
//! hand-worked retention table, in local time across a DST change, and the
//! real run removes exactly the snapshots marked `remove`.

use cairn_tests::*;
use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::fs;
use std::path::Path;

/// Europe-like rules: clocks go back from 03:00 to 02:00 on 2026-10-25.
const CET: &str = "CET-1CEST,M3.5.0,M10.5.0/3";

/// Backs up `src` with the snapshot time `time`; returns the short ID.
fn backup_at(repo: &Path, src: &Path, time: &str) -> String {
    let list = [
        OsStr::new("backup"),
        OsStr::new("--time"),
        OsStr::new(time),
        src.as_os_str(),
    ];
    let printed = ok_text(&cairn(repo, &list, &[("TZ", CET)]));
    let line = printed
        .lines()
        .find(|l| l.starts_with("snapshot "))
        .unwrap();
    line.split_whitespace().nth(1).unwrap().to_string()
}

/// The verdict `forget` printed for each snapshot, by short ID.
fn verdicts(printed: &str) -> BTreeMap<String, String> {
    printed
        .lines()
        .filter_map(|l| {
            let id = l.split_whitespace().next()?;
            let verdict = l.find("keep (").or_else(|| l.find("remove"))?;
            Some((id.to_string(), l[verdict..].trim().to_string()))
        })
        .collect()
}

#[test]
fn forget_dry_run_matches_the_hand_worked_table_in_local_time() {
    let (_tmp, base, repo) = cli_fixture();
    let src = base.join("src");
    fs::write(src.join("f"), b"data").unwrap();
    // Local times in CET; the 02:30 of 2026-10-25 happens twice.
    let times = [
        "2026-10-24 12:00",
        "2026-10-25 00:30",
        "2026-10-25 02:30",
        "2026-10-25T02:30:00+01:00",
        "2026-10-25 23:30",
        "2026-10-26 08:00",
        "2026-11-02 09:00",
        "2026-12-01 10:00",
    ];
    let ids: Vec<String> = times.iter().map(|t| backup_at(&repo, &src, t)).collect();
    let policy = args(&[
        "forget",
        "--dry-run",
        "--keep-daily",
        "5",
        "--keep-hourly",
        "6",
        "--keep-weekly",
        "3",
    ]);
    let hwd = "keep (hourly, daily, weekly)";
    // Worked by hand. In CET: the two 02:30s share an hour, and 00:30,
    // both 02:30s and 23:30 share 25 October.
    let cet = [
        "keep (daily)",
        "keep (hourly)",
        "remove",
        "keep (hourly)",
        "keep (hourly, daily)",
        hwd,
        hwd,
        hwd,
    ];
    // In UTC the same instants fall differently: 00:30+02 is 22:30 on
    // 24 October, and the 02:30s are 00:30 and 01:30.
    let utc = [
        "remove",
        "keep (daily)",
        "keep (hourly)",
        "keep (hourly)",
        "keep (hourly, daily)",
        hwd,
        hwd,
        hwd,
    ];
    for (tz, expected) in [(CET, cet), ("UTC", utc)] {
        let printed = ok_text(&cairn(&repo, &policy, &[("TZ", tz)]));
        let got = verdicts(&printed);
        for (i, id) in ids.iter().enumerate() {
            assert_eq!(
                got.get(id).map(String::as_str),
                Some(expected[i]),
                "{tz}: snapshot at {}\n{printed}",
                times[i]
            );
        }
        assert!(printed.contains(&format!("would remove 1 of {} snapshots", ids.len())));
    }
    // Nothing was removed by the dry runs; the real run removes the one.
    let real: Vec<_> = policy
        .iter()
        .filter(|a| **a != "--dry-run")
        .copied()
        .collect();
    ok_text(&cairn(&repo, &real, &[("TZ", CET)]));
    let listed = ok_text(&cairn(&repo, &args(&["snapshots"]), &[]));
    assert!(!listed.contains(&ids[2]), "{listed}");
    assert!(
        listed.contains(&format!("{} snapshots", ids.len() - 1)),
        "{listed}"
    );
}

#[test]
fn forget_refuses_an_empty_policy_and_removes_snapshots_named() {
    let (_tmp, base, repo) = cli_fixture();
    let src = base.join("src");
    fs::write(src.join("f"), b"data").unwrap();
    let first = backup_at(&repo, &src, "2026-01-01 10:00");
    backup_at(&repo, &src, "2026-01-02 10:00");
    let out = cairn(&repo, &args(&["forget"]), &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no retention policy"));
    let out = cairn(&repo, &args(&["forget", "--keep-within", "3q"]), &[]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("3q"));
    ok_text(&cairn(&repo, &args(&["forget", &first]), &[]));
    let listed = ok_text(&cairn(&repo, &args(&["snapshots"]), &[]));
    assert!(
        !listed.contains(&first) && listed.contains("1 snapshot\n"),
        "{listed}"
    );
}
