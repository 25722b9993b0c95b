//! A repository in a directory on another machine, over SFTP.
//!
//! The backend runs the system's `ssh` client (`ssh … -s HOST sftp`), so
//! logins use the user's SSH agent, identity files and configuration, and
//! the server's host key is checked against `known_hosts`: the backend adds
//! `StrictHostKeyChecking=yes` and `BatchMode=yes`, so an unknown or changed
//! key fails the connection instead of being accepted or asked about. One
//! SSH connection carries every request, many at a time.
//!
//! Files are written under a temporary name, flushed to the server's disk
//! (`fsync@openssh.com`) and then given their name with a hard link
//! (`hardlink@openssh.com`), which fails if the name exists: a create is
//! atomic and never replaces a file (SPEC §2.3).

use super::{layout, stored_differs, too_large, Backend, FileKind, SftpLocation};
use crate::error::{Error, Result};
use openssh_sftp_client::error::SftpErrorKind;
use openssh_sftp_client::file::File;
use openssh_sftp_client::metadata::Permissions;
use openssh_sftp_client::{Sftp, SftpOptions};
use std::collections::hash_map::RandomState;
use std::future::Future;
use std::hash::{BuildHasher, Hasher};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};
use tokio::io::AsyncReadExt;

/// Threads of the runtime the requests run on: they only wait for the network.
const RUNTIME_THREADS: usize = 2;
/// The most of `ssh`'s complaints kept for an error message.
const MAX_SSH_MESSAGE: usize = 4096;

/// Everything an SFTP backend needs; the caller gathers it.
#[derive(Clone, Debug)]
pub struct SftpConfig {
    /// The host and directory.
    pub location: SftpLocation,
    /// The program that starts SSH and its first arguments (`["ssh"]`
    /// normally; `["ssh", "-F", "FILE"]` for another configuration). The
    /// backend adds its options, the destination and the subsystem.
    pub ssh_command: Vec<String>,
    /// How long connecting, or any one request, may take before it is
    /// abandoned as failed (and repeated, if a [`super::Retrying`] wraps
    /// the backend).
    pub timeout: Duration,
    /// Requests bulk work keeps in flight ([`Backend::requests_in_flight`]);
    /// all share one SSH connection.
    pub connections: usize,
}

/// Stores repository files in a directory reached over SSH.
pub struct SftpBackend {
    config: SftpConfig,
    /// The connection in use; made on first use, and again after a failure.
    session: Mutex<Option<Arc<Session>>>,
    runtime: tokio::runtime::Runtime,
}

/// One SSH connection with its SFTP channel.
struct Session {
    sftp: Sftp,
    /// `ssh`, killed when the session is dropped.
    _ssh: tokio::process::Child,
    hardlink: bool,
    posix_rename: bool,
    fsync: bool,
}

impl std::fmt::Debug for SftpBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SftpBackend({})", self.config.location)
    }
}

/// Why a request failed, before it becomes the engine's error.
enum Failure {
    /// The server answered with an error.
    Refused(SftpErrorKind, String),
    /// The request did not finish in time.
    TimedOut,
    /// The connection broke, or the server spoke nonsense.
    Broken(String),
}

impl From<openssh_sftp_client::Error> for Failure {
    fn from(e: openssh_sftp_client::Error) -> Self {
        match e {
            openssh_sftp_client::Error::SftpError(kind, message) => {
                Failure::Refused(kind, message.to_string())
            }
            other => Failure::Broken(other.to_string()),
        }
    }
}

type Outcome<T> = std::result::Result<T, Failure>;

impl SftpBackend {
    /// A backend for `config`; it connects on first use.
    pub fn new(config: SftpConfig) -> Result<Self> {
        if config.ssh_command.is_empty() {
            return Err(Error::Invalid("the SSH command is empty".into()));
        }
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(RUNTIME_THREADS)
            .thread_name("cairn-sftp")
            .on_thread_start(ignore_broken_pipes)
            .enable_all()
            .build()
            .map_err(|e| Error::io("cannot start the SFTP client", e))?;
        Ok(SftpBackend {
            config,
            session: Mutex::new(None),
            runtime,
        })
    }

