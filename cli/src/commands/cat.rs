use crate::Context;
use anyhow::{bail, Result};
use cairn_format::BlobId;

#[derive(clap::Args)]
pub struct Args {
    /// `config`, `snapshot`, or `tree`.
    what: String,
    /// Snapshot (ID, prefix or `latest`) or tree ID.
    id: Option<String>,
}

pub fn run(ctx: &Context, args: Args) -> Result<u8> {
    let json = match (args.what.as_str(), args.id.as_deref()) {
        ("config", None) => serde_json::to_string_pretty(ctx.open()?.config())?,
        ("snapshot", Some(id)) => serde_json::to_string_pretty(&ctx.open()?.find_snapshot(id)?.1)?,
        ("tree", Some(id)) => {
            let Some(tree) = BlobId::from_hex(id) else {
                bail!("invalid tree ID {id:?}: give all 64 hex digits")
            };
            serde_json::to_string_pretty(&ctx.open()?.load_tree(&tree)?)?
        }
        ("config", Some(_)) => bail!("`cat config` takes no ID"),
        ("snapshot" | "tree", None) => bail!("`cat {}` needs an ID", args.what),
        (other, _) => bail!("cannot cat {other:?}: choose config, snapshot or tree"),
    };
    println!("{json}");
    Ok(0)
}
