//! Secrets, keyed hashing and the sealed envelope shared by every encrypted object.
//!
//! Envelope bytes: `suite (1) || nonce (24) || ciphertext || tag (16)`, where the
//! plaintext is a compression frame (see [`crate::frame`]). The associated data
//! binds the format version, suite, object type, repository ID and, for blobs,
//! the blob ID, so a valid ciphertext cannot be moved to another role or place.

use crate::error::{FormatError, Result};
use crate::id::{BlobId, RepoId, ID_LEN};
use chacha20poly1305::aead::{Aead, AeadInPlace, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use zeroize::{Zeroize, ZeroizeOnDrop};

/// Suite byte of format v1: XChaCha20-Poly1305 with a random 192-bit nonce.
pub const SUITE_XCHACHA20POLY1305: u8 = 1;
/// Nonce length of the v1 suite.
pub const NONCE_LEN: usize = 24;
/// Authentication tag length of the v1 suite.
pub const TAG_LEN: usize = 16;
/// Bytes an envelope of suite 1 adds to its plaintext, the least any suite adds.
pub const ENVELOPE_OVERHEAD: usize = 1 + NONCE_LEN + TAG_LEN;
/// The most bytes an envelope of any suite adds (suite 2, SPEC §4.5).
pub const MAX_ENVELOPE_OVERHEAD: usize = crate::keyring::SEALED_OVERHEAD;
/// Prefix of every associated-data string: the ASCII text `cairn` and format version 1.
pub const AAD_DOMAIN: &[u8; 6] = b"cairn\x01";

/// The role of a sealed object, bound into its associated data.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum ObjectType {
    /// A chunk of file content inside a pack.
    DataBlob = 1,
    /// One directory listing inside a pack.
    TreeBlob = 2,
    /// The header at the end of a pack.
    PackHeader = 3,
    /// An index file.
    Index = 4,
    /// A snapshot file.
    Snapshot = 5,
    /// The repository config.
    Config = 6,
    /// The secret part of a key file (sealed under a password-derived key).
    KeyFile = 7,
    /// A lock record: one running operation, for coordination.
    Lock = 8,
    /// A prune mark: packs and index files that a later prune deletes.
    PruneMark = 9,
    /// A journal entry: a failed step, a check or a prune, for every host to see.
    JournalEntry = 10,
    /// An audit record: a command that changed the repository, or read it back.
    Audit = 11,
    /// A file of a PostgreSQL cluster's write-ahead log archive.
    Wal = 12,
    /// The deduplication tags of an index file (SPEC §10.1): what a
    /// put-only key reads of the index.
    DedupTags = 13,
}

impl ObjectType {
    /// Human name, used in error messages.
    pub fn name(self) -> &'static str {
        match self {
            ObjectType::DataBlob => "data blob",
            ObjectType::TreeBlob => "tree blob",
            ObjectType::PackHeader => "pack header",
            ObjectType::Index => "index file",
            ObjectType::Snapshot => "snapshot",
            ObjectType::Config => "config",
            ObjectType::KeyFile => "key file",
            ObjectType::Lock => "lock record",
            ObjectType::PruneMark => "prune mark",
            ObjectType::JournalEntry => "journal entry",
            ObjectType::Audit => "audit record",
            ObjectType::Wal => "WAL file",
            ObjectType::DedupTags => "index file's deduplication tags",
        }
    }
}

/// The repository's master secrets, kept only inside key files.
///
/// Each secret has one role: `data_key` encrypts, `id_key` names blobs,
/// `chunker_key` derives the chunker's gear table.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct MasterKeys {
    /// The repository these secrets belong to.
    #[zeroize(skip)]
    pub repo_id: RepoId,
    /// XChaCha20-Poly1305 key for every sealed object.
    pub data_key: [u8; 32],
    /// BLAKE3 key that turns plaintext into blob IDs.
    pub id_key: [u8; 32],
    /// Secret from which the chunker's tables and keys are derived.
    pub chunker_key: [u8; 32],
    /// Which objects [`MasterKeys::seal`] pads: the repository's policy
    /// (its config), not a secret; [`Padding::None`] until a config says more.
    #[zeroize(skip)]
    pub padding: Padding,
    /// The epochs of a repository with a version-2 config (SPEC §3.6): then
    /// every object is sealed with them and `data_key` is unused. `None`
    /// for an older repository, whose objects are all under `data_key`.
    #[zeroize(skip)]
    pub keyring: Option<std::sync::Arc<crate::keyring::Keyring>>,
}

