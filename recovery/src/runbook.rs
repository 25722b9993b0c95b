//! The recovery runbook: Markdown written from the policy and the live
//! state of its repositories (a [`Status`]), with every step a command to
//! run, snapshot IDs filled in, for each source and each repository it can
//! be recovered from. It names where the passwords are, never a password.
//!
//! Each recovery is a section headed `### Recover SOURCE from REPOSITORY`
//! whose `sh` blocks, run in order, bring the source's data back.

use crate::drill::shell_quote;
use crate::interval::Interval;
use crate::policy::{Input, Policy, Repository, Source, Storage};
use crate::status::{source_tag, Status};
use cairn_format::Timestamp;
use std::fmt::Write as _;
use std::path::Path;

/// How the runbook is written.
pub struct RunbookOptions<'a> {
    /// The policy file, as the runbook's commands name it.
    pub policy_path: &'a Path,
    /// Where a command source's output is restored before it is loaded:
    /// `WORK/SOURCE`.
    pub work_dir: &'a Path,
    /// A time as the reader's clock shows it.
    pub time: &'a dyn Fn(Timestamp) -> String,
    /// The host it is written on.
    pub host: &'a str,
}

/// The runbook of the sources of `status`, as `policy` defines them.
pub fn runbook(policy: &Policy, status: &Status, opts: &RunbookOptions) -> String {
    let at = |secs: i64| (opts.time)(Timestamp { secs, nanos: 0 });
    let mut out = String::new();
    let _ = writeln!(out, "# Recovery runbook\n");
    let _ = writeln!(
        out,
        "Written by `cairn runbook` on {} at {}, from the policy file `{}` and what its \
         repositories held then. Write it again after the policy changes, and keep a copy \
         where it can be read when this host is gone.\n",
        opts.host,
        at(status.time),
        opts.policy_path.display()
    );
    let _ = writeln!(
        out,
        "Every section below restores one source from one repository; run its `sh` blocks \
         in order, in one shell, on the machine being recovered, with `cairn` installed. \
         They need neither this host nor its policy file: only the repository and the \
         file or command that gives its password. `cairn drill SOURCE --from REPOSITORY` \
         rehearses a recovery without touching live data.\n"
    );
    for s in &status.sources {
        let source = &policy.sources[&s.source];
        let _ = writeln!(out, "## Source `{}`\n", s.source);
        let _ = writeln!(out, "- What: {}", what(source));
        let span =
            |secs: u64| Interval::from_secs(secs).map_or(format!("{secs} s"), |i| i.to_string());
        let rto = s.rto_seconds.map_or("none given".to_string(), span);
        let _ = writeln!(out, "- Objectives: RPO {}, RTO {rto}", span(s.rpo_seconds));
        let drill = match &s.last_drill {
            None => "none recorded".to_string(),
            Some(d) => format!(
                "{} at {} from `{}`: {:.1} s{}",
                if d.passed { "passed" } else { "FAILED" },
                at(d.time),
                d.repository,
                d.duration_seconds,
                match d.rto_met {
                    Some(true) => ", within the RTO",
                    Some(false) => ", ABOVE the RTO",
                    None => "",
                }
            ),
        };
        let _ = writeln!(out, "- Last restore drill: {drill}\n");
        let _ = writeln!(
            out,
            "| repository | location | password | newest restore point |"
        );
        let _ = writeln!(out, "|---|---|---|---|");
        for r in &s.repositories {
            let repo = &policy.repositories[&r.repository];
            let newest = r.newest.as_ref().map_or_else(
                || format!("none ({})", r.error.as_deref().unwrap_or("no snapshot")),
                |n| format!("`{}` of {}", &n.id[..8], at(n.time)),
            );
            let _ = writeln!(
                out,
                "| `{}` | `{}` | {} | {newest} |",
                r.repository,
                repo.url.0,
                password(repo)
            );
        }
        let _ = writeln!(out);
        let primary = &source.to[0];
        for r in &s.repositories {
            let Some(newest) = &r.newest else {
                continue;
            };
            let when = match r.repository == *primary {
                true => String::new(),
                false => format!(" (when `{primary}` is lost)"),
            };
            let _ = writeln!(
                out,
                "### Recover `{}` from `{}`{when}\n",
                s.source, r.repository
            );
            let steps = Steps {
                source,
                name: &s.source,
                repo: &policy.repositories[&r.repository],
                snapshot: &newest.id,
                taken: at(newest.time),
                opts,
            };
            steps.write(&mut out);
        }
    }
    out
}

