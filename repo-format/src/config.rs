//! The repository config: format version and the parameters every writer must share.
//!
//! Layout: `"CAIRNCFG" (8) || format_version u32 LE (4) || envelope`, the envelope
//! sealing a [`Config`] with associated data `object_aad(repo, Config) || first 12 bytes`.

use crate::codec::{self, Versioned};
use crate::crypto::{MasterKeys, ObjectType, Padding};
use crate::error::{FormatError, Result};
use crate::id::RepoId;
use crate::keyring::FULL_TAG_LEN;
use serde::{Deserialize, Serialize};

/// Magic bytes at the start of the config file.
pub const CONFIG_MAGIC: &[u8; 8] = b"CAIRNCFG";
/// The repository format version this implementation reads and writes.
pub const FORMAT_VERSION: u32 = 1;
/// Chunker identifier: FastCDC 2020 with a secret-derived gear table.
pub const CHUNKER_FASTCDC2020_KEYED: u8 = 1;
/// Chunker identifier: a keyed buzhash whose candidate cuts AES-128 decides
/// as a pseudo-random function (SPEC §7.4), against chunk-size fingerprinting.
pub const CHUNKER_BUZHASH_AES: u8 = 2;
/// Compression identifier: none.
pub const COMPRESSION_NONE: u8 = 0;
/// Compression identifier: zstd.
pub const COMPRESSION_ZSTD: u8 = 1;
/// Smallest allowed minimum chunk size.
pub const MIN_CHUNK_FLOOR: u32 = 64;
/// Largest allowed maximum chunk size (16 MiB).
pub const MAX_CHUNK_CEILING: u32 = 16 * 1024 * 1024;
/// Largest allowed average chunk size (4 MiB), the top of FastCDC's mask table.
pub const MAX_AVG_CHUNK: u32 = 4 * 1024 * 1024;
/// Largest `pack_size` allowed.
pub const MAX_PACK_SIZE: u64 = 1024 * 1024 * 1024;
/// Padding identifier: nothing padded (version-1 configs).
pub const PADDING_NONE: u8 = 0;
/// Padding identifier: every object but blobs padded with Padmé.
pub const PADDING_METADATA: u8 = 1;
/// Padding identifier: every object, blobs included, padded with Padmé.
pub const PADDING_ALL: u8 = 2;
/// What a full key's tag on the config covers besides its bytes.
const FULL_TAG_CONTEXT: &[u8] = b"config";
/// Largest decoded config accepted.
pub const MAX_CONFIG_LEN: usize = 64 * 1024;

/// Content-defined chunking parameters.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChunkerParams {
    /// Chunker identifier: 1 keyed FastCDC 2020, 2 buzhash-AES.
    pub algorithm: u8,
    /// Smallest chunk, in bytes (even).
    pub min_size: u32,
    /// Target average chunk, in bytes (a power of two).
    pub avg_size: u32,
    /// Largest chunk, in bytes (even).
    pub max_size: u32,
    /// FastCDC normalization level, 0 to 3.
    pub normalization: u8,
}

/// How blob payloads are compressed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CompressionParams {
    /// 0 none, 1 zstd.
    pub algorithm: u8,
    /// zstd level (ignored for none).
    pub level: i32,
}

impl CompressionParams {
    /// The zstd level to use, or `None` when compression is off.
    pub fn zstd_level(&self) -> Option<i32> {
        (self.algorithm == COMPRESSION_ZSTD).then_some(self.level)
    }
}

/// The decoded config.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Config {
    /// Structure version: 2, or 1 for a repository made before version 2
    /// (then `padding` is [`PADDING_NONE`] and writers use none of what
    /// version 2 added).
    pub version: u32,
    /// Random repository identifier.
    pub repo_id: RepoId,
    /// Chunking parameters.
    pub chunker: ChunkerParams,
    /// Compression setting.
    pub compression: CompressionParams,
    /// Target size of a pack file in bytes.
    pub pack_size: u64,
    /// Which objects writers pad (SPEC §5.1): one of the `PADDING_*` values.
    pub padding: u8,
    /// The key epoch new objects are sealed in (SPEC §3.6); `None` in a
    /// version-1 config, whose repository has its secrets of old.
    pub epoch: Option<u32>,
    /// For how many days storage keeps each backup's files from deletion
    /// (S3 Object Lock, SPEC §2.6), and cairn holds its snapshot (§11.5);
    /// `None` for no retention.
    pub retain_days: Option<u32>,
}

/// A version-1 config: a version-2 one without `padding`.
#[derive(Serialize, Deserialize)]
struct ConfigV1 {
    version: u32,
    repo_id: RepoId,
    chunker: ChunkerParams,
    compression: CompressionParams,
    pack_size: u64,
}

