//! PostgreSQL continuous archiving and point-in-time recovery with a real
//! server (Debian's `postgresql`, which `scripts/test.sh` installs): its
//! `archive_command` and `restore_command` call cairn, as the server's own
//! user, with a machine key.

use cairn_tests::postgres::{as_server_user, Cluster};
use cairn_tests::*;
use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Output;

/// A cluster archiving its WAL into a repository, and how to reach both.
struct Archiving {
    tmp: tempfile::TempDir,
    pg: Cluster,
    repo: PathBuf,
    key: PathBuf,
}

impl Archiving {
    /// A cluster on `port` with `archive_mode = on`, archiving through
    /// `cairn pg archive-wal` into a new repository opened with a machine key.
    fn start(port: u16) -> Archiving {
        let tmp = tempfile::tempdir().unwrap();
        // The server's user must reach the repository and the keys.
        std::fs::set_permissions(
            tmp.path(),
            std::os::unix::fs::PermissionsExt::from_mode(0o777),
        )
        .unwrap();
        let repo = tmp.path().join("repo");
        let key = tmp.path().join("machine.key");
        let password = tmp.path().join("password");
        std::fs::write(&password, PASSWORD).unwrap();
        std::fs::set_permissions(
            &password,
            std::os::unix::fs::PermissionsExt::from_mode(0o644),
        )
        .unwrap();
        let pw = password.to_str().unwrap();
        let init = ["init", "--kdf-memory-kib", "64", "--kdf-iterations", "1"];
        ok_text(&run_cairn(&repo, pw, &init));
        ok_text(&run_cairn(
            &repo,
            pw,
            &["key", "add", "--machine", key.to_str().unwrap()],
        ));
        let archive = format!(
            "\nwal_level = replica\narchive_mode = on\narchive_command = '{} -r {} --password-file {} pg archive-wal %p %f'\n",
            cairn_bin().display(),
            repo.display(),
            key.display()
        );
        let pg_dir = tmp.path().join("pg");
        std::fs::create_dir(&pg_dir).unwrap();
        Archiving {
            pg: Cluster::start_with(&pg_dir, port, &archive),
            tmp,
            repo,
            key,
        }
    }

    /// Runs cairn as the server's user on the repository with the machine key.
    fn cairn(&self, list: &[&str]) -> Output {
        run_cairn(&self.repo, self.key.to_str().unwrap(), list)
    }

    fn base_backup(&self) -> String {
        let pg_basebackup = self.pg.bin.join("pg_basebackup");
        let socket = self.pg.socket.display().to_string();
        let port = self.pg.port.to_string();
        let out = ok_text(&self.cairn(&[
            "pg",
            "base-backup",
            "--pg-basebackup",
            pg_basebackup.to_str().unwrap(),
            "-H",
            &socket,
            "-p",
            &port,
            "-U",
            "postgres",
        ]));
        assert!(
            out.contains("base backup of cluster main, timeline 1"),
            "{out}"
        );
        out.split_whitespace().nth(1).unwrap().to_string()
    }

    /// Recovers with `target` (options of `pg restore`) into a new data
    /// directory, and starts it on `port`.
    fn recover(&self, name: &str, port: u16, target: &[&str]) -> Cluster {
        self.recover_from(&self.repo, self.key.to_str().unwrap(), name, port, target)
    }

    /// Like [`Archiving::recover`], from the repository `repo`.
    fn recover_from(
        &self,
        repo: &Path,
        password_file: &str,
        name: &str,
        port: u16,
        target: &[&str],
    ) -> Cluster {
        let data = self.tmp.path().join(name);
        let data_text = data.to_str().unwrap().to_string();
        let mut list = vec!["pg", "restore", "--pgdata", &data_text, "--no-archive"];
        list.extend(target);
        let out = ok_text(&run_cairn(repo, password_file, &list));
        assert!(out.contains("restored base backup"), "{out}");
        Cluster::start_existing(&self.pg.socket, &data, port)
    }

    fn rows(pg: &Cluster) -> String {
        pg.psql(
            "shop",
            "SELECT coalesce(string_agg(item, ',' ORDER BY item), '') FROM sales",
        )
    }
}

/// Runs cairn as a PostgreSQL server's user on `repo` with a password file.
fn run_cairn(repo: &Path, password_file: &str, list: &[&str]) -> Output {
    let bin = cairn_bin();
    let mut argv: Vec<&OsStr> = vec![bin.as_os_str()];
    argv.extend(args(&[
        "-r",
        repo.to_str().unwrap(),
        "--password-file",
        password_file,
    ]));
    argv.extend(args(list));
    as_server_user(&argv)
}

