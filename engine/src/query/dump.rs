//! Writing one file of a snapshot, or a directory as a tar archive, to a stream.
//!
//! A regular file is written as its plain content. A directory (or the whole
//! snapshot) becomes a tar archive of everything below it, with paths relative
//! to that directory: files, directories, symlinks, hard links, FIFOs and
//! device nodes, with their permission bits, owners (numbers and names) and
//! modification times. Sockets cannot be stored in tar and are left out.
//!
//! The archive uses GNU headers, with GNU long-name entries for paths and link
//! targets longer than 100 bytes (names are raw bytes, so any name works), and
//! a POSIX extended (pax) header before an entry when it needs one: for
//! modification times with nanoseconds or before 1970, owner or group names
//! longer than 32 bytes, and extended attributes (`SCHILY.xattr.*`). GNU tar
//! and bsdtar read all of these.
//!
//! File content is streamed one blob at a time; no file is ever held whole in
//! memory.

use crate::browse;
use crate::error::{Error, Result};
use crate::nesting;
use crate::repository::Repository;
use cairn_format::snapshot::Snapshot;
use cairn_format::tree::{Node, NodeKind};
use cairn_format::{BlobId, BlobKind, Timestamp};
use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::path::Path;
use tar::{EntryType, Header};

/// What a path in a snapshot dumps as.
#[derive(Clone, Debug)]
pub enum DumpTarget {
    /// A regular file: its content.
    File(Box<Node>),
    /// A directory, given by its tree and the tree's level below the
    /// snapshot's root: a tar archive of its contents.
    Tree(BlobId, usize),
}

impl DumpTarget {
    /// True when the output is a tar archive.
    pub fn is_tar(&self) -> bool {
        matches!(self, DumpTarget::Tree(..))
    }
}

/// Finds what `path` (`/` for the whole snapshot) dumps as. Paths that are
/// neither regular files nor directories are refused.
pub fn resolve(repo: &Repository, snapshot: &Snapshot, path: &Path) -> Result<DumpTarget> {
    match browse::find_node(repo, &snapshot.tree, path)? {
        None => Ok(DumpTarget::Tree(snapshot.tree, 0)),
        Some(node) => match &node.kind {
            NodeKind::File { .. } | NodeKind::Bundled { .. } => {
                Ok(DumpTarget::File(Box::new(node)))
            }
            NodeKind::Dir { subtree } => {
                let level = browse::path_names(path)?.len();
                Ok(DumpTarget::Tree(*subtree, level))
            }
            _ => Err(Error::Invalid(format!(
                "{} is not a regular file or a directory: there is nothing to dump",
                path.display()
            ))),
        },
    }
}

/// Writes `path` of `snapshot` to `out`: a regular file's content, or a tar
/// archive of a directory (`/` for the whole snapshot). To learn which before
/// anything is written, call [`resolve`] and then [`write`](fn@write).
pub fn dump(
    repo: &Repository,
    snapshot: &Snapshot,
    path: &Path,
    out: &mut dyn Write,
) -> Result<()> {
    write(repo, &resolve(repo, snapshot, path)?, out)
}

/// Writes `target` to `out` (see [`dump`]). On an error the output stops
/// where it is: a tar archive is then left without its end marker, so it
/// does not look complete.
pub fn write(repo: &Repository, target: &DumpTarget, out: &mut dyn Write) -> Result<()> {
    match target {
        DumpTarget::File(node) => {
            let mut reader = FileReader::new(repo, node, &node.name);
            match io::copy(&mut reader, out) {
                Ok(_) => {}
                Err(e) => return Err(reader.error.take().unwrap_or_else(|| write_error(e))),
            }
        }
        DumpTarget::Tree(tree, level) => {
            let mut tar = TarWriter {
                repo,
                builder: tar::Builder::new(out),
                hard_links: HashMap::new(),
            };
            if let Err(e) = tar.dir(tree, b"", *level) {
                // Dropping the builder would write the end-of-archive marker
                // and make a truncated archive look whole; it holds nothing
                // but a reference and flags, so forgetting it leaks nothing.
                std::mem::forget(tar.builder);
                return Err(e);
            }
            tar.builder.into_inner().map_err(write_error)?;
        }
    }
    out.flush().map_err(write_error)
}

