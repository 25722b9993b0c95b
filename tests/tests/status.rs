//! `cairn status`: each source's newest snapshot in each of its
//! repositories against its RPO, the exit code a monitor reads, the JSON,
//! and metrics that `promtool check metrics` accepts.

use cairn_tests::*;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// A policy file in `dir`: the source `files` (RPO `rpo`) goes to `main`
/// and `copy`; the source `db` to `main` only.
fn policy(dir: &Path, rpo: &str) -> PathBuf {
    let path = dir.join("cairn.toml");
    let text = format!(
        "[repositories.main]\nurl = \"{main}\"\n\n\
         [repositories.copy]\nurl = \"{copy}\"\n\n\
         [sources.files]\npaths = [\"{src}\"]\nrpo = \"{rpo}\"\nrto = \"1h\"\nto = [\"main\", \"copy\"]\n\n\
         [sources.db]\ncommand = [\"echo\", \"dump\"]\nrpo = \"1d\"\nto = [\"main\"]\n",
        main = dir.join("main").display(),
        copy = dir.join("copy").display(),
        src = dir.join("src").display(),
    );
    fs::write(&path, text).unwrap();
    path
}

/// Runs cairn with `--config CONFIG` and `list`.
fn run(config: &Path, list: &[&str]) -> Output {
    cairn_configured(config, list, &[])
}

/// `cairn status --json LIST`, which must exit with `code`: its JSON.
fn status_of(config: &Path, list: &[&str], code: i32) -> serde_json::Value {
    let mut all = vec!["status", "--json"];
    all.extend(list);
    let out = run(config, &all);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(code), "{stderr}");
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)))
}

