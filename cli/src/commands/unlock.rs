use super::prune::describe;
use crate::output::plural;
use crate::Context;
use anyhow::Result;
use cairn_engine::session::{unlock, unlock_session};

#[derive(clap::Args)]
pub struct Args {
    /// Also remove lock records that cannot be read (damaged, or written
    /// with other keys) although they are recent.
    #[arg(long)]
    remove_unreadable: bool,
    /// Remove every record of this one session (a hex prefix of the ID that
    /// `unlock` and prune's messages show), even if it seems to be running:
    /// only for a session you know is gone.
    #[arg(long, value_name = "ID", conflicts_with = "remove_unreadable")]
    session: Option<String>,
}

pub fn run(ctx: &Context, args: Args) -> Result<u8> {
    let repo = ctx.open_keys()?;
    if let Some(prefix) = &args.session {
        let removed = unlock_session(&repo, prefix)?;
        println!("removed {}", describe(&removed));
        return Ok(0);
    }
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
    for u in &done.unreadable_left {
        println!(
            "left unreadable lock record {} (recent; `--remove-unreadable` removes it): {}",
            u.id.short(),
            u.error
        );
    }
    println!(
        "removed {}; {} running left alone",
        plural(done.sessions.len() as u64, "session"),
        done.running.len()
    );
    Ok(0)
}
