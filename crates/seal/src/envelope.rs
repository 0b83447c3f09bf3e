//! The envelope: how an encrypted value is stored and committed to. Layout (version 1):
//! `"MCE1" || nonce (24 bytes) || ciphertext || tag (16 bytes)`, XChaCha20-Poly1305 with
//! a random nonce (192 bits: random nonces never collide in practice, so no counter
//! state has to survive restarts). The associated data binds the ciphertext to its place
//! (the record id and field, the patient id), so a valid envelope moved elsewhere does
//! not open. Hashes committed on the ledger are of these bytes: guessing a diagnosis and
//! hashing it matches nothing.

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use rand::RngCore;
use zeroize::Zeroizing;

use crate::{DataKey, SealError};

const MAGIC: &[u8; 4] = b"MCE1";
const NONCE_LEN: usize = 24;
const TAG_LEN: usize = 16;
/// Bytes an envelope adds to its plaintext.
pub const OVERHEAD: usize = MAGIC.len() + NONCE_LEN + TAG_LEN;
/// The largest plaintext sealed (a record's content is bounded far below this).
pub const MAX_PLAINTEXT: usize = 1 << 20;

/// Encrypt `plaintext` for the place `aad` names.
pub fn seal(key: &DataKey, aad: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, SealError> {
    if plaintext.len() > MAX_PLAINTEXT {
        return Err(SealError::Format);
    }
    let mut nonce = [0u8; NONCE_LEN];
    rand::rngs::OsRng.fill_bytes(&mut nonce);
    let cipher = XChaCha20Poly1305::new(key.as_bytes().into());
    let ct = cipher
        .encrypt(
            XNonce::from_slice(&nonce),
            Payload {
                msg: plaintext,
                aad,
            },
        )
        .map_err(|_| SealError::Format)?;
    let mut out = Vec::with_capacity(OVERHEAD + plaintext.len());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&ct);
    Ok(out)
}

/// Decrypt an envelope made by [`seal`] with the same key and `aad`.
pub fn open(key: &DataKey, aad: &[u8], envelope: &[u8]) -> Result<Zeroizing<Vec<u8>>, SealError> {
    if envelope.len() < OVERHEAD || envelope.len() > OVERHEAD + MAX_PLAINTEXT {
        return Err(SealError::Format);
    }
    let (magic, rest) = envelope.split_at(MAGIC.len());
    if magic != MAGIC {
        return Err(SealError::Format);
    }
    let (nonce, ct) = rest.split_at(NONCE_LEN);
    let cipher = XChaCha20Poly1305::new(key.as_bytes().into());
    cipher
        .decrypt(XNonce::from_slice(nonce), Payload { msg: ct, aad })
        .map(Zeroizing::new)
        .map_err(|_| SealError::CannotOpen)
}

/// Whether `bytes` look like an envelope (for `verify` and the byte-search tests).
pub fn is_envelope(bytes: &[u8]) -> bool {
    bytes.len() >= OVERHEAD && bytes.starts_with(MAGIC)
}
