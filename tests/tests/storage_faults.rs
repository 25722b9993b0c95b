//! Transient storage failures, injected by a proxy in front of a real S3
//! server: with one request in ten answered 503, left hanging past the
//! timeout, or cut short, backup and restore still complete, the restore
//! is byte-identical, and the repeated requests are reported.

use cairn_tests::proxy::{FaultProxy, ProxyPlan};
use cairn_tests::remote::*;
use cairn_tests::s3::{S3Server, ACCESS_KEY, BUCKET, SECRET_KEY};
use cairn_tests::*;
use std::path::Path;
use std::time::Duration;

/// The number in "N requests repeated" lines of `stderr`, summed.
fn repeated(stderr: &str) -> u64 {
    stderr
        .lines()
        .filter_map(|l| l.split(": ").nth(2))
        .filter_map(|l| l.split_once(" request"))
        .filter_map(|(n, _)| n.parse::<u64>().ok())
        .sum()
}

#[test]
fn backup_and_restore_complete_through_one_fault_in_ten_requests() {
    let server = S3Server::start();
    let proxy = FaultProxy::start(
        server.endpoint(),
        ProxyPlan {
            every: 10,
            hang: Duration::from_secs(4),
            ..ProxyPlan::default()
        },
    );
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path().canonicalize().unwrap();
    let src = base.join("src");
    build_tree(&src);
    let location = format!("s3:{}/{BUCKET}/faults", proxy.endpoint());
    let env = [
        ("AWS_ACCESS_KEY_ID", ACCESS_KEY),
        ("AWS_SECRET_ACCESS_KEY", SECRET_KEY),
    ];
    let run = |list: &[&str], paths: &[&Path]| {
        let mut all = vec!["--timeout", "2"];
        all.extend_from_slice(list);
        let out = cairn(Path::new(&location), &with_paths(&all, paths), &env);
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        ok_text(&out);
        stderr
    };
    // Small packs: enough requests for ten faults and more.
    let mut init = vec!["init", "--pack-size-mib", "1"];
    init.extend(CHEAP);
    let mut retried = repeated(&run(&init, &[]));
    let said = run(&["backup"], &[&src]);
    retried += repeated(&said);
    let out = base.join("out");
    let said_restore = run(&["restore", "latest", "--target"], &[&out]);
    retried += repeated(&said_restore);
    assert_same_tree(&src, &out.join(src.strip_prefix("/").unwrap()));
    let said_check = run(&["check", "--read-data"], &[]);
    retried += repeated(&said_check);

    let faults = proxy.faults();
    assert!(
        faults >= 10,
        "only {faults} faults in {} requests",
        proxy.requests()
    );
    assert!(
        retried >= faults * 9 / 10,
        "{retried} retries reported for {faults} faults:\n{said}"
    );
    assert!(
        said.contains("repeated after failures that passed (last: "),
        "{said}"
    );
    eprintln!(
        "{} requests, {faults} faulted, {retried} repeated",
        proxy.requests()
    );
}
