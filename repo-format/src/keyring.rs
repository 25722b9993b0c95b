//! Key epochs and key roles (SPEC §3.6, §4.5): the secrets of a repository
//! made with a version-2 config.
//!
//! Each epoch has a metadata key, which seals what every writer must read
//! (config, lock records, marks, the deduplication tags of index files),
//! and an X25519 key pair: everything else (blobs, pack headers, index
//! entries, snapshots, journal and audit records, WAL files) is sealed to
//! the epoch's public key under a key each writing
//! process derives from an ephemeral key pair of its own. A full key holds
//! every epoch's secret key; a put-only key holds only the public keys, so
//! it can write content and never read it back, not even what it wrote once
//! its process has ended.

use crate::crypto::{aead_open, aead_seal_after, random_array, suite_aad, ObjectType, TAG_LEN};
use crate::error::{FormatError, Result};
use crate::id::{RepoId, ID_LEN};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use x25519_dalek::{PublicKey, StaticSecret};
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

/// Envelope suite of content sealed to an epoch's public key:
/// `2 || epoch u32 LE || ephemeral public key (32) || nonce || ciphertext || tag`.
pub const SUITE_SEALED: u8 = 2;
/// Envelope suite of metadata sealed under an epoch's metadata key:
/// `3 || epoch u32 LE || nonce || ciphertext || tag`.
pub const SUITE_EPOCH: u8 = 3;
/// Bytes a suite-2 envelope adds to its plaintext.
pub const SEALED_OVERHEAD: usize = 1 + 4 + 32 + 24 + 16;
/// Bytes a suite-3 envelope adds to its plaintext.
pub const EPOCH_OVERHEAD: usize = 1 + 4 + 24 + 16;
/// Bytes of an envelope of `ty` before its ciphertext: the suite, the
/// epoch, the ephemeral public key of content, and the nonce.
pub fn head_len(ty: ObjectType) -> usize {
    match is_content(ty) {
        true => SEALED_OVERHEAD - TAG_LEN,
        false => EPOCH_OVERHEAD - TAG_LEN,
    }
}

/// Context of the BLAKE3 key derivation that turns an X25519 shared secret
/// into the XChaCha20-Poly1305 key of a suite-2 envelope.
const SEALING_CONTEXT: &str = "cairn 2026-12-07 content sealed to an epoch key v1";
/// Bytes a full key's tag adds to a file it vouches for: the epoch (u32 LE)
/// and a 32-byte keyed BLAKE3 hash.
pub const FULL_TAG_LEN: usize = 4 + 32;

/// What a key file may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Role {
    /// Read and write everything (postcard variant 0).
    Full,
    /// Back up only: read the metadata, write content it cannot read (1).
    PutOnly,
}

impl Role {
    /// `full` or `put-only`.
    pub fn name(self) -> &'static str {
        match self {
            Role::Full => "full",
            Role::PutOnly => "put-only",
        }
    }
}

/// The content half of an epoch, as a key holds it.
#[derive(Clone, Serialize, Deserialize, Zeroize, ZeroizeOnDrop)]
pub enum EpochSeal {
    /// The X25519 secret key (full keys; postcard variant 0).
    Secret([u8; 32]),
    /// The X25519 public key only (put-only keys; variant 1).
    Public([u8; 32]),
}

/// One epoch's secrets.
#[derive(Clone, Serialize, Deserialize, Zeroize, ZeroizeOnDrop)]
pub struct EpochKeys {
    /// The epoch's number, from 0.
    #[zeroize(skip)]
    pub epoch: u32,
    /// XChaCha20-Poly1305 key for the epoch's metadata.
    pub meta_key: [u8; 32],
    /// What seals and opens the epoch's content.
    pub seal: EpochSeal,
    /// The key of the tags by which full keys vouch for the config and
    /// prune marks (SPEC §3.6); a put-only key holds none.
    pub auth_key: Option<[u8; 32]>,
}

impl EpochKeys {
    /// Fresh secrets for epoch `epoch`.
    pub fn generate(epoch: u32) -> Self {
        EpochKeys {
            epoch,
            meta_key: random_array(),
            seal: EpochSeal::Secret(random_array()),
            auth_key: Some(random_array()),
        }
    }

    fn public(&self) -> PublicKey {
        match &self.seal {
            EpochSeal::Secret(sk) => PublicKey::from(&StaticSecret::from(*sk)),
            EpochSeal::Public(pk) => PublicKey::from(*pk),
        }
    }
}

