#![no_main]
//! `codec::decode::<PackHeader>` on raw bytes, and `PackHeader::locate` on the
//! last 8 bytes as if the input were a whole pack.

use cairn_format::{codec, pack::PackHeader, pack::TRAILER_LEN};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = codec::decode::<PackHeader>(data);
    let trailer = &data[data.len().saturating_sub(TRAILER_LEN)..];
    let _ = PackHeader::locate(trailer, data.len() as u64);
});
