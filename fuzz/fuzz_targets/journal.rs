#![no_main]
//! `codec::decode` of a journal entry on raw bytes (the plaintext of a file
//! in `journal/`), which includes its validation.
//!
//! The body is `cairn_fuzz::journal` (in `src/lib.rs`), shared with the
//! stable smoke fuzzer of the main workspace.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| cairn_fuzz::journal(data));
