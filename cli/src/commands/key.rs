use crate::commands::init::KdfArgs;
use crate::output::{local_time, plural, rfc3339};
use crate::{password, Context};
use anyhow::{Context as _, Result};
use cairn_engine::keys::{self, KeyEntry};
use cairn_format::key::{KdfParams, KDF_ARGON2ID};
use serde_json::{json, Value};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Subcommand)]
enum Command {
    /// List the key files; `*` marks the one the password opened.
    List,
    /// Add a key file, so that another password opens the repository too;
    /// with --machine FILE, one for an unattended job; with --put-only, one
    /// that backs up but reads nothing back.
    Add {
        #[command(flatten)]
        new: NewPassword,
        /// Make a put-only key, for a backup host: `backup` works and
        /// deduplicates with it, but it cannot read any data, file name or
        /// snapshot in the repository, not even what it wrote itself
        /// (SPEC.md §3.6). It cannot add, remove or change keys.
        #[arg(long)]
        put_only: bool,
        /// Make a machine key: a random password written to FILE (created
        /// readable by its owner only), under a key file whose derivation
        /// costs next to nothing, so that a job run often (PostgreSQL's
        /// archive_command, cron) opens the repository at once with
        /// --password-file FILE. Anyone who can read FILE can open the
        /// repository: keep it to the job's user, and revoke it with `key remove`.
        #[arg(long, value_name = "FILE",
              conflicts_with_all = ["new_password_file", "kdf_memory_kib", "kdf_iterations"])]
        machine: Option<PathBuf>,
    },
    /// Remove a key file (not the one in use, nor the last one).
    Remove {
        /// The key: full ID or unique prefix.
        #[arg(value_name = "ID")]
        id: String,
    },
    /// Change the password: add a key file for the new password, then remove
    /// the one in use. No other file changes.
    Passwd(NewPassword),
    /// Start a new key epoch (SPEC.md §3.7): what is written from now on is
    /// sealed under new secrets, and the key in use is replaced by one that
    /// holds every epoch, under the same password. Every other key file
    /// stops opening the repository: add new ones with `key add`. Older
    /// objects stay sealed as they were until `key rewrite` (or --rewrite).
    Rotate {
        /// Then re-seal everything under the new secrets, as `key rewrite` does.
        #[arg(long)]
        rewrite: bool,
    },
    /// Re-seal everything sealed in an older key epoch under the newest,
    /// then replace the key in use by one that holds the newest epoch alone:
    /// afterwards the retired secrets open nothing in the repository. Packs
    /// are rewritten whole (a prune), snapshots get new IDs, WAL files are
    /// replaced in place. Safe to interrupt and run again; refused while
    /// another command works on the repository.
    Rewrite,
}

#[derive(clap::Args)]
struct NewPassword {
    /// Read the new password from this file (one trailing newline is
    /// ignored); without it, the new password is asked twice on the terminal.
    #[arg(long, value_name = "FILE")]
    new_password_file: Option<String>,
    #[command(flatten)]
    kdf: KdfArgs,
}

impl NewPassword {
    /// The new password, from the file or the terminal.
    fn get(&self) -> Result<Vec<u8>> {
        match &self.new_password_file {
            Some(path) => password::from_file(path),
            None => password::prompt(
                "new password",
                true,
                "no new password given: use --new-password-file FILE, or run on a terminal",
            ),
        }
    }
}

pub fn run(ctx: &Context, args: Args) -> Result<u8> {
    if ctx.json && !matches!(args.command, Command::List) {
        anyhow::bail!("`cairn key` has JSON output only in `key list`: leave out --json");
    }
    match args.command {
        Command::List => list(ctx)?,
        Command::Add {
            new,
            put_only,
            machine: None,
        } => {
            let repo = ctx.open_keys()?;
            let password = new.get()?;
            let id = add_key(&repo, &password, new.kdf.params(), put_only)?;
            let what = format!("{}key {}", role_prefix(put_only), id.short());
            crate::audit(&repo, "key add", &[], &format!("ok, {what}"));
            println!("added {what}");
        }
        Command::Add {
            machine: Some(file),
            put_only,
            ..
        } => add_machine_key(ctx, &file, put_only)?,
        Command::Remove { id } => {
            let repo = ctx.open_keys()?;
            let id = keys::find(&repo, &id)?;
            keys::remove(&repo, &id)?;
            crate::audit(&repo, "key remove", &[], &format!("ok, key {}", id.short()));
            println!("removed key {}", id.short());
        }
        Command::Passwd(new) => {
            let mut repo = ctx.open_keys()?;
            let password = new.get()?;
            let id = keys::change_password(&mut repo, &password, new.kdf.params())?;
            crate::audit(&repo, "key passwd", &[], &format!("ok, key {}", id.short()));
            println!("password changed: the key in use is now {}", id.short());
        }
        Command::Rotate { rewrite } => {
            let (mut repo, password) = ctx.open_keys_with_password()?;
            rotate(&mut repo, &password)?;
            if rewrite {
                self::rewrite(&mut repo, &password)?;
            }
        }
        Command::Rewrite => {
            let (mut repo, password) = ctx.open_keys_with_password()?;
            self::rewrite(&mut repo, &password)?;
        }
    }
    Ok(0)
}

