//! Streams round-trip byte-identical; a failing command saves no snapshot.

use cairn_engine::backup::{backup_stream, BackupOptions, StreamSource};
use cairn_engine::restore::restore;
use cairn_tests::*;
use std::ffi::OsString;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

#[test]
fn a_reader_stream_round_trips_and_restores_as_its_file_name() {
    let tmp = tempfile::tempdir().unwrap();
    let mut repo = init_repo(&tmp.path().join("repo"));
    let data = Noise::new(4).bytes(20 << 20);
    let source = StreamSource::Reader(Box::new(std::io::Cursor::new(data.clone())));
    let r = backup_stream(&mut repo, source, "dump.bin", &BackupOptions::default()).unwrap();
    assert_eq!(r.snapshot.paths, vec![b"/dump.bin".to_vec()]);
    assert_eq!(r.snapshot.summary.bytes_read, 20 << 20);
    let out = tmp.path().join("out");
    restore(&repo, &r.snapshot, None, &out).unwrap();
    assert!(std::fs::read(out.join("dump.bin")).unwrap() == data);
}

#[test]
fn a_command_stream_round_trips_and_a_failing_command_saves_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let repo_path = tmp.path().join("repo");
    let mut repo = init_repo(&repo_path);
    let argv: Vec<OsString> = ["sh", "-c", "seq 1 200000"]
        .iter()
        .map(OsString::from)
        .collect();
    let r = backup_stream(
        &mut repo,
        StreamSource::Command(argv),
        "numbers",
        &BackupOptions::default(),
    )
    .unwrap();
    let out = tmp.path().join("out");
    restore(&repo, &r.snapshot, None, &out).unwrap();
    let expected: String = (1..=200_000).map(|i| format!("{i}\n")).collect();
    assert_eq!(
        std::fs::read_to_string(out.join("numbers")).unwrap(),
        expected
    );

    let failing: Vec<OsString> = ["sh", "-c", "seq 1 1000; exit 7"]
        .iter()
        .map(OsString::from)
        .collect();
    let err = backup_stream(
        &mut repo,
        StreamSource::Command(failing),
        "numbers",
        &BackupOptions::default(),
    )
    .unwrap_err();
    assert!(err.to_string().contains("no snapshot was saved"), "{err}");
    assert_eq!(open_repo(&repo_path).snapshots().unwrap().len(), 1);
    let bad_name = StreamSource::Reader(Box::new(std::io::empty()));
    assert!(backup_stream(&mut repo, bad_name, "../escape", &BackupOptions::default()).is_err());
}

#[test]
fn the_binary_backs_up_stdin_and_commands() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = tmp.path().join("repo");
    let out = cairn(
        &repo,
        &args(&["init", "--kdf-memory-kib", "64", "--kdf-iterations", "1"]),
        &[],
    );
    assert!(out.status.success());
    let data = Noise::new(9).bytes(3 << 20);
    let mut child = Command::new(cairn_bin())
        .env_clear()
        .env("CAIRN_REPOSITORY", &repo)
        .env("CAIRN_PASSWORD", PASSWORD)
        .args(["backup", "--stdin", "--stdin-filename", "piped.bin"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(&data).unwrap();
    assert!(child.wait().unwrap().success());

    let out = cairn(
        &repo,
        &args(&[
            "backup",
            "--stdin-from-command",
            "--stdin-filename",
            "fail.sql",
            "--",
            "sh",
            "-c",
            "echo half; exit 2",
        ]),
        &[],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no snapshot was saved"));
    let out = cairn(&repo, &args(&["snapshots", "--json"]), &[]);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout)
            .matches("\"short_id\"")
            .count(),
        1
    );

    let target = tmp.path().join("restored");
    let out = cairn(
        &repo,
        &[
            std::ffi::OsStr::new("restore"),
            std::ffi::OsStr::new("latest"),
            std::ffi::OsStr::new("--target"),
            target.as_os_str(),
        ],
        &[],
    );
    assert!(out.status.success());
    assert!(std::fs::read(Path::new(&target).join("piped.bin")).unwrap() == data);
}
