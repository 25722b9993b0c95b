//! Who may use the dashboard, and the headers every answer carries.
//!
//! On a loopback address anyone on the machine may, as with any local
//! command; requests must then name a loopback host, so that a web page
//! elsewhere cannot reach the dashboard by pointing a name of its own at
//! 127.0.0.1 (DNS rebinding). On any other address only who shows the
//! token, given in a file: at `/login`, which sets a session cookie, or as
//! `Authorization: Bearer`. Forms that change anything carry a token of
//! this run (CSRF), checked before the change.

use super::App;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};

/// The session cookie's name.
const COOKIE: &str = "cairn_session";

/// What requests must show.
pub struct Auth {
    /// The token's hash, when one is required.
    token: Option<blake3::Hash>,
    /// Hashes of the session cookies handed out at login.
    sessions: Mutex<HashSet<[u8; 32]>>,
    /// The CSRF token of this run, carried by every form.
    pub csrf: String,
    /// The Host header values accepted; `None` accepts any (behind a token).
    hosts: Option<Vec<String>>,
}

/// Hex of `n` random bytes.
fn random_hex(n: usize) -> String {
    let mut bytes = vec![0u8; n];
    getrandom::getrandom(&mut bytes)
        .expect("the operating system's random number generator failed");
    hex::encode(bytes)
}

impl Auth {
    /// What requests to `listen` must show: `token` when given; without
    /// one `listen` must be a loopback address, and the host they name too.
    pub fn new(listen: SocketAddr, token: Option<Vec<u8>>) -> Auth {
        let hosts = token.is_none().then(|| {
            let port = listen.port();
            let ip = match listen {
                SocketAddr::V4(a) => a.ip().to_string(),
                SocketAddr::V6(a) => format!("[{}]", a.ip()),
            };
            [ip.as_str(), "127.0.0.1", "localhost", "[::1]"]
                .iter()
                .flat_map(|h| [h.to_string(), format!("{h}:{port}")])
                .collect()
        });
        Auth {
            token: token.map(|t| blake3::hash(&t)),
            sessions: Mutex::default(),
            csrf: random_hex(32),
            hosts,
        }
    }

    /// Whether logging in is needed.
    pub fn needs_login(&self) -> bool {
        self.token.is_some()
    }

    /// Checks a token given at login (in constant time: hashes compare so);
    /// on success, the cookie of a new session.
    pub fn login(&self, given: &str) -> Option<String> {
        let token = self.token?;
        if blake3::hash(given.trim_end_matches(['\r', '\n']).as_bytes()) != token {
            return None;
        }
        let session = random_hex(32);
        self.sessions
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(*blake3::hash(session.as_bytes()).as_bytes());
        Some(format!(
            "{COOKIE}={session}; Path=/; HttpOnly; SameSite=Strict"
        ))
    }

    /// Ends the session of a request.
    pub fn logout(&self, headers: &HeaderMap) {
        if let Some(session) = cookie(headers) {
            self.sessions
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .remove(blake3::hash(session.as_bytes()).as_bytes());
        }
    }

    /// Whether a form's CSRF token is this run's (in constant time).
    pub fn csrf_ok(&self, given: &str) -> bool {
        blake3::hash(given.as_bytes()) == blake3::hash(self.csrf.as_bytes())
    }

    /// Whether a request shows what it must.
    fn admits(&self, headers: &HeaderMap) -> bool {
        let Some(token) = self.token else {
            return true;
        };
        if let Some(session) = cookie(headers) {
            let known = self.sessions.lock().unwrap_or_else(PoisonError::into_inner);
            if known.contains(blake3::hash(session.as_bytes()).as_bytes()) {
                return true;
            }
        }
        let bearer = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        bearer.is_some_and(|b| blake3::hash(b.as_bytes()) == token)
    }

    /// Whether the Host header names this server as it may be named.
    fn host_ok(&self, headers: &HeaderMap) -> bool {
        let Some(hosts) = &self.hosts else {
            return true;
        };
        let host = headers.get(header::HOST).and_then(|h| h.to_str().ok());
        host.is_some_and(|h| hosts.iter().any(|ok| ok.eq_ignore_ascii_case(h)))
    }
}

/// The session cookie of a request.
fn cookie(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|c| c.trim().strip_prefix(COOKIE)?.strip_prefix('='))
}

/// Lets through the requests [`Auth`] admits (others go to the login
/// page, or get 401), and adds the headers every answer carries.
pub async fn guard(State(app): State<Arc<App>>, request: Request, next: Next) -> Response {
    let headers = request.headers();
    let mut response = if !app.auth.host_ok(headers) {
        (StatusCode::MISDIRECTED_REQUEST, "unknown host\n").into_response()
    } else if request.uri().path() == "/login" || request.uri().path() == "/style.css" {
        next.run(request).await
    } else if !app.auth.admits(headers) {
        match request.method() == Method::GET {
            true => Redirect::to("/login").into_response(),
            false => (StatusCode::UNAUTHORIZED, "log in first\n").into_response(),
        }
    } else {
        next.run(request).await
    };
    let h = response.headers_mut();
    for (name, value) in [
        (
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'",
        ),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::REFERRER_POLICY, "no-referrer"),
        (header::CACHE_CONTROL, "no-store"),
    ] {
        h.insert(name, HeaderValue::from_static(value));
    }
    response
}