    /// The repository's path for `relative` (`/`-separated).
    fn path(&self, relative: &str) -> String {
        match (self.config.location.path.as_str(), relative) {
            (root, "") => root.to_string(),
            ("/", r) => format!("/{r}"),
            (root, r) => format!("{root}/{r}"),
        }
    }

    /// What the user sees for `relative`.
    fn show(&self, relative: &str) -> String {
        let location = self.config.location.to_string();
        match relative {
            "" => location,
            r => format!("{}/{r}", location.trim_end_matches('/')),
        }
    }

    /// The connection, made now if there is none.
    fn session(&self) -> Result<Arc<Session>> {
        let mut slot = self.session.lock().unwrap();
        if let Some(s) = &*slot {
            return Ok(s.clone());
        }
        let session = Arc::new(self.runtime.block_on(self.connect())?);
        *slot = Some(session.clone());
        Ok(session)
    }

    /// The arguments that make `ssh` open the SFTP subsystem at the location.
    fn ssh_arguments(&self) -> Vec<String> {
        let l = &self.config.location;
        let mut args: Vec<String> = self.config.ssh_command[1..].to_vec();
        for option in [
            "BatchMode=yes",
            "StrictHostKeyChecking=yes",
            "ServerAliveInterval=15",
            "ServerAliveCountMax=3",
            "ClearAllForwardings=yes",
        ] {
            args.extend(["-o".into(), option.into()]);
        }
        args.push(format!(
            "-oConnectTimeout={}",
            self.config.timeout.as_secs().max(1)
        ));
        if let Some(port) = l.port {
            args.extend(["-p".into(), port.to_string()]);
        }
        if let Some(user) = &l.user {
            args.extend(["-l".into(), user.clone()]);
        }
        args.extend([
            "-T".into(),
            "-s".into(),
            "--".into(),
            l.host.clone(),
            "sftp".into(),
        ]);
        args
    }

