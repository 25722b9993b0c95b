//! S3 Object Lock (SPEC §2.6): the few requests OpenDAL does not make,
//! signed (AWS SigV4) and sent here: whether a bucket has Object Lock,
//! making a bucket with it, and setting and reading an object's retention.

use super::{S3Credentials, S3Location};
use crate::error::{Error, Result};
use reqsign_aws_v4::{Credential, RequestSigner, StaticCredentialProvider};
use reqsign_core::{Context, Signer};
use std::time::{Duration, SystemTime};

/// Whether a bucket keeps objects from deletion.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum BucketLock {
    /// Object Lock is enabled.
    Enabled,
    /// The bucket has no Object Lock, or the server does not offer it.
    Absent,
    /// There is no such bucket.
    NoBucket,
}

/// Signs and sends Object Lock requests for one location.
pub(super) struct LockClient {
    location: S3Location,
    region: String,
    signer: Signer<Credential>,
    client: reqwest::Client,
    timeout: Duration,
}

/// What S3 answered: its status and body.
struct Answer {
    status: u16,
    body: String,
}

impl Answer {
    /// The `<Code>` of an S3 error answer.
    fn code(&self) -> &str {
        between(&self.body, "<Code>", "</Code>").unwrap_or("")
    }
}

/// The text between the first `start` and the `end` after it.
fn between<'a>(text: &'a str, start: &str, end: &str) -> Option<&'a str> {
    let from = text.find(start)? + start.len();
    let len = text[from..].find(end)?;
    Some(&text[from..from + len])
}

impl LockClient {
    pub(super) fn new(
        location: &S3Location,
        region: &str,
        credentials: &S3Credentials,
        timeout: Duration,
    ) -> Result<LockClient> {
        let mut provider = StaticCredentialProvider::new(
            &credentials.access_key_id,
            &credentials.secret_access_key,
        );
        if let Some(token) = &credentials.session_token {
            provider = provider.with_session_token(token);
        }
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .build()
            .map_err(|e| Error::io("cannot start the S3 client", std::io::Error::other(e)))?;
        Ok(LockClient {
            location: location.clone(),
            region: region.to_string(),
            signer: Signer::new(Context::new(), provider, RequestSigner::new("s3", region)),
            client,
            timeout,
        })
    }

    /// The URL of the bucket, or of the object `key` below the prefix, with
    /// `query` (none when empty); the path percent-encoded as S3 signs it.
    fn url(&self, key: Option<&str>, query: &str) -> String {
        let S3Location {
            endpoint,
            bucket,
            prefix,
        } = &self.location;
        let mut path = format!("/{bucket}");
        for part in [prefix.as_str(), key.unwrap_or("")] {
            if key.is_some() && !part.is_empty() {
                path.push('/');
                path.push_str(part);
            }
        }
        let query = match query {
            "" => String::new(),
            q => format!("?{q}"),
        };
        format!(
            "{}{}{query}",
            endpoint.trim_end_matches('/'),
            encode_path(&path)
        )
    }

    /// A request of `method` to `url` with `headers` and `body`.
    fn request(
        &self,
        method: http::Method,
        url: String,
        headers: &[(&str, String)],
        body: Vec<u8>,
    ) -> Result<http::Request<Vec<u8>>> {
        let mut request = http::Request::builder().method(method).uri(&url);
        for (name, value) in headers {
            request = request.header(*name, value);
        }
        request
            .body(body)
            .map_err(|e| Error::Invalid(format!("cannot make a request to {url}: {e}")))
    }

    /// Signs and sends one request; `what` names it in errors.
    async fn send(&self, request: http::Request<Vec<u8>>, what: &str) -> Result<Answer> {
        let failed =
            |e: String| Error::Transient(format!("cannot {what} at {}: {e}", self.location));
        let (mut parts, body) = request.into_parts();
        self.signer.sign(&mut parts, None).await.map_err(|e| {
            Error::StorageRefused(format!("cannot sign the request to {what}: {e}"))
        })?;
        let request = reqwest::Request::try_from(http::Request::from_parts(parts, body))
            .map_err(|e| failed(e.to_string()))?;
        let response = self
            .client
            .execute(request)
            .await
            .map_err(|e| match e.is_timeout() {
                true => failed(format!("no answer within {} s", self.timeout.as_secs_f64())),
                false => failed(e.to_string()),
            })?;
        let status = response.status().as_u16();
        let body = response.text().await.map_err(|e| failed(e.to_string()))?;
        Ok(Answer { status, body })
    }

    /// The error for an answer no caller expects.
    fn refused(&self, what: &str, answer: &Answer) -> Error {
        let code = match answer.code() {
            "" => format!("HTTP {}", answer.status),
            code => code.to_string(),
        };
        match answer.status {
            500.. => Error::Transient(format!("cannot {what} at {}: {code}", self.location)),
            _ => Error::StorageRefused(format!("cannot {what} at {}: {code}", self.location)),
        }
    }

