use crate::output::{parse_time, plural};
use crate::Context;
use anyhow::Result;
use cairn_engine::tag::{change_tags, TagChange};

#[derive(clap::Args)]
#[command(group = clap::ArgGroup::new("change").required(true).multiple(true))]
pub struct Args {
    /// Add this tag (comma-separated list allowed; may be repeated).
    #[arg(long, value_name = "TAG", value_delimiter = ',', group = "change")]
    add: Vec<String>,
    /// Remove this tag (comma-separated list allowed; may be repeated).
    #[arg(long, value_name = "TAG", value_delimiter = ',', group = "change")]
    remove: Vec<String>,
    /// Replace all tags with these (comma-separated list allowed; may be
    /// repeated); `--set ''` removes every tag.
    #[arg(
        long,
        value_name = "TAG",
        value_delimiter = ',',
        group = "change",
        conflicts_with_all = ["add", "remove"]
    )]
    set: Option<Vec<String>>,
    /// Hold the snapshots until this time: `forget` and `run` do not remove
    /// them before it, on any host. Replaces an earlier hold; a hold that
    /// lasts cannot be shortened or removed.
    #[arg(long, value_name = "TIME", group = "change")]
    hold_until: Option<String>,
    /// Snapshots to change: ID, unique prefix, or `latest`.
    #[arg(required = true, value_name = "SNAPSHOT")]
    snapshots: Vec<String>,
}

pub fn run(ctx: &Context, args: Args) -> Result<u8> {
    let words =
        |list: Vec<String>| -> Vec<String> { list.into_iter().filter(|t| !t.is_empty()).collect() };
    let change = TagChange {
        add: words(args.add),
        remove: words(args.remove),
        set: args.set.map(words),
        hold_until: args.hold_until.as_deref().map(parse_time).transpose()?,
    };
    change.validate()?;
    let repo = ctx.open()?;
    let mut ids = Vec::new();
    for name in &args.snapshots {
        ids.push(repo.find_snapshot(name)?.0);
    }
    let changed = change_tags(&repo, &ids, &change)?;
    let involved: Vec<_> = changed.iter().flat_map(|(old, new)| [*old, *new]).collect();
    crate::audit(&repo, "tag", &involved, "ok");
    for (old, new) in &changed {
        println!("snapshot {} saved as {}", old.short(), new.short());
    }
    ids.sort();
    ids.dedup();
    println!(
        "{} changed, {} unchanged",
        plural(changed.len() as u64, "snapshot"),
        ids.len() - changed.len()
    );
    Ok(0)
}
