//! Repositories of the policy file reached from every command as `-r @NAME`
//! and `--from-repo @NAME`, each with the password the file gives it.

use cairn_tests::*;
use std::fs;
use std::path::Path;

/// A policy file in `dir` with two local repositories whose passwords are
/// in files beside it (given relative to it).
fn policy(dir: &Path) -> std::path::PathBuf {
    fs::write(dir.join("pw-main"), "main secret\n").unwrap();
    fs::write(dir.join("pw-copy"), "copy secret\n").unwrap();
    let path = dir.join("cairn.toml");
    let text = format!(
        "[repositories.main]\nurl = \"{}\"\npassword-file = \"pw-main\"\n\n\
         [repositories.copy]\nurl = \"local:{}\"\npassword-file = \"pw-copy\"\n\n\
         [sources.files]\npaths = [\"{}\"]\nrpo = \"1h\"\nto = [\"main\", \"copy\"]\n",
        dir.join("main").display(),
        dir.join("copy").display(),
        dir.join("src").display(),
    );
    fs::write(&path, text).unwrap();
    path
}

// `CAIRN_PASSWORD` is the test password, which opens neither repository.
use cairn_tests::cairn_configured as run;

#[test]
fn every_command_reaches_a_named_repository_with_its_password() {
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path().canonicalize().unwrap();
    let config = policy(&base);
    let src = base.join("src");
    build_varied_tree(&src);

    init_named(&config, &["main", "copy"]);
    ok_text(&run(
        &config,
        &["-r", "@main", "backup", src.to_str().unwrap()],
        &[],
    ));
    // The profile's password opened it: the one in the environment does not.
    let listed = ok_text(&run(&config, &["-r", "@main", "snapshots", "--json"], &[]));
    assert_eq!(listed.matches("\"id\"").count(), 1, "{listed}");
    let wrong = cairn(&base.join("main"), &args(&["snapshots"]), &[]);
    assert_eq!(wrong.status.code(), Some(12));

    // copy from one named repository to another, each with its own password.
    ok_text(&run(
        &config,
        &["-r", "@copy", "copy", "--from-repo", "@main"],
        &[],
    ));
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
        &[],
    ));
    assert_same_tree(&src, &out.join(src.strip_prefix("/").unwrap()));

    // The file is found through CAIRN_CONFIG, and through XDG_CONFIG_HOME.
    let by_variable = cairn(
        Path::new("@main"),
        &args(&["snapshots"]),
        &[("CAIRN_CONFIG", config.to_str().unwrap())],
    );
    ok_text(&by_variable);
    let home = base.join("home");
    fs::create_dir_all(home.join("cairn")).unwrap();
    fs::copy(&config, home.join("cairn/cairn.toml")).unwrap();
    fs::copy(base.join("pw-main"), home.join("cairn/pw-main")).unwrap();
    let by_home = cairn(
        Path::new("@main"),
        &args(&["snapshots"]),
        &[("XDG_CONFIG_HOME", home.to_str().unwrap())],
    );
    ok_text(&by_home);

    // A password option given on the command line comes before the file's.
    let other = base.join("other-pw");
    fs::write(&other, "not it\n").unwrap();
    let overridden = run(
        &config,
        &[
            "-r",
            "@main",
            "--password-file",
            other.to_str().unwrap(),
            "snapshots",
        ],
        &[],
    );
    assert_clean_failure(&overridden, 12, "password");
}

#[test]
fn a_name_the_file_lacks_or_a_broken_file_is_a_clear_error() {
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path().canonicalize().unwrap();
    let config = policy(&base);

    let missing = run(&config, &["-r", "@offsite", "snapshots"], &[]);
    assert_clean_failure(
        &missing,
        1,
        "defines no repository \"offsite\" (it defines @copy, @main)",
    );

    let broken = base.join("broken.toml");
    fs::write(
        &broken,
        "[repositories.main]\nurl = \"/srv/r\"\npasword-file = \"pw\"\n",
    )
    .unwrap();
    let out = run(&broken, &["-r", "@main", "snapshots"], &[]);
    let at = format!("{}:3:1:", broken.display());
    assert_clean_failure(&out, 1, &at);
    assert_clean_failure(&out, 1, "pasword-file");

    let nowhere = base.join("none.toml");
    let out = run(&nowhere, &["-r", "@main", "snapshots"], &[]);
    assert_clean_failure(&out, 1, "none.toml");

    // Without any policy file to look in, the name is refused, not taken as a path.
    let out = cairn(Path::new("@main"), &args(&["snapshots"]), &[]);
    assert_clean_failure(&out, 1, "no policy file");
}
