//! Runs one repository operation on storage that kills this process with
//! SIGKILL at a chosen call, for the crash tests (tests/tests/crash.rs).
//!
//! `crash_child OPERATION REPO SRC KILL` where OPERATION is `backup` (of SRC),
//! `prune` (forget the oldest snapshot, then prune), `passwd` (change the
//! password to `new password`) or `rotate` (rotate the keys and rewrite
//! everything), and KILL is `none` or `create|remove|replace:N:before|after`.
//! Without a kill it prints the calls made: `creates N removes M replaces R`.

use cairn_engine::backend::LocalBackend;
use cairn_engine::backup::{backup, BackupOptions};
use cairn_engine::prune::{prune, PruneOptions};
use cairn_engine::{keys, rotate, Repository};
use cairn_format::key::KdfParams;
use cairn_tests::faults::{Call, Fault, Faulty, Op};
use cairn_tests::PASSWORD;
use std::io::Write;
use std::path::PathBuf;

/// The password `passwd` sets.
const NEW_PASSWORD: &[u8] = b"new password";

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let [_, operation, repo, src, kill] = args.as_slice() else {
        eprintln!(
            "usage: crash_child backup|prune|passwd|rotate REPO SRC none|create|remove|replace:N:before|after"
        );
        std::process::exit(2);
    };
    let plan = parse_kill(kill);
    let backend = Faulty::new(
        LocalBackend::new(repo),
        Box::new(move |call: &Call<'_>| plan(call)),
    );
    let counted = std::sync::Arc::new(backend);
    let result = run(operation, counted.clone(), PathBuf::from(src));
    // Writes to the standard streams may fail too when the tests inject
    // errors into every `write`: they are ignored rather than panicking.
    if let Err(e) = result {
        let _ = writeln!(std::io::stderr(), "crash_child: {e}");
        std::process::exit(1);
    }
    let _ = writeln!(
        std::io::stdout(),
        "creates {} removes {} replaces {}",
        counted.calls(Op::Create),
        counted.calls(Op::Remove),
        counted.calls(Op::Replace)
    );
}

fn run(
    operation: &str,
    backend: std::sync::Arc<Faulty<LocalBackend>>,
    src: PathBuf,
) -> cairn_engine::Result<()> {
    let shared = backend;
    match operation {
        "backup" => {
            let mut repo = Repository::open_keys(shared, PASSWORD.as_bytes())?;
            backup(&mut repo, &[src], &BackupOptions::default()).map(drop)
        }
        "prune" => {
            let mut repo = Repository::open(shared, PASSWORD.as_bytes())?;
            let oldest = repo.snapshots()?[0].0;
            repo.remove_snapshot(&oldest)?;
            prune(&mut repo, &PruneOptions::default()).map(drop)
        }
        "passwd" => {
            let mut repo = Repository::open(shared, PASSWORD.as_bytes())?;
            keys::change_password(&mut repo, NEW_PASSWORD, KdfParams::argon2id(64, 1, 1)).map(drop)
        }
        "rotate" => {
            let mut repo = Repository::open_keys(shared, PASSWORD.as_bytes())?;
            rotate::rotate(&mut repo, PASSWORD.as_bytes())?;
            rotate::rewrite(&mut repo, PASSWORD.as_bytes()).map(drop)
        }
        other => Err(cairn_engine::Error::Invalid(format!(
            "unknown operation {other}"
        ))),
    }
}

/// `none`, or `create:N:before` and the like.
fn parse_kill(spec: &str) -> impl Fn(&Call<'_>) -> Fault + Send + Sync + 'static {
    let parsed = match spec {
        "none" => None,
        _ => {
            let parts: Vec<&str> = spec.split(':').collect();
            let op = match parts[0] {
                "create" => Op::Create,
                "remove" => Op::Remove,
                "replace" => Op::Replace,
                other => panic!("unknown call {other}"),
            };
            let n: u64 = parts[1].parse().expect("a call number");
            let fault = match parts[2] {
                "before" => Fault::KillBefore,
                "after" => Fault::KillAfter,
                other => panic!("unknown moment {other}"),
            };
            Some((op, n, fault))
        }
    };
    move |call: &Call<'_>| match parsed {
        Some((op, n, fault)) if call.op == op && call.n == n => fault,
        _ => Fault::Pass,
    }
}
