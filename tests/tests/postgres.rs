//! A real PostgreSQL server (started here on a Unix socket, no TCP): a second
//! `pg_dump` after small changes adds only a small fraction of the first's
//! stored size, and the stored dump restores into a fresh database with
//! identical row counts and table checksums. `.ci/run` installs PostgreSQL.

use cairn_engine::backup::{backup_stream, BackupOptions, StreamSource};
use cairn_engine::restore::restore;
use cairn_tests::*;
use std::ffi::OsString;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The newest installed PostgreSQL server's `bin` directory.
fn pg_bin() -> PathBuf {
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .expect("PostgreSQL is not installed: `apt-get install postgresql` (.ci/run does this)")
        .map(|e| e.unwrap().path().join("bin"))
        .filter(|b| b.join("initdb").exists())
        .collect();
    versions.sort();
    versions
        .pop()
        .expect("no PostgreSQL server binaries under /usr/lib/postgresql")
}

/// A throw-away cluster; stopped when dropped.
struct Cluster {
    bin: PathBuf,
    data: PathBuf,
    socket: PathBuf,
    as_root: bool,
}

impl Cluster {
    fn start(dir: &Path) -> Cluster {
        let as_root = unsafe { libc::geteuid() } == 0;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o777)).unwrap();
        let c = Cluster {
            bin: pg_bin(),
            data: dir.join("pgdata"),
            socket: dir.to_path_buf(),
            as_root,
        };
        c.server_cmd(
            "initdb",
            &[
                "-D",
                c.data.to_str().unwrap(),
                "-U",
                "postgres",
                "--auth=trust",
                "--no-sync",
                "-E",
                "UTF8",
            ],
        );
        let opts = format!(
            "-k {} -c listen_addresses='' -p 54329 -c fsync=off",
            c.socket.display()
        );
        c.server_cmd(
            "pg_ctl",
            &[
                "-D",
                c.data.to_str().unwrap(),
                "-o",
                &opts,
                "-w",
                "-l",
                dir.join("pg.log").to_str().unwrap(),
                "start",
            ],
        );
        c
    }

    /// Runs a server program, as `postgres` when we are root (the server refuses root).
    fn server(&self, program: &str, args: &[&str]) -> std::process::Output {
        let exe = self.bin.join(program);
        if self.as_root {
            Command::new("runuser")
                .args(["-u", "postgres", "--"])
                .arg(&exe)
                .args(args)
                .output()
        } else {
            Command::new(&exe).args(args).output()
        }
        .unwrap()
    }

    fn server_cmd(&self, program: &str, args: &[&str]) {
        let out = self.server(program, args);
        assert!(
            out.status.success(),
            "{program} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn client_args(&self, db: &str) -> Vec<String> {
        vec![
            "-h".into(),
            self.socket.display().to_string(),
            "-p".into(),
            "54329".into(),
            "-U".into(),
            "postgres".into(),
            "-d".into(),
            db.into(),
        ]
    }

    fn psql(&self, db: &str, sql: &str) -> String {
        let out = Command::new(self.bin.join("psql"))
            .args(self.client_args(db))
            .args(["-v", "ON_ERROR_STOP=1", "-X", "-q", "-t", "-A", "-c", sql])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "psql {sql}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    }

    fn pg_dump(&self, db: &str) -> Vec<OsString> {
        let mut argv = vec![self.bin.join("pg_dump").into_os_string()];
        argv.extend(self.client_args(db).into_iter().map(OsString::from));
        argv
    }

    /// Row count and an order-independent checksum of every table.
    fn fingerprint(&self, db: &str) -> String {
        ["orders", "customers"]
            .iter()
            .map(|t| self.psql(db, &format!("SELECT count(*) || ':' || md5(string_agg(x::text, ',' ORDER BY x::text)) FROM {t} x")))
            .collect::<Vec<_>>()
            .join(" ")
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let data = self.data.to_str().unwrap().to_string();
        let _ = self.server("pg_ctl", &["-D", &data, "-m", "immediate", "stop"]);
    }
}

#[test]
fn a_second_pg_dump_adds_little_and_the_dump_restores_identically() {
    let tmp = tempfile::tempdir().unwrap();
    let pg = Cluster::start(tmp.path());
    pg.psql("postgres", "CREATE DATABASE shop");
    pg.psql(
        "shop",
        "CREATE TABLE customers (id int PRIMARY KEY, name text, tier int);
         INSERT INTO customers SELECT g, 'customer ' || g, g % 5 FROM generate_series(1, 500) g;
         CREATE TABLE orders (id bigserial PRIMARY KEY, customer int, amount numeric, note text);
         INSERT INTO orders (customer, amount, note)
           SELECT g % 500 + 1, (g::bigint * 7919 % 100000) / 100.0, md5(g::text) || md5((g * 31)::text)
           FROM generate_series(1, 600000) g;",
    );
    let repo_path = tmp.path().join("repo");
    let mut repo = init_repo(&repo_path);
    let first = backup_stream(
        &mut repo,
        StreamSource::Command(pg.pg_dump("shop")),
        "shop.sql",
        &BackupOptions::default(),
    )
    .unwrap();

    pg.psql(
        "shop",
        "INSERT INTO orders (customer, amount, note) SELECT g % 500 + 1, 1.5, md5(g::text) FROM generate_series(1, 2000) g;
         UPDATE customers SET tier = 9 WHERE id IN (3, 77, 401);",
    );
    let second = backup_stream(
        &mut repo,
        StreamSource::Command(pg.pg_dump("shop")),
        "shop.sql",
        &BackupOptions::default(),
    )
    .unwrap();

    let (s1, s2) = (&first.snapshot.summary, &second.snapshot.summary);
    assert!(
        s1.bytes_read > 40 << 20,
        "dump unexpectedly small: {}",
        s1.bytes_read
    );
    let fraction = s2.bytes_added_stored as f64 / s1.bytes_added_stored as f64;
    println!(
        "pg_dump: {} bytes, first stored {} bytes, second added {} bytes ({:.1}%)",
        s2.bytes_read,
        s1.bytes_added_stored,
        s2.bytes_added_stored,
        fraction * 100.0
    );
    assert!(
        fraction < 0.10,
        "the second dump added {:.1}% of the first's stored size",
        fraction * 100.0
    );

    let out = tmp.path().join("restored");
    restore(&repo, &second.snapshot, None, &out).unwrap();
    std::fs::set_permissions(&out, std::fs::Permissions::from_mode(0o755)).unwrap();
    pg.psql("postgres", "CREATE DATABASE shop_restored");
    let load = Command::new(pg.bin.join("psql"))
        .args(pg.client_args("shop_restored"))
        .args(["-v", "ON_ERROR_STOP=1", "-X", "-q", "-f"])
        .arg(out.join("shop.sql"))
        .output()
        .unwrap();
    assert!(
        load.status.success(),
        "{}",
        String::from_utf8_lossy(&load.stderr)
    );
    let original = pg.fingerprint("shop");
    assert!(original.starts_with("602000:"), "{original}");
    assert_eq!(pg.fingerprint("shop_restored"), original);
}
