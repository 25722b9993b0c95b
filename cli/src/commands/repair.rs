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
            let repo = ctx.open_keys()?;
            let r = repair_index(&repo, read_data, dry_run)?;
            for e in r.unreadable_packs.iter().chain(&r.damaged_blobs) {
                eprintln!("left out: {e}");
            }
            let verb = if dry_run { "would list" } else { "listed" };
            println!(
                "{verb} {} blobs of {} packs; left out {} unreadable packs and {} damaged blobs",
                r.blobs,
                r.packs,
                r.unreadable_packs.len(),
                r.damaged_blobs.len()
            );
            if !dry_run {
                println!(
                    "wrote {} index files, removed {} old ones",
                    r.written, r.removed
                );
            }
        }
        What::Snapshots { dry_run } => {
            let mut repo = ctx.open_keys()?;
            let repaired = repair_snapshots(&mut repo, dry_run)?;
            for r in &repaired {
                match r.new {
                    Some(new) => println!("snapshot {} saved as {}:", r.old.short(), new.short()),
                    None => println!("snapshot {} would be rewritten:", r.old.short()),
                }
                for (path, cause) in &r.removed {
                    println!("  left out /{path}: {cause}");
                }
                if r.unlisted > 0 {
                    println!("  left out {} more paths, too many to list", r.unlisted);
                }
            }
            println!(
                "{} snapshots {}",
                repaired.len(),
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
