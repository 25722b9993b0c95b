//! A real PostgreSQL server (started here on a Unix socket, no TCP): a second
//! `pg_dump` after small changes adds only a small fraction of the first's
//! stored size, and the stored dump restores into a fresh database with
//! identical row counts and table checksums. `.ci/run` installs PostgreSQL.

use cairn_engine::backup::{backup_stream, BackupOptions, StreamSource};
use cairn_engine::restore::restore;
use cairn_tests::postgres::Cluster;
use cairn_tests::*;
use std::os::unix::fs::PermissionsExt;
use std::process::Command;

#[test]
fn a_second_pg_dump_adds_little_and_the_dump_restores_identically() {
    let tmp = tempfile::tempdir().unwrap();
    let pg = Cluster::start(tmp.path(), 54329);
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
    let original = pg.fingerprint("shop", &["orders", "customers"]);
    assert!(original.starts_with("602000:"), "{original}");
    assert_eq!(
        pg.fingerprint("shop_restored", &["orders", "customers"]),
        original
    );
}
