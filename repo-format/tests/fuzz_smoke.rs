//! Smoke fuzzing on the stable toolchain: every fuzz target of `fuzz/` runs
//! for a short, bounded time under a small in-process mutation fuzzer, as part
//! of `cargo test`.
//!
//! The targets, their seeds and the seed check are not copied here: they are
//! the functions of `fuzz/src/lib.rs` (the library of the cargo-fuzz
//! workspace), included below as a module. cargo-fuzz (libFuzzer, coverage
//! guided, nightly, sanitizers) stays the tool for long runs; see
//! `fuzz/README.md`.
//!
//! For each target the fuzzer starts from the target's seeds and an empty
//! input, then repeatedly takes a corpus entry (half the time a seed or the
//! empty input), stacks a few mutations on it
//! (bit flips, interesting bytes, inserted, deleted, duplicated and copied
//! ranges, truncation, splices with another entry, little-endian `u32`/`u64`
//! and postcard varints set to boundary values) and runs the target on the
//! result under `catch_unwind`. Without coverage feedback, "new" is judged by a
//! cheap proxy: how many allocations the call made and the magnitude of their
//! total size (a decoder that gets further allocates more strings and
//! vectors). An input with an unseen proxy joins the bounded in-memory corpus.
//!
//! A target fails when an input panics, takes longer than
//! [`MAX_INPUT_TIME`] (a loop; a watchdog reports one that never returns), or
//! makes a single allocation larger than [`MAX_ALLOCATION`] (an allocation
//! sized from untrusted bytes). The failing input is printed in hex and
//! written to `target/fuzz-smoke/<target>-<n>.bin`. Reproduce it with
//! `cargo +nightly fuzz run <target> ../target/fuzz-smoke/<target>-<n>.bin`
//! from `fuzz/`, or rerun this test with the printed seed.
//!
//! Environment:
//! - `CAIRN_FUZZ_SECONDS`: fuzzing time per target (default 1.5, fractions allowed);
//! - `CAIRN_FUZZ_SEED`: seed of the mutations (decimal or `0x` hex; the default is fixed);
//! - `CAIRN_FUZZ_TARGETS`: comma-separated subset of targets (default: all).
//!
//! The per-target summary goes straight to the process's stderr, so it shows
//! in `cargo test` output without `--nocapture`.

#[path = "../../fuzz/src/lib.rs"]
mod cairn_fuzz;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::{Cell, RefCell};
use std::collections::HashSet;
use std::hash::{Hash, Hasher};
use std::io::Write;
use std::panic;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// Fuzzing time per target when `CAIRN_FUZZ_SECONDS` is unset.
const DEFAULT_SECONDS: f64 = 1.5;
/// Mutation seed when `CAIRN_FUZZ_SEED` is unset.
const DEFAULT_SEED: u64 = 0xCA12_F022_5EED_0001;
/// Longest time one input may take.
const MAX_INPUT_TIME: Duration = Duration::from_secs(2);
/// Largest single allocation one input may ask for (the decoders' own limits
/// are 1 MiB for the fuzzed frames and 64 MiB for an authenticated pack
/// header, which mutated envelopes never reach).
const MAX_ALLOCATION: usize = 256 << 20;
/// Executions per second every target must reach (3 000 executions in the
/// default 1.5 s). Measured on 2 busy cores with the dev profile (opt-level 1,
/// dependencies 2): the slowest targets (`sealed`, `key_file`) run 35 000 to
/// 50 000/s, `tree` and `snapshot` about 70 000/s, the others 300 000 to
/// 1 200 000/s.
const MIN_EXECS_PER_SECOND: f64 = 2_000.0;
/// Mutated inputs kept per target, besides the seeds and the empty input.
const CORPUS_CAP: usize = 256;
/// Inputs are cut to the larger of this and the target's largest seed.
const MIN_MAX_LEN: usize = 4096;

// ---------------------------------------------------------------------------
// Allocation tracking: per thread, so the watchdog and other tests don't
// disturb the numbers of the fuzzing thread.
// ---------------------------------------------------------------------------

struct Tracking;

thread_local! {
    static ALLOC_COUNT: Cell<u64> = const { Cell::new(0) };
    static ALLOC_BYTES: Cell<u64> = const { Cell::new(0) };
    static ALLOC_LARGEST: Cell<usize> = const { Cell::new(0) };
    /// The last panic of this thread, as the panic hook saw it (with location).
    static LAST_PANIC: RefCell<Option<String>> = const { RefCell::new(None) };
}

