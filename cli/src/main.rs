//! `cairn`: the command line of the cairn backup engine.

mod commands;
mod examples;
mod location;
mod mount;
mod output;
mod password;
mod profile;
mod progress;
mod remembered;
mod ui;

use cairn_engine::backend::{Backend, Location};
use cairn_engine::progress::Progress;
use cairn_engine::{Error, Repository};
use cairn_format::SnapshotId;
use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};
use password::PasswordSource;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

/// Exit code when a backup finished but left out entries it could not read.
pub const EXIT_INCOMPLETE: u8 = 3;
/// Exit code when `check` found damage.
pub const EXIT_DAMAGED: u8 = 4;
/// Exit code when `status` finds a recovery objective that does not hold.
pub const EXIT_OBJECTIVE_MISSED: u8 = 5;
/// Exit code when there is no repository at the given location.
pub const EXIT_NO_REPOSITORY: u8 = 10;
/// Exit code when the password opens no key file.
pub const EXIT_WRONG_PASSWORD: u8 = 12;

/// The environment variables the command line reads, for `--help`.
const ENVIRONMENT: &str = "\
Environment:
  CAIRN_REPOSITORY        the repository, when -r/--repo is not given
  CAIRN_CONFIG            the policy file, when --config is not given
  XDG_CONFIG_HOME         otherwise, the policy file is its cairn/cairn.toml (default: ~/.config/cairn/cairn.toml)
  CAIRN_PASSWORD_FILE     read the password from this file, when --password-file is not given
  CAIRN_PASSWORD_COMMAND  run this command for the password, when --password-command is not given
  CAIRN_PASSWORD          the password itself, when no file or command is given
  CAIRN_KEY_HINT          the key file to try first, when --key-hint is not given
  CAIRN_FROM_REPOSITORY, CAIRN_FROM_PASSWORD_FILE, CAIRN_FROM_PASSWORD_COMMAND,
  CAIRN_FROM_PASSWORD     the same for the repository `copy` reads from
  AWS_ACCESS_KEY_ID       for an s3: repository, the access key ID
  AWS_SECRET_ACCESS_KEY   for an s3: repository, the secret access key
  AWS_SESSION_TOKEN       for an s3: repository, the session token of temporary credentials
  AWS_REGION              for an s3: repository, the region (or AWS_DEFAULT_REGION; default us-east-1)
  CAIRN_SSH_COMMAND       for an sftp: repository, the command that runs ssh, when --ssh-command is not given
  CAIRN_CACHE_DIR         where remote repositories' metadata is cached, when --cache-dir is not given
  XDG_CACHE_HOME          otherwise, the cache is in its folder cairn (default: ~/.cache/cairn)
Without a password source, the password is asked on the terminal.";

