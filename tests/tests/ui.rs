//! `cairn ui`: the dashboard over HTTP, as a client sees it: pages,
//! downloads byte for byte, paths that could leave a snapshot, the token
//! and CSRF checks, and the overview's colours following the RPO.

use cairn_tests::http::{self, Answer};
use cairn_tests::webdriver::Browser;
use cairn_tests::*;
use std::collections::BTreeMap;
use std::fs;
use std::io::{BufRead, BufReader, Read};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

/// A running `cairn ui`, stopped when dropped.
struct Server {
    child: Child,
    addr: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Starts `cairn GLOBAL ui OPTIONS` on a free loopback port (with the
/// repository `repo`, or none when empty), once it answers.
fn serve(repo: &Path, global: &[&str], options: &[&str]) -> Server {
    let addr = format!("127.0.0.1:{}", free_port());
    let mut all = global.to_vec();
    all.extend(["ui", "--listen", &addr, "--refresh", "1"]);
    all.extend(options);
    let mut cmd = cairn_command(repo, &cairn_tests::args(&all), &[]);
    if repo.as_os_str().is_empty() {
        cmd.env_remove("CAIRN_REPOSITORY");
    }
    let mut child = cmd.stderr(Stdio::piped()).spawn().unwrap();
    let mut line = String::new();
    BufReader::new(child.stderr.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert!(line.contains("serving http://"), "{line}");
    Server { child, addr }
}

/// Sends one request, its path exactly as given (no normalization).
fn request(
    server: &Server,
    method: &str,
    path: &str,
    extra: &[(&str, &str)],
    body: &str,
) -> Answer {
    let form = "application/x-www-form-urlencoded";
    http::request(&server.addr, method, path, extra, form, body.as_bytes())
}

fn get(server: &Server, path: &str) -> Answer {
    request(server, "GET", path, &[], "")
}

/// The full ID of the first snapshot linked from `page`.
fn first_snapshot(page: &str) -> String {
    let at = page.find("/b/").expect("a snapshot link") + 3;
    page[at..at + 64].to_string()
}

/// Makes a repository at `repo` (cheap password hashing) and backs up `src` into it.
fn init_and_back_up(repo: &Path, src: &Path) {
    ok_text(&cairn(
        repo,
        &args(&["init", "--kdf-memory-kib", "64"]),
        &[],
    ));
    ok_text(&cairn(repo, &args(&["backup", src.to_str().unwrap()]), &[]));
}

/// A repository with one snapshot of `src`: a 3 MiB file, a file with a
/// space and a non-UTF-8 byte in its name, and a folder of 1,200 files.
fn fixture() -> (tempfile::TempDir, std::path::PathBuf, std::path::PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path().canonicalize().unwrap();
    let (repo, src) = (base.join("repo"), base.join("src"));
    fs::create_dir_all(src.join("many")).unwrap();
    write_noise_file(&src.join("big.bin"), 3 << 20, 7);
    use std::os::unix::ffi::OsStrExt;
    fs::write(
        src.join(std::ffi::OsStr::from_bytes(b"odd name \xff.txt")),
        b"odd\n",
    )
    .unwrap();
    for i in 0..1200 {
        fs::write(src.join(format!("many/f{i:04}")), format!("{i}\n")).unwrap();
    }
    init_and_back_up(&repo, &src);
    (tmp, repo, src)
}

#[test]
fn a_snapshot_is_browsed_and_its_files_and_folders_download_whole() {
    let (_tmp, repo, src) = fixture();
    let server = serve(&repo, &[], &[]);
    let home = get(&server, "/");
    assert_eq!(home.status, 303);
    let list = get(&server, "/r/repository");
    assert_eq!(list.status, 200);
    let id = first_snapshot(&list.text());
    let at = src.to_str().unwrap();
    // The folder is paged: 1,000 entries, then the rest.
    let page = get(&server, &format!("/r/repository/b/{id}{at}/many"));
    assert_eq!(page.status, 200, "{}", page.text());
    assert!(page.text().contains("f0999") && !page.text().contains("f1000"));
    let second = get(&server, &format!("/r/repository/b/{id}{at}/many?page=2"));
    assert!(second.text().contains("f1199") && !second.text().contains("f0999"));
    // A file downloads byte for byte, with its length known.
    let big = get(&server, &format!("/r/repository/d/{id}{at}/big.bin"));
    assert_eq!(big.status, 200);
    assert_eq!(big.header("content-length"), Some("3145728"));
    assert!(
        big.body == fs::read(src.join("big.bin")).unwrap(),
        "big.bin differs"
    );
    let odd = get(
        &server,
        &format!("/r/repository/d/{id}{at}/odd%20name%20%FF.txt"),
    );
    assert_eq!((odd.status, odd.body.as_slice()), (200, &b"odd\n"[..]));
    // A folder downloads as a tar archive holding every file.
    let tar = get(&server, &format!("/r/repository/d/{id}{at}"));
    assert_eq!(tar.header("content-type"), Some("application/x-tar"));
    let mut archive = tar::Archive::new(tar.body.as_slice());
    let mut files = BTreeMap::new();
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        let name = entry.path().unwrap().to_string_lossy().into_owned();
        let mut data = Vec::new();
        entry.read_to_end(&mut data).unwrap();
        files.insert(name, data);
    }
    assert_eq!(files["big.bin"], fs::read(src.join("big.bin")).unwrap());
    assert_eq!(files["many/f0042"], b"42\n");
    assert_eq!(
        files.len(),
        1 + 1 + 1 + 1200,
        "{:?}",
        files.keys().take(5).collect::<Vec<_>>()
    );
}

#[test]
fn paths_that_leave_the_snapshot_or_name_nothing_get_404_and_no_server_error() {
    let (_tmp, repo, src) = fixture();
    let server = serve(&repo, &[], &[]);
    let id = first_snapshot(&get(&server, "/r/repository").text());
    let at = src.to_str().unwrap();
    let zeros = "0".repeat(64);
    for path in [
        format!("/r/repository/b/{id}/.."),
        format!("/r/repository/b/{id}{at}/../../../../etc"),
        format!("/r/repository/d/{id}{at}/../../../../etc/passwd"),
        format!("/r/repository/d/{id}/%2e%2e/%2E%2E/etc/passwd"),
        format!("/r/repository/d/{id}{at}%2Fbig.bin"),
        format!("/r/repository/d/{id}{at}/big.bin%00"),
        format!("/r/repository/b/{id}{at}/nothing-here"),
        format!("/r/repository/d/{id}{at}/nothing-here"),
        format!("/r/repository/b/{zeros}"),
        format!("/r/repository/d/{zeros}{at}/big.bin"),
        "/r/other/b/x".to_string(),
        format!("/r//b/{id}"),
        format!("/r//d/{id}/x"),
        "/r/repository/b//x".to_string(),
        "/etc/passwd".to_string(),
        "/r/repository/diff?a=0&b=1".to_string(),
    ] {
        let answer = get(&server, &path);
        assert_eq!(answer.status, 404, "{path}: {}", answer.text());
    }
    // The server is still whole and names no secret in what it showed.
    assert_eq!(get(&server, "/r/repository").status, 200);
    // A host name that is not this server's (DNS rebinding) is refused.
    let rebound = request(
        &server,
        "GET",
        "/r/repository",
        &[("Host", "evil.example:80")],
        "",
    );
    assert_eq!(rebound.status, 421);
}

#[test]
fn off_loopback_without_a_token_the_server_refuses_to_start() {
    let (_tmp, repo, _src) = fixture();
    let out = cairn(&repo, &args(&["ui", "--listen", "0.0.0.0:0"]), &[]);
    assert_clean_failure(&out, 1, "--token-file");
    let short = repo.parent().unwrap().join("short");
    fs::write(&short, "abc\n").unwrap();
    let out = cairn(
        &repo,
        &args(&[
            "ui",
            "--listen",
            "0.0.0.0:0",
            "--token-file",
            short.to_str().unwrap(),
        ]),
        &[],
    );
    assert_clean_failure(&out, 1, "at least 16");
}

#[test]
fn with_a_token_pages_need_a_login_and_changes_need_the_csrf_token() {
    let (_tmp, repo, _src) = fixture();
    let token = "correct-horse-battery-staple";
    let file = repo.parent().unwrap().join("token");
    fs::write(&file, format!("{token}\n")).unwrap();
    let server = serve(&repo, &[], &["--token-file", file.to_str().unwrap()]);
    let page = get(&server, "/r/repository");
    assert_eq!(
        (page.status, page.header("location")),
        (303, Some("/login"))
    );
    let wrong = request(&server, "POST", "/login", &[], "token=not-it");
    assert_eq!(wrong.status, 401);
    assert!(wrong.header("set-cookie").is_none());
    let right = request(&server, "POST", "/login", &[], &format!("token={token}"));
    assert_eq!(right.status, 303);
    let cookie = right.header("set-cookie").unwrap().to_string();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    let session = cookie.split(';').next().unwrap().to_string();
    let page = request(&server, "GET", "/r/repository", &[("Cookie", &session)], "");
    assert_eq!(page.status, 200);
    assert!(!page.text().contains(token), "the token is in a page");
    let bearer = format!("Bearer {token}");
    let by_header = request(
        &server,
        "GET",
        "/r/repository",
        &[("Authorization", &bearer)],
        "",
    );
    assert_eq!(by_header.status, 200);
    // Logging out changes state: refused without the form's CSRF token.
    let text = page.text();
    let at = text.find("name=\"csrf\" value=\"").unwrap() + 19;
    let csrf = &text[at..at + 64];
    for body in ["csrf=", "csrf=0000", "other=1"] {
        let refused = request(&server, "POST", "/logout", &[("Cookie", &session)], body);
        assert_eq!(refused.status, 403, "{body}");
    }
    let still = request(&server, "GET", "/r/repository", &[("Cookie", &session)], "");
    assert_eq!(still.status, 200);
    let out = request(
        &server,
        "POST",
        "/logout",
        &[("Cookie", &session)],
        &format!("csrf={csrf}"),
    );
    assert_eq!(out.status, 303);
    let after = request(&server, "GET", "/r/repository", &[("Cookie", &session)], "");
    assert_eq!(after.status, 303, "the session outlived its logout");
}

/// The class of the overview's row for `repo` of `source`.
fn row_class(server: &Server, source: &str, repo: &str) -> String {
    let page = get(server, "/").text();
    let section = &page[page.find(&format!("id=\"source-{source}\"")).unwrap()..];
    let row = &section[..section
        .find(&format!("data-repository=\"{repo}\""))
        .unwrap()];
    let class = &row[row.rfind("<tr class=\"").unwrap() + 11..];
    class[..class.find('"').unwrap()].to_string()
}

#[test]
fn the_overview_turns_red_when_the_rpo_passes_and_green_after_a_run() {
    let (_tmp, _base, config) = files_policy("");
    let text = fs::read_to_string(&config)
        .unwrap()
        .replace("rpo = \"1h\"", "rpo = \"4s\"");
    fs::write(&config, text).unwrap();
    ok_text(&cairn_configured(&config, &["run"], &[]));
    let server = serve(Path::new(""), &["--config", config.to_str().unwrap()], &[]);
    assert_eq!(row_class(&server, "files", "main"), "ok");
    // Past the RPO with no run: red, and the overview says so.
    let deadline = Instant::now() + Duration::from_secs(20);
    while row_class(&server, "files", "main") != "bad" {
        assert!(Instant::now() < deadline, "never turned red");
        std::thread::sleep(Duration::from_millis(300));
    }
    assert!(get(&server, "/").text().contains("BREACH"));
    ok_text(&cairn_configured(&config, &["run"], &[]));
    let deadline = Instant::now() + Duration::from_secs(10);
    while row_class(&server, "files", "main") == "bad" {
        assert!(Instant::now() < deadline, "never turned back after the run");
        std::thread::sleep(Duration::from_millis(200));
    }
    // The source's page charts its snapshots.
    let source = get(&server, "/source/files");
    assert_eq!(source.status, 200, "{}", source.text());
    assert!(source.text().matches("<line x1=").count() >= 2);
}

/// Where the browser test saves a screenshot of each page, for review:
/// `$CAIRN_SCREENSHOTS`, or `target/ui-screenshots` of the workspace.
fn screenshots() -> PathBuf {
    let dir = std::env::var_os("CAIRN_SCREENSHOTS").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/ui-screenshots"),
        PathBuf::from,
    );
    fs::create_dir_all(&dir).unwrap();
    dir
}

/// Reloads the overview until the row of `main` for `files` has a class
/// that `wanted` accepts; that class.
fn wait_for_row(browser: &Browser, server: &Server, wanted: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        browser.goto(&format!("http://{}/", server.addr));
        let row = browser.find("#source-files tr[data-repository=\"main\"]");
        let class = browser.attribute(&row, "class");
        if wanted(&class) {
            return class;
        }
        assert!(Instant::now() < deadline, "the row stayed {class}");
        std::thread::sleep(Duration::from_millis(300));
    }
}