/// Whether objects of type `ty` are content (sealed to an epoch's public
/// key) rather than metadata (under its metadata key).
pub fn is_content(ty: ObjectType) -> bool {
    matches!(
        ty,
        ObjectType::DataBlob
            | ObjectType::TreeBlob
            | ObjectType::PackHeader
            | ObjectType::Index
            | ObjectType::Snapshot
            | ObjectType::JournalEntry
            | ObjectType::Audit
            | ObjectType::Wal
    )
}

/// The epoch an envelope of suite 2 or 3 was sealed in, from its first
/// five bytes; `None` for another suite (a repository without epochs).
/// Unauthenticated: it says which key to try, never what to trust.
pub fn sealed_epoch(envelope: &[u8]) -> Option<u32> {
    match envelope {
        [SUITE_SEALED | SUITE_EPOCH, a, b, c, d, ..] => Some(u32::from_le_bytes([*a, *b, *c, *d])),
        _ => None,
    }
}

/// An epoch and the ephemeral public key of the process that sealed in it:
/// which key opens that process's content.
type SessionId = (u32, [u8; 32]);

/// This process's ephemeral sealing key for one epoch.
struct Session {
    public: [u8; 32],
    key: Zeroizing<[u8; 32]>,
}

/// A key's epochs, its role, and the keys derived while it is in use.
pub struct Keyring {
    role: Role,
    epochs: Vec<EpochKeys>,
    cache_key: Zeroizing<[u8; 32]>,
    current: AtomicU32,
    /// The ephemeral key this process seals content with, per epoch.
    sessions: Mutex<HashMap<u32, Arc<Session>>>,
    opened: Mutex<HashMap<SessionId, Zeroizing<[u8; 32]>>>,
}

impl Keyring {
    /// A full keyring with a fresh epoch 0, for a new repository.
    pub fn generate() -> Self {
        Keyring::new(Role::Full, vec![EpochKeys::generate(0)], random_array())
    }

    /// A keyring of `role` holding `epochs` (any order) and `cache_key`;
    /// it seals in its newest epoch until [`Keyring::set_current`].
    pub fn new(role: Role, mut epochs: Vec<EpochKeys>, cache_key: [u8; 32]) -> Self {
        epochs.sort_by_key(|e| e.epoch);
        let newest = epochs.last().map_or(0, |e| e.epoch);
        Keyring {
            role,
            epochs,
            cache_key: Zeroizing::new(cache_key),
            current: AtomicU32::new(newest),
            sessions: Mutex::default(),
            opened: Mutex::default(),
        }
    }

    /// A put-only keyring with the same epochs: public keys instead of
    /// secret ones, and a cache key of its own.
    pub fn put_only(&self) -> Keyring {
        let epochs = self
            .epochs
            .iter()
            .map(|e| EpochKeys {
                epoch: e.epoch,
                meta_key: e.meta_key,
                seal: EpochSeal::Public(e.public().to_bytes()),
                auth_key: None,
            })
            .collect();
        Keyring::new(Role::PutOnly, epochs, random_array())
    }

    /// A full keyring for a rotation (SPEC §3.7): these epochs and a fresh
    /// one after the newest, in which it seals.
    pub fn rotated(&self) -> Keyring {
        let mut epochs = self.epochs.clone();
        epochs.push(EpochKeys::generate(self.newest() + 1));
        Keyring::new(self.role, epochs, *self.cache_key)
    }

    /// The same key holding its newest epoch only: what remains once
    /// nothing in the repository is sealed in an older one.
    pub fn newest_only(&self) -> Keyring {
        let newest = self.epochs.last().cloned().into_iter().collect();
        Keyring::new(self.role, newest, *self.cache_key)
    }

    /// What this key may do.
    pub fn role(&self) -> Role {
        self.role
    }

    /// The epochs held, oldest first.
    pub fn epochs(&self) -> &[EpochKeys] {
        &self.epochs
    }

    /// A secret of this key alone, for what it keeps on its own machine
    /// (a put-only key's parent cache, a full key's local index table).
    pub fn cache_key(&self) -> &[u8; 32] {
        &self.cache_key
    }

    /// The epoch new objects are sealed in.
    pub fn current(&self) -> u32 {
        self.current.load(Ordering::Relaxed)
    }

    /// The newest epoch this key holds.
    pub fn newest(&self) -> u32 {
        self.epochs.last().map_or(0, |e| e.epoch)
    }

    /// Seals new objects in `epoch` (the config's); fails unless it is the
    /// newest this key holds, so that a config naming an older epoch (whose
    /// secrets a rotation retired) is refused.
    pub fn set_current(&self, epoch: u32) -> Result<()> {
        if epoch != self.newest() {
            return Err(FormatError::malformed(
                "config",
                format!(
                    "it names key epoch {epoch}, and this key's newest is {}",
                    self.newest()
                ),
            ));
        }
        self.current.store(epoch, Ordering::Relaxed);
        Ok(())
    }