impl ChunkerParams {
    /// Keyed FastCDC with average chunks of `avg_size` bytes, the smallest a
    /// quarter of that and the largest four times it (at most 16 MiB).
    pub fn fastcdc(avg_size: u32) -> Self {
        ChunkerParams {
            algorithm: CHUNKER_FASTCDC2020_KEYED,
            min_size: avg_size / 4,
            avg_size,
            max_size: avg_size.saturating_mul(4).min(MAX_CHUNK_CEILING),
            normalization: 1,
        }
    }
}

impl Config {
    /// A config with the default parameters for `repo_id`.
    pub fn with_defaults(repo_id: RepoId) -> Self {
        Config {
            version: Config::VERSION,
            repo_id,
            chunker: ChunkerParams::fastcdc(1024 * 1024),
            compression: CompressionParams {
                algorithm: COMPRESSION_ZSTD,
                level: 3,
            },
            pack_size: 16 * 1024 * 1024,
            padding: PADDING_METADATA,
            epoch: Some(0),
            retain_days: None,
        }
    }

    /// Which objects writers pad.
    pub fn padding(&self) -> Padding {
        match self.padding {
            PADDING_METADATA => Padding::Metadata,
            PADDING_ALL => Padding::All,
            _ => Padding::None,
        }
    }

    /// Sets which objects writers pad.
    pub fn set_padding(&mut self, padding: Padding) {
        self.padding = match padding {
            Padding::None => PADDING_NONE,
            Padding::Metadata => PADDING_METADATA,
            Padding::All => PADDING_ALL,
        };
    }

    /// Decodes a config of either version.
    fn decode(bytes: &[u8]) -> Result<Config> {
        if codec::version_of(bytes, "config")? != 1 {
            return codec::decode(bytes);
        }
        let v1: ConfigV1 = codec::decode_old(bytes, "config")?;
        let config = Config {
            version: v1.version,
            repo_id: v1.repo_id,
            chunker: v1.chunker,
            compression: v1.compression,
            pack_size: v1.pack_size,
            padding: PADDING_NONE,
            epoch: None,
            retain_days: None,
        };
        config.validate()?;
        Ok(config)
    }

    /// Encodes the config file.
    pub fn seal(&self, keys: &MasterKeys) -> Vec<u8> {
        let mut out = header();
        let aad_tail = out.clone();
        let encoded = if self.version == 1 {
            postcard::to_stdvec(&ConfigV1 {
                version: 1,
                repo_id: self.repo_id,
                chunker: self.chunker.clone(),
                compression: self.compression.clone(),
                pack_size: self.pack_size,
            })
            .expect("postcard serialization into a Vec cannot fail")
        } else {
            codec::encode(self)
        };
        let plain = crate::frame::encode(&encoded, None);
        out.extend_from_slice(&keys.seal_framed(ObjectType::Config, None, &aad_tail, plain));
        if let Some(keyring) = &keys.keyring {
            let tag = keyring
                .full_tag(FULL_TAG_CONTEXT, &out)
                .expect("only a full key writes the config");
            out.extend_from_slice(&tag);
        }
        out
    }

    /// Authenticates and decodes a config file.
    pub fn open(bytes: &[u8], keys: &MasterKeys) -> Result<Config> {
        if bytes.len() < 12 {
            return Err(FormatError::Authentication("config"));
        }
        if let (Some(keyring), Some(epoch)) = (&keys.keyring, bytes.get(13..17)) {
            // A key made before a rotation: say so rather than "damaged",
            // when the envelope and the full-key tag (§3.6) name the same
            // later epoch (a flipped byte changes one of them, not both).
            let found = u32::from_le_bytes(epoch.try_into().expect("4 bytes"));
            let tagged = bytes
                .len()
                .checked_sub(FULL_TAG_LEN)
                .map(|at| &bytes[at..at + 4]);
            if found > keyring.newest()
                && bytes[12] == crate::keyring::SUITE_EPOCH
                && tagged == Some(epoch)
            {
                return Err(FormatError::Rotated {
                    held: keyring.newest(),
                    found,
                });
            }
        }
        let bytes = match &keys.keyring {
            // Vouched for by a full key in the newest epoch this key holds
            // (a config sealed in an older one is refused below anyway).
            Some(keyring) => {
                keyring.check_full_tag("config", FULL_TAG_CONTEXT, bytes, Some(keyring.newest()))?
            }
            None => bytes,
        };
        if bytes.len() < 12 {
            return Err(FormatError::Authentication("config"));
        }
        let framed = keys.open_framed(ObjectType::Config, None, &bytes[..12], &bytes[12..])?;
        let version = u32::from_le_bytes(bytes[8..12].try_into().expect("4 bytes"));
        if &bytes[..8] != CONFIG_MAGIC || version != FORMAT_VERSION {
            return Err(FormatError::UnsupportedVersion {
                what: "repository format",
                version,
            });
        }
        let config = Config::decode(&crate::frame::decode(&framed, MAX_CONFIG_LEN, "config")?)?;
        if config.repo_id != keys.repo_id {
            return Err(FormatError::malformed(
                "config",
                "repository ID differs from the key's",
            ));
        }
        match (&keys.keyring, config.epoch) {
            // Sealed in the epoch it names, which must be the key's newest.
            (Some(keyring), Some(epoch)) if bytes[13..17] == epoch.to_le_bytes() => {
                keyring.set_current(epoch)?
            }
            (None, None) => {}
            _ => {
                return Err(FormatError::malformed(
                    "config",
                    "its key epoch does not fit the key",
                ))
            }
        }
        Ok(config)
    }
}