    /// Whether the bucket has Object Lock.
    pub(super) async fn bucket_lock(&self) -> Result<BucketLock> {
        let what = "read the bucket's Object Lock configuration";
        let request = self.request(
            http::Method::GET,
            self.url(None, "object-lock"),
            &[],
            Vec::new(),
        )?;
        let answer = self.send(request, what).await?;
        match (answer.status, answer.code()) {
            (200, _)
                if answer
                    .body
                    .contains("<ObjectLockEnabled>Enabled</ObjectLockEnabled>") =>
            {
                Ok(BucketLock::Enabled)
            }
            (200, _) => Ok(BucketLock::Absent),
            (_, "NoSuchBucket") => Ok(BucketLock::NoBucket),
            // No configuration, or a server without Object Lock at all.
            (
                _,
                "ObjectLockConfigurationNotFoundError"
                | "NoSuchObjectLockConfiguration"
                | "NotImplemented"
                | "InvalidRequest",
            ) => Ok(BucketLock::Absent),
            (404 | 501, _) => Ok(BucketLock::Absent),
            _ => Err(self.refused(what, &answer)),
        }
    }

    /// Makes the bucket, with Object Lock (and so versioning) enabled.
    pub(super) async fn create_locked_bucket(&self) -> Result<()> {
        let what = format!("create bucket {} with Object Lock", self.location.bucket);
        // Outside the default region, AWS wants the region named.
        let body = match self.region.as_str() {
            "us-east-1" | "" => Vec::new(),
            region => format!(
                "<CreateBucketConfiguration xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">\
                 <LocationConstraint>{region}</LocationConstraint></CreateBucketConfiguration>"
            )
            .into_bytes(),
        };
        let headers = [("x-amz-bucket-object-lock-enabled", "true".to_string())];
        let request = self.request(http::Method::PUT, self.url(None, ""), &headers, body)?;
        let answer = self.send(request, &what).await?;
        match answer.status {
            200 => Ok(()),
            _ => Err(self.refused(&what, &answer)),
        }
    }

    /// Keeps the object `key` from deletion until `until` (compliance mode:
    /// no credentials can shorten it). A later date than one already set
    /// extends it; an object already kept longer stays as it is.
    pub(super) async fn retain(&self, key: &str, until: SystemTime) -> Result<()> {
        use base64::Engine as _;
        use md5::Digest as _;
        let what = format!("set the retention of {}/{key}", self.location);
        let date = rfc3339(until);
        let xml = format!(
            "<Retention xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">\
             <Mode>COMPLIANCE</Mode><RetainUntilDate>{date}</RetainUntilDate></Retention>"
        );
        let md5 = base64::engine::general_purpose::STANDARD.encode(md5::Md5::digest(&xml));
        let headers = [
            ("content-type", "application/xml".to_string()),
            ("content-md5", md5),
        ];
        let url = self.url(Some(key), "retention");
        let request = self.request(http::Method::PUT, url, &headers, xml.into_bytes())?;
        let answer = self.send(request, &what).await?;
        match answer.status {
            200 | 204 => Ok(()),
            // Storage refuses to shorten a retention: fine if it is longer.
            403 if self
                .retained_until(key)
                .await?
                .is_some_and(|kept| kept >= until - Duration::from_secs(1)) =>
            {
                Ok(())
            }
            _ => Err(self.refused(&what, &answer)),
        }
    }

    /// Until when the object `key` is kept from deletion, if it is.
    pub(super) async fn retained_until(&self, key: &str) -> Result<Option<SystemTime>> {
        let what = format!("read the retention of {}/{key}", self.location);
        let url = self.url(Some(key), "retention");
        let request = self.request(http::Method::GET, url, &[], Vec::new())?;
        let answer = self.send(request, &what).await?;
        match answer.status {
            200 => {
                let date = between(&answer.body, "<RetainUntilDate>", "</RetainUntilDate>")
                    .and_then(|d| d.parse::<jiff::Timestamp>().ok())
                    .ok_or_else(|| {
                        Error::Invalid(format!("{what}: S3 answered without a date we can read"))
                    })?;
                Ok(Some(SystemTime::from(date)))
            }
            // No retention on it, or no such object.
            404 => Ok(None),
            // A bucket without Object Lock.
            400 if answer.code() == "InvalidRequest" => Ok(None),
            _ => Err(self.refused(&what, &answer)),
        }
    }
}

/// `path` percent-encoded as SigV4 expects: every byte but unreserved
/// characters and `/`.
fn encode_path(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for b in path.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// `time` as S3 writes dates, to the second: `2026-12-08T05:50:13Z`.
fn rfc3339(time: SystemTime) -> String {
    let ts = jiff::Timestamp::try_from(time).unwrap_or(jiff::Timestamp::MAX);
    ts.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}
