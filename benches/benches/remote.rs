//! Backup and restore to a real S3 server (SeaweedFS on loopback), through a
//! proxy that adds a fixed latency to every request, for cairn and its peers
//! in one run: how much throughput each keeps at 50 ms, and how they compare.
//!
//! Run with `benches/remote.sh` (it builds cairn, installs SeaweedFS and
//! keeps the server's data and the restores in memory), or
//! `cargo bench -p cairn-benches --bench remote -- [--quick] [TREE]` with
//! `CAIRN_TEST_WEED` and `CAIRN_BIN` set. Peers (restic, rustic) that are not
//! installed are skipped with a note. Prints a Markdown table of the median
//! of three runs of each step.

use cairn_tests::proxy::{FaultProxy, ProxyPlan};
use cairn_tests::s3::{S3Server, ACCESS_KEY, BUCKET, SECRET_KEY};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

const PASSWORD: &str = "benchmark password";
/// The latencies compared, per request, in milliseconds.
const LATENCIES: [u64; 2] = [0, 50];
/// Runs of each step; the median is reported (these machines are noisy).
const RUNS: usize = 3;

/// One tool's commands against a repository at an S3 endpoint.
struct Tool {
    name: &'static str,
    program: PathBuf,
}

impl Tool {
    /// The command for `args` on the repository `prefix` at `endpoint`,
    /// with its cache in `cache`.
    fn command(&self, endpoint: &str, prefix: &str, cache: &Path, args: &[&str]) -> Command {
        let mut cmd = Command::new(&self.program);
        cmd.env("AWS_ACCESS_KEY_ID", ACCESS_KEY)
            .env("AWS_SECRET_ACCESS_KEY", SECRET_KEY);
        let location = format!("s3:{endpoint}/{BUCKET}/{prefix}");
        match self.name {
            "cairn" => {
                cmd.env("CAIRN_PASSWORD", PASSWORD)
                    .env("CAIRN_CACHE_DIR", cache)
                    .args(["--no-progress", "-r", &location]);
            }
            "restic" => {
                cmd.env("RESTIC_PASSWORD", PASSWORD)
                    .args(["-q", "--cache-dir"])
                    .arg(cache)
                    .args(["-r", &location]);
            }
            _ => {
                // Backend options come from RUSTIC_REPO_OPT_<NAME> variables.
                let options = [
                    ("ENDPOINT", endpoint.to_string()),
                    ("BUCKET", BUCKET.to_string()),
                    ("ROOT", format!("/{prefix}")),
                    ("REGION", "us-east-1".to_string()),
                    ("ACCESS_KEY_ID", ACCESS_KEY.to_string()),
                    ("SECRET_ACCESS_KEY", SECRET_KEY.to_string()),
                ];
                for (name, value) in options {
                    cmd.env(format!("RUSTIC_REPO_OPT_{name}"), value);
                }
                cmd.env("RUSTIC_PASSWORD", PASSWORD)
                    .args(["--no-progress", "--cache-dir"])
                    .arg(cache)
                    .args(["-r", "opendal:s3"]);
            }
        }
        cmd.args(args);
        cmd
    }

    fn init_args(&self) -> Vec<&'static str> {
        match self.name {
            "restic" => vec!["init", "--repository-version", "2"],
            _ => vec!["init"],
        }
    }

    fn restore_args(&self, target: &str) -> Vec<String> {
        let mut args = vec!["restore".to_string(), "latest".to_string()];
        if self.name != "rustic" {
            args.push("--target".into());
        }
        args.push(target.into());
        args
    }
}

/// What one run took: wall time and peak resident memory in MiB.
#[derive(Clone, Copy)]
struct Cost {
    time: Duration,
    rss_mib: f64,
}

