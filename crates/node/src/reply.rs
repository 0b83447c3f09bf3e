//! The replica's answer to a client's committed request: one wire type shared by the
//! replica side (core, transport, batcher) and the client side, so neither imports the
//! other.

use borsh::{BorshDeserialize, BorshSerialize};
use medchain_types::{Hash32, SeqNum};

/// What a replica answers for a committed request.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct ClientReply {
    pub request_id: u64,
    pub height: SeqNum,
    pub block_hash: Hash32,
}