fn write_error(e: io::Error) -> Error {
    Error::io("cannot write the dump", e)
}

/// Reads a file's content blob by blob, checking it adds up to the recorded
/// size: a file of a snapshot as a [`Read`]. A read that fails names the
/// problem in its error's text.
pub struct FileReader<'a> {
    repo: &'a Repository,
    blobs: std::slice::Iter<'a, BlobId>,
    /// A bundled file: where it starts in its bundle, and its content ID.
    bundled: Option<(u64, BlobId)>,
    /// The current blob and how much of it was read.
    blob: Vec<u8>,
    pos: usize,
    /// Bytes still expected.
    left: u64,
    /// Path for messages.
    path: &'a [u8],
    /// The engine error behind a failed read, which `io::Error` cannot carry.
    error: Option<Error>,
}

impl<'a> FileReader<'a> {
    /// A reader of `node`'s content; `path` names it in messages.
    pub fn new(repo: &'a Repository, node: &'a Node, path: &'a [u8]) -> Self {
        let data = node.kind.file_data();
        FileReader {
            repo,
            blobs: data.map_or([].iter(), |d| d.blobs.iter()),
            bundled: data.and_then(|d| Some((d.offset, d.id?))),
            blob: Vec::new(),
            pos: 0,
            left: node.size,
            path,
            error: None,
        }
    }

    fn fail(&mut self, e: Error) -> io::Error {
        let io = io::Error::other(e.to_string());
        self.error = Some(e);
        io
    }

    fn size_error(&self, problem: &str) -> Error {
        Error::Invalid(format!(
            "{}: the content is {problem} than the recorded size",
            String::from_utf8_lossy(self.path)
        ))
    }
}

