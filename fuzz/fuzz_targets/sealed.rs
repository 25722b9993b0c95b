#![no_main]
//! Every authenticated opener under one fixed `MasterKeys`: `MasterKeys::open`
//! for each object type, `open_blob` for both blob kinds, `Config::open`,
//! `Snapshot::open`, `IndexFile::open`, `PackHeader::open`, `LockRecord::open`
//! and `PruneMark::open`. Garbage must be
//! rejected (normally as an authentication failure) without a panic.
//!
//! Input layout: see `cairn_fuzz::SealedInput` (a 40-byte parameter prefix,
//! then the envelope).
//!
//! The body is `cairn_fuzz::sealed` (in `src/lib.rs`), shared with the stable
//! smoke fuzzer of the main workspace.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| cairn_fuzz::sealed(data));
