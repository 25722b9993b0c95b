//! 32-byte identifiers, one distinct type per kind of object.
//!
//! On the wire (postcard) an ID is its 32 raw bytes; in human-readable
//! formats such as JSON it is 64 lower-case hex digits.

use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

/// Length in bytes of every identifier.
pub const ID_LEN: usize = 32;

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(pub [u8; ID_LEN]);

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                if s.is_human_readable() {
                    s.serialize_str(&self.to_hex())
                } else {
                    self.0.serialize(s)
                }
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                if d.is_human_readable() {
                    let s = String::deserialize(d)?;
                    Self::from_hex(&s).ok_or_else(|| D::Error::custom("expected 64 hex digits"))
                } else {
                    <[u8; ID_LEN]>::deserialize(d).map(Self)
                }
            }
        }

        impl $name {
            /// Lower-case hexadecimal form, as used in file names and on the command line.
            pub fn to_hex(&self) -> String {
                hex::encode(self.0)
            }

            /// Parses the full 64-digit hexadecimal form.
            pub fn from_hex(s: &str) -> Option<Self> {
                let mut out = [0u8; ID_LEN];
                hex::decode_to_slice(s, &mut out).ok()?;
                Some(Self(out))
            }

            /// The first eight hex digits, for display.
            pub fn short(&self) -> String {
                hex::encode(&self.0[..4])
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.to_hex())
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self.short())
            }
        }
    };
}

id_type!(
    /// Keyed BLAKE3 hash of a blob's plaintext (data chunk or tree).
    BlobId
);
id_type!(
    /// Unkeyed BLAKE3 hash of a whole pack file's bytes.
    PackId
);
id_type!(
    /// Unkeyed BLAKE3 hash of a whole snapshot file's bytes.
    SnapshotId
);
id_type!(
    /// Unkeyed BLAKE3 hash of a whole index file's bytes.
    IndexId
);
id_type!(
    /// Unkeyed BLAKE3 hash of a whole key file's bytes.
    KeyId
);
id_type!(
    /// Random identifier of a repository, chosen at `init`.
    RepoId
);
id_type!(
    /// Unkeyed BLAKE3 hash of a whole lock record's bytes.
    LockId
);
id_type!(
    /// Unkeyed BLAKE3 hash of a whole prune mark's bytes.
    MarkId
);
id_type!(
    /// Unkeyed BLAKE3 hash of a whole journal entry's bytes.
    JournalId
);
id_type!(
    /// Unkeyed BLAKE3 hash of a whole audit record's bytes.
    AuditId
);

/// Unkeyed BLAKE3 of a file's bytes: the name of every content-addressed file.
pub fn storage_hash(bytes: &[u8]) -> [u8; ID_LEN] {
    *blake3::hash(bytes).as_bytes()
}
