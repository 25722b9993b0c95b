//! Postcard encoding of versioned structures.
//!
//! Every top-level structure begins with a `version` field (a postcard varint),
//! read and checked before the rest is parsed, and is validated after parsing.

use crate::error::{FormatError, Result};
use serde::de::DeserializeOwned;
use serde::Serialize;

/// A top-level structure of the repository format.
pub trait Versioned: Serialize + DeserializeOwned {
    /// Name used in error messages.
    const WHAT: &'static str;
    /// The structure version this implementation writes.
    const VERSION: u32;
    /// True for a version this implementation reads: by default only [`Self::VERSION`].
    fn reads(version: u32) -> bool {
        version == Self::VERSION
    }
    /// Checks invariants that the type system cannot express.
    fn validate(&self) -> Result<()> {
        Ok(())
    }
}

/// Encodes `value` with postcard.
pub fn encode<T: Versioned>(value: &T) -> Vec<u8> {
    postcard::to_stdvec(value).expect("postcard serialization into a Vec cannot fail")
}

/// Decodes and validates a `T`, refusing other versions and trailing bytes.
pub fn decode<T: Versioned>(bytes: &[u8]) -> Result<T> {
    let (value, rest) = decode_prefix::<T>(bytes)?;
    if !rest.is_empty() {
        return Err(FormatError::malformed(
            T::WHAT,
            format!("{} trailing bytes", rest.len()),
        ));
    }
    Ok(value)
}

/// Decodes and validates a `T` at the start of `bytes`, refusing other
/// versions; returns it and the bytes after it.
pub fn decode_prefix<T: Versioned>(bytes: &[u8]) -> Result<(T, &[u8])> {
    let (version, _) =
        postcard::take_from_bytes::<u32>(bytes).map_err(|e| FormatError::malformed(T::WHAT, e))?;
    if !T::reads(version) {
        return Err(FormatError::UnsupportedVersion {
            what: T::WHAT,
            version,
        });
    }
    let (value, rest) =
        postcard::take_from_bytes::<T>(bytes).map_err(|e| FormatError::malformed(T::WHAT, e))?;
    value.validate()?;
    Ok((value, rest))
}

/// The `version` a structure's encoding starts with, read without parsing
/// the rest: which of its versions to decode (`what` names it in errors).
pub fn version_of(bytes: &[u8], what: &'static str) -> Result<u32> {
    postcard::take_from_bytes::<u32>(bytes)
        .map(|(version, _)| version)
        .map_err(|e| FormatError::malformed(what, e))
}

/// Decodes an older version of a structure, kept as a type of its own
/// (a version-1 config or key header), refusing trailing bytes.
pub fn decode_old<T: DeserializeOwned>(bytes: &[u8], what: &'static str) -> Result<T> {
    let (value, rest) =
        postcard::take_from_bytes::<T>(bytes).map_err(|e| FormatError::malformed(what, e))?;
    if !rest.is_empty() {
        return Err(FormatError::malformed(
            what,
            format!("{} trailing bytes", rest.len()),
        ));
    }
    Ok(value)
}
