//! `verify_chain` is what an auditor runs holding only the genesis, so every way a stored
//! chain can be tampered with must be caught and blamed on the exact block it happened at.

mod common;

use common::*;
use medchain_types::block::{CertificateError, CommittedBlock};
use medchain_types::{verify_chain, ChainError, Genesis, Hash32, ReplicaId};

const LEN: u64 = 6;

fn chain() -> (Genesis, Vec<CommittedBlock>) {
    let g = genesis();
    let blocks = build_chain(&g, LEN);
    (g, blocks)
}

/// Asserts the chain fails at `height`, that everything before it still verifies (so the
/// blame is not just "somewhere"), and returns the reason.
fn expect_failure_at(g: &Genesis, blocks: &[CommittedBlock], height: u64) -> String {
    let err: ChainError = verify_chain(g, blocks).expect_err("tampered chain must not verify");
    assert_eq!(err.height, height, "wrong height blamed: {err}");
    assert!(
        err.to_string().starts_with(&format!("block {height}: ")),
        "message must name the height: {err}"
    );
    let prefix = &blocks[..(height - 1) as usize];
    let ok = verify_chain(g, prefix).expect("blocks before the bad one verify");
    assert_eq!(ok.height, height - 1);
    err.reason
}

#[test]
fn valid_chain_verifies_with_summary() {
    let (g, blocks) = chain();
    let summary = verify_chain(&g, &blocks).expect("valid chain");
    assert_eq!(summary.height, LEN);
    assert_eq!(summary.head_hash, blocks.last().expect("non-empty").hash());
    assert_eq!(summary.requests, total_requests(LEN));
    // The fixture is meant to include empty blocks and several views; make sure it does,
    // or the test above proves less than it seems to.
    assert!(blocks.iter().any(|b| b.requests.is_empty()));
    assert!(blocks.iter().any(|b| b.header.view > 1));
    assert_eq!(summary.requests, 9);
}

#[test]
fn empty_chain_is_the_genesis() {
    let g = genesis();
    let summary = verify_chain(&g, &[]).expect("empty chain");
    assert_eq!(summary.height, 0);
    assert_eq!(summary.head_hash, g.hash());
    assert_eq!(summary.requests, 0);
}

#[test]
fn chain_of_another_genesis_is_rejected_at_block_1() {
    let (_, blocks) = chain();
    let mut other = genesis();
    other.chain_id = "another-chain".into();
    let reason = expect_failure_at(&other, &blocks, 1);
    assert!(reason.contains("previous-hash"), "{reason}");
}

#[test]
fn changed_request_payload_breaks_merkle_root() {
    let (g, mut blocks) = chain();
    let block = &mut blocks[2];
    assert_eq!(block.height(), 3);
    // Re-signed by the real client, so only the Merkle root can notice the change.
    let old = &block.requests[0].request;
    block.requests[0] = KEYS.request(old.client.0, old.request_id, b"forged diagnosis");
    let reason = expect_failure_at(&g, &blocks, 3);
    assert!(reason.contains("merkle root"), "{reason}");
}

#[test]
fn reordered_requests_break_merkle_root() {
    let (g, mut blocks) = chain();
    assert!(blocks[2].requests.len() >= 2);
    blocks[2].requests.swap(0, 1);
    let reason = expect_failure_at(&g, &blocks, 3);
    assert!(reason.contains("merkle root"), "{reason}");
}

#[test]
fn dropped_request_breaks_merkle_root() {
    let (g, mut blocks) = chain();
    blocks[2].requests.pop();
    let reason = expect_failure_at(&g, &blocks, 3);
    assert!(reason.contains("merkle root"), "{reason}");
}

#[test]
fn broken_prev_hash_link() {
    let (g, mut blocks) = chain();
    // The certificate does not cover prev_hash, so only the link check can catch this.
    blocks[3].header.prev_hash = Hash32([0xAB; 32]);
    let reason = expect_failure_at(&g, &blocks, 4);
    assert!(reason.contains("previous-hash"), "{reason}");
}

#[test]
fn missing_block_breaks_the_chain() {
    let (g, mut blocks) = chain();
    blocks.remove(3);
    let reason = expect_failure_at(&g, &blocks, 4);
    assert!(reason.contains("height 5 where 4"), "{reason}");
}

#[test]
fn corrupted_certificate_signature() {
    let (g, mut blocks) = chain();
    let (signer, sig) = &mut blocks[4].certificate.signatures[1];
    let signer = *signer;
    sig.0[10] ^= 0x01;
    let reason = expect_failure_at(&g, &blocks, 5);
    assert!(reason.contains("commit certificate"), "{reason}");
    assert_eq!(
        blocks[4].certificate.verify(&g.replica_keys(), g.quorum()),
        Err(CertificateError::BadSignature(signer))
    );
}

#[test]
fn certificate_with_two_signatures_is_below_quorum() {
    let (g, mut blocks) = chain();
    blocks[1].certificate.signatures.truncate(2);
    let reason = expect_failure_at(&g, &blocks, 2);
    assert!(reason.contains("commit certificate"), "{reason}");
    assert_eq!(
        blocks[1].certificate.verify(&g.replica_keys(), g.quorum()),
        Err(CertificateError::TooFewSignatures { got: 2, need: 3 })
    );
}

#[test]
fn certificate_with_all_four_signatures_is_accepted() {
    let g = genesis();
    let mut blocks = build_chain(&g, 3);
    let c = &blocks[1].certificate;
    blocks[1].certificate = KEYS.certificate(c.view, c.height, c.proposal_digest, &[0, 1, 2, 3]);
    verify_chain(&g, &blocks).expect("more than a quorum is fine");
}

