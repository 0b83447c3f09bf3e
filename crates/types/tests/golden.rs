//! Golden vectors pinning the ledger format byte for byte.
//!
//! Stored blocks, signatures and peers running older code all depend on these exact bytes.
//! If a vector here changes, the wire/hashing format changed: that is an incompatible
//! change which needs a `FORMAT_VERSION` bump (and new domain tags, `medchain/v2/...`),
//! with these vectors kept for v1. Do not just paste the new values in.
//!
//! The fixtures are spelled out here rather than taken from `tests/common`, so that
//! editing a shared test helper can never look like a format change.

use medchain_types::block::{CommitCertificate, BLOCK_DOMAIN, PROPOSAL_DOMAIN};
use medchain_types::codec::FORMAT_VERSION;
use medchain_types::genesis::{AdminUser, ClientInfo, GENESIS_DOMAIN};
use medchain_types::message::{
    CHECKPOINT_DOMAIN, COMMIT_DOMAIN, FETCH_BLOCKS_DOMAIN, NEW_VIEW_DOMAIN, PREPARE_DOMAIN,
    PRE_PREPARE_DOMAIN, STATUS_DOMAIN, VIEW_CHANGE_DOMAIN,
};
use medchain_types::request::REQUEST_DOMAIN;
use medchain_types::{
    encode, BlockHeader, Checkpoint, ClientId, Commit, CommittedBlock, FetchBlocks, Genesis,
    Hash32, KeyPair, NewView, PeerMessage, PrePrepare, Prepare, PreparedProof, Proposal,
    ReplicaId, ReplicaInfo, Request, Signable, Signed, SignedRequest, Status, ViewChange,
};

fn replica_key(i: u16) -> KeyPair {
    KeyPair::for_test(&format!("replica-{i}"))
}

fn client_key(i: u16) -> KeyPair {
    KeyPair::for_test(&format!("client-{i}"))
}

fn sign<T: Signable>(body: T) -> Signed<T> {
    let key = replica_key(body.signer().0);
    Signed::sign(body, &key)
}

fn genesis() -> Genesis {
    Genesis {
        format_version: FORMAT_VERSION,
        chain_id: "golden".into(),
        replicas: (0..4)
            .map(|i| ReplicaInfo {
                id: ReplicaId(i),
                organisation: format!("org-{i}"),
                public_key: replica_key(i).public(),
                peer_addr: format!("10.0.0.{i}:7000"),
                http_addr: format!("10.0.0.{i}:8000"),
            })
            .collect(),
        clients: (0..2)
            .map(|i| ClientInfo {
                name: format!("gw-{i}"),
                public_key: client_key(i).public(),
            })
            .collect(),
        admins: vec![AdminUser {
            user_id: "admin".into(),
            organisation: "org-0".into(),
        }],
    }
}

fn request() -> Request {
    Request {
        client: ClientId(1),
        request_id: 42,
        payload: b"patient:123 allergy:penicillin".to_vec(),
    }
}

fn signed_request() -> SignedRequest {
    request().sign(&client_key(1))
}

fn proposal() -> Proposal {
    Proposal {
        height: 7,
        view: 2,
        proposer: ReplicaId(2),
        timestamp_ms: 1_700_000_123_456,
        requests: vec![
            signed_request(),
            Request {
                client: ClientId(0),
                request_id: 1,
                payload: vec![],
            }
            .sign(&client_key(0)),
        ],
    }
}

fn block_header() -> BlockHeader {
    BlockHeader::new(&proposal().header(), Hash32([0x11; 32]))
}

fn pre_prepare(view: u64, replica: u16) -> Signed<PrePrepare> {
    sign(PrePrepare {
        view,
        seq: 7,
        digest: proposal().digest(),
        replica: ReplicaId(replica),
    })
}

