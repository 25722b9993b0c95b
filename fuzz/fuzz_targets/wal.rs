#![no_main]
//! `codec::decode_prefix` of a WAL archive file's header on raw bytes (the
//! plaintext of a file in `wal/`), which includes its validation, and the
//! WAL name, archive name and LSN parsers on the same bytes as text.
//!
//! The body is `cairn_fuzz::wal_file` (in `src/lib.rs`), shared with the
//! stable smoke fuzzer of the main workspace.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| cairn_fuzz::wal_file(data));