/// Encrypted, deduplicating backups.
#[derive(Parser)]
#[command(name = "cairn", version, about, long_about = None, after_help = ENVIRONMENT)]
struct Cli {
    /// Repository location: a directory, local:DIR,
    /// s3:http(s)://HOST[:PORT]/BUCKET[/PREFIX], sftp:[USER@]HOST:PATH or
    /// sftp://[USER@]HOST[:PORT]/PATH, or @NAME for a repository of the
    /// policy file [default: $CAIRN_REPOSITORY].
    #[arg(short = 'r', long = "repo", value_name = "LOCATION", global = true)]
    repo: Option<String>,
    /// The policy file, whose repositories -r @NAME names [default:
    /// $CAIRN_CONFIG, or $XDG_CONFIG_HOME/cairn/cairn.toml].
    #[arg(long, value_name = "FILE", global = true)]
    config: Option<String>,
    /// Read the password from this file [default: $CAIRN_PASSWORD_FILE].
    #[arg(long, value_name = "FILE", global = true)]
    password_file: Option<String>,
    /// Run this shell command and use its output as the password [default:
    /// $CAIRN_PASSWORD_COMMAND].
    #[arg(long, value_name = "COMMAND", global = true)]
    password_command: Option<String>,
    /// Try this key file (an ID prefix, as `key list` shows) first when
    /// opening; by default, the one that last opened the repository here
    /// [default: $CAIRN_KEY_HINT].
    #[arg(long, value_name = "KEY", global = true)]
    key_hint: Option<String>,
    /// Do not show progress (it is shown only when standard error is a
    /// terminal, or with --json as status lines).
    #[arg(long, global = true)]
    no_progress: bool,
    /// Print JSON: one document for listings; JSON lines (status, errors,
    /// a summary) for backup, restore, check, forget, prune and copy.
    #[arg(long, global = true)]
    json: bool,
    /// Give up on a request to remote storage that takes longer than this,
    /// and repeat it (up to 7 times, pausing longer each time).
    #[arg(long, value_name = "SECONDS", default_value_t = 60, global = true,
          value_parser = clap::value_parser!(u64).range(1..=3600))]
    timeout: u64,
    /// The command that runs ssh for an sftp: repository, split at spaces
    /// (for example "ssh -F /etc/cairn/ssh_config") [default: $CAIRN_SSH_COMMAND, or ssh].
    #[arg(long, value_name = "COMMAND", global = true)]
    ssh_command: Option<String>,
    /// Requests to keep in flight at once to remote storage (pack uploads
    /// and downloads): more hide a distant server's latency, at up to
    /// one pack of memory each.
    #[arg(long, value_name = "N", global = true,
          default_value_t = cairn_engine::backend::DEFAULT_CONNECTIONS as u16,
          value_parser = clap::value_parser!(u16).range(1..=64))]
    connections: u16,
    /// Keep copies of a remote repository's index, snapshots and trees, and
    /// a large index ready to load, in this folder [default:
    /// $CAIRN_CACHE_DIR, or $XDG_CACHE_HOME/cairn].
    #[arg(long, value_name = "DIR", global = true)]
    cache_dir: Option<String>,
    /// Read everything from the repository, and keep no copies.
    #[arg(long, global = true, conflicts_with = "cache_dir")]
    no_cache: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Create a new repository.
    Init(commands::init::Args),
    /// Back up files and directories into a new snapshot.
    Backup(Box<commands::backup::Args>),
    /// List snapshots.
    Snapshots(commands::snapshots::Args),
    /// List the files in a snapshot.
    Ls(commands::ls::Args),
    /// Restore a snapshot, or one path of it.
    Restore(commands::restore::Args),
    /// Print a repository object as JSON: `config`, `snapshot ID` or `tree ID`.
    Cat(commands::cat::Args),
    /// Show what changed between two snapshots.
    Diff(commands::diff::Args),
    /// Find files and directories by glob pattern in snapshots.
    Find(commands::find::Args),
    /// Show sizes, deduplication and compression of snapshots or the repository.
    Stats(commands::stats::Args),
    /// Write a file of a snapshot, or a directory as a tar archive, to standard output.
    Dump(commands::dump::Args),
    /// Show the snapshots as a read-only file system (FUSE) until Ctrl-C.
    Mount(commands::mount::Args),
    /// Add, remove or replace the tags of snapshots.
    Tag(commands::tag::Args),
    /// Do what is due of the policy file: back up sources about to miss
    /// their RPO, copy them to their other repositories, apply their keep rules.
    Run(commands::run::Args),
    /// Whether the recovery objectives of the policy file hold, source by
    /// source and repository by repository.
    Status(commands::status::Args),
    /// Restore drills: restore a source's snapshot into a scratch folder,
    /// verify it, time it against the RTO, and record the result.
    Drill(commands::drill::Args),
    /// The audit log: who changed the repository, restored or drilled from
    /// it, and when; --verify checks that it is whole.
    Audit(commands::audit::Args),
    /// Write a recovery runbook in Markdown from the policy file and what
    /// its repositories hold: each recovery as commands to run.
    Runbook(commands::runbook::Args),
    /// Check the repository's structure, and with --read-data all its data.
    Check(commands::check::Args),
    /// Remove snapshots by a retention policy (or by ID), optionally pruning after.
    Forget(Box<commands::forget::Args>),
    /// Delete data no snapshot uses and repack packs that are mostly unused.
    Prune(commands::prune::Args),
    /// Rebuild the index, or rewrite snapshots around lost data.
    Repair(commands::repair::Args),
    /// Copy snapshots from another repository into this one.
    Copy(commands::copy::Args),
    /// Remove the lock records of operations that have ended or are gone.
    Unlock(commands::unlock::Args),
    /// List, add or remove the repository's passwords (key files), or change
    /// the one in use.
    Key(commands::key::Args),
    /// PostgreSQL: continuous WAL archiving, base backups, and recovery to
    /// a point in time.
    Pg(commands::pg::Args),
    /// Shell completions and manual pages.
    Generate(commands::generate::Args),
    /// A web dashboard of the recovery objectives, snapshots and audit log,
    /// on http://127.0.0.1:8470/ until Ctrl-C.
    Ui(commands::ui::Args),
}

