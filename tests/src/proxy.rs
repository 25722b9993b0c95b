//! A fault-injecting HTTP/1.1 reverse proxy, to put between an S3 client and
//! a real S3 server: requests and responses pass byte for byte (the `Host`
//! header included, so a client signs for the proxy's address), except those
//! a [`ProxyPlan`] chooses to answer `503`, leave unanswered or cut short.
//!
//! Each client connection gets a thread and an upstream connection of its
//! own, both kept alive across requests.

use std::collections::HashMap;
use std::io::{self, BufRead, BufReader, BufWriter, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

/// What the proxy does to the requests passing through.
#[derive(Clone, Debug, Default)]
pub struct ProxyPlan {
    /// Every `every`-th request (counting from 1) is faulted; 0 means none. The faults cycle through
    /// the kinds in `kinds` in order (503, hang, truncate by default when empty).
    pub every: u64,
    /// The faults to cycle through.
    pub kinds: Vec<ProxyFault>,
    /// Added before forwarding each request (simulated network latency).
    pub latency: Duration,
    /// How long a hung request holds its connection before closing it without answering.
    pub hang: Duration,
}

/// A fault the proxy injects into one request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProxyFault {
    /// Answer `503 Service Unavailable` with an S3-style XML error body
    /// (`<Error><Code>SlowDown</Code>...`), without forwarding.
    Unavailable,
    /// Read the request, forward nothing, answer nothing for `hang`, then
    /// close the connection.
    Hang,
    /// Forward the request; send the upstream response head unchanged and the
    /// first half of its body, then close the connection. A response without
    /// a body is not sent at all.
    Truncate,
}

/// The faults cycled through when a plan names none.
const DEFAULT_KINDS: [ProxyFault; 3] = [
    ProxyFault::Unavailable,
    ProxyFault::Hang,
    ProxyFault::Truncate,
];

/// Buffer size for each direction of each connection.
const BUF: usize = 64 << 10;

/// The longest message head accepted, in bytes.
const MAX_HEAD: usize = 64 << 10;

/// A running proxy; it stops accepting and closes its client connections when dropped.
pub struct FaultProxy {
    addr: SocketAddr,
    shared: Arc<Shared>,
    acceptor: Option<JoinHandle<()>>,
}

impl FaultProxy {
    /// Starts listening on a free loopback port, forwarding to `upstream` (`http://127.0.0.1:PORT`).
    pub fn start(upstream: &str, plan: ProxyPlan) -> FaultProxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the proxy's port");
        let addr = listener.local_addr().expect("the proxy's address");
        let shared = Arc::new(Shared {
            upstream: upstream
                .trim_start_matches("http://")
                .trim_end_matches('/')
                .to_string(),
            plan: Mutex::new(PlanState { plan, since: 0 }),
            requests: AtomicU64::new(0),
            faults: AtomicU64::new(0),
            methods: Mutex::default(),
            log: Mutex::default(),
            clients: Mutex::new(Some(HashMap::new())),
        });
        let acceptor = {
            let shared = Arc::clone(&shared);
            thread::spawn(move || accept(listener, &shared))
        };
        FaultProxy {
            addr,
            shared,
            acceptor: Some(acceptor),
        }
    }

    /// `http://127.0.0.1:PORT` of the proxy.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Requests received so far (faulted ones included).
    pub fn requests(&self) -> u64 {
        self.shared.requests.load(Ordering::SeqCst)
    }

    /// Requests faulted so far.
    pub fn faults(&self) -> u64 {
        self.shared.faults.load(Ordering::SeqCst)
    }

    /// Every request received so far, as `METHOD TARGET` (its first line
    /// without the version), in order.
    pub fn log(&self) -> Vec<String> {
        lock(&self.shared.log).clone()
    }

    /// Requests received so far by method, e.g. `count("GET")`.
    pub fn count(&self, method: &str) -> u64 {
        lock(&self.shared.methods).get(method).copied().unwrap_or(0)
    }

    /// Changes the plan from now on (e.g. turn faults off after setup); the
    /// new plan counts requests from 1 again.
    pub fn set_plan(&self, plan: ProxyPlan) {
        let mut state = lock(&self.shared.plan);
        *state = PlanState {
            plan,
            since: self.shared.requests.load(Ordering::SeqCst),
        };
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.shared.stop();
        // The accept loop sees the stop once this connection wakes it.
        if TcpStream::connect(self.addr).is_ok() {
            if let Some(acceptor) = self.acceptor.take() {
                let _ = acceptor.join();
            }
        }
    }
}

