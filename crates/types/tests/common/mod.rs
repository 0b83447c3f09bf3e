//! Shared fixtures for the integration tests: this suite's 4-replica, 2-client genesis
//! and keys (built with `medchain-testkit`), and builders for proposals and valid chains,
//! so each test only spells out what it tampers with.

// Every test binary includes this module but uses a different subset of it.
#![allow(dead_code)]

use medchain_testkit::{GenesisBuilder, TestKeys};
use medchain_types::block::CommittedBlock;
use medchain_types::genesis::UserRole;
use medchain_types::{Genesis, Proposal, ReplicaId, SeqNum, SignedRequest, ViewNum};

pub const N_REPLICAS: u16 = 4;
pub const N_CLIENTS: u16 = 2;

/// This suite's keys: `replica-{i}` and `client-{i}` (its fixtures were made with them).
pub const KEYS: TestKeys = TestKeys::new("");

/// A fixed base so timestamps look realistic but never depend on the clock.
pub const BASE_TIMESTAMP_MS: u64 = 1_700_000_000_000;

pub fn genesis() -> Genesis {
    GenesisBuilder::new("medchain-test", KEYS)
        .replicas(usize::from(N_REPLICAS))
        .clients(usize::from(N_CLIENTS))
        .organisations(|i| format!("hospital-{i}"))
        .addresses(|i| {
            (
                format!("127.0.0.1:{}", 7000 + i),
                format!("127.0.0.1:{}", 8000 + i),
            )
        })
        .client_names(|i| format!("gateway-{i}"))
        .user_in("admin-0", UserRole::Department, "general", "Admin")
        .build()
}

/// The primary of `view` in the 4-replica genesis.
pub fn primary(view: ViewNum) -> ReplicaId {
    ReplicaId((view % u64::from(N_REPLICAS)) as u16)
}

/// `count` requests alternating between the two clients; `first_id` keeps request ids
/// unique across a chain.
pub fn requests(first_id: u64, count: usize) -> Vec<SignedRequest> {
    (0..count as u64)
        .map(|k| {
            let id = first_id + k;
            let client = (id % u64::from(N_CLIENTS)) as u16;
            KEYS.request(client, id, format!("record-update-{id}").as_bytes())
        })
        .collect()
}

/// A proposal made by the primary of `view`.
pub fn proposal(height: SeqNum, view: ViewNum, requests: Vec<SignedRequest>) -> Proposal {
    Proposal {
        height,
        view,
        proposer: primary(view),
        timestamp_ms: BASE_TIMESTAMP_MS + height * 1000,
        requests,
    }
}

/// A quorum of 3 replicas, rotating with the height so every replica appears in some
/// certificate (a fixed quorum would hide a bug that only hits one signer).
pub fn quorum_for(height: SeqNum) -> Vec<u16> {
    let skipped = (height % u64::from(N_REPLICAS)) as u16;
    (0..N_REPLICAS).filter(|&r| r != skipped).collect()
}

/// The view block `height` is proposed in: two blocks per view, so primaries rotate
/// and the chain does not only exercise view 0.
pub fn view_for(height: SeqNum) -> ViewNum {
    (height - 1) / 2
}

/// Requests per block: 1, 2, 3, 0, 1, 2, ... so empty (null-like) blocks appear too.
pub fn request_count(height: SeqNum) -> usize {
    (height % 4) as usize
}

/// A valid chain of `len` blocks on top of `genesis`.
pub fn build_chain(genesis: &Genesis, len: u64) -> Vec<CommittedBlock> {
    build_chain_with(genesis, len, |_| {})
}

/// Like [`build_chain`], but `adjust` may change each proposal before it is certified
/// and linked, so the result is consistently signed even when the proposal is invalid.
pub fn build_chain_with(
    genesis: &Genesis,
    len: u64,
    mut adjust: impl FnMut(&mut Proposal),
) -> Vec<CommittedBlock> {
    let mut prev = genesis.hash();
    let mut next_request_id = 1;
    let mut blocks = Vec::new();
    for height in 1..=len {
        let count = request_count(height);
        let view = view_for(height);
        let mut p = proposal(height, view, requests(next_request_id, count));
        next_request_id += count as u64;
        adjust(&mut p);
        let block = KEYS.commit_block(&p, prev, view, &quorum_for(height));
        prev = block.hash();
        blocks.push(block);
    }
    blocks
}

/// Total requests in a chain built by [`build_chain`].
pub fn total_requests(len: u64) -> u64 {
    (1..=len).map(|h| request_count(h) as u64).sum()
}