/// Which sealed objects a writer pads with [`crate::frame::pad`] (SPEC §5.1).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Padding {
    /// Nothing (version-1 configs).
    #[default]
    None,
    /// Everything but blobs: pack headers, index files, snapshots and the
    /// other metadata, whose lengths would count blobs and names.
    Metadata,
    /// Blobs as well, at a measured cost in storage.
    All,
}

impl Padding {
    /// Whether an object of type `ty` is padded.
    pub fn pads(self, ty: ObjectType) -> bool {
        match self {
            Padding::None => false,
            _ if matches!(ty, ObjectType::Config | ObjectType::KeyFile) => false,
            Padding::Metadata => !matches!(ty, ObjectType::DataBlob | ObjectType::TreeBlob),
            Padding::All => true,
        }
    }
}

/// The longest envelope an object of at most `plain` bytes can have: stored
/// raw in a padded frame, in the suite that adds the most.
pub const fn max_envelope_len(plain: usize) -> usize {
    crate::frame::padme((plain + 1 + crate::frame::PADDED_OVERHEAD + MAX_ENVELOPE_OVERHEAD) as u64)
        as usize
}

impl std::fmt::Debug for MasterKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MasterKeys")
            .field("repo_id", &self.repo_id)
            .finish_non_exhaustive()
    }
}

impl MasterKeys {
    /// Fresh random secrets for a new repository.
    pub fn generate() -> Self {
        MasterKeys {
            repo_id: RepoId(random_array()),
            data_key: random_array(),
            id_key: random_array(),
            chunker_key: random_array(),
            padding: Padding::None,
            keyring: None,
        }
    }

    /// Fresh secrets for a new repository with key epochs: epoch 0 only,
    /// and no `data_key` (zeros, never used).
    pub fn generate_keyed() -> Self {
        MasterKeys {
            data_key: [0; 32],
            keyring: Some(std::sync::Arc::new(crate::keyring::Keyring::generate())),
            ..MasterKeys::generate()
        }
    }

    /// What this key may do: [`Role::Full`] for keys of older repositories.
    pub fn role(&self) -> crate::keyring::Role {
        self.keyring
            .as_ref()
            .map_or(crate::keyring::Role::Full, |k| k.role())
    }

    /// Bytes the envelope of an object of type `ty` adds to its frame.
    fn overhead(&self, ty: ObjectType) -> usize {
        match (&self.keyring, crate::keyring::is_content(ty)) {
            (None, _) => ENVELOPE_OVERHEAD,
            (Some(_), true) => crate::keyring::SEALED_OVERHEAD,
            (Some(_), false) => crate::keyring::EPOCH_OVERHEAD,
        }
    }

    /// The ID of a blob with this plaintext: keyed BLAKE3 under `id_key`.
    pub fn blob_id(&self, plaintext: &[u8]) -> BlobId {
        BlobId(*blake3::keyed_hash(&self.id_key, plaintext).as_bytes())
    }

    /// The FastCDC chunker's 256-entry gear table, derived from `chunker_key`.
    pub fn gear_table(&self) -> [u64; 256] {
        self.chunker_table(b"cairn fastcdc gear table v1")
    }

    /// A 256-entry table of 64-bit words derived from `chunker_key` for
    /// `context` (SPEC §7.1, §7.4).
    pub fn chunker_table(&self, context: &[u8]) -> [u64; 256] {
        let mut bytes = [0u8; 256 * 8];
        self.chunker_secret(context, &mut bytes);
        let mut table = [0u64; 256];
        for (entry, word) in table.iter_mut().zip(bytes.chunks_exact(8)) {
            *entry = u64::from_le_bytes(word.try_into().expect("8-byte chunk"));
        }
        table
    }

    /// Fills `out` with key material derived from `chunker_key` for `context`:
    /// the extendable output of BLAKE3 keyed with it over the context string.
    pub fn chunker_secret(&self, context: &[u8], out: &mut [u8]) {
        blake3::Hasher::new_keyed(&self.chunker_key)
            .update(context)
            .finalize_xof()
            .fill(out);
    }

