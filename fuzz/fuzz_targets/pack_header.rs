#![no_main]
//! `codec::decode::<PackHeader>` on raw bytes, and `PackHeader::locate` on the
//! last 8 bytes as if the input were a whole pack.
//!
//! The body is `cairn_fuzz::pack_header` (in `src/lib.rs`), shared with the stable
//! smoke fuzzer of the main workspace.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| cairn_fuzz::pack_header(data));
