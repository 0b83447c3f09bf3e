//! The one canonical encoding of everything hashed, signed or sent: borsh.
//!
//! Borsh is deterministic (no maps in our types, fixed-width little-endian integers,
//! `u32` length prefixes), rejects non-canonical booleans and option tags, and our
//! [`decode`] also rejects trailing bytes and inputs over a size limit, so every value
//! has exactly one encoding. A length prefix that claims more bytes than the input has
//! fails with an error instead of allocating. The format version is part of every
//! domain-separation tag (`medchain/v1/...`), so a future v2 cannot collide with v1.

use borsh::{BorshDeserialize, BorshSerialize};

/// Version of the wire and hashing format; bump it with every incompatible change and
/// keep the golden vectors of the old one.
pub const FORMAT_VERSION: u8 = 1;

/// Why bytes could not be decoded.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum CodecError {
    /// The input is longer than the caller allows.
    #[error("input of {len} bytes exceeds the limit of {max} bytes")]
    TooLarge { len: usize, max: usize },
    /// The bytes do not form a value of the expected type (bad tag, truncated, bad UTF-8).
    #[error("malformed input: {0}")]
    Malformed(String),
    /// A value was decoded but bytes were left over.
    #[error("{0} trailing bytes after the value")]
    TrailingBytes(usize),
}

/// Canonical bytes of a value.
pub fn encode<T: BorshSerialize>(value: &T) -> Vec<u8> {
    // Writing into a Vec cannot fail.
    borsh::to_vec(value).unwrap_or_default()
}

/// Decode exactly one value from `bytes`, which must be at most `max_len` long and
/// contain nothing after the value.
pub fn decode<T: BorshDeserialize>(bytes: &[u8], max_len: usize) -> Result<T, CodecError> {
    if bytes.len() > max_len {
        return Err(CodecError::TooLarge {
            len: bytes.len(),
            max: max_len,
        });
    }
    let mut rest = bytes;
    let value = T::deserialize(&mut rest).map_err(|e| CodecError::Malformed(e.to_string()))?;
    if !rest.is_empty() {
        return Err(CodecError::TrailingBytes(rest.len()));
    }
    Ok(value)
}

/// Bytes covered by a signature or tagged hash: `tag || canonical encoding`.
pub fn tagged_bytes<T: BorshSerialize>(tag: &[u8], value: &T) -> Vec<u8> {
    let mut out = Vec::with_capacity(tag.len() + 64);
    out.extend_from_slice(tag);
    // Writing into a Vec cannot fail.
    let _ = value.serialize(&mut out);
    out
}