/// The state of `source` in `repo` in a status JSON.
fn state(status: &serde_json::Value, source: &str, repo: &str) -> String {
    let source = status["sources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["source"] == source)
        .unwrap_or_else(|| panic!("no source {source} in {status}"));
    let repo = source["repositories"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["repository"] == repo)
        .unwrap();
    repo["state"].as_str().unwrap().to_string()
}

/// A temporary folder with the policy of [`policy`] (RPO `rpo`), a varied
/// tree in `src` and the repositories `made` initialized.
fn fixture(rpo: &str, made: &[&str]) -> (tempfile::TempDir, PathBuf, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path().canonicalize().unwrap();
    let config = policy(&base, rpo);
    build_varied_tree(&base.join("src"));
    init_named(&config, made);
    (tmp, base, config)
}

#[test]
fn a_snapshot_older_than_the_rpo_is_a_breach_with_its_own_exit_code() {
    let (_tmp, base, config) = fixture("3s", &["main", "copy"]);
    let src = base.join("src");

    // Nothing backed up yet: every objective is missed.
    let status = status_of(&config, &[], 5);
    assert_eq!(status["holds"], false);
    assert_eq!(state(&status, "files", "main"), "breach");
    assert!(status["sources"][0]["repositories"][0]["newest"].is_null());

    // A snapshot of the source's paths without its tag is not the source's.
    let src_arg = src.to_str().unwrap();
    ok_text(&run(&config, &["-r", "@main", "backup", src_arg]));
    let status = status_of(&config, &[], 5);
    assert_eq!(state(&status, "files", "main"), "breach");

    // A snapshot of each source, tagged with its name, in each repository.
    for name in ["@main", "@copy"] {
        ok_text(&run(
            &config,
            &["-r", name, "backup", "--tag", "source:files", src_arg],
        ));
    }
    ok_text(&run(
        &config,
        &[
            "-r",
            "@main",
            "backup",
            "--tag",
            "source:db",
            "--stdin-from-command",
            "--",
            "echo",
            "x",
        ],
    ));
    let status = status_of(&config, &[], 0);
    assert_eq!(status["holds"], true);
    for (source, repo) in [("files", "main"), ("files", "copy"), ("db", "main")] {
        assert_eq!(state(&status, source, repo), "ok", "{status}");
    }
    let rule = &status["sources"][1]["three_two_one"];
    assert_eq!(status["sources"][1]["source"], "files");
    assert_eq!(
        (rule["copies"].as_u64(), rule["offsite"].as_bool()),
        (Some(2), Some(false))
    );
    assert_eq!(rule["holds"], false);
    let text = ok_text(&run(&config, &["status"]));
    assert!(
        text.contains("files (RPO 3s, RTO 1h; 3-2-1 does not hold"),
        "{text}"
    );
    assert!(text.contains("OK      newest snapshot"), "{text}");

    // The RPO passes with no new backup of `files`: its breach alone.
    std::thread::sleep(std::time::Duration::from_millis(4500));
    let status = status_of(&config, &[], 5);
    assert_eq!(state(&status, "files", "main"), "breach");
    assert_eq!(state(&status, "files", "copy"), "breach");
    assert_eq!(state(&status, "db", "main"), "ok");
    // Asked about `db` alone, all is well.
    assert_eq!(run(&config, &["status", "db"]).status.code(), Some(0));
    let unknown = run(&config, &["status", "nothing"]);
    assert_clean_failure(&unknown, 1, "no source \"nothing\"");

    // A fresh snapshot in one repository clears the breach there only.
    ok_text(&run(
        &config,
        &["-r", "@main", "backup", "--tag", "source:files", src_arg],
    ));
    let status = status_of(&config, &["files"], 5);
    assert_eq!(state(&status, "files", "main"), "ok");
    assert_eq!(state(&status, "files", "copy"), "breach");
}

#[test]
fn a_repository_that_cannot_be_read_is_reported_and_misses_its_objectives() {
    // `copy` is never made.
    let (_tmp, base, config) = fixture("1h", &["main"]);
    let status = status_of(&config, &[], 5);
    assert_eq!(state(&status, "files", "copy"), "unreachable");
    let error = status["sources"][1]["repositories"][1]["error"]
        .as_str()
        .unwrap();
    assert!(
        error.contains(&base.join("copy").display().to_string()),
        "{error}"
    );
    let text = String::from_utf8(run(&config, &["status"]).stdout).unwrap();
    assert!(text.contains("UNREACHABLE"), "{text}");
}

#[test]
fn metrics_are_written_whole_and_pass_promtool() {
    let (_tmp, base, config) = fixture("1h", &["main"]);
    let src = base.join("src");
    ok_text(&run(
        &config,
        &[
            "-r",
            "@main",
            "backup",
            "--tag",
            "source:files",
            src.to_str().unwrap(),
        ],
    ));
    let file = base.join("metrics").join("cairn.prom");
    fs::create_dir(base.join("metrics")).unwrap();
    fs::write(&file, "stale").unwrap();
    let out = run(&config, &["status", "--prometheus", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(5), "copy was never made");
    let text = fs::read_to_string(&file).unwrap();
    for line in [
        "cairn_rpo_seconds{source=\"files\"} 3600",
        "cairn_rto_seconds{source=\"files\"} 3600",
        "cairn_rpo_met{source=\"files\",repository=\"main\"} 1",
        "cairn_rpo_met{source=\"files\",repository=\"copy\"} 0",
        "cairn_repository_reachable{repository=\"copy\"} 0",
        "cairn_three_two_one{source=\"files\"} 0",
    ] {
        assert!(text.lines().any(|l| l == line), "no {line:?} in:\n{text}");
    }
    assert!(text
        .contains("cairn_last_success_timestamp_seconds{source=\"files\",repository=\"main\"} "));
    assert!(text.contains("cairn_snapshot_age_seconds{source=\"files\",repository=\"main\"} "));
    // Only the file remains in the folder: no temporary file left behind.
    assert_eq!(fs::read_dir(base.join("metrics")).unwrap().count(), 1);

    let promtool = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(fs::File::open(&file).unwrap())
        .output()
        .expect("promtool is missing: run scripts/test.sh, which installs Debian's prometheus");
    assert!(
        promtool.status.success(),
        "promtool: {}{}",
        String::from_utf8_lossy(&promtool.stdout),
        String::from_utf8_lossy(&promtool.stderr)
    );
}
