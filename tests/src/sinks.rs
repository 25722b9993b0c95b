//! Receivers of notifications for tests, on loopback ports: an HTTP server
//! that keeps each POST body, and an SMTP server that keeps each message.
//! Each speaks just enough of its protocol for one client at a time.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};

/// What a sink received, one entry per request or message.
#[derive(Clone, Default)]
pub struct Received(Arc<Mutex<Vec<String>>>);

impl Received {
    /// Everything so far.
    pub fn all(&self) -> Vec<String> {
        self.0.lock().unwrap().clone()
    }

    fn push(&self, item: String) {
        self.0.lock().unwrap().push(item);
    }
}

/// Starts an HTTP server that answers 200 to every request and keeps the
/// bodies; returns its URL and what it received.
pub fn http_sink() -> (String, Received) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!(
        "http://{}/hook/secret-token",
        listener.local_addr().unwrap()
    );
    let received = Received::default();
    let keep = received.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            if let Some(body) = http_exchange(stream) {
                keep.push(body);
            }
        }
    });
    (url, received)
}

/// One request on `stream`: its body, once answered.
fn http_exchange(stream: TcpStream) -> Option<String> {
    let mut reader = BufReader::new(stream.try_clone().ok()?);
    let mut length = 0;
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).ok()?;
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            if name.eq_ignore_ascii_case("content-length") {
                length = value.trim().parse().ok()?;
            }
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body).ok()?;
    let mut stream = stream;
    stream
        .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
        .ok()?;
    String::from_utf8(body).ok()
}

/// Starts an SMTP server that accepts every message and keeps it (headers
/// and body); returns its `smtp://` URL and what it received.
pub fn smtp_sink() -> (String, Received) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("smtp://{}", listener.local_addr().unwrap());
    let received = Received::default();
    let keep = received.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            smtp_session(stream, &keep);
        }
    });
    (url, received)
}

/// One SMTP session on `stream`, each message kept in `keep`.
fn smtp_session(stream: TcpStream, keep: &Received) -> Option<()> {
    let mut reader = BufReader::new(stream.try_clone().ok()?);
    let mut out = stream;
    out.write_all(b"220 sink ESMTP\r\n").ok()?;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).ok()? == 0 {
            return Some(());
        }
        let verb = line.get(..4).unwrap_or("").to_ascii_uppercase();
        let answer: &[u8] = match verb.as_str() {
            "EHLO" => b"250-sink\r\n250 8BITMIME\r\n",
            "DATA" => {
                out.write_all(b"354 go on\r\n").ok()?;
                let mut message = String::new();
                loop {
                    let mut l = String::new();
                    if reader.read_line(&mut l).ok()? == 0 || l == ".\r\n" {
                        break;
                    }
                    message.push_str(&l);
                }
                keep.push(message);
                b"250 kept\r\n"
            }
            "QUIT" => {
                out.write_all(b"221 bye\r\n").ok()?;
                return Some(());
            }
            _ => b"250 ok\r\n",
        };
        out.write_all(answer).ok()?;
    }
}
