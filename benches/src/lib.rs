//! # cairn-benches
//!
//! Input generators, synthetic IDs, memory measurement and scratch space
//! shared by the benchmarks in `benches/`. The generators are deterministic:
//! the same seed always gives the same bytes, so runs on different days
//! measure the same work. Nothing is downloaded or read from outside the
//! process.
#![warn(missing_docs)]

use std::ffi::CString;
use std::fs;
use std::io::{self, Write};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

/// One mebibyte.
pub const MIB: usize = 1024 * 1024;

/// A small, fast pseudo-random generator (xorshift64*). Not for secrets: it
/// only has to produce bytes that neither zstd nor the chunker can predict.
#[derive(Clone, Debug)]
pub struct Xorshift(u64);

impl Xorshift {
    /// A generator for `seed`; every seed, zero included, gives a usable state.
    pub fn new(seed: u64) -> Self {
        // Spread the seed with a SplitMix64 step so nearby seeds diverge at once.
        let mut z = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        Xorshift((z ^ (z >> 31)) | 1)
    }

    /// The next 64 pseudo-random bits.
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A value in `0..n` (`n` > 0); the slight modulo bias does not matter here.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }

    /// Overwrites `buf` with pseudo-random bytes.
    pub fn fill(&mut self, buf: &mut [u8]) {
        let mut words = buf.chunks_exact_mut(8);
        for w in &mut words {
            w.copy_from_slice(&self.next_u64().to_le_bytes());
        }
        let tail = words.into_remainder();
        let last = self.next_u64().to_le_bytes();
        tail.copy_from_slice(&last[..tail.len()]);
    }
}

/// `len` incompressible bytes.
pub fn random_bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut out = vec![0u8; len];
    Xorshift::new(seed).fill(&mut out);
    out
}

const VOCABULARY: [&str; 48] = [
    "the",
    "a",
    "of",
    "and",
    "to",
    "in",
    "is",
    "for",
    "on",
    "with",
    "that",
    "this",
    "file",
    "directory",
    "archive",
    "snapshot",
    "restore",
    "backup",
    "volume",
    "server",
    "client",
    "disk",
    "copy",
    "chunk",
    "stream",
    "block",
    "write",
    "read",
    "error",
    "warning",
    "request",
    "response",
    "user",
    "group",
    "time",
    "size",
    "daily",
    "weekly",
    "remote",
    "local",
    "checksum",
    "version",
    "config",
    "session",
    "report",
    "mirror",
    "offset",
    "length",
];

/// `len` bytes of English-looking log text: words from a small vocabulary with
/// the odd number and line break. zstd shrinks it several times over, much as
/// it does source code, logs and documents.
pub fn compressible_text(len: usize, seed: u64) -> Vec<u8> {
    let mut rng = Xorshift::new(seed);
    let mut out = Vec::with_capacity(len + 32);
    let mut words_on_line = 0;
    while out.len() < len {
        let r = rng.next_u64();
        if r % 9 == 0 {
            // A number, as in sizes, counters and timestamps.
            out.extend_from_slice(((r >> 8) % 100_000).to_string().as_bytes());
        } else {
            let word = VOCABULARY[((r >> 8) % VOCABULARY.len() as u64) as usize];
            out.extend_from_slice(word.as_bytes());
        }
        words_on_line += 1;
        if words_on_line >= 6 + (r >> 40) % 10 {
            out.push(b'\n');
            words_on_line = 0;
        } else {
            out.push(b' ');
        }
    }
    out.truncate(len);
    out
}

/// What [`build_tree`] wrote.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TreeStats {
    /// Regular files written.
    pub files: u64,
    /// Directories written, the root included.
    pub dirs: u64,
    /// Bytes of file content.
    pub bytes: u64,
}

/// The shape of a generated source tree.
#[derive(Clone, Copy, Debug)]
pub struct TreeSpec {
    /// Directories holding the small files.
    pub text_dirs: usize,
    /// Small text files per directory.
    pub text_files_per_dir: usize,
    /// Largest small file; sizes are spread evenly from 1 KiB up to this.
    pub text_max_len: usize,
    /// Number of large incompressible files.
    pub big_files: usize,
    /// Size of each large file.
    pub big_len: usize,
}