/// The plan in force, and how many requests came before it.
struct PlanState {
    plan: ProxyPlan,
    since: u64,
}

/// What the proxy's threads share.
struct Shared {
    /// `HOST:PORT` of the server.
    upstream: String,
    plan: Mutex<PlanState>,
    requests: AtomicU64,
    faults: AtomicU64,
    methods: Mutex<HashMap<String, u64>>,
    /// `METHOD TARGET` of every request.
    log: Mutex<Vec<String>>,
    /// The open client connections by number; `None` once stopped.
    clients: Mutex<Option<HashMap<u64, TcpStream>>>,
}

/// What happens to one request.
struct Ticket {
    fault: Option<ProxyFault>,
    latency: Duration,
    hang: Duration,
}

impl Shared {
    /// Counts a request and decides its fate under the plan.
    fn admit(&self, method: &str, target: &str) -> Ticket {
        *lock(&self.methods).entry(method.to_string()).or_default() += 1;
        lock(&self.log).push(format!("{method} {target}"));
        let state = lock(&self.plan);
        let n = self.requests.fetch_add(1, Ordering::SeqCst) + 1 - state.since;
        let plan = &state.plan;
        let fault = (plan.every > 0 && n % plan.every == 0).then(|| {
            let kinds: &[ProxyFault] = match &plan.kinds[..] {
                [] => &DEFAULT_KINDS,
                kinds => kinds,
            };
            kinds[((n / plan.every - 1) % kinds.len() as u64) as usize]
        });
        if fault.is_some() {
            self.faults.fetch_add(1, Ordering::SeqCst);
        }
        Ticket {
            fault,
            latency: plan.latency,
            hang: plan.hang,
        }
    }

    /// Records an open client connection; false once stopped.
    fn register(&self, id: u64, client: &TcpStream) -> bool {
        match &mut *lock(&self.clients) {
            Some(clients) => {
                if let Ok(clone) = client.try_clone() {
                    clients.insert(id, clone);
                }
                true
            }
            None => false,
        }
    }

    fn unregister(&self, id: u64) {
        if let Some(clients) = &mut *lock(&self.clients) {
            clients.remove(&id);
        }
    }

    /// Refuses new connections and shuts the open ones.
    fn stop(&self) {
        if let Some(clients) = lock(&self.clients).take() {
            for client in clients.into_values() {
                let _ = client.shutdown(Shutdown::Both);
            }
        }
    }
}

/// Locks `mutex`, whatever a panicking holder left in it.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Serves each accepted connection on a thread of its own, until stopped.
fn accept(listener: TcpListener, shared: &Arc<Shared>) {
    for (id, client) in (0..).zip(listener.incoming()) {
        let Ok(client) = client else {
            // Out of descriptors, say: wait rather than spin.
            thread::sleep(Duration::from_millis(10));
            continue;
        };
        if !shared.register(id, &client) {
            return;
        }
        let serving = Arc::clone(shared);
        let spawned = thread::Builder::new()
            .name("fault-proxy".into())
            .spawn(move || {
                let _ = Connection::new(&serving, client).and_then(|c| c.serve());
                serving.unregister(id);
            });
        if spawned.is_err() {
            // The connection went with the closure.
            shared.unregister(id);
        }
    }
}

/// How a message body is delimited.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Body {
    Length(u64),
    Chunked,
    UntilClose,
}

/// A message head as received: the start line, the header fields and the
/// empty line ending them, each with its line ending.
struct Head {
    start: Vec<u8>,
    fields: Vec<Vec<u8>>,
    end: Vec<u8>,
}

