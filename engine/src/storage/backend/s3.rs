//! A repository in an S3-compatible object store, through Apache OpenDAL.
//!
//! Files are objects named as on the local backend, below the location's
//! prefix (SPEC §2). Creates are conditional (`If-None-Match: *`), so storage
//! refuses to replace an object; large files go up in parts.

use super::s3_lock::{BucketLock, LockClient};
use super::{layout, stored_differs, too_large, Backend, FileKind, S3Location};
use crate::error::{Error, Result};
use bytes::Bytes;
use opendal::{ErrorKind, Operator};
use std::fmt;
use std::future::IntoFuture;
use std::ops::Range;
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

/// Files larger than this are uploaded in parts of this size (S3 needs at
/// least 5 MiB per part but the last); a part is copied once on its way.
/// A pack of the default size goes up in one request, not four.
const PART_SIZE: usize = 32 << 20;
/// Parts of one file uploaded at once.
const PARTS_IN_FLIGHT: usize = 4;
/// Threads of the runtime the requests run on: they only wait for the network.
const RUNTIME_THREADS: usize = 2;

/// The credentials requests are signed with. Debug output hides the secrets.
#[derive(Clone)]
pub struct S3Credentials {
    /// The access key ID (`AWS_ACCESS_KEY_ID`).
    pub access_key_id: String,
    /// The secret access key (`AWS_SECRET_ACCESS_KEY`).
    pub secret_access_key: String,
    /// A session token for temporary credentials (`AWS_SESSION_TOKEN`).
    pub session_token: Option<String>,
}

impl fmt::Debug for S3Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("S3Credentials")
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"<hidden>")
            .field(
                "session_token",
                &self.session_token.as_ref().map(|_| "<hidden>"),
            )
            .finish()
    }
}

/// Everything an S3 backend needs; the caller gathers it (the engine reads
/// no environment).
#[derive(Clone, Debug)]
pub struct S3Config {
    /// Endpoint, bucket and prefix.
    pub location: S3Location,
    /// The region requests are signed for (`us-east-1` for most self-hosted stores).
    pub region: String,
    /// The credentials.
    pub credentials: S3Credentials,
    /// How long a request, or any read or write of a body within one, may
    /// take before it is abandoned as failed (and repeated, if a
    /// [`super::Retrying`] wraps the backend).
    pub timeout: Duration,
    /// Requests bulk work keeps in flight ([`Backend::requests_in_flight`]).
    pub connections: usize,
}

/// Stores repository files as objects under a prefix of a bucket.
pub struct S3Backend {
    location: S3Location,
    connections: usize,
    /// The config, once read: it is never removed, and only this process
    /// replaces it (a key rotation, which updates this copy), so later
    /// checks and reads of it need no request. (Its bytes
    /// are authenticated by whoever uses them, as any read's are.)
    config: Mutex<Option<Vec<u8>>>,
    /// The Object Lock requests.
    lock: LockClient,
    /// For how many days new files of the kinds kept are kept from deletion.
    retain_days: Mutex<Option<u32>>,
    op: Operator,
    /// Runs the requests: the [`Backend`] interface is synchronous.
    runtime: tokio::runtime::Runtime,
}

impl fmt::Debug for S3Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "S3Backend({})", self.location)
    }
}

impl S3Backend {
    /// A backend for `config` (no request is made until used). Requests use
    /// path-style addressing (`ENDPOINT/BUCKET/KEY`), which self-hosted
    /// stores need, and only the credentials given.
    pub fn new(config: S3Config) -> Result<Self> {
        let S3Config {
            location,
            region,
            credentials,
            timeout,
            connections,
        } = config;
        let mut builder = opendal::services::S3::default()
            .endpoint(&location.endpoint)
            .bucket(&location.bucket)
            .root(&format!("/{}", location.prefix))
            .region(&region)
            .access_key_id(&credentials.access_key_id)
            .secret_access_key(&credentials.secret_access_key)
            .disable_config_load()
            .disable_ec2_metadata();
        if let Some(token) = &credentials.session_token {
            builder = builder.session_token(token);
        }
        let lock = LockClient::new(&location, &region, &credentials, timeout)?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(RUNTIME_THREADS)
            .thread_name("cairn-s3")
            .enable_all()
            .build()
            .map_err(|e| Error::io("cannot start the S3 client", e))?;
        let op = {
            let _in_runtime = runtime.enter();
            let timeouts = opendal::layers::TimeoutLayer::new()
                .with_timeout(timeout)
                .with_io_timeout(timeout);
            Operator::new(builder)
                .map_err(|e| Error::Invalid(format!("cannot use {location}: {}", e.message())))?
                .layer(timeouts)
                .finish()
        };
        Ok(S3Backend {
            location,
            connections,
            config: Mutex::default(),
            lock,
            retain_days: Mutex::default(),
            op,
            runtime,
        })
    }

