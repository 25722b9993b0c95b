//! `cairn key`: several passwords for one repository. Adding or removing a
//! key, or changing a password, touches one key file and nothing else.

use cairn_tests::*;
use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Output;

const SECOND: &str = "second password";

/// Cheap password hashing for the new key files.
const CHEAP: [&str; 4] = ["--kdf-memory-kib", "64", "--kdf-iterations", "1"];

/// Runs `cairn` with `list` as arguments and `password` as the password.
fn run(repo: &Path, list: &[&str], password: &str) -> Output {
    cairn(repo, &args(list), &[("CAIRN_PASSWORD", password)])
}

/// Writes `password` and a newline to a file in `base`; returns its path.
fn password_file(base: &Path, password: &str) -> String {
    let path = base.join("new-password");
    fs::write(&path, format!("{password}\n")).unwrap();
    path.to_str().unwrap().to_string()
}

/// Adds a key for `password` (as the test password); returns its short ID.
fn add_key(base: &Path, repo: &Path, password: &str) -> String {
    let file = password_file(base, password);
    let mut list = vec!["key", "add", "--new-password-file", &file];
    list.extend(CHEAP);
    let out = ok_text(&run(repo, &list, PASSWORD));
    let id = out.trim().strip_prefix("added key ").expect(&out);
    assert_eq!(id.len(), 8, "{out}");
    id.to_string()
}

