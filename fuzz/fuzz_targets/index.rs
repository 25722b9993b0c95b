#![no_main]
//! `codec::decode::<IndexFile>` on raw bytes (the plaintext of an index file).
//!
//! The body is `cairn_fuzz::index` (in `src/lib.rs`), shared with the stable
//! smoke fuzzer of the main workspace.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| cairn_fuzz::index(data));
