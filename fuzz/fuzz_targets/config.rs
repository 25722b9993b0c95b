#![no_main]
//! `codec::decode::<Config>` on raw bytes (the plaintext of the config file),
//! which includes `Config::validate`.

use cairn_format::{codec, config::Config};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = codec::decode::<Config>(data);
});