/// What every command needs to reach the repository.
pub struct Context {
    repo: Option<String>,
    password: PasswordSource,
    /// `--key-hint`.
    key_hint: Option<String>,
    /// How to show progress.
    progress: progress::Shown,
    /// `--json`: print JSON instead of text.
    pub json: bool,
    /// How to reach remote storage, and what was reached.
    reach: location::Reach,
    /// Where repositories' index tables and remote repositories' metadata
    /// are cached; `None` with `--no-cache`.
    cache: Option<PathBuf>,
    /// The policy file, for repositories named `@NAME`.
    pub policy: Option<PathBuf>,
}

/// Adds a record of `command` to the audit log of `repo` (SPEC.md §18):
/// the snapshots it involved and its `outcome`. A record that cannot be
/// written is a warning: it never fails the command.
pub fn audit(repo: &Repository, command: &str, snapshots: &[SnapshotId], outcome: &str) {
    if let Some(warning) = cairn_engine::audit::try_record(repo, command, snapshots, outcome) {
        eprintln!("warning: {warning}");
    }
}

impl Context {
    /// The backend named by `--repo` / `CAIRN_REPOSITORY`.
    pub fn backend(&self) -> anyhow::Result<Arc<dyn Backend>> {
        match &self.repo {
            Some(r) if !r.is_empty() => self.reach.backend(r),
            _ => anyhow::bail!("no repository given: use -r/--repo or set CAIRN_REPOSITORY"),
        }
    }

    /// The context for a second repository, the source of `copy` or of
    /// `init --copy-chunker-params-from`: at `repo`, with its own password.
    pub fn source(&self, repo: Option<String>, password: PasswordSource) -> Context {
        Context {
            repo,
            password,
            key_hint: None,
            progress: self.progress,
            json: self.json,
            reach: self.reach.clone(),
            cache: self.cache.clone(),
            policy: self.policy.clone(),
        }
    }

    /// A progress counter and its display, unless progress is off (or not
    /// shown: standard error is not a terminal, and no `--json`); `what`
    /// names the items.
    pub fn progress(&self, what: &'static str) -> Option<(Arc<Progress>, progress::Display)> {
        (self.progress != progress::Shown::Off).then(|| {
            let p = Arc::new(Progress::default());
            (p.clone(), progress::Display::start(p, what, self.progress))
        })
    }

    /// Opens the repository, asking for the password.
    pub fn open(&self) -> anyhow::Result<Repository> {
        let (backend, password) = self.credentials()?;
        let location = backend.location();
        let hint = self.key_hint(&location);
        let repo = Repository::open_hinted(backend, &password, hint.as_deref(), |repo| {
            self.prepare(repo, &location, true)
        })?;
        Ok(repo)
    }

    /// A function that opens the repository anew on each call, with the
    /// password read once now: for `cairn ui`, which opens a repository
    /// again when backups made elsewhere add what its index does not hold.
    pub fn reopener(&self) -> anyhow::Result<crate::ui::Opener> {
        let (backend, password) = self.credentials()?;
        let location = backend.location();
        let hint = self.key_hint(&location);
        let unused = password::PasswordSource {
            file: None,
            command: None,
            variable: "CAIRN_PASSWORD",
            label: "repository password",
        };
        let ctx = self.source(self.repo.clone(), unused);
        Ok(Box::new(move || {
            let repo = Repository::open_hinted(backend.clone(), &password, hint.as_deref(), |r| {
                ctx.prepare(r, &location, true)
            })?;
            Ok(repo)
        }))
    }