impl Head {
    /// Reads a head; `None` if the peer closed the connection before one began.
    fn read(from: &mut impl BufRead) -> io::Result<Option<Head>> {
        if from.fill_buf()?.is_empty() {
            return Ok(None);
        }
        let start = read_line(from, MAX_HEAD)?;
        let mut left = MAX_HEAD - start.len();
        let mut fields = Vec::new();
        loop {
            let line = read_line(from, left)?;
            if line == b"\r\n" || line == b"\n" {
                return Ok(Some(Head {
                    start,
                    fields,
                    end: line,
                }));
            }
            left -= line.len();
            fields.push(line);
        }
    }

    /// The head as it is sent.
    fn bytes(&self) -> Vec<u8> {
        let mut out = self.start.clone();
        self.fields.iter().for_each(|f| out.extend_from_slice(f));
        out.extend_from_slice(&self.end);
        out
    }

    /// The `i`-th word of the start line (the method of a request, the status of a response).
    fn word(&self, i: usize) -> &str {
        std::str::from_utf8(&self.start)
            .ok()
            .and_then(|s| s.split_whitespace().nth(i))
            .unwrap_or("")
    }

    fn method(&self) -> &str {
        self.word(0)
    }

    fn status(&self) -> Option<u16> {
        self.word(1).parse().ok()
    }

    /// The values of the fields called `name`.
    fn values<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.fields
            .iter()
            .filter_map(|line| field(line))
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    }

    /// Whether a field called `name` lists `token`.
    fn has_token(&self, name: &str, token: &str) -> bool {
        self.values(name)
            .flat_map(|v| v.split(','))
            .any(|t| t.trim().eq_ignore_ascii_case(token))
    }

    /// Removes the fields called `name`.
    fn remove(&mut self, name: &str) {
        self.fields
            .retain(|line| field(line).is_none_or(|(n, _)| !n.eq_ignore_ascii_case(name)));
    }

    /// How the body is delimited, if not by the end of the connection.
    fn framing(&self) -> io::Result<Option<Body>> {
        if self.has_token("transfer-encoding", "chunked") {
            return Ok(Some(Body::Chunked));
        }
        self.values("content-length")
            .next()
            .map(|v| v.parse().map(Body::Length).map_err(invalid))
            .transpose()
    }

    /// The body of this request.
    fn request_body(&self) -> io::Result<Body> {
        Ok(self.framing()?.unwrap_or(Body::Length(0)))
    }

    /// The body of this response to a `method` request.
    fn response_body(&self, method: &str) -> io::Result<Body> {
        let bodyless = matches!(self.status(), Some(100..=199 | 204 | 304));
        if method.eq_ignore_ascii_case("HEAD") || bodyless {
            return Ok(Body::Length(0));
        }
        Ok(self.framing()?.unwrap_or(Body::UntilClose))
    }
}

/// The name and value of a header field line.
fn field(line: &[u8]) -> Option<(&str, &str)> {
    let (name, value) = std::str::from_utf8(line).ok()?.split_once(':')?;
    Some((name.trim(), value.trim()))
}

fn invalid(e: impl std::fmt::Display) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, e.to_string())
}

/// Reads one line, its ending included; fails if the stream ends in it or it
/// is longer than `limit`.
fn read_line(from: &mut impl BufRead, limit: usize) -> io::Result<Vec<u8>> {
    let mut line = Vec::new();
    (&mut *from)
        .take(limit as u64)
        .read_until(b'\n', &mut line)?;
    if line.ends_with(b"\n") {
        Ok(line)
    } else {
        Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "incomplete or overlong line",
        ))
    }
}

/// Copies a body as it is encoded.
fn copy_body(body: Body, from: &mut impl BufRead, to: &mut impl Write) -> io::Result<()> {
    match body {
        Body::Length(n) => copy_exact(from, to, n),
        Body::Chunked => copy_chunked(from, to),
        Body::UntilClose => io::copy(from, to).map(drop),
    }
}

/// Copies exactly `n` bytes.
fn copy_exact(from: &mut impl BufRead, to: &mut impl Write, n: u64) -> io::Result<()> {
    if io::copy(&mut (&mut *from).take(n), to)? < n {
        return Err(io::ErrorKind::UnexpectedEof.into());
    }
    Ok(())
}

