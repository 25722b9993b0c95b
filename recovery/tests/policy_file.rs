//! The policy file: the example of the documentation reads as written, and
//! each kind of mistake is reported with its line and column.

use cairn_recovery::policy::{Input, Storage, ThreeTwoOne};
use cairn_recovery::{Policy, PolicyError};
use std::path::{Path, PathBuf};

/// The example of README.md's "Recovery objectives" section.
const EXAMPLE: &str = r#"
[repositories.local]
url = "/srv/backup/repo"
password-file = "/etc/cairn/pw"

[repositories.offsite]
url = "s3:https://s3.example.com/backups/app"
password-file = "/etc/cairn/pw-offsite"

[sources.app-data]
paths = ["/var/lib/app", "/etc/app"]
exclude = ["*.tmp", "cache/"]
rpo = "1h"
rto = "4h"
keep = { hourly = 24, daily = 7, weekly = 4, monthly = 12 }
to = ["local", "offsite"]

[sources.db]
command = ["pg_dump", "--format=custom", "app"]
filename = "app.dump"
rpo = "15m"
rto = "1h"
keep = { within = "2d", daily = 30 }
to = ["local", "offsite"]

[notify]
webhook = "https://hooks.example.com/T000/B000"
email = { to = "ops@example.com", from = "cairn@example.com", smtp = "smtp://127.0.0.1:25" }
"#;

fn parse(text: &str) -> Result<Policy, PolicyError> {
    Policy::parse(text, Path::new("cairn.toml"), Path::new("/etc/cairn"))
}

/// The error `text` gives, as `(line, column, message)`.
fn mistake(text: &str) -> (usize, usize, String) {
    match parse(text) {
        Err(PolicyError::Invalid {
            line,
            column,
            message,
            ..
        }) => (line, column, message),
        other => panic!("expected a mistake, got {other:?}"),
    }
}

#[test]
fn the_documented_example_reads_as_written() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md")).unwrap();
    assert!(
        readme.contains(EXAMPLE.trim()),
        "README.md lost the example"
    );
    let policy = parse(EXAMPLE).unwrap();
    assert_eq!(policy.repositories.len(), 2);
    let offsite = policy.repository("offsite").unwrap();
    assert_eq!(offsite.url.storage(), Storage::S3);
    assert_eq!(
        offsite.password_file.as_deref(),
        Some(Path::new("/etc/cairn/pw-offsite"))
    );

    let app = &policy.sources["app-data"];
    assert_eq!(app.rpo.duration().as_secs(), 3600);
    assert_eq!(app.rto.unwrap().duration().as_secs(), 4 * 3600);
    assert_eq!(app.to, ["local", "offsite"]);
    match &app.input {
        Input::Paths { paths, exclude, .. } => {
            assert_eq!(paths, &[PathBuf::from("/var/lib/app"), "/etc/app".into()]);
            assert_eq!(exclude, &["*.tmp", "cache/"]);
        }
        other => panic!("{other:?}"),
    }
    let keep = app.keep.as_ref().unwrap().retention();
    assert_eq!(
        (
            keep.hourly,
            keep.daily,
            keep.weekly,
            keep.monthly,
            keep.yearly
        ),
        (Some(24), Some(7), Some(4), Some(12), None)
    );

    let db = &policy.sources["db"];
    assert_eq!(db.rpo.duration().as_secs(), 15 * 60);
    assert_eq!(
        db.input,
        Input::Command {
            command: vec!["pg_dump".into(), "--format=custom".into(), "app".into()],
            filename: "app.dump".into(),
        }
    );
    let keep = db.keep.as_ref().unwrap().retention();
    assert!(keep.within.is_some());
    assert_eq!(keep.daily, Some(30));

    let email = policy.notify.email.as_ref().unwrap();
    assert_eq!(email.to, "ops@example.com");
    assert_eq!(
        policy.notify.webhook.as_deref(),
        Some("https://hooks.example.com/T000/B000")
    );
}