    /// Runs one request to completion.
    fn block<T>(
        &self,
        request: impl IntoFuture<Output = opendal::Result<T>>,
    ) -> opendal::Result<T> {
        self.runtime.block_on(request.into_future())
    }

    /// What the user sees for the object at `key`.
    fn show(&self, key: &str) -> String {
        format!("{}/{key}", self.location)
    }

    /// The engine's error for a failed request to `verb` the object at `key`
    /// (the file `name` of `kind`): a missing object, a permanent refusal
    /// that says what to fix, a failure that may pass (a timeout, a lost
    /// connection, a busy server, a truncated answer), or another storage error.
    fn error(&self, verb: &str, kind: FileKind, name: &str, key: &str, e: opendal::Error) -> Error {
        let message = e.message();
        let code = |c: &str| message.contains(&format!("\"{c}\""));
        let at = &self.location.endpoint;
        let refused = Error::StorageRefused;
        match e.kind() {
            ErrorKind::ConfigInvalid if code("NoSuchBucket") => self.no_bucket(),
            ErrorKind::NotFound => Error::Missing(format!("{} {name}", kind.name())),
            ErrorKind::PermissionDenied if code("InvalidAccessKeyId") => refused(format!(
                "S3 at {at} does not know the access key: check AWS_ACCESS_KEY_ID"
            )),
            ErrorKind::PermissionDenied if code("SignatureDoesNotMatch") => refused(format!(
                "S3 at {at} refused the credentials (the signature does not match): \
                 check AWS_SECRET_ACCESS_KEY"
            )),
            ErrorKind::PermissionDenied if code("AccessDenied") => refused(format!(
                "S3 at {at} denied access to {}: the credentials may not {verb} it",
                self.show(key)
            )),
            ErrorKind::PermissionDenied => refused(format!(
                "S3 at {at} refused to {verb} {}: check AWS_ACCESS_KEY_ID and \
                 AWS_SECRET_ACCESS_KEY, and that they may use bucket {}",
                self.show(key),
                self.location.bucket
            )),
            _ if refused_connection(&e) => Error::StorageRefused(format!(
                "nothing answers at {at} (connection refused) for {}: check the \
                 location, and that the server runs",
                self.location
            )),
            _ if e.is_temporary() => {
                Error::Transient(format!("cannot {verb} {}: {}", self.show(key), cause(&e)))
            }
            _ => Error::io(
                format!("cannot {verb} {}", self.show(key)),
                std::io::Error::other(cause(&e)),
            ),
        }
    }

    /// Until when files of `kind` created now are kept from deletion:
    /// `None` unless a retention is set and `kind` is kept.
    fn retention_of(&self, kind: FileKind) -> Option<SystemTime> {
        let days = (*self.retain_days.lock().expect("not poisoned")).filter(|_| kind.retained())?;
        Some(SystemTime::now() + Duration::from_secs(u64::from(days) * 86_400))
    }

    /// Keeps the file just created at `key` from deletion, when it is of a
    /// kind kept and a retention is set.
    fn retain_created(&self, kind: FileKind, key: &str) -> Result<()> {
        match self.retention_of(kind) {
            Some(until) => self.runtime.block_on(self.lock.retain(key, until)),
            None => Ok(()),
        }
    }

    fn no_bucket(&self) -> Error {
        Error::StorageRefused(format!(
            "no bucket {} at {}: create it, or correct the location",
            self.location.bucket, self.location.endpoint
        ))
    }

    /// The metadata of a file.
    fn stat(&self, kind: FileKind, name: &str) -> Result<opendal::Metadata> {
        let key = layout::path(kind, name)?;
        self.block(self.op.stat(&key))
            .map_err(|e| self.error("read", kind, name, &key, e))
    }

