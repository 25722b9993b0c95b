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
use crate::timestamp::Timestamp;
use serde::{Deserialize, Serialize};
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
    /// Structure version, 1.
    pub version: u32,
    /// Key derivation parameters.
    pub kdf: KdfParams,
}

impl Versioned for KeyHeader {
    const WHAT: &'static str = "key file header";
    const VERSION: u32 = 1;
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

/// Who made a key file and when (stored sealed).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyInfo {
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
    let wrapping = kdf.derive(password)?;
    let header = codec::encode(&KeyHeader {
        version: KeyHeader::VERSION,
        kdf,
    });
    let mut out = Vec::with_capacity(256);
    out.extend_from_slice(KEY_MAGIC);
    out.extend_from_slice(&(header.len() as u32).to_le_bytes());
    out.extend_from_slice(&header);
    let payload = Zeroizing::new(KeyPayload {
        version: KeyPayload::VERSION,
        repo_id: keys.repo_id.0,
        data_key: keys.data_key,
        id_key: keys.id_key,
        chunker_key: keys.chunker_key,
        created: info.created,
        hostname: info.hostname.clone(),
        username: info.username.clone(),
    });
    let plain = Zeroizing::new(crate::frame::encode(&codec::encode(&*payload), None));
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
    Ok((codec::decode(&bytes[12..12 + len])?, 12 + len))
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
    let payload = Zeroizing::new(codec::decode::<KeyPayload>(&plain)?);
    let keys = MasterKeys {
        repo_id: RepoId(payload.repo_id),
        data_key: payload.data_key,
        id_key: payload.id_key,
        chunker_key: payload.chunker_key,
        padding: Default::default(),
    };
    let info = KeyInfo {
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
    fn hostile_kdf_costs_are_refused_before_allocating() {
        let mut kdf = cheap();
        kdf.memory_kib = u32::MAX;
        assert!(matches!(kdf.derive(b"x"), Err(FormatError::Kdf(_))));
        let mut kdf = cheap();
        kdf.parallelism = u32::MAX;
        assert!(matches!(kdf.derive(b"x"), Err(FormatError::Kdf(_))));
    }
}
