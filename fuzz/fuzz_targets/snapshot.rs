#![no_main]
//! `codec::decode::<Snapshot>` on raw bytes (the plaintext of a snapshot file).

use cairn_format::{codec, snapshot::Snapshot};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = codec::decode::<Snapshot>(data);
});
