use super::copy::FromPassword;
use crate::Context;
use anyhow::Result;
use cairn_engine::backend::Backend;
use cairn_engine::{Error, InitOptions, Repository};
use cairn_format::config::{ChunkerParams, CHUNKER_BUZHASH_AES};
use cairn_format::crypto::Padding;
use cairn_format::key::KdfParams;

#[derive(clap::Args)]
pub struct Args {
    /// zstd compression level (1-22), or `off`.
    #[arg(long, default_value = "3")]
    compression: String,
    /// Target pack size in MiB.
    #[arg(long, default_value_t = 16)]
    pack_size_mib: u64,
    /// Average chunk size in KiB, a power of two from 1 to 4096 (chunks
    /// range from a quarter of it to four times it).
    #[arg(long, default_value_t = 1024)]
    chunk_size_kib: u32,
    /// How chunk boundaries are found: `fastcdc` (fastest), or
    /// `buzhash-aes`, which hides more from whoever sees the stored sizes
    /// (each candidate boundary decided by AES; see SPEC.md §7.4 and the
    /// measured cost in benches/RESULTS.md).
    #[arg(
        long,
        value_enum,
        default_value = "fastcdc",
        conflicts_with = "copy_chunker_params_from"
    )]
    chunker: ChunkerChoice,
    /// What is padded (Padmé, at most 12% larger) so that stored sizes say
    /// less: `metadata` (pack headers, indexes, snapshots: counts of blobs
    /// and names), `all` (blobs too, about 1-3% more storage), or `none`.
    #[arg(long, value_enum, default_value = "metadata")]
    padding: PaddingChoice,
    /// Chunk files as the repository at this location does (its chunk sizes
    /// and secret), so that snapshots copied between the two deduplicate
    /// against backups made into either.
    #[arg(long, value_name = "LOCATION")]
    copy_chunker_params_from: Option<String>,
    /// Keep each backup's files from deletion for DAYS days, enforced by the
    /// storage (S3 Object Lock, in compliance mode: no credentials can
    /// shorten it), and hold each snapshot as long. Needs an S3 bucket made
    /// with Object Lock; a bucket that does not exist yet is made with it.
    /// `backup --retain-days` sets another length for one backup.
    #[arg(long, value_name = "DAYS")]
    retain_days: Option<u32>,
    #[command(flatten)]
    from: FromPassword,
    #[command(flatten)]
    kdf: KdfArgs,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum ChunkerChoice {
    Fastcdc,
    BuzhashAes,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum PaddingChoice {
    None,
    Metadata,
    All,
}

/// How hard the password is hashed, for a new key file.
#[derive(clap::Args)]
pub struct KdfArgs {
    /// Argon2id memory cost in KiB for the password (default 64 MiB).
    #[arg(long, default_value_t = 64 * 1024)]
    kdf_memory_kib: u32,
    /// Argon2id passes for the password.
    #[arg(long, default_value_t = 3)]
    kdf_iterations: u32,
}

impl KdfArgs {
    /// Argon2id with these costs, one lane and a fresh salt.
    pub fn params(&self) -> KdfParams {
        KdfParams::argon2id(self.kdf_memory_kib, self.kdf_iterations, 1)
    }
}

pub fn run(ctx: &Context, args: Args) -> Result<u8> {
    let backend = ctx.backend()?;
    if let Some(days) = args.retain_days {
        // First: it may make the bucket, with Object Lock.
        cairn_engine::repository::check_retain_days(days)?;
        backend.retain_for(days)?;
    }
    if backend.exists()? {
        return Err(Error::RepositoryExists(backend.location()).into());
    }
    let compression_level = match args.compression.as_str() {
        "off" | "none" => None,
        n => Some(n.parse::<i32>().map_err(|_| {
            anyhow::anyhow!("invalid --compression {n:?}: give a zstd level 1-22 or `off`")
        })?),
    };
    let mut chunker = ChunkerParams::fastcdc(args.chunk_size_kib.saturating_mul(1024));
    if let ChunkerChoice::BuzhashAes = args.chunker {
        chunker.algorithm = CHUNKER_BUZHASH_AES;
    }
    let mut opts = InitOptions {
        kdf: args.kdf.params(),
        chunker: Some(chunker),
        compression_level,
        pack_size: Some(args.pack_size_mib * 1024 * 1024),
        chunker_secret: None,
        padding: Some(match args.padding {
            PaddingChoice::None => Padding::None,
            PaddingChoice::Metadata => Padding::Metadata,
            PaddingChoice::All => Padding::All,
        }),
        retain_days: args.retain_days,
    };
    if let Some(from) = args.copy_chunker_params_from {
        let source = args.from.context(ctx, Some(from))?.open_keys()?;
        opts = opts.chunking_like(&source);
    }
    let password = ctx.password.get(true)?;
    let location = backend.location();
    let repo = Repository::init(backend, &password, &opts)?;
    if let Some(key) = repo.key_id() {
        crate::remembered::remember_key(&location, &key);
    }
    crate::audit(&repo, "init", &[], "ok");
    println!(
        "created repository {} at {location}",
        repo.config().repo_id.short()
    );
    println!("keep the password safe: the data cannot be recovered without it");
    Ok(0)
}
