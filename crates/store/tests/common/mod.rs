//! Helpers shared by the store's tests: signed requests with content, proposals and the
//! vote records that carry them (keys from `medchain-testkit`; the store never verifies
//! signatures, but the records should look like a replica's).

// Every test binary includes this module but uses a different subset of it.
#![allow(dead_code)]

use medchain_pbft::DurableRecord;
use medchain_store::Reader;
use medchain_testkit::TestKeys;
use medchain_types::{Hash32, Proposal, ReplicaId, SignedRequest};

pub const KEYS: TestKeys = TestKeys::new("store-");

/// Request `request_id` of client 0, carrying `content`.
pub fn request(request_id: u64, content: Vec<Vec<u8>>) -> SignedRequest {
    KEYS.request_with_content(0, request_id, b"payload", content)
}

/// A batch proposed by r0 in view 0, stamped with its height so nothing reads the clock.
pub fn proposal(height: u64, requests: Vec<SignedRequest>) -> Proposal {
    Proposal {
        height,
        view: 0,
        proposer: ReplicaId(0),
        timestamp_ms: height,
        requests,
    }
}

/// The vote record of r0 having pre-prepared `proposal` (content and all).
pub fn pre_prepared(proposal: &Proposal) -> DurableRecord {
    DurableRecord::PrePrepared {
        pre_prepare: KEYS.pre_prepare(0, proposal, ReplicaId(0)),
        proposal: proposal.clone(),
    }
}

/// The proposal of the pre-prepared slot in the vote state `reader` loads.
pub fn loaded_pre_prepare(reader: &Reader) -> Proposal {
    let state = reader
        .durable_state(Hash32::default())
        .expect("the vote state loads");
    state
        .slots
        .values()
        .find_map(|s| s.pre_prepare.as_ref())
        .map(|(_, p)| p.clone())
        .expect("the pre-prepared slot is loaded")
}
