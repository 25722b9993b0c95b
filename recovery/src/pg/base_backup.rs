//! Base backups: `pg_basebackup` streams the cluster as a tar archive
//! straight into a snapshot, and the archive's own `backup_label` and
//! `backup_manifest` say where in the log the copy starts and stops.

use super::{BaseBackup, BASE_FILE};
use cairn_engine::backup::{backup_stream_then, BackupOptions, BackupReport, StreamSource};
use cairn_engine::{Error, Repository, Result};
use cairn_format::wal::{parse_lsn, Position, WalKind, WalName};
use cairn_format::{SnapshotId, Timestamp};
use std::ffi::OsString;
use std::io::Read;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};

/// How to take a base backup.
#[derive(Clone, Debug)]
pub struct BaseBackupOptions {
    /// The name the cluster's WAL is archived under.
    pub cluster: String,
    /// The `pg_basebackup` program.
    pub program: OsString,
    /// Options for `pg_basebackup` that say where to connect (`-h`, `-p`,
    /// `-U`, `-d`); libpq's environment (`PGHOST`, `PGPORT`, `PGUSER`, ...)
    /// applies as for any client.
    pub connection: Vec<OsString>,
}

/// Takes a base backup of the cluster into a new snapshot of `repo`. The
/// snapshot is written only when `pg_basebackup` succeeded and its archive
/// held a backup label and a manifest naming the stop position.
pub fn take(
    repo: &mut Repository,
    opts: &BaseBackupOptions,
    backup: &BackupOptions,
) -> Result<(BackupReport, BaseBackup)> {
    let shown = opts.program.to_string_lossy().into_owned();
    let mut child = Command::new(&opts.program)
        .args(["-D", "-", "-F", "t", "-X", "none", "-c", "fast", "-w"])
        .args(["-l", "cairn base backup"])
        .args(&opts.connection)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| Error::io(format!("cannot run {shown}"), e))?;
    let seen = Arc::new(Mutex::new(Seen::default()));
    let watch = TarWatch::new(child.stdout.take().expect("stdout is piped"), seen.clone());
    let mut found = None;
    let report = backup_stream_then(
        repo,
        StreamSource::Reader(Box::new(watch)),
        BASE_FILE,
        backup,
        |tags| {
            let status = child
                .wait()
                .map_err(|e| Error::io(format!("cannot wait for {shown}"), e))?;
            if !status.success() {
                return Err(Error::Invalid(format!(
                    "{shown} failed ({status}): no base backup was saved"
                )));
            }
            let stop_time = Timestamp::now();
            let seen = seen.lock().expect("no panics while held");
            let b = describe(&seen, &opts.cluster, stop_time)?;
            tags.extend(b.tags());
            found = Some(b);
            Ok(())
        },
    );
    let report = match report {
        Ok(report) => report,
        Err(e) => {
            let _ = child.kill();
            let _ = child.wait();
            return Err(e);
        }
    };
    let mut found = found.expect("set when the backup succeeded");
    found.id = report.id;
    found.start_time = report.snapshot.time;
    Ok((report, found))
}

