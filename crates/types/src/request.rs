//! The transaction envelope: what a client (a node's API gateway) asks the ledger to
//! order. The payload is opaque here; the records service gives it meaning.

use borsh::{BorshDeserialize, BorshSerialize};

use crate::codec::tagged_bytes;
use crate::crypto::{KeyPair, Signature};
use crate::ids::ClientId;

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
}

/// A request with its client's signature.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct SignedRequest {
    pub request: Request,
    pub signature: Signature,
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
        }
    }
}

impl SignedRequest {
    /// The request's name for deduplication.
    pub fn key(&self) -> (ClientId, u64) {
        (self.request.client, self.request.request_id)
    }
}