#[test]
fn each_kind_of_mistake_is_reported_where_it_is() {
    let repo = "[repositories.local]\nurl = \"/srv/repo\"\n\n";

    // An unknown key, at the key.
    let text = format!(
        "{repo}[sources.a]\npaths = [\"/a\"]\nrpo = \"1h\"\nto = [\"local\"]\nrpo_minutes = 5\n"
    );
    let (line, column, message) = mistake(&text);
    assert_eq!((line, column), (8, 1), "{message}");
    assert!(message.contains("rpo_minutes"), "{message}");

    // A length of time that is not one, at its value.
    let text = format!("{repo}[sources.a]\npaths = [\"/a\"]\nrpo = \"1 hour\"\nto = [\"local\"]\n");
    let (line, column, message) = mistake(&text);
    assert_eq!((line, column), (6, 7), "{message}");
    assert!(
        message.contains("\"1 hour\" is not a length of time"),
        "{message}"
    );

    // A source sent to a repository the file does not define, at its name.
    let text = format!(
        "{repo}[sources.a]\npaths = [\"/a\"]\nrpo = \"1h\"\nto = [\"local\", \"offsite\"]\n"
    );
    let (line, column, message) = mistake(&text);
    assert_eq!((line, column), (7, 16), "{message}");
    assert!(
        message.contains("\"offsite\", which is not defined (defined: local)"),
        "{message}"
    );

    // A source with neither paths nor command, at its table.
    let text = format!("{repo}[sources.a]\nrpo = \"1h\"\nto = [\"local\"]\n");
    let (line, _, message) = mistake(&text);
    assert_eq!(line, 4, "{message}");
    assert!(message.contains("needs paths or a command"), "{message}");

    // A name that is not a plain word, at the name.
    let text =
        format!("{repo}[sources.\"my data\"]\npaths = [\"/a\"]\nrpo = \"1h\"\nto = [\"local\"]\n");
    let (line, column, message) = mistake(&text);
    assert_eq!((line, column), (4, 10), "{message}");
    assert!(
        message.contains("\"my data\" cannot be a name"),
        "{message}"
    );

    // A location no command would accept, at its value.
    let (line, column, message) = mistake("[repositories.r]\nurl = \"s3:nowhere\"\n");
    assert_eq!((line, column), (2, 7), "{message}");

    // Missing objectives, a bad keep, both kinds of input, a wrong type.
    for (text, said) in [
        (
            "[sources.a]\npaths = [\"/a\"]\nto = []\n",
            "missing field `rpo`",
        ),
        (
            "[sources.a]\npaths = [\"/a\"]\nrpo = \"1h\"\nto = []\n",
            "to names no repository",
        ),
        (
            "[sources.a]\npaths = [\"/a\"]\nrpo = \"1h\"\nto = [\"x\"]\nkeep = {}\n",
            "keep keeps nothing",
        ),
        (
            "[sources.a]\npaths = [\"/a\"]\nrpo = \"1h\"\nto = [\"x\", \"x\"]\n",
            "to names repository \"x\" twice",
        ),
        (
            "[sources.a]\npaths = [\"/a\"]\nrpo = \"1h\"\nto = [\"x\"]\nprune = \"often\"\n",
            "is not a length of time",
        ),
        (
            "[sources.a]\npaths = [\"/a\"]\ncommand = [\"x\"]\nrpo = \"1h\"\nto = [\"x\"]\n",
            "not both",
        ),
        (
            "[sources.a]\ncommand = [\"x\"]\nexclude = [\"*.o\"]\nrpo = \"1h\"\nto = [\"x\"]\n",
            "exclude options apply to paths",
        ),
        (
            "[sources.a]\npaths = \"/a\"\nrpo = \"1h\"\nto = [\"x\"]\n",
            "expected a sequence",
        ),
        ("[notify]\nslack = \"x\"\n", "unknown field `slack`"),
    ] {
        let (line, column, message) = mistake(text);
        assert!(line >= 1 && column >= 1);
        assert!(message.contains(said), "{text}: {message}");
    }
}

#[test]
fn an_error_names_the_file_its_line_and_its_column() {
    let e = parse("[sources.a]\nrpo = 5\n").unwrap_err();
    let said = e.to_string();
    assert!(said.starts_with("cairn.toml:"), "{said}");
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nothing.toml");
    let said = Policy::load(&missing).unwrap_err().to_string();
    assert!(said.contains("nothing.toml"), "{said}");
}

#[test]
fn a_relative_password_file_is_taken_from_the_policy_files_folder() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cairn.toml");
    std::fs::write(
        &path,
        "[repositories.r]\nurl = \"/srv/r\"\npassword-file = \"pw\"\n",
    )
    .unwrap();
    let policy = Policy::load(&path).unwrap();
    assert_eq!(
        policy.repository("r").unwrap().password_file.as_deref(),
        Some(dir.path().join("pw").as_path())
    );
}

#[test]
fn three_two_one_counts_repositories_kinds_and_offsite() {
    let policy = parse(
        r#"
[repositories.disk]
url = "/srv/a"
[repositories.usb]
url = "local:/mnt/usb/repo"
[repositories.s3]
url = "s3:http://127.0.0.1:9000/bucket"
[repositories.far]
url = "sftp:backup@far.example.com:/srv/repo"

[sources.both-local]
paths = ["/a"]
rpo = "1d"
to = ["disk", "usb"]
[sources.one]
paths = ["/a"]
rpo = "1d"
to = ["s3"]
[sources.good]
paths = ["/a"]
rpo = "1d"
to = ["disk", "s3", "far"]
"#,
    )
    .unwrap();
    let rule = |name: &str| policy.three_two_one(&policy.sources[name]);
    let t = |copies, kinds, offsite| ThreeTwoOne {
        copies,
        kinds,
        offsite,
    };
    assert_eq!(rule("both-local"), t(2, 1, false));
    assert!(!rule("both-local").holds());
    assert_eq!(rule("one"), t(1, 1, true));
    assert!(!rule("one").holds());
    assert_eq!(rule("good"), t(3, 3, true));
    assert!(rule("good").holds());
}
