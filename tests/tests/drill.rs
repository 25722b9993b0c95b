//! `cairn drill`: a source's snapshot restored into a scratch folder,
//! verified file by file and by the source's own command, timed against
//! the RTO, recorded in the repository's journal and shown by `status`;
//! a damaged snapshot fails its drill, and a slow one misses the RTO.

use cairn_tests::*;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Output;

/// [`files_policy`] with `extra`, after one run.
fn fixture(extra: &str) -> (tempfile::TempDir, PathBuf, PathBuf) {
    let made = files_policy(extra);
    ok_text(&run(&made.2, &["run"]));
    made
}

/// Every file below `dir` with its content and modification time.
fn digest(dir: &Path) -> Vec<(PathBuf, Vec<u8>, std::time::SystemTime)> {
    let mut files: Vec<_> = walk_files(dir)
        .into_iter()
        .filter(|f| f.is_file())
        .map(|f| {
            let modified = fs::metadata(&f).unwrap().modified().unwrap();
            (f.clone(), fs::read(&f).unwrap(), modified)
        })
        .collect();
    files.sort();
    files
}

fn run(config: &Path, list: &[&str]) -> Output {
    cairn_configured(config, list, &[])
}

/// `status --json`, which must exit with `code`; the source's status.
fn status(config: &Path, code: i32) -> serde_json::Value {
    let out = run(config, &["status", "--json"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(code), "{stderr}{stdout}");
    let all: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    all["sources"][0].clone()
}

/// The drills recorded, as `drill --list --json` prints them.
fn listed(config: &Path) -> Vec<serde_json::Value> {
    let out = ok_text(&run(config, &["drill", "--list", "--json"]));
    serde_json::from_str::<serde_json::Value>(&out)
        .unwrap()
        .as_array()
        .unwrap()
        .clone()
}

#[test]
fn a_drill_restores_verifies_and_is_recorded_without_touching_the_source() {
    let src_file = "{dir}/SRC/noise.bin";
    let (_tmp, base, config) = fixture("rto = \"1h\"\n");
    // The policy's verification reads a restored file where it must be.
    let src = base.join("src");
    let verify = src_file.replace("SRC", src.strip_prefix("/").unwrap().to_str().unwrap());
    let text = fs::read_to_string(&config).unwrap()
        + &format!("drill = {{ every = \"7d\", verify = \"test -s {verify}\" }}\n");
    fs::write(&config, text).unwrap();
    let before = digest(&src);
    let scratch = base.join("scratch");
    fs::create_dir(&scratch).unwrap();

    let said = ok_text(&run(
        &config,
        &["drill", "--scratch", scratch.to_str().unwrap()],
    ));
    assert!(said.contains("files: drill of snapshot "), "{said}");
    assert!(said.contains(" from main passed; "), "{said}");
    assert!(said.contains("within the RTO of 1h"), "{said}");
    assert_eq!(digest(&src), before, "the drill changed the source");
    assert_eq!(
        fs::read_dir(&scratch).unwrap().count(),
        0,
        "scratch left behind"
    );

    let now = status(&config, 0);
    let drill = &now["last_drill"];
    assert_eq!(drill["passed"], true, "{now:#}");
    assert_eq!(drill["rto_met"], true, "{now:#}");
    assert_eq!(drill["repository"], "main", "{now:#}");
    assert!(drill["files"].as_u64().unwrap() > 5, "{now:#}");
    let text = ok_text(&run(&config, &["status"]));
    assert!(text.contains("drill passed  at "), "{text}");

    // From the copy, keeping what it restored.
    let said = ok_text(&run(
        &config,
        &[
            "drill",
            "--from",
            "copy",
            "--keep",
            "--scratch",
            scratch.to_str().unwrap(),
        ],
    ));
    assert!(said.contains(" from copy passed; "), "{said}");
    let kept = said
        .lines()
        .find_map(|l| l.strip_prefix("files: the restored data is kept in "))
        .unwrap();
    assert_same_tree(&src, &Path::new(kept).join(src.strip_prefix("/").unwrap()));
    let history = listed(&config);
    assert_eq!(history.len(), 2, "{history:#?}");
    assert_eq!(history[1]["repository"], "copy");

    // Run's backup and copy, and both drills, are in the audit logs.
    for (repo, expected) in [
        ("@main", &["init", "run: backup", "drill"][..]),
        ("@copy", &["init", "run: copy", "drill"][..]),
    ] {
        let out = ok_text(&run(&config, &["-r", repo, "audit", "--json"]));
        let log: serde_json::Value = serde_json::from_str(&out).unwrap();
        let commands: Vec<&str> = log
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["command"].as_str().unwrap())
            .collect();
        assert_eq!(commands, expected, "{repo}");
        ok_text(&run(&config, &["-r", repo, "audit", "--verify"]));
    }

    // A repository the source does not go to is refused.
    let out = run(&config, &["drill", "--from", "nowhere"]);
    assert_clean_failure(
        &out,
        1,
        "no source asked for goes to repository \"nowhere\"",
    );
    // A snapshot is drilled as one of the source it belongs to.
    let out = run(&config, &["drill", "--snapshot", "latest"]);
    assert_clean_failure(&out, 1, "--snapshot needs the one source");
}