    /// Opens the repository without its index: for a backup, which loads
    /// it in its session once it has checked its input, and for the key
    /// commands, which do not need it. The key file given by `--key-hint`,
    /// or else the one that last opened this repository, is tried first.
    pub fn open_keys(&self) -> anyhow::Result<Repository> {
        self.open_keys_cached(true)
    }

    /// Like [`Context::open_keys`], with the password that opened it: for
    /// a key rotation, which seals the new key file under it.
    pub fn open_keys_with_password(&self) -> anyhow::Result<(Repository, Vec<u8>)> {
        let (backend, password) = self.credentials()?;
        let location = backend.location();
        let hint = self.key_hint(&location);
        let mut repo = Repository::open_keys_hinted(backend, &password, hint.as_deref())?;
        self.prepare(&mut repo, &location, true);
        Ok((repo, password))
    }

    /// Like [`Context::open_keys`], reading everything from storage: for
    /// `check` and `repair`, which judge what storage holds.
    pub fn open_keys_uncached(&self) -> anyhow::Result<Repository> {
        self.open_keys_cached(false)
    }

    /// Opens the repository without its index, using the cache when `cached`,
    /// the repository is remote and the cache is not turned off.
    fn open_keys_cached(&self, cached: bool) -> anyhow::Result<Repository> {
        let (backend, password) = self.credentials()?;
        let location = backend.location();
        let hint = self.key_hint(&location);
        let mut repo = Repository::open_keys_hinted(backend, &password, hint.as_deref())?;
        self.prepare(&mut repo, &location, cached);
        Ok(repo)
    }

    /// The key file to try first: `--key-hint`, or else the one that last
    /// opened the repository at `location`.
    fn key_hint(&self, location: &str) -> Option<String> {
        self.key_hint.clone().or_else(|| remembered::key(location))
    }

    /// Remembers the key that opened `repo` (at `location`), and, unless
    /// the cache is turned off or not `cached`, gives it an index table
    /// and, when the repository is remote, the metadata cache.
    fn prepare(&self, repo: &mut Repository, location: &str, cached: bool) {
        if let Some(key) = repo.key_id() {
            remembered::remember_key(location, &key);
        }
        if let Some(dir) = remembered::parents(location) {
            repo.use_parent_cache(&dir);
        }
        let Some(base) = self.cache.as_deref().filter(|_| cached) else {
            return;
        };
        repo.use_index_table(base);
        let remote = !matches!(Location::parse(location), Ok(Location::Local(_)));
        if remote {
            if let Err(e) = repo.use_cache(base) {
                eprintln!("cairn: {e}: going on without it");
            }
        }
    }

    /// The backend and the password. Before the user is asked for a
    /// password, the backend is checked to hold a repository; otherwise the
    /// open finds that out, a round trip sooner.
    fn credentials(&self) -> anyhow::Result<(Arc<dyn Backend>, Vec<u8>)> {
        let backend = self.backend()?;
        if self.password.involves_user() && !backend.exists()? {
            return Err(Error::RepositoryNotFound(backend.location()).into());
        }
        Ok((backend, self.password.get(false)?))
    }
}

/// Has glibc map large buffers (packs, read-ahead, big chunks) and return
/// them to the system when freed: by default it raises that threshold after
/// large frees, and such buffers then pile up in per-thread heaps. The heap
/// keeps 8 MiB of slack, so that it is not shrunk and regrown for every
/// blob-sized buffer. Measured: peak memory of a 1.3 GB backup 116 MiB by
/// default, 69 MiB with the threshold alone, 79 MiB with both; backup and
/// restore of 800 MiB of random data 18% and 24% faster with the slack.
/// Threads share one heap per core rather than up to eight: a restore from
/// S3 runs a thread per connection, and each heap kept its slack (peak
/// memory 119-136 MiB, 85-102 MiB with one heap per core, at the same speed;
/// no change from a local repository).
fn tune_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let heaps = i32::try_from(cores).unwrap_or(i32::MAX);
        // SAFETY: mallopt only sets tuning parameters, before any other thread exists.
        unsafe {
            libc::mallopt(libc::M_MMAP_THRESHOLD, 1 << 20);
            libc::mallopt(libc::M_TOP_PAD, 8 << 20);
            libc::mallopt(libc::M_ARENA_MAX, heaps);
        }
    }
}

