//! Key files: the master secrets sealed under a password-derived key.
//!
//! Layout: `"CAIRNKEY" (8) || header_len u32 LE (4) || header || envelope`.
//! The header ([`KeyHeader`], postcard) holds the Argon2id parameters and salt in
//! the clear; the envelope seals a [`KeyPayload`] under the Argon2id output, with
//! the associated data `AAD_DOMAIN || suite || 7 || magic || header_len || header`.

use crate::codec::{self, Versioned};
use crate::crypto::{
    open_raw, random_array, seal_raw, MasterKeys, ObjectType, AAD_DOMAIN, SUITE_XCHACHA20POLY1305,
};
use crate::error::{FormatError, Result};
use crate::id::RepoId;
use crate::keyring::{EpochKeys, EpochSeal, Keyring, Role};
use crate::timestamp::Timestamp;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use zeroize::{Zeroize, Zeroizing};

/// Magic bytes at the start of every key file.
pub const KEY_MAGIC: &[u8; 8] = b"CAIRNKEY";
/// KDF identifier of Argon2id, version 0x13.
pub const KDF_ARGON2ID: u8 = 1;
/// Largest Argon2 memory cost accepted from a key file (4 GiB), so a hostile
/// key file cannot make `open` allocate without bound.
pub const MAX_KDF_MEMORY_KIB: u32 = 4 * 1024 * 1024;
/// Largest Argon2 iteration count accepted from a key file.
pub const MAX_KDF_ITERATIONS: u32 = 64;
/// Largest Argon2 lane count accepted from a key file.
pub const MAX_KDF_PARALLELISM: u32 = 16;
const MAX_HEADER_LEN: usize = 4096;
/// Largest key file a reader accepts: the clear header and the sealed
/// payload, each of at most 4096 bytes, with room to spare.
pub const MAX_KEY_FILE_LEN: usize = 64 * 1024;

/// How the key-wrapping key is derived from a password.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KdfParams {
    /// KDF identifier; 1 is Argon2id v0x13.
    pub algorithm: u8,
    /// Memory cost in KiB.
    pub memory_kib: u32,
    /// Number of passes.
    pub iterations: u32,
    /// Number of lanes.
    pub parallelism: u32,
    /// Random salt, unique per key file.
    pub salt: [u8; 32],
}

impl KdfParams {
    /// Argon2id with the given costs and a fresh random salt.
    pub fn argon2id(memory_kib: u32, iterations: u32, parallelism: u32) -> Self {
        KdfParams {
            algorithm: KDF_ARGON2ID,
            memory_kib,
            iterations,
            parallelism,
            salt: random_array(),
        }
    }

    /// The work a derivation asks for: memory in KiB times passes (lanes
    /// share the memory, so they do not add to it).
    pub fn work(&self) -> u64 {
        u64::from(self.memory_kib) * u64::from(self.iterations)
    }

    /// The default costs: 64 MiB, 3 passes, 1 lane.
    pub fn default_costs() -> Self {
        Self::argon2id(64 * 1024, 3, 1)
    }

    fn check(&self) -> Result<()> {
        if self.algorithm != KDF_ARGON2ID {
            return Err(FormatError::UnsupportedVersion {
                what: "key derivation function",
                version: self.algorithm.into(),
            });
        }
        let ok = (1..=MAX_KDF_PARALLELISM).contains(&self.parallelism)
            && (8 * self.parallelism..=MAX_KDF_MEMORY_KIB).contains(&self.memory_kib)
            && (1..=MAX_KDF_ITERATIONS).contains(&self.iterations);
        if !ok {
            return Err(FormatError::Kdf(format!(
                "parameters out of range (memory {} KiB, {} passes, {} lanes)",
                self.memory_kib, self.iterations, self.parallelism
            )));
        }
        Ok(())
    }

    /// Derives the 32-byte key-wrapping key from `password`.
    pub fn derive(&self, password: &[u8]) -> Result<Zeroizing<[u8; 32]>> {
        self.check()?;
        let params =
            argon2::Params::new(self.memory_kib, self.iterations, self.parallelism, Some(32))
                .map_err(|e| FormatError::Kdf(e.to_string()))?;
        let argon =
            argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
        let mut out = Zeroizing::new([0u8; 32]);
        argon
            .hash_password_into(password, &self.salt, out.as_mut())
            .map_err(|e| FormatError::Kdf(e.to_string()))?;
        Ok(out)
    }
}

/// The clear-text header of a key file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyHeader {
    /// Structure version: 2, or 1 for a key file of a repository without
    /// key epochs (then `role` is [`Role::Full`]).
    pub version: u32,
    /// Key derivation parameters.
    pub kdf: KdfParams,
    /// What the key may do, in the clear so that `key list` can say it of
    /// every key (authenticated with the payload, which repeats it).
    pub role: Role,
}

