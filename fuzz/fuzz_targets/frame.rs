#![no_main]
//! `frame::decode` (codec byte + raw or zstd payload) with a 1 MiB limit.
//!
//! The body is `cairn_fuzz::frame` (in `src/lib.rs`), shared with the stable
//! smoke fuzzer of the main workspace.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| cairn_fuzz::frame(data));
