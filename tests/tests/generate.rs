//! `cairn generate`: completion scripts that the shells accept, and manual
//! pages that `man` renders, for every command.

use cairn_tests::*;
use std::path::Path;
use std::process::Command;

/// Runs `cairn` with `list` and nothing in the environment but `PATH`.
fn generate(list: &[&str]) -> std::process::Output {
    Command::new(cairn_bin())
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .args(list)
        .output()
        .unwrap()
}

#[test]
fn completions_name_every_command_and_bash_parses_its_script() {
    for shell in ["bash", "zsh", "fish", "powershell"] {
        let script = ok_text(&generate(&["generate", "completions", shell]));
        for word in [
            "backup",
            "restore",
            "snapshots",
            "--password-file",
            "archive-wal",
        ] {
            assert!(script.contains(word), "{shell}: no {word}");
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("cairn.bash");
    std::fs::write(&file, generate(&["generate", "completions", "bash"]).stdout).unwrap();
    // Sourced and asked to complete `cairn ba`, the script offers `backup`.
    let probe = format!(
        "source {} && COMP_WORDS=(cairn ba) COMP_CWORD=1 COMP_LINE='cairn ba' COMP_POINT=8 \
         && _cairn cairn ba cairn && printf '%s\\n' \"${{COMPREPLY[@]}}\"",
        file.display()
    );
    let out = Command::new("bash").args(["-c", &probe]).output().unwrap();
    let offered = ok_text(&out);
    assert!(offered.lines().any(|l| l == "backup"), "{offered:?}");
    let out = generate(&["generate", "completions", "tcsh"]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "an unknown shell is a usage error"
    );
}

#[test]
fn manual_pages_are_written_for_every_command_and_render() {
    let dir = tempfile::tempdir().unwrap();
    let man = dir.path().join("new/man1");
    ok_text(&generate(&["generate", "man", man.to_str().unwrap()]));
    for page in [
        "cairn",
        "cairn-backup",
        "cairn-key-add",
        "cairn-pg-archive-wal",
    ] {
        let path = man.join(format!("{page}.1"));
        assert!(path.is_file(), "no {}", path.display());
    }
    assert!(!man.join("cairn-help.1").exists());
    let text = render(&man.join("cairn-backup.1"));
    // The page has the command's name, its own options and the global ones.
    for word in [
        "cairn-backup",
        "--exclude",
        "--password-file",
        "DESCRIPTION",
    ] {
        assert!(text.contains(word), "no {word} in:\n{text}");
    }
    let text = render(&man.join("cairn.1"));
    assert!(text.contains("cairn-restore(1)"), "{text}");
    // A folder that cannot be made is named in one line.
    let blocker = dir.path().join("file");
    std::fs::write(&blocker, b"x").unwrap();
    let out = generate(&["generate", "man", blocker.join("man1").to_str().unwrap()]);
    assert_clean_failure(&out, 1, &blocker.display().to_string());
}

/// What `man -l` prints of the page at `path`, as plain text.
fn render(path: &Path) -> String {
    let out = Command::new("man")
        .args(["-l", "-P", "cat"])
        .arg(path)
        .env("MANWIDTH", "100")
        .env("MAN_KEEP_FORMATTING", "0")
        .output()
        .unwrap();
    let text = ok_text(&out);
    // Bold and underline, made by overstriking, removed.
    let mut plain = String::new();
    for c in text.chars() {
        match c {
            '\u{8}' => {
                plain.pop();
            }
            c => plain.push(c),
        }
    }
    plain
}