/// Copies a chunked body, chunk extensions and trailer fields included.
fn copy_chunked(from: &mut impl BufRead, to: &mut impl Write) -> io::Result<()> {
    loop {
        let line = read_line(from, MAX_HEAD)?;
        to.write_all(&line)?;
        let size = std::str::from_utf8(&line).map_err(invalid).and_then(|l| {
            let hex = l.split(';').next().unwrap_or("").trim();
            u64::from_str_radix(hex, 16).map_err(invalid)
        })?;
        if size == 0 {
            break;
        }
        copy_exact(from, to, size)?;
        let end = read_line(from, 2)?;
        to.write_all(&end)?;
    }
    loop {
        let line = read_line(from, MAX_HEAD)?;
        to.write_all(&line)?;
        if line == b"\r\n" || line == b"\n" {
            return Ok(());
        }
    }
}

/// A connection to the server, kept across requests.
struct Upstream {
    from: BufReader<TcpStream>,
    to: BufWriter<TcpStream>,
}

impl Upstream {
    fn connect(addr: &str) -> io::Result<Upstream> {
        let stream = TcpStream::connect(addr)?;
        stream.set_nodelay(true)?;
        Ok(Upstream {
            from: BufReader::with_capacity(BUF, stream.try_clone()?),
            to: BufWriter::with_capacity(BUF, stream),
        })
    }

    /// Whether the server has not closed the connection (nor sent anything
    /// unasked), so that it can take another request.
    fn reusable(&self) -> bool {
        let stream = self.to.get_ref();
        if !self.from.buffer().is_empty() || stream.set_nonblocking(true).is_err() {
            return false;
        }
        let idle = matches!(stream.peek(&mut [0]), Err(e) if e.kind() == io::ErrorKind::WouldBlock);
        stream.set_nonblocking(false).is_ok() && idle
    }
}

/// One client connection and its upstream connection.
struct Connection<'a> {
    shared: &'a Shared,
    from_client: BufReader<TcpStream>,
    to_client: BufWriter<TcpStream>,
    upstream: Option<Upstream>,
}

impl<'a> Connection<'a> {
    fn new(shared: &'a Shared, client: TcpStream) -> io::Result<Self> {
        client.set_nodelay(true)?;
        Ok(Connection {
            shared,
            from_client: BufReader::with_capacity(BUF, client.try_clone()?),
            to_client: BufWriter::with_capacity(BUF, client),
            upstream: None,
        })
    }

    /// Handles requests until either side closes or a fault does.
    fn serve(mut self) -> io::Result<()> {
        while let Some(request) = Head::read(&mut self.from_client)? {
            if !self.exchange(request)? {
                break;
            }
        }
        Ok(())
    }

    /// Handles one request; returns whether the connection stays open.
    fn exchange(&mut self, mut request: Head) -> io::Result<bool> {
        let body = request.request_body()?;
        let ticket = self.shared.admit(request.method(), request.word(1));
        thread::sleep(ticket.latency);
        if request.has_token("expect", "100-continue") {
            // Answered here, as the body is read before the server sees the request.
            request.remove("expect");
            self.to_client.write_all(b"HTTP/1.1 100 Continue\r\n\r\n")?;
            self.to_client.flush()?;
        }
        let keep = !request.has_token("connection", "close");
        match ticket.fault {
            Some(ProxyFault::Unavailable) => {
                copy_body(body, &mut self.from_client, &mut io::sink())?;
                self.unavailable(request.method())?;
                Ok(keep)
            }
            Some(ProxyFault::Hang) => {
                copy_body(body, &mut self.from_client, &mut io::sink())?;
                hold(self.to_client.get_ref(), ticket.hang);
                Ok(false)
            }
            Some(ProxyFault::Truncate) => {
                let mut up = self.forward(&request, body)?;
                self.relay_truncated(&mut up, request.method())?;
                Ok(false)
            }
            None => {
                let mut up = self.forward(&request, body)?;
                let reusable = self.relay(&mut up, request.method())?;
                if reusable {
                    self.upstream = Some(up);
                }
                Ok(reusable && keep)
            }
        }
    }

