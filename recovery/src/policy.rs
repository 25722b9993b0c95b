//! The policy file: the repositories, the sources backed up into them with
//! their recovery objectives, and whom to tell when an objective fails.
//!
//! It is TOML. Any mistake (an unknown key, a bad length of time, a source
//! sent to a repository the file does not define) is reported with its
//! line and column before anything runs.

use crate::interval::Interval;
use cairn_engine::backend::Location;
use cairn_engine::check::Subset;
use cairn_engine::retention::{self, Within};
use serde::{Deserialize, Deserializer};
use std::collections::BTreeMap;
use std::fmt::Display;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use toml::Spanned;

/// A policy file, read and checked.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    /// Repositories by the name sources and `-r @NAME` use.
    #[serde(default)]
    pub repositories: BTreeMap<String, Repository>,
    /// What is backed up, by name.
    #[serde(default)]
    pub sources: BTreeMap<String, Source>,
    /// Whom to tell when a backup fails or an objective is breached.
    #[serde(default)]
    pub notify: Notify,
}

/// Where a repository is and how its password is found.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Repository {
    /// Its location, in the form `-r` takes.
    #[serde(deserialize_with = "checked")]
    pub url: Url,
    /// A file holding the password; a relative path is taken from the
    /// policy file's folder.
    pub password_file: Option<PathBuf>,
    /// A shell command printing the password.
    pub password_command: Option<String>,
}

/// A repository location that [`Location::parse`] accepts, as written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Url(pub String);

impl FromStr for Url {
    type Err = cairn_engine::Error;

    fn from_str(text: &str) -> cairn_engine::Result<Url> {
        Location::parse(text).map(|_| Url(text.to_string()))
    }
}

impl Url {
    /// The kind of storage it names.
    pub fn storage(&self) -> Storage {
        match Location::parse(&self.0) {
            Ok(Location::S3(_)) => Storage::S3,
            Ok(Location::Sftp(_)) => Storage::Sftp,
            _ => Storage::Local,
        }
    }
}

/// Kinds of storage, as the 3-2-1 rule counts them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Storage {
    /// A directory on this machine (a disk, or a mounted share).
    Local,
    /// S3-compatible object storage.
    S3,
    /// A directory on another host, over SSH.
    Sftp,
}

/// One thing backed up, with its objectives.
#[derive(Debug, Deserialize)]
#[serde(try_from = "SourceFields")]
pub struct Source {
    /// What is read.
    pub input: Input,
    /// The most data that may be lost: the newest snapshot may be at most this old.
    pub rpo: Interval,
    /// How long a restore may take.
    pub rto: Option<Interval>,
    /// Which snapshots are kept.
    pub keep: Option<Keep>,
    /// The repositories, by name: backed up into the first, copied to the others.
    pub to: Vec<String>,
    /// A program and its arguments run before each backup; if it fails,
    /// the backup does not run.
    pub before: Option<Vec<String>>,
    /// A program and its arguments run after each backup, whatever its outcome.
    pub after: Option<Vec<String>>,
    /// Tags given to each snapshot.
    pub tags: Vec<String>,
    /// How often part of the repositories' data is read back.
    pub check: Option<CheckCadence>,
    /// How often a restore drill runs, and how its result is verified.
    pub drill: Option<DrillCadence>,
    /// A shell command that loads restored data into the live system (a
    /// database dump into its server, say); `{dir}` in it stands for the
    /// folder the snapshot was restored into. The runbook's last step.
    pub load: Option<String>,
    /// How often the repositories are pruned, freeing the space that only
    /// snapshots `keep` (or anything else) removed used.
    pub prune: Option<Interval>,
}

/// What a source reads.
#[derive(Debug, PartialEq)]
pub enum Input {
    /// Files and directories, with the backup options of the command line.
    Paths {
        paths: Vec<PathBuf>,
        exclude: Vec<String>,
        iexclude: Vec<String>,
        exclude_if_present: Vec<String>,
        exclude_caches: bool,
        exclude_larger_than: Option<String>,
        one_file_system: bool,
    },
    /// The standard output of a command, stored as one file.
    Command {
        command: Vec<String>,
        filename: String,
    },
}

