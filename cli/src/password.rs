//! Where the repository password (and a new one, for `key add` and
//! `key passwd`) comes from.

use anyhow::{bail, Context, Result};
use std::io::IsTerminal;
use std::process::Command;

/// Password sources named on the command line or in the environment.
pub struct PasswordSource {
    /// `--password-file` / `CAIRN_PASSWORD_FILE`.
    pub file: Option<String>,
    /// `--password-command` / `CAIRN_PASSWORD_COMMAND`.
    pub command: Option<String>,
    /// The variable that holds the password itself (`CAIRN_PASSWORD`), and
    /// what the prompt calls it.
    pub variable: &'static str,
    pub label: &'static str,
}

impl PasswordSource {
    /// Whether getting the password may involve the user: a prompt, or a
    /// command (which may ask in turn), rather than a file or the variable.
    pub fn involves_user(&self) -> bool {
        self.file.is_none() && std::env::var_os(self.variable).is_none()
    }

    /// The password, from the first source that is set: file, command,
    /// the variable (`CAIRN_PASSWORD`), then a prompt on the terminal (asked twice when `confirm`).
    pub fn get(&self, confirm: bool) -> Result<Vec<u8>> {
        if let Some(path) = &self.file {
            return from_file(path);
        }
        if let Some(cmd) = &self.command {
            let out = Command::new("sh")
                .arg("-c")
                .arg(cmd)
                .stderr(std::process::Stdio::inherit())
                .output()
                .with_context(|| format!("cannot run password command {cmd:?}"))?;
            if !out.status.success() {
                bail!("password command {cmd:?} failed ({})", out.status);
            }
            return non_empty(
                strip_newline(out.stdout),
                &format!("password command {cmd:?}"),
            );
        }
        if let Some(pw) = std::env::var_os(self.variable) {
            return non_empty(pw.into_encoded_bytes(), self.variable);
        }
        let var = self.variable;
        prompt(
            self.label,
            confirm,
            &format!(
                "no password given: set {var}_FILE, {var}_COMMAND or {var}, or run on a terminal"
            ),
        )
    }
}

/// The password in the file at `path`, without one trailing newline (LF or
/// CRLF); an empty one is refused.
pub fn from_file(path: &str) -> Result<Vec<u8>> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read password file {path}"))?;
    non_empty(strip_newline(bytes), &format!("password file {path}"))
}

/// Asks for the `label` password on the terminal, twice when `confirm`; an
/// empty one is refused. Without a terminal, fails with `no_terminal`.
pub fn prompt(label: &str, confirm: bool, no_terminal: &str) -> Result<Vec<u8>> {
    if !std::io::stdin().is_terminal() {
        bail!("{no_terminal}");
    }
    let pw = rpassword::prompt_password(format!("{label}: ")).context("cannot read password")?;
    if confirm
        && rpassword::prompt_password("repeat password: ").context("cannot read password")? != pw
    {
        bail!("the passwords do not match");
    }
    non_empty(pw.into_bytes(), "the password prompt")
}

fn strip_newline(mut bytes: Vec<u8>) -> Vec<u8> {
    if bytes.last() == Some(&b'\n') {
        bytes.pop();
        if bytes.last() == Some(&b'\r') {
            bytes.pop();
        }
    }
    bytes
}

fn non_empty(pw: Vec<u8>, from: &str) -> Result<Vec<u8>> {
    if pw.is_empty() {
        bail!("empty password from {from}");
    }
    Ok(pw)
}
