#![no_main]
//! `codec::decode::<Snapshot>` on raw bytes (the plaintext of a snapshot file).
//!
//! The body is `cairn_fuzz::snapshot` (in `src/lib.rs`), shared with the stable
//! smoke fuzzer of the main workspace.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| cairn_fuzz::snapshot(data));