#[test]
fn in_a_browser_the_overview_follows_the_rpo_a_file_downloads_whole_and_a_diff_lists_a_change() {
    let (tmp, base, config) = files_policy("");
    let text = fs::read_to_string(&config)
        .unwrap()
        .replace("rpo = \"1h\"", "rpo = \"5s\"");
    fs::write(&config, text).unwrap();
    let report = base.join("src/report.bin");
    write_noise_file(&report, 700_000, 3);
    ok_text(&cairn_configured(&config, &["run"], &[]));
    let server = serve(Path::new(""), &["--config", config.to_str().unwrap()], &[]);
    let downloads = tmp.path().join("downloads");
    fs::create_dir(&downloads).unwrap();
    let browser = Browser::start(&downloads);
    let shots = screenshots();

    // Green after the run; red once the RPO has passed; green after another.
    let class = wait_for_row(&browser, &server, |c| c == "ok" || c == "warn");
    assert_eq!(class, "ok", "just backed up");
    browser.screenshot(&shots.join("overview.png"));
    wait_for_row(&browser, &server, |c| c == "bad");
    let verdict = browser.find("#verdict");
    assert!(
        browser.text(&verdict).contains("not within"),
        "{}",
        browser.text(&verdict)
    );
    browser.screenshot(&shots.join("overview-breach.png"));
    ok_text(&cairn_configured(&config, &["run"], &[]));
    wait_for_row(&browser, &server, |c| c != "bad");

    // Into the newest snapshot, folder by folder, and download a file.
    let row = browser.find("#source-files tr[data-repository=\"main\"] a[href*=\"/b/\"]");
    browser.click(&row);
    for name in base.join("src").iter().skip(1) {
        let link = browser.find_text("a.dir", &format!("{}/", name.to_string_lossy()));
        browser.click(&link);
    }
    browser.screenshot(&shots.join("browse.png"));
    let file = browser.find_text("a.file", "report.bin");
    browser.click(&file);
    let got = browser.downloaded(&downloads, "report.bin");
    assert!(
        got == fs::read(&report).unwrap(),
        "the download differs from the source"
    );

    // Change the file, back up, and the diff page lists it.
    write_noise_file(&report, 500_000, 4);
    ok_text(&cairn_configured(&config, &["run", "--force"], &[]));
    std::thread::sleep(Duration::from_millis(1100));
    browser.goto(&format!("http://{}/r/main?source=files", server.addr));
    browser.screenshot(&shots.join("snapshots.png"));
    let changes = browser.find("#snapshots a[href*=\"/diff?\"]");
    browser.click(&changes);
    let listed = browser.find("#changes");
    let text = browser.text(&listed);
    assert!(
        text.contains("report.bin") && text.contains("modified"),
        "{text}"
    );
    browser.screenshot(&shots.join("diff.png"));

    // The other pages, for review.
    for (path, name) in [
        ("/source/files", "source.png"),
        ("/r/main/audit", "audit.png"),
        ("/r/main/stats", "stats.png"),
    ] {
        browser.goto(&format!("http://{}{path}", server.addr));
        browser.find("h1");
        assert!(browser.screenshot(&shots.join(name)) > 1000);
    }
}