/// What a source backs up, in words.
fn what(source: &Source) -> String {
    match &source.input {
        Input::Paths { paths, .. } => {
            let list: Vec<String> = paths.iter().map(|p| format!("`{}`", p.display())).collect();
            format!("the files below {}", list.join(", "))
        }
        Input::Command { command, filename } => format!(
            "the output of `{}`, stored as the file `{filename}`",
            command.join(" ")
        ),
    }
}

/// Where the password of `repo` comes from, never the password itself.
fn password(repo: &Repository) -> String {
    match (&repo.password_file, &repo.password_command) {
        (Some(file), _) => format!("in the file `{}`", file.display()),
        (None, Some(command)) => format!("printed by `{command}`"),
        (None, None) => "from `CAIRN_PASSWORD`, or asked for".to_string(),
    }
}

/// The shell lines that tell cairn where the password of `repo` is.
fn password_env(repo: &Repository) -> String {
    match (&repo.password_file, &repo.password_command) {
        (Some(file), _) => format!(
            "export CAIRN_PASSWORD_FILE={}\n",
            shell_quote(&file.display().to_string())
        ),
        (None, Some(command)) => {
            format!("export CAIRN_PASSWORD_COMMAND={}\n", shell_quote(command))
        }
        (None, None) => String::new(),
    }
}

/// The steps that recover one source from one repository.
struct Steps<'a> {
    source: &'a Source,
    name: &'a str,
    repo: &'a Repository,
    snapshot: &'a str,
    taken: String,
    opts: &'a RunbookOptions<'a>,
}

impl Steps<'_> {
    fn write(&self, out: &mut String) {
        let mut n = 0;
        let mut step = |out: &mut String, text: String, commands: String| {
            n += 1;
            let _ = writeln!(out, "{n}. {text}\n\n```sh\n{commands}```\n");
        };
        step(
            out,
            format!(
                "Open the repository and look at the restore points of `{}`{}.",
                self.name,
                match self.repo.url.storage() {
                    Storage::S3 =>
                        " (with the bucket's `AWS_ACCESS_KEY_ID` and \
                                    `AWS_SECRET_ACCESS_KEY` set)",
                    _ => "",
                }
            ),
            format!(
                "export CAIRN_REPOSITORY={}\n{}cairn snapshots --tag {}\n",
                shell_quote(&self.repo.url.0),
                password_env(self.repo),
                shell_quote(&source_tag(self.name))
            ),
        );
        let (dir, restore) = match &self.source.input {
            Input::Paths { .. } => (
                "/".to_string(),
                format!(
                    "Restore the newest, snapshot `{}` of {}, to where its files were, \
                     reading every file back.",
                    &self.snapshot[..8],
                    self.taken
                ),
            ),
            Input::Command { .. } => (
                self.opts.work_dir.join(self.name).display().to_string(),
                format!(
                    "Restore the newest, snapshot `{}` of {}, into a work folder, reading \
                     every file back.",
                    &self.snapshot[..8],
                    self.taken
                ),
            ),
        };
        let quoted = shell_quote(&dir);
        let make = match dir.as_str() {
            "/" => String::new(),
            _ => format!("mkdir -p {quoted}\n"),
        };
        step(
            out,
            restore,
            format!(
                "{make}cairn restore {} --target {quoted} --verify\n",
                self.snapshot
            ),
        );
        if let Some(verify) = self.source.drill.as_ref().and_then(|d| d.verify.as_deref()) {
            step(
                out,
                "Check what was restored, as the restore drills do.".into(),
                format!("{}\n", verify.replace("{dir}", &quoted)),
            );
        }
        if let Some(load) = &self.source.load {
            step(
                out,
                "Load it into the live system.".into(),
                format!("{}\n", load.replace("{dir}", &quoted)),
            );
        }
    }
}