    /// The tag by which a full key vouches for `bytes` (a config or a prune
    /// mark) in the current epoch; `None` for a put-only key.
    pub fn full_tag(&self, what: &[u8], bytes: &[u8]) -> Option<[u8; FULL_TAG_LEN]> {
        let epoch = self.current();
        let key = self.epoch(epoch).ok()?.auth_key?;
        let mut out = [0u8; FULL_TAG_LEN];
        out[..4].copy_from_slice(&epoch.to_le_bytes());
        out[4..].copy_from_slice(&tag(&key, what, bytes));
        Some(out)
    }

    /// Checks the full key's tag that ends `file` and returns the bytes
    /// before it; the tag must be of epoch `epoch` when given. A full key
    /// verifies it; a put-only key, which cannot, takes it on trust (what it
    /// reads this way can mislead only its own deduplication).
    pub fn check_full_tag<'a>(
        &self,
        what: &'static str,
        context: &[u8],
        file: &'a [u8],
        epoch: Option<u32>,
    ) -> Result<&'a [u8]> {
        let fail = || FormatError::Authentication(what);
        let split = file.len().checked_sub(FULL_TAG_LEN).ok_or_else(fail)?;
        let (bytes, trailer) = file.split_at(split);
        if self.role == Role::PutOnly {
            return Ok(bytes);
        }
        let (tagged, expected) = trailer.split_first_chunk::<4>().ok_or_else(fail)?;
        let tagged = u32::from_le_bytes(*tagged);
        if epoch.is_some_and(|e| e != tagged) {
            return Err(fail());
        }
        let keys = self.epoch(tagged).map_err(|_| fail())?;
        let key = keys.auth_key.ok_or_else(fail)?;
        let expected: &[u8; 32] = expected.try_into().map_err(|_| fail())?;
        match constant_time_eq(&tag(&key, context, bytes), expected) {
            true => Ok(bytes),
            false => Err(fail()),
        }
    }

    fn epoch(&self, epoch: u32) -> Result<&EpochKeys> {
        self.epochs
            .iter()
            .find(|e| e.epoch == epoch)
            .ok_or(FormatError::Authentication("key epoch"))
    }

    /// Seals `framed` as `ty`: content to the current epoch's public key,
    /// metadata under its metadata key. `aad_tail` extends the associated
    /// data (the config's clear header).
    pub fn seal(
        &self,
        repo: &RepoId,
        ty: ObjectType,
        binding: Option<&[u8; ID_LEN]>,
        aad_tail: &[u8],
        framed: &[u8],
    ) -> Vec<u8> {
        let head = head_len(ty);
        let mut buf = Vec::with_capacity(head + framed.len() + TAG_LEN);
        buf.resize(head, 0);
        buf.extend_from_slice(framed);
        self.seal_after(repo, ty, binding, aad_tail, &mut buf);
        buf
    }

    /// [`Keyring::seal`] in place: `buf` holds [`head_len`] bytes that the
    /// envelope's head fills, then the frame, which is encrypted where it
    /// lies; the tag is appended.
    pub fn seal_after(
        &self,
        repo: &RepoId,
        ty: ObjectType,
        binding: Option<&[u8; ID_LEN]>,
        aad_tail: &[u8],
        buf: &mut Vec<u8>,
    ) {
        let epoch = self.current();
        let keys = self.epoch(epoch).expect("the current epoch is held");
        buf[1..5].copy_from_slice(&epoch.to_le_bytes());
        if is_content(ty) {
            let session = self.session(keys);
            buf[0] = SUITE_SEALED;
            buf[5..37].copy_from_slice(&session.public);
            let aad = aad(SUITE_SEALED, repo, ty, binding, aad_tail);
            aead_seal_after(&session.key, &aad, buf, 37);
        } else {
            buf[0] = SUITE_EPOCH;
            let aad = aad(SUITE_EPOCH, repo, ty, binding, aad_tail);
            aead_seal_after(&keys.meta_key, &aad, buf, 5);
        }
    }

    /// The ephemeral key this process seals content with in `keys`' epoch,
    /// made at its first use there.
    fn session(&self, keys: &EpochKeys) -> Arc<Session> {
        let mut sessions = self.sessions.lock().expect("not poisoned");
        sessions
            .entry(keys.epoch)
            .or_insert_with(|| {
                let secret = StaticSecret::from(random_array::<32>());
                let public = PublicKey::from(&secret);
                let epoch_public = keys.public();
                let key = sealing_key(&secret, &epoch_public, &public, &epoch_public)
                    .expect("a public key of this repository is a valid X25519 point");
                Arc::new(Session {
                    public: public.to_bytes(),
                    key,
                })
            })
            .clone()
    }

    /// Authenticates and decrypts `sealed` as `ty`. A put-only key cannot
    /// open content: [`FormatError::NotReadable`].
    pub fn open(
        &self,
        repo: &RepoId,
        ty: ObjectType,
        binding: Option<&[u8; ID_LEN]>,
        aad_tail: &[u8],
        sealed: &[u8],
    ) -> Result<Vec<u8>> {
        let fail = || FormatError::Authentication(ty.name());
        let expected = if is_content(ty) {
            SUITE_SEALED
        } else {
            SUITE_EPOCH
        };
        let (&suite, rest) = sealed.split_first().ok_or_else(fail)?;
        let (epoch, rest) = rest.split_first_chunk::<4>().ok_or_else(fail)?;
        if suite != expected {
            return Err(fail());
        }
        let keys = self.epoch(u32::from_le_bytes(*epoch)).map_err(|_| fail())?;
        let aad = aad(suite, repo, ty, binding, aad_tail);
        if suite == SUITE_EPOCH {
            return aead_open(&keys.meta_key, &aad, rest, ty.name());
        }
        let EpochSeal::Secret(sk) = &keys.seal else {
            return Err(FormatError::NotReadable(ty.name()));
        };
        let (public, body) = rest.split_first_chunk::<32>().ok_or_else(fail)?;
        let slot = (keys.epoch, *public);
        let cached = self
            .opened
            .lock()
            .expect("not poisoned")
            .get(&slot)
            .cloned();
        if let Some(key) = cached {
            return aead_open(&key, &aad, body, ty.name());
        }
        let ephemeral = PublicKey::from(*public);
        let key = sealing_key(
            &StaticSecret::from(*sk),
            &ephemeral,
            &ephemeral,
            &keys.public(),
        )
        .ok_or_else(fail)?;
        let plain = aead_open(&key, &aad, body, ty.name())?;
        // Kept only once it has opened something: storage cannot fill it.
        self.opened.lock().expect("not poisoned").insert(slot, key);
        Ok(plain)
    }
}

