#![no_main]
//! `codec::decode::<Tree>` on raw bytes (the plaintext of a tree blob).

use cairn_format::{codec, tree::Tree};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = codec::decode::<Tree>(data);
});