    /// Associated data for an object of type `ty`, bound to `binding` (a blob ID) if any.
    pub fn aad(&self, ty: ObjectType, binding: Option<&[u8; ID_LEN]>) -> Vec<u8> {
        object_aad(&self.repo_id, ty, binding)
    }

    /// Compresses (when `level` is given and it helps) and seals `plaintext`
    /// as `ty`, padded when [`MasterKeys::padding`] says so.
    pub fn seal(
        &self,
        ty: ObjectType,
        binding: Option<&[u8; ID_LEN]>,
        plaintext: &[u8],
        level: Option<i32>,
    ) -> Vec<u8> {
        let head = self.overhead(ty) - TAG_LEN;
        // Room for the whole envelope of the frame stored raw, so that
        // neither the frame nor the padding moves it.
        let mut raw = self.overhead(ty) + 1 + plaintext.len();
        if self.padding.pads(ty) {
            raw = crate::frame::padme((raw + crate::frame::PADDED_OVERHEAD) as u64) as usize;
        }
        let mut buf = Vec::with_capacity(raw);
        buf.resize(head, 0);
        crate::frame::encode_into(&mut buf, plaintext, level);
        self.seal_after(ty, binding, &[], buf)
    }

    /// Seals a frame as `ty`, padded when [`MasterKeys::padding`] says so;
    /// `aad_tail` extends the associated data (the config's clear header).
    pub fn seal_framed(
        &self,
        ty: ObjectType,
        binding: Option<&[u8; ID_LEN]>,
        aad_tail: &[u8],
        framed: Vec<u8>,
    ) -> Vec<u8> {
        let head = self.overhead(ty) - TAG_LEN;
        let mut buf = Vec::with_capacity(self.overhead(ty) + framed.len());
        buf.resize(head, 0);
        buf.extend_from_slice(&framed);
        self.seal_after(ty, binding, aad_tail, buf)
    }

    /// Seals in place the frame that follows the first `overhead(ty) -
    /// TAG_LEN` bytes of `buf`, which the envelope's head fills: the
    /// content is copied once on its way into an envelope, and encrypted
    /// where it lies.
    fn seal_after(
        &self,
        ty: ObjectType,
        binding: Option<&[u8; ID_LEN]>,
        aad_tail: &[u8],
        mut buf: Vec<u8>,
    ) -> Vec<u8> {
        let head = self.overhead(ty) - TAG_LEN;
        if self.padding.pads(ty) {
            crate::frame::pad_from(&mut buf, head, self.overhead(ty));
        }
        match &self.keyring {
            Some(keyring) => keyring.seal_after(&self.repo_id, ty, binding, aad_tail, &mut buf),
            None => {
                let mut aad = self.aad(ty, binding);
                aad.extend_from_slice(aad_tail);
                buf[0] = SUITE_XCHACHA20POLY1305;
                aead_seal_after(&self.data_key, &aad, &mut buf, 1);
            }
        }
        buf
    }

    /// Authenticates and decrypts an envelope sealed by
    /// [`MasterKeys::seal_framed`], giving its frame.
    pub fn open_framed(
        &self,
        ty: ObjectType,
        binding: Option<&[u8; ID_LEN]>,
        aad_tail: &[u8],
        sealed: &[u8],
    ) -> Result<Vec<u8>> {
        match &self.keyring {
            Some(keyring) => keyring.open(&self.repo_id, ty, binding, aad_tail, sealed),
            None => {
                let mut aad = self.aad(ty, binding);
                aad.extend_from_slice(aad_tail);
                open_raw(&self.data_key, &aad, sealed, ty.name())
            }
        }
    }

    /// Authenticates, decrypts and decompresses an object sealed by [`MasterKeys::seal`].
    pub fn open(
        &self,
        ty: ObjectType,
        binding: Option<&[u8; ID_LEN]>,
        sealed: &[u8],
        limit: usize,
    ) -> Result<Vec<u8>> {
        let mut out = Vec::new();
        self.open_into(ty, binding, sealed, limit, &mut out)?;
        Ok(out)
    }

    /// [`MasterKeys::open`] into `out`, replacing what it held.
    pub fn open_into(
        &self,
        ty: ObjectType,
        binding: Option<&[u8; ID_LEN]>,
        sealed: &[u8],
        limit: usize,
        out: &mut Vec<u8>,
    ) -> Result<()> {
        out.clear();
        let framed = self.open_framed(ty, binding, &[], sealed)?;
        crate::frame::decode_into(&framed, limit, ty.name(), out)
    }
}

