//! The README's recipes for MariaDB and Redis, proven with real servers
//! (Debian's `mariadb-server` and `redis-server`, which `scripts/test.sh`
//! installs) started here in a temporary folder: a dump backed up with
//! `--stdin-from-command` restores into a fresh server with the same data;
//! a dump cut short by the server stopping leaves no snapshot.

use cairn_tests::*;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// Runs `program` with `args`; what it printed, which must be a success.
fn ok(program: &str, args: &[&str]) -> String {
    let out = Command::new(program).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "{program} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Waits until `ready` holds, for at most 30 s.
fn wait_for(what: &str, ready: impl Fn() -> bool) {
    let start = Instant::now();
    while !ready() {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "{what} did not start"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A throw-away MariaDB server on a Unix socket; killed when dropped.
struct Maria {
    child: Child,
    socket: PathBuf,
}

impl Maria {
    fn start(dir: &Path) -> Maria {
        let data = dir.join("data");
        // A temporary folder of its own: two servers bootstrapping at once
        // in the shared /tmp have lost each other's temporary tables.
        let tmp = dir.join("tmp");
        std::fs::create_dir_all(&tmp).unwrap();
        let tmpdir = format!("--tmpdir={}", tmp.display());
        ok(
            "mariadb-install-db",
            &[
                &format!("--datadir={}", data.display()),
                "--user=root",
                "--skip-test-db",
                &tmpdir,
            ],
        );
        let socket = dir.join("my.sock");
        // Debian installs the server where a user's PATH may not look.
        let server = match Path::new("/usr/sbin/mariadbd").exists() {
            true => "/usr/sbin/mariadbd",
            false => "mariadbd",
        };
        let child = Command::new(server)
            .arg(format!("--datadir={}", data.display()))
            .arg(format!("--socket={}", socket.display()))
            .arg(&tmpdir)
            .arg(format!("--pid-file={}", dir.join("my.pid").display()))
            .args(["--skip-networking", "--user=root"])
            .arg(format!("--log-error={}", dir.join("my.err").display()))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let maria = Maria { child, socket };
        wait_for("mariadbd", || maria.sql_output("SELECT 1").status.success());
        maria
    }

    fn sql_output(&self, sql: &str) -> Output {
        Command::new("mariadb")
            .arg(format!("--socket={}", self.socket.display()))
            .args(["-uroot", "-N", "-B", "-e", sql])
            .output()
            .unwrap()
    }

    /// Runs `sql`; what it printed.
    fn sql(&self, sql: &str) -> String {
        let out = self.sql_output(sql);
        assert!(
            out.status.success(),
            "{sql}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// The dump command of the README's recipe.
    fn dump(&self) -> Vec<String> {
        vec![
            "mariadb-dump".into(),
            format!("--socket={}", self.socket.display()),
            "-uroot".into(),
            "--single-transaction".into(),
            "--routines".into(),
            "--events".into(),
            "--all-databases".into(),
        ]
    }

    /// Row counts and checksums of the shop's tables, and its routine.
    fn fingerprint(&self) -> String {
        [
            "SELECT COUNT(*) FROM shop.orders",
            "CHECKSUM TABLE shop.orders, shop.customers EXTENDED",
            "SELECT ROUTINE_NAME FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = 'shop'",
        ]
        .iter()
        .map(|q| self.sql(q))
        .collect::<Vec<_>>()
        .join(" | ")
    }
}

impl Drop for Maria {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `cairn backup --stdin-from-command` of `command` as the file `name`.
fn back_up_command(repo: &Path, name: &str, command: &[String]) -> Output {
    let mut list = vec![
        "backup",
        "--stdin-from-command",
        "--stdin-filename",
        name,
        "--",
    ];
    list.extend(command.iter().map(String::as_str));
    cairn(repo, &args(&list), &[])
}

fn snapshot_count(repo: &Path) -> usize {
    let out = ok_text(&cairn(repo, &args(&["snapshots", "--json"]), &[]));
    serde_json::from_str::<serde_json::Value>(&out)
        .unwrap()
        .as_array()
        .unwrap()
        .len()
}

#[test]
fn a_mariadb_dump_restores_into_a_fresh_server_with_the_same_data() {
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path();
    std::fs::create_dir_all(base.join("one")).unwrap();
    let live = Maria::start(&base.join("one"));
    live.sql(
        "CREATE DATABASE shop;
         USE shop;
         CREATE TABLE shop.customers (id INT PRIMARY KEY, name VARCHAR(64));
         INSERT INTO shop.customers SELECT seq, CONCAT('customer ', seq) FROM seq_1_to_400;
         CREATE TABLE shop.orders (id INT PRIMARY KEY, customer INT, amount DECIMAL(10,2), note TEXT);
         INSERT INTO shop.orders SELECT seq, seq % 400 + 1, (seq * 7919 % 100000) / 100, MD5(seq) FROM seq_1_to_50000;
         CREATE PROCEDURE shop.top_customer() SELECT customer FROM shop.orders GROUP BY customer ORDER BY SUM(amount) DESC LIMIT 1;",
    );
    let repo = base.join("repo");
    ok_text(&cairn(
        &repo,
        &args(&["init", "--kdf-memory-kib", "64"]),
        &[],
    ));
    ok_text(&back_up_command(&repo, "all.sql", &live.dump()));

    let out = base.join("out");
    ok_text(&cairn(
        &repo,
        &args(&["restore", "latest", "--target", out.to_str().unwrap()]),
        &[],
    ));
    std::fs::create_dir_all(base.join("two")).unwrap();
    let fresh = Maria::start(&base.join("two"));
    let load = Command::new("mariadb")
        .arg(format!("--socket={}", fresh.socket.display()))
        .arg("-uroot")
        .stdin(std::fs::File::open(out.join("all.sql")).unwrap())
        .output()
        .unwrap();
    assert!(
        load.status.success(),
        "{}",
        String::from_utf8_lossy(&load.stderr)
    );
    let expected = live.fingerprint();
    assert!(expected.starts_with("50000 |"), "{expected}");
    // CHECKSUM TABLE names the table; both servers name it the same.
    assert_eq!(fresh.fingerprint(), expected);
}

#[test]
fn a_dump_cut_short_by_the_server_stopping_leaves_no_snapshot() {
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path();
    let mut live = Maria::start(base);
    live.sql(
        "CREATE DATABASE big;
         USE big;
         CREATE TABLE big.rows (id INT PRIMARY KEY, note TEXT);
         INSERT INTO big.rows SELECT seq, REPEAT(MD5(seq), 8) FROM seq_1_to_400000;",
    );
    let repo = base.join("repo");
    ok_text(&cairn(
        &repo,
        &args(&["init", "--kdf-memory-kib", "64"]),
        &[],
    ));
    // The server stops while the dump of a large table is under way.
    let mut dump = live.dump();
    dump.push("--quick".into());
    let repo_arg = repo.clone();
    let backup = std::thread::spawn(move || back_up_command(&repo_arg, "all.sql", &dump));
    std::thread::sleep(Duration::from_millis(300));
    live.child.kill().unwrap();
    live.child.wait().unwrap();
    let out = backup.join().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("no snapshot was saved"), "{stderr}");
    // Stopped mid-way, not before it began.
    assert!(
        stderr.contains("Lost connection to server during query"),
        "{stderr}"
    );
    assert_eq!(snapshot_count(&repo), 0);
}

/// A Redis server on `port` keeping its files in `dir`, with `extra`
/// options, once it answers.
fn redis(dir: &Path, port: &str, extra: &[&str]) -> Child {
    let child = Command::new("redis-server")
        .args(["--port", port, "--save", "", "--appendonly", "no"])
        .arg("--dir")
        .arg(dir)
        .args(extra)
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    wait_for("redis-server", || {
        Command::new("redis-cli")
            .args(["-p", port, "ping"])
            .output()
            .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "PONG")
    });
    child
}

#[test]
fn a_redis_rdb_restores_into_a_fresh_server_with_the_same_keys() {
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path();
    let cli = |port: &str, args: &[&str]| {
        let mut all = vec!["-p", port];
        all.extend(args);
        ok("redis-cli", &all)
    };
    std::fs::create_dir_all(base.join("live")).unwrap();
    let mut live = redis(&base.join("live"), "26379", &[]);
    for i in 0..2000 {
        cli(
            "26379",
            &["SET", &format!("key:{i}"), &format!("value {}", i * 31)],
        );
    }
    cli("26379", &["RPUSH", "queue", "a", "b", "c"]);
    cli("26379", &["HSET", "user:1", "name", "ada", "tier", "3"]);
    let repo = base.join("repo");
    ok_text(&cairn(
        &repo,
        &args(&["init", "--kdf-memory-kib", "64"]),
        &[],
    ));
    let command: Vec<String> = ["redis-cli", "-p", "26379", "--rdb", "-"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    ok_text(&back_up_command(&repo, "dump.rdb", &command));
    let _ = live.kill();
    let _ = live.wait();

    let out = base.join("out");
    ok_text(&cairn(
        &repo,
        &args(&["restore", "latest", "--target", out.to_str().unwrap()]),
        &[],
    ));
    // A fresh server started on the restored dump.rdb.
    let mut fresh = redis(&out, "26380", &["--dbfilename", "dump.rdb"]);
    assert_eq!(cli("26380", &["DBSIZE"]), "2002");
    assert_eq!(cli("26380", &["GET", "key:1234"]), "value 38254");
    assert_eq!(cli("26380", &["LRANGE", "queue", "0", "-1"]), "a\nb\nc");
    assert_eq!(cli("26380", &["HGET", "user:1", "name"]), "ada");
    let _ = fresh.kill();
    let _ = fresh.wait();
}