/// A version-1 key header: one of version 2 without `role`.
#[derive(Serialize, Deserialize)]
struct KeyHeaderV1 {
    version: u32,
    kdf: KdfParams,
}

impl Versioned for KeyHeader {
    const WHAT: &'static str = "key file header";
    const VERSION: u32 = 2;
}

impl KeyHeader {
    fn encode(&self) -> Vec<u8> {
        match self.version {
            1 => postcard::to_stdvec(&KeyHeaderV1 {
                version: 1,
                kdf: self.kdf.clone(),
            })
            .expect("postcard serialization into a Vec cannot fail"),
            _ => codec::encode(self),
        }
    }

    fn decode(bytes: &[u8]) -> Result<KeyHeader> {
        if codec::version_of(bytes, Self::WHAT)? != 1 {
            return codec::decode(bytes);
        }
        let v1: KeyHeaderV1 = codec::decode_old(bytes, Self::WHAT)?;
        Ok(KeyHeader {
            version: 1,
            kdf: v1.kdf,
            role: Role::Full,
        })
    }
}

/// The sealed part of a key file.
#[derive(Clone, Serialize, Deserialize, Zeroize)]
pub struct KeyPayload {
    /// Structure version, 1.
    pub version: u32,
    /// Repository the secrets belong to.
    pub repo_id: [u8; 32],
    /// See [`MasterKeys::data_key`].
    pub data_key: [u8; 32],
    /// See [`MasterKeys::id_key`].
    pub id_key: [u8; 32],
    /// See [`MasterKeys::chunker_key`].
    pub chunker_key: [u8; 32],
    /// When this key file was made.
    #[zeroize(skip)]
    pub created: Timestamp,
    /// Host that made it.
    pub hostname: String,
    /// User that made it.
    pub username: String,
}

/// The sealed part of a key file of a repository with key epochs (a
/// version-2 config, SPEC §3.6).
#[derive(Serialize, Deserialize, Zeroize)]
struct KeyPayloadV2 {
    version: u32,
    repo_id: [u8; 32],
    #[zeroize(skip)]
    role: Role,
    id_key: [u8; 32],
    chunker_key: [u8; 32],
    cache_key: [u8; 32],
    epochs: Vec<EpochKeys>,
    #[zeroize(skip)]
    created: Timestamp,
    hostname: String,
    username: String,
}

impl Versioned for KeyPayloadV2 {
    const WHAT: &'static str = "key file payload";
    const VERSION: u32 = 2;

    fn validate(&self) -> Result<()> {
        let bad = |why: &str| Err(FormatError::malformed("key file", why));
        if !self.created.is_valid() {
            return bad("nanoseconds out of range");
        }
        // A full key holds every epoch's secrets, a put-only key none.
        let fits = |e: &EpochKeys| match (self.role, &e.seal) {
            (Role::Full, EpochSeal::Secret(_)) => e.auth_key.is_some(),
            (Role::PutOnly, EpochSeal::Public(_)) => e.auth_key.is_none(),
            _ => false,
        };
        if self.epochs.is_empty()
            || !self.epochs.windows(2).all(|w| w[0].epoch < w[1].epoch)
            || !self.epochs.iter().all(fits)
        {
            return bad("its epochs are empty, out of order, or not those of its role");
        }
        Ok(())
    }
}

impl Versioned for KeyPayload {
    const WHAT: &'static str = "key file payload";
    const VERSION: u32 = 1;

    fn validate(&self) -> Result<()> {
        if !self.created.is_valid() {
            return Err(FormatError::malformed(
                "key file",
                "nanoseconds out of range",
            ));
        }
        Ok(())
    }
}

/// Who made a key file and when, and what it may do (stored sealed).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyInfo {
    /// What the key may do; [`Role::Full`] for every key of a repository
    /// without key epochs.
    pub role: Role,
    /// When the key file was made.
    pub created: Timestamp,
    /// Host that made it.
    pub hostname: String,
    /// User that made it.
    pub username: String,
}

