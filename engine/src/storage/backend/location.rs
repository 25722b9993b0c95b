//! Repository locations as users write them: a directory (`/path` or
//! `local:/path`), an S3 bucket (`s3:http(s)://HOST[:PORT]/BUCKET[/PREFIX]`)
//! or a directory reached over SSH (`sftp:[USER@]HOST:PATH` or
//! `sftp://[USER@]HOST[:PORT]/PATH`).

use crate::error::{Error, Result};
use std::fmt;
use std::path::PathBuf;

/// Where a repository lives, which decides its backend.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Location {
    /// A directory on this machine.
    Local(PathBuf),
    /// A prefix in a bucket of an S3-compatible object store.
    S3(S3Location),
    /// A directory on a host reached over SSH.
    Sftp(SftpLocation),
}

/// A directory on a host reached over SSH, spoken to with SFTP.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SftpLocation {
    /// The login name; `None` leaves it to the SSH configuration.
    pub user: Option<String>,
    /// The host name or address (an IPv6 address without brackets).
    pub host: String,
    /// The port; `None` leaves it to the SSH configuration (22 by default).
    pub port: Option<u16>,
    /// The directory: absolute, or relative to the login directory.
    pub path: String,
}

/// A prefix in a bucket of an S3-compatible object store, reached by path-style
/// requests to its endpoint. It holds no credentials, so it can be shown.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct S3Location {
    /// `http://` or `https://`, the host, and the port if one was given.
    pub endpoint: String,
    /// The bucket's name.
    pub bucket: String,
    /// The key prefix the repository's files are under, without leading or
    /// trailing `/`; empty for the bucket's root.
    pub prefix: String,
}

/// The accepted forms, for messages.
const S3_FORM: &str = "s3:http(s)://HOST[:PORT]/BUCKET[/PREFIX]";
const SFTP_FORM: &str = "sftp:[USER@]HOST:PATH or sftp://[USER@]HOST[:PORT]/PATH";

impl Location {
    /// Reads a location. Text starting `s3:` names an S3 location, text
    /// starting `local:` a directory; any other text is a directory's path.
    pub fn parse(text: &str) -> Result<Location> {
        if let Some(rest) = text.strip_prefix("s3:") {
            return parse_s3(rest).map(Location::S3);
        }
        if let Some(rest) = text.strip_prefix("sftp:") {
            return parse_sftp(rest).map(Location::Sftp);
        }
        let path = text.strip_prefix("local:").unwrap_or(text);
        match path.is_empty() {
            true => Err(Error::Invalid(format!(
                "empty repository location {text:?}: give a directory, {S3_FORM}, or {SFTP_FORM}"
            ))),
            false => Ok(Location::Local(PathBuf::from(path))),
        }
    }
}

impl fmt::Display for S3Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "s3:{}/{}", self.endpoint, self.bucket)?;
        match self.prefix.is_empty() {
            true => Ok(()),
            false => write!(f, "/{}", self.prefix),
        }
    }
}

impl fmt::Display for SftpLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let user = self
            .user
            .as_ref()
            .map(|u| format!("{u}@"))
            .unwrap_or_default();
        let host = match self.host.contains(':') {
            true => format!("[{}]", self.host),
            false => self.host.clone(),
        };
        match (self.port, self.path.strip_prefix('/')) {
            (Some(port), Some(path)) => write!(f, "sftp://{user}{host}:{port}/{path}"),
            _ => write!(f, "sftp:{user}{host}:{}", self.path),
        }
    }
}

/// Reads what follows `sftp:`: `//[USER@]HOST[:PORT]/PATH`, whose path is
/// absolute, or `[USER@]HOST:PATH` as `scp` takes it.
fn parse_sftp(text: &str) -> Result<SftpLocation> {
    let bad = |why: &str| {
        Error::Invalid(format!(
            "invalid SFTP location \"sftp:{text}\": {why}; expected {SFTP_FORM}"
        ))
    };
    let (authority, path) = match text.strip_prefix("//") {
        Some(url) => {
            let (authority, path) = url
                .split_once('/')
                .ok_or_else(|| bad("it names no directory"))?;
            (authority, format!("/{path}"))
        }
        None => {
            // The host may be an IPv6 address in brackets, with colons.
            let end = match text.starts_with('[') || text.contains("@[") {
                true => text.find("]:").map(|i| i + 1),
                false => text.find(':'),
            };
            let end = end.ok_or_else(|| bad("it has no `:` before the directory"))?;
            let (authority, path) = (&text[..end], &text[end + 1..]);
            if !authority.contains('@')
                && path.split_once('@').is_some_and(|(_, p)| p.contains(':'))
            {
                // `USER:PASSWORD@HOST:PATH`.
                return Err(password_refused());
            }
            (authority, path.to_string())
        }
    };
    let (user, host_port) = match authority.rsplit_once('@') {
        Some((user, rest)) => (Some(user), rest),
        None => (None, authority),
    };
    if user.is_some_and(|u| u.contains(':')) {
        return Err(password_refused());
    }
    if let Some(user) = user {
        let fine = |b: u8| b.is_ascii_alphanumeric() || b"._-".contains(&b);
        if user.is_empty() || user.starts_with('-') || !user.bytes().all(fine) {
            return Err(bad(&format!("{user:?} is not a user name")));
        }
    }
    check_authority(host_port).map_err(|why| bad(&why))?;
    let (host, port) = split_host_port(host_port);
    if host.starts_with('-') {
        return Err(bad(&format!("{host:?} is not a host")));
    }
    let path = path.trim_end_matches('/');
    let path = match path {
        "" if text.starts_with("//") => "/",
        "" => return Err(bad("it names no directory")),
        p => p,
    };
    if path.contains(|c: char| c.is_control()) {
        return Err(bad("its directory has a control character"));
    }
    Ok(SftpLocation {
        user: user.map(str::to_string),
        host: host.to_string(),
        port,
        path: path.to_string(),
    })
}