/// Which snapshots of a source are kept, as `forget` takes them.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Keep {
    pub last: Option<u32>,
    pub hourly: Option<u32>,
    pub daily: Option<u32>,
    pub weekly: Option<u32>,
    pub monthly: Option<u32>,
    pub yearly: Option<u32>,
    /// Everything newer than this (calendar units: `2d`, `1m` is a month).
    #[serde(default, deserialize_with = "checked_option")]
    pub within: Option<Within>,
}

impl Keep {
    /// The engine's retention policy for these rules.
    pub fn retention(&self) -> retention::Policy {
        retention::Policy {
            last: self.last,
            hourly: self.hourly,
            daily: self.daily,
            weekly: self.weekly,
            monthly: self.monthly,
            yearly: self.yearly,
            within: self.within,
            ..Default::default()
        }
    }

    fn keeps_anything(&self) -> bool {
        let counts = [
            self.last,
            self.hourly,
            self.daily,
            self.weekly,
            self.monthly,
            self.yearly,
        ];
        self.within.is_some() || counts.iter().any(|c| c.is_some_and(|n| n > 0))
    }
}

/// A rolling check: every `every`, the next group of the repository's data is read.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckCadence {
    pub every: Interval,
    /// The share read each time, as `check --read-data-subset` takes it.
    #[serde(default, deserialize_with = "checked_option")]
    pub subset: Option<Subset>,
}

/// Restore drills: every `every`, the newest snapshot is restored into a
/// scratch folder, verified, and timed against the RTO.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DrillCadence {
    /// How often: a drill is due once the last one is this old.
    pub every: Interval,
    /// A shell command that checks the restored data and must exit 0;
    /// `{dir}` in it stands for the folder the snapshot was restored into.
    pub verify: Option<String>,
}

impl CheckCadence {
    /// Whether the check `done` counts as one of these: any check does
    /// when only the structure is asked for, one that read data otherwise.
    pub fn counts(&self, done: &cairn_format::journal::CheckResult) -> bool {
        self.subset.is_none() || !done.subset.is_empty()
    }
}

/// Where notifications go.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Notify {
    /// A URL that receives a JSON POST with a `text` field.
    pub webhook: Option<String>,
    pub email: Option<Email>,
}

impl Notify {
    /// Whether notifications go anywhere.
    pub fn is_configured(&self) -> bool {
        self.webhook.is_some() || self.email.is_some()
    }
}

/// Email through an SMTP server.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Email {
    pub to: String,
    pub from: String,
    /// `smtp://HOST[:PORT]` (no TLS: a relay on this machine or network),
    /// `smtp://HOST?tls=required` (STARTTLS) or `smtps://HOST`, with
    /// `USER:PASSWORD@` before the host to log in.
    pub smtp: String,
}

/// A source as written, before the checks that involve several keys.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct SourceFields {
    paths: Option<Vec<PathBuf>>,
    #[serde(default)]
    exclude: Vec<String>,
    #[serde(default)]
    iexclude: Vec<String>,
    #[serde(default)]
    exclude_if_present: Vec<String>,
    #[serde(default)]
    exclude_caches: bool,
    exclude_larger_than: Option<String>,
    #[serde(default)]
    one_file_system: bool,
    command: Option<Vec<String>>,
    filename: Option<String>,
    rpo: Interval,
    rto: Option<Interval>,
    keep: Option<Keep>,
    to: Vec<Spanned<String>>,
    before: Option<Vec<String>>,
    after: Option<Vec<String>>,
    #[serde(default)]
    tags: Vec<String>,
    check: Option<CheckCadence>,
    drill: Option<DrillCadence>,
    load: Option<String>,
    prune: Option<Interval>,
}

impl TryFrom<SourceFields> for Source {
    type Error = String;

