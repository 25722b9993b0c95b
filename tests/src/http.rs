//! A minimal HTTP/1.1 client over a TCP stream: the request line goes out
//! exactly as given (no normalization of `..` or percent-encodings), which
//! is what tests of a server's path handling need.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;

/// An HTTP answer.
pub struct Answer {
    pub status: u16,
    /// Header values by lower-case name.
    pub headers: BTreeMap<String, Vec<String>>,
    pub body: Vec<u8>,
}

impl Answer {
    /// The body as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The first value of header `name` (lower case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .get(name)
            .and_then(|v| v.first())
            .map(String::as_str)
    }
}

/// Sends `method path` to `addr` with the `extra` headers (and a Host
/// header naming `addr` unless one is among them) and `body` of type
/// `content_type`; reads the whole answer.
pub fn request(
    addr: &str,
    method: &str,
    path: &str,
    extra: &[(&str, &str)],
    content_type: &str,
    body: &[u8],
) -> Answer {
    let mut stream = TcpStream::connect(addr).unwrap();
    let mut head = format!("{method} {path} HTTP/1.1\r\nConnection: close\r\n");
    if !extra.iter().any(|(k, _)| k.eq_ignore_ascii_case("host")) {
        head.push_str(&format!("Host: {addr}\r\n"));
    }
    for (k, v) in extra {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    if !body.is_empty() {
        head.push_str(&format!("Content-Type: {content_type}\r\n"));
    }
    head.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
    stream.write_all(head.as_bytes()).unwrap();
    stream.write_all(body).unwrap();
    read_answer(&mut BufReader::new(stream))
}

/// Reads one answer: its head, then a body of the length it gives, in
/// chunks, or up to the end of the stream (a server may keep the
/// connection open after the answer whatever the request asked).
fn read_answer(stream: &mut impl BufRead) -> Answer {
    let mut status_line = String::new();
    stream.read_line(&mut status_line).unwrap();
    let status = status_line.split(' ').nth(1).expect("a status line");
    let mut headers: BTreeMap<String, Vec<String>> = BTreeMap::new();
    loop {
        let mut line = String::new();
        stream.read_line(&mut line).unwrap();
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        let (k, v) = line.split_once(':').unwrap();
        headers
            .entry(k.trim().to_ascii_lowercase())
            .or_default()
            .push(v.trim().to_string());
    }
    let first = |name: &str| headers.get(name).map(|v| v[0].clone());
    let mut body = Vec::new();
    if first("transfer-encoding").as_deref() == Some("chunked") {
        body = dechunk(stream);
    } else if let Some(n) = first("content-length") {
        body.resize(n.parse().unwrap(), 0);
        stream.read_exact(&mut body).unwrap();
    } else {
        stream.read_to_end(&mut body).unwrap();
    }
    Answer {
        status: status.parse().unwrap(),
        headers,
        body,
    }
}

fn dechunk(stream: &mut impl BufRead) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let mut size = String::new();
        stream.read_line(&mut size).unwrap();
        let n = usize::from_str_radix(size.trim(), 16).expect("a chunk size");
        let mut chunk = vec![0; n + 2];
        stream.read_exact(&mut chunk).unwrap();
        if n == 0 {
            return out;
        }
        out.extend_from_slice(&chunk[..n]);
    }
}
