//! A throw-away PostgreSQL cluster for the tests (Debian's `postgresql`,
//! which `scripts/test.sh` installs), started on a Unix socket, no TCP.

use std::ffi::OsString;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The newest installed PostgreSQL server's `bin` directory.
pub fn pg_bin() -> PathBuf {
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

/// A throw-away cluster listening on a Unix socket only; stopped when dropped.
pub struct Cluster {
    /// The server's `bin` directory (`psql`, `pg_dump`, ...).
    pub bin: PathBuf,
    data: PathBuf,
    /// The directory holding its socket.
    pub socket: PathBuf,
    /// Its port (which names the socket).
    pub port: u16,
    as_root: bool,
}

impl Cluster {
    /// Makes a cluster in `dir` and starts it on `port`.
    pub fn start(dir: &Path, port: u16) -> Cluster {
        Cluster::start_with(dir, port, "")
    }

    /// Makes a cluster in `dir` with `settings` added to its
    /// `postgresql.conf`, and starts it on `port`.
    pub fn start_with(dir: &Path, port: u16, settings: &str) -> Cluster {
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o777)).unwrap();
        let c = Cluster::at(dir, &dir.join("pgdata"), port);
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
        let conf = c.data.join("postgresql.conf");
        let mut text = std::fs::read_to_string(&conf).unwrap();
        text.push_str(settings);
        std::fs::write(&conf, text).unwrap();
        c.pg_ctl_start();
        c
    }

    /// A cluster whose data directory `data` exists (a recovered one, say),
    /// started on `port` with its socket in `dir`.
    pub fn start_existing(dir: &Path, data: &Path, port: u16) -> Cluster {
        let c = Cluster::at(dir, data, port);
        c.pg_ctl_start();
        c
    }

    fn at(dir: &Path, data: &Path, port: u16) -> Cluster {
        Cluster {
            bin: pg_bin(),
            data: data.to_path_buf(),
            socket: dir.to_path_buf(),
            port,
            as_root: unsafe { libc::geteuid() } == 0,
        }
    }

    /// The server's log file.
    pub fn log(&self) -> PathBuf {
        self.data.with_extension("log")
    }

    fn pg_ctl_start(&self) {
        let opts = format!(
            "-k {} -c listen_addresses='' -p {} -c fsync=off",
            self.socket.display(),
            self.port
        );
        let log = self.log();
        let out = self.server(
            "pg_ctl",
            &[
                "-D",
                self.data.to_str().unwrap(),
                "-o",
                &opts,
                "-w",
                "-l",
                log.to_str().unwrap(),
                "start",
            ],
        );
        assert!(
            out.status.success(),
            "pg_ctl start failed: {}\n{}",
            String::from_utf8_lossy(&out.stderr),
            std::fs::read_to_string(&log).unwrap_or_default()
        );
    }

    /// Switches to a new WAL segment and waits until the one switched from
    /// is archived.
    pub fn switch_wal_and_wait(&self) {
        let segment = self.psql("postgres", "SELECT pg_walfile_name(pg_switch_wal())");
        for _ in 0..600 {
            let done = self.psql(
                "postgres",
                &format!("SELECT coalesce(last_archived_wal >= '{segment}', false) FROM pg_stat_archiver"),
            );
            if done == "t" {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        panic!(
            "{segment} was not archived in 30 s: {}",
            self.psql("postgres", "SELECT last_failed_wal FROM pg_stat_archiver")
        );
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

    /// The options that connect a client program to database `db`.
    pub fn client_args(&self, db: &str) -> Vec<String> {
        vec![
            "-h".into(),
            self.socket.display().to_string(),
            "-p".into(),
            self.port.to_string(),
            "-U".into(),
            "postgres".into(),
            "-d".into(),
            db.into(),
        ]
    }

    /// Runs `sql` in database `db`; what it printed, unaligned.
    pub fn psql(&self, db: &str, sql: &str) -> String {
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

    /// `pg_dump` of database `db`, as a program and its arguments.
    pub fn pg_dump(&self, db: &str) -> Vec<OsString> {
        let mut argv = vec![self.bin.join("pg_dump").into_os_string()];
        argv.extend(self.client_args(db).into_iter().map(OsString::from));
        argv
    }

    /// `pg_dump` of database `db` in its custom format, as a policy
    /// source's `command`.
    pub fn custom_dump(&self, db: &str) -> Vec<String> {
        let mut argv: Vec<String> = self
            .pg_dump(db)
            .into_iter()
            .map(|a| a.into_string().expect("UTF-8 paths"))
            .collect();
        argv.push("--format=custom".into());
        argv
    }

    /// The options that connect a client program, for a shell command line.
    pub fn client_options(&self) -> String {
        format!("-h {} -p {} -U postgres", self.socket.display(), self.port)
    }

    /// Makes the database `db` with a table `customers` of `customers` rows
    /// and a table `orders` of `orders` rows.
    pub fn sample_database(&self, db: &str, customers: u32, orders: u32) {
        self.psql("postgres", &format!("CREATE DATABASE {db}"));
        self.psql(
            db,
            &format!(
                "CREATE TABLE customers (id int PRIMARY KEY, name text);
                 INSERT INTO customers SELECT g, 'customer ' || g FROM generate_series(1, {customers}) g;
                 CREATE TABLE orders (id bigserial PRIMARY KEY, customer int, amount numeric);
                 INSERT INTO orders (customer, amount)
                   SELECT g % {customers} + 1, g / 100.0 FROM generate_series(1, {orders}) g;"
            ),
        );
    }

    /// Row count and an order-independent checksum of each of `tables`.
    pub fn fingerprint(&self, db: &str, tables: &[&str]) -> String {
        tables
            .iter()
            .map(|t| self.psql(db, &format!("SELECT count(*) || ':' || md5(string_agg(x::text, ',' ORDER BY x::text)) FROM {t} x")))
            .collect::<Vec<_>>()
            .join(" ")
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let data = self.data.to_str().unwrap().to_string();
        let _ = self.server("pg_ctl", &["-D", &data, "-m", "immediate", "-w", "stop"]);
    }
}

/// Runs `argv` as a PostgreSQL server's user (`postgres` when we are root),
/// as its `archive_command` and `restore_command` run.
pub fn as_server_user(argv: &[&std::ffi::OsStr]) -> std::process::Output {
    let mut cmd = match unsafe { libc::geteuid() } == 0 {
        true => {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).args(argv);
            c
        }
        false => {
            let mut c = Command::new(argv[0]);
            c.args(&argv[1..]);
            c
        }
    };
    cmd.stdin(std::process::Stdio::null()).output().unwrap()
}