fn view_change() -> Signed<ViewChange> {
    let d = proposal().digest();
    sign(ViewChange {
        new_view: 3,
        stable_seq: 0,
        stable_digest: genesis().hash(),
        checkpoint_proof: vec![],
        prepared: vec![PreparedProof {
            pre_prepare: pre_prepare(2, 2),
            prepares: [0, 3]
                .into_iter()
                .map(|r| {
                    sign(Prepare {
                        view: 2,
                        seq: 7,
                        digest: d,
                        replica: ReplicaId(r),
                    })
                })
                .collect(),
        }],
        replica: ReplicaId(1),
    })
}

fn commit(replica: u16) -> Signed<Commit> {
    sign(Commit {
        view: 2,
        seq: 7,
        digest: proposal().digest(),
        replica: ReplicaId(replica),
    })
}

/// Every pinned value: (name, hex of the actual bytes or hash).
fn vectors() -> Vec<(&'static str, String)> {
    let p = proposal();
    let header = block_header();
    let d = p.digest();
    let messages = [
        ("msg/request", PeerMessage::Request(signed_request())),
        (
            "msg/pre-prepare",
            PeerMessage::PrePrepare {
                pre_prepare: pre_prepare(2, 2),
                proposal: p.clone(),
            },
        ),
        (
            "msg/prepare",
            PeerMessage::Prepare(sign(Prepare {
                view: 2,
                seq: 7,
                digest: d,
                replica: ReplicaId(3),
            })),
        ),
        ("msg/commit", PeerMessage::Commit(commit(0))),
        (
            "msg/checkpoint",
            PeerMessage::Checkpoint(sign(Checkpoint {
                seq: 7,
                digest: header.hash(),
                replica: ReplicaId(1),
            })),
        ),
        (
            "msg/view-change",
            PeerMessage::ViewChange {
                view_change: view_change(),
                proposals: vec![p.clone()],
            },
        ),
        (
            "msg/new-view",
            PeerMessage::NewView {
                new_view: sign(NewView {
                    view: 3,
                    view_changes: vec![view_change()],
                    pre_prepares: vec![pre_prepare(3, 3)],
                    replica: ReplicaId(3),
                }),
                proposals: vec![p.clone()],
            },
        ),
        (
            "msg/status",
            PeerMessage::Status(sign(Status {
                view: 3,
                in_view_change: true,
                last_executed: 6,
                stable_seq: 4,
                replica: ReplicaId(2),
            })),
        ),
        (
            "msg/fetch-blocks",
            PeerMessage::FetchBlocks(sign(FetchBlocks {
                from_height: 5,
                max_blocks: 32,
                replica: ReplicaId(0),
            })),
        ),
        (
            "msg/blocks",
            PeerMessage::Blocks(vec![CommittedBlock {
                header: header.clone(),
                requests: p.requests.clone(),
                certificate: CommitCertificate {
                    view: 2,
                    height: 7,
                    proposal_digest: d,
                    signatures: [0, 1, 3]
                        .into_iter()
                        .map(|r| (ReplicaId(r), commit(r).signature))
                        .collect(),
                },
            }]),
        ),
    ];
    let mut v = vec![
        ("request", hex::encode(encode(&request()))),
        ("signed-request", hex::encode(encode(&signed_request()))),
        ("proposal", hex::encode(encode(&p))),
        ("proposal-header", hex::encode(encode(&p.header()))),
        ("proposal-digest", p.digest().to_hex()),
        ("block-header", hex::encode(encode(&header))),
        ("block-hash", header.hash().to_hex()),
        ("genesis", hex::encode(encode(&genesis()))),
        ("genesis-hash", genesis().hash().to_hex()),
    ];
    for (name, m) in messages {
        v.push((name, hex::encode(encode(&m))));
    }
    v
}

// Generated once from the code at FORMAT_VERSION 1; see the module comment before
// changing any of them.
const EXPECTED: &[(&str, &str)] = &[];