/// What a base backup is, from its label and manifest.
fn describe(seen: &Seen, cluster: &str, stop_time: Timestamp) -> Result<BaseBackup> {
    let missing = |what: &str| {
        Error::Invalid(format!(
            "the base backup's archive has no {what}: is the server PostgreSQL 13 or later, \
             and was the manifest turned off? No base backup was saved"
        ))
    };
    let label = seen
        .label
        .as_deref()
        .ok_or_else(|| missing("backup_label"))?;
    let label = String::from_utf8_lossy(label);
    let field = |key: &str| {
        label
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .map(str::trim)
            .ok_or_else(|| missing(&format!("{key} line in its backup_label")))
    };
    // "START WAL LOCATION: 0/2000028 (file 000000010000000000000002)"
    let start = field("START WAL LOCATION:")?;
    let (lsn, file) = start
        .split_once(" (file ")
        .and_then(|(lsn, f)| Some((parse_lsn(lsn)?, f.strip_suffix(')')?)))
        .ok_or_else(|| missing("readable START WAL LOCATION"))?;
    let timeline = field("START TIMELINE:")?
        .parse()
        .map_err(|_| missing("readable START TIMELINE"))?;
    let segment_size =
        segment_size(lsn, file).ok_or_else(|| missing("start file that fits its start LSN"))?;
    let manifest = String::from_utf8_lossy(&seen.manifest_tail);
    let stop_lsn = manifest
        .rsplit("\"End-LSN\"")
        .next()
        .filter(|_| manifest.contains("\"End-LSN\""))
        .and_then(|rest| rest.split('"').nth(1))
        .and_then(parse_lsn)
        .ok_or_else(|| missing("backup_manifest with WAL-Ranges"))?;
    Ok(BaseBackup {
        id: SnapshotId([0; 32]),
        cluster: cluster.to_string(),
        timeline,
        start_lsn: lsn,
        stop_lsn,
        segment_size,
        start_time: stop_time,
        stop_time,
    })
}

/// The segment size for which the segment holding `lsn` is named `file`:
/// PostgreSQL's sizes are powers of two from 1 MiB to 1 GiB, and only one
/// of them fits once the LSN is past the first segment.
fn segment_size(lsn: u64, file: &str) -> Option<u64> {
    let WalKind::Segment(position) = WalName::parse(file)?.kind else {
        return None;
    };
    (20..=30)
        .map(|bits| 1u64 << bits)
        .find(|&size| lsn >= size && Position::of_lsn(lsn, size) == position)
}

/// The files of the tar stream that describe the backup.
#[derive(Default)]
struct Seen {
    label: Option<Vec<u8>>,
    /// The end of `backup_manifest`, where its WAL ranges are.
    manifest_tail: Vec<u8>,
}

/// The most of `backup_label` kept, and of the end of `backup_manifest`.
const KEPT: usize = 64 * 1024;

/// A reader that passes a tar stream through unchanged while picking out
/// `backup_label` and the end of `backup_manifest` as they go by.
struct TarWatch<R> {
    inner: R,
    seen: Arc<Mutex<Seen>>,
    header: Vec<u8>,
    /// Bytes of the current entry's data still to come, then of its padding.
    data_left: u64,
    pad_left: u64,
    /// Which file the current entry's data is, when it is one of ours.
    capturing: Option<Captured>,
    ended: bool,
}

#[derive(Clone, Copy)]
enum Captured {
    Label,
    Manifest,
}

impl<R: Read> TarWatch<R> {
    fn new(inner: R, seen: Arc<Mutex<Seen>>) -> Self {
        TarWatch {
            inner,
            seen,
            header: Vec::with_capacity(512),
            data_left: 0,
            pad_left: 0,
            capturing: None,
            ended: false,
        }
    }

    fn observe(&mut self, mut bytes: &[u8]) {
        while !bytes.is_empty() && !self.ended {
            if self.data_left > 0 {
                let n = bytes.len().min(self.data_left as usize);
                self.capture(&bytes[..n]);
                self.data_left -= n as u64;
                bytes = &bytes[n..];
            } else if self.pad_left > 0 {
                let n = bytes.len().min(self.pad_left as usize);
                self.pad_left -= n as u64;
                bytes = &bytes[n..];
            } else {
                let n = bytes.len().min(512 - self.header.len());
                self.header.extend_from_slice(&bytes[..n]);
                bytes = &bytes[n..];
                if self.header.len() == 512 {
                    self.start_entry();
                }
            }
        }
    }

    fn start_entry(&mut self) {
        let h = std::mem::take(&mut self.header);
        if h.iter().all(|&b| b == 0) {
            self.ended = true;
            return;
        }
        let size = octal(&h[124..136]);
        let name = &h[..h[..100].iter().position(|&b| b == 0).unwrap_or(100)];
        let regular = matches!(h[156], b'0' | 0);
        self.capturing = match name {
            b"backup_label" | b"./backup_label" if regular => Some(Captured::Label),
            b"backup_manifest" | b"./backup_manifest" if regular => Some(Captured::Manifest),
            _ => None,
        };
        self.data_left = size;
        self.pad_left = (512 - size % 512) % 512;
        self.header = h;
        self.header.clear();
    }