/// The XChaCha20-Poly1305 key of content sealed to an epoch's public key
/// `epoch_public` with the ephemeral public key `ephemeral`:
/// `BLAKE3-derive_key(context, X25519 shared secret || ephemeral public ||
/// epoch public)`, where `ours` is the ephemeral secret (the writer) or the
/// epoch's secret (a reader). `None` for a shared secret of zeros (a
/// low-order point, which no honest writer sends).
fn sealing_key(
    ours: &StaticSecret,
    theirs: &PublicKey,
    ephemeral: &PublicKey,
    epoch_public: &PublicKey,
) -> Option<Zeroizing<[u8; 32]>> {
    let shared = ours.diffie_hellman(theirs);
    if !shared.was_contributory() {
        return None;
    }
    let mut input = Zeroizing::new([0u8; 96]);
    input[..32].copy_from_slice(shared.as_bytes());
    input[32..64].copy_from_slice(ephemeral.as_bytes());
    input[64..].copy_from_slice(epoch_public.as_bytes());
    Some(Zeroizing::new(blake3::derive_key(SEALING_CONTEXT, &*input)))
}

/// A full key's tag: BLAKE3 keyed with the epoch's `auth_key`, over the
/// object's name (`config`, `prune mark`), a zero byte, and its bytes.
fn tag(key: &[u8; 32], what: &[u8], bytes: &[u8]) -> [u8; 32] {
    let mut h = blake3::Hasher::new_keyed(key);
    h.update(what).update(&[0]).update(bytes);
    *h.finalize().as_bytes()
}

