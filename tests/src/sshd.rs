//! A throw-away SSH server for the SFTP tests: Debian's `sshd` on a loopback
//! port, with a generated host key, a generated client key for the user
//! running the tests, and an SSH client configuration that trusts exactly
//! that host key. `scripts/test.sh` installs `openssh-server`; the server
//! runs as root (as `sshd` must), so these tests need root.

use cairn_engine::backend::{SftpBackend, SftpConfig, SftpLocation};
use std::fs;
use std::net::TcpStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Where Debian puts the server and its SFTP subsystem.
const SSHD: &str = "/usr/sbin/sshd";
const SFTP_SERVER: &str = "/usr/lib/openssh/sftp-server";

/// A running `sshd`; stopped when dropped.
pub struct SshServer {
    child: Child,
    port: u16,
    user: String,
    dir: tempfile::TempDir,
}

/// Makes an ed25519 key pair at `path` and `path.pub`.
fn keygen(path: &Path) {
    let status = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(path)
        .status()
        .expect("cannot run ssh-keygen: install openssh-client");
    assert!(status.success(), "ssh-keygen failed");
}

impl SshServer {
    /// Starts a server and waits until it accepts connections.
    pub fn start() -> SshServer {
        assert!(
            Path::new(SSHD).exists() && Path::new(SFTP_SERVER).exists(),
            "{SSHD} is missing: run scripts/test.sh, which installs openssh-server"
        );
        // SAFETY: geteuid has no preconditions.
        assert_eq!(unsafe { libc::geteuid() }, 0, "sshd needs root to run");
        let dir = tempfile::tempdir().unwrap();
        let t = dir.path();
        keygen(&t.join("host_key"));
        keygen(&t.join("client_key"));
        fs::copy(t.join("client_key.pub"), t.join("authorized_keys")).unwrap();
        let port = crate::s3::free_ports(1)[0];
        let user = String::from("root");
        fs::write(
            t.join("sshd_config"),
            format!(
                "Port {port}\nListenAddress 127.0.0.1\nHostKey {t}/host_key\n\
                 AuthorizedKeysFile {t}/authorized_keys\nPidFile none\n\
                 PasswordAuthentication no\nKbdInteractiveAuthentication no\n\
                 PermitRootLogin prohibit-password\nStrictModes no\nUsePAM no\n\
                 Subsystem sftp {SFTP_SERVER}\nLogLevel ERROR\n",
                t = t.display()
            ),
        )
        .unwrap();
        let host_key = fs::read_to_string(t.join("host_key.pub")).unwrap();
        let known = format!("[127.0.0.1]:{port} {}", host_key.trim());
        fs::write(t.join("known_hosts"), known + "\n").unwrap();
        fs::write(
            t.join("ssh_config"),
            format!(
                "Host *\n  IdentityFile {t}/client_key\n  IdentitiesOnly yes\n  \
                 UserKnownHostsFile {t}/known_hosts\n  GlobalKnownHostsFile /dev/null\n  \
                 LogLevel ERROR\n",
                t = t.display()
            ),
        )
        .unwrap();
        // The directory sshd's unprivileged half runs in.
        fs::create_dir_all("/run/sshd").unwrap();
        let mut cmd = Command::new(SSHD);
        cmd.arg("-D")
            .arg("-e")
            .arg("-f")
            .arg(t.join("sshd_config"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(fs::File::create(t.join("sshd.log")).unwrap());
        // SAFETY: prctl only sets an attribute of the new process.
        unsafe {
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
                Ok(())
            });
        }
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start sshd: {e}"));
        let mut server = SshServer {
            child,
            port,
            user,
            dir,
        };
        server.wait_ready();
        server
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!("sshd exited ({status}):\n{}", self.log());
            }
            assert!(
                Instant::now() < deadline,
                "sshd did not start:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// What the server logged.
    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.path().join("sshd.log")).unwrap_or_default()
    }

    /// A fresh directory for repositories, on the server's machine (this one).
    pub fn scratch(&self) -> PathBuf {
        self.dir.path().join("files")
    }

    /// The client configuration file: the client key, and the server's host
    /// key as the only known one.
    pub fn ssh_config(&self) -> PathBuf {
        self.dir.path().join("ssh_config")
    }

    /// The command that runs ssh with [`SshServer::ssh_config`], as
    /// `CAIRN_SSH_COMMAND` takes it.
    pub fn ssh_command(&self) -> String {
        format!("ssh -F {}", self.ssh_config().display())
    }

    /// The port the server listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The location of a repository in the absolute directory `path`, as `-r` takes it.
    pub fn location(&self, path: &Path) -> String {
        format!(
            "sftp://{}@127.0.0.1:{}{}",
            self.user,
            self.port,
            path.display()
        )
    }

    /// What a backend for a repository in the absolute directory `path` needs.
    pub fn config(&self, path: &Path) -> SftpConfig {
        SftpConfig {
            location: SftpLocation {
                user: Some(self.user.clone()),
                host: "127.0.0.1".into(),
                port: Some(self.port),
                path: path.display().to_string(),
            },
            ssh_command: self.ssh_command().split(' ').map(str::to_string).collect(),
            timeout: Duration::from_secs(30),
            connections: 4,
        }
    }

    /// The backend for a repository in the absolute directory `path`.
    pub fn backend(&self, path: &Path) -> SftpBackend {
        SftpBackend::new(self.config(path)).unwrap()
    }
}

impl Drop for SshServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
