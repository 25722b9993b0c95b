//! The journal in each repository: `run` records a failed step there and
//! `status` shows it, from the repository alone; rolling checks go through
//! the groups of data in turn and record what they found; prunes run on
//! their cadence; a damaged repository or an overdue check misses the
//! objectives.

use cairn_tests::*;
use std::fs;
use std::path::Path;
use std::process::Output;

fn run(config: &Path, list: &[&str]) -> Output {
    cairn_configured(config, list, &[])
}

/// `status --json`, which must exit with `code`.
fn status(config: &Path, code: i32) -> serde_json::Value {
    let out = run(config, &["status", "--json"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(code), "{stderr}{stdout}");
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The status of `files` in `repo`.
fn row<'a>(status: &'a serde_json::Value, repo: &str) -> &'a serde_json::Value {
    status["sources"][0]["repositories"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["repository"] == repo)
        .unwrap()
}

#[test]
fn a_failed_step_is_recorded_in_the_repositories_and_status_shows_it() {
    let (_tmp, base, config) = files_policy("");
    ok_text(&run(&config, &["run"]));
    // The copy repository goes away: the copy fails, and the failure is
    // recorded in main, where status finds it.
    fs::rename(base.join("copy"), base.join("copy-away")).unwrap();
    let out = run(&config, &["run", "--force"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("cairn: files: copy to copy: "), "{stderr}");
    assert_eq!(walk_files(&base.join("main/journal")).len(), 1);

    fs::rename(base.join("copy-away"), base.join("copy")).unwrap();
    let now = status(&config, 0);
    let failure = &row(&now, "copy")["last_failure"];
    assert_eq!(failure["step"], "copy", "{now:#}");
    assert_eq!(failure["current"], true, "{now:#}");
    assert!(
        failure["message"].as_str().unwrap().contains("copy"),
        "{now:#}"
    );
    assert!(row(&now, "main")["last_failure"].is_null(), "{now:#}");
    let text = ok_text(&run(&config, &["status"]));
    assert!(text.contains("FAILING last copy failed at "), "{text}");

    // The next run copies; the failure stays on record, no longer current.
    let said = ok_text(&run(&config, &["run"]));
    assert!(said.contains("1 snapshot copied to copy"), "{said}");
    let now = status(&config, 0);
    assert_eq!(row(&now, "copy")["last_failure"]["current"], false);
    let text = ok_text(&run(&config, &["status"]));
    assert!(text.contains("earlier, copy failed at "), "{text}");
}

/// What each run's output says was checked, as `main checked (data N/M`.
fn checked(said: &str) -> Vec<String> {
    said.split("; ")
        .filter_map(|part| part.split_once("main checked (data "))
        .map(|(_, rest)| rest.split(',').next().unwrap().to_string())
        .collect()
}

#[test]
fn rolling_checks_read_each_group_in_turn_and_prunes_keep_their_cadence() {
    let (_tmp, _base, config) = files_policy(
        "keep = { last = 1 }\ncheck = { every = \"1d\", subset = \"1/3\" }\nprune = \"2d\"\n",
    );
    let mut groups = Vec::new();
    let mut pruned = Vec::new();
    for (i, time) in [
        "2026-03-01T00:00:00Z",
        "2026-03-01T12:00:00Z",
        "2026-03-02T00:00:00Z",
        "2026-03-03T00:00:00Z",
        "2026-03-04T00:00:00Z",
    ]
    .iter()
    .enumerate()
    {
        let said = ok_text(&run(&config, &["run", "--now", time]));
        groups.extend(checked(&said).into_iter().map(|g| format!("{i}:{g}")));
        if said.contains("main pruned (") {
            pruned.push(i);
        }
    }
    // Half a day after the first check, none is due; each day the next
    // third of the data is read, and after the last third the first again.
    assert_eq!(groups, ["0:1/3", "2:2/3", "3:3/3", "4:1/3"]);
    assert_eq!(pruned, [0, 3]);
    // Status judges the simulated snapshots by the real clock.
    let now = status(&config, 5);
    let check = &row(&now, "main")["last_check"];
    assert_eq!(check["subset"], "1/3", "{now:#}");
    assert_eq!(check["problems"], 0, "{now:#}");
}

#[test]
fn a_check_that_finds_damage_fails_the_run_and_misses_the_objectives() {
    let (_tmp, base, config) = files_policy("check = { every = \"1d\" }\n");
    ok_text(&run(&config, &["run"]));
    assert_eq!(
        row(&status(&config, 0), "main")["last_check"]["problems"],
        0
    );

    // A check by hand that finds a pack missing is recorded.
    let pack = walk_files(&base.join("main/data"))[0].clone();
    let aside = base.join("aside");
    fs::rename(&pack, &aside).unwrap();
    assert_eq!(
        run(&config, &["-r", "@main", "check"]).status.code(),
        Some(4)
    );
    let now = status(&config, 5);
    let main = row(&now, "main");
    assert_eq!(main["state"], "ok", "{now:#}");
    assert_eq!(main["holds"], false, "{now:#}");
    assert!(
        main["last_check"]["problems"].as_u64().unwrap() > 0,
        "{now:#}"
    );
    assert_eq!(row(&now, "copy")["holds"], true, "{now:#}");
    let text = run(&config, &["status"]);
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(text.contains("DAMAGED checked structure at "), "{text}");

    // The next check `run` makes, a day later, finds it too, and fails.
    let out = run(&config, &["run", "--now", "2099-01-01T00:00:00Z"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("cairn: files: check of main: 1 problem(s) found: pack "),
        "{stderr}"
    );
    status(&config, 5);

    // Once the pack is back, the next check finds nothing wrong.
    fs::rename(&aside, &pack).unwrap();
    ok_text(&run(&config, &["run", "--now", "2099-01-03T00:00:00Z"]));
    assert_eq!(
        row(&status(&config, 0), "main")["last_check"]["problems"],
        0
    );
}

#[test]
fn an_overdue_check_misses_the_objectives() {
    let (_tmp, _base, config) = files_policy("check = { every = \"3s\" }\n");
    ok_text(&run(&config, &["run"]));
    let now = status(&config, 0);
    assert_eq!(row(&now, "copy")["check_overdue"], false, "{now:#}");

    std::thread::sleep(std::time::Duration::from_millis(3500));
    let now = status(&config, 5);
    for repo in ["main", "copy"] {
        assert_eq!(row(&now, repo)["state"], "ok", "{now:#}");
        assert_eq!(row(&now, repo)["check_overdue"], true, "{now:#}");
    }
    let text = run(&config, &["status"]);
    assert!(String::from_utf8_lossy(&text.stdout).contains("OVERDUE checked structure"));
    ok_text(&run(&config, &["run"]));
    status(&config, 0);
}
