//! `cairn mount DIR`: the repository's snapshots as a read-only file
//! system, until Ctrl-C (or SIGTERM, or an unmount from outside).

use super::snapshots::FilterArgs;
use crate::mount::View;
use crate::Context;
use anyhow::{bail, Context as _, Result};
use fuser::MountOption;
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

#[derive(clap::Args)]
pub struct Args {
    /// An existing, empty directory to show the repository in.
    mountpoint: PathBuf,
    /// Let other users read the files too (a user other than root needs
    /// `user_allow_other` in /etc/fuse.conf); permissions still apply.
    #[arg(long)]
    allow_other: bool,
    #[command(flatten)]
    filter: FilterArgs,
}

/// Set by SIGINT, SIGTERM or SIGHUP.
static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn stop(_: libc::c_int) {
    STOP.store(true, Ordering::SeqCst);
}

pub fn run(ctx: &Context, args: Args) -> Result<u8> {
    let dir = &args.mountpoint;
    let mut listing =
        std::fs::read_dir(dir).with_context(|| format!("cannot mount at {}", dir.display()))?;
    if listing.next().is_some() {
        bail!("cannot mount at {}: it is not empty", dir.display());
    }
    let repo = ctx.open()?;
    let snapshots = args.filter.filter()?.apply(repo.snapshots()?);
    let count = snapshots.len();
    // The handler is in place before the file system is: a signal then
    // always ends in an unmount.
    for signal in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
        // SAFETY: the handler only stores to an atomic.
        unsafe {
            libc::signal(signal, stop as *const () as libc::sighandler_t);
        }
    }
    let mut options = vec![
        MountOption::RO,
        MountOption::FSName("cairn".into()),
        MountOption::Subtype("cairn".into()),
        MountOption::DefaultPermissions,
    ];
    if args.allow_other {
        options.push(MountOption::AllowOther);
    }
    let session = fuser::spawn_mount2(View::new(repo, snapshots), dir, &options).map_err(|e| {
        anyhow::anyhow!(
            "cannot mount at {}: {e} (FUSE is needed: the fuse kernel module, /dev/fuse, and for users other than root fusermount3 from the fuse3 package)",
            dir.display()
        )
    })?;
    println!(
        "{} of the repository at {}; Ctrl-C unmounts",
        crate::output::plural(count as u64, "snapshot"),
        dir.display()
    );
    while !STOP.load(Ordering::SeqCst) && !session.guard.is_finished() {
        std::thread::sleep(Duration::from_millis(100));
    }
    // Detached even while something still uses it (a shell in a folder of
    // it): it goes at once, and stops serving when this process ends. Where
    // that is not allowed (a user other than root), dropping the session
    // has fusermount3 do the same.
    if let Ok(path) = std::ffi::CString::new(dir.as_os_str().as_bytes()) {
        // SAFETY: `path` is a valid C string for the call.
        unsafe {
            libc::umount2(path.as_ptr(), libc::MNT_DETACH);
        }
    }
    drop(session);
    println!("unmounted {}", dir.display());
    Ok(0)
}
