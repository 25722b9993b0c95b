//! The `cairn` binary against a real SSH server (OpenSSH's `sshd`, which
//! `scripts/test.sh` installs): every command works on an `sftp:` location,
//! `copy` works to and from one, and an unknown host key, a refused login or
//! no server at all fails every command at once, on one line that says what
//! to fix.

use cairn_engine::backend::{Backend, FileKind};
use cairn_tests::remote::*;
use cairn_tests::sshd::SshServer;
use cairn_tests::*;
use std::fs;
use std::path::{Path, PathBuf};

/// The environment that makes `cairn` reach `server`.
fn ssh_env(server: &SshServer) -> Vec<(&'static str, String)> {
    vec![("CAIRN_SSH_COMMAND", server.ssh_command())]
}

fn borrowed<'a>(env: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    env.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

#[test]
fn every_command_works_on_an_sftp_repository() {
    let server = SshServer::start();
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path().canonicalize().unwrap();
    let location = server.location(&server.scratch().join("deep/er/repo"));
    every_command_works(&location, &borrowed(&ssh_env(&server)), &base);
    // Files are the owner's alone, as in a local repository.
    let config = server.scratch().join("deep/er/repo/config");
    let mode =
        fs::metadata(config).map(|m| std::os::unix::fs::PermissionsExt::mode(&m.permissions()));
    assert_eq!(mode.unwrap() & 0o777, 0o600);
}

/// A copy of the server's client configuration with `from` replaced by `to`.
fn altered_config(server: &SshServer, dir: &Path, from: &str, to: &str) -> String {
    let text = fs::read_to_string(server.ssh_config()).unwrap();
    assert!(text.contains(from), "{text}");
    let path = dir.join(format!(
        "ssh_config-{}",
        blake3::hash(to.as_bytes()).to_hex()
    ));
    fs::write(&path, text.replace(from, to)).unwrap();
    format!("ssh -F {}", path.display())
}

#[test]
fn an_unknown_host_key_a_refused_login_or_no_server_fails_at_once() {
    let server = SshServer::start();
    let tmp = tempfile::tempdir().unwrap();
    let location = server.location(&server.scratch().join("repo"));
    let env = ssh_env(&server);
    let mut init = vec!["init"];
    init.extend(CHEAP);
    ok_text(&cairn(Path::new(&location), &args(&init), &borrowed(&env)));

    // No known host key: never accepted, whatever the user's configuration.
    let empty = tmp.path().join("empty_known_hosts");
    fs::write(&empty, "").unwrap();
    let known = server.ssh_config().with_file_name("known_hosts");
    let config = fs::read_to_string(server.ssh_config()).unwrap();
    assert!(config.contains(known.to_str().unwrap()), "{config}");
    let command = altered_config(
        &server,
        tmp.path(),
        &format!("UserKnownHostsFile {}", known.display()),
        &format!(
            "UserKnownHostsFile {}\n  StrictHostKeyChecking accept-new",
            empty.display()
        ),
    );
    every_command_fails(
        &location,
        &[("CAIRN_SSH_COMMAND", &command)],
        "the host key of 127.0.0.1 is not in known_hosts, or differs from it",
        &[],
    );
    assert_eq!(
        fs::read_to_string(&empty).unwrap(),
        "",
        "the key was accepted"
    );

    // A key the server does not know.
    let other_key = tmp.path().join("other_key");
    let made = std::process::Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(&other_key)
        .status()
        .unwrap();
    assert!(made.success());
    let client_key = server.ssh_config().with_file_name("client_key");
    let command = altered_config(
        &server,
        tmp.path(),
        &format!("IdentityFile {}", client_key.display()),
        &format!("IdentityFile {}", other_key.display()),
    );
    every_command_fails(
        &location,
        &[("CAIRN_SSH_COMMAND", &command)],
        "the server refused the login",
        &[],
    );

    // Nothing listens.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let nowhere = format!("sftp://root@127.0.0.1:{port}/srv/repo");
    every_command_fails(&nowhere, &borrowed(&env), "Connection refused", &[]);

    // The repository is unharmed.
    ok_text(&cairn(
        Path::new(&location),
        &args(&["check"]),
        &borrowed(&env),
    ));
}

/// `copy` from a local repository into an SFTP one with another password,
/// and back: each copy restores byte-identical and checks clean, and a
/// second copy uploads nothing.
#[test]
fn copy_between_local_and_sftp_repositories() {
    let server = SshServer::start();
    let env = ssh_env(&server);
    let env = borrowed(&env);
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path().canonicalize().unwrap();
    let (src, local) = (base.join("src"), base.join("local"));
    build_tree(&src);
    let local_pw = base.join("local-password");
    fs::write(&local_pw, "the local repository's password").unwrap();
    let local_env = [("CAIRN_PASSWORD_FILE", local_pw.to_str().unwrap())];
    let mut init = vec!["init"];
    init.extend(CHEAP);
    ok_text(&cairn(&local, &args(&init), &local_env));
    ok_text(&cairn(
        &local,
        &with_paths(&["backup"], &[&src]),
        &local_env,
    ));

    let dir = server.scratch().join("copies");
    let remote = server.location(&dir);
    let remote_path = PathBuf::from(&remote);
    ok_text(&cairn(&remote_path, &args(&init), &env));
    let from_local = [
        "copy",
        "--from-repo",
        local.to_str().unwrap(),
        "--from-password-file",
        local_pw.to_str().unwrap(),
    ];
    let out = ok_text(&cairn(&remote_path, &args(&from_local), &env));
    assert!(out.contains("1 snapshot copied"), "{out}");
    restore_and_compare(&remote, &env, &src, &base.join("out"));
    let checked = ok_text(&cairn(&remote_path, &args(&["check", "--read-data"]), &env));
    assert!(checked.contains("no damage found"), "{checked}");
    let packs = server.backend(&dir).list(FileKind::Pack).unwrap();
    let out = ok_text(&cairn(&remote_path, &args(&from_local), &env));
    assert!(out.contains("0 blobs added"), "{out}");
    assert_eq!(server.backend(&dir).list(FileKind::Pack).unwrap(), packs);

    // Back from SFTP into a new local repository.
    let back = base.join("back");
    ok_text(&cairn(&back, &args(&init), &[]));
    let pw = base.join("remote-password");
    fs::write(&pw, PASSWORD).unwrap();
    let list = [
        "copy",
        "--from-repo",
        &remote,
        "--from-password-file",
        pw.to_str().unwrap(),
    ];
    ok_text(&cairn(&back, &args(&list), &env));
    let out = base.join("out-back");
    ok_text(&cairn(
        &back,
        &with_paths(&["restore", "latest", "--target"], &[&out]),
        &[],
    ));
    assert_same_tree(&src, &out.join(src.strip_prefix("/").unwrap()));
}