    /// Fails unless the bucket can be listed: tells a missing bucket or bad
    /// credentials apart from a missing object, which a `HEAD` cannot.
    fn check_bucket(&self) -> Result<()> {
        use futures_util::TryStreamExt;
        self.block(async {
            let mut lister = self.op.lister_with("").limit(1).await?;
            lister.try_next().await.map(drop)
        })
        .map_err(|e| match e.kind() {
            ErrorKind::NotFound => self.no_bucket(),
            _ => self.error("list", FileKind::Config, "", "", e),
        })
    }

    /// The bytes of `range` of the object at `key`, copied into `out` as
    /// they arrive (so a large file is not held twice).
    async fn fetch(&self, key: &str, range: Range<u64>, out: &mut Vec<u8>) -> opendal::Result<()> {
        out.clear();
        out.reserve_exact((range.end - range.start) as usize);
        self.op.reader(key).await?.read_into(out, range).await?;
        Ok(())
    }

    /// The object at `key` in one request, or its first `most` bytes when
    /// it is longer.
    async fn fetch_at_most(&self, key: &str, most: u64) -> opendal::Result<Vec<u8>> {
        use futures_util::TryStreamExt;
        let mut stream = self.op.reader(key).await?.into_stream(..).await?;
        let mut bytes = Vec::new();
        while let Some(piece) = stream.try_next().await? {
            let piece = piece.to_bytes();
            let room = (most - bytes.len() as u64).min(piece.len() as u64) as usize;
            bytes.extend_from_slice(&piece[..room]);
            if bytes.len() as u64 == most {
                break;
            }
        }
        Ok(bytes)
    }

    /// Uploads `bytes` to `key` unless an object is there, in parts when large.
    async fn put_new(&self, key: &str, bytes: Bytes) -> opendal::Result<()> {
        let mut writer = self
            .op
            .writer_with(key)
            .if_not_exists(true)
            .chunk(PART_SIZE)
            .concurrent(PARTS_IN_FLIGHT)
            .await?;
        for start in (0..bytes.len()).step_by(PART_SIZE) {
            let part = bytes.slice(start..bytes.len().min(start + PART_SIZE));
            if let Err(e) = writer.write(part).await {
                let _ = writer.abort().await;
                return Err(e);
            }
        }
        match writer.close().await {
            Ok(_) => Ok(()),
            Err(e) => {
                // A refused multipart upload would otherwise keep its parts.
                let _ = writer.abort().await;
                Err(e)
            }
        }
    }
}

/// True when the server's host refused the connection: no server listens
/// there, which repeating the request does not change.
fn refused_connection(e: &opendal::Error) -> bool {
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        if let Some(io) = s.downcast_ref::<std::io::Error>() {
            if io.kind() == std::io::ErrorKind::ConnectionRefused {
                return true;
            }
        }
        source = s.source();
    }
    false
}

/// What went wrong in a request, with its causes: the message without
/// OpenDAL's request context, which repeats what the caller shows.
fn cause(e: &opendal::Error) -> String {
    let mut text = match e.message() {
        "" => e.kind().to_string(),
        message => message.to_string(),
    };
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        text = format!("{text}: {s}");
        source = s.source();
    }
    text
}

impl Backend for S3Backend {
    fn location(&self) -> String {
        self.location.to_string()
    }

    fn requests_in_flight(&self) -> usize {
        self.connections
    }

    fn create_repository(&self) -> Result<()> {
        // Objects need no directories: an empty prefix is a new repository.
        match self.exists()? {
            true => Err(Error::RepositoryExists(self.location())),
            false => Ok(()),
        }
    }

    fn exists(&self) -> Result<bool> {
        // A GET rather than a HEAD: the open that follows wants the bytes.
        match self.read(FileKind::Config, "config") {
            Ok(_) => Ok(true),
            Err(Error::Missing(_)) => self.check_bucket().map(|()| false),
            Err(Error::StorageRefused(_)) => {
                // Listing tells best why a request is refused.
                self.check_bucket()?;
                self.read(FileKind::Config, "config").map(|_| true)
            }
            Err(e) => Err(e),
        }
    }

    fn create(&self, kind: FileKind, name: &str, bytes: &[u8]) -> Result<()> {
        self.create_owned(kind, name, Bytes::copy_from_slice(bytes))
    }

