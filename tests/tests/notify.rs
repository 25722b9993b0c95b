//! Notifications of `run` and `status`: a breach is announced once when it
//! begins and once when it clears, by webhook and by email; a failed step
//! is announced; a webhook that cannot be reached fails nothing.

use cairn_tests::sinks::{http_sink, smtp_sink};
use cairn_tests::*;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// A policy in `dir` whose source `db` (RPO `rpo`) is the output of a
/// command that fails once the file `dir/down` exists; notifications go
/// to `webhook` and by email through `smtp`.
fn policy(dir: &Path, rpo: &str, webhook: &str, smtp: &str) -> PathBuf {
    let text = format!(
        "[repositories.main]\nurl = \"{main}\"\n\n\
         [sources.db]\ncommand = [\"sh\", \"-c\", \"test ! -e {down} && echo rows\"]\n\
         rpo = \"{rpo}\"\nto = [\"main\"]\n\n\
         [notify]\nwebhook = \"{webhook}\"\n\
         email = {{ to = \"ops@example.com\", from = \"cairn@example.com\", smtp = \"{smtp}\" }}\n",
        main = dir.join("main").display(),
        down = dir.join("down").display(),
    );
    let path = dir.join("cairn.toml");
    fs::write(&path, text).unwrap();
    path
}

/// Waits a little for `count` items in `received` (delivery is synchronous,
/// but the sink's thread may not have stored the last one yet).
fn settled(received: &cairn_tests::sinks::Received, count: usize) -> Vec<String> {
    for _ in 0..50 {
        if received.all().len() >= count {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    received.all()
}

#[test]
fn a_breach_is_announced_once_when_it_begins_and_once_when_it_clears() {
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path().canonicalize().unwrap();
    let (webhook, posts) = http_sink();
    let (smtp, mails) = smtp_sink();
    let config = policy(&base, "3s", &webhook, &smtp);
    let state = base.join("state");
    let env = [("XDG_STATE_HOME", state.to_str().unwrap())];
    let run = |list: &[&str]| cairn_configured(&config, list, &env);
    ok_text(&run(&["-r", "@main", "init", "--kdf-memory-kib", "64"]));

    ok_text(&run(&["run"]));
    assert_eq!(run(&["status"]).status.code(), Some(0));
    assert!(posts.all().is_empty(), "{:?}", posts.all());

    // The RPO passes: status says so, and tells once, however often asked.
    std::thread::sleep(Duration::from_millis(3500));
    for _ in 0..3 {
        assert_eq!(run(&["status"]).status.code(), Some(5));
    }
    let got = settled(&posts, 1);
    assert_eq!(got.len(), 1, "{got:?}");
    let breach: serde_json::Value = serde_json::from_str(&got[0]).unwrap();
    assert_eq!(breach["event"], "breach");
    assert_eq!(breach["source"], "db");
    assert_eq!(breach["repository"], "main");
    assert!(breach["text"]
        .as_str()
        .unwrap()
        .contains("RPO BREACH of db in main"));
    let mail = settled(&mails, 1);
    assert_eq!(mail.len(), 1, "{mail:?}");
    assert!(mail[0].contains("To: ops@example.com"), "{}", mail[0]);
    assert!(mail[0].contains("RPO BREACH of db in main"), "{}", mail[0]);

    // The next run backs up, and the recovery is told once.
    ok_text(&run(&["run"]));
    ok_text(&run(&["status"]));
    let got = settled(&posts, 2);
    assert_eq!(got.len(), 2, "{got:?}");
    let cleared: serde_json::Value = serde_json::from_str(&got[1]).unwrap();
    assert_eq!(cleared["event"], "cleared");
    assert_eq!(settled(&mails, 2).len(), 2);
}

#[test]
fn a_failed_backup_is_announced_and_an_unreachable_webhook_fails_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path().canonicalize().unwrap();
    let (webhook, posts) = http_sink();
    let (smtp, _mails) = smtp_sink();
    let config = policy(&base, "1h", &webhook, &smtp);
    let state = base.join("state");
    let env = [("XDG_STATE_HOME", state.to_str().unwrap())];
    let run = |config: &Path, list: &[&str]| cairn_configured(config, list, &env);
    ok_text(&run(
        &config,
        &["-r", "@main", "init", "--kdf-memory-kib", "64"],
    ));
    ok_text(&run(&config, &["run"]));

    // The dump command starts failing: one failure, within the RPO.
    fs::write(base.join("down"), "").unwrap();
    let out = run(&config, &["run", "--force"]);
    assert_eq!(out.status.code(), Some(1));
    let got = settled(&posts, 1);
    assert_eq!(got.len(), 1, "{got:?}");
    let failure: serde_json::Value = serde_json::from_str(&got[0]).unwrap();
    assert_eq!(failure["event"], "failure");
    assert_eq!(failure["source"], "db");

    // Nothing listens at the webhook: the run still succeeds, says so, and
    // shows no more of the webhook's URL than its origin.
    fs::remove_file(base.join("down")).unwrap();
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let nowhere = format!("http://{}/hook/secret-token", closed.local_addr().unwrap());
    drop(closed);
    let text = fs::read_to_string(&config)
        .unwrap()
        .replace(&webhook, &nowhere);
    fs::write(&config, text).unwrap();
    fs::write(base.join("down"), "").unwrap();
    let out = run(&config, &["run", "--force"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("notification not delivered: webhook http://127.0.0.1:"),
        "{stderr}"
    );
    assert!(!stderr.contains("secret-token"), "{stderr}");
    fs::remove_file(base.join("down")).unwrap();
    let out = run(&config, &["run", "--force"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