impl TreeSpec {
    /// About 64 MiB: 512 text files averaging 32 KiB in 16 directories, and
    /// three random 16 MiB files.
    pub const MIXED_64MIB: TreeSpec = TreeSpec {
        text_dirs: 16,
        text_files_per_dir: 32,
        text_max_len: 63 * 1024,
        big_files: 3,
        big_len: 16 * MIB,
    };
}

/// Writes a tree shaped by `spec` under `root` (created if missing), the same
/// bytes for the same `seed`.
pub fn build_tree(root: &Path, spec: &TreeSpec, seed: u64) -> io::Result<TreeStats> {
    let mut rng = Xorshift::new(seed);
    let mut stats = TreeStats {
        files: 0,
        dirs: 1,
        bytes: 0,
    };
    fs::create_dir_all(root)?;
    for d in 0..spec.text_dirs {
        let dir = root.join("docs").join(format!("section-{d:02}"));
        fs::create_dir_all(&dir)?;
        stats.dirs += 1;
        for f in 0..spec.text_files_per_dir {
            let span = spec.text_max_len.saturating_sub(1024) as u64 + 1;
            let len = 1024 + rng.below(span) as usize;
            let text = compressible_text(len, rng.next_u64());
            fs::write(dir.join(format!("note-{f:03}.txt")), &text)?;
            stats.files += 1;
            stats.bytes += len as u64;
        }
    }
    if spec.text_dirs > 0 {
        stats.dirs += 1; // docs/
    }
    if spec.big_files > 0 {
        let media = root.join("media");
        fs::create_dir_all(&media)?;
        stats.dirs += 1;
        let mut buf = vec![0u8; MIB];
        for b in 0..spec.big_files {
            let mut file =
                io::BufWriter::new(fs::File::create(media.join(format!("blob-{b}.bin")))?);
            let mut gen = Xorshift::new(rng.next_u64());
            let mut left = spec.big_len;
            while left > 0 {
                let n = left.min(buf.len());
                gen.fill(&mut buf[..n]);
                file.write_all(&buf[..n])?;
                left -= n;
            }
            file.flush()?;
            stats.files += 1;
            stats.bytes += spec.big_len as u64;
        }
    }
    Ok(stats)
}

/// Where benchmarks put their files: `$CAIRN_BENCH_DIR` if set, else `/dev/shm`
/// when it exists and has at least `need` bytes free (so the disk does not
/// dominate the numbers), else the system temporary directory.
pub fn scratch_base(need: u64) -> PathBuf {
    if let Some(dir) = std::env::var_os("CAIRN_BENCH_DIR") {
        return PathBuf::from(dir);
    }
    let shm = Path::new("/dev/shm");
    if shm.is_dir() && free_bytes(shm).is_some_and(|free| free >= need) {
        return shm.to_path_buf();
    }
    std::env::temp_dir()
}

/// A fresh temporary directory under [`scratch_base`], removed when dropped.
pub fn scratch_dir(need: u64) -> io::Result<tempfile::TempDir> {
    tempfile::Builder::new()
        .prefix("cairn-bench-")
        .tempdir_in(scratch_base(need))
}

/// Bytes available to an unprivileged user on the file system holding `path`.
fn free_bytes(path: &Path) -> Option<u64> {
    let c = CString::new(path.as_os_str().as_bytes()).ok()?;
    let mut st = std::mem::MaybeUninit::<libc::statvfs>::uninit();
    // SAFETY: `c` is NUL-terminated and `st` is writable for one `statvfs`.
    let rc = unsafe { libc::statvfs(c.as_ptr(), st.as_mut_ptr()) };
    if rc != 0 {
        return None;
    }
    // SAFETY: statvfs returned 0, so it filled `st`.
    let st = unsafe { st.assume_init() };
    #[allow(clippy::unnecessary_cast)] // the field types differ between platforms
    Some(st.f_bavail as u64 * st.f_frsize as u64)
}

/// Pseudo-random 32 bytes for `n`, the same for the same `n`: synthetic blob
/// and pack IDs (splitmix64 from a seed spread over its state).
pub fn id_bytes(n: u64) -> [u8; 32] {
    let mut b = [0u8; 32];
    let mut x = n.wrapping_mul(0xD1B5_4A32_D192_ED03).rotate_left(29) ^ n;
    for chunk in b.chunks_mut(8) {
        x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = x;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        chunk.copy_from_slice(&(z ^ (z >> 31)).to_le_bytes());
    }
    b
}