    fn try_from(f: SourceFields) -> Result<Source, String> {
        let path_options = !f.exclude.is_empty()
            || !f.iexclude.is_empty()
            || !f.exclude_if_present.is_empty()
            || f.exclude_caches
            || f.exclude_larger_than.is_some()
            || f.one_file_system;
        let input = match (f.paths, f.command) {
            (Some(_), Some(_)) => return Err("a source has paths or a command, not both".into()),
            (None, None) => return Err("a source needs paths or a command".into()),
            (Some(paths), None) => {
                if paths.is_empty() {
                    return Err("paths is empty".into());
                }
                if f.filename.is_some() {
                    return Err("filename names a command's output; this source has paths".into());
                }
                Input::Paths {
                    paths,
                    exclude: f.exclude,
                    iexclude: f.iexclude,
                    exclude_if_present: f.exclude_if_present,
                    exclude_caches: f.exclude_caches,
                    exclude_larger_than: f.exclude_larger_than,
                    one_file_system: f.one_file_system,
                }
            }
            (None, Some(command)) => {
                if command.is_empty() {
                    return Err("command is empty: give the program and its arguments".into());
                }
                if path_options {
                    return Err("exclude options apply to paths; this source has a command".into());
                }
                Input::Command {
                    command,
                    filename: f.filename.unwrap_or_else(|| "stdin".into()),
                }
            }
        };
        if [&f.before, &f.after]
            .iter()
            .any(|h| h.as_ref().is_some_and(Vec::is_empty))
        {
            return Err("a hook is empty: give the program and its arguments".into());
        }
        if f.to.is_empty() {
            return Err("to names no repository".into());
        }
        for (i, repo) in f.to.iter().enumerate() {
            if f.to[..i].iter().any(|r| r.get_ref() == repo.get_ref()) {
                return Err(format!("to names repository {:?} twice", repo.get_ref()));
            }
        }
        if f.keep.as_ref().is_some_and(|k| !k.keeps_anything()) {
            return Err("keep keeps nothing: give at least one rule, as daily = 7".into());
        }
        Ok(Source {
            input,
            rpo: f.rpo,
            rto: f.rto,
            keep: f.keep,
            to: f.to.into_iter().map(Spanned::into_inner).collect(),
            before: f.before,
            after: f.after,
            tags: f.tags,
            check: f.check,
            drill: f.drill,
            load: f.load,
            prune: f.prune,
        })
    }
}

/// A value read with its [`FromStr`]; a refusal is reported where it stands.
fn checked<'de, D: Deserializer<'de>, T: FromStr>(d: D) -> Result<T, D::Error>
where
    T::Err: Display,
{
    String::deserialize(d)?
        .parse()
        .map_err(serde::de::Error::custom)
}

fn checked_option<'de, D: Deserializer<'de>, T: FromStr>(d: D) -> Result<Option<T>, D::Error>
where
    T::Err: Display,
{
    checked(d).map(Some)
}

/// A mistake in a policy file, with where it is.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    /// The file cannot be read.
    #[error("cannot read policy file {}: {source}", path.display())]
    Unreadable {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The file reads, but something in it is wrong.
    #[error("{}:{line}:{column}: {message}", path.display())]
    Invalid {
        path: PathBuf,
        /// 1-based.
        line: usize,
        /// 1-based, in characters.
        column: usize,
        message: String,
    },
}

/// How the 3-2-1 rule holds for one source: at least two repositories, on
/// at least two kinds of storage, at least one of them not on this machine.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ThreeTwoOne {
    /// Repositories the source goes to.
    pub copies: usize,
    /// Kinds of storage among them.
    pub kinds: usize,
    /// Whether one of them is not local.
    pub offsite: bool,
}

impl ThreeTwoOne {
    /// Whether the rule holds.
    pub fn holds(&self) -> bool {
        self.copies >= 2 && self.kinds >= 2 && self.offsite
    }
}

impl Policy {
    /// Reads the policy file at `path`.
    pub fn load(path: &Path) -> Result<Policy, PolicyError> {
        let text = std::fs::read_to_string(path).map_err(|source| PolicyError::Unreadable {
            path: path.to_path_buf(),
            source,
        })?;
        let base = path.parent().unwrap_or(Path::new("."));
        Policy::parse(&text, path, base)
    }

