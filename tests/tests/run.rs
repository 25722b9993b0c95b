//! `cairn run`: backs up what is due and nothing else, copies to a
//! source's other repositories, applies keep, goes on past a failing
//! source and says so, and two runs at once do the work once.

use cairn_tests::*;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Output;

/// A policy in `dir`: `files` (RPO `rpo`, keep the last 2) goes to `main`
/// and `copy`; `db` (a command's output) to `main`; and, when `broken`,
/// `broken`, whose command fails.
fn policy(dir: &Path, rpo: &str, broken: bool) -> PathBuf {
    let mut text = format!(
        "[repositories.main]\nurl = \"{main}\"\n\n\
         [repositories.copy]\nurl = \"{copy}\"\n\n\
         [sources.files]\npaths = [\"{src}\"]\nrpo = \"{rpo}\"\nkeep = {{ last = 2 }}\n\
         to = [\"main\", \"copy\"]\n\n\
         [sources.db]\ncommand = [\"echo\", \"a database\"]\nfilename = \"db.dump\"\n\
         rpo = \"{rpo}\"\nto = [\"main\"]\n",
        main = dir.join("main").display(),
        copy = dir.join("copy").display(),
        src = dir.join("src").display(),
    );
    if broken {
        text.push_str("\n[sources.broken]\ncommand = [\"false\"]\nrpo = \"1h\"\nto = [\"main\"]\n");
    }
    let path = dir.join("cairn.toml");
    fs::write(&path, text).unwrap();
    path
}

/// A temporary folder with [`policy`], a tree in `src`, and both repositories made.
fn fixture(rpo: &str, broken: bool) -> (tempfile::TempDir, PathBuf, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path().canonicalize().unwrap();
    let config = policy(&base, rpo, broken);
    build_varied_tree(&base.join("src"));
    init_named(&config, &["main", "copy"]);
    (tmp, base, config)
}

fn run(config: &Path, list: &[&str]) -> Output {
    cairn_configured(config, list, &[])
}

/// How many snapshots of `source` the repository `repo` (as `@main`) holds.
fn count(config: &Path, repo: &str, source: &str) -> usize {
    let tag = format!("source:{source}");
    let out = ok_text(&run(
        config,
        &["-r", repo, "snapshots", "--json", "--tag", &tag],
    ));
    let list: serde_json::Value = serde_json::from_str(&out).unwrap();
    list.as_array().unwrap().len()
}

#[test]
fn run_backs_up_what_is_due_copies_it_and_nothing_more() {
    let (_tmp, base, config) = fixture("4s", false);
    let said = ok_text(&run(&config, &["run"]));
    assert!(said.contains("files: snapshot "), "{said}");
    assert!(said.contains("1 snapshot copied to copy"), "{said}");
    assert!(said.contains("db: snapshot "), "{said}");
    assert_eq!(count(&config, "@main", "files"), 1);
    assert_eq!(count(&config, "@copy", "files"), 1);
    assert_eq!(count(&config, "@main", "db"), 1);
    assert_eq!(run(&config, &["status"]).status.code(), Some(0));

    // Right after, nothing is due.
    let said = ok_text(&run(&config, &["run"]));
    assert!(said.contains("files: not due"), "{said}");
    assert_eq!(count(&config, "@main", "files"), 1);
    assert_eq!(count(&config, "@copy", "files"), 1);

    // Once the RPO has passed, status says so and the next run repairs it.
    std::thread::sleep(std::time::Duration::from_millis(4500));
    assert_eq!(run(&config, &["status"]).status.code(), Some(5));
    ok_text(&run(&config, &["run"]));
    assert_eq!(count(&config, "@main", "files"), 2);
    assert_eq!(count(&config, "@copy", "files"), 2);
    assert_eq!(run(&config, &["status"]).status.code(), Some(0));

    // --force backs up now; keep (the last 2) holds in both repositories.
    ok_text(&run(&config, &["run", "--force", "files"]));
    assert_eq!(count(&config, "@main", "files"), 2);
    assert_eq!(count(&config, "@copy", "files"), 2);
    assert_eq!(count(&config, "@main", "db"), 2, "db was not asked for");

    // What run saved restores as it was.
    let out = base.join("out");
    ok_text(&run(
        &config,
        &[
            "-r",
            "@copy",
            "restore",
            "latest",
            "--target",
            out.to_str().unwrap(),
        ],
    ));
    let src = base.join("src");
    assert_same_tree(&src, &out.join(src.strip_prefix("/").unwrap()));
}

