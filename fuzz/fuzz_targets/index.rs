#![no_main]
//! `codec::decode::<IndexFile>` on raw bytes (the plaintext of an index file).

use cairn_format::{codec, index::IndexFile};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = codec::decode::<IndexFile>(data);
});
