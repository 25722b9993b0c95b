//! `cairn ui`: the dashboard over HTTP, as a client sees it: pages,
//! downloads byte for byte, paths that could leave a snapshot, the token
//! and CSRF checks, and the overview's colours following the RPO.

use cairn_tests::*;
use std::collections::BTreeMap;
use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
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

/// An HTTP answer.
struct Answer {
    status: u16,
    headers: BTreeMap<String, Vec<String>>,
    body: Vec<u8>,
}

impl Answer {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .get(name)
            .and_then(|v| v.first())
            .map(String::as_str)
    }
}

/// Sends one request, its path exactly as given (no normalization).
fn request(
    server: &Server,
    method: &str,
    path: &str,
    extra: &[(&str, &str)],
    body: &str,
) -> Answer {
    let mut stream = TcpStream::connect(&server.addr).unwrap();
    let mut head = format!("{method} {path} HTTP/1.1\r\nConnection: close\r\n");
    if !extra.iter().any(|(k, _)| k.eq_ignore_ascii_case("host")) {
        head.push_str(&format!("Host: {}\r\n", server.addr));
    }
    for (k, v) in extra {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    if !body.is_empty() {
        head.push_str("Content-Type: application/x-www-form-urlencoded\r\n");
    }
    head.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
    stream.write_all(head.as_bytes()).unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).unwrap();
    parse(&raw)
}

fn get(server: &Server, path: &str) -> Answer {
    request(server, "GET", path, &[], "")
}

fn parse(raw: &[u8]) -> Answer {
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a whole head");
    let head = String::from_utf8_lossy(&raw[..end]);
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let mut headers: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for l in lines {
        let (k, v) = l.split_once(':').unwrap();
        headers
            .entry(k.trim().to_ascii_lowercase())
            .or_default()
            .push(v.trim().to_string());
    }
    let mut body = raw[end + 4..].to_vec();
    if headers
        .get("transfer-encoding")
        .is_some_and(|v| v[0] == "chunked")
    {
        body = dechunk(&body);
    }
    Answer {
        status,
        headers,
        body,
    }
}

fn dechunk(mut raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let eol = raw
            .windows(2)
            .position(|w| w == b"\r\n")
            .expect("a chunk size");
        let n =
            usize::from_str_radix(std::str::from_utf8(&raw[..eol]).unwrap().trim(), 16).unwrap();
        if n == 0 {
            return out;
        }
        out.extend_from_slice(&raw[eol + 2..eol + 2 + n]);
        raw = &raw[eol + 4 + n..];
    }
}

/// The full ID of the first snapshot linked from `page`.
fn first_snapshot(page: &str) -> String {
    let at = page.find("/b/").expect("a snapshot link") + 3;
    page[at..at + 64].to_string()
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
    ok_text(&cairn(
        &repo,
        &args(&["init", "--kdf-memory-kib", "64"]),
        &[],
    ));
    ok_text(&cairn(
        &repo,
        &args(&["backup", src.to_str().unwrap()]),
        &[],
    ));
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