/// Associated data of a suite-1 envelope: `AAD_DOMAIN || 1 || type ||
/// repo_id || binding`.
pub fn object_aad(repo: &RepoId, ty: ObjectType, binding: Option<&[u8; ID_LEN]>) -> Vec<u8> {
    suite_aad(SUITE_XCHACHA20POLY1305, repo, ty, binding)
}

/// Associated data of an envelope of `suite`: `AAD_DOMAIN || suite || type
/// || repo_id || binding` (SPEC §4.2, §4.5).
pub fn suite_aad(
    suite: u8,
    repo: &RepoId,
    ty: ObjectType,
    binding: Option<&[u8; ID_LEN]>,
) -> Vec<u8> {
    let mut aad = Vec::with_capacity(AAD_DOMAIN.len() + 2 + 2 * ID_LEN);
    aad.extend_from_slice(AAD_DOMAIN);
    aad.push(suite);
    aad.push(ty as u8);
    aad.extend_from_slice(&repo.0);
    if let Some(b) = binding {
        aad.extend_from_slice(b);
    }
    aad
}

/// Encrypts `plaintext` under `key` with a fresh random nonce: a suite-1
/// envelope.
pub fn seal_raw(key: &[u8; 32], aad: &[u8], plaintext: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(ENVELOPE_OVERHEAD + plaintext.len());
    out.push(SUITE_XCHACHA20POLY1305);
    out.extend_from_slice(&aead_seal(key, aad, plaintext));
    out
}

/// Verifies and decrypts a suite-1 envelope produced by [`seal_raw`].
pub fn open_raw(key: &[u8; 32], aad: &[u8], sealed: &[u8], what: &'static str) -> Result<Vec<u8>> {
    match sealed.split_first() {
        Some((&SUITE_XCHACHA20POLY1305, body)) => aead_open(key, aad, body, what),
        _ => Err(FormatError::Authentication(what)),
    }
}

/// `nonce (24) || ciphertext || tag (16)`: XChaCha20-Poly1305 under `key`
/// with a fresh random nonce, the body of every suite's envelope.
pub fn aead_seal(key: &[u8; 32], aad: &[u8], plaintext: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(NONCE_LEN + plaintext.len() + TAG_LEN);
    out.resize(NONCE_LEN, 0);
    out.extend_from_slice(plaintext);
    aead_seal_after(key, aad, &mut out, 0);
    out
}

/// [`aead_seal`] in place: `buf[at..]` holds [`NONCE_LEN`] bytes for the
/// nonce, then the plaintext, which is encrypted where it lies; the tag is
/// appended.
pub fn aead_seal_after(key: &[u8; 32], aad: &[u8], buf: &mut Vec<u8>, at: usize) {
    let cipher = XChaCha20Poly1305::new(key.into());
    let nonce: [u8; NONCE_LEN] = nonce();
    buf[at..at + NONCE_LEN].copy_from_slice(&nonce);
    let tag = cipher
        .encrypt_in_place_detached(XNonce::from_slice(&nonce), aad, &mut buf[at + NONCE_LEN..])
        .expect("XChaCha20-Poly1305 encryption cannot fail for in-memory buffers");
    buf.extend_from_slice(&tag);
}

/// Verifies and decrypts what [`aead_seal`] produced.
pub fn aead_open(key: &[u8; 32], aad: &[u8], body: &[u8], what: &'static str) -> Result<Vec<u8>> {
    if body.len() < NONCE_LEN + TAG_LEN {
        return Err(FormatError::Authentication(what));
    }
    let cipher = XChaCha20Poly1305::new(key.into());
    cipher
        .decrypt(
            XNonce::from_slice(&body[..NONCE_LEN]),
            Payload {
                msg: &body[NONCE_LEN..],
                aad,
            },
        )
        .map_err(|_| FormatError::Authentication(what))
}

/// A fresh random nonce, from a per-thread CSPRNG (ChaCha, seeded and
/// periodically reseeded from the operating system, and reseeded after a
/// fork): one system call per blob would cost more than sealing a small blob.
fn nonce() -> [u8; NONCE_LEN] {
    use rand::RngCore;
    let mut out = [0u8; NONCE_LEN];
    rand::thread_rng().fill_bytes(&mut out);
    out
}