#[test]
fn a_failing_source_fails_the_run_and_the_others_are_kept() {
    let (_tmp, _base, config) = fixture("1h", true);
    let out = run(&config, &["run"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("cairn: broken: backup in main: "),
        "{stderr}"
    );
    assert!(stderr.contains("run: 1 step failed"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(count(&config, "@main", "files"), 1);
    assert_eq!(count(&config, "@main", "db"), 1);
    assert_eq!(count(&config, "@main", "broken"), 0);

    // The failure is recorded in the repository, and status shows it.
    let out = run(&config, &["status", "broken", "--json"]);
    assert_eq!(
        out.status.code(),
        Some(5),
        "no snapshot of broken: a breach"
    );
    let status: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let failure = &status["sources"][0]["repositories"][0]["last_failure"];
    assert_eq!(failure["step"], "backup", "{status:#}");
    assert_eq!(failure["current"], true, "{status:#}");
    assert!(
        failure["message"].as_str().unwrap().contains("false"),
        "{status:#}"
    );
    let unknown = run(&config, &["run", "nothing"]);
    assert_clean_failure(&unknown, 1, "no source \"nothing\"");
}

#[test]
fn two_runs_at_once_make_one_snapshot_per_due_source() {
    let (_tmp, _base, config) = fixture("1h", false);
    let started: Vec<_> = (0..2)
        .map(|_| {
            let all = ["--config", config.to_str().unwrap(), "run"];
            cairn_command(Path::new(""), &args(&all), &[])
                .spawn()
                .unwrap()
        })
        .collect();
    for child in started {
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    assert_eq!(count(&config, "@main", "files"), 1);
    assert_eq!(count(&config, "@copy", "files"), 1);
    assert_eq!(count(&config, "@main", "db"), 1);
}

#[test]
fn keep_over_forty_simulated_days_leaves_the_hand_worked_snapshots() {
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path().canonicalize().unwrap();
    let config = base.join("cairn.toml");
    let text = format!(
        "[repositories.main]\nurl = \"{}\"\n\n\
         [sources.db]\ncommand = [\"echo\", \"rows\"]\nrpo = \"1d\"\n\
         keep = {{ daily = 3, weekly = 3, monthly = 2 }}\nto = [\"main\"]\n",
        base.join("main").display()
    );
    fs::write(&config, text).unwrap();
    let env = [("TZ", "UTC")];
    ok_text(&cairn_configured(
        &config,
        &["-r", "@main", "init", "--kdf-memory-kib", "64"],
        &env,
    ));
    // Noon of every day from Thursday 1 January to Monday 9 February 2026,
    // and once more an hour later, when nothing is due.
    let days = (1..=31).map(|d| (1, d)).chain((1..=9).map(|d| (2, d)));
    for (month, day) in days {
        let now = format!("2026-{month:02}-{day:02}T12:00:00Z");
        ok_text(&cairn_configured(&config, &["run", "--now", &now], &env));
    }
    let said = ok_text(&cairn_configured(
        &config,
        &["run", "--now", "2026-02-09T13:00:00Z"],
        &env,
    ));
    assert!(said.contains("db: not due"), "{said}");

    // daily = 3: 9, 8 and 7 February; weekly = 3 (weeks from Monday): 9
    // February, 8 February, and Sunday 1 February for 26 January to
    // 1 February; monthly = 2: 9 February and 31 January.
    let out = ok_text(&cairn_configured(
        &config,
        &["-r", "@main", "snapshots", "--json"],
        &env,
    ));
    let list: serde_json::Value = serde_json::from_str(&out).unwrap();
    let mut days: Vec<String> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["time"].as_str().unwrap()[..10].to_string())
        .collect();
    days.sort();
    assert_eq!(
        days,
        [
            "2026-01-31",
            "2026-02-01",
            "2026-02-07",
            "2026-02-08",
            "2026-02-09"
        ]
    );
}
