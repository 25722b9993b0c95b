//! `cairn runbook`, proven by running it: the runbook written for a policy
//! with a directory source and a PostgreSQL source is executed, after the
//! live data, the database, the first repository and the policy file are
//! gone, section by section for the offsite repository; the files come
//! back byte-identical and the database with the same rows.

use cairn_tests::postgres::Cluster;
use cairn_tests::*;
use std::fs;
use std::path::Path;
use std::process::Command;

/// The `sh` blocks of the section headed `heading` (up to the next
/// heading of any level), joined in order.
fn section(runbook: &str, heading: &str) -> String {
    let start = runbook
        .find(heading)
        .unwrap_or_else(|| panic!("no section {heading:?} in:\n{runbook}"));
    let body = &runbook[start + heading.len()..];
    let body = &body[..body.find("\n#").unwrap_or(body.len())];
    let mut script = String::new();
    for block in body.split("```sh\n").skip(1) {
        script.push_str(&block[..block.find("```").unwrap()]);
    }
    script
}

#[test]
fn the_runbook_recovers_files_and_a_database_from_the_offsite_copy() {
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path().canonicalize().unwrap();
    let pg = Cluster::start(&base, 54333);
    pg.sample_database("app", 300, 5000);
    let data = base.join("data");
    build_varied_tree(&data);
    let secret = "runbook test password, never printed";
    fs::write(base.join("pw"), secret).unwrap();

    let bin = pg.bin.display().to_string();
    let client = pg.client_options();
    let dump = pg.custom_dump("app");
    let config = base.join("cairn.toml");
    fs::write(
        &config,
        format!(
            "[repositories.local]\nurl = \"{local}\"\npassword-file = \"pw\"\n\n\
             [repositories.offsite]\nurl = \"{offsite}\"\npassword-file = \"pw\"\n\n\
             [sources.files]\npaths = [\"{data}\"]\nrpo = \"1h\"\nrto = \"1h\"\n\
             to = [\"local\", \"offsite\"]\n\n\
             [sources.db]\ncommand = {dump:?}\nfilename = \"app.dump\"\nrpo = \"15m\"\n\
             rto = \"1h\"\nto = [\"local\", \"offsite\"]\n\
             drill = {{ every = \"7d\", verify = \"{bin}/pg_restore --list {{dir}}/app.dump\" }}\n\
             load = \"{bin}/createdb {client} app && {bin}/pg_restore {client} -d app {{dir}}/app.dump\"\n",
            local = base.join("local").display(),
            offsite = base.join("offsite").display(),
            data = data.display(),
        ),
    )
    .unwrap();
    init_named(&config, &["local", "offsite"]);
    let said = ok_text(&cairn_configured(&config, &["run"], &[]));
    assert!(
        said.contains("files: snapshot ") && said.contains("db: snapshot "),
        "{said}"
    );

    let out = base.join("RUNBOOK.md");
    let work = base.join("work");
    ok_text(&cairn_configured(
        &config,
        &[
            "runbook",
            "--output",
            out.to_str().unwrap(),
            "--work-dir",
            work.to_str().unwrap(),
        ],
        &[],
    ));
    let runbook = fs::read_to_string(&out).unwrap();
    assert!(!runbook.contains(secret), "the runbook shows a password");
    assert!(runbook.contains(&format!("in the file `{}`", base.join("pw").display())));
    assert!(runbook.contains("### Recover `db` from `offsite` (when `local` is lost)"));

    // Disaster: the files, the database, the first repository and the
    // policy file are gone (the password file is kept apart).
    let reference = base.join("reference");
    copy_tree(&data, &reference);
    let rows = pg.fingerprint("app", &["customers", "orders"]);
    fs::remove_dir_all(&data).unwrap();
    fs::remove_dir_all(base.join("local")).unwrap();
    pg.psql("postgres", "DROP DATABASE app");
    fs::remove_file(&config).unwrap();

    for source in ["files", "db"] {
        let script = section(
            &runbook,
            &format!("### Recover `{source}` from `offsite` (when `local` is lost)"),
        );
        let path = format!(
            "{}:{}",
            cairn_bin().parent().unwrap().display(),
            std::env::var("PATH").unwrap_or_default()
        );
        let ran = Command::new("bash")
            .args(["-euo", "pipefail", "-c", &script])
            .env_clear()
            .env("PATH", path)
            .env("HOME", &base)
            .output()
            .unwrap();
        assert!(
            ran.status.success(),
            "{source}: the runbook's commands failed:\n{script}\n{}{}",
            String::from_utf8_lossy(&ran.stdout),
            String::from_utf8_lossy(&ran.stderr)
        );
    }
    assert_same_tree(&reference, &data);
    assert_eq!(pg.fingerprint("app", &["customers", "orders"]), rows);
}

/// Copies the tree at `from` to `to` as `cp -a` does.
fn copy_tree(from: &Path, to: &Path) {
    let status = Command::new("cp")
        .arg("-a")
        .arg(from)
        .arg(to)
        .status()
        .unwrap();
    assert!(status.success());
}
