//! Repositories named in the policy file, reached as `-r @NAME` (and
//! `--from-repo @NAME`): the file that holds the recovery objectives is the
//! user's profile too.

use crate::or_env;
use crate::password::PasswordSource;
use anyhow::{bail, Context as _, Result};
use cairn_recovery::Policy;
use std::path::{Path, PathBuf};

/// A repository as the command line names it, resolved.
pub struct Named {
    /// Its location, in the form `-r` takes.
    pub location: String,
    /// The password file the policy file gives it.
    password_file: Option<String>,
    /// The password command the policy file gives it.
    password_command: Option<String>,
}

/// The policy file: `--config`, else `$CAIRN_CONFIG`, else
/// `$XDG_CONFIG_HOME/cairn/cairn.toml` (or `~/.config/...`); `None` when
/// there is no home to look in.
pub fn policy_path(config: Option<String>) -> Result<Option<PathBuf>> {
    if let Some(path) = or_env(config, "CAIRN_CONFIG")? {
        return Ok(Some(PathBuf::from(path)));
    }
    let home = crate::remembered::xdg_home("XDG_CONFIG_HOME", ".config");
    Ok(home.map(|h| h.join("cairn").join("cairn.toml")))
}

/// Resolves `repo`: `@NAME` is the repository NAME of the policy file at
/// `policy`; anything else is a location as it stands.
pub fn resolve(repo: String, policy: Option<&Path>) -> Result<Named> {
    let Some(name) = repo.strip_prefix('@') else {
        return Ok(Named {
            location: repo,
            password_file: None,
            password_command: None,
        });
    };
    let Some(path) = policy else {
        bail!("no policy file to find repository {repo} in: give --config or set CAIRN_CONFIG");
    };
    let policy = Policy::load(path)?;
    let Some(found) = policy.repository(name) else {
        let defined: Vec<String> = policy
            .repositories
            .keys()
            .map(|n| format!("@{n}"))
            .collect();
        bail!(
            "policy file {} defines no repository {name:?} (it defines {})",
            path.display(),
            match defined.is_empty() {
                true => "none".to_string(),
                false => defined.join(", "),
            }
        );
    };
    let password_file = match &found.password_file {
        Some(file) => Some(
            file.to_str()
                .with_context(|| format!("password file of {repo} is not valid UTF-8"))?
                .to_string(),
        ),
        None => None,
    };
    Ok(Named {
        location: found.url.0.clone(),
        password_file,
        password_command: found.password_command.clone(),
    })
}

/// Where the password of `named` (when a repository is named) comes from:
/// the options given (`file`, `command`), else what the policy file gives
/// that repository, else the environment (`{variable}_FILE`,
/// `{variable}_COMMAND`, then `variable` itself).
pub fn password(
    named: Option<&Named>,
    file: Option<String>,
    command: Option<String>,
    variable: &'static str,
    label: &'static str,
) -> Result<PasswordSource> {
    let given = file.is_some() || command.is_some();
    let (file, command) = match named {
        Some(n) if !given && (n.password_file.is_some() || n.password_command.is_some()) => {
            (n.password_file.clone(), n.password_command.clone())
        }
        _ => (
            or_env(file, &format!("{variable}_FILE"))?,
            or_env(command, &format!("{variable}_COMMAND"))?,
        ),
    };
    Ok(PasswordSource {
        file,
        command,
        variable,
        label,
    })
}