/// Lets a closed standard output end the program quietly, as it ends other
/// Unix tools (`cairn ls latest | head`): the Rust runtime ignores SIGPIPE,
/// which turns every `println!` after the reader has gone into a panic.
fn default_sigpipe() {
    // SAFETY: sets one signal's disposition, before any thread exists.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

/// The value of an option, or else of the environment variable `var` when
/// it is set and not empty. Clap could read it too, but would then show the
/// option as given, and so as required, in the usage line of every error.
pub(crate) fn or_env(option: Option<String>, var: &str) -> anyhow::Result<Option<String>> {
    if option.is_some() {
        return Ok(option);
    }
    match std::env::var(var) {
        Ok(v) if !v.is_empty() => Ok(Some(v)),
        Ok(_) | Err(std::env::VarError::NotPresent) => Ok(None),
        Err(std::env::VarError::NotUnicode(_)) => anyhow::bail!("{var} is not valid UTF-8"),
    }
}

/// The folder under which each remote repository's metadata is cached:
/// `dir` if given, else `$XDG_CACHE_HOME/cairn` or `~/.cache/cairn`; none
/// when no home is known.
fn cache_base(dir: Option<String>) -> Option<PathBuf> {
    match dir {
        Some(dir) => Some(PathBuf::from(dir)),
        None => Some(remembered::cache_home()?.join("cairn")),
    }
}

fn main() -> ExitCode {
    default_sigpipe();
    tune_allocator();
    // PostgreSQL's restore_command: every failure, even of the arguments or
    // a panic, must exit above 125, or the server takes it for "no such
    // file" and ends recovery early.
    let fetching_wal = commands::pg::is_restore_wal(std::env::args_os());
    if fetching_wal {
        std::panic::set_hook(Box::new(|info| {
            eprintln!("cairn: {info}");
            std::process::exit(commands::pg::EXIT_RESTORE_WAL_FAILED.into());
        }));
    }
    let parsed = examples::add(Cli::command())
        .try_get_matches()
        .and_then(|matches| Cli::from_arg_matches(&matches));
    let cli = match parsed {
        Ok(cli) => cli,
        Err(e) if fetching_wal && e.use_stderr() => {
            let _ = e.print();
            return ExitCode::from(commands::pg::EXIT_RESTORE_WAL_FAILED);
        }
        Err(e) => e.exit(),
    };
    let json = cli.json;
    match run(cli) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            let code = match fetching_wal {
                true => commands::pg::EXIT_RESTORE_WAL_FAILED,
                false => exit_code(&e),
            };
            match json {
                true => eprintln!(
                    "{}",
                    serde_json::json!({"message_type": "exit_error", "code": code, "message": final_words(&e)})
                ),
                false => eprintln!("cairn: {}", final_words(&e)),
            }
            ExitCode::from(code)
        }
    }
}

/// The name of `command` when it has no JSON output (`key` and `drill`
/// have it only in their listings, and check that themselves).
fn without_json(command: &Command) -> Option<&'static str> {
    Some(match command {
        Command::Init(_) => "init",
        Command::Dump(_) => "dump",
        Command::Mount(_) => "mount",
        Command::Ui(_) => "ui",
        Command::Tag(_) => "tag",
        Command::Run(_) => "run",
        Command::Runbook(_) => "runbook",
        Command::Repair(_) => "repair",
        Command::Unlock(_) => "unlock",
        Command::Pg(_) => "pg",
        Command::Generate(_) => "generate",
        _ => return None,
    })
}