/// Starts a new key epoch and says what it means for the other keys.
fn rotate(repo: &mut cairn_engine::Repository, password: &[u8]) -> Result<()> {
    let r = cairn_engine::rotate::rotate(repo, password)?;
    let outcome = format!("ok, epoch {}, key {}", r.epoch, r.key.short());
    crate::audit(repo, "key rotate", &[], &outcome);
    println!(
        "rotated to key epoch {}: new objects are sealed under new secrets; the key in use is now {}",
        r.epoch,
        r.key.short()
    );
    if !r.stale_keys.is_empty() {
        let ids: Vec<String> = r.stale_keys.iter().map(|k| k.short()).collect();
        println!(
            "{} no longer open the repository ({}): remove them with `cairn key remove ID` \
             and add new ones with `cairn key add`",
            plural(ids.len() as u64, "other key"),
            ids.join(", ")
        );
    }
    Ok(())
}

/// Re-seals what older epochs sealed and reports it.
fn rewrite(repo: &mut cairn_engine::Repository, password: &[u8]) -> Result<()> {
    let r = cairn_engine::rotate::rewrite(repo, password)?;
    let new_ids: Vec<cairn_format::SnapshotId> = r.snapshots.iter().map(|(_, new)| *new).collect();
    println!(
        "re-sealed {} ({}), {}, {}, {}, {}",
        plural(r.prune.packs_repacked, "pack"),
        crate::output::size(r.prune.bytes_copied),
        plural(r.snapshots.len() as u64, "snapshot"),
        plural(r.journal as u64, "journal entry"),
        plural(r.audit as u64, "audit record"),
        plural(r.wal as u64, "WAL file")
    );
    for (old, new) in &r.snapshots {
        println!("snapshot {} is now {}", old.short(), new.short());
    }
    let key = r.key.map(|k| k.short()).unwrap_or_default();
    if r.prune.packs_retained > 0 {
        println!(
            "{} kept from deletion by storage until a later date cannot be re-sealed before then",
            plural(r.prune.packs_retained, "pack")
        );
    }
    if !r.remaining.is_empty() {
        crate::audit(repo, "key rewrite", &new_ids, "incomplete");
        anyhow::bail!(
            "{} still sealed in a retired epoch (first: {}); the key in use ({key}) keeps every \
             epoch: run `cairn key rewrite` again",
            plural(r.remaining.len() as u64, "object"),
            r.remaining[0]
        );
    }
    crate::audit(repo, "key rewrite", &new_ids, "ok");
    println!("nothing is sealed in a retired epoch any more; the key in use ({key}) holds the newest alone");
    if !r.other_keys.is_empty() {
        let ids: Vec<String> = r.other_keys.iter().map(|k| k.short()).collect();
        println!(
            "other key files ({}): those made before the rotation open nothing, and those \
             added since still hold the retired secrets; replace them (`cairn key add`, \
             then `cairn key remove ID`)",
            ids.join(", ")
        );
    }
    Ok(())
}

/// The key derivation of a machine key: the least Argon2id allows, as its
/// password is 256 random bits that no guessing can reach (SPEC.md §3.5).
fn machine_kdf() -> KdfParams {
    KdfParams::argon2id(8, 1, 1)
}

