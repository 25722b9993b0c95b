//! Base backups: `pg_basebackup` streams the cluster as a tar archive
//! straight into a snapshot, and the archive's own `backup_label` and
//! `backup_manifest` say where in the log the copy starts and stops.

use super::{BaseBackup, BASE_FILE};
use cairn_engine::backup::{backup_stream_then, BackupOptions, BackupReport, StreamSource};
use cairn_engine::{wal, Error, Repository, Result};
use cairn_format::wal::{parse_lsn, valid_segment_size, Position, WalKind, WalName};
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
/// snapshot is written only when `pg_basebackup` succeeded, its archive
/// held a backup label and a manifest naming the stop position, and the
/// segment the copy starts in is archived in `repo` under the cluster's name.
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
        |repo, tags| {
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
            let b = describe(repo, &seen, &opts.cluster, stop_time)?;
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

/// Where a base backup lies in the log, as its label and manifest say.
#[derive(Debug, PartialEq)]
struct Label {
    start_lsn: u64,
    /// The segment holding the start LSN, by name.
    start_file: String,
    timeline: u32,
    stop_lsn: u64,
}

/// Reads the label and the manifest's WAL ranges out of what the stream showed.
fn read_label(seen: &Seen) -> Result<Label> {
    let bad = |what: &str| {
        Error::Invalid(format!(
            "the base backup's archive has {what}: no base backup was saved"
        ))
    };
    if seen.lost {
        return Err(bad("a tar header that does not check out"));
    }
    let label = seen
        .label
        .as_deref()
        .ok_or_else(|| bad("no backup_label"))?;
    let label = String::from_utf8_lossy(label);
    let field = |key: &str| {
        label
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .map(str::trim)
            .ok_or_else(|| bad(&format!("no {key} line in its backup_label")))
    };
    // "START WAL LOCATION: 0/2000028 (file 000000010000000000000002)"
    let start = field("START WAL LOCATION:")?;
    let (start_lsn, start_file) = start
        .split_once(" (file ")
        .and_then(|(lsn, f)| Some((parse_lsn(lsn)?, f.strip_suffix(')')?)))
        .ok_or_else(|| bad("an unreadable START WAL LOCATION in its backup_label"))?;
    let timeline = field("START TIMELINE:")?
        .parse()
        .map_err(|_| bad("an unreadable START TIMELINE in its backup_label"))?;
    let manifest = String::from_utf8_lossy(&seen.manifest_tail);
    let stop_lsn = manifest
        .rsplit_once("\"End-LSN\"")
        .and_then(|(_, rest)| rest.split('"').nth(1))
        .and_then(parse_lsn)
        .ok_or_else(|| {
            bad("no backup_manifest with WAL-Ranges (PostgreSQL 13 or later makes one unless told not to)")
        })?;
    Ok(Label {
        start_lsn,
        start_file: start_file.to_string(),
        timeline,
        stop_lsn,
    })
}

/// What a base backup is: its label, and the segment size, which is the
/// size of the start segment in the archive (the label's LSN and file name
/// alone leave it open when the copy starts in the first segment of a log).
/// That segment must be archived: without it the copy cannot be recovered.
fn describe(
    repo: &Repository,
    seen: &Seen,
    cluster: &str,
    stop_time: Timestamp,
) -> Result<BaseBackup> {
    let label = read_label(seen)?;
    let file = &label.start_file;
    let segment = wal::fetch(repo, cluster, file)?.ok_or_else(|| {
        Error::Invalid(format!(
            "WAL segment {file}, where the base backup starts, is not in the archive of cluster \
             {cluster}: set archive_command to `cairn ... pg archive-wal --cluster {cluster} %p %f` \
             with this repository. No base backup was saved"
        ))
    })?;
    let segment_size = segment.len() as u64;
    let fits = WalName::parse(file).is_some_and(|n| {
        n.kind == WalKind::Segment(Position::of_lsn(label.start_lsn, segment_size))
    });
    if !valid_segment_size(segment_size) || !fits {
        return Err(Error::Invalid(format!(
            "the archived WAL segment {file} is {segment_size} bytes, which does not fit the \
             base backup's start LSN: is another cluster archiving as {cluster}? No base backup was saved"
        )));
    }
    Ok(BaseBackup {
        id: SnapshotId([0; 32]),
        cluster: cluster.to_string(),
        timeline: label.timeline,
        start_lsn: label.start_lsn,
        stop_lsn: label.stop_lsn,
        segment_size,
        start_time: stop_time,
        stop_time,
    })
}

/// The files of the tar stream that describe the backup.
#[derive(Default)]
struct Seen {
    /// The stream could not be followed (a header failed its checksum).
    lost: bool,
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
        if !checksum_ok(&h) {
            self.seen.lock().expect("no panics while held").lost = true;
            self.ended = true;
            return;
        }
        let size = entry_size(&h[124..136]);
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

/// True when a tar header's checksum field matches its bytes (summed with
/// the field itself taken as spaces).
fn checksum_ok(h: &[u8]) -> bool {
    let sum: u64 = h
        .iter()
        .enumerate()
        .map(|(i, &b)| {
            if (148..156).contains(&i) {
                32
            } else {
                u64::from(b)
            }
        })
        .sum();
    octal(&h[148..156]) == sum
}

/// A tar header's size field: octal, or base-256 when its first bit is set.
fn entry_size(field: &[u8]) -> u64 {
    match field[0] & 0x80 {
        0 => octal(field),
        _ => field[1..].iter().fold(0u64, |n, &b| {
            n.saturating_mul(256).saturating_add(u64::from(b))
        }),
    }
}

/// A tar header's octal number field; 0 when unreadable.
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
        let l = read_label(&seen.lock().unwrap()).unwrap();
        let expected = Label {
            start_lsn: 0x200_0028,
            start_file: "000000010000000000000002".into(),
            timeline: 1,
            stop_lsn: 0x200_0100,
        };
        assert_eq!(l, expected);
        assert!(read_label(&Seen::default()).is_err());
    }

    #[test]
    fn a_damaged_header_loses_the_stream_rather_than_misreading_it() {
        let mut stream = tar_of(&[("backup_label", b"x"), ("backup_manifest", b"y")]);
        stream[100] ^= 1;
        let seen = Arc::new(Mutex::new(Seen::default()));
        let mut watch = TarWatch::new(&stream[..], seen.clone());
        std::io::copy(&mut watch, &mut std::io::sink()).unwrap();
        assert!(seen.lock().unwrap().lost);
        assert!(read_label(&seen.lock().unwrap()).is_err());
    }
}
