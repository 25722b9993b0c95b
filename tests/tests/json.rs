//! `--json`: the six commands that work at length print JSON lines, each an
//! object with a `message_type`, ending in one summary whose counts are the
//! ones the text output gives.

use cairn_tests::*;
use serde_json::Value;
use std::fs;
use std::path::Path;
use std::process::Output;

/// Standard output of a command that succeeded with `code`, as JSON lines:
/// each an object with a `message_type`, the last and only the last of them
/// the summary.
#[track_caller]
fn json_lines(out: &Output, code: i32) -> Vec<Value> {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(code), "{stderr}");
    let stdout = String::from_utf8(out.stdout.clone()).unwrap();
    let lines: Vec<Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l:?}: {e}")))
        .collect();
    for l in &lines {
        assert!(l["message_type"].is_string(), "{l}");
    }
    let summaries = lines.iter().filter(|l| l["message_type"] == "summary");
    assert_eq!(summaries.count(), 1, "{stdout}");
    assert_eq!(lines.last().unwrap()["message_type"], "summary", "{stdout}");
    lines
}

/// The messages of one type.
fn of_type<'a>(lines: &'a [Value], kind: &str) -> Vec<&'a Value> {
    lines.iter().filter(|l| l["message_type"] == kind).collect()
}

/// The numbers in a line of text, in order ("1.5 KiB" gives 1 and 5).
fn numbers(line: &str) -> Vec<u64> {
    line.split(|c: char| !c.is_ascii_digit())
        .filter(|w| !w.is_empty())
        .map(|w| w.parse().unwrap())
        .collect()
}

/// The line of `text` that starts with `prefix`.
#[track_caller]
fn line<'a>(text: &'a str, prefix: &str) -> &'a str {
    text.lines()
        .find(|l| l.starts_with(prefix))
        .unwrap_or_else(|| panic!("no line {prefix:?} in {text}"))
}

/// `cairn` on `repo` with `list`.
fn run(repo: &Path, list: &[&str]) -> Output {
    cairn(repo, &args(list), &[])
}

/// Field `names` of `v`, as numbers.
fn fields(v: &Value, names: &[&str]) -> Vec<u64> {
    names
        .iter()
        .map(|n| v[n].as_u64().unwrap_or_else(|| panic!("{n} in {v}")))
        .collect()
}

/// The fields of a backup's summary that its `files:` line gives, in order.
const BACKUP_COUNTS: [&str; 5] = [
    "files_new",
    "files_changed",
    "files_unchanged",
    "dirs",
    "others",
];

