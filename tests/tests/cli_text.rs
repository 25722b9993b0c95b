//! What the command line tells a new user: the environment in `--help`,
//! usage lines, counts with their nouns, snapshots left incomplete, and
//! hints that work when followed as printed.

use cairn_format::snapshot::SkippedEntry;
use cairn_format::Timestamp;
use cairn_tests::*;
use std::collections::BTreeSet;
use std::ffi::OsStr;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// `cairn` with only `env` in its environment.
fn cairn_with_env(list: &[&str], env: &[(&str, &OsStr)]) -> Output {
    let mut cmd = Command::new(cairn_bin());
    cmd.env_clear().stdin(Stdio::null()).args(list);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

fn backup(repo: &Path, src: &Path) -> String {
    ok_text(&cairn(repo, &[OsStr::new("backup"), src.as_os_str()], &[]))
}

/// The files in directory `dir` of the repository.
fn files_in(repo: &Path, dir: &str) -> BTreeSet<PathBuf> {
    walk_files(&repo.join(dir)).into_iter().collect()
}

#[test]
fn help_names_every_environment_variable() {
    let help = ok_text(&cairn_with_env(&["--help"], &[]));
    for var in [
        "CAIRN_REPOSITORY",
        "CAIRN_PASSWORD_FILE",
        "CAIRN_PASSWORD_COMMAND",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_REGION",
        "AWS_DEFAULT_REGION",
    ] {
        assert!(help.contains(var), "{var} missing:\n{help}");
    }
    let bare = help
        .match_indices("CAIRN_PASSWORD")
        .any(|(at, m)| !help[at + m.len()..].starts_with('_'));
    assert!(bare, "CAIRN_PASSWORD missing:\n{help}");
}

/// A command line without its comment, its words separated by one space.
fn words(line: &str) -> String {
    let command = line.split(" # ").next().unwrap();
    command.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[test]
fn every_command_has_examples_in_its_help_and_each_is_in_the_readme() {
    let readme =
        fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../README.md")).unwrap();
    let shown: BTreeSet<String> = readme
        .lines()
        .map(str::trim)
        .filter(|l| l.starts_with("cairn "))
        .map(words)
        .collect();
    let help = ok_text(&cairn_with_env(&["--help"], &[]));
    let commands: Vec<&str> = help
        .lines()
        .skip_while(|l| *l != "Commands:")
        .skip(1)
        .take_while(|l| !l.is_empty())
        .map(|l| l.split_whitespace().next().unwrap())
        .filter(|c| *c != "help")
        .collect();
    assert!(commands.len() > 20, "{help}");
    for command in commands {
        let help = ok_text(&cairn_with_env(&[command, "--help"], &[]));
        let examples: Vec<&str> = help
            .lines()
            .skip_while(|l| *l != "Examples:")
            .skip(1)
            .map(str::trim)
            .filter(|l| !l.starts_with('#') && !l.is_empty())
            .collect();
        assert!(!examples.is_empty(), "no examples for {command}:\n{help}");
        for example in examples {
            assert!(
                example.starts_with("cairn ") && example.contains(command),
                "{command}: {example}"
            );
            assert!(
                shown.contains(&words(example)),
                "{command}'s example is not in the README: {example}"
            );
        }
    }
}

#[test]
fn options_from_the_environment_are_not_shown_as_required() {
    let (_tmp, base, repo) = cli_fixture();
    let pw = base.join("pw");
    fs::write(&pw, PASSWORD).unwrap();
    let env = [
        ("CAIRN_REPOSITORY", repo.as_os_str()),
        ("CAIRN_PASSWORD_FILE", pw.as_os_str()),
    ];
    for list in [
        &["backup"][..],
        &["ls"],
        &["restore", "latest"],
        &["tag", "latest"],
    ] {
        let out = cairn_with_env(list, &env);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        let usage = stderr.lines().find(|l| l.starts_with("Usage:")).unwrap();
        assert!(
            !usage.contains("--repo") && !usage.contains("--password-file"),
            "{usage}"
        );
    }
    // The variables are still read, and an option given wins over them.
    ok_text(&cairn_with_env(&["snapshots"], &env));
    let elsewhere = base.join("elsewhere");
    let list = [OsStr::new("snapshots"), OsStr::new("-r"), repo.as_os_str()];
    let mut cmd = Command::new(cairn_bin());
    cmd.env_clear()
        .env("CAIRN_REPOSITORY", &elsewhere)
        .env("CAIRN_PASSWORD_FILE", &pw)
        .args(list);
    ok_text(&cmd.output().unwrap());
    // Neither given: the error names both.
    let out = cairn_with_env(&["snapshots"], &[("CAIRN_PASSWORD_FILE", pw.as_os_str())]);
    assert_clean_failure(&out, 1, "-r/--repo or set CAIRN_REPOSITORY");
}

/// Nouns that follow a count in cairn's messages, in the plural.
const NOUNS: [&str; 12] = [
    "snapshots",
    "ones",
    "matches",
    "keys",
    "packs",
    "blobs",
    "trees",
    "paths",
    "problems",
    "entries",
    "files",
    "sessions",
];

/// Words that stand between a count and its noun ("1 data blob").
const QUALIFIERS: [&str; 7] = [
    "data",
    "tree",
    "index",
    "unreadable",
    "damaged",
    "marked",
    "old",
];

/// Asserts no message says "1 snapshots" or "1 data blobs" (a noun of
/// [`NOUNS`] in the plural after a count of one).
#[track_caller]
fn assert_singular_after_one(text: &str) {
    let words: Vec<&str> = text
        .split(|c: char| c.is_whitespace() || c == ',' || c == ';' || c == '(')
        .filter(|w| !w.is_empty())
        .collect();
    for w in words.windows(3) {
        let wrong = w[0] == "1"
            && (NOUNS.contains(&w[1]) || (QUALIFIERS.contains(&w[1]) && NOUNS.contains(&w[2])));
        assert!(!wrong, "{:?} in:\n{text}", w.join(" "));
    }
}

#[test]
fn a_count_of_one_takes_the_singular() {
    let (_tmp, base, repo) = cli_fixture();
    let src = base.join("src");
    fs::write(src.join("only.txt"), b"one file").unwrap();
    let mut printed = vec![backup(&repo, &src)];
    for list in [
        &["snapshots"][..],
        &["find", "only.txt"],
        &["key", "list"],
        &["check"],
        &["forget", "--keep-last", "1", "--dry-run"],
        &["tag", "--add", "t", "latest"],
        &["repair", "snapshots", "--dry-run"],
        &["repair", "index"],
    ] {
        printed.push(ok_text(&cairn(&repo, &args(list), &[])));
    }
    let all = printed.concat();
    assert_singular_after_one(&all);
    for expected in [
        "\n1 snapshot\n",
        "1 match in 1 of 1 snapshot\n",
        "\n1 key\n",
        "checked 1 snapshot, ",
        "would remove 0 of 1 snapshot\n",
        "1 snapshot changed, 0 unchanged",
        "wrote 1 index file, removed 1 old one\n",
    ] {
        assert!(all.contains(expected), "{expected:?} missing:\n{all}");
    }
}

#[test]
fn cat_snapshot_shows_text_paths_and_times_and_snapshots_marks_it_incomplete() {
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path();
    let repo = one_snapshot_repo(base);
    let (whole, mut snapshot) = repo.snapshots().unwrap().remove(0);
    snapshot.time = Timestamp {
        secs: 1_000_000_000,
        nanos: 123_456_789,
    };
    snapshot.paths.push(b"/srv/caf\xe9".to_vec());
    snapshot.skipped = vec![
        SkippedEntry {
            path: b"/srv/secret".to_vec(),
            reason: "Permission denied (os error 13)".into(),
        },
        SkippedEntry {
            path: b"/srv/caf\xe9/menu".to_vec(),
            reason: "Permission denied (os error 13)".into(),
        },
    ];
    let partial = repo.save_snapshot(&snapshot).unwrap();
    let repo_path = base.join("repo");

    let out = ok_text(&cairn(
        &repo_path,
        &args(&["cat", "snapshot", &partial.to_hex()]),
        &[],
    ));
    let json: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(json["time"], "2001-09-09T01:46:40.123456789Z");
    let started = json["summary"]["started"].as_str().unwrap();
    assert!(started.ends_with('Z') && started.contains('T'), "{started}");
    // Paths are strings where they are UTF-8, and hex where they are not.
    let src = base.join("src").display().to_string();
    assert_eq!(
        json["paths"],
        serde_json::json!([src, {"hex": "2f7372762f636166e9"}])
    );
    assert_eq!(json["skipped"][0]["path"], "/srv/secret");
    assert_eq!(
        json["skipped"][0]["reason"],
        "Permission denied (os error 13)"
    );
    assert_eq!(
        json["skipped"][1]["path"],
        serde_json::json!({"hex": hex(b"/srv/caf\xe9/menu")})
    );

    let table = ok_text(&cairn(&repo_path, &args(&["snapshots"]), &[]));
    let row = |id: &str| table.lines().find(|l| l.starts_with(id)).unwrap();
    assert!(row(&partial.short()).ends_with("(incomplete)"), "{table}");
    assert!(!row(&whole.short()).contains("incomplete"), "{table}");
    assert!(table.contains("2 snapshots (1 incomplete"), "{table}");
    let listed = ok_text(&cairn(&repo_path, &args(&["snapshots", "--json"]), &[]));
    let listed: serde_json::Value = serde_json::from_str(&listed).unwrap();
    for s in listed.as_array().unwrap() {
        let expected = s["id"] == partial.to_hex();
        assert_eq!(s["incomplete"], expected, "{s}");
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The commands between backquotes in `line`, without the leading `cairn`.
fn quoted_commands(line: &str) -> Vec<Vec<String>> {
    line.split('`')
        .skip(1)
        .step_by(2)
        .map(|c| {
            let words: Vec<String> = c.split_whitespace().map(String::from).collect();
            assert_eq!(words[0], "cairn", "{line}");
            words[1..].to_vec()
        })
        .collect()
}

#[test]
fn the_repairs_check_names_work_when_run_as_printed() {
    let (_tmp, base, _) = cli_fixture();
    let repo = small_pack_repo(&base);
    let src = base.join("src");
    for i in 0..3 {
        write_noise_file(&src.join(format!("f{i}")), 1 << 20, i);
    }
    backup(&repo, &src);
    damage_largest_pack(&repo);

    // Reading the damaged data says what to run.
    let into = base.join("restored");
    let out = cairn(
        &repo,
        &args(&["restore", "latest", "--target", into.to_str().unwrap()]),
        &[],
    );
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let last = stderr.lines().last().unwrap();
    assert!(
        last.contains(
            "1 entry could not be restored; the repository is damaged: `cairn check --read-data`"
        ),
        "{stderr}"
    );
    let damaged_file = walk_files(&src).into_iter().find(|f| {
        let path = f.to_str().unwrap();
        !cairn(&repo, &args(&["dump", "latest", path]), &[])
            .status
            .success()
    });
    let out = cairn(
        &repo,
        &args(&["dump", "latest", damaged_file.unwrap().to_str().unwrap()]),
        &[],
    );
    assert_clean_failure(&out, 1, "`cairn check --read-data` lists what is affected");

    let out = cairn(&repo, &args(&["check", "--read-data"]), &[]);
    assert_eq!(out.status.code(), Some(4));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let hint = stdout.lines().find(|l| l.starts_with("affected:")).unwrap();
    assert!(hint.contains("affected: 1 path in 1 snapshot;"), "{hint}");
    let repairs = quoted_commands(hint);
    // `repair snapshots` alone changes nothing: the index still lists the
    // damaged blob, so it is not known to be lost.
    assert!(repairs.len() > 1, "{hint}");
    ok_text(&cairn(&repo, &args(&["repair", "snapshots"]), &[]));
    let out = cairn(&repo, &args(&["check", "--read-data"]), &[]);
    assert_eq!(out.status.code(), Some(4));

    for repair in &repairs {
        let list: Vec<&OsStr> = repair.iter().map(OsStr::new).collect();
        ok_text(&cairn(&repo, &list, &[]));
    }
    let clean = ok_text(&cairn(&repo, &args(&["check", "--read-data"]), &[]));
    assert!(clean.contains("no damage found"), "{clean}");
    let table = ok_text(&cairn(
        &repo,
        &args(&["snapshots", "--tag", "repaired"]),
        &[],
    ));
    assert!(table.contains("(incomplete)"), "{table}");
}

#[test]
fn an_interrupted_backup_leaves_one_line_about_unused_packs_and_prune_clears_them() {
    let (_tmp, base, _) = cli_fixture();
    let repo = small_pack_repo(&base);
    let src = base.join("src");
    fs::write(src.join("first"), b"kept").unwrap();
    backup(&repo, &src);
    let before: Vec<_> = ["data", "index", "snapshots"]
        .map(|d| files_in(&repo, d))
        .to_vec();
    for i in 0..3 {
        write_noise_file(&src.join(format!("f{i}")), 1 << 20, i);
    }
    backup(&repo, &src);
    // The backup stops before its index and snapshot are written: its packs
    // are in no index.
    for (dir, old) in ["index", "snapshots"].iter().zip(&before[1..]) {
        for f in files_in(&repo, dir).difference(old) {
            fs::remove_file(f).unwrap();
        }
    }
    let orphans = files_in(&repo, "data").difference(&before[0]).count();
    assert!(orphans > 1, "{orphans}");

    let out = cairn(&repo, &args(&["check"]), &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.starts_with(&format!("warning: {orphans} packs ("))
            && stderr.contains("run `cairn prune` to reclaim them"),
        "{stderr}"
    );
    ok_text(&cairn(&repo, &args(&["prune"]), &[]));
    assert_eq!(files_in(&repo, "data"), before[0]);
    let out = cairn(&repo, &args(&["check"]), &[]);
    assert!(out.status.success() && out.stderr.is_empty(), "{out:?}");
}

/// A repository made by `cairn init` at `base/small-packs`, with 1 MiB packs.
fn small_pack_repo(base: &Path) -> PathBuf {
    let repo = base.join("small-packs");
    ok_text(&cairn(
        &repo,
        &args(&["init", "--kdf-memory-kib", "64", "--pack-size-mib", "1"]),
        &[],
    ));
    repo
}