/// The error for an SFTP location with a password in it, which it does not
/// echo.
fn password_refused() -> Error {
    Error::Invalid(format!(
        "invalid SFTP location: a password does not belong in it; cairn logs \
         in with an SSH key or agent; expected {SFTP_FORM}"
    ))
}

/// Splits a checked `HOST[:PORT]` (an IPv6 host in brackets).
fn split_host_port(authority: &str) -> (&str, Option<u16>) {
    let (host, port) = match authority.strip_prefix('[') {
        Some(v6) => {
            let (host, rest) = v6.split_once(']').unwrap_or((v6, ""));
            (host, rest.strip_prefix(':'))
        }
        None => match authority.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        },
    };
    (host, port.and_then(|p| p.parse().ok()))
}

/// Reads what follows `s3:`.
fn parse_s3(text: &str) -> Result<S3Location> {
    let bad = |why: &str| {
        Error::Invalid(format!(
            "invalid S3 location \"s3:{text}\": {why}; expected {S3_FORM}"
        ))
    };
    let (scheme, rest) = match text.split_once("://") {
        Some((s @ ("http" | "https"), rest)) => (s, rest),
        _ => return Err(bad("it must start s3:http:// or s3:https://")),
    };
    let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
    if authority.contains('@') {
        // Not echoed: what precedes the `@` may be a secret.
        return Err(Error::Invalid(format!(
            "invalid S3 location: credentials do not belong in it; set \
             AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY instead; expected {S3_FORM}"
        )));
    }
    if text.contains(['?', '#']) {
        return Err(bad("it cannot have a query or fragment"));
    }
    check_authority(authority).map_err(|why| bad(&why))?;
    let mut segments = path.trim_end_matches('/').split('/');
    let bucket = segments.next().unwrap_or_default();
    if bucket.is_empty() {
        return Err(bad("it names no bucket"));
    }
    if !bucket
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
    {
        return Err(bad(&format!("{bucket:?} is not a bucket name")));
    }
    let prefix: Vec<&str> = segments.collect();
    if let Some(s) = prefix
        .iter()
        .find(|s| matches!(**s, "" | "." | "..") || s.contains(|c: char| c.is_control()))
    {
        return Err(bad(&format!("its prefix has a segment {s:?}")));
    }
    Ok(S3Location {
        endpoint: format!("{scheme}://{authority}"),
        bucket: bucket.to_string(),
        prefix: prefix.join("/"),
    })
}

