#![no_main]
//! `frame::decode` (codec byte + raw or zstd payload) with a 1 MiB limit.

use cairn_format::frame;
use cairn_fuzz::FRAME_LIMIT;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = frame::decode(data, FRAME_LIMIT, "fuzz frame");
});
