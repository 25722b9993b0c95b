use super::prune::describe;
use crate::Context;
use anyhow::Result;
use cairn_engine::session::unlock;

#[derive(clap::Args)]
pub struct Args {
    /// Also remove lock records that cannot be read (damaged, or written
    /// with other keys).
    #[arg(long)]
    remove_unreadable: bool,
}

pub fn run(ctx: &Context, args: Args) -> Result<u8> {
    let repo = ctx.open_keys()?;
    let done = unlock(&repo, args.remove_unreadable)?;
    for s in &done.sessions {
        println!("removed {}", describe(s));
    }
    for u in &done.unreadable {
        println!(
            "removed unreadable lock record {}: {}",
            u.id.short(),
            u.error
        );
    }
    for s in &done.running {
        println!("left {}", describe(s));
    }
    println!(
        "{} sessions removed, {} running left alone",
        done.sessions.len(),
        done.running.len()
    );
    Ok(0)
}