    /// Sends the request upstream, on a new connection unless the last one
    /// can be reused, and returns that connection.
    fn forward(&mut self, request: &Head, body: Body) -> io::Result<Upstream> {
        let mut up = match self.upstream.take() {
            Some(up) if up.reusable() => up,
            _ => Upstream::connect(&self.shared.upstream)?,
        };
        up.to.write_all(&request.bytes())?;
        copy_body(body, &mut self.from_client, &mut up.to)?;
        up.to.flush()?;
        Ok(up)
    }

    /// Reads the final response head from `up`, passing interim (1xx) ones on.
    fn response_head(&mut self, up: &mut Upstream) -> io::Result<Head> {
        loop {
            let head = Head::read(&mut up.from)?
                .ok_or_else(|| io::Error::from(io::ErrorKind::UnexpectedEof))?;
            match head.status() {
                Some(100..=199) => {
                    self.to_client.write_all(&head.bytes())?;
                    self.to_client.flush()?;
                }
                Some(_) => return Ok(head),
                None => return Err(invalid("no status in the response")),
            }
        }
    }

    /// Passes the response on; returns whether `up` can take another request.
    fn relay(&mut self, up: &mut Upstream, method: &str) -> io::Result<bool> {
        let response = self.response_head(up)?;
        let body = response.response_body(method)?;
        self.to_client.write_all(&response.bytes())?;
        copy_body(body, &mut up.from, &mut self.to_client)?;
        self.to_client.flush()?;
        Ok(body != Body::UntilClose && !response.has_token("connection", "close"))
    }

    /// Passes on the response head and the first half of the body; nothing
    /// if there is no body.
    fn relay_truncated(&mut self, up: &mut Upstream, method: &str) -> io::Result<()> {
        let response = self.response_head(up)?;
        let mut body = Vec::new();
        copy_body(response.response_body(method)?, &mut up.from, &mut body)?;
        if !body.is_empty() {
            self.to_client.write_all(&response.bytes())?;
            self.to_client.write_all(&body[..body.len() / 2])?;
            self.to_client.flush()?;
        }
        Ok(())
    }

    /// Answers `503 Slow Down` as S3 does (without the body for a `HEAD`).
    fn unavailable(&mut self, method: &str) -> io::Result<()> {
        let body = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>SlowDown</Code>\
                    <Message>Please reduce your request rate.</Message>\
                    <RequestId>fault-proxy</RequestId></Error>";
        let head = format!(
            "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/xml\r\n\
             Content-Length: {}\r\n\r\n",
            body.len()
        );
        self.to_client.write_all(head.as_bytes())?;
        if !method.eq_ignore_ascii_case("HEAD") {
            self.to_client.write_all(body.as_bytes())?;
        }
        self.to_client.flush()
    }
}