    /// Starts `ssh` and the SFTP session over it.
    async fn connect(&self) -> Result<Session> {
        let program = &self.config.ssh_command[0];
        let mut ssh = tokio::process::Command::new(program)
            .args(self.ssh_arguments())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| {
                Error::io(
                    format!("cannot run {program:?} to reach {}", self.show("")),
                    e,
                )
            })?;
        let (stdin, stdout) = (ssh.stdin.take().unwrap(), ssh.stdout.take().unwrap());
        let mut stderr = ssh.stderr.take().unwrap();
        let complaints = Arc::new(Mutex::new(String::new()));
        let kept = complaints.clone();
        tokio::spawn(async move {
            let mut buf = [0; 1024];
            while let Ok(n @ 1..) = stderr.read(&mut buf).await {
                let mut text = kept.lock().unwrap();
                if text.len() < MAX_SSH_MESSAGE {
                    text.push_str(&String::from_utf8_lossy(&buf[..n]));
                }
            }
        });
        let started = Sftp::new(stdin, stdout, SftpOptions::new());
        let sftp = match tokio::time::timeout(self.config.timeout, started).await {
            Ok(Ok(sftp)) => sftp,
            failed => {
                let timed_out = failed.is_err();
                let _ = ssh.start_kill();
                let _ = tokio::time::timeout(Duration::from_secs(2), ssh.wait()).await;
                // Let the reader take what ssh said before it died.
                tokio::time::sleep(Duration::from_millis(20)).await;
                let said = complaints.lock().unwrap().clone();
                return Err(self.connect_error(&said, timed_out));
            }
        };
        Ok(Session {
            hardlink: sftp.support_hardlink(),
            posix_rename: sftp.support_posix_rename(),
            fsync: sftp.support_fsync(),
            sftp,
            _ssh: ssh,
        })
    }

    /// The error for a connection that failed, from what `ssh` said.
    fn connect_error(&self, said: &str, timed_out: bool) -> Error {
        let at = self.show("");
        let said = said
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with("Warning: Permanently added"))
            .collect::<Vec<_>>()
            .join("; ");
        let host = &self.config.location.host;
        let hint = if said.contains("Host key verification failed") || said.contains("host key") {
            format!(
                "the host key of {host} is not in known_hosts, or differs from it: check \
                 the key and add it (ssh-keyscan, or connect once with ssh)"
            )
        } else if said.contains("Permission denied") {
            "the server refused the login: check the user name and that an SSH key \
             for it is in the agent or an identity file"
                .into()
        } else if said.contains("subsystem request failed") {
            format!("{host} offers no SFTP subsystem")
        } else if timed_out || said.contains("timed out") || said.contains("Connection reset") {
            let why = match said.is_empty() {
                true => format!("no answer within {} s", self.config.timeout.as_secs()),
                false => said,
            };
            return Error::Transient(format!("cannot connect to {at}: {why}"));
        } else {
            match said.is_empty() {
                true => "ssh ended without saying why".into(),
                false => return Error::StorageRefused(format!("cannot connect to {at}: {said}")),
            }
        };
        match said.is_empty() {
            true => Error::StorageRefused(format!("cannot connect to {at}: {hint}")),
            false => Error::StorageRefused(format!("cannot connect to {at}: {said} ({hint})")),
        }
    }

    /// Runs `request` on the connection, within the timeout; a broken or
    /// silent connection is dropped, so that the next request makes a new one.
    fn call<T, F, Fut>(&self, request: F) -> Result<Outcome<T>>
    where
        F: FnOnce(Arc<Session>) -> Fut,
        Fut: Future<Output = Outcome<T>>,
    {
        let session = self.session()?;
        let outcome = self.runtime.block_on(async {
            tokio::time::timeout(self.config.timeout, request(session.clone()))
                .await
                .unwrap_or(Err(Failure::TimedOut))
        });
        if matches!(outcome, Err(Failure::TimedOut | Failure::Broken(_))) {
            let mut slot = self.session.lock().unwrap();
            if slot.as_ref().is_some_and(|s| Arc::ptr_eq(s, &session)) {
                *slot = None;
            }
        }
        Ok(outcome)
    }

    /// The engine's error for a failed request to `verb` `relative`, the
    /// file `name` of `kind`.
    fn error(&self, verb: &str, kind: FileKind, name: &str, relative: &str, f: Failure) -> Error {
        let at = self.show(relative);
        match f {
            Failure::Refused(SftpErrorKind::NoSuchFile, _) => {
                Error::Missing(format!("{} {name}", kind.name()))
            }
            Failure::Refused(SftpErrorKind::PermDenied, _) => Error::StorageRefused(format!(
                "the SFTP server refused to {verb} {at}: permission denied"
            )),
            Failure::Refused(SftpErrorKind::OpUnsupported, message) => {
                Error::StorageRefused(format!("cannot {verb} {at}: {message}"))
            }
            Failure::Refused(_, message) => Error::io(
                format!("cannot {verb} {at}"),
                std::io::Error::other(message),
            ),
            Failure::TimedOut => Error::Transient(format!(
                "cannot {verb} {at}: no answer within {} s",
                self.config.timeout.as_secs_f64()
            )),
            Failure::Broken(why) => {
                Error::Transient(format!("cannot {verb} {at}: the connection failed: {why}"))
            }
        }
    }

    /// The size of `relative`, or the failure.
    fn stat(&self, kind: FileKind, name: &str) -> Result<openssh_sftp_client::metadata::MetaData> {
        let relative = layout::path(kind, name)?;
        let path = self.path(&relative);
        self.call(|s| async move { Ok(s.sftp.fs().metadata(&path).await?) })?
            .map_err(|f| self.error("read", kind, name, &relative, f))
    }

    /// Makes the directory `relative` (owner only) unless it exists.
    async fn make_dir(s: &Session, path: &str) -> Outcome<()> {
        let mut fs = s.sftp.fs();
        match fs.create_dir(path).await {
            Ok(()) => Ok(fs.set_permissions(path, owner_only(true)).await?),
            Err(e) => match fs.metadata(path).await {
                Ok(m) if m.file_type().is_some_and(|t| t.is_dir()) => Ok(()),
                _ => Err(e.into()),
            },
        }
    }

    /// Writes `bytes` to the new file `temporary`, flushed to the server's disk.
    async fn write_new(s: &Session, temporary: &str, bytes: &[u8]) -> Outcome<()> {
        let mut file: File = s
            .sftp
            .options()
            .write(true)
            .create_new(true)
            .open(temporary)
            .await?;
        file.set_permissions(owner_only(false)).await?;
        file.write_all(bytes).await?;
        if s.fsync {
            file.sync_all().await?;
        }
        Ok(file.close().await?)
    }

    /// Creates `path` with `bytes` unless a file has that name: `Ok(false)`
    /// when one has.
    async fn create_at(s: Arc<Session>, dir: String, path: String, bytes: &[u8]) -> Outcome<bool> {
        if !s.hardlink {
            return Err(Failure::Refused(
                SftpErrorKind::OpUnsupported,
                "the SFTP server does not offer hardlink@openssh.com, which cairn \
                 needs to create files without replacing any"
                    .into(),
            ));
        }
        let temporary = format!(
            "{dir}/.tmp-{:016x}",
            RandomState::new().build_hasher().finish()
        );
        let written = match Self::write_new(&s, &temporary, bytes).await {
            Err(Failure::Refused(SftpErrorKind::NoSuchFile, _)) => {
                // A pack's fan-out directory, made on first use.
                Self::make_dir(&s, &dir).await?;
                Self::write_new(&s, &temporary, bytes).await
            }
            other => other,
        };
        let mut fs = s.sftp.fs();
        let linked = match written {
            Ok(()) => fs.hard_link(&temporary, &path).await,
            Err(e) => {
                let _ = fs.remove_file(&temporary).await;
                return Err(e);
            }
        };
        let _ = fs.remove_file(&temporary).await;
        match linked {
            Ok(()) => Ok(true),
            // The link fails when the name exists; the caller looks.
            Err(openssh_sftp_client::Error::SftpError(SftpErrorKind::Failure, _)) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    /// Writes `bytes` to a temporary file in `dir`, then renames it over `path`.
    async fn replace_at(s: Arc<Session>, dir: String, path: String, bytes: &[u8]) -> Outcome<()> {
        if !s.posix_rename {
            return Err(Failure::Refused(
                SftpErrorKind::OpUnsupported,
                "the SFTP server does not offer posix-rename@openssh.com, which cairn \
                 needs to replace a file in one step"
                    .into(),
            ));
        }
        let temporary = format!(
            "{dir}/.tmp-{:016x}",
            RandomState::new().build_hasher().finish()
        );
        let mut fs = s.sftp.fs();
        let renamed = match Self::write_new(&s, &temporary, bytes).await {
            Ok(()) => fs.rename(&temporary, &path).await.map_err(Failure::from),
            Err(e) => Err(e),
        };
        if renamed.is_err() {
            let _ = fs.remove_file(&temporary).await;
        }
        renamed
    }

    /// `length` bytes at `offset` of `path`, fewer if the file ends first.
    async fn read_range(
        s: Arc<Session>,
        path: String,
        offset: u64,
        length: u64,
    ) -> Outcome<Vec<u8>> {
        use tokio::io::AsyncSeekExt;
        let mut file = s.sftp.open(&path).await?;
        file.seek(std::io::SeekFrom::Start(offset))
            .await
            .map_err(|e| Failure::Broken(e.to_string()))?;
        let mut bytes = Vec::with_capacity(length as usize);
        while (bytes.len() as u64) < length {
            let want = (length - bytes.len() as u64).min(u32::MAX as u64) as u32;
            match file.read(want, Default::default()).await? {
                Some(piece) => bytes.extend_from_slice(&piece),
                None => break,
            }
        }
        file.close().await?;
        Ok(bytes)
    }
}

/// Makes a write to `ssh` after it has died fail with `EPIPE` on this
/// thread, rather than kill the process with `SIGPIPE` (which a program
/// may have restored to its default, to end quietly when its output closes).
fn ignore_broken_pipes() {
    // SAFETY: changes only this thread's signal mask, with a set built here.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGPIPE);
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
    }
}

