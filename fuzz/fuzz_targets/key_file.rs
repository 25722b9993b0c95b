#![no_main]
//! `read_key_header` on a whole key file, then `open_key_file` with a fixed
//! password, but only when the header asks for a tiny Argon2 cost: anything
//! dearer would make the fuzzer spend its time in the KDF.

use cairn_format::key::{open_key_file, read_key_header};
use cairn_fuzz::{KEY_MAX_ITERATIONS, KEY_MAX_MEMORY_KIB, KEY_PASSWORD};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok((header, _body_start)) = read_key_header(data) else {
        return;
    };
    let kdf = &header.kdf;
    if kdf.memory_kib <= KEY_MAX_MEMORY_KIB && kdf.iterations <= KEY_MAX_ITERATIONS {
        let _ = open_key_file(data, KEY_PASSWORD);
    }
});
