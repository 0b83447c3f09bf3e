//! The transaction envelope: what a client (a node's API gateway) asks the ledger to
//! order. The payload is opaque here; the records service gives it meaning.
//!
//! Clinical content travels beside the request (`SignedRequest::content`) so that every
//! replica stores it, but only its SHA-256 (`Request::content_hashes`) is signed and goes
//! into the block's Merkle root: a block stays verifiable after its content is erased.

use borsh::{BorshDeserialize, BorshSerialize};

use crate::codec::{encode, tagged_bytes};
use crate::crypto::{KeyPair, Signature};
use crate::ids::{ClientId, Hash32};

/// Domain tag of a client request signature.
pub const REQUEST_DOMAIN: &[u8] = b"medchain/v1/request";

/// One client request. `(client, request_id)` names it: replicas execute each name at
/// most once (PBFT section 4.1's timestamp, generalised to several outstanding requests).
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct Request {
    pub client: ClientId,
    /// Chosen by the client, unique per client, roughly increasing.
    pub request_id: u64,
    pub payload: Vec<u8>,
    /// SHA-256 of each piece of content the payload refers to.
    pub content_hashes: Vec<Hash32>,
}

/// A request with its client's signature.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct SignedRequest {
    pub request: Request,
    pub signature: Signature,
    /// The content named by `request.content_hashes`, in order; empty once stripped for
    /// storage or erased. Not signed (its hashes are) and not part of the Merkle root.
    pub content: Vec<Vec<u8>>,
}

impl Request {
    /// The bytes the client signs.
    pub fn signing_bytes(&self) -> Vec<u8> {
        tagged_bytes(REQUEST_DOMAIN, self)
    }

    /// Sign with the client's key.
    pub fn sign(self, key: &KeyPair) -> SignedRequest {
        let signature = key.sign(&self.signing_bytes());
        SignedRequest {
            request: self,
            signature,
            content: Vec::new(),
        }
    }

    /// Sign, attaching the content whose hashes the request carries.
    pub fn sign_with_content(self, key: &KeyPair, content: Vec<Vec<u8>>) -> SignedRequest {
        let mut signed = self.sign(key);
        signed.content = content;
        signed
    }
}

impl SignedRequest {
    /// The request's name for deduplication.
    pub fn key(&self) -> (ClientId, u64) {
        (self.request.client, self.request.request_id)
    }

    /// The bytes a block commits to: the request and its signature, without content.
    pub fn committed_bytes(&self) -> Vec<u8> {
        let mut bytes = encode(&self.request);
        bytes.extend_from_slice(&encode(&self.signature));
        bytes
    }

    /// Whether the attached content is absent (stripped or erased) or matches the
    /// signed hashes one for one.
    pub fn content_matches(&self) -> bool {
        self.content.is_empty()
            || (self.content.len() == self.request.content_hashes.len()
                && self
                    .content
                    .iter()
                    .zip(&self.request.content_hashes)
                    .all(|(c, h)| Hash32::sha256(c) == *h))
    }

    /// About how many bytes this request occupies in memory and on the wire (for byte
    /// budgets; not exact).
    pub fn size_hint(&self) -> usize {
        128 + self.request.payload.len()
            + 32 * self.request.content_hashes.len()
            + self.content.iter().map(|c| c.len() + 8).sum::<usize>()
    }

    /// The same request without its content (what the block row stores).
    pub fn stripped(&self) -> SignedRequest {
        SignedRequest {
            request: self.request.clone(),
            signature: self.signature,
            content: Vec::new(),
        }
    }
}