/// The CSRF token of a page's form.
fn csrf_of(page: &str) -> String {
    let at = page
        .find("name=\"csrf\" value=\"")
        .expect("a form with the token")
        + 19;
    page[at..at + 64].to_string()
}

/// `cairn -r @REPO LIST --json` of the policy file `config`, parsed.
fn json_of(config: &Path, repo: &str, list: &[&str]) -> serde_json::Value {
    let at = format!("@{repo}");
    let mut all = vec!["-r", &at, "--json"];
    all.extend(list);
    serde_json::from_str(&ok_text(&cairn_configured(config, &all, &[]))).unwrap()
}

/// The commands recorded in the audit log of `repo`.
fn audited(config: &Path, repo: &str) -> Vec<String> {
    let log = json_of(config, repo, &["audit"]);
    let records = log.as_array().unwrap().iter();
    records
        .map(|r| r["command"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn actions_are_off_unless_allowed_and_each_is_confirmed_needs_the_csrf_token_and_is_audited() {
    let (tmp, base, config) = files_policy("");
    ok_text(&cairn_configured(&config, &["run"], &[]));
    let global = ["--config", config.to_str().unwrap()];
    let snapshots = || {
        json_of(&config, "main", &["snapshots"])
            .as_array()
            .unwrap()
            .len()
    };
    let before = snapshots();
    {
        let off = serve(Path::new(""), &global, &[]);
        assert_eq!(get(&off, "/source/files/run").status, 403);
        let forged = format!("csrf={}", "0".repeat(64));
        assert_eq!(
            request(&off, "POST", "/source/files/run", &[], &forged).status,
            403
        );
        assert!(!get(&off, "/source/files").text().contains("run-now"));
    }
    // Actions write files as the server's user: they need a token even on
    // loopback.
    let out = cairn_configured(&config, &["ui", "--allow-actions"], &[]);
    assert_clean_failure(&out, 1, "--allow-actions needs --token-file");
    let token = tmp.path().join("token");
    fs::write(&token, "a-token-of-enough-length\n").unwrap();
    let options = ["--allow-actions", "--token-file", token.to_str().unwrap()];
    let server = serve(Path::new(""), &global, &options);
    let auth = [("Authorization", "Bearer a-token-of-enough-length")];
    let get = |server: &Server, path: &str| request(server, "GET", path, &auth, "");
    let request = |server: &Server, method: &str, path: &str, _: &[(&str, &str)], body: &str| {
        request(server, method, path, &auth, body)
    };
    // Back up now: confirmed first; refused without the token.
    let confirm = get(&server, "/source/files/run");
    assert_eq!(confirm.status, 200);
    let csrf = csrf_of(&confirm.text());
    for body in [
        "".to_string(),
        "csrf=".to_string(),
        format!("csrf={}", "0".repeat(64)),
    ] {
        let refused = request(&server, "POST", "/source/files/run", &[], &body);
        assert_eq!(refused.status, 403, "{body:?}");
    }
    assert_eq!(snapshots(), before, "a refused request backed up");
    let ran = request(
        &server,
        "POST",
        "/source/files/run",
        &[],
        &format!("csrf={csrf}"),
    );
    assert_eq!(ran.status, 200, "{}", ran.text());
    assert!(ran.text().contains("saved"), "{}", ran.text());
    assert_eq!(snapshots(), before + 1);
    let log = audited(&config, "main");
    assert!(log.contains(&"run: backup".to_string()) && log.contains(&"ui: run".to_string()));
    // A drill, recorded.
    let drilled = request(
        &server,
        "POST",
        "/source/files/drill",
        &[],
        &format!("csrf={csrf}"),
    );
    assert!(drilled.text().contains("passed"), "{}", drilled.text());
    let log = audited(&config, "main");
    assert!(log.contains(&"drill".to_string()) && log.contains(&"ui: drill".to_string()));
    // A restore of one folder of the newest snapshot into a folder here.
    let id = first_snapshot(&get(&server, "/r/main").text());
    let src = base.join("src");
    let into = tmp.path().join("restored");
    let path = format!("/r/main/restore/{id}{}", src.display());
    let query = format!("{path}?target={}", into.display());
    let asked = get(&server, &query);
    assert!(asked.text().contains("Yes, restore"), "{}", asked.text());
    let relative = request(
        &server,
        "POST",
        &path,
        &[],
        &format!("csrf={csrf}&target=here"),
    );
    assert_eq!(relative.status, 400);
    let body = format!("csrf={csrf}&target={}", into.display());
    let restored = request(&server, "POST", &path, &[], &body);
    assert!(restored.text().contains("Restored"), "{}", restored.text());
    assert_same_tree(&src, &into.join("src"));
    assert!(audited(&config, "main").contains(&"ui: restore".to_string()));
}

/// The peak resident memory of process `pid` so far, in bytes (`VmHWM`).
fn peak_rss(pid: u32) -> u64 {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    let kib: u64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    kib << 10
}

#[test]
fn a_2_gib_download_streams_whole_and_keeps_the_server_under_150_mib() {
    const SIZE: u64 = 2 << 30;
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path().canonicalize().unwrap();
    let (repo, src) = (base.join("repo"), base.join("src"));
    fs::create_dir(&src).unwrap();
    // Sparse: it reads as zeros without taking the disk; a seeded block
    // at each end shows the download's start and end in their place.
    let file = fs::File::create(src.join("huge")).unwrap();
    file.set_len(SIZE).unwrap();
    use std::os::unix::fs::FileExt;
    let (head, tail) = (b"head of the file", b"tail of the file");
    file.write_all_at(head, 0).unwrap();
    file.write_all_at(tail, SIZE - tail.len() as u64).unwrap();
    drop(file);
    init_and_back_up(&repo, &src);
    let server = serve(&repo, &[], &[]);
    let id = first_snapshot(&get(&server, "/r/repository").text());
    let path = format!("/r/repository/d/{id}{}/huge", src.display());
    // Read the body as it comes, a piece at a time, never holding it.
    let mut stream = std::net::TcpStream::connect(&server.addr).unwrap();
    let ask = format!(
        "GET {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
        server.addr
    );
    std::io::Write::write_all(&mut stream, ask.as_bytes()).unwrap();
    let mut reader = BufReader::with_capacity(1 << 20, stream);
    let mut line = String::new();
    while line != "\r\n" {
        line.clear();
        reader.read_line(&mut line).unwrap();
        assert!(!line.is_empty(), "the answer ended in its head");
    }
    let (mut got, mut first, mut last) = (0u64, Vec::new(), Vec::new());
    let mut piece = vec![0u8; 1 << 20];
    loop {
        let n = reader.read(&mut piece).unwrap();
        if n == 0 {
            break;
        }
        if first.len() < head.len() {
            first.extend_from_slice(&piece[..n.min(head.len())]);
        }
        last.extend_from_slice(&piece[..n]);
        let keep = last.len().saturating_sub(tail.len());
        last.drain(..keep);
        got += n as u64;
    }
    assert_eq!(got, SIZE);
    assert_eq!((&first[..], &last[..]), (&head[..], &tail[..]));
    let peak = peak_rss(server.child.id());
    eprintln!("server peak RSS after a 2 GiB download: {} MiB", peak >> 20);
    assert!(
        peak < 150 << 20,
        "the server's peak RSS was {} MiB",
        peak >> 20
    );
}