    fn capture(&mut self, bytes: &[u8]) {
        let Some(which) = self.capturing else { return };
        let mut seen = self.seen.lock().expect("no panics while held");
        match which {
            Captured::Label => {
                let label = seen.label.get_or_insert_with(Vec::new);
                let room = KEPT.saturating_sub(label.len());
                label.extend_from_slice(&bytes[..bytes.len().min(room)]);
            }
            Captured::Manifest => {
                let tail = &mut seen.manifest_tail;
                tail.extend_from_slice(bytes);
                if tail.len() > 2 * KEPT {
                    tail.drain(..tail.len() - KEPT);
                }
            }
        }
    }
}

/// A tar header's octal number field (size); 0 when unreadable.
fn octal(field: &[u8]) -> u64 {
    let digits = field
        .iter()
        .skip_while(|&&b| b == b' ')
        .take_while(|&&b| (b'0'..=b'7').contains(&b));
    digits.fold(0u64, |n, &d| {
        n.saturating_mul(8).saturating_add(u64::from(d - b'0'))
    })
}

impl<R: Read> Read for TarWatch<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.observe(&buf[..n]);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tar_of(files: &[(&str, &[u8])]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (name, data) in files {
            let mut h = tar::Header::new_gnu();
            h.set_size(data.len() as u64);
            h.set_mode(0o600);
            h.set_cksum();
            b.append_data(&mut h, name, *data).unwrap();
        }
        b.into_inner().unwrap()
    }

    #[test]
    fn the_label_and_manifest_are_picked_out_of_the_stream() {
        let label = b"START WAL LOCATION: 0/2000028 (file 000000010000000000000002)\n\
CHECKPOINT LOCATION: 0/2000060\nSTART TIMELINE: 1\n";
        let big = vec![9u8; 3 * KEPT];
        let mut manifest = b"{ \"Files\": [ ".to_vec();
        manifest.extend(std::iter::repeat_n(b' ', 5 * KEPT));
        manifest.extend_from_slice(
            b"], \"WAL-Ranges\": [\n{ \"Timeline\": 1, \"Start-LSN\": \"0/2000028\", \"End-LSN\": \"0/2000100\" }\n] }",
        );
        let stream = tar_of(&[
            ("base/1/1", &big),
            ("backup_label", label),
            ("backup_manifest", &manifest),
        ]);
        let seen = Arc::new(Mutex::new(Seen::default()));
        let mut watch = TarWatch::new(&stream[..], seen.clone());
        let mut out = Vec::new();
        // Small reads, so that headers arrive in pieces.
        let mut buf = [0u8; 100];
        loop {
            let n = watch.read(&mut buf).unwrap();
            if n == 0 {
                break;
            }
            out.extend_from_slice(&buf[..n]);
        }
        assert_eq!(out, stream);
        let b = describe(&seen.lock().unwrap(), "main", Timestamp::now()).unwrap();
        assert_eq!(b.start_lsn, 0x200_0028);
        assert_eq!(b.stop_lsn, 0x200_0100);
        assert_eq!(b.timeline, 1);
        assert_eq!(b.segment_size, 16 << 20);
        let none = Seen::default();
        assert!(describe(&none, "main", Timestamp::now()).is_err());
    }

    #[test]
    fn the_segment_size_follows_from_the_start_file() {
        assert_eq!(
            segment_size(0x200_0028, "000000010000000000000002"),
            Some(16 << 20)
        );
        assert_eq!(
            segment_size(0x200_0028, "000000010000000000000020"),
            Some(1 << 20)
        );
        assert_eq!(segment_size(0x200_0028, "000000010000000000000003"), None);
    }
}
