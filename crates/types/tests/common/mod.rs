//! Shared fixtures for the integration tests: a 4-replica, 2-client genesis with
//! deterministic test keys, and builders for signed requests, proposals, commit
//! certificates and valid chains, so each test only spells out what it tampers with.

// Every test binary includes this module but uses a different subset of it.
#![allow(dead_code)]

use medchain_types::block::{CommitCertificate, CommittedBlock};
use medchain_types::codec::FORMAT_VERSION;
use medchain_types::genesis::{ClientInfo, GenesisUser, UserRole};
use medchain_types::{
    BlockHeader, ClientId, Commit, Genesis, Hash32, KeyPair, Proposal, ReplicaId, ReplicaInfo,
    Request, SeqNum, Signable, Signed, SignedRequest, ViewNum,
};

pub const N_REPLICAS: u16 = 4;
pub const N_CLIENTS: u16 = 2;

/// A fixed base so timestamps look realistic but never depend on the clock.
pub const BASE_TIMESTAMP_MS: u64 = 1_700_000_000_000;

pub fn replica_key(i: u16) -> KeyPair {
    KeyPair::for_test(&format!("replica-{i}"))
}

pub fn client_key(i: u16) -> KeyPair {
    KeyPair::for_test(&format!("client-{i}"))
}

pub fn genesis() -> Genesis {
    Genesis {
        format_version: FORMAT_VERSION,
        chain_id: "medchain-test".into(),
        replicas: (0..N_REPLICAS)
            .map(|i| ReplicaInfo {
                id: ReplicaId(i),
                organisation: format!("hospital-{i}"),
                public_key: replica_key(i).public(),
                peer_addr: format!("127.0.0.1:{}", 7000 + i),
                http_addr: format!("127.0.0.1:{}", 8000 + i),
            })
            .collect(),
        clients: (0..N_CLIENTS)
            .map(|i| ClientInfo {
                name: format!("gateway-{i}"),
                public_key: client_key(i).public(),
            })
            .collect(),
        users: vec![GenesisUser {
            user_id: "admin-0".into(),
            role: UserRole::Department,
            organisation: ReplicaId(0),
            department: "general".into(),
            display_name: "Admin".into(),
        }],
        consents: Vec::new(),
    }
}

/// The primary of `view` in the 4-replica genesis.
pub fn primary(view: ViewNum) -> ReplicaId {
    ReplicaId((view % u64::from(N_REPLICAS)) as u16)
}

pub fn signed_request(client: u16, request_id: u64, payload: &[u8]) -> SignedRequest {
    Request {
        client: ClientId(client),
        request_id,
        payload: payload.to_vec(),
        content_hashes: Vec::new(),
    }
    .sign(&client_key(client))
}

/// `count` requests alternating between the two clients; `first_id` keeps request ids
/// unique across a chain.
pub fn requests(first_id: u64, count: usize) -> Vec<SignedRequest> {
    (0..count as u64)
        .map(|k| {
            let id = first_id + k;
            let client = (id % u64::from(N_CLIENTS)) as u16;
            signed_request(client, id, format!("record-update-{id}").as_bytes())
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

/// Sign a replica message body with the key of the replica it names.
pub fn sign<T: Signable>(body: T) -> Signed<T> {
    let key = replica_key(body.signer().0);
    Signed::sign(body, &key)
}

/// A commit certificate over `digest` for (`view`, `height`) signed by `signers`, in the
/// order given (callers wanting a valid certificate pass them sorted).
pub fn certificate(
    view: ViewNum,
    height: SeqNum,
    digest: Hash32,
    signers: &[u16],
) -> CommitCertificate {
    CommitCertificate {
        view,
        height,
        proposal_digest: digest,
        signatures: signers
            .iter()
            .map(|&r| {
                let commit = Commit {
                    view,
                    seq: height,
                    digest,
                    replica: ReplicaId(r),
                };
                (ReplicaId(r), sign(commit).signature)
            })
            .collect(),
    }
}

/// Commit `proposal` after `prev_hash`, certified in `view` by `signers`.
pub fn commit_block(
    proposal: &Proposal,
    prev_hash: Hash32,
    cert_view: ViewNum,
    signers: &[u16],
) -> CommittedBlock {
    let header = proposal.header();
    CommittedBlock {
        header: BlockHeader::new(&header, prev_hash),
        requests: proposal.requests.clone(),
        certificate: certificate(cert_view, proposal.height, header.digest(), signers),
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
        let block = commit_block(&p, prev, view, &quorum_for(height));
        prev = block.hash();
        blocks.push(block);
    }
    blocks
}

/// Total requests in a chain built by [`build_chain`].
pub fn total_requests(len: u64) -> u64 {
    (1..=len).map(|h| request_count(h) as u64).sum()
}