fn note_allocation(size: usize) {
    // `try_with`: never panic inside the allocator, even during thread teardown.
    let _ = ALLOC_COUNT.try_with(|c| c.set(c.get() + 1));
    let _ = ALLOC_BYTES.try_with(|c| c.set(c.get().wrapping_add(size as u64)));
    let _ = ALLOC_LARGEST.try_with(|c| c.set(c.get().max(size)));
}

unsafe impl GlobalAlloc for Tracking {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note_allocation(layout.size());
        System.alloc(layout)
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note_allocation(layout.size());
        System.alloc_zeroed(layout)
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout)
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note_allocation(new_size);
        System.realloc(ptr, layout, new_size)
    }
}

#[global_allocator]
static ALLOCATOR: Tracking = Tracking;

/// This thread's allocations since the last call: (count, total bytes, largest).
fn take_allocations() -> (u64, u64, usize) {
    (
        ALLOC_COUNT.with(|c| c.replace(0)),
        ALLOC_BYTES.with(|c| c.replace(0)),
        ALLOC_LARGEST.with(|c| c.replace(0)),
    )
}

// ---------------------------------------------------------------------------
// Settings, PRNG, mutations.
// ---------------------------------------------------------------------------

struct Settings {
    seconds: f64,
    seed: u64,
    targets: Vec<(&'static str, cairn_fuzz::Target)>,
}

impl Settings {
    fn from_env() -> Settings {
        let var = |name: &str| match std::env::var(name) {
            Ok(v) if !v.trim().is_empty() => Some(v.trim().to_string()),
            Ok(_) => None,
            Err(std::env::VarError::NotPresent) => None,
            Err(e) => panic!("{name}: {e}"),
        };
        let seconds = var("CAIRN_FUZZ_SECONDS").map_or(DEFAULT_SECONDS, |v| {
            v.parse::<f64>()
                .ok()
                .filter(|s| s.is_finite() && *s > 0.0)
                .unwrap_or_else(|| {
                    panic!("CAIRN_FUZZ_SECONDS must be a positive number, got {v:?}")
                })
        });
        let seed = var("CAIRN_FUZZ_SEED").map_or(DEFAULT_SEED, |v| {
            let parsed = match v.strip_prefix("0x").or_else(|| v.strip_prefix("0X")) {
                Some(hex) => u64::from_str_radix(&hex.replace('_', ""), 16),
                None => v.replace('_', "").parse::<u64>(),
            };
            parsed.unwrap_or_else(|_| {
                panic!("CAIRN_FUZZ_SEED must be a u64 (decimal or 0x hex), got {v:?}")
            })
        });
        let all = cairn_fuzz::TARGETS;
        let targets = match var("CAIRN_FUZZ_TARGETS") {
            None => all.to_vec(),
            Some(list) => list
                .split(',')
                .map(str::trim)
                .filter(|n| !n.is_empty())
                .map(|n| {
                    *all.iter().find(|(name, _)| *name == n).unwrap_or_else(|| {
                        let names: Vec<_> = all.iter().map(|(name, _)| *name).collect();
                        panic!("CAIRN_FUZZ_TARGETS: unknown target {n:?} (targets: {names:?})")
                    })
                })
                .collect(),
        };
        Settings {
            seconds,
            seed,
            targets,
        }
    }
}

/// splitmix64.
struct Rng(u64);

impl Rng {
    fn new(seed: u64, target: &str) -> Rng {
        // FNV-1a of the name, so each target has its own stream and running a
        // subset of targets reproduces the same inputs.
        let mut h = 0xcbf2_9ce4_8422_2325u64;
        for b in target.bytes() {
            h = (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3);
        }
        Rng(seed ^ h)
    }

    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`n > 0`).
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn one_in(&mut self, n: usize) -> bool {
        self.below(n) == 0
    }

    fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len())]
    }

    /// A length in `1..=max` (`max > 0`), usually short.
    fn len_up_to(&mut self, max: usize) -> usize {
        let cap = if self.one_in(4) { max } else { max.min(16) };
        1 + self.below(cap)
    }

    /// A small non-zero signed delta.
    fn delta(&mut self) -> i64 {
        let d = 1 + self.below(35) as i64;
        if self.one_in(2) {
            -d
        } else {
            d
        }
    }
}