    fn create_owned(&self, kind: FileKind, name: &str, bytes: Bytes) -> Result<()> {
        let key = layout::path(kind, name)?;
        let len = bytes.len() as u64;
        let e = match self.block(self.put_new(&key, bytes)) {
            Ok(()) => return self.retain_created(kind, &key),
            Err(e) => e,
        };
        if e.kind() != ErrorKind::ConditionNotMatch {
            return Err(self.error("create", kind, name, &key, e));
        }
        if kind == FileKind::Config {
            return Err(Error::RepositoryExists(self.location()));
        }
        let stored = self.size(kind, name)?;
        match stored == len {
            // Perhaps stored by an attempt whose retention was not set.
            true => self.retain_created(kind, &key),
            false => Err(stored_differs(kind, name, stored, len)),
        }
    }

    fn replace(&self, kind: FileKind, name: &str, bytes: &[u8]) -> Result<()> {
        super::replaceable(kind)?;
        let key = layout::path(kind, name)?;
        // A PUT replaces an object whole: readers see one version or the other.
        self.block(self.op.write(&key, bytes.to_vec()))
            .map_err(|e| self.error("replace", kind, name, &key, e))?;
        if kind == FileKind::Config {
            *self.config.lock().expect("not poisoned") = Some(bytes.to_vec());
        }
        self.retain_created(kind, &key)
    }

    fn retain_for(&self, days: u32) -> Result<()> {
        let state = self.runtime.block_on(self.lock.bucket_lock())?;
        match state {
            BucketLock::Enabled => {}
            // Object Lock can only be turned on when a bucket is made.
            BucketLock::NoBucket => self.runtime.block_on(self.lock.create_locked_bucket())?,
            BucketLock::Absent => {
                return Err(Error::StorageRefused(format!(
                    "bucket {} at {} has no Object Lock (or the server does not offer it): \
                     files cannot be kept from deletion there; use a bucket made with Object Lock, \
                     or leave out --retain-days",
                    self.location.bucket, self.location.endpoint
                )))
            }
        }
        *self.retain_days.lock().expect("not poisoned") = Some(days);
        Ok(())
    }

    fn can_retain(&self) -> bool {
        true
    }

    fn keep(&self, kind: FileKind, names: &[String]) -> Result<()> {
        use futures_util::{StreamExt, TryStreamExt};
        let Some(until) = self.retention_of(kind) else {
            return Ok(());
        };
        let keys = names
            .iter()
            .map(|name| layout::path(kind, name))
            .collect::<Result<Vec<String>>>()?;
        self.runtime.block_on(
            futures_util::stream::iter(keys.iter().map(|key| self.lock.retain(key, until)))
                .buffer_unordered(self.connections.max(1))
                .try_collect::<Vec<()>>(),
        )?;
        Ok(())
    }

    fn retained_until(&self, kind: FileKind, name: &str) -> Result<Option<SystemTime>> {
        // Asked only of a repository that keeps files (its config says so,
        // and `retain_for` found Object Lock): others have nothing kept.
        if self.retention_of(kind).is_none() {
            return Ok(None);
        }
        let key = layout::path(kind, name)?;
        self.runtime.block_on(self.lock.retained_until(&key))
    }

    fn read(&self, kind: FileKind, name: &str) -> Result<Vec<u8>> {
        let config = kind == FileKind::Config && name == "config";
        let cached = match config {
            true => self.config.lock().expect("not poisoned").clone(),
            false => None,
        };
        if let Some(bytes) = cached {
            return Ok(bytes);
        }
        let key = layout::path(kind, name)?;
        // One request; reading stops past the most any file of this kind
        // may hold, so a larger one is refused without being read whole.
        let limit = kind.max_len();
        let bytes = self
            .block(self.fetch_at_most(&key, limit + 1))
            .map_err(|e| self.error("read", kind, name, &key, e))?;
        if bytes.len() as u64 > limit {
            return Err(too_large(self.show(&key), kind, bytes.len() as u64));
        }
        if config {
            *self.config.lock().expect("not poisoned") = Some(bytes.clone());
        }
        Ok(bytes)
    }

    fn read_at(&self, kind: FileKind, name: &str, offset: u64, length: u64) -> Result<Vec<u8>> {
        let mut bytes = Vec::new();
        self.read_at_into(kind, name, offset, length, &mut bytes)?;
        Ok(bytes)
    }