/// Adds a key file for `password`, put-only or full.
fn add_key(
    repo: &cairn_engine::Repository,
    password: &[u8],
    kdf: KdfParams,
    put_only: bool,
) -> cairn_engine::Result<cairn_format::KeyId> {
    match put_only {
        true => keys::add_put_only(repo, password, kdf),
        false => keys::add(repo, password, kdf),
    }
}

fn role_prefix(put_only: bool) -> &'static str {
    if put_only {
        "put-only "
    } else {
        ""
    }
}

/// Writes a random password to `file` (which must not exist), then adds a
/// key file for it; the file is removed again if the key cannot be added.
fn add_machine_key(ctx: &Context, file: &Path, put_only: bool) -> Result<()> {
    let repo = ctx.open_keys()?;
    let password = hex::encode(cairn_format::crypto::random_array::<32>());
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(file)
        .and_then(|mut f| writeln!(f, "{password}").and_then(|_| f.sync_all()))
        .with_context(|| format!("cannot create the machine key file {}", file.display()))?;
    let id = match add_key(&repo, password.as_bytes(), machine_kdf(), put_only) {
        Ok(id) => id,
        Err(e) => {
            let _ = std::fs::remove_file(file);
            return Err(e.into());
        }
    };
    // Tried first from now on: its derivation costs microseconds, so the
    // password's key, tried next, loses nothing, and the job that uses the
    // machine key does not first pay for the password's.
    crate::remembered::remember_key(&repo.backend().location(), &id);
    crate::audit(
        &repo,
        "key add",
        &[],
        &format!("ok, {}machine key {}", role_prefix(put_only), id.short()),
    );
    println!(
        "added {}machine key {}, its password in {}",
        role_prefix(put_only),
        id.short(),
        file.display()
    );
    eprintln!(
        "warning: anyone who can read {} can open the repository: keep it readable by \
         the job's user only, and revoke it with `cairn key remove {}`",
        file.display(),
        id.short()
    );
    Ok(())
}

fn list(ctx: &Context) -> Result<()> {
    let repo = ctx.open_keys()?;
    let entries = keys::list(&repo)?;
    if ctx.json {
        let list: Vec<Value> = entries.iter().map(key_json).collect();
        println!("{}", serde_json::to_string_pretty(&list)?);
        return Ok(());
    }
    println!(
        "   {:<8}  {:<8}  {:<19}  {:<16}  {:<12}  KDF",
        "ID", "role", "created", "host", "user"
    );
    for e in &entries {
        let (created, host, user) = match &e.info {
            Some(i) => (
                local_time(i.created),
                i.hostname.as_str(),
                i.username.as_str(),
            ),
            None => ("?".into(), "?", "?"),
        };
        let (role, kdf) = match &e.kdf {
            Ok((k, role)) => (role.name(), kdf_text(k)),
            Err(err) => ("?", format!("unreadable: {err}")),
        };
        println!(
            "{}  {:<8}  {:<8}  {:<19}  {:<16}  {:<12}  {kdf}",
            if e.current { '*' } else { ' ' },
            e.id.short(),
            role,
            created,
            host,
            user,
        );
    }
    println!("{}", plural(entries.len() as u64, "key"));
    if entries.iter().any(|e| e.info.is_none()) {
        println!("(?: who made a key and when is sealed under its own password)");
    }
    Ok(())
}

/// The KDF and its costs: memory (m), passes (t) and lanes (p).
fn kdf_text(k: &KdfParams) -> String {
    let name = match k.algorithm {
        KDF_ARGON2ID => "argon2id".to_string(),
        n => format!("KDF {n}"),
    };
    format!(
        "{name} m={} KiB t={} p={}",
        k.memory_kib, k.iterations, k.parallelism
    )
}

fn key_json(e: &KeyEntry) -> Value {
    let kdf = e.kdf.as_ref().ok().map(|(k, _)| {
        json!({"algorithm": k.algorithm, "memory_kib": k.memory_kib,
               "iterations": k.iterations, "parallelism": k.parallelism})
    });
    json!({
        "id": e.id, "short_id": e.id.short(), "current": e.current,
        "role": e.kdf.as_ref().ok().map(|(_, role)| role.name()),
        "created": e.info.as_ref().map(|i| rfc3339(i.created)),
        "hostname": e.info.as_ref().map(|i| &i.hostname),
        "username": e.info.as_ref().map(|i| &i.username),
        "kdf": kdf, "error": e.kdf.as_ref().err().map(|err| err.to_string()),
    })
}
