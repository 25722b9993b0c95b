#![no_main]
//! `codec::decode` of a lock record and of a prune mark on raw bytes (the
//! plaintexts of files in `locks/` and `marks/`).
//!
//! The body is `cairn_fuzz::lock` (in `src/lib.rs`), shared with the stable
//! smoke fuzzer of the main workspace.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| cairn_fuzz::lock(data));