const INTERESTING_8: &[u8] = &[
    0, 1, 2, 0x10, 0x20, 0x40, 0x7e, 0x7f, 0x80, 0x81, 0xc0, 0xfe, 0xff,
];

/// Boundaries of postcard varints (7-bit groups), of u8/u16/u32/i32/u64/i64,
/// of the timestamp nanoseconds, and the decoders' size limits.
const INTERESTING_64: &[u64] = &[
    0,
    1,
    2,
    0x7f,
    0x80,
    0xff,
    0x100,
    0x3fff,
    0x4000,
    0x7fff,
    0x8000,
    0xffff,
    0x1_0000,
    0x1f_ffff,
    0x20_0000,
    0x10_0000,
    0x10_0001,
    0x400_0000,
    999_999_999,
    1_000_000_000,
    0x0fff_ffff,
    0x1000_0000,
    0x7fff_ffff,
    0x8000_0000,
    0xffff_fffe,
    0xffff_ffff,
    0x1_0000_0000,
    0x7fff_ffff_ffff_ffff,
    0x8000_0000_0000_0000,
    0xffff_ffff_ffff_fffe,
    0xffff_ffff_ffff_ffff,
];

/// A boundary value: from the table, or derived from the input's length and
/// the position being written (lengths and offsets that just fit or just don't).
fn boundary(rng: &mut Rng, len: usize, pos: usize) -> u64 {
    let mut v = if rng.one_in(4) {
        let rest = len.saturating_sub(pos) as u64;
        rng.pick(&[
            len as u64,
            rest,
            rest.saturating_sub(1),
            rest + 1,
            pos as u64,
        ])
    } else {
        rng.pick(INTERESTING_64)
    };
    if rng.one_in(8) {
        v = v.wrapping_add_signed(rng.delta());
    }
    v
}