/// Keeps `client` waiting for `hang`, or until it closes (or the proxy stops).
fn hold(client: &TcpStream, hang: Duration) {
    let deadline = Instant::now() + hang;
    let mut discard = [0; 4096];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() || client.set_read_timeout(Some(left)).is_err() {
            return;
        }
        let mut reader = client;
        if matches!(reader.read(&mut discard), Ok(0) | Err(_)) {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Noise;
    use std::sync::OnceLock;

    /// What the origin answers to `GET /chunked`, as sent.
    const CHUNKED: &[u8] = b"5;ext=1\r\nhello\r\n7\r\n, world\r\n0\r\nX-Trailer: yes\r\n\r\n";

    /// What the origin answers to `GET /big`: 5 MiB.
    fn big() -> &'static [u8] {
        static BIG: OnceLock<Vec<u8>> = OnceLock::new();
        BIG.get_or_init(|| Noise::new(7).bytes(5 << 20))
    }

    fn ok_head(len: usize) -> Vec<u8> {
        format!("HTTP/1.1 200 OK\r\nContent-Length: {len}\r\n\r\n").into_bytes()
    }

    /// An upstream server on a loopback port, answering keep-alive requests:
    /// `GET /big`, `HEAD /big`, `GET /chunked`, and `PUT` with the length and
    /// BLAKE3 of the body. It records the request heads it receives.
    struct Origin {
        addr: SocketAddr,
        heads: Arc<Mutex<Vec<Vec<u8>>>>,
        connections: Arc<AtomicU64>,
    }

    impl Origin {
        fn start() -> Origin {
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            let origin = Origin {
                addr: listener.local_addr().unwrap(),
                heads: Arc::default(),
                connections: Arc::default(),
            };
            let (heads, connections) = (origin.heads.clone(), origin.connections.clone());
            thread::spawn(move || {
                for stream in listener.incoming() {
                    connections.fetch_add(1, Ordering::SeqCst);
                    let heads = heads.clone();
                    thread::spawn(move || Origin::serve(stream?, &heads));
                }
                io::Result::Ok(())
            });
            origin
        }

        fn serve(stream: TcpStream, heads: &Mutex<Vec<Vec<u8>>>) -> io::Result<()> {
            let mut from = BufReader::new(stream.try_clone()?);
            let mut to = BufWriter::new(stream);
            while let Some(head) = Head::read(&mut from)? {
                let mut body = Vec::new();
                copy_body(head.request_body()?, &mut from, &mut body)?;
                lock(heads).push(head.bytes());
                to.write_all(&Origin::answer(&head, &body))?;
                to.flush()?;
            }
            Ok(())
        }

        fn answer(head: &Head, body: &[u8]) -> Vec<u8> {
            match (head.method(), head.word(1)) {
                ("GET", "/big") => [&ok_head(big().len()), big()].concat(),
                ("HEAD", "/big") => ok_head(big().len()),
                ("GET", "/chunked") => [
                    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
                    CHUNKED,
                ]
                .concat(),
                ("PUT", _) => {
                    let text = format!("{} {}", body.len(), blake3::hash(body).to_hex());
                    [ok_head(text.len()), text.into_bytes()].concat()
                }
                _ => b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n".to_vec(),
            }
        }

        fn endpoint(&self) -> String {
            format!("http://{}", self.addr)
        }

        fn heads(&self) -> Vec<Vec<u8>> {
            lock(&self.heads).clone()
        }
    }

    /// A keep-alive client connection to a proxy.
    struct Client {
        host: String,
        from: BufReader<TcpStream>,
        to: TcpStream,
    }

    impl Client {
        fn connect(proxy: &FaultProxy) -> Client {
            let host = proxy.endpoint().trim_start_matches("http://").to_string();
            let to = TcpStream::connect(&host).unwrap();
            Client {
                host,
                from: BufReader::new(to.try_clone().unwrap()),
                to,
            }
        }

        /// The head of a request with `extra` fields and a body of `len` bytes.
        fn head(&self, method: &str, path: &str, extra: &str, len: usize) -> Vec<u8> {
            format!(
                "{method} {path} HTTP/1.1\r\nHost: {}\r\n{extra}Content-Length: {len}\r\n\r\n",
                self.host
            )
            .into_bytes()
        }

        /// Sends a request; returns its head as sent.
        fn send(&mut self, method: &str, path: &str, body: &[u8]) -> Vec<u8> {
            let head = self.head(method, path, "", body.len());
            self.to.write_all(&[&head, body].concat()).unwrap();
            head
        }

        /// Reads a whole response to a `method` request.
        fn receive(&mut self, method: &str) -> (Head, Vec<u8>) {
            let head = Head::read(&mut self.from).unwrap().expect("a response");
            let mut body = Vec::new();
            copy_body(
                head.response_body(method).unwrap(),
                &mut self.from,
                &mut body,
            )
            .unwrap();
            (head, body)
        }

        /// Makes a request; returns the status and the body.
        fn call(&mut self, method: &str, path: &str, body: &[u8]) -> (u16, Vec<u8>) {
            self.send(method, path, body);
            let (head, body) = self.receive(method);
            (head.status().unwrap(), body)
        }

        /// Everything until the proxy closes the connection.
        fn rest(&mut self) -> Vec<u8> {
            let mut rest = Vec::new();
            self.from.read_to_end(&mut rest).unwrap();
            rest
        }
    }

    fn plan(every: u64, kinds: &[ProxyFault]) -> ProxyPlan {
        ProxyPlan {
            every,
            kinds: kinds.to_vec(),
            ..Default::default()
        }
    }

    #[test]
    fn forwards_requests_and_responses_byte_for_byte_on_one_connection() {
        let origin = Origin::start();
        let proxy = FaultProxy::start(&origin.endpoint(), ProxyPlan::default());
        let mut client = Client::connect(&proxy);
        let mut sent = vec![client.send("GET", "/big", b"")];
        let (head, body) = client.receive("GET");
        assert_eq!(head.bytes(), ok_head(big().len()));
        assert!(body == big(), "the 5 MiB body differs");

        let upload = Noise::new(9).bytes(5 << 20);
        sent.push(client.send("PUT", "/object", &upload));
        let echo = format!("{} {}", upload.len(), blake3::hash(&upload).to_hex());
        assert_eq!(client.receive("PUT").1, echo.as_bytes());

        sent.push(client.send("HEAD", "/big", b""));
        let (head, body) = client.receive("HEAD");
        assert_eq!((head.bytes(), body), (ok_head(big().len()), vec![]));

        sent.push(client.send("GET", "/chunked", b""));
        let (head, body) = client.receive("GET");
        assert!(head.has_token("transfer-encoding", "chunked"));
        assert_eq!(body, CHUNKED);

        assert_eq!(origin.heads(), sent, "the heads were not passed on as sent");
        assert_eq!(origin.connections.load(Ordering::SeqCst), 1);
        assert_eq!((proxy.requests(), proxy.faults()), (4, 0));
        let counts = ["GET", "PUT", "HEAD", "DELETE"].map(|m| proxy.count(m));
        assert_eq!(counts, [2, 1, 1, 0]);
    }

    #[test]
    fn answers_expect_continue_itself_and_forwards_the_rest() {
        let origin = Origin::start();
        let proxy = FaultProxy::start(&origin.endpoint(), ProxyPlan::default());
        let mut client = Client::connect(&proxy);
        let body = b"uploaded after 100 Continue";
        let head = client.head("PUT", "/x", "Expect: 100-continue\r\n", body.len());
        client.to.write_all(&head).unwrap();
        let interim = Head::read(&mut client.from).unwrap().unwrap();
        assert_eq!(interim.bytes(), b"HTTP/1.1 100 Continue\r\n\r\n");
        client.to.write_all(body).unwrap();
        let (head_back, echo) = client.receive("PUT");
        assert_eq!(head_back.status(), Some(200));
        assert!(echo.starts_with(format!("{} ", body.len()).as_bytes()));
        let forwarded = client.head("PUT", "/x", "", body.len());
        assert_eq!(origin.heads(), [forwarded]);
    }

    #[test]
    fn every_second_request_is_unavailable() {
        let origin = Origin::start();
        let proxy = FaultProxy::start(&origin.endpoint(), plan(2, &[ProxyFault::Unavailable]));
        let mut client = Client::connect(&proxy);
        let mut answers = vec![];
        for method in ["GET", "GET", "GET", "HEAD", "GET"] {
            let path = if method == "GET" { "/chunked" } else { "/big" };
            answers.push(client.call(method, path, b""));
        }
        let statuses: Vec<u16> = answers.iter().map(|a| a.0).collect();
        assert_eq!(statuses, [200, 503, 200, 503, 200]);
        let error = String::from_utf8(answers[1].1.clone()).unwrap();
        assert!(error.contains("<Error><Code>SlowDown</Code>"), "{error}");
        assert!(answers[3].1.is_empty(), "a HEAD answer has no body");
        assert_eq!(answers[4].1, CHUNKED);
        assert_eq!(origin.heads().len(), 3);
        assert_eq!((proxy.requests(), proxy.faults()), (5, 2));
    }

    #[test]
    fn truncate_sends_the_head_and_half_the_body_then_closes() {
        let origin = Origin::start();
        let proxy = FaultProxy::start(&origin.endpoint(), plan(1, &[ProxyFault::Truncate]));
        let mut client = Client::connect(&proxy);
        client.send("GET", "/big", b"");
        let head = Head::read(&mut client.from).unwrap().unwrap();
        assert_eq!(head.bytes(), ok_head(big().len()));
        let rest = client.rest();
        assert!(rest == big()[..big().len() / 2], "not the first half");

        let mut client = Client::connect(&proxy);
        client.send("GET", "/chunked", b"");
        let head = Head::read(&mut client.from).unwrap().unwrap();
        assert!(head.has_token("transfer-encoding", "chunked"));
        assert_eq!(client.rest(), CHUNKED[..CHUNKED.len() / 2]);

        let mut client = Client::connect(&proxy);
        client.send("HEAD", "/big", b"");
        assert_eq!(client.rest(), b"", "a response without a body is not sent");

        assert_eq!(origin.heads().len(), 3, "truncated requests are forwarded");
        assert_eq!((proxy.requests(), proxy.faults()), (3, 3));
    }

    #[test]
    fn hang_answers_nothing_and_closes_after_the_wait() {
        let origin = Origin::start();
        let proxy = FaultProxy::start(
            &origin.endpoint(),
            ProxyPlan {
                hang: Duration::from_millis(300),
                ..plan(1, &[ProxyFault::Hang])
            },
        );
        let mut client = Client::connect(&proxy);
        let started = Instant::now();
        client.send("PUT", "/x", &[1; 1000]);
        assert_eq!(client.rest(), b"");
        let waited = started.elapsed();
        assert!(waited >= Duration::from_millis(300), "{waited:?}");
        assert!(waited < Duration::from_secs(5), "{waited:?}");
        assert!(origin.heads().is_empty());
        assert_eq!((proxy.requests(), proxy.faults()), (1, 1));
    }

    #[test]
    fn latency_delays_every_request() {
        let origin = Origin::start();
        let proxy = FaultProxy::start(
            &origin.endpoint(),
            ProxyPlan {
                latency: Duration::from_millis(200),
                ..Default::default()
            },
        );
        let mut client = Client::connect(&proxy);
        for _ in 0..2 {
            let started = Instant::now();
            assert_eq!(client.call("GET", "/chunked", b"").0, 200);
            assert!(started.elapsed() >= Duration::from_millis(200));
        }
    }

    #[test]
    fn default_kinds_cycle_and_a_new_plan_counts_afresh() {
        let origin = Origin::start();
        let proxy = FaultProxy::start(
            &origin.endpoint(),
            ProxyPlan {
                hang: Duration::from_millis(50),
                ..plan(1, &[])
            },
        );
        let mut client = Client::connect(&proxy);
        assert_eq!(client.call("GET", "/chunked", b"").0, 503);
        client.send("GET", "/chunked", b"");
        assert_eq!(client.rest(), b"", "hung");
        let mut client = Client::connect(&proxy);
        client.send("GET", "/chunked", b"");
        Head::read(&mut client.from).unwrap().unwrap();
        assert_eq!(client.rest(), CHUNKED[..CHUNKED.len() / 2]);

        proxy.set_plan(plan(2, &[ProxyFault::Unavailable]));
        let mut client = Client::connect(&proxy);
        let statuses = [0; 3].map(|_| client.call("GET", "/chunked", b"").0);
        assert_eq!(statuses, [200, 503, 200]);
        proxy.set_plan(ProxyPlan::default());
        assert_eq!(client.call("GET", "/chunked", b"").0, 200);
        assert_eq!((proxy.requests(), proxy.faults()), (7, 4));
    }

    #[test]
    fn dropping_the_proxy_closes_its_port_and_connections() {
        let origin = Origin::start();
        let proxy = FaultProxy::start(&origin.endpoint(), ProxyPlan::default());
        let mut idle = Client::connect(&proxy);
        assert_eq!(idle.call("GET", "/chunked", b"").0, 200);
        proxy.set_plan(ProxyPlan {
            hang: Duration::from_secs(600),
            ..plan(1, &[ProxyFault::Hang])
        });
        let mut hung = Client::connect(&proxy);
        hung.send("GET", "/chunked", b"");
        while proxy.requests() < 2 {
            thread::sleep(Duration::from_millis(5));
        }
        let addr = proxy.addr;
        let started = Instant::now();
        drop(proxy);
        assert_eq!(idle.rest(), b"");
        assert_eq!(hung.rest(), b"");
        assert!(started.elapsed() < Duration::from_secs(5));
        assert!(TcpStream::connect(addr).is_err(), "still listening");
    }
}