/// Runs `cmd` to success under `/usr/bin/time`; what it took.
fn timed(cmd: Command, what: &str) -> Cost {
    let report = tempfile::NamedTempFile::new().unwrap();
    let mut timed = Command::new("/usr/bin/time");
    timed.arg("-o").arg(report.path()).args(["-f", "%M"]);
    timed.arg(cmd.get_program()).args(cmd.get_args());
    for (k, v) in cmd.get_envs() {
        if let Some(v) = v {
            timed.env(k, v);
        }
    }
    let started = Instant::now();
    let out = timed.output().unwrap_or_else(|e| panic!("{what}: {e}"));
    let time = started.elapsed();
    assert!(
        out.status.success(),
        "{what} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let kib: f64 = std::fs::read_to_string(report.path())
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    Cost {
        time,
        rss_mib: kib / 1024.0,
    }
}

/// One run of `tool` through `proxy`: a first backup of `tree` into a new
/// repository, then a restore of it (into `work`, removed after); their costs.
fn measure(
    tool: &Tool,
    proxy: &FaultProxy,
    tree: &Path,
    work: &Path,
    latency: u64,
    n: usize,
) -> (Cost, Cost) {
    let endpoint = proxy.endpoint();
    let prefix = format!("{}-{latency}-{n}", tool.name);
    let cache = work.join(format!("cache-{prefix}"));
    let run = |args: &[&str]| tool.command(&endpoint, &prefix, &cache, args);
    timed(run(&tool.init_args()), &format!("{prefix} init"));
    let before = proxy.requests();
    let backup = timed(
        run(&["backup", tree.to_str().unwrap()]),
        &format!("{prefix} backup"),
    );
    let backup_requests = proxy.requests() - before;
    let target = work.join(format!("restore-{prefix}"));
    let restore_args = tool.restore_args(target.to_str().unwrap());
    let restore_args: Vec<&str> = restore_args.iter().map(String::as_str).collect();
    let before = proxy.requests();
    let restore = timed(run(&restore_args), &format!("{prefix} restore"));
    let restore_requests = proxy.requests() - before;
    std::fs::remove_dir_all(&target).unwrap();
    let _ = std::fs::remove_dir_all(&cache);
    eprintln!(
        "{prefix}: backup {:.2} s, {:.0} MiB, {backup_requests} requests; \
         restore {:.2} s, {:.0} MiB, {restore_requests} requests",
        backup.time.as_secs_f64(),
        backup.rss_mib,
        restore.time.as_secs_f64(),
        restore.rss_mib
    );
    (backup, restore)
}

/// The run of median time (its memory is that run's).
fn median(mut runs: Vec<Cost>) -> Cost {
    runs.sort_by_key(|c| c.time);
    runs[runs.len() / 2]
}

fn installed(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// Reads every regular file under `dir` (so that no tool pays alone for
/// reading it from disk); their total size.
fn read_tree(dir: &Path) -> u64 {
    let mut total = 0;
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let meta = entry.metadata().unwrap();
        if meta.is_dir() {
            total += read_tree(&entry.path());
        } else if meta.is_file() {
            let mut file = std::fs::File::open(entry.path()).unwrap();
            total += std::io::copy(&mut file, &mut std::io::sink()).unwrap();
        }
    }
    total
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    let quick = args.iter().any(|a| a == "--quick");
    let sysroot = || {
        let out = Command::new("rustc").args(["--print", "sysroot"]).output();
        PathBuf::from(String::from_utf8(out.unwrap().stdout).unwrap().trim())
    };
    let tree = match args.iter().find(|a| !a.starts_with("--")) {
        Some(t) => PathBuf::from(t),
        None if quick => sysroot().join("share/doc/rust/html/alloc"),
        None => sysroot(),
    };
    let cairn = std::env::var_os("CAIRN_BIN").expect("set CAIRN_BIN to a release cairn");
    let mut tools = vec![Tool {
        name: "cairn",
        program: PathBuf::from(cairn),
    }];
    for name in ["restic", "rustic"] {
        match installed(name) {
            Some(program) => tools.push(Tool { name, program }),
            None => eprintln!("!!! {name} is not installed: SKIPPED"),
        }
    }
    let mib = read_tree(&tree) as f64 / (1 << 20) as f64;
    eprintln!("tree {} ({mib:.0} MiB)", tree.display());

    // In $TMPDIR, as the server's data is: remote.sh puts both in memory,
    // so that the disk's noise does not hide what the network costs.
    let work = tempfile::tempdir().unwrap();
    // Backup and restore times of each (tool, latency), one per run.
    let mut costs: Vec<(&str, u64, Vec<Cost>, Vec<Cost>)> = Vec::new();
    // Runs go round the tools and latencies, each on a new server: runs late
    // in a sequence were up to a second slower, which would favour whichever
    // tool ran first.
    for n in 0..RUNS {
        for latency in LATENCIES {
            for tool in &tools {
                let server = S3Server::start();
                let proxy = FaultProxy::start(
                    server.endpoint(),
                    ProxyPlan {
                        latency: Duration::from_millis(latency),
                        ..ProxyPlan::default()
                    },
                );
                let (backup, restore) = measure(tool, &proxy, &tree, work.path(), latency, n);
                let at = costs
                    .iter()
                    .position(|c| c.0 == tool.name && c.1 == latency);
                let at = at.unwrap_or_else(|| {
                    costs.push((tool.name, latency, Vec::new(), Vec::new()));
                    costs.len() - 1
                });
                costs[at].2.push(backup);
                costs[at].3.push(restore);
            }
        }
    }
    let rows: Vec<_> = costs
        .into_iter()
        .map(|(tool, latency, backups, restores)| {
            (tool, latency, median(backups), median(restores))
        })
        .collect();

    let cost = |tool: &str, latency: u64, restore: bool| {
        rows.iter()
            .find(|r| r.0 == tool && r.1 == latency)
            .map(|r| if restore { r.3 } else { r.2 })
    };
    let secs = |tool: &str, latency: u64, restore: bool| {
        cost(tool, latency, restore).map(|c| c.time.as_secs_f64())
    };
    println!(
        "tree {} ({mib:.0} MiB); median of {RUNS} runs: seconds (MiB/s, peak RSS in MiB)",
        tree.display()
    );
    println!();
    println!("| tool | step | 0 ms | 50 ms | kept at 50 ms | cairn faster at 0 / 50 ms |");
    println!("|---|---|---:|---:|---:|---:|");
    for tool in &tools {
        for (step, restore) in [("backup", false), ("restore", true)] {
            let (Some(t0), Some(t50)) = (secs(tool.name, 0, restore), secs(tool.name, 50, restore))
            else {
                continue;
            };
            let ratio = |latency| {
                let own = secs(tool.name, latency, restore).unwrap();
                let ours = secs("cairn", latency, restore).unwrap();
                own / ours
            };
            let rss = |latency| cost(tool.name, latency, restore).unwrap().rss_mib;
            println!(
                "| {} | {step} | {t0:.2} ({:.0}, {:.0}) | {t50:.2} ({:.0}, {:.0}) | {:.0}% | ×{:.2} / ×{:.2} |",
                tool.name,
                mib / t0,
                rss(0),
                mib / t50,
                rss(50),
                100.0 * t0 / t50,
                ratio(0),
                ratio(50)
            );
        }
    }
}