fn run(cli: Cli) -> anyhow::Result<u8> {
    if let Some(name) = without_json(&cli.command).filter(|_| cli.json) {
        anyhow::bail!("`cairn {name}` has no JSON output: leave out --json");
    }
    let policy = profile::policy_path(cli.config)?;
    let named = match or_env(cli.repo, "CAIRN_REPOSITORY")? {
        Some(repo) => Some(profile::resolve(repo, policy.as_deref())?),
        None => None,
    };
    let ctx = Context {
        password: profile::password(
            named.as_ref(),
            cli.password_file,
            cli.password_command,
            "CAIRN_PASSWORD",
            "repository password",
        )?,
        repo: named.map(|n| n.location),
        policy,
        key_hint: or_env(cli.key_hint, "CAIRN_KEY_HINT")?,
        progress: match (cli.no_progress, cli.json) {
            (true, _) => progress::Shown::Off,
            (false, true) => progress::Shown::Json,
            (false, false) if std::io::stderr().is_terminal() => progress::Shown::Bar,
            (false, false) => progress::Shown::Off,
        },
        json: cli.json,
        reach: location::Reach::new(
            Duration::from_secs(cli.timeout),
            cli.ssh_command,
            usize::from(cli.connections),
        ),
        cache: match cli.no_cache {
            true => None,
            false => cache_base(or_env(cli.cache_dir, "CAIRN_CACHE_DIR")?),
        },
    };
    let outcome = match cli.command {
        Command::Init(a) => commands::init::run(&ctx, a),
        Command::Backup(a) => commands::backup::run(&ctx, *a),
        Command::Snapshots(a) => commands::snapshots::run(&ctx, a),
        Command::Ls(a) => commands::ls::run(&ctx, a),
        Command::Restore(a) => commands::restore::run(&ctx, a),
        Command::Cat(a) => commands::cat::run(&ctx, a),
        Command::Diff(a) => commands::diff::run(&ctx, a),
        Command::Find(a) => commands::find::run(&ctx, a),
        Command::Stats(a) => commands::stats::run(&ctx, a),
        Command::Dump(a) => commands::dump::run(&ctx, a),
        Command::Mount(a) => commands::mount::run(&ctx, a),
        Command::Ui(a) => commands::ui::run(&ctx, a),
        Command::Tag(a) => commands::tag::run(&ctx, a),
        Command::Status(a) => commands::status::run(&ctx, a),
        Command::Drill(a) => commands::drill::run(&ctx, a),
        Command::Audit(a) => commands::audit::run(&ctx, a),
        Command::Runbook(a) => commands::runbook::run(&ctx, a),
        Command::Run(a) => commands::run::run(&ctx, a),
        Command::Check(a) => commands::check::run(&ctx, a),
        Command::Forget(a) => commands::forget::run(&ctx, *a),
        Command::Prune(a) => commands::prune::run(&ctx, a),
        Command::Repair(a) => commands::repair::run(&ctx, a),
        Command::Copy(a) => commands::copy::run(&ctx, a),
        Command::Unlock(a) => commands::unlock::run(&ctx, a),
        Command::Key(a) => commands::key::run(&ctx, a),
        Command::Pg(a) => commands::pg::run(&ctx, a),
        Command::Generate(a) => commands::generate::run(a, examples::add(Cli::command())),
    };
    for line in ctx.reach.retry_report() {
        eprintln!("cairn: {line}");
    }
    outcome
}

/// What to do about a damaged or missing object of the repository.
pub const DAMAGE_HINT: &str = "the repository is damaged: `cairn check --read-data` lists \
what is affected, and `cairn repair` keeps the rest restorable";

/// Whether `e` is damage to the repository: an object missing, or one
/// that does not decode or authenticate.
pub fn is_damage(e: &Error) -> bool {
    matches!(e, Error::Missing(_) | Error::Format { .. })
}

/// The error on one line, with what to do next when it is damage the
/// message does not already say how to look into.
fn final_words(e: &anyhow::Error) -> String {
    let line = one_line(e);
    let damaged = e.downcast_ref::<Error>().is_some_and(is_damage);
    match damaged && !line.contains("`cairn ") {
        true => format!("{line}; {DAMAGE_HINT}"),
        false => line,
    }
}

/// The error and its causes on one line.
pub(crate) fn one_line(e: &anyhow::Error) -> String {
    let mut msg = e.to_string();
    for cause in e.chain().skip(1) {
        let c = cause.to_string();
        if !msg.contains(&c) {
            msg.push_str(": ");
            msg.push_str(&c);
        }
    }
    msg.replace('\n', " ")
}

fn exit_code(e: &anyhow::Error) -> u8 {
    match e.downcast_ref::<Error>() {
        Some(Error::RepositoryNotFound(_)) => EXIT_NO_REPOSITORY,
        Some(Error::WrongPassword) => EXIT_WRONG_PASSWORD,
        _ => 1,
    }
}
