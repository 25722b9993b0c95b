use crate::output::plural;
use crate::Context;
use anyhow::Result;
use cairn_engine::repair::{repair_index, repair_snapshots};

#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    what: What,
}

#[derive(clap::Subcommand)]
enum What {
    /// Rebuild the index from the pack headers (works when the index cannot be read).
    Index {
        /// Read every pack whole and leave out blobs that do not authenticate.
        #[arg(long)]
        read_data: bool,
        /// Only print what would be indexed and left out.
        #[arg(long)]
        dry_run: bool,
    },
    /// Rewrite snapshots that use lost data, leaving out (and listing) what is lost.
    Snapshots {
        /// Only print what would be left out.
        #[arg(long)]
        dry_run: bool,
    },
}

pub fn run(ctx: &Context, args: Args) -> Result<u8> {
    match args.what {
        What::Index { read_data, dry_run } => {
            let repo = ctx.open_keys_uncached()?;
            let r = repair_index(&repo, read_data, dry_run)?;
            if !dry_run {
                crate::audit(&repo, "repair index", &[], "ok");
            }
            for e in r.unreadable_packs.iter().chain(&r.damaged_blobs) {
                eprintln!("left out: {e}");
            }
            let verb = if dry_run { "would list" } else { "listed" };
            println!(
                "{verb} {} of {}; left out {} and {}",
                plural(r.blobs, "blob"),
                plural(r.packs, "pack"),
                plural(r.unreadable_packs.len() as u64, "unreadable pack"),
                plural(r.damaged_blobs.len() as u64, "damaged blob")
            );
            if !dry_run {
                println!(
                    "wrote {}, removed {}",
                    plural(r.written, "index file"),
                    plural(r.removed, "old one")
                );
            }
        }
        What::Snapshots { dry_run } => {
            let mut repo = ctx.open_keys_uncached()?;
            let repaired = repair_snapshots(&mut repo, dry_run)?;
            if !dry_run {
                let involved: Vec<_> = repaired
                    .iter()
                    .flat_map(|r| std::iter::once(r.old).chain(r.new))
                    .collect();
                crate::audit(&repo, "repair snapshots", &involved, "ok");
            }
            for r in &repaired {
                match r.new {
                    Some(new) => println!("snapshot {} saved as {}:", r.old.short(), new.short()),
                    None => println!("snapshot {} would be rewritten:", r.old.short()),
                }
                for (path, cause) in &r.removed {
                    println!("  left out /{path}: {cause}");
                }
                if r.unlisted > 0 {
                    println!(
                        "  left out {} more, too many to list",
                        plural(r.unlisted, "path")
                    );
                }
            }
            println!(
                "{} {}",
                plural(repaired.len() as u64, "snapshot"),
                if dry_run {
                    "would be repaired"
                } else {
                    "repaired"
                }
            );
        }
    }
    Ok(0)
}