fn push_varint(mut v: u64, out: &mut Vec<u8>) {
    loop {
        let byte = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

/// The end of the varint that starts at `pos` (at most 10 bytes, or to the end
/// of the data if it isn't terminated) and its value (wrapping).
fn varint_at(data: &[u8], pos: usize) -> (usize, u64) {
    let (mut end, mut value) = (pos, 0u64);
    while end < data.len() && end - pos < 10 {
        let b = data[end];
        value |= u64::from(b & 0x7f).wrapping_shl(7 * (end - pos) as u32);
        end += 1;
        if b & 0x80 == 0 {
            break;
        }
    }
    (end, value)
}

/// Applies one random mutation to `data` (kept at most `max_len` bytes).
fn mutate_once(rng: &mut Rng, data: &mut Vec<u8>, corpus: &[Vec<u8>], max_len: usize) {
    let len = data.len();
    match rng.below(15) {
        // Flip one bit.
        0 if len > 0 => {
            let p = rng.below(len);
            data[p] ^= 1 << rng.below(8);
        }
        // Set a byte to an interesting value or a length.
        1 if len > 0 => {
            let p = rng.below(len);
            data[p] = if rng.one_in(4) {
                rng.pick(&[len as u8, (len - p) as u8, (len - p - 1) as u8])
            } else {
                rng.pick(INTERESTING_8)
            };
        }
        // Set a byte to a random value.
        2 if len > 0 => {
            let p = rng.below(len);
            data[p] = rng.next() as u8;
        }
        // Add or subtract a little.
        3 if len > 0 => {
            let p = rng.below(len);
            data[p] = data[p].wrapping_add(rng.delta() as u8);
        }
        // Delete a range.
        4 if len > 0 => {
            let start = rng.below(len);
            let n = rng.len_up_to(len - start);
            data.drain(start..start + n);
        }
        // Duplicate a range (insert a copy of it somewhere).
        5 if len > 0 && len < max_len => {
            let start = rng.below(len);
            let n = rng.len_up_to(len - start).min(max_len - len);
            let copy = data[start..start + n].to_vec();
            let at = rng.below(len + 1);
            data.splice(at..at, copy);
        }
        // Copy a range over another place.
        6 if len > 1 => {
            let from = rng.below(len);
            let to = rng.below(len);
            let n = rng.len_up_to(len - from.max(to));
            data.copy_within(from..from + n, to);
        }
        // Truncate.
        7 if len > 0 => data.truncate(rng.below(len)),
        // Splice with another corpus entry: our head and its tail, or a piece
        // of it inserted.
        8 if !corpus.is_empty() => {
            let other = &corpus[rng.below(corpus.len())];
            if other.is_empty() {
                return;
            }
            let from = rng.below(other.len());
            if rng.one_in(2) {
                data.truncate(rng.below(len + 1));
                data.extend_from_slice(&other[from..]);
            } else {
                let n = rng.len_up_to(other.len() - from);
                let at = rng.below(len + 1);
                data.splice(at..at, other[from..from + n].iter().copied());
            }
        }
        // Overwrite a little-endian u32.
        9 if len >= 4 => {
            let p = rng.below(len - 3);
            let v = boundary(rng, len, p) as u32;
            data[p..p + 4].copy_from_slice(&v.to_le_bytes());
        }
        // Overwrite a little-endian u64.
        10 if len >= 8 => {
            let p = rng.below(len - 7);
            let v = boundary(rng, len, p);
            data[p..p + 8].copy_from_slice(&v.to_le_bytes());
        }
        // Replace the varint at a position by a boundary value, or by an
        // overlong or unterminated one.
        11 if len > 0 => {
            let p = rng.below(len);
            let (end, _) = varint_at(data, p);
            let mut new = Vec::with_capacity(10);
            match rng.below(8) {
                0 => new.extend_from_slice(&[0xff; 10]),
                1 => new.extend_from_slice(&[0x80, 0x80, 0x80, 0x80, 0x10]),
                2 => new.extend_from_slice(&[0x80, 0x00]),
                _ => push_varint(boundary(rng, len, end), &mut new),
            }
            data.splice(p..end, new);
        }
        // Add or subtract a little to the varint at a position (a length
        // prefix that is just too long or too short).
        12 if len > 0 => {
            let p = rng.below(len);
            let (end, value) = varint_at(data, p);
            let mut new = Vec::with_capacity(10);
            push_varint(value.wrapping_add_signed(rng.delta()), &mut new);
            data.splice(p..end, new);
        }
        // Insert bytes: random, one repeated interesting byte, or a varint.
        _ if len < max_len => {
            let at = rng.below(len + 1);
            let most = if rng.one_in(8) { 256 } else { 16 };
            let n = rng.len_up_to(most);
            let bytes: Vec<u8> = match rng.below(3) {
                0 => (0..n).map(|_| rng.next() as u8).collect(),
                1 => vec![rng.pick(INTERESTING_8); n],
                _ => {
                    let mut v = Vec::new();
                    push_varint(boundary(rng, len, at), &mut v);
                    v
                }
            };
            data.splice(at..at, bytes);
        }
        _ => {}
    }
    data.truncate(max_len);
}

/// A new input: a corpus entry with 1, 2 or 4 mutations stacked on it. Half
/// the time the entry is one of the first `fixed` (the seeds and the empty
/// input): mutated inputs drift towards invalid ones, and a valid seed with a
/// mutation or two is what reaches the decoders' later checks.
fn mutate(rng: &mut Rng, corpus: &[Vec<u8>], fixed: usize, max_len: usize) -> Vec<u8> {
    let from = if rng.one_in(2) { fixed } else { corpus.len() };
    let mut data = corpus[rng.below(from)].clone();
    for _ in 0..1 << rng.below(3) {
        mutate_once(rng, &mut data, corpus, max_len);
    }
    data
}

// ---------------------------------------------------------------------------
// The fuzzing loop of one target, and the watchdog around it.
// ---------------------------------------------------------------------------

/// The input being run, for the watchdog.
#[derive(Default)]
struct InFlight {
    started: Option<Instant>,
    exec: u64,
    input: Vec<u8>,
}

struct Failure {
    exec: u64,
    what: String,
    input: Vec<u8>,
}

struct Outcome {
    execs: u64,
    corpus: usize,
    slowest: Duration,
    slowest_len: usize,
    failure: Option<Failure>,
}

fn fuzz_target(
    name: &str,
    target: cairn_fuzz::Target,
    seeds: Vec<Vec<u8>>,
    budget: Duration,
    seed: u64,
    in_flight: &Mutex<InFlight>,
) -> Outcome {
    let start = Instant::now();
    let mut rng = Rng::new(seed, name);
    let max_len = seeds.iter().map(Vec::len).fold(MIN_MAX_LEN, usize::max);
    // The seeds and the empty input are always kept; mutated inputs go after them.
    let mut corpus = seeds;
    corpus.push(Vec::new());
    let fixed = corpus.len();
    let mut seen_inputs: HashSet<u64> = HashSet::new();
    let mut seen_features: HashSet<(u64, u32)> = HashSet::new();
    let mut out = Outcome {
        execs: 0,
        corpus: 0,
        slowest: Duration::ZERO,
        slowest_len: 0,
        failure: None,
    };
    loop {
        let input = if (out.execs as usize) < fixed {
            corpus[out.execs as usize].clone()
        } else if start.elapsed() < budget {
            mutate(&mut rng, &corpus, fixed, max_len)
        } else {
            break;
        };
        {
            let mut slot = in_flight.lock().unwrap();
            slot.input.clear();
            slot.input.extend_from_slice(&input);
            slot.exec = out.execs;
            slot.started = Some(Instant::now());
        }
        take_allocations();
        let t0 = Instant::now();
        let result = panic::catch_unwind(|| target(&input));
        let took = t0.elapsed();
        let (allocs, bytes, largest) = take_allocations();
        in_flight.lock().unwrap().started = None;
        let exec = out.execs;
        out.execs += 1;

        let what = match result {
            Err(payload) => Some(LAST_PANIC.with(|p| p.borrow_mut().take()).unwrap_or_else(
                || match payload.downcast::<String>() {
                    Ok(s) => *s,
                    Err(payload) => payload
                        .downcast::<&str>()
                        .map_or_else(|_| "panic".to_string(), |s| s.to_string()),
                },
            )),
            Ok(()) if took > MAX_INPUT_TIME => Some(format!(
                "took {took:?} (limit {MAX_INPUT_TIME:?}): a loop or runaway work"
            )),
            Ok(()) if largest > MAX_ALLOCATION => Some(format!(
                "allocated {largest} bytes at once (limit {MAX_ALLOCATION}): a size taken from the input?"
            )),
            Ok(()) => None,
        };
        if let Some(what) = what {
            out.failure = Some(Failure { exec, what, input });
            break;
        }
        if took > out.slowest {
            out.slowest = took;
            out.slowest_len = input.len();
        }
        // Cheap novelty: an allocation profile not seen before.
        // (The seeds' profiles count as seen; the seeds are in the corpus anyway.)
        let new_feature = seen_features.insert((allocs, 64 - bytes.leading_zeros()));
        if new_feature && exec as usize >= fixed {
            let mut h = std::collections::hash_map::DefaultHasher::new();
            input.hash(&mut h);
            if seen_inputs.insert(h.finish()) {
                if corpus.len() < fixed + CORPUS_CAP {
                    corpus.push(input);
                } else {
                    let i = fixed + rng.below(CORPUS_CAP);
                    corpus[i] = input;
                }
            }
        }
    }
    out.corpus = corpus.len();
    out
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Writes a failing input to `target/fuzz-smoke/<target>-<n>.bin`.
fn save(name: &str, exec: u64, input: &[u8]) -> String {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .map(|target| target.join("fuzz-smoke"))
        .unwrap_or_else(|| PathBuf::from("fuzz-smoke"));
    let path = dir.join(format!("{name}-{exec}.bin"));
    match std::fs::create_dir_all(&dir).and_then(|()| std::fs::write(&path, input)) {
        Ok(()) => format!("saved to {}", path.display()),
        Err(e) => format!("could not save it to {}: {e}", path.display()),
    }
}

/// Writes to the real stderr, past the test harness's output capture.
fn report(line: &str) {
    let _ = std::io::stderr().write_all(format!("fuzz_smoke: {line}\n").as_bytes());
}

#[test]
fn fuzz_every_target() {
    let settings = Settings::from_env();
    let budget = Duration::from_secs_f64(settings.seconds);
    let floor = (MIN_EXECS_PER_SECOND * settings.seconds).ceil() as u64;
    report(&format!(
        "seed {:#018x} (CAIRN_FUZZ_SEED), {} s per target (CAIRN_FUZZ_SECONDS), {} target(s)",
        settings.seed,
        settings.seconds,
        settings.targets.len()
    ));

    // Record each panic's message and location for the report, then let the
    // default hook print it as usual.
    let default_hook = panic::take_hook();
    panic::set_hook(Box::new(move |info| {
        let _ = LAST_PANIC.try_with(|p| *p.borrow_mut() = Some(info.to_string()));
        default_hook(info);
    }));

    let all_seeds = cairn_fuzz::seeds();
    let mut failures = Vec::new();
    for &(name, target) in &settings.targets {
        let seeds: Vec<Vec<u8>> = all_seeds
            .iter()
            .filter(|(t, _, _)| *t == name)
            .map(|(_, _, bytes)| bytes.clone())
            .collect();
        let in_flight = Arc::new(Mutex::new(InFlight::default()));
        let worker = {
            let in_flight = Arc::clone(&in_flight);
            let seed = settings.seed;
            thread::Builder::new()
                .name(format!("fuzz-{name}"))
                .stack_size(8 << 20)
                .spawn(move || fuzz_target(name, target, seeds, budget, seed, &in_flight))
                .expect("spawning the fuzzing thread")
        };
        // Watchdog: an input that never returns can't be timed by the worker.
        while !worker.is_finished() {
            thread::sleep(Duration::from_millis(10));
            let slot = in_flight.lock().unwrap();
            if let Some(started) = slot.started.filter(|s| s.elapsed() > MAX_INPUT_TIME) {
                failures.push(format!(
                    "target `{name}` (seed {:#018x}): input #{} still running after {:?} \
                     (a loop or runaway allocation); {}\ninput ({} bytes): {}",
                    settings.seed,
                    slot.exec,
                    started.elapsed(),
                    save(name, slot.exec, &slot.input),
                    slot.input.len(),
                    hex(&slot.input)
                ));
                drop(slot);
                // The stuck thread can't be stopped; fail now (it ends with
                // the test process).
                panic!("fuzz_smoke failed:\n{}", failures.join("\n\n"));
            }
        }
        let outcome = worker.join().expect("the fuzzing loop itself panicked");
        report(&format!(
            "{name:<12} executions {:>8} ({:>6.0}/s)  corpus {:>3}  slowest input {:>8.3} ms ({} bytes)",
            outcome.execs,
            outcome.execs as f64 / settings.seconds,
            outcome.corpus,
            outcome.slowest.as_secs_f64() * 1000.0,
            outcome.slowest_len
        ));
        if let Some(f) = outcome.failure {
            let msg = format!(
                "target `{name}` (seed {:#018x}) failed on input #{}: {}\n{}\ninput ({} bytes): {}",
                settings.seed,
                f.exec,
                f.what,
                save(name, f.exec, &f.input),
                f.input.len(),
                hex(&f.input)
            );
            report(&msg);
            failures.push(msg);
        } else if outcome.execs < floor {
            failures.push(format!(
                "target `{name}` ran only {} executions in {} s (floor {floor}): too slow to fuzz",
                outcome.execs, settings.seconds
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "fuzz_smoke failed:\n{}",
        failures.join("\n\n")
    );
}

/// The seeds the fuzzers start from still decode and open, so their success
/// paths are really fuzzed (the same check as `make_seeds`).
#[test]
fn seeds_are_accepted() {
    cairn_fuzz::check_seeds(&cairn_fuzz::seeds());
}

/// Every cargo-fuzz target is in `TARGETS` (and so smoke fuzzed here) and has
/// seeds, and every seed belongs to a target.
#[test]
fn every_fuzz_target_is_smoke_fuzzed() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../fuzz/fuzz_targets");
    let mut files: Vec<String> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("reading {dir}: {e}"))
        .map(|e| {
            e.expect("directory entry")
                .file_name()
                .into_string()
                .unwrap()
        })
        .filter_map(|f| f.strip_suffix(".rs").map(str::to_string))
        .collect();
    files.sort();
    let mut names: Vec<String> = cairn_fuzz::TARGETS
        .iter()
        .map(|(n, _)| n.to_string())
        .collect();
    names.sort();
    assert_eq!(
        files, names,
        "fuzz/fuzz_targets/*.rs versus cairn_fuzz::TARGETS"
    );
    let seeds = cairn_fuzz::seeds();
    for name in &names {
        assert!(
            seeds.iter().any(|(t, _, _)| t == name),
            "target {name} has no seed"
        );
    }
    for (t, n, _) in &seeds {
        assert!(
            names.iter().any(|name| name == t),
            "seed {t}/{n} has no target"
        );
    }
}