fn constant_time_eq(a: &[u8; 32], b: &[u8; 32]) -> bool {
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Associated data of a suite-2 or suite-3 envelope: as SPEC §4.2 with the
/// envelope's suite byte.
fn aad(
    suite: u8,
    repo: &RepoId,
    ty: ObjectType,
    binding: Option<&[u8; ID_LEN]>,
    tail: &[u8],
) -> Vec<u8> {
    let mut aad = suite_aad(suite, repo, ty, binding);
    aad.extend_from_slice(tail);
    aad
}

#[cfg(test)]
mod tests {
    use super::*;

    const REPO: RepoId = RepoId([7; 32]);

    #[test]
    fn content_opens_with_the_full_key_only_and_metadata_with_both() {
        let full = Keyring::generate();
        let put = full.put_only();
        for writer in [&full, &put] {
            let blob = writer.seal(&REPO, ObjectType::DataBlob, Some(&[1; 32]), &[], b"chunk");
            assert_eq!(
                full.open(&REPO, ObjectType::DataBlob, Some(&[1; 32]), &[], &blob)
                    .unwrap(),
                b"chunk"
            );
            assert!(matches!(
                put.open(&REPO, ObjectType::DataBlob, Some(&[1; 32]), &[], &blob),
                Err(FormatError::NotReadable(_))
            ));
            assert!(full
                .open(&REPO, ObjectType::DataBlob, Some(&[2; 32]), &[], &blob)
                .is_err());
            let index = writer.seal(&REPO, ObjectType::DedupTags, None, &[], b"index");
            for reader in [&full, &put] {
                assert_eq!(
                    reader
                        .open(&REPO, ObjectType::DedupTags, None, &[], &index)
                        .unwrap(),
                    b"index"
                );
            }
            // An envelope is opened only as the class of its type.
            assert!(full
                .open(&REPO, ObjectType::Snapshot, None, &[], &index)
                .is_err());
        }
    }

    #[test]
    fn a_flip_anywhere_in_either_envelope_fails() {
        let keys = Keyring::generate();
        for ty in [ObjectType::Snapshot, ObjectType::Lock] {
            let sealed = keys.seal(&REPO, ty, None, b"tail", b"plaintext");
            for i in 0..sealed.len() {
                let mut bad = sealed.clone();
                bad[i] ^= 0x04;
                assert!(
                    keys.open(&REPO, ty, None, b"tail", &bad).is_err(),
                    "{ty:?} at {i}"
                );
            }
            assert!(keys.open(&REPO, ty, None, b"other", &sealed).is_err());
        }
    }

    #[test]
    fn only_a_full_key_vouches_for_a_file_and_a_full_key_checks_it() {
        let full = Keyring::generate();
        let put = full.put_only();
        assert!(put.full_tag(b"prune mark", b"mark").is_none());
        let mut file = b"mark".to_vec();
        file.extend_from_slice(&full.full_tag(b"prune mark", &file).unwrap());
        assert_eq!(
            full.check_full_tag("m", b"prune mark", &file, None)
                .unwrap(),
            b"mark"
        );
        assert!(full.check_full_tag("m", b"config", &file, None).is_err());
        assert!(full
            .check_full_tag("m", b"prune mark", &file, Some(1))
            .is_err());
        // A put-only key forging one: a tag under a key it does not have.
        let mut forged = b"mark".to_vec();
        forged.extend_from_slice(&0u32.to_le_bytes());
        forged.extend_from_slice(&[7; 32]);
        assert!(full
            .check_full_tag("m", b"prune mark", &forged, None)
            .is_err());
        // What a put-only key cannot check, it reads past.
        assert_eq!(
            put.check_full_tag("m", b"prune mark", &forged, None)
                .unwrap(),
            b"mark"
        );
        assert!(full
            .check_full_tag("m", b"prune mark", b"short", None)
            .is_err());
    }

    #[test]
    fn a_later_epoch_seals_apart_and_older_ones_still_open() {
        let old = Keyring::generate();
        let before = old.seal(&REPO, ObjectType::Snapshot, None, &[], b"old");
        let both = old.rotated();
        assert_eq!(both.current(), 1);
        let after = both.seal(&REPO, ObjectType::Snapshot, None, &[], b"new");
        assert_eq!(
            (sealed_epoch(&before), sealed_epoch(&after)),
            (Some(0), Some(1))
        );
        assert_eq!(sealed_epoch(&[1, 0, 0, 0, 0, 0]), None);
        assert_eq!(
            both.open(&REPO, ObjectType::Snapshot, None, &[], &before)
                .unwrap(),
            b"old"
        );
        assert_eq!(
            both.open(&REPO, ObjectType::Snapshot, None, &[], &after)
                .unwrap(),
            b"new"
        );
        assert!(old
            .open(&REPO, ObjectType::Snapshot, None, &[], &after)
            .is_err());
        // Once nothing is sealed in epoch 0, a key may hold epoch 1 alone.
        let newest = both.newest_only();
        assert_eq!(newest.epochs().len(), 1);
        assert!(newest
            .open(&REPO, ObjectType::Snapshot, None, &[], &before)
            .is_err());
        assert_eq!(
            newest
                .open(&REPO, ObjectType::Snapshot, None, &[], &after)
                .unwrap(),
            b"new"
        );
        assert!(both.set_current(2).is_err());
        assert!(
            both.set_current(0).is_err(),
            "an older epoch than the newest"
        );
    }
}
