//! Headless Chromium driven through chromedriver's WebDriver protocol
//! (JSON over HTTP), for the tests of `cairn ui` in a real browser.

use crate::http;
use base64::Engine as _;
use serde_json::{json, Value};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A browser session, ended (and chromedriver stopped) when dropped.
pub struct Browser {
    driver: Child,
    addr: String,
    session: String,
    _profile: tempfile::TempDir,
}

/// How long a page element or a download is waited for.
const PATIENCE: Duration = Duration::from_secs(20);

impl Browser {
    /// Starts chromedriver and a headless Chromium whose downloads go to
    /// `downloads`. Fails when either is missing: `scripts/test.sh`
    /// installs them.
    pub fn start(downloads: &Path) -> Browser {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let driver = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect(
                "chromedriver (Debian's chromium-driver) must be installed: run scripts/test.sh",
            );
        let addr = format!("127.0.0.1:{port}");
        let deadline = Instant::now() + PATIENCE;
        while std::net::TcpStream::connect(&addr).is_err() {
            assert!(Instant::now() < deadline, "chromedriver never listened");
            std::thread::sleep(Duration::from_millis(50));
        }
        let profile = tempfile::tempdir().unwrap();
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": "/usr/bin/chromium",
                "args": [
                    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic",
                    "--no-first-run", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync",
                    "--window-size=1280,900",
                    format!("--user-data-dir={}", profile.path().display()),
                ],
                "prefs": {
                    "download.default_directory": downloads.to_str().unwrap(),
                    "download.prompt_for_download": false,
                },
            },
        }}});
        let mut browser = Browser {
            driver,
            addr,
            session: String::new(),
            _profile: profile,
        };
        let made = browser.call("POST", "/session", Some(caps));
        browser.session = made["sessionId"].as_str().expect("a session").to_string();
        browser.cdp(
            "Browser.setDownloadBehavior",
            json!({"behavior": "allow", "downloadPath": downloads.to_str().unwrap()}),
        );
        browser
    }

    /// One WebDriver command; its `value`.
    fn call(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let body = body.map_or(Vec::new(), |b| b.to_string().into_bytes());
        let answer = http::request(&self.addr, method, path, &[], "application/json", &body);
        let value: Value = serde_json::from_slice(&answer.body)
            .unwrap_or_else(|e| panic!("{e}: {}", answer.text()));
        assert_eq!(answer.status, 200, "{method} {path}: {value}");
        value["value"].clone()
    }

    fn at(&self, rest: &str) -> String {
        format!("/session/{}{rest}", self.session)
    }

    /// A Chrome DevTools command.
    fn cdp(&self, cmd: &str, params: Value) {
        self.call(
            "POST",
            &self.at("/goog/cdp/execute"),
            Some(json!({"cmd": cmd, "params": params})),
        );
    }

    /// Opens `url`.
    pub fn goto(&self, url: &str) {
        self.call("POST", &self.at("/url"), Some(json!({"url": url})));
    }

    /// The current URL.
    pub fn url(&self) -> String {
        self.call("GET", &self.at("/url"), None)
            .as_str()
            .unwrap()
            .to_string()
    }

    /// The elements matching the CSS `selector`, now.
    pub fn all(&self, selector: &str) -> Vec<String> {
        let found = self.call(
            "POST",
            &self.at("/elements"),
            Some(json!({"using": "css selector", "value": selector})),
        );
        let ids = found.as_array().unwrap().iter();
        ids.map(|e| {
            e.as_object()
                .unwrap()
                .values()
                .next()
                .unwrap()
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect()
    }

    /// The first element matching `selector`, waiting for it.
    pub fn find(&self, selector: &str) -> String {
        let deadline = Instant::now() + PATIENCE;
        loop {
            if let Some(e) = self.all(selector).into_iter().next() {
                return e;
            }
            assert!(Instant::now() < deadline, "no {selector} on {}", self.url());
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The first element matching `selector` whose text is `text`.
    pub fn find_text(&self, selector: &str, text: &str) -> String {
        let found = self
            .all(selector)
            .into_iter()
            .find(|e| self.text(e) == text);
        found.unwrap_or_else(|| panic!("no {selector} reading {text:?} on {}", self.url()))
    }

    /// An element's visible text.
    pub fn text(&self, element: &str) -> String {
        let v = self.call("GET", &self.at(&format!("/element/{element}/text")), None);
        v.as_str().unwrap().to_string()
    }

    /// An element's attribute.
    pub fn attribute(&self, element: &str, name: &str) -> String {
        let path = self.at(&format!("/element/{element}/attribute/{name}"));
        self.call("GET", &path, None)
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    /// Clicks an element.
    pub fn click(&self, element: &str) {
        let path = self.at(&format!("/element/{element}/click"));
        self.call("POST", &path, Some(json!({})));
    }

    /// Saves a PNG of the page to `path`; its size in bytes.
    pub fn screenshot(&self, path: &Path) -> usize {
        let shot = self.call("GET", &self.at("/screenshot"), None);
        let png = base64::engine::general_purpose::STANDARD
            .decode(shot.as_str().unwrap())
            .unwrap();
        assert!(png.starts_with(b"\x89PNG"), "not a PNG");
        std::fs::write(path, &png).unwrap();
        png.len()
    }

    /// Waits until `dir` holds a finished download named `name`; its bytes.
    pub fn downloaded(&self, dir: &Path, name: &str) -> Vec<u8> {
        let deadline = Instant::now() + PATIENCE;
        let path = dir.join(name);
        loop {
            let partial = std::fs::read_dir(dir)
                .unwrap()
                .flatten()
                .any(|e| e.file_name().to_string_lossy().ends_with(".crdownload"));
            if path.exists() && !partial {
                return std::fs::read(&path).unwrap();
            }
            assert!(Instant::now() < deadline, "{name} never downloaded");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if !self.session.is_empty() {
            let path = format!("/session/{}", self.session);
            let _ = http::request(&self.addr, "DELETE", &path, &[], "", &[]);
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}
