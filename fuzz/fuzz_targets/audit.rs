#![no_main]
//! `codec::decode` of an audit record on raw bytes (the plaintext of a file
//! in `audit/`), which includes its validation.
//!
//! The body is `cairn_fuzz::audit` (in `src/lib.rs`), shared with the
//! stable smoke fuzzer of the main workspace.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| cairn_fuzz::audit(data));