fn header() -> Vec<u8> {
    let mut out = Vec::with_capacity(128);
    out.extend_from_slice(CONFIG_MAGIC);
    out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    out
}

impl Versioned for Config {
    const WHAT: &'static str = "config";
    const VERSION: u32 = 2;

    fn reads(version: u32) -> bool {
        version == 1 || version == 2
    }

    fn validate(&self) -> Result<()> {
        let c = &self.chunker;
        let bad = |reason: &str| Err(FormatError::malformed("config", reason));
        if ![CHUNKER_FASTCDC2020_KEYED, CHUNKER_BUZHASH_AES].contains(&c.algorithm) {
            return Err(FormatError::UnsupportedVersion {
                what: "chunker",
                version: c.algorithm.into(),
            });
        }
        if !(c.min_size >= MIN_CHUNK_FLOOR
            && c.min_size <= c.avg_size
            && c.avg_size <= c.max_size
            && c.max_size <= MAX_CHUNK_CEILING)
        {
            return bad("chunk sizes must satisfy 64 <= min <= avg <= max <= 16 MiB");
        }
        if c.min_size % 2 != 0
            || c.max_size % 2 != 0
            || !c.avg_size.is_power_of_two()
            || !(256..=MAX_AVG_CHUNK).contains(&c.avg_size)
        {
            return bad(
                "chunk sizes must be even, and the average a power of two from 256 bytes to 4 MiB",
            );
        }
        if c.normalization > 3 {
            return bad("normalization level must be 0 to 3");
        }
        match self.compression.algorithm {
            COMPRESSION_NONE => {}
            COMPRESSION_ZSTD if (1..=22).contains(&self.compression.level) => {}
            COMPRESSION_ZSTD => return bad("zstd level must be 1 to 22"),
            other => {
                return Err(FormatError::UnsupportedVersion {
                    what: "compression",
                    version: other.into(),
                })
            }
        }
        if !(1024 * 1024..=MAX_PACK_SIZE).contains(&self.pack_size) {
            return bad("pack size must be 1 MiB to 1 GiB");
        }
        if self.padding > PADDING_ALL {
            return Err(FormatError::UnsupportedVersion {
                what: "padding",
                version: self.padding.into(),
            });
        }
        if self.version == 1 && c.algorithm != CHUNKER_FASTCDC2020_KEYED {
            return Err(FormatError::UnsupportedVersion {
                what: "chunker of a version-1 config",
                version: c.algorithm.into(),
            });
        }
        if self.version == 1 && self.padding != PADDING_NONE {
            return bad("a version-1 config pads nothing");
        }
        if self.epoch.is_none() != (self.version == 1) {
            return bad("a key epoch is in every config of version 2 and in none of version 1");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_round_trips_and_rejects_flips() {
        let keys = MasterKeys::generate_keyed();
        let config = Config::with_defaults(keys.repo_id);
        let bytes = config.seal(&keys);
        assert_eq!(Config::open(&bytes, &keys).unwrap(), config);
        for i in 0..bytes.len() {
            let mut bad = bytes.clone();
            bad[i] ^= 0x80;
            assert!(Config::open(&bad, &keys).is_err(), "flip at {i}");
        }
    }

    #[test]
    fn a_version_1_config_still_opens_and_seals_as_version_1() {
        let keys = MasterKeys::generate();
        let mut config = Config::with_defaults(keys.repo_id);
        config.version = 1;
        config.padding = PADDING_NONE;
        config.epoch = None;
        let bytes = config.seal(&keys);
        assert_eq!(Config::open(&bytes, &keys).unwrap(), config);
        // Its bytes are those a version-1 writer made: no padding, no epoch.
        let mut v2 = config.clone();
        v2.version = 2;
        v2.epoch = Some(0);
        let v2 = postcard::to_stdvec(&v2).unwrap();
        let framed = keys
            .open_framed(ObjectType::Config, None, &bytes[..12], &bytes[12..])
            .unwrap();
        // The codec byte, then four bytes fewer: `padding`, `Some(0)` and
        // `retain_days: None`.
        assert_eq!(framed.len() - 1 + 4, v2.len());
    }

    #[test]
    fn invalid_chunker_parameters_are_rejected() {
        let mut config = Config::with_defaults(crate::id::RepoId([0; 32]));
        config.chunker.avg_size = 1000;
        assert!(config.validate().is_err());
    }
}