#[test]
fn a_drill_of_a_damaged_snapshot_fails_is_recorded_and_misses_the_objectives() {
    let (_tmp, base, config) = fixture("");
    for pack in walk_files(&base.join("main/data")) {
        let mut bytes = fs::read(&pack).unwrap();
        let middle = bytes.len() / 2;
        bytes[middle] ^= 0x40;
        fs::write(&pack, bytes).unwrap();
    }
    let out = run(&config, &["drill"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains(" FAILED: "), "{stdout}");

    let now = status(&config, 5);
    assert_eq!(now["last_drill"]["passed"], false, "{now:#}");
    assert_eq!(now["drill_holds"], false, "{now:#}");
    assert!(!now["last_drill"]["reason"].as_str().unwrap().is_empty());
    let text = run(&config, &["status"]);
    assert!(String::from_utf8_lossy(&text.stdout).contains("DRILL FAILED  at "));
    assert_eq!(listed(&config)[0]["passed"], false);

    // The copy is intact: a drill from it passes, and clears the failure.
    ok_text(&run(&config, &["drill", "--from", "copy"]));
    assert_eq!(status(&config, 0)["last_drill"]["passed"], true);
}

#[test]
fn a_drill_slower_than_the_rto_passes_but_misses_the_rto() {
    // Verification is part of the recovery time: a slow one takes it past 1 s.
    let (_tmp, _base, config) =
        fixture("rto = \"1s\"\ndrill = { every = \"7d\", verify = \"sleep 1.2\" }\n");
    let out = run(&config, &["drill"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(5), "{stdout}");
    assert!(
        stdout.contains(" passed; ") && stdout.contains("ABOVE the RTO of 1s"),
        "{stdout}"
    );
    let now = status(&config, 5);
    assert_eq!(now["last_drill"]["passed"], true, "{now:#}");
    assert_eq!(now["last_drill"]["rto_met"], false, "{now:#}");
    assert!(now["last_drill"]["duration_seconds"].as_f64().unwrap() >= 1.2);
    let text = run(&config, &["status"]);
    assert!(String::from_utf8_lossy(&text.stdout).contains("RTO MISSED  at "));
}

#[test]
fn run_drills_when_due_and_a_failing_verification_fails_it() {
    let (_tmp, _base, config) = fixture("");
    let text = fs::read_to_string(&config).unwrap()
        + "drill = { every = \"7d\", verify = \"echo nothing here >&2; false\" }\n";
    fs::write(&config, text).unwrap();
    let out = run(&config, &["run"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("cairn: files: drill from main: the restore drill failed: the verify command failed (exit status: 1): nothing here"),
        "{stderr}"
    );
    assert_eq!(listed(&config).len(), 1);
    status(&config, 5);

    // Right after, no drill is due; a week later one is.
    let said = ok_text(&run(&config, &["run"]));
    assert!(!said.contains("drill of"), "{said}");
    let out = run(&config, &["run", "--now", "2099-01-01T00:00:00Z"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("drill of "));
    assert_eq!(listed(&config).len(), 2);
}

#[test]
fn a_drill_of_a_postgresql_dump_loads_it_and_compares_row_counts() {
    use cairn_tests::postgres::Cluster;
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path().canonicalize().unwrap();
    let pg = Cluster::start(&base, 54331);
    pg.sample_database("app", 500, 20000);
    let bin = pg.bin.display().to_string();
    let client = pg.client_options();
    // The source's own verification: load the dump into a second database
    // and compare each table's row count with the live one.
    let verify = base.join("verify.sh");
    fs::write(
        &verify,
        format!(
            "set -e\n\
             {bin}/dropdb {client} --if-exists drill_check\n\
             {bin}/createdb {client} drill_check\n\
             {bin}/pg_restore {client} -d drill_check --no-owner \"$1/app.dump\"\n\
             for t in customers orders; do\n\
               live=$({bin}/psql {client} -d app -XtAc \"SELECT count(*) FROM $t\")\n\
               back=$({bin}/psql {client} -d drill_check -XtAc \"SELECT count(*) FROM $t\")\n\
               [ \"$live\" = \"$back\" ] || {{ echo \"$t: $live rows live, $back restored\" >&2; exit 1; }}\n\
             done\n"
        ),
    )
    .unwrap();
    let dump = pg.custom_dump("app");
    let config = base.join("cairn.toml");
    fs::write(
        &config,
        format!(
            "[repositories.main]\nurl = \"{}\"\n\n[sources.db]\ncommand = {:?}\n\
             filename = \"app.dump\"\nrpo = \"1h\"\nrto = \"10m\"\nto = [\"main\"]\n\
             drill = {{ every = \"7d\", verify = \"sh {} {{dir}}\" }}\n",
            base.join("main").display(),
            dump,
            verify.display()
        ),
    )
    .unwrap();
    init_named(&config, &["main"]);
    let said = ok_text(&run(&config, &["run"]));
    assert!(
        said.contains("db: snapshot ") && said.contains(" passed in "),
        "{said}"
    );
    let now = status(&config, 0);
    assert_eq!(now["last_drill"]["passed"], true, "{now:#}");
    assert_eq!(now["last_drill"]["rto_met"], true, "{now:#}");
    assert_eq!(
        pg.psql("drill_check", "SELECT count(*) FROM orders"),
        "20000"
    );

    // The verification compares: once the live database has moved on
    // from the snapshot, the drill of that snapshot no longer passes.
    pg.psql("app", "DELETE FROM orders WHERE id <= 10");
    let out = run(&config, &["drill"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("orders: 19990 rows live, 20000 restored"),
        "{stdout}"
    );
}
