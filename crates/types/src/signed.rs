//! Signed protocol bodies: the domain tag of every message type a replica signs, the
//! `Signable` trait and `Signed<T>`, and the small votes (PRE-PREPARE, PREPARE, COMMIT,
//! CHECKPOINT) that carry digests only. Blocks (whose certificates are COMMIT
//! signatures) and the larger messages (which nest votes as proofs and carry blocks)
//! both build on this file, so it depends on neither.

use borsh::{BorshDeserialize, BorshSerialize};

use crate::codec::tagged_bytes;
use crate::crypto::{KeyPair, Signature};
use crate::ids::{Hash32, ReplicaId, SeqNum, ViewNum};

pub const PRE_PREPARE_DOMAIN: &[u8] = b"medchain/v1/pre-prepare";
pub const PREPARE_DOMAIN: &[u8] = b"medchain/v1/prepare";
pub const COMMIT_DOMAIN: &[u8] = b"medchain/v1/commit";
pub const CHECKPOINT_DOMAIN: &[u8] = b"medchain/v1/checkpoint";
pub const VIEW_CHANGE_DOMAIN: &[u8] = b"medchain/v1/view-change";
pub const NEW_VIEW_DOMAIN: &[u8] = b"medchain/v1/new-view";
pub const STATUS_DOMAIN: &[u8] = b"medchain/v1/status";
pub const FETCH_BLOCKS_DOMAIN: &[u8] = b"medchain/v1/fetch-blocks";

/// A message body a replica signs. The signer is named inside the body, so the signature
/// binds the claim of who sent it.
pub trait Signable: BorshSerialize {
    const DOMAIN: &'static [u8];
    fn signer(&self) -> ReplicaId;
}

/// A body with its sender's signature.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct Signed<T> {
    pub body: T,
    pub signature: Signature,
}

impl<T: Signable> Signed<T> {
    /// Sign `body` with `key` (the caller's own key; the body names the caller).
    pub fn sign(body: T, key: &KeyPair) -> Self {
        let signature = key.sign(&tagged_bytes(T::DOMAIN, &body));
        Signed { body, signature }
    }

    /// The bytes the signature covers.
    pub fn signing_bytes(&self) -> Vec<u8> {
        tagged_bytes(T::DOMAIN, &self.body)
    }

    pub fn signer(&self) -> ReplicaId {
        self.body.signer()
    }
}

/// `impl Signable` for a body whose signer is its `replica` field.
macro_rules! signable {
    ($t:ty, $domain:expr) => {
        impl $crate::signed::Signable for $t {
            const DOMAIN: &'static [u8] = $domain;
            fn signer(&self) -> $crate::ids::ReplicaId {
                self.replica
            }
        }
    };
}
pub(crate) use signable;

/// The primary assigns `digest` to `seq` in `view` (section 4.2).
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct PrePrepare {
    pub view: ViewNum,
    pub seq: SeqNum,
    pub digest: Hash32,
    pub replica: ReplicaId,
}
signable!(PrePrepare, PRE_PREPARE_DOMAIN);

/// A backup accepted the pre-prepare (section 4.2).
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct Prepare {
    pub view: ViewNum,
    pub seq: SeqNum,
    pub digest: Hash32,
    pub replica: ReplicaId,
}
signable!(Prepare, PREPARE_DOMAIN);

/// The sender is prepared for (view, seq, digest) (section 4.2).
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct Commit {
    pub view: ViewNum,
    pub seq: SeqNum,
    pub digest: Hash32,
    pub replica: ReplicaId,
}
signable!(Commit, COMMIT_DOMAIN);

/// The sender executed up to `seq`, whose block hash is `digest` (section 4.3).
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct Checkpoint {
    pub seq: SeqNum,
    pub digest: Hash32,
    pub replica: ReplicaId,
}
signable!(Checkpoint, CHECKPOINT_DOMAIN);