/// Read and write for the owner alone, and search for a directory.
fn owner_only(dir: bool) -> Permissions {
    let mut p = Permissions::new();
    p.set_read_by_owner(true)
        .set_write_by_owner(true)
        .set_execute_by_owner(dir);
    p
}

impl Backend for SftpBackend {
    fn location(&self) -> String {
        self.config.location.to_string()
    }

    fn requests_in_flight(&self) -> usize {
        self.config.connections
    }

    fn create_repository(&self) -> Result<()> {
        if self.exists()? {
            return Err(Error::RepositoryExists(self.location()));
        }
        let root = self.path("");
        let dirs: Vec<String> = layout::DIRS.iter().map(|d| self.path(d)).collect();
        self.call(|s| async move {
            // The root's parents are made as `mkdir -p` would.
            let mut prefix = String::new();
            for part in root.split_inclusive('/') {
                prefix.push_str(part);
                let dir = prefix.trim_end_matches('/');
                if !dir.is_empty() && dir != "." && dir != ".." {
                    Self::make_dir(&s, dir).await?;
                }
            }
            for dir in &dirs {
                Self::make_dir(&s, dir).await?;
            }
            Ok(())
        })?
        .map_err(|f| self.error("create", FileKind::Config, "", "", f))
    }

    fn exists(&self) -> Result<bool> {
        match self.stat(FileKind::Config, "config") {
            Ok(_) => Ok(true),
            Err(Error::Missing(_)) => Ok(false),
            Err(e) => Err(e),
        }
    }