/// Builds a key file that opens `keys` with `password`.
pub fn seal_key_file(
    keys: &MasterKeys,
    password: &[u8],
    kdf: KdfParams,
    info: &KeyInfo,
) -> Result<Vec<u8>> {
    let header = KeyHeader {
        version: if keys.keyring.is_some() { 2 } else { 1 },
        kdf,
        role: keys.role(),
    };
    let encoded = Zeroizing::new(match &keys.keyring {
        None => codec::encode(&KeyPayload {
            version: KeyPayload::VERSION,
            repo_id: keys.repo_id.0,
            data_key: keys.data_key,
            id_key: keys.id_key,
            chunker_key: keys.chunker_key,
            created: info.created,
            hostname: info.hostname.clone(),
            username: info.username.clone(),
        }),
        Some(keyring) => codec::encode(&KeyPayloadV2 {
            version: KeyPayloadV2::VERSION,
            repo_id: keys.repo_id.0,
            role: keyring.role(),
            id_key: keys.id_key,
            chunker_key: keys.chunker_key,
            cache_key: *keyring.cache_key(),
            epochs: keyring.epochs().to_vec(),
            created: info.created,
            hostname: info.hostname.clone(),
            username: info.username.clone(),
        }),
    });
    seal_key_parts(&header, &encoded, password)
}

/// A key file of `header` sealing the encoded payload `payload`, refused
/// when the payload is over the limit a reader accepts (§3.2).
fn seal_key_parts(header: &KeyHeader, payload: &[u8], password: &[u8]) -> Result<Vec<u8>> {
    if payload.len() + 1 > MAX_HEADER_LEN {
        return Err(FormatError::TooLarge {
            what: "key file payload",
            size: payload.len() as u64,
            limit: MAX_HEADER_LEN as u64 - 1,
        });
    }
    let wrapping = header.kdf.derive(password)?;
    let header = header.encode();
    let mut out = Vec::with_capacity(256);
    out.extend_from_slice(KEY_MAGIC);
    out.extend_from_slice(&(header.len() as u32).to_le_bytes());
    out.extend_from_slice(&header);
    let plain = Zeroizing::new(crate::frame::encode(payload, None));
    let sealed = seal_raw(&wrapping, &key_aad(&out), &plain);
    out.extend_from_slice(&sealed);
    Ok(out)
}

/// Reads the clear-text header of a key file.
pub fn read_key_header(bytes: &[u8]) -> Result<(KeyHeader, usize)> {
    if bytes.len() < 12 || &bytes[..8] != KEY_MAGIC {
        return Err(FormatError::malformed("key file", "missing CAIRNKEY magic"));
    }
    let len = u32::from_le_bytes(bytes[8..12].try_into().expect("4 bytes")) as usize;
    if len > MAX_HEADER_LEN || bytes.len() < 12 + len {
        return Err(FormatError::malformed(
            "key file",
            "header length out of range",
        ));
    }
    Ok((KeyHeader::decode(&bytes[12..12 + len])?, 12 + len))
}

/// Opens a key file with `password`. A wrong password and a damaged file both
/// give [`FormatError::Authentication`]; callers tell them apart by checking the
/// file's content hash first.
pub fn open_key_file(bytes: &[u8], password: &[u8]) -> Result<(MasterKeys, KeyInfo)> {
    let (header, body_start) = read_key_header(bytes)?;
    let wrapping = header.kdf.derive(password)?;
    let framed = Zeroizing::new(open_raw(
        &wrapping,
        &key_aad(&bytes[..body_start]),
        &bytes[body_start..],
        "key file",
    )?);
    let plain = Zeroizing::new(crate::frame::decode(&framed, MAX_HEADER_LEN, "key file")?);
    let version = codec::version_of(&plain, "key file payload")?;
    if (version == KeyPayloadV2::VERSION) != (header.version == 2) {
        return Err(FormatError::malformed(
            "key file",
            "its header and payload are of different versions",
        ));
    }
    if version == KeyPayloadV2::VERSION {
        let mut payload = Zeroizing::new(codec::decode::<KeyPayloadV2>(&plain)?);
        if payload.role != header.role {
            return Err(FormatError::malformed(
                "key file",
                "its header and payload disagree on its role",
            ));
        }
        let keyring = Keyring::new(
            payload.role,
            std::mem::take(&mut payload.epochs),
            payload.cache_key,
        );
        let keys = MasterKeys {
            repo_id: RepoId(payload.repo_id),
            data_key: [0; 32],
            id_key: payload.id_key,
            chunker_key: payload.chunker_key,
            padding: Default::default(),
            keyring: Some(Arc::new(keyring)),
        };
        let info = KeyInfo {
            role: payload.role,
            created: payload.created,
            hostname: payload.hostname.clone(),
            username: payload.username.clone(),
        };
        return Ok((keys, info));
    }
    let payload = Zeroizing::new(codec::decode::<KeyPayload>(&plain)?);
    let keys = MasterKeys {
        repo_id: RepoId(payload.repo_id),
        data_key: payload.data_key,
        id_key: payload.id_key,
        chunker_key: payload.chunker_key,
        padding: Default::default(),
        keyring: None,
    };
    let info = KeyInfo {
        role: Role::Full,
        created: payload.created,
        hostname: payload.hostname.clone(),
        username: payload.username.clone(),
    };
    Ok((keys, info))
}