#[test]
fn backup_and_restore_summaries_count_what_the_text_says() {
    let (_tmp, base, repo) = cli_fixture();
    let src = base.join("src");
    fs::create_dir(src.join("sub")).unwrap();
    write_noise_file(&src.join("a.bin"), 300_000, 1);
    write_noise_file(&src.join("sub/b.bin"), 2_000, 2);
    fs::write(src.join("c.txt"), b"twelve bytes").unwrap();
    let twin = base.join("twin");
    copy_repo(&repo, &twin);
    let src_arg = src.to_str().unwrap();

    // The same backup of the same repository, as text and as JSON.
    let text = ok_text(&run(&repo, &["backup", src_arg]));
    let lines = json_lines(&run(&twin, &["--json", "backup", src_arg]), 0);
    let summary = lines.last().unwrap();
    let files = numbers(line(&text, "files:"));
    assert_eq!(files, fields(summary, &BACKUP_COUNTS));
    assert_eq!(files[..3], [3, 0, 0]);
    assert_eq!(summary["bytes_read"], 302_012);
    let read = line(&text, "read ");
    for (n, word) in [
        ("data_blobs_added", "data blob"),
        ("tree_blobs_added", "tree blob"),
    ] {
        let count = summary[n].as_u64().unwrap();
        assert!(
            read.contains(&format!("{count} {word}")),
            "{read} / {summary}"
        );
    }
    let id = summary["snapshot_id"].as_str().unwrap();
    assert_eq!(id.len(), 64);
    assert!(summary["parent"].is_null());
    assert_eq!(summary["dry_run"], false);
    assert_eq!(summary["entries_skipped"], 0);
    // A status line at the least: the one printed when the work is done.
    let status = of_type(&lines, "status");
    let last = status.last().expect("a status line");
    assert_eq!(last["files_done"], 3, "{last}");
    assert_eq!(last["bytes_done"], 302_012, "{last}");
    assert!(last["seconds_elapsed"].is_f64());

    // An incremental backup with a change and a dry run: the parent is named.
    write_noise_file(&src.join("sub/b.bin"), 3_000, 3);
    let dry = json_lines(&run(&twin, &["--json", "backup", "-n", src_arg]), 0);
    let dry = dry.last().unwrap();
    assert_eq!(dry["dry_run"], true);
    assert!(dry["snapshot_id"].is_null());
    assert_eq!(
        fields(dry, &["files_new", "files_changed", "files_unchanged"]),
        [0, 1, 2]
    );
    assert_eq!(dry["bytes_read"], 3_000);
    let text = ok_text(&run(&repo, &["backup", src_arg]));
    let lines = json_lines(&run(&twin, &["--json", "backup", src_arg]), 0);
    let summary = lines.last().unwrap();
    assert_eq!(summary["parent"], id);
    assert_eq!(
        numbers(line(&text, "files:")),
        fields(summary, &BACKUP_COUNTS)
    );

    // Restores of the same snapshot, into a new folder and over a changed one.
    for extra in [&[][..], &["--verify", "--delete"][..]] {
        let into_text = base.join("text");
        let into_json = base.join("json");
        for dir in [&into_text, &into_json] {
            if dir.exists() {
                fs::write(dir.join(src.strip_prefix("/").unwrap()).join("c.txt"), b"x").unwrap();
                fs::write(dir.join(src.strip_prefix("/").unwrap()).join("extra"), b"x").unwrap();
            }
        }
        let restore = |repo: &Path, into: &Path, json: bool| {
            let mut list = vec!["restore", "latest", "--target", into.to_str().unwrap()];
            list.extend_from_slice(extra);
            if json {
                list.insert(0, "--json");
            }
            run(repo, &list)
        };
        let text = ok_text(&restore(&repo, &into_text, false));
        let lines = json_lines(&restore(&twin, &into_json, true), 0);
        let summary = lines.last().unwrap();
        let counts = numbers(line(&text, "restored snapshot"));
        // "restored snapshot ID into DIR: N files created, N files replaced,
        // N unchanged, N directories, N other entries": the ID and folder
        // may hold digits too, so the counts are the last five numbers.
        assert_eq!(
            counts[counts.len() - 5..],
            fields(
                summary,
                &[
                    "files_created",
                    "files_replaced",
                    "files_unchanged",
                    "dirs",
                    "others"
                ]
            )[..],
            "{text} / {summary}"
        );
        assert_eq!(summary["bytes"], 303_012);
        assert_eq!(summary["errors"], 0);
        if !extra.is_empty() {
            assert_eq!(summary["files_replaced"], 1, "{summary}");
            assert_eq!(summary["deleted"], 1, "{summary}");
            assert_eq!(summary["verified"], 3, "{summary}");
            assert!(text.contains("1 entry deleted, 3 files verified"), "{text}");
        }
        let last = *of_type(&lines, "status").last().expect("a status line");
        assert_eq!(last["total_files"], 3, "{last}");
        assert_eq!(last["percent_done"], 1.0, "{last}");
        assert_same_tree(&into_text, &into_json);
    }
}