    fn create(&self, kind: FileKind, name: &str, bytes: &[u8]) -> Result<()> {
        let relative = layout::path(kind, name)?;
        let (dir, path) = (self.path(&layout::dir(kind, name)), self.path(&relative));
        let created = self
            .call(|s| Self::create_at(s, dir, path, bytes))?
            .map_err(|f| self.error("create", kind, name, &relative, f))?;
        if created {
            return Ok(());
        }
        let stored = match self.size(kind, name) {
            Err(Error::Missing(_)) => {
                return Err(Error::io(
                    format!("cannot create {}", self.show(&relative)),
                    std::io::Error::other("the SFTP server refused to link it into place"),
                ))
            }
            _ if kind == FileKind::Config => return Err(Error::RepositoryExists(self.location())),
            other => other?,
        };
        match stored == bytes.len() as u64 {
            true => Ok(()),
            false => Err(stored_differs(kind, name, stored, bytes.len() as u64)),
        }
    }

    fn replace(&self, kind: FileKind, name: &str, bytes: &[u8]) -> Result<()> {
        super::replaceable(kind)?;
        let relative = layout::path(kind, name)?;
        let (dir, path) = (self.path(&layout::dir(kind, name)), self.path(&relative));
        self.call(|s| Self::replace_at(s, dir, path, bytes))?
            .map_err(|f| self.error("replace", kind, name, &relative, f))
    }

    fn read(&self, kind: FileKind, name: &str) -> Result<Vec<u8>> {
        let relative = layout::path(kind, name)?;
        let size = self.size(kind, name)?;
        if size > kind.max_len() {
            return Err(too_large(self.show(&relative), kind, size));
        }
        let path = self.path(&relative);
        // Never more than the size just checked, whatever the file is now.
        let bytes = self
            .call(|s| Self::read_range(s, path, 0, size))?
            .map_err(|f| self.error("read", kind, name, &relative, f))?;
        match bytes.len() as u64 == size {
            true => Ok(bytes),
            false => Err(Error::Invalid(format!(
                "{} changed while it was read ({size} bytes, then {})",
                self.show(&relative),
                bytes.len()
            ))),
        }
    }