/// The number given after `flag` on the command line (`--blobs 1000`), or
/// `default`.
pub fn number_arg(flag: &str, default: u64) -> u64 {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == flag)
        .and_then(|i| args.get(i + 1))
        .and_then(|n| n.parse().ok())
        .unwrap_or(default)
}

/// The process's resident memory in bytes (`VmRSS`; 0 where `/proc` is missing).
pub fn rss_bytes() -> u64 {
    proc_status_bytes("VmRSS:")
}

/// The process's peak resident memory in bytes (`VmHWM`): since it started,
/// or since the last reset by [`PeakRss::start`].
pub fn peak_rss_bytes() -> u64 {
    proc_status_bytes("VmHWM:")
}

/// A field of `/proc/self/status` given in kB, in bytes.
fn proc_status_bytes(field: &str) -> u64 {
    let status = fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix(field))
        .and_then(|rest| rest.split_whitespace().next()?.parse::<u64>().ok())
        .map_or(0, |kib| kib * 1024)
}

/// Measures the peak resident memory of a stretch of work.
pub struct PeakRss {
    /// Where the kernel's peak cannot be reset: the flag that stops the
    /// sampling thread, and the thread, which returns the largest sample.
    sampler: Option<(Arc<AtomicBool>, thread::JoinHandle<u64>)>,
}

impl PeakRss {
    /// Starts measuring: resets the kernel's peak (`VmHWM`) to the current
    /// resident memory by writing `5` to `/proc/self/clear_refs` (Linux 4.0
    /// and later) and checks that it took; where it did not, samples `VmRSS`
    /// every 10 ms from a thread instead (which can miss a short spike).
    pub fn start() -> PeakRss {
        let reset = fs::write("/proc/self/clear_refs", "5").is_ok()
            && peak_rss_bytes() > 0
            && peak_rss_bytes() <= rss_bytes() + MIB as u64;
        if reset {
            return PeakRss { sampler: None };
        }
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let sampler = thread::spawn(move || {
            let mut peak = rss_bytes();
            while !flag.load(Ordering::Relaxed) {
                thread::sleep(Duration::from_millis(10));
                peak = peak.max(rss_bytes());
            }
            peak
        });
        PeakRss {
            sampler: Some((stop, sampler)),
        }
    }

    /// How the peak is measured, for reports.
    pub fn method(&self) -> &'static str {
        match self.sampler {
            None => "VmHWM reset through /proc/self/clear_refs",
            Some(_) => "VmRSS sampled every 10 ms",
        }
    }

    /// Stops measuring; the peak resident bytes since [`PeakRss::start`].
    pub fn finish(self) -> u64 {
        match self.sampler {
            None => peak_rss_bytes(),
            Some((stop, sampler)) => {
                stop.store(true, Ordering::Relaxed);
                let sampled = sampler.join().expect("the sampling thread does not panic");
                sampled.max(rss_bytes())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generators_are_deterministic() {
        assert_eq!(random_bytes(1000, 7), random_bytes(1000, 7));
        assert_ne!(random_bytes(1000, 7), random_bytes(1000, 8));
        assert_eq!(compressible_text(5000, 1), compressible_text(5000, 1));
        assert_eq!(compressible_text(5000, 1).len(), 5000);
        assert_eq!(random_bytes(13, 0).len(), 13);
    }

    #[test]
    fn ids_are_deterministic_and_memory_is_read() {
        assert_eq!(id_bytes(5), id_bytes(5));
        assert_ne!(id_bytes(5), id_bytes(6));
        let rss = rss_bytes();
        assert!(rss > 0);
        let peak = PeakRss::start();
        assert!(peak.finish() >= rss / 2);
    }

    #[test]
    fn tree_has_the_announced_size() {
        let dir = tempfile::tempdir().unwrap();
        let spec = TreeSpec {
            text_dirs: 2,
            text_files_per_dir: 3,
            text_max_len: 4096,
            big_files: 1,
            big_len: MIB + 5,
        };
        let stats = build_tree(dir.path(), &spec, 1).unwrap();
        assert_eq!(stats.files, 7);
        assert_eq!(stats.dirs, 5);
        let big = fs::metadata(dir.path().join("media/blob-0.bin"))
            .unwrap()
            .len();
        assert_eq!(big, MIB as u64 + 5);
    }
}