fn key_aad(clear_prefix: &[u8]) -> Vec<u8> {
    let mut aad = Vec::with_capacity(8 + clear_prefix.len());
    aad.extend_from_slice(AAD_DOMAIN);
    aad.push(SUITE_XCHACHA20POLY1305);
    aad.push(ObjectType::KeyFile as u8);
    aad.extend_from_slice(clear_prefix);
    aad
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cheap() -> KdfParams {
        KdfParams::argon2id(64, 1, 1)
    }

    fn info() -> KeyInfo {
        KeyInfo {
            role: Role::Full,
            created: Timestamp { secs: 5, nanos: 6 },
            hostname: "h".into(),
            username: "u".into(),
        }
    }

    #[test]
    fn key_file_opens_with_its_password_only() {
        let keys = MasterKeys::generate();
        let file = seal_key_file(&keys, b"secret", cheap(), &info()).unwrap();
        let (opened, meta) = open_key_file(&file, b"secret").unwrap();
        assert_eq!(opened.data_key, keys.data_key);
        assert_eq!(opened.id_key, keys.id_key);
        assert_eq!(opened.chunker_key, keys.chunker_key);
        assert_eq!(opened.repo_id, keys.repo_id);
        assert_eq!(meta, info());
        assert!(open_key_file(&file, b"wrong").unwrap_err().is_integrity());
    }

    #[test]
    fn any_flip_in_a_key_file_fails() {
        let keys = MasterKeys::generate();
        let file = seal_key_file(&keys, b"pw", cheap(), &info()).unwrap();
        for i in 0..file.len() {
            let mut bad = file.clone();
            bad[i] ^= 0x10;
            assert!(
                open_key_file(&bad, b"pw").is_err(),
                "flip at {i} went unnoticed"
            );
        }
    }

    #[test]
    fn a_key_file_whose_parts_disagree_on_its_version_or_role_is_refused() {
        let full = Keyring::generate();
        let put = full.put_only();
        let payload = |role: Role, epochs: &[EpochKeys]| {
            codec::encode(&KeyPayloadV2 {
                version: 2,
                repo_id: [1; 32],
                role,
                id_key: [2; 32],
                chunker_key: [3; 32],
                cache_key: [4; 32],
                epochs: epochs.to_vec(),
                created: info().created,
                hostname: "h".into(),
                username: "u".into(),
            })
        };
        let header = |version, role| KeyHeader {
            version,
            kdf: cheap(),
            role,
        };
        let opens = |header: KeyHeader, payload: Vec<u8>| {
            open_key_file(&seal_key_parts(&header, &payload, b"pw").unwrap(), b"pw").is_ok()
        };
        assert!(opens(
            header(2, Role::Full),
            payload(Role::Full, full.epochs())
        ));
        assert!(opens(
            header(2, Role::PutOnly),
            payload(Role::PutOnly, put.epochs())
        ));
        // The header says put-only, the payload full; and the reverse.
        assert!(!opens(
            header(2, Role::PutOnly),
            payload(Role::Full, full.epochs())
        ));
        assert!(!opens(
            header(2, Role::Full),
            payload(Role::PutOnly, put.epochs())
        ));
        // A role whose epochs are not its own, or none.
        assert!(!opens(
            header(2, Role::Full),
            payload(Role::Full, put.epochs())
        ));
        assert!(!opens(
            header(2, Role::PutOnly),
            payload(Role::PutOnly, full.epochs())
        ));
        assert!(!opens(header(2, Role::Full), payload(Role::Full, &[])));
        // A version-1 header over a version-2 payload.
        assert!(!opens(
            header(1, Role::Full),
            payload(Role::Full, full.epochs())
        ));
        // Too many epochs for a reader to accept: refused when written.
        let many: Vec<EpochKeys> = (0..100).map(EpochKeys::generate).collect();
        assert!(
            seal_key_parts(&header(2, Role::Full), &payload(Role::Full, &many), b"pw").is_err()
        );
    }

    #[test]
    fn hostile_kdf_costs_are_refused_before_allocating() {
        let mut kdf = cheap();
        kdf.memory_kib = u32::MAX;
        assert!(matches!(kdf.derive(b"x"), Err(FormatError::Kdf(_))));
        let mut kdf = cheap();
        kdf.parallelism = u32::MAX;
        assert!(matches!(kdf.derive(b"x"), Err(FormatError::Kdf(_))));
    }
}