    fn read_at(&self, kind: FileKind, name: &str, offset: u64, length: u64) -> Result<Vec<u8>> {
        let relative = layout::path(kind, name)?;
        let truncated = || {
            Error::Invalid(format!(
                "{} is truncated (reading {length} bytes at {offset})",
                self.show(&relative)
            ))
        };
        if length == 0 {
            return match self.size(kind, name)? >= offset {
                true => Ok(Vec::new()),
                false => Err(truncated()),
            };
        }
        if length > kind.max_len() {
            return Err(truncated());
        }
        let path = self.path(&relative);
        let bytes = self
            .call(|s| Self::read_range(s, path, offset, length))?
            .map_err(|f| self.error("read", kind, name, &relative, f))?;
        match bytes.len() as u64 == length {
            true => Ok(bytes),
            false => Err(truncated()),
        }
    }

    fn size(&self, kind: FileKind, name: &str) -> Result<u64> {
        let relative = layout::path(kind, name)?;
        self.stat(kind, name)?.len().ok_or_else(|| {
            Error::Invalid(format!(
                "the SFTP server gives no size for {}",
                self.show(&relative)
            ))
        })
    }

    fn modified(&self, kind: FileKind, name: &str) -> Result<SystemTime> {
        let relative = layout::path(kind, name)?;
        self.stat(kind, name)?
            .modified()
            .map(|t| t.as_system_time())
            .ok_or_else(|| {
                Error::Invalid(format!(
                    "the SFTP server gives no modification time for {}",
                    self.show(&relative)
                ))
            })
    }

    fn list(&self, kind: FileKind) -> Result<Vec<String>> {
        use futures_util::TryStreamExt;
        if kind == FileKind::Config {
            return Ok(match self.exists()? {
                true => vec!["config".into()],
                false => vec![],
            });
        }
        let top = match kind {
            FileKind::Pack => "data".to_string(),
            _ => layout::dir(kind, ""),
        };
        let root = self.path("");
        let dir = self.path(&top);
        let entries = self
            .call(|s| async move {
                let names = |path: String| {
                    let s = s.clone();
                    async move {
                        let mut fs = s.sftp.fs();
                        let listing = fs.open_dir(&path).await?.read_dir();
                        let entries: Vec<_> = listing.try_collect().await?;
                        Ok::<_, Failure>(
                            entries
                                .into_iter()
                                .map(|e| {
                                    (e.filename().to_string_lossy().into_owned(), e.file_type())
                                })
                                .filter(|(n, _)| n != "." && n != "..")
                                .map(|(n, t)| {
                                    (format!("{path}/{n}"), t.is_some_and(|t| t.is_dir()))
                                })
                                .collect::<Vec<_>>(),
                        )
                    }
                };
                let mut found = match names(dir).await {
                    // A missing directory is an empty one (SPEC.md §2.1):
                    // older repositories have no `marks/` or `journal/`.
                    Err(Failure::Refused(SftpErrorKind::NoSuchFile, _)) => return Ok(Vec::new()),
                    other => other?,
                };
                if kind == FileKind::Pack {
                    let subdirs: Vec<String> = found
                        .iter()
                        .filter(|(_, d)| *d)
                        .map(|(p, _)| p.clone())
                        .collect();
                    for sub in subdirs {
                        found.extend(names(sub).await?);
                    }
                }
                Ok(found)
            })?
            .map_err(|f| self.error("list", kind, "", &top, f))?;
        let prefix = match root.as_str() {
            "/" => "/".to_string(),
            r => format!("{r}/"),
        };
        let mut names: Vec<String> = entries
            .iter()
            .filter_map(|(path, _)| layout::name_at(kind, path.strip_prefix(&prefix)?))
            .map(str::to_string)
            .collect();
        names.sort();
        Ok(names)
    }

    fn remove(&self, kind: FileKind, name: &str) -> Result<()> {
        if kind == FileKind::Config {
            return Err(Error::Invalid("the config cannot be removed".into()));
        }
        let relative = layout::path(kind, name)?;
        let path = self.path(&relative);
        self.call(|s| async move { Ok(s.sftp.fs().remove_file(&path).await?) })?
            .map_err(|f| self.error("remove", kind, name, &relative, f))
    }
}