/// Bytes from the operating system's CSPRNG.
pub fn random_array<const N: usize>() -> [u8; N] {
    let mut out = [0u8; N];
    getrandom::getrandom(&mut out).expect("the operating system's random number generator failed");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealing_in_place_opens_in_every_suite_and_padding_and_fills_one_allocation() {
        let noise = crate::frame::tests::noise(300_000, 0x9e37_79b9_7f4a_7c15);
        let text = b"a line of text\n".repeat(1000);
        let id = [3u8; 32];
        for mut keys in [MasterKeys::generate(), MasterKeys::generate_keyed()] {
            for padding in [Padding::None, Padding::All] {
                keys.padding = padding;
                for ty in [ObjectType::DataBlob, ObjectType::Snapshot] {
                    for plain in [&b""[..], b"x", &text, &noise] {
                        let sealed = keys.seal(ty, Some(&id), plain, Some(3));
                        let opened = keys.open(ty, Some(&id), &sealed, 1 << 20).unwrap();
                        assert_eq!(opened, plain, "{padding:?} {ty:?} {}", plain.len());
                        let padded = crate::frame::padme(sealed.len() as u64);
                        assert!(padded == sealed.len() as u64 || padding == Padding::None);
                        if plain.len() == noise.len() {
                            // Stored raw: the envelope is exactly what was reserved.
                            assert_eq!(sealed.capacity(), sealed.len(), "{padding:?} {ty:?}");
                            let raw = keys.overhead(ty) + 1 + noise.len();
                            match padding {
                                Padding::None => assert_eq!(sealed.len(), raw),
                                _ => assert!(sealed.len() >= raw + crate::frame::PADDED_OVERHEAD),
                            }
                        }
                        let framed = keys.seal_framed(
                            ty,
                            Some(&id),
                            b"tail",
                            crate::frame::encode(plain, None),
                        );
                        assert_eq!(
                            crate::frame::decode(
                                &keys.open_framed(ty, Some(&id), b"tail", &framed).unwrap(),
                                1 << 20,
                                "t"
                            )
                            .unwrap(),
                            plain
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn sealed_object_is_bound_to_type_and_blob_id() {
        let keys = MasterKeys::generate();
        let id = [7u8; 32];
        let sealed = keys.seal(
            ObjectType::DataBlob,
            Some(&id),
            b"hello hello hello",
            Some(3),
        );
        assert_eq!(
            keys.open(ObjectType::DataBlob, Some(&id), &sealed, 1 << 20)
                .unwrap(),
            b"hello hello hello"
        );
        assert!(keys
            .open(ObjectType::TreeBlob, Some(&id), &sealed, 1 << 20)
            .unwrap_err()
            .is_integrity());
        assert!(keys
            .open(ObjectType::DataBlob, Some(&[8u8; 32]), &sealed, 1 << 20)
            .unwrap_err()
            .is_integrity());
        let other = MasterKeys::generate();
        assert!(other
            .open(ObjectType::DataBlob, Some(&id), &sealed, 1 << 20)
            .unwrap_err()
            .is_integrity());
    }

    #[test]
    fn every_single_byte_flip_is_detected() {
        let keys = MasterKeys::generate();
        let sealed = keys.seal(ObjectType::Snapshot, None, &[42u8; 300], Some(3));
        for i in 0..sealed.len() {
            let mut bad = sealed.clone();
            bad[i] ^= 0x01;
            let err = keys
                .open(ObjectType::Snapshot, None, &bad, 1 << 20)
                .unwrap_err();
            assert!(err.is_integrity(), "flip at {i} gave {err}");
        }
    }

    #[test]
    fn gear_table_depends_on_the_secret() {
        let a = MasterKeys::generate();
        let b = MasterKeys::generate();
        assert_eq!(a.gear_table(), a.gear_table());
        assert_ne!(a.gear_table(), b.gear_table());
    }

    #[test]
    fn blob_ids_are_keyed() {
        let a = MasterKeys::generate();
        let b = MasterKeys::generate();
        assert_ne!(a.blob_id(b"same"), b.blob_id(b"same"));
        assert_ne!(a.blob_id(b"same").0, *blake3::hash(b"same").as_bytes());
    }
}