    /// Reads a policy from `text`, named `path` in errors; relative
    /// password files are taken from `base`.
    pub fn parse(text: &str, path: &Path, base: &Path) -> Result<Policy, PolicyError> {
        let at = |span: Option<Range<usize>>, message: String| {
            let (line, column) = line_and_column(text, span.map_or(0, |s| s.start));
            PolicyError::Invalid {
                path: path.to_path_buf(),
                line,
                column,
                message,
            }
        };
        let mut policy: Policy =
            toml::from_str(text).map_err(|e| at(e.span(), e.message().to_string()))?;
        // References between tables are checked here, where the names are known.
        let refs: Refs = toml::from_str(text).map_err(|e| at(e.span(), e.message().to_string()))?;
        // Names appear in commands, tags, file names and runbooks: plain words only.
        for name in refs.sources.keys().chain(refs.repositories.keys()) {
            let plain =
                name.get_ref().chars().enumerate().all(|(i, c)| {
                    c.is_ascii_alphanumeric() || (i > 0 && matches!(c, '.' | '_' | '-'))
                });
            if !plain || name.get_ref().is_empty() {
                let message = format!(
                    "{:?} cannot be a name: use letters, digits, and `.`, `_` or `-` after the first",
                    name.get_ref()
                );
                return Err(at(Some(name.span()), message));
            }
        }
        for (name, source) in &refs.sources {
            let name = name.get_ref();
            for repo in &source.to {
                if !policy.repositories.contains_key(repo.get_ref()) {
                    let defined: Vec<&str> =
                        policy.repositories.keys().map(String::as_str).collect();
                    let message = format!(
                        "source {name} is sent to repository {:?}, which is not defined (defined: {})",
                        repo.get_ref(),
                        match defined.is_empty() {
                            true => "none".to_string(),
                            false => defined.join(", "),
                        }
                    );
                    return Err(at(Some(repo.span()), message));
                }
            }
        }
        for repo in policy.repositories.values_mut() {
            if let Some(file) = &mut repo.password_file {
                *file = base.join(&*file);
            }
        }
        Ok(policy)
    }

    /// Fails, naming the first, when some of `names` are not sources of the policy.
    pub fn check_sources(&self, names: &[String]) -> Result<(), String> {
        match names.iter().find(|n| !self.sources.contains_key(*n)) {
            None => Ok(()),
            Some(name) => {
                let known: Vec<&str> = self.sources.keys().map(String::as_str).collect();
                Err(format!(
                    "the policy file has no source {name:?} (it has {})",
                    known.join(", ")
                ))
            }
        }
    }

    /// The repository named `name`.
    pub fn repository(&self, name: &str) -> Option<&Repository> {
        self.repositories.get(name)
    }

    /// How the 3-2-1 rule holds for `source`.
    pub fn three_two_one(&self, source: &Source) -> ThreeTwoOne {
        let mut kinds: Vec<Storage> = source
            .to
            .iter()
            .filter_map(|r| self.repositories.get(r))
            .map(|r| r.url.storage())
            .collect();
        let offsite = kinds.iter().any(|k| *k != Storage::Local);
        kinds.sort();
        kinds.dedup();
        let mut names = source.to.clone();
        names.sort();
        names.dedup();
        ThreeTwoOne {
            copies: names.len(),
            kinds: kinds.len(),
            offsite,
        }
    }
}

/// The names of the sources and repositories, and the repository names of
/// each source, with where they are written.
#[derive(Deserialize)]
struct Refs {
    #[serde(default)]
    sources: BTreeMap<Spanned<String>, SourceRefs>,
    #[serde(default)]
    repositories: BTreeMap<Spanned<String>, toml::Value>,
}

#[derive(Deserialize)]
struct SourceRefs {
    #[serde(default)]
    to: Vec<Spanned<String>>,
}

/// The 1-based line and column (in characters) of byte `at` of `text`.
fn line_and_column(text: &str, at: usize) -> (usize, usize) {
    let before = &text[..at.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let start = before.rfind('\n').map_or(0, |i| i + 1);
    (line, before[start..].chars().count() + 1)
}
