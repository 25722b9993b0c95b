#![no_main]
//! `codec::decode` of a lock record and of a prune mark on raw bytes (the
//! plaintexts of files in `locks/` and `marks/`).

use cairn_format::codec;
use cairn_format::lock::{LockRecord, PruneMark};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = codec::decode::<LockRecord>(data);
    let _ = codec::decode::<PruneMark>(data);
});
