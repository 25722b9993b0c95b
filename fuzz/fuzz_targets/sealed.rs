#![no_main]
//! Every authenticated opener under one fixed `MasterKeys`: `MasterKeys::open`
//! for each object type, `open_blob` for both blob kinds, `Config::open`,
//! `Snapshot::open`, `IndexFile::open`, `PackHeader::open`, `LockRecord::open`
//! and `PruneMark::open`. Garbage must be
//! rejected (normally as an authentication failure) without a panic.
//!
//! Input layout: see `cairn_fuzz::SealedInput` (a 40-byte parameter prefix,
//! then the envelope).

use cairn_format::config::Config;
use cairn_format::crypto::ObjectType;
use cairn_format::index::IndexFile;
use cairn_format::lock::{LockRecord, PruneMark};
use cairn_format::pack::{open_blob, BlobKind, PackHeader};
use cairn_format::snapshot::Snapshot;
use cairn_fuzz::{fixed_keys, SealedInput, OPEN_LIMIT};
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

const ALL_TYPES: [ObjectType; 9] = [
    ObjectType::DataBlob,
    ObjectType::TreeBlob,
    ObjectType::PackHeader,
    ObjectType::Index,
    ObjectType::Snapshot,
    ObjectType::Config,
    ObjectType::KeyFile,
    ObjectType::Lock,
    ObjectType::PruneMark,
];

fuzz_target!(|data: &[u8]| {
    static KEYS: OnceLock<cairn_format::crypto::MasterKeys> = OnceLock::new();
    let keys = KEYS.get_or_init(fixed_keys);
    let input = SealedInput::parse(data);
    let env = input.envelope;
    let id = input.blob_id;

    for ty in ALL_TYPES {
        let binding = matches!(ty, ObjectType::DataBlob | ObjectType::TreeBlob).then_some(&id.0);
        let _ = keys.open(ty, binding, env, OPEN_LIMIT);
    }
    for kind in [BlobKind::Data, BlobKind::Tree] {
        let _ = open_blob(keys, kind, &id, env, input.n as u32);
    }
    let _ = Config::open(env, keys);
    let _ = Snapshot::open(env, keys);
    let _ = IndexFile::open(env, keys);
    let _ = PackHeader::open(env, input.n, keys);
    let _ = LockRecord::open(env, keys);
    let _ = PruneMark::open(env, keys);
});