    fn read_at_into(
        &self,
        kind: FileKind,
        name: &str,
        offset: u64,
        length: u64,
        out: &mut Vec<u8>,
    ) -> Result<()> {
        out.clear();
        let key = layout::path(kind, name)?;
        let truncated = || {
            Error::Invalid(format!(
                "{} is truncated (reading {length} bytes at {offset})",
                self.show(&key)
            ))
        };
        if length == 0 {
            return match self.size(kind, name)? >= offset {
                true => Ok(()),
                false => Err(truncated()),
            };
        }
        let end = offset.checked_add(length).ok_or_else(truncated)?;
        match self.block(self.fetch(&key, offset..end, out)) {
            Ok(()) if out.len() as u64 == length => Ok(()),
            Ok(()) => Err(truncated()),
            Err(e) if e.kind() == ErrorKind::RangeNotSatisfied => Err(truncated()),
            Err(e) => Err(self.error("read", kind, name, &key, e)),
        }
    }

    fn size(&self, kind: FileKind, name: &str) -> Result<u64> {
        self.stat(kind, name).map(|m| m.content_length())
    }

    fn modified(&self, kind: FileKind, name: &str) -> Result<SystemTime> {
        let key = layout::path(kind, name)?;
        self.stat(kind, name)?
            .last_modified()
            .map(SystemTime::from)
            .ok_or_else(|| {
                Error::Invalid(format!(
                    "storage gives no modification time for {}",
                    self.show(&key)
                ))
            })
    }

    fn list(&self, kind: FileKind) -> Result<Vec<String>> {
        if kind == FileKind::Config {
            return Ok(match self.exists()? {
                true => vec!["config".into()],
                false => vec![],
            });
        }
        // Packs fan out below `data/`: one recursive listing finds them all.
        let dir = match kind {
            FileKind::Pack => "data/".to_string(),
            _ => format!("{}/", layout::dir(kind, "")),
        };
        let entries = self
            .block(self.op.list_with(&dir).recursive(kind == FileKind::Pack))
            .map_err(|e| self.error("list", kind, "", &dir, e))?;
        let mut names: Vec<String> = entries
            .iter()
            .filter_map(|e| layout::name_at(kind, e.path()))
            .map(str::to_string)
            .collect();
        names.sort();
        Ok(names)
    }

    fn remove(&self, kind: FileKind, name: &str) -> Result<()> {
        if kind == FileKind::Config {
            return Err(Error::Invalid("the config cannot be removed".into()));
        }
        let key = layout::path(kind, name)?;
        // S3 deletes a missing object without complaint; the trait names it.
        self.stat(kind, name)?;
        self.block(self.op.delete(&key))
            .map_err(|e| self.error("remove", kind, name, &key, e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(token: Option<&str>) -> S3Config {
        S3Config {
            location: S3Location {
                endpoint: "http://127.0.0.1:1".into(),
                bucket: "bucket".into(),
                prefix: "a/b".into(),
            },
            region: "us-east-1".into(),
            credentials: S3Credentials {
                access_key_id: "AKIDEXAMPLE".into(),
                secret_access_key: "wJalrXUtnFEMI-secret".into(),
                session_token: token.map(str::to_string),
            },
            timeout: Duration::from_secs(5),
            connections: 4,
        }
    }

    #[test]
    fn debug_output_hides_the_secrets() {
        let config = config(Some("session-token-value"));
        let shown = format!("{config:?} {:?}", S3Backend::new(config.clone()).unwrap());
        assert!(shown.contains("AKIDEXAMPLE"), "{shown}");
        assert!(
            shown.contains("s3:http://127.0.0.1:1/bucket/a/b"),
            "{shown}"
        );
        assert!(!shown.contains("wJalrXUtnFEMI-secret"), "{shown}");
        assert!(!shown.contains("session-token-value"), "{shown}");
    }

    #[test]
    fn nothing_listening_is_refused_at_once_naming_the_endpoint() {
        let backend = S3Backend::new(config(None)).unwrap();
        assert_eq!(backend.location(), "s3:http://127.0.0.1:1/bucket/a/b");
        let e = backend.read(FileKind::Config, "config").unwrap_err();
        let text = e.to_string();
        assert!(matches!(e, Error::StorageRefused(_)), "{text}");
        assert!(
            text.starts_with(
                "nothing answers at http://127.0.0.1:1 (connection refused) \
                 for s3:http://127.0.0.1:1/bucket/a/b:"
            ),
            "{text}"
        );
        assert!(!text.contains("wJalrXUtnFEMI-secret"), "{text}");
    }
}