impl Read for FileReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.pos == self.blob.len() {
            let Some(id) = self.blobs.next() else {
                if self.left > 0 {
                    let e = self.size_error("shorter");
                    return Err(self.fail(e));
                }
                return Ok(0);
            };
            let blob = match self.repo.read_blob(BlobKind::Data, id) {
                Ok(b) => match self.bundled {
                    Some((offset, id)) => self
                        .repo
                        .bundled_content(&b, offset, self.left, &id)
                        .map(<[u8]>::to_vec),
                    None => Ok(b),
                },
                Err(e) => Err(e),
            };
            let blob = match blob {
                Ok(b) => b,
                Err(e) => return Err(self.fail(e)),
            };
            if blob.len() as u64 > self.left {
                let e = self.size_error("longer");
                return Err(self.fail(e));
            }
            self.left -= blob.len() as u64;
            self.blob = blob;
            self.pos = 0;
        }
        let n = buf.len().min(self.blob.len() - self.pos);
        buf[..n].copy_from_slice(&self.blob[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

struct TarWriter<'a, 'w> {
    repo: &'a Repository,
    builder: tar::Builder<&'w mut dyn Write>,
    /// Archive path and node of the first entry of each multiply-linked
    /// file, by recorded (device, inode).
    hard_links: HashMap<(u64, u64), (Vec<u8>, Node)>,
}

impl TarWriter<'_, '_> {
    /// Adds the entries of `tree`, a tree at `level` whose archive path is
    /// `prefix` (empty for the top), depth first.
    fn dir(&mut self, tree: &BlobId, prefix: &[u8], level: usize) -> Result<()> {
        for node in self.repo.load_tree(tree)?.nodes {
            let mut path = prefix.to_vec();
            if !path.is_empty() {
                path.push(b'/');
            }
            path.extend_from_slice(&node.name);
            self.entry(&node, &path)?;
            if let NodeKind::Dir { subtree } = &node.kind {
                let name = || String::from_utf8_lossy(&path).into_owned();
                nesting::descend(level, name, |at| self.dir(subtree, &path, at))?;
            }
        }
        Ok(())
    }

    fn entry(&mut self, node: &Node, path: &[u8]) -> Result<()> {
        let mut header = Header::new_gnu();
        header.set_mode(node.mode);
        header.set_uid(u64::from(node.uid));
        header.set_gid(u64::from(node.gid));
        header.set_mtime(u64::try_from(node.mtime.secs).unwrap_or(0));
        header.set_size(0);
        let mut pax = Vec::new();
        if node.mtime.nanos != 0 || node.mtime.secs < 0 {
            pax_record(&mut pax, "mtime", pax_time(node.mtime).as_bytes());
        }
        // The GNU header holds names of up to 32 bytes.
        if header.set_username(&node.user).is_err() {
            pax_record(&mut pax, "uname", node.user.as_bytes());
        }
        if header.set_groupname(&node.group).is_err() {
            pax_record(&mut pax, "gname", node.group.as_bytes());
        }
        for x in &node.xattrs {
            if let Ok(name) = std::str::from_utf8(&x.name) {
                pax_record(&mut pax, &format!("SCHILY.xattr.{name}"), &x.value);
            }
        }

        let mut name = path.to_vec();
        let mut link = None;
        match &node.kind {
            NodeKind::File { .. } | NodeKind::Bundled { .. } => {
                let key = (node.device, node.inode);
                match self
                    .hard_links
                    .get(&key)
                    .filter(|(_, n)| n.is_link_of(node))
                {
                    Some((first, _)) => {
                        header.set_entry_type(EntryType::Link);
                        link = Some(first.clone());
                    }
                    None => {
                        if node.links > 1 {
                            self.hard_links
                                .entry(key)
                                .or_insert_with(|| (path.to_vec(), node.clone()));
                        }
                        header.set_entry_type(EntryType::Regular);
                        header.set_size(node.size);
                        let mut reader = FileReader::new(self.repo, node, path);
                        return match self.append(header, &pax, &name, None, &mut reader) {
                            Ok(()) => Ok(()),
                            Err(e) => Err(reader.error.take().unwrap_or_else(|| write_error(e))),
                        };
                    }
                }
            }
            NodeKind::Dir { .. } => {
                header.set_entry_type(EntryType::Directory);
                name.push(b'/');
            }
            NodeKind::Symlink { target } => {
                header.set_entry_type(EntryType::Symlink);
                link = Some(target.clone());
            }
            NodeKind::Fifo => header.set_entry_type(EntryType::Fifo),
            NodeKind::CharDevice { rdev } | NodeKind::BlockDevice { rdev } => {
                header.set_entry_type(match node.kind {
                    NodeKind::CharDevice { .. } => EntryType::Char,
                    _ => EntryType::Block,
                });
                let dev = *rdev as libc::dev_t;
                header
                    .set_device_major(libc::major(dev))
                    .and_then(|_| header.set_device_minor(libc::minor(dev)))
                    .map_err(write_error)?;
            }
            NodeKind::Socket => return Ok(()),
        }
        self.append(header, &pax, &name, link.as_deref(), &mut io::empty())
            .map_err(write_error)
    }

    /// Writes one entry: its pax extended header when there are `pax`
    /// records, GNU long-name and long-link entries when `name` or `link`
    /// do not fit the header, the header itself, then `data`.
    ///
    /// Names and link targets are copied as raw bytes. (The tar crate's own
    /// path setters tidy paths, and fail on a long path that starts with
    /// bytes that are not UTF-8.)
    fn append(
        &mut self,
        mut header: Header,
        pax: &[u8],
        name: &[u8],
        link: Option<&[u8]>,
        data: &mut dyn Read,
    ) -> io::Result<()> {
        if !pax.is_empty() {
            let mut ext = Header::new_ustar();
            set_field(&mut ext.as_old_mut().name, b"././@PaxHeader");
            ext.set_entry_type(EntryType::XHeader);
            ext.set_mode(0o644);
            ext.set_mtime(0);
            ext.set_size(pax.len() as u64);
            ext.set_cksum();
            self.builder.append(&ext, pax)?;
        }
        self.long_field(&mut header.as_old_mut().name, name, EntryType::GNULongName)?;
        if let Some(link) = link {
            self.long_field(
                &mut header.as_old_mut().linkname,
                link,
                EntryType::GNULongLink,
            )?;
        }
        header.set_cksum();
        self.builder.append(&header, data)
    }

    /// Puts `value` in the header field `field`, first writing a GNU
    /// long-name or long-link entry (`kind`) holding all of it when it is
    /// longer than the field.
    fn long_field(&mut self, field: &mut [u8], value: &[u8], kind: EntryType) -> io::Result<()> {
        if value.len() > field.len() {
            let mut long = Header::new_gnu();
            set_field(&mut long.as_old_mut().name, b"././@LongLink");
            long.set_entry_type(kind);
            long.set_mode(0o644);
            long.set_uid(0);
            long.set_gid(0);
            long.set_mtime(0);
            long.set_size(value.len() as u64 + 1);
            long.set_cksum();
            self.builder.append(&long, value.chain(&[0u8][..]))?;
        }
        set_field(field, value);
        Ok(())
    }
}

/// Copies as much of `value` as fits into a zero-filled header field.
fn set_field(field: &mut [u8], value: &[u8]) {
    let n = value.len().min(field.len());
    field[..n].copy_from_slice(&value[..n]);
}

/// Appends one pax record, `"<length> <key>=<value>\n"`, where the length
/// counts the whole record, its own digits included.
fn pax_record(out: &mut Vec<u8>, key: &str, value: &[u8]) {
    let rest = key.len() + value.len() + 3;
    let mut len = rest;
    loop {
        let total = rest + len.to_string().len();
        if total == len {
            break;
        }
        len = total;
    }
    out.extend_from_slice(format!("{len} {key}=").as_bytes());
    out.extend_from_slice(value);
    out.push(b'\n');
}

/// A time as a pax decimal: seconds with a fraction, the whole value
/// negative before 1970 (`secs = -2, nanos = 0.25 s` is `-1.750000000`).
fn pax_time(t: Timestamp) -> String {
    if t.secs >= 0 {
        format!("{}.{:09}", t.secs, t.nanos)
    } else if t.nanos == 0 {
        format!("{}", t.secs)
    } else {
        let whole = -(t.secs + 1);
        format!("-{whole}.{:09}", 1_000_000_000 - t.nanos)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pax_records_count_their_own_length() {
        let mut out = Vec::new();
        pax_record(&mut out, "mtime", b"1.5");
        assert_eq!(out, b"13 mtime=1.5\n");
        for n in 0..300 {
            let mut out = Vec::new();
            let value = vec![b'v'; n];
            pax_record(&mut out, "k", &value);
            let text = String::from_utf8(out.clone()).unwrap();
            let (len, _) = text.split_once(' ').unwrap();
            assert_eq!(len.parse::<usize>().unwrap(), out.len(), "{text}");
        }
    }

    #[test]
    fn pax_times_before_1970_are_negative_decimals() {
        let t = |secs, nanos| pax_time(Timestamp { secs, nanos });
        assert_eq!(t(5, 7), "5.000000007");
        assert_eq!(t(0, 0), "0.000000000");
        assert_eq!(t(-2, 250_000_000), "-1.750000000");
        assert_eq!(t(-1, 500_000_000), "-0.500000000");
        assert_eq!(t(-3, 0), "-3");
    }
}
