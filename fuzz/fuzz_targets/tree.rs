#![no_main]
//! `codec::decode::<Tree>` on raw bytes (the plaintext of a tree blob).
//!
//! The body is `cairn_fuzz::tree` (in `src/lib.rs`), shared with the stable
//! smoke fuzzer of the main workspace.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| cairn_fuzz::tree(data));
