#![no_main]
//! `read_key_header` on a whole key file, then `open_key_file` with a fixed
//! password, but only when the header asks for a tiny Argon2 cost: anything
//! dearer would make the fuzzer spend its time in the KDF.
//!
//! The body is `cairn_fuzz::key_file` (in `src/lib.rs`), shared with the stable
//! smoke fuzzer of the main workspace.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| cairn_fuzz::key_file(data));