#[test]
fn golden_vectors_match() {
    let actual = vectors();
    if std::env::var_os("MEDCHAIN_PRINT_GOLDEN").is_some() {
        for (name, hex) in &actual {
            println!("    (\"{name}\", \"{hex}\"),");
        }
    }
    let names: Vec<_> = actual.iter().map(|(n, _)| *n).collect();
    let expected_names: Vec<_> = EXPECTED.iter().map(|(n, _)| *n).collect();
    assert_eq!(names, expected_names, "the set of golden vectors changed");
    let changed: Vec<_> = actual
        .iter()
        .zip(EXPECTED)
        .filter(|((_, a), (_, e))| a != e)
        .map(|((n, a), (_, e))| format!("{n}:\n  expected {e}\n  actual   {a}"))
        .collect();
    assert!(
        changed.is_empty(),
        "format changed (needs a FORMAT_VERSION bump):\n{}",
        changed.join("\n")
    );
}

#[test]
fn format_version_and_domain_tags() {
    assert_eq!(FORMAT_VERSION, 1);
    let tags: &[(&[u8], &str)] = &[
        (REQUEST_DOMAIN, "medchain/v1/request"),
        (PROPOSAL_DOMAIN, "medchain/v1/proposal"),
        (BLOCK_DOMAIN, "medchain/v1/block"),
        (GENESIS_DOMAIN, "medchain/v1/genesis"),
        (PRE_PREPARE_DOMAIN, "medchain/v1/pre-prepare"),
        (PREPARE_DOMAIN, "medchain/v1/prepare"),
        (COMMIT_DOMAIN, "medchain/v1/commit"),
        (CHECKPOINT_DOMAIN, "medchain/v1/checkpoint"),
        (VIEW_CHANGE_DOMAIN, "medchain/v1/view-change"),
        (NEW_VIEW_DOMAIN, "medchain/v1/new-view"),
        (STATUS_DOMAIN, "medchain/v1/status"),
        (FETCH_BLOCKS_DOMAIN, "medchain/v1/fetch-blocks"),
    ];
    for (tag, expected) in tags {
        assert_eq!(std::str::from_utf8(tag).expect("ascii"), *expected);
        // The version in the tag is what keeps v1 and a future v2 apart.
        assert!(expected.starts_with(&format!("medchain/v{FORMAT_VERSION}/")));
    }
    // No tag may be a prefix of another, or `tag || bytes` could collide across kinds.
    for (a, _) in tags {
        for (b, _) in tags {
            assert!(a == b || !b.starts_with(a), "{a:?} prefixes {b:?}");
        }
    }
}

#[test]
fn test_keys_are_pinned() {
    // The simulator and every fixture derive keys this way; a change would silently
    // re-key every saved test genesis.
    assert_eq!(
        hex::encode(replica_key(0).public().0),
        PINNED_REPLICA_0_PUBLIC
    );
    assert_eq!(hex::encode(client_key(1).public().0), PINNED_CLIENT_1_PUBLIC);
}

#[test]
fn signatures_are_deterministic() {
    // Ed25519 signing is deterministic (RFC 8032): the same key and bytes always give
    // the same signature, which is what makes signed vectors reproducible at all.
    let a = signed_request();
    let b = signed_request();
    assert_eq!(a.signature, b.signature);
    assert_eq!(hex::encode(a.signature.0), PINNED_REQUEST_SIGNATURE);
    let c = commit(0);
    assert_eq!(c.signature, commit(0).signature);
    assert_eq!(hex::encode(c.signature.0), PINNED_COMMIT_SIGNATURE);
    assert_eq!(
        c.signing_bytes()[..COMMIT_DOMAIN.len()],
        *COMMIT_DOMAIN,
        "signed bytes start with the domain tag"
    );
}

const PINNED_REPLICA_0_PUBLIC: &str = "";
const PINNED_CLIENT_1_PUBLIC: &str = "";
const PINNED_REQUEST_SIGNATURE: &str = "";
const PINNED_COMMIT_SIGNATURE: &str = "";