#[test]
fn check_forget_prune_and_copy_summaries_count_what_the_text_says() {
    let (_tmp, base, repo) = cli_fixture();
    let src = base.join("src");
    let src_arg = src.to_str().unwrap();
    for seed in 0..3 {
        write_noise_file(&src.join(format!("f{seed}.bin")), 200_000, seed);
        ok_text(&run(&repo, &["backup", src_arg]));
    }
    let twin = base.join("twin");
    copy_repo(&repo, &twin);

    // check, reading all data: the packs are counted as they are read.
    let text = ok_text(&run(&repo, &["check", "--read-data"]));
    let lines = json_lines(&run(&twin, &["--json", "check", "--read-data"]), 0);
    let summary = lines.last().unwrap();
    let checked = numbers(line(&text, "checked "));
    let names = ["snapshots", "trees", "data_blobs", "packs", "packs_read"];
    assert_eq!(
        checked[..5],
        fields(summary, &names)[..],
        "{text} / {summary}"
    );
    assert!(text.contains("no damage found"));
    assert_eq!(summary["clean"], true);
    assert_eq!(summary["problems"], 0);
    let last = *of_type(&lines, "status").last().expect("a status line");
    assert_eq!(last["packs_done"], summary["packs_read"], "{last}");

    // forget: a decision for each snapshot, then what it removed.
    let forget = [
        "forget",
        "--keep-last",
        "1",
        "--prune",
        "--max-unused",
        "0%",
    ];
    let text = ok_text(&run(&repo, &forget));
    let mut with_json = vec!["--json"];
    with_json.extend(forget);
    let lines = json_lines(&run(&twin, &with_json), 0);
    let summary = lines.last().unwrap();
    let decisions = of_type(&lines, "snapshot");
    assert_eq!(decisions.len(), 3);
    let removed: Vec<&str> = decisions
        .iter()
        .filter(|d| d["action"] == "remove")
        .map(|d| d["id"].as_str().unwrap())
        .collect();
    assert_eq!(removed.len(), 2);
    assert_eq!(summary["removed"], serde_json::json!(removed));
    assert_eq!(numbers(line(&text, "removed "))[0], 2);
    assert_eq!(summary["kept"], 1);
    let kept = decisions.iter().find(|d| d["action"] == "keep").unwrap();
    assert_eq!(kept["reasons"], serde_json::json!(["last"]), "{kept}");
    let prune = &summary["prune"];
    assert_eq!(
        numbers(line(&text, "deleted:"))[0],
        prune["packs_deleted"].as_u64().unwrap(),
        "{text} / {prune}"
    );
    assert_eq!(
        numbers(line(&text, "repacked packs:"))[0],
        prune["packs_repacked"].as_u64().unwrap()
    );
    assert!(prune["packs_deleted"].as_u64().unwrap() >= 1, "{prune}");

    // prune with nothing left to do, and a dry run.
    for dry in [true, false] {
        let mut list = vec!["prune"];
        if dry {
            list.push("--dry-run");
        }
        let text = ok_text(&run(&repo, &list));
        list.insert(0, "--json");
        let summary = json_lines(&run(&twin, &list), 0).pop().unwrap();
        assert_eq!(summary["dry_run"], dry);
        assert_eq!(
            numbers(line(&text, "walked "))[0],
            summary["snapshots"].as_u64().unwrap()
        );
        assert_eq!(
            numbers(line(&text, "kept packs:"))[0],
            summary["packs_kept"].as_u64().unwrap()
        );
        assert_eq!(summary["packs_unused"], 0, "{summary}");
    }

    // copy into two fresh repositories alike.
    let (to_text, to_json) = (base.join("to-text"), base.join("to-json"));
    ok_text(&run(&to_text, &["init", "--kdf-memory-kib", "64"]));
    copy_repo(&to_text, &to_json);
    let from = [
        ("CAIRN_FROM_REPOSITORY", repo.to_str().unwrap()),
        ("CAIRN_FROM_PASSWORD", PASSWORD),
    ];
    let text = ok_text(&cairn(&to_text, &args(&["copy"]), &from));
    let lines = json_lines(&cairn(&to_json, &args(&["--json", "copy"]), &from), 0);
    let summary = lines.last().unwrap();
    let counts = numbers(line(&text, "1 snapshot copied"));
    assert_eq!(
        counts[..4],
        [
            1,
            0,
            summary["blobs_read"].as_u64().unwrap(),
            summary["blobs_added"].as_u64().unwrap()
        ],
        "{text} / {summary}"
    );
    assert_eq!(summary["copied"].as_array().unwrap().len(), 1);
    assert_eq!(summary["copied"][0]["from"], removed_complement(&decisions));
    let last = *of_type(&lines, "status").last().expect("a status line");
    assert_eq!(last["blobs_done"], summary["blobs_read"], "{last}");
    assert_eq!(last["bytes_done"], 600_000, "{last}");
    // Again: already there.
    let again = json_lines(&cairn(&to_json, &args(&["--json", "copy"]), &from), 0);
    assert_eq!(
        again.last().unwrap()["present"].as_array().unwrap().len(),
        1
    );
}

/// The ID of the one snapshot `forget` kept.
fn removed_complement(decisions: &[&Value]) -> Value {
    decisions.iter().find(|d| d["action"] == "keep").unwrap()["id"].clone()
}

#[test]
fn a_damaged_repository_is_reported_in_the_summary_with_the_same_exit_code() {
    let (_tmp, base, repo) = cli_fixture();
    let src = base.join("src");
    write_noise_file(&src.join("a.bin"), 200_000, 7);
    ok_text(&run(&repo, &["backup", src.to_str().unwrap()]));
    damage_largest_pack(&repo);
    let text = run(&repo, &["check", "--read-data"]);
    assert_eq!(text.status.code(), Some(4));
    let text = String::from_utf8_lossy(&text.stdout).into_owned();
    let lines = json_lines(&run(&repo, &["--json", "check", "--read-data"]), 4);
    let summary = lines.last().unwrap();
    assert_eq!(summary["clean"], false);
    let problems = summary["problems"].as_u64().unwrap();
    assert!(problems >= 1, "{summary}");
    assert_eq!(
        numbers(line(&text, &format!("{problems} problem")))[0],
        problems
    );
    assert_eq!(summary["errors"].as_array().unwrap().len() as u64, problems);
    let damaged = &summary["damaged"][0];
    assert_eq!(
        damaged["path"],
        format!("{}/a.bin", src.display()),
        "{summary}"
    );
}

#[test]
fn failures_end_in_an_exit_error_and_commands_without_json_refuse_it() {
    let tmp = tempfile::tempdir().unwrap();
    let missing = tmp.path().join("nothing-here");
    let out = run(&missing, &["--json", "check"]);
    assert_eq!(out.status.code(), Some(10));
    assert!(out.stdout.is_empty());
    let stderr = String::from_utf8(out.stderr).unwrap();
    let error: Value = serde_json::from_str(stderr.trim()).unwrap();
    assert_eq!(error["message_type"], "exit_error");
    assert_eq!(error["code"], 10);
    assert!(
        error["message"].as_str().unwrap().contains("nothing-here"),
        "{error}"
    );

    let out = run(&missing, &["init", "--json"]);
    assert_eq!(out.status.code(), Some(1));
    let error: Value = serde_json::from_slice(&out.stderr).unwrap();
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains("`cairn init` has no JSON output"),
        "{error}"
    );
    assert!(!missing.exists(), "a refused command made the repository");
}