#[test]
fn certificate_with_duplicate_signer() {
    let (g, mut blocks) = chain();
    let c = &blocks[2].certificate;
    // Three individually valid signatures, but only two distinct replicas.
    blocks[2].certificate = KEYS.certificate(c.view, c.height, c.proposal_digest, &[0, 1, 1]);
    let reason = expect_failure_at(&g, &blocks, 3);
    assert!(reason.contains("commit certificate"), "{reason}");
    assert_eq!(
        blocks[2].certificate.verify(&g.replica_keys(), g.quorum()),
        Err(CertificateError::SignersNotSorted(ReplicaId(1)))
    );
}

#[test]
fn certificate_with_unsorted_signers() {
    let (g, mut blocks) = chain();
    let c = &blocks[2].certificate;
    blocks[2].certificate = KEYS.certificate(c.view, c.height, c.proposal_digest, &[1, 0, 2]);
    let reason = expect_failure_at(&g, &blocks, 3);
    assert!(reason.contains("commit certificate"), "{reason}");
    assert_eq!(
        blocks[2].certificate.verify(&g.replica_keys(), g.quorum()),
        Err(CertificateError::SignersNotSorted(ReplicaId(0)))
    );
}

#[test]
fn certificate_with_unknown_signer() {
    let (g, mut blocks) = chain();
    let c = &mut blocks[2].certificate;
    let sig = c.signatures[2].1;
    c.signatures[2] = (ReplicaId(9), sig);
    let reason = expect_failure_at(&g, &blocks, 3);
    assert!(reason.contains("commit certificate"), "{reason}");
    assert_eq!(
        blocks[2].certificate.verify(&g.replica_keys(), g.quorum()),
        Err(CertificateError::UnknownSigner(ReplicaId(9)))
    );
}

#[test]
fn certificate_for_a_different_digest() {
    let (g, mut blocks) = chain();
    let c = &blocks[3].certificate;
    // Validly signed, just not for this block.
    blocks[3].certificate = KEYS.certificate(c.view, c.height, Hash32([7; 32]), &[0, 1, 2]);
    let reason = expect_failure_at(&g, &blocks, 4);
    assert!(reason.contains("certificate"), "{reason}");
}

#[test]
fn certificate_moved_from_another_block() {
    let (g, mut blocks) = chain();
    blocks[3].certificate = blocks[4].certificate.clone();
    let reason = expect_failure_at(&g, &blocks, 4);
    assert!(reason.contains("certificate"), "{reason}");
}

#[test]
fn certificate_with_view_changed_after_signing() {
    let (g, mut blocks) = chain();
    // The commit view is signed; relabelling it must invalidate the signatures.
    blocks[3].certificate.view += 1;
    let reason = expect_failure_at(&g, &blocks, 4);
    assert!(reason.contains("commit certificate"), "{reason}");
}

#[test]
fn block_with_wrong_height() {
    let g = genesis();
    // Block 4 claims height 5 but is otherwise consistently certified for height 5, so
    // only the sequence check can reject it.
    let mut blocks = build_chain_with(&g, LEN, |p| {
        if p.height == 4 {
            p.height = 5;
        }
    });
    blocks.truncate(4);
    let reason = expect_failure_at(&g, &blocks, 4);
    assert!(reason.contains("height 5 where 4 was expected"), "{reason}");
}

#[test]
fn duplicated_block_is_rejected() {
    let (g, mut blocks) = chain();
    let dup = blocks[2].clone();
    blocks.insert(3, dup);
    let reason = expect_failure_at(&g, &blocks, 4);
    assert!(reason.contains("height 3 where 4"), "{reason}");
}

#[test]
fn proposer_not_primary_of_the_view() {
    let g = genesis();
    // Block 3 is in view 1 (primary r1); r2 claims it, and the certificate is otherwise
    // perfect, so only the primary check can reject it.
    let blocks = build_chain_with(&g, LEN, |p| {
        if p.height == 3 {
            assert_eq!(p.view, 1);
            p.proposer = ReplicaId(2);
        }
    });
    let reason = expect_failure_at(&g, &blocks, 3);
    assert!(
        reason.contains("r2 is not the primary of view 1"),
        "{reason}"
    );
}

#[test]
fn bad_request_signature_in_block() {
    let g = genesis();
    let blocks = build_chain_with(&g, LEN, |p| {
        if p.height == 5 {
            p.requests[0].signature.0[0] ^= 0x80;
        }
    });
    let reason = expect_failure_at(&g, &blocks, 5);
    assert!(reason.contains("bad signature on request"), "{reason}");
}

#[test]
fn request_from_unknown_client_in_block() {
    let g = genesis();
    let blocks = build_chain_with(&g, LEN, |p| {
        if p.height == 2 {
            p.requests[0].request.client.0 = 5;
        }
    });
    let reason = expect_failure_at(&g, &blocks, 2);
    assert!(reason.contains("unknown client 5"), "{reason}");
}

/// `verify_chain` validates the genesis it is given: an auditor fed a broken genesis file
/// (here, one without replicas) gets an error at height 0, not a crash.
#[test]
fn genesis_without_replicas_is_an_error_not_a_panic() {
    let (g, mut blocks) = chain();
    let mut empty = g.clone();
    empty.replicas.clear();
    // Linked to the broken genesis, so the link check does not stop it first.
    blocks[0].header.prev_hash = empty.hash();
    let outcome = std::panic::catch_unwind(|| verify_chain(&empty, &blocks).is_err());
    assert_eq!(outcome.ok(), Some(true), "must return an error, not panic");
}