/// Checks `HOST[:PORT]` (an IPv6 host in brackets); says what is wrong.
fn check_authority(authority: &str) -> std::result::Result<(), String> {
    let (host, port) = match authority.strip_prefix('[') {
        Some(v6) => match v6.split_once(']') {
            Some((host, "")) => (host, None),
            Some((host, port)) => match port.strip_prefix(':') {
                Some(port) => (host, Some(port)),
                None => return Err(format!("{authority:?} is not a host")),
            },
            None => return Err(format!("{authority:?} is not a host")),
        },
        None => match authority.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        },
    };
    let host_chars = |b: u8| b.is_ascii_alphanumeric() || b"-._:".contains(&b);
    if host.is_empty() || !host.bytes().all(host_chars) {
        return Err(format!("{authority:?} is not a host"));
    }
    match port.map(|p| p.parse::<u16>()) {
        None | Some(Ok(1..)) => Ok(()),
        Some(_) => Err(format!("{authority:?} has no valid port")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s3(text: &str) -> S3Location {
        match Location::parse(text).unwrap() {
            Location::S3(l) => l,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn paths_and_local_locations_are_directories() {
        for (text, path) in [
            ("/srv/repo", "/srv/repo"),
            ("local:/srv/repo", "/srv/repo"),
            ("relative/repo", "relative/repo"),
            ("local:with:colons", "with:colons"),
        ] {
            assert_eq!(Location::parse(text).unwrap(), Location::Local(path.into()));
        }
        for empty in ["", "local:"] {
            let e = Location::parse(empty).unwrap_err().to_string();
            assert!(e.contains("empty repository location"), "{e}");
        }
    }

    #[test]
    fn s3_locations_give_endpoint_bucket_and_prefix() {
        let l = s3("s3:http://127.0.0.1:9000/bucket");
        assert_eq!(l.endpoint, "http://127.0.0.1:9000");
        assert_eq!((&*l.bucket, &*l.prefix), ("bucket", ""));
        assert_eq!(l.to_string(), "s3:http://127.0.0.1:9000/bucket");
        let l = s3("s3:https://s3.example.com/my-bucket/some/prefix/");
        assert_eq!(l.endpoint, "https://s3.example.com");
        assert_eq!((&*l.bucket, &*l.prefix), ("my-bucket", "some/prefix"));
        assert_eq!(
            l.to_string(),
            "s3:https://s3.example.com/my-bucket/some/prefix"
        );
        assert_eq!(s3("s3:http://[::1]:9000/b").endpoint, "http://[::1]:9000");
    }

    #[test]
    fn malformed_s3_locations_say_what_is_wrong() {
        for (text, why) in [
            (
                "s3:ftp://host/bucket",
                "must start s3:http:// or s3:https://",
            ),
            ("s3:host/bucket", "must start"),
            ("s3:http://host", "names no bucket"),
            ("s3:http://host/", "names no bucket"),
            ("s3:http:///bucket", "is not a host"),
            ("s3:http://host:0/bucket", "no valid port"),
            ("s3:http://host:99999/bucket", "no valid port"),
            ("s3:http://host:x/bucket", "no valid port"),
            ("s3:http://ho st/bucket", "is not a host"),
            ("s3:http://host/bu%cket", "is not a bucket name"),
            ("s3:http://host/b/a//c", "segment \"\""),
            ("s3:http://host/b/../c", "segment \"..\""),
            ("s3:http://host/b?x=1", "query"),
        ] {
            let e = Location::parse(text).unwrap_err().to_string();
            assert!(e.contains(why), "{text}: {e}");
            assert!(
                e.contains("expected s3:http(s)://HOST[:PORT]/BUCKET"),
                "{e}"
            );
        }
    }

    fn sftp(text: &str) -> SftpLocation {
        match Location::parse(text).unwrap() {
            Location::Sftp(l) => l,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn sftp_locations_give_user_host_port_and_directory() {
        let l = sftp("sftp:bkp@backup.example.com:/srv/repo/");
        assert_eq!(l.user.as_deref(), Some("bkp"));
        assert_eq!(
            (&*l.host, l.port, &*l.path),
            ("backup.example.com", None, "/srv/repo")
        );
        assert_eq!(l.to_string(), "sftp:bkp@backup.example.com:/srv/repo");
        let l = sftp("sftp:host:repos/a");
        assert_eq!((l.user, &*l.host, &*l.path), (None, "host", "repos/a"));
        let l = sftp("sftp://bkp@127.0.0.1:2222/srv/repo");
        assert_eq!(
            (&*l.host, l.port, &*l.path),
            ("127.0.0.1", Some(2222), "/srv/repo")
        );
        assert_eq!(l.to_string(), "sftp://bkp@127.0.0.1:2222/srv/repo");
        let l = sftp("sftp://[::1]:22/");
        assert_eq!((&*l.host, l.port, &*l.path), ("::1", Some(22), "/"));
        let l = sftp("sftp:u@[::1]:/r");
        assert_eq!((&*l.host, l.port, &*l.path), ("::1", None, "/r"));
        assert_eq!(l.to_string(), "sftp:u@[::1]:/r");
    }

    #[test]
    fn malformed_sftp_locations_say_what_is_wrong() {
        for (text, why) in [
            ("sftp:host", "no `:` before the directory"),
            ("sftp:host:", "names no directory"),
            ("sftp://host", "names no directory"),
            ("sftp:-oProxyCommand=x:/r", "is not a host"),
            ("sftp:-l@host:/r", "is not a user name"),
            ("sftp:@host:/r", "is not a user name"),
            ("sftp://host:0/r", "no valid port"),
            ("sftp:ho st:/r", "is not a host"),
        ] {
            let e = Location::parse(text).unwrap_err().to_string();
            assert!(e.contains(why), "{text}: {e}");
            assert!(e.contains("expected sftp:[USER@]HOST:PATH"), "{e}");
        }
    }

    #[test]
    fn credentials_in_a_location_are_refused_unechoed() {
        for text in ["sftp://bkp:hunter2@host/r", "sftp:bkp:hunter2@host:/r"] {
            let e = Location::parse(text).unwrap_err().to_string();
            assert!(e.contains("SSH key"), "{e}");
            assert!(!e.contains("hunter2"), "{e}");
        }
        let e = Location::parse("s3:http://AKID:hunter2@host/bucket")
            .unwrap_err()
            .to_string();
        assert!(e.contains("AWS_SECRET_ACCESS_KEY"), "{e}");
        assert!(!e.contains("hunter2") && !e.contains("AKID"), "{e}");
    }
}
