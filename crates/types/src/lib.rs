//! The ledger's vocabulary: every byte MedChain hashes, signs or sends between replicas.
//!
//! Everything that is hashed or signed is encoded with one canonical, versioned encoding
//! (borsh, see [`codec`]) behind a per-type domain-separation tag, so a signature made for
//! one purpose can never be replayed as another. Signatures are checked in one place,
//! [`verify`], and only that module can build a [`Verified`] value: code that needs a
//! verified message says so in its types.

pub mod block;
pub mod chain;
pub mod codec;
pub mod crypto;
pub mod genesis;
pub mod ids;
pub mod merkle;
pub mod message;
pub mod request;
pub mod signed;
pub mod verify;

pub use block::{BlockHeader, CommitCertificate, CommittedBlock, Proposal, ProposalHeader};
pub use chain::{verify_chain, ChainError, ChainSummary};
pub use codec::{decode, encode, CodecError};
pub use crypto::{KeyPair, PublicKey, Signature};
pub use genesis::{
    EncryptionKey, Genesis, GenesisConsent, GenesisUser, LedgerPolicy, ReplicaInfo, UserRole,
};
pub use ids::{ClientId, Hash32, ReplicaId, SeqNum, ViewNum};
pub use message::*;
pub use request::{Request, SignedRequest};
pub use verify::{Limits, Verified, VerifiedFrames, Verifier, VerifyError};
