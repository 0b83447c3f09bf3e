//! Blocks and their commit certificates.
//!
//! PBFT orders *proposals* (the batch a primary assigns to a sequence number); with
//! several sequence numbers in flight, a primary cannot know the hash of block `n` when it
//! proposes `n+1`, and a view change may replace `n` by a null block. So the signed
//! digest (what 2f+1 replicas certify) covers the proposal: height, view, proposer,
//! timestamp and Merkle root. The block header adds the previous block's hash, fixed when
//! the block is executed in order. Because every proposal is certified and the links are a
//! function of the certified sequence, anyone with the genesis can check the whole chain.

use borsh::{BorshDeserialize, BorshSerialize};

use crate::codec::{encode, tagged_bytes};
use crate::crypto::{verify_signature, PublicKey, Signature};
use crate::ids::{Hash32, ReplicaId, SeqNum, ViewNum};
use crate::merkle;
use crate::request::SignedRequest;
use crate::signed::{Commit, COMMIT_DOMAIN};

/// Domain tag of a proposal digest.
pub const PROPOSAL_DOMAIN: &[u8] = b"medchain/v1/proposal";
/// Domain tag of a block hash.
pub const BLOCK_DOMAIN: &[u8] = b"medchain/v1/block";

/// A batch of requests a primary assigns to one sequence number.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct Proposal {
    pub height: SeqNum,
    /// The view in which the batch was first proposed (kept when a later view re-proposes it).
    pub view: ViewNum,
    pub proposer: ReplicaId,
    pub timestamp_ms: u64,
    pub requests: Vec<SignedRequest>,
}

/// The part of a proposal its digest covers.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct ProposalHeader {
    pub height: SeqNum,
    pub view: ViewNum,
    pub proposer: ReplicaId,
    pub timestamp_ms: u64,
    pub tx_root: Hash32,
}

impl ProposalHeader {
    /// What PBFT agrees on for this sequence number.
    pub fn digest(&self) -> Hash32 {
        Hash32::tagged(PROPOSAL_DOMAIN, &encode(self))
    }
}

/// Merkle root over the signed requests (without their content sidecars).
pub fn tx_root(requests: &[SignedRequest]) -> Hash32 {
    let leaves: Vec<Hash32> = requests
        .iter()
        .map(|r| merkle::leaf_hash(&r.committed_bytes()))
        .collect();
    merkle::root_of_leaf_hashes(&leaves)
}

impl Proposal {
    /// The null proposal a new primary puts in a gap of the O set (PBFT section 4.4).
    /// Deterministic, so every backup recomputes the same digest.
    pub fn null(height: SeqNum, view: ViewNum, proposer: ReplicaId) -> Self {
        Proposal {
            height,
            view,
            proposer,
            timestamp_ms: 0,
            requests: Vec::new(),
        }
    }

    pub fn header(&self) -> ProposalHeader {
        ProposalHeader {
            height: self.height,
            view: self.view,
            proposer: self.proposer,
            timestamp_ms: self.timestamp_ms,
            tx_root: tx_root(&self.requests),
        }
    }

    pub fn digest(&self) -> Hash32 {
        self.header().digest()
    }
}

/// A block header: the proposal header plus the hash link.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct BlockHeader {
    pub height: SeqNum,
    pub view: ViewNum,
    pub prev_hash: Hash32,
    pub tx_root: Hash32,
    pub proposer: ReplicaId,
    pub timestamp_ms: u64,
}

impl BlockHeader {
    /// Build the header of an executed proposal, linking it to `prev_hash`.
    pub fn new(p: &ProposalHeader, prev_hash: Hash32) -> Self {
        BlockHeader {
            height: p.height,
            view: p.view,
            prev_hash,
            tx_root: p.tx_root,
            proposer: p.proposer,
            timestamp_ms: p.timestamp_ms,
        }
    }

    /// The block hash: what the next block links to and checkpoints name.
    pub fn hash(&self) -> Hash32 {
        Hash32::tagged(BLOCK_DOMAIN, &encode(self))
    }

    pub fn proposal_header(&self) -> ProposalHeader {
        ProposalHeader {
            height: self.height,
            view: self.view,
            proposer: self.proposer,
            timestamp_ms: self.timestamp_ms,
            tx_root: self.tx_root,
        }
    }
}

/// 2f+1 replica COMMIT signatures over (view, height, proposal digest), sorted by replica.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct CommitCertificate {
    pub view: ViewNum,
    pub height: SeqNum,
    pub proposal_digest: Hash32,
    pub signatures: Vec<(ReplicaId, Signature)>,
}

/// Why a certificate does not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CertificateError {
    #[error("{got} signatures, {need} needed")]
    TooFewSignatures { got: usize, need: usize },
    #[error("{got} signatures but only {n} replicas")]
    TooManySignatures { got: usize, n: usize },
    #[error("signers not strictly increasing at {0}")]
    SignersNotSorted(ReplicaId),
    #[error("unknown signer {0}")]
    UnknownSigner(ReplicaId),
    #[error("bad signature from {0}")]
    BadSignature(ReplicaId),
}

impl CommitCertificate {
    /// Check quorum size, canonical order, and every signature against `replica_keys`.
    pub fn verify(
        &self,
        replica_keys: &[PublicKey],
        quorum: usize,
    ) -> Result<(), CertificateError> {
        if self.signatures.len() < quorum {
            return Err(CertificateError::TooFewSignatures {
                got: self.signatures.len(),
                need: quorum,
            });
        }
        if self.signatures.len() > replica_keys.len() {
            return Err(CertificateError::TooManySignatures {
                got: self.signatures.len(),
                n: replica_keys.len(),
            });
        }
        let mut last: Option<ReplicaId> = None;
        for (replica, sig) in &self.signatures {
            if last.is_some_and(|l| l >= *replica) {
                return Err(CertificateError::SignersNotSorted(*replica));
            }
            last = Some(*replica);
            let key = replica_keys
                .get(replica.index())
                .ok_or(CertificateError::UnknownSigner(*replica))?;
            let commit = Commit {
                view: self.view,
                seq: self.height,
                digest: self.proposal_digest,
                replica: *replica,
            };
            if !verify_signature(key, &tagged_bytes(COMMIT_DOMAIN, &commit), sig) {
                return Err(CertificateError::BadSignature(*replica));
            }
        }
        Ok(())
    }

    /// The replicas whose signatures form the certificate.
    pub fn signers(&self) -> Vec<ReplicaId> {
        self.signatures.iter().map(|(r, _)| *r).collect()
    }
}

/// A block as stored and transferred: header, its requests, and its certificate.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct CommittedBlock {
    pub header: BlockHeader,
    pub requests: Vec<SignedRequest>,
    pub certificate: CommitCertificate,
}

impl CommittedBlock {
    pub fn hash(&self) -> Hash32 {
        self.header.hash()
    }

    pub fn height(&self) -> SeqNum {
        self.header.height
    }
}
