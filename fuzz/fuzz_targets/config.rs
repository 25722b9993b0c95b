#![no_main]
//! `codec::decode::<Config>` on raw bytes (the plaintext of the config file),
//! which includes `Config::validate`.
//!
//! The body is `cairn_fuzz::config` (in `src/lib.rs`), shared with the stable
//! smoke fuzzer of the main workspace.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| cairn_fuzz::config(data));
