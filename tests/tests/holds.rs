//! Compliance holds through the binary: a held snapshot survives `forget`
//! (by policy or by name) and `prune` until its date, its hold can be
//! extended but not shortened or removed, and once the date has passed it
//! goes like any other.

use cairn_engine::hold;
use cairn_format::Timestamp;
use cairn_tests::*;
use std::time::{Duration, Instant};

/// Backs up `src` with `extra` options; returns the snapshot's short ID.
fn backup(repo: &std::path::Path, src: &std::path::Path, extra: &[&str]) -> String {
    let mut list = vec!["backup", src.to_str().unwrap()];
    list.extend(extra);
    let printed = ok_text(&cairn(repo, &args(&list), &[]));
    let line = printed
        .lines()
        .find(|l| l.starts_with("snapshot "))
        .unwrap();
    line.split_whitespace().nth(1).unwrap().to_string()
}

/// A time `secs` seconds from now, as the command line takes it.
fn from_now(secs: i64) -> (Timestamp, String) {
    let t = Timestamp {
        secs: Timestamp::now().secs + secs,
        nanos: 0,
    };
    (t, hold::text(t))
}

#[test]
fn a_held_snapshot_survives_forget_and_prune_until_its_date_then_goes() {
    let (_tmp, base, repo) = cli_fixture();
    let src = base.join("src");
    std::fs::write(src.join("a"), "first").unwrap();
    let (until, until_text) = from_now(6);
    let started = Instant::now();
    let held = backup(&repo, &src, &["--hold-until", &until_text]);
    std::fs::write(src.join("a"), "second").unwrap();
    let newer = backup(&repo, &src, &[]);

    let out = ok_text(&cairn(
        &repo,
        &args(&["forget", "--keep-last", "1", "--prune"]),
        &[],
    ));
    assert!(out.contains("keep (hold)"), "{out}");
    assert!(out.contains("removed 0 snapshots"), "{out}");
    let listed = ok_text(&cairn(&repo, &args(&["snapshots"]), &[]));
    assert!(
        listed.contains(&held) && listed.contains(&newer),
        "{listed}"
    );
    let target = base.join("restored");
    ok_text(&cairn(
        &repo,
        &args(&["restore", &held, "--target", target.to_str().unwrap()]),
        &[],
    ));
    assert_eq!(
        std::fs::read(target.join(src.strip_prefix("/").unwrap()).join("a")).unwrap(),
        b"first"
    );

    // Nor by name, nor with the newer one in the same command: nothing goes.
    let by_name = cairn(&repo, &args(&["forget", &newer, &held]), &[]);
    assert_clean_failure(
        &by_name,
        1,
        &format!("snapshot {held} is held until {until_text}"),
    );
    assert!(ok_text(&cairn(&repo, &args(&["snapshots"]), &[])).contains(&newer));

    // The hold cannot be shortened or removed; it can be extended.
    let (_, sooner) = from_now(3);
    let shorten = cairn(&repo, &args(&["tag", "--hold-until", &sooner, &held]), &[]);
    assert_clean_failure(&shorten, 1, "can be extended, not shortened or removed");
    let tag = hold::tag(until);
    let remove = cairn(&repo, &args(&["tag", "--remove", &tag, &held]), &[]);
    assert_clean_failure(&remove, 1, "can be extended, not shortened or removed");
    let clear = cairn(&repo, &args(&["tag", "--set", "", &held]), &[]);
    assert_clean_failure(&clear, 1, "can be extended, not shortened or removed");
    let bad = cairn(
        &repo,
        &args(&["tag", "--add", "hold-until=someday", &newer]),
        &[],
    );
    assert_clean_failure(&bad, 1, "invalid hold");
    let (_, later) = from_now(3600);
    let extended = ok_text(&cairn(
        &repo,
        &args(&["tag", "--hold-until", &later, &newer]),
        &[],
    ));
    let newer = extended.split_whitespace().nth(4).unwrap().to_string();
    let listed = ok_text(&cairn(&repo, &args(&["snapshots"]), &[]));
    assert!(listed.contains(&format!("hold-until={later}")), "{listed}");

    // Once the date has passed, the held snapshot goes like any other.
    let wait = Duration::from_secs(7).saturating_sub(started.elapsed());
    std::thread::sleep(wait);
    let out = ok_text(&cairn(
        &repo,
        &args(&["forget", "--keep-last", "1", "--prune"]),
        &[],
    ));
    assert!(out.contains("removed 1 snapshot"), "{out}");
    let listed = ok_text(&cairn(&repo, &args(&["snapshots"]), &[]));
    assert!(
        !listed.contains(&held) && listed.contains(&newer),
        "{listed}"
    );
}
