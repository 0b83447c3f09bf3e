//! Small identifiers shared by every layer: replica ids, client ids, hashes, view and
//! sequence numbers.

use borsh::{BorshDeserialize, BorshSerialize};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::fmt;

/// A PBFT view number. The primary of view `v` is replica `v mod n`.
pub type ViewNum = u64;
/// A PBFT sequence number; sequence number `n` becomes block height `n`.
pub type SeqNum = u64;

/// Index of a replica in the genesis replica list (0-based).
#[derive(
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Debug,
    BorshSerialize,
    BorshDeserialize,
    Serialize,
    Deserialize,
)]
#[serde(transparent)]
pub struct ReplicaId(pub u16);

impl ReplicaId {
    /// The index as `usize`, for indexing per-replica arrays.
    pub fn index(self) -> usize {
        usize::from(self.0)
    }
}

impl fmt::Display for ReplicaId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "r{}", self.0)
    }
}

/// A SHA-256 digest.
#[derive(
    Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, BorshSerialize, BorshDeserialize,
)]
pub struct Hash32(pub [u8; 32]);

impl Hash32 {
    /// SHA-256 of `tag || data`; every hash in the ledger is tagged so that the hash of
    /// one kind of object can never be mistaken for another's.
    pub fn tagged(tag: &[u8], data: &[u8]) -> Self {
        let mut h = Sha256::new();
        h.update(tag);
        h.update(data);
        Hash32(h.finalize().into())
    }

    /// Plain SHA-256, for content addressing where the content defines itself.
    pub fn sha256(data: &[u8]) -> Self {
        Hash32(Sha256::digest(data).into())
    }

    /// Lower-case hex.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }
}

impl fmt::Debug for Hash32 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", &self.to_hex()[..12])
    }
}

impl fmt::Display for Hash32 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

/// A client of the ledger (in production: a node's API gateway), named by its index in
/// the genesis client list, which holds its Ed25519 public key.
#[derive(
    Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, BorshSerialize, BorshDeserialize,
)]
pub struct ClientId(pub u16);