/// Waits until a recovering server has replayed to its target (paused) or
/// finished recovery.
fn wait_recovered(pg: &Cluster) {
    for _ in 0..600 {
        let state = pg.psql(
            "postgres",
            "SELECT CASE WHEN NOT pg_is_in_recovery() THEN 'done' ELSE pg_get_wal_replay_pause_state() END",
        );
        if state == "done" || state == "paused" {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    panic!(
        "recovery did not reach its target: {}",
        std::fs::read_to_string(pg.log()).unwrap_or_default()
    );
}

#[test]
fn recovery_to_a_time_has_what_was_committed_before_it_and_latest_has_everything() {
    let a = Archiving::start(54341);
    a.pg.psql("postgres", "CREATE DATABASE shop");
    a.pg.psql("shop", "CREATE TABLE sales (item text)");
    let id = a.base_backup();
    a.pg.psql("shop", "INSERT INTO sales VALUES ('A')");
    let t = a.pg.psql("postgres", "SELECT clock_timestamp()");
    std::thread::sleep(std::time::Duration::from_millis(50));
    a.pg.psql("shop", "INSERT INTO sales VALUES ('B')");
    a.pg.switch_wal_and_wait();

    let listing = ok_text(&a.cairn(&["pg", "list"]));
    assert!(listing.contains(&id), "{listing}");
    // The snapshot records where the base backup starts and stops.
    let snapshots = ok_text(&a.cairn(&["snapshots"]));
    for tag in [
        "pg.cluster=main",
        "pg.timeline=1",
        "pg.start-lsn=",
        "pg.stop-lsn=",
        "pg.stop-time=",
    ] {
        assert!(snapshots.contains(tag), "{tag} not in {snapshots}");
    }

    let at_t = a.recover("at_t", 54342, &["--target-time", &t]);
    wait_recovered(&at_t);
    assert_eq!(Archiving::rows(&at_t), "A");
    drop(at_t);

    let latest = a.recover("latest", 54343, &["--latest"]);
    wait_recovered(&latest);
    assert_eq!(Archiving::rows(&latest), "A,B");
    assert_eq!(latest.psql("postgres", "SELECT pg_is_in_recovery()"), "f");
    drop(latest);

    // A copy of the repository (3-2-1) takes the WAL along with the base
    // backup, and recovers the same.
    let copy = a.tmp.path().join("copy");
    let key = a.key.to_str().unwrap();
    ok_text(&run_cairn(&copy, key, &["init", "--kdf-memory-kib", "64"]));
    let repo = a.repo.to_str().unwrap();
    let out = ok_text(&run_cairn(
        &copy,
        key,
        &["copy", "--from-repo", repo, "--from-password-file", key],
    ));
    assert!(
        out.contains("WAL files of PostgreSQL clusters copied"),
        "{out}"
    );
    assert_eq!(wal_names(&copy), wal_names(&a.repo));
    let from_copy = a.recover_from(&copy, key, "from_copy", 54348, &["--target-time", &t]);
    wait_recovered(&from_copy);
    assert_eq!(Archiving::rows(&from_copy), "A");
}

#[test]
fn a_base_backup_that_fails_saves_no_snapshot() {
    let (_tmp, base, repo) = cli_fixture();
    let pg_basebackup = cairn_tests::postgres::pg_bin().join("pg_basebackup");
    let out = cairn(
        &repo,
        &args(&[
            "pg",
            "base-backup",
            "--pg-basebackup",
            pg_basebackup.to_str().unwrap(),
            "-H",
            "/nonexistent",
            "-p",
            "1",
        ]),
        &[],
    );
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("no base backup was saved"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    let listed = ok_text(&cairn(&repo, &args(&["snapshots"]), &[]));
    assert!(listed.contains("0 snapshots"), "{listed}");

    // Nothing to recover from, or no way for PostgreSQL to open the
    // repository: refused before anything is written.
    let pgdata = base.join("pgdata");
    let pgdata_text = pgdata.to_str().unwrap();
    let restore = ["pg", "restore", "--latest", "--pgdata", pgdata_text];
    let out = cairn(&repo, &args(&restore), &[]);
    assert_clean_failure(&out, 1, "the restore_command needs a password file");
    let mut explicit = restore.to_vec();
    explicit.extend(["--restore-command", "false"]);
    let out = cairn(&repo, &args(&explicit), &[]);
    assert_clean_failure(&out, 1, "holds no base backup of cluster \"main\"");
    assert!(!pgdata.exists());
}

#[test]
fn recovery_to_just_before_a_drop_brings_the_table_back() {
    let a = Archiving::start(54344);
    a.pg.sample_database("shop", 50, 2000);
    a.base_backup();
    a.pg.psql(
        "shop",
        "INSERT INTO orders (customer, amount) VALUES (1, 99.5)",
    );
    let before = a.pg.fingerprint("shop", &["customers", "orders"]);
    let lsn = a.pg.psql("postgres", "SELECT pg_current_wal_insert_lsn()");
    // Recovery stops after the record at the target LSN, which must not be
    // the drop's own lock (a paused copy would hold it): another
    // transaction comes first, as on any busy server.
    a.pg.psql("shop", "CREATE TABLE audit_trail (note text)");
    a.pg.psql("shop", "DROP TABLE orders");
    a.pg.switch_wal_and_wait();

    let back = a.recover("before_drop", 54345, &["--target-lsn", &lsn]);
    wait_recovered(&back);
    assert_eq!(back.fingerprint("shop", &["customers", "orders"]), before);
}

#[test]
fn forget_keeping_two_base_backups_removes_older_wal_and_the_older_kept_one_recovers_to_the_end() {
    let a = Archiving::start(54346);
    a.pg.psql("postgres", "CREATE DATABASE shop");
    a.pg.psql("shop", "CREATE TABLE sales (item text)");
    let first = a.base_backup();
    a.pg.psql("shop", "INSERT INTO sales VALUES ('after first')");
    a.pg.switch_wal_and_wait();
    let second = a.base_backup();
    a.pg.psql("shop", "INSERT INTO sales VALUES ('after second')");
    a.pg.switch_wal_and_wait();
    a.base_backup();
    a.pg.psql("shop", "INSERT INTO sales VALUES ('newest')");
    a.pg.switch_wal_and_wait();
    let before_forget = wal_names(&a.repo);

    let out = ok_text(&a.cairn(&["forget", "--keep-last", "2", "--tag", "pg.cluster=main"]));
    assert!(out.contains("removed 1 snapshot"), "{out}");
    assert!(
        out.contains("of cluster main older than its oldest base backup"),
        "{out}"
    );
    let snapshots = ok_text(&a.cairn(&["snapshots"]));
    assert!(
        !snapshots.contains(&first) && snapshots.contains(&second),
        "{snapshots}"
    );
    let after = wal_names(&a.repo);
    assert!(
        after.len() < before_forget.len(),
        "{before_forget:?} -> {after:?}"
    );
    // What is left starts at the second base backup's first segment.
    let listing = ok_text(&a.cairn(&["pg", "list"]));
    let start = listing
        .lines()
        .find(|l| l.contains(&second))
        .and_then(|l| l.split("LSN ").nth(1))
        .and_then(|l| l.split_whitespace().next())
        .unwrap()
        .to_string();
    let start = cairn_format::wal::parse_lsn(&start).unwrap();
    let first_kept = cairn_format::wal::Position::of_lsn(start, 16 << 20);
    for name in &after {
        if let Some(p) = cairn_format::wal::WalName::parse(name).and_then(|n| n.position()) {
            assert!(
                p >= first_kept,
                "{name} is older than the oldest kept base backup"
            );
        }
    }
    assert!(ok_text(&a.cairn(&["check", "--read-data"])).contains("no damage found"));

    let older = a.recover(
        "from_second",
        54347,
        &["--latest", "--base-backup", &second],
    );
    wait_recovered(&older);
    assert_eq!(Archiving::rows(&older), "after first,after second,newest");
    drop(older);

    // A segment lost from the middle of the chain is a gap `check` reports.
    let victim = after
        .iter()
        .filter(|n| n.len() == 24)
        .nth(1)
        .unwrap()
        .clone();
    let stored = stored_file(&a.repo, &victim);
    std::fs::remove_file(stored).unwrap();
    let out = a.cairn(&["check"]);
    assert_eq!(
        out.status.code(),
        Some(4),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("WAL segments {victim} to {victim} are missing")),
        "{stderr}"
    );
}

/// Where the repository at `repo` stores the WAL file `name` (of its one cluster).
fn stored_file(repo: &Path, name: &str) -> PathBuf {
    std::fs::read_dir(repo.join("wal"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.to_str().unwrap().ends_with(&format!(".{name}")))
        .unwrap()
}

/// The WAL file names in a repository's archive (all of one cluster).
fn wal_names(repo: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(repo.join("wal"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter_map(|n| n.split_once('.').map(|(_, name)| name.to_string()))
        .collect();
    names.sort();
    names
}

#[test]
fn archiving_a_file_again_succeeds_with_the_same_content_and_fails_with_other_content() {
    let (_tmp, base, repo) = cli_fixture();
    let segment = base.join("000000010000000000000007");
    let mut content = compressible_text(16 << 20, 7);
    std::fs::write(&segment, &content).unwrap();
    let archive = |path: &Path, name: &str| {
        cairn(
            &repo,
            &args(&["pg", "archive-wal", path.to_str().unwrap(), name]),
            &[],
        )
    };
    let name = "000000010000000000000007";
    ok_text(&archive(&segment, name));
    let again = archive(&segment, name);
    assert!(again.status.success());
    assert!(
        String::from_utf8_lossy(&again.stderr).contains("archived before with the same content")
    );

    content[1000] ^= 1;
    std::fs::write(&segment, &content).unwrap();
    assert_clean_failure(
        &archive(&segment, name),
        1,
        "already archived with other content",
    );
    let back = base.join("back");
    ok_text(&cairn(
        &repo,
        &args(&["pg", "restore-wal", name, back.to_str().unwrap()]),
        &[],
    ));
    content[1000] ^= 1;
    assert!(
        std::fs::read(&back).unwrap() == content,
        "the archived segment changed"
    );

    // History and backup history files, and a file that is not there.
    let history = base.join("00000002.history");
    std::fs::write(&history, "1\t0/3000000\tno recovery target specified\n").unwrap();
    ok_text(&archive(&history, "00000002.history"));
    let fetched = base.join("fetched");
    let restore_wal = |name: &str| {
        let into = fetched.to_str().unwrap();
        cairn(&repo, &args(&["pg", "restore-wal", name, into]), &[])
    };
    ok_text(&restore_wal("00000002.history"));
    assert_eq!(
        std::fs::read(&fetched).unwrap(),
        std::fs::read(&history).unwrap()
    );
    let missing = restore_wal("00000003.history");
    assert_clean_failure(&missing, 1, "00000003.history is not in the archive");
    // A file that is there but damaged must stop recovery, not end it as
    // if the archive ended there: a status above 125.
    let stored = stored_file(&repo, "00000002.history");
    let mut bytes = std::fs::read(&stored).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    std::fs::set_permissions(&stored, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    std::fs::write(&stored, &bytes).unwrap();
    assert_clean_failure(&restore_wal("00000002.history"), 200, "00000002.history");
    // So must any other failure: arguments PostgreSQL never passes, a
    // repository that cannot be opened.
    let no_path = cairn(
        &repo,
        &args(&["pg", "restore-wal", "00000002.history"]),
        &[],
    );
    assert_eq!(no_path.status.code(), Some(200));
    let wrong = cairn(
        &repo,
        &args(&["pg", "restore-wal", "00000002.history", "x"]),
        &[("CAIRN_PASSWORD", "wrong")],
    );
    assert_clean_failure(&wrong, 200, "wrong password");
    let check = cairn(&repo, &args(&["check", "--read-data"]), &[]);
    assert_eq!(check.status.code(), Some(4));
    let stderr = String::from_utf8_lossy(&check.stderr);
    assert!(
        stderr.contains("error: WAL file ") && stderr.contains("00000002.history"),
        "{stderr}"
    );
    assert!(ok_text(&cairn(&repo, &args(&["check"]), &[])).contains("no damage found"));
    let backup_file = base.join("b");
    std::fs::write(&backup_file, "START WAL LOCATION: 0/7000028\n").unwrap();
    ok_text(&archive(
        &backup_file,
        "000000010000000000000007.00000028.backup",
    ));
    // A name PostgreSQL never archives is refused before anything is read.
    assert_clean_failure(
        &archive(&segment, "../../config"),
        1,
        "is not the name of a WAL",
    );
    let names: Vec<String> = std::fs::read_dir(repo.join("wal"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(names.len(), 3, "{names:?}");
    assert!(names.iter().all(|n| !n.contains("main")), "{names:?}");
}