/// The names of the key files.
fn key_files(repo: &Path) -> BTreeSet<String> {
    fs::read_dir(repo.join("keys"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect()
}

/// The key files as `key list --json` shows them to `password`.
fn listed(repo: &Path, password: &str) -> Vec<serde_json::Value> {
    let out = ok_text(&run(repo, &["key", "list", "--json"], password));
    serde_json::from_str(&out).unwrap()
}

/// The full ID of the key `password` opens.
fn current_key(repo: &Path, password: &str) -> String {
    let current: Vec<_> = listed(repo, password)
        .into_iter()
        .filter(|k| k["current"] == true)
        .collect();
    assert_eq!(current.len(), 1, "{current:?}");
    current[0]["id"].as_str().unwrap().to_string()
}

/// Content hashes of everything in the repository except `keys/`.
fn everything_but_keys(repo: &Path) -> BTreeMap<PathBuf, [u8; 32]> {
    let mut all = BTreeMap::new();
    for dir in ["data", "index", "snapshots", "locks"] {
        all.extend(fingerprint(&repo.join(dir)));
    }
    all.insert(repo.join("config"), hash_file(&repo.join("config")));
    all
}

#[test]
fn an_added_key_opens_the_repository_too() {
    let (_tmp, base, repo) = cli_fixture();
    let first = current_key(&repo, PASSWORD);
    let second = add_key(&base, &repo, SECOND);
    assert!(!first.starts_with(&second));
    assert_eq!(key_files(&repo).len(), 2);

    ok_text(&run(&repo, &["snapshots"], PASSWORD));
    // The trailing newline of the password file is not part of the password.
    ok_text(&run(&repo, &["snapshots"], SECOND));
    let with_newline = format!("{SECOND}\n");
    assert_clean_failure(
        &run(&repo, &["snapshots"], &with_newline),
        12,
        "wrong password",
    );
    assert_clean_failure(&run(&repo, &["snapshots"], "wrong"), 12, "wrong password");

    // Each password marks its own key as the one in use.
    assert_eq!(current_key(&repo, PASSWORD), first);
    assert!(current_key(&repo, SECOND).starts_with(&second));
    let keys = listed(&repo, SECOND);
    assert_eq!(keys.len(), 2);
    for k in &keys {
        let is_second = k["short_id"] == second.as_str();
        assert_eq!(k["current"], is_second);
        // Who made a key is known only for the key in use.
        assert_eq!(k["hostname"].is_string(), is_second, "{k}");
        assert_eq!(k["kdf"]["memory_kib"], 64);
    }

    let text = ok_text(&run(&repo, &["key", "list"], PASSWORD));
    let rows: Vec<&str> = text
        .lines()
        .filter(|l| l.contains(&first[..8]) || l.contains(&second))
        .collect();
    assert_eq!(rows.len(), 2, "{text}");
    let starred: Vec<&&str> = rows.iter().filter(|l| l.starts_with('*')).collect();
    assert_eq!(starred.len(), 1, "{text}");
    assert!(starred[0].contains(&first[..8]), "{text}");
    assert!(starred[0].contains("argon2id m=64 KiB t=3 p=1"), "{text}");
    assert!(text.contains("2 keys"), "{text}");
}

#[test]
fn passwd_replaces_one_key_file_and_nothing_else() {
    let (_tmp, base, repo) = cli_fixture();
    fs::write(base.join("src/file"), b"some data").unwrap();
    let src = base.join("src");
    ok_text(&run(&repo, &["backup", src.to_str().unwrap()], PASSWORD));
    let before = everything_but_keys(&repo);
    let keys_before = key_files(&repo);

    let file = password_file(&base, "new password");
    let mut list = vec!["key", "passwd", "--new-password-file", &file];
    list.extend(CHEAP);
    let out = ok_text(&run(&repo, &list, PASSWORD));

    assert_eq!(everything_but_keys(&repo), before);
    let keys_after = key_files(&repo);
    let removed: Vec<_> = keys_before.difference(&keys_after).collect();
    let added: Vec<_> = keys_after.difference(&keys_before).collect();
    assert_eq!(removed.len(), 1);
    assert_eq!(added.len(), 1);
    assert_eq!(keys_after.len(), 1);
    assert!(out.contains(&added[0][..8]), "{out}");

    assert_clean_failure(&run(&repo, &["snapshots"], PASSWORD), 12, "wrong password");
    let snapshots = ok_text(&run(&repo, &["snapshots"], "new password"));
    assert!(snapshots.contains("1 snapshot\n"), "{snapshots}");
    assert_eq!(&current_key(&repo, "new password"), added[0]);
}

#[test]
fn remove_refuses_the_key_in_use_and_the_last_key() {
    let (_tmp, base, repo) = cli_fixture();
    let first = current_key(&repo, PASSWORD);
    let second = add_key(&base, &repo, SECOND);
    let keys = fingerprint(&repo.join("keys"));

    let out = run(&repo, &["key", "remove", &first[..8]], PASSWORD);
    assert_clean_failure(&out, 1, "it is the key in use");
    assert_eq!(fingerprint(&repo.join("keys")), keys);

    let out = ok_text(&run(&repo, &["key", "remove", &second], PASSWORD));
    assert!(out.contains(&format!("removed key {second}")), "{out}");
    assert_eq!(key_files(&repo), BTreeSet::from([first.clone()]));
    assert_clean_failure(&run(&repo, &["snapshots"], SECOND), 12, "wrong password");

    // The last key: by full ID, with the one password left.
    let out = run(&repo, &["key", "remove", &first], PASSWORD);
    assert_clean_failure(&out, 1, "is the only key");
    assert_eq!(key_files(&repo), BTreeSet::from([first]));
    ok_text(&run(&repo, &["snapshots"], PASSWORD));
}

#[test]
fn unknown_and_ambiguous_key_ids_are_named() {
    let (_tmp, base, repo) = cli_fixture();
    let first = current_key(&repo, PASSWORD);
    let absent = format!(
        "{}{}",
        if first.starts_with('0') { '1' } else { '0' },
        &first[1..]
    );
    for bad in ["zz", absent.as_str(), &format!("{first}0")] {
        let out = run(&repo, &["key", "remove", bad], PASSWORD);
        assert_clean_failure(&out, 1, &format!("no key matches {bad:?}"));
    }
    // Add keys until two share their first hex digit (at most 16 more).
    let shared = loop {
        let firsts: Vec<char> = key_files(&repo)
            .iter()
            .map(|n| n.chars().next().unwrap())
            .collect();
        if let Some(d) = firsts
            .iter()
            .find(|d| firsts.iter().filter(|e| e == d).count() > 1)
        {
            break d.to_string();
        }
        add_key(&base, &repo, SECOND);
    };
    let keys = key_files(&repo);
    let out = run(&repo, &["key", "remove", &shared], PASSWORD);
    assert_clean_failure(&out, 1, &format!("key prefix {shared:?} is ambiguous"));
    assert_eq!(key_files(&repo), keys);
}

#[test]
fn a_new_password_must_be_given_and_not_empty() {
    let (_tmp, base, repo) = cli_fixture();
    let keys = fingerprint(&repo.join("keys"));
    for command in ["add", "passwd"] {
        // No file and no terminal (standard input is not one).
        let out = run(&repo, &["key", command], PASSWORD);
        assert_clean_failure(&out, 1, "no new password given");
        let file = password_file(&base, "");
        let out = run(
            &repo,
            &["key", command, "--new-password-file", &file],
            PASSWORD,
        );
        assert_clean_failure(&out, 1, "empty password");
    }
    assert_eq!(fingerprint(&repo.join("keys")), keys);
}

/// Plants a key file whose clear header asks for `kdf`; its sealed part is noise.
fn plant_key(repo: &Path, kdf: cairn_format::key::KdfParams, seed: u64) {
    use cairn_format::key::KeyHeader;
    let header = cairn_format::codec::encode(&KeyHeader {
        version: 2,
        kdf,
        role: cairn_format::keyring::Role::Full,
    });
    let mut file = b"CAIRNKEY".to_vec();
    file.extend_from_slice(&(header.len() as u32).to_le_bytes());
    file.extend_from_slice(&header);
    file.extend_from_slice(&Noise::new(seed).bytes(120));
    let name = blake3::hash(&file).to_hex();
    fs::write(repo.join("keys").join(name.as_str()), file).unwrap();
}

#[test]
fn planted_key_files_asking_for_huge_costs_are_not_tried() {
    use cairn_format::key::{KdfParams, MAX_KDF_ITERATIONS, MAX_KDF_MEMORY_KIB};
    let (_tmp, _base, repo) = cli_fixture();
    for seed in 0..5 {
        plant_key(
            &repo,
            KdfParams::argon2id(MAX_KDF_MEMORY_KIB, MAX_KDF_ITERATIONS, 1),
            seed,
        );
    }
    // The right password opens at once: the cheap key is tried first.
    ok_text(&run(&repo, &["snapshots"], PASSWORD));
    // A wrong one is refused without deriving 4 GiB 64 times over.
    let out = run(&repo, &["snapshots"], "not the password");
    assert_clean_failure(&out, 1, "5 more ask for more key-derivation work");
    assert!(String::from_utf8_lossy(&out.stderr).contains("--key-hint"));
}

#[test]
fn the_key_that_last_opened_the_repository_is_tried_first() {
    let (_tmp, base, repo) = cli_fixture();
    let first = current_key(&repo, PASSWORD);
    // A second key file for the same password, costlier to derive: without
    // a hint the cheaper one opens.
    let file = password_file(&base, PASSWORD);
    let add = [
        "key",
        "add",
        "--new-password-file",
        &file,
        "--kdf-memory-kib",
        "512",
        "--kdf-iterations",
        "1",
    ];
    let second = ok_text(&run(&repo, &add, PASSWORD));
    let second = second
        .trim()
        .strip_prefix("added key ")
        .unwrap()
        .to_string();
    assert_eq!(current_key(&repo, PASSWORD), first);
    let cache = base.join("cache");
    let env = [("XDG_CACHE_HOME", cache.to_str().unwrap())];
    let current = |extra: &[&str]| {
        let mut list = vec!["key", "list", "--json"];
        list.extend(extra);
        let out = ok_text(&cairn(&repo, &args(&list), &env));
        let keys: Vec<serde_json::Value> = serde_json::from_str(&out).unwrap();
        let k = keys.iter().find(|k| k["current"] == true).unwrap();
        k["id"].as_str().unwrap().to_string()
    };
    assert_eq!(current(&[]), first);
    assert!(current(&["--key-hint", &second]).starts_with(&second));
    // Remembered: the next open tries it first unasked.
    assert!(current(&[]).starts_with(&second));
    assert!(walk_files(&cache).len() == 1, "one hint file");
    // A hint naming no key file is passed over.
    assert_eq!(current(&["--key-hint", "ffffffff"]), first);
}

#[test]
fn a_machine_key_is_tried_first_once_added_and_the_password_still_opens_its_own_key() {
    let (_tmp, base, repo) = cli_fixture();
    let cache = base.join("cache");
    let env = |password: &'static str| {
        [
            ("XDG_CACHE_HOME", cache.to_str().unwrap()),
            ("CAIRN_PASSWORD", password),
        ]
    };
    let remembered = || {
        let found: Vec<String> = walk_files(&cache)
            .into_iter()
            .filter(|p| p.file_name().is_some_and(|n| n == "key"))
            .map(|p| fs::read_to_string(p).unwrap().trim().to_string())
            .collect();
        assert_eq!(found.len(), 1, "{found:?}");
        found[0].clone()
    };
    ok_text(&cairn(&repo, &args(&["snapshots"]), &env(PASSWORD)));
    let first = current_key(&repo, PASSWORD);
    assert_eq!(remembered(), first);

    let file = base.join("machine.key");
    let out = ok_text(&cairn(
        &repo,
        &args(&["key", "add", "--machine", file.to_str().unwrap()]),
        &env(PASSWORD),
    ));
    let short = out.trim().strip_prefix("added machine key ").expect(&out)[..8].to_string();
    // The new key is the one tried first: its derivation costs nothing.
    assert!(remembered().starts_with(&short), "{out}");
    // The password, tried against it first, still opens its own key.
    let listed = ok_text(&cairn(
        &repo,
        &args(&["key", "list", "--json"]),
        &env(PASSWORD),
    ));
    let listed: Vec<serde_json::Value> = serde_json::from_str(&listed).unwrap();
    let current: Vec<_> = listed.iter().filter(|k| k["current"] == true).collect();
    assert_eq!(current.len(), 1, "{listed:?}");
    assert_eq!(current[0]["id"], first.as_str());
}
