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
    Hash32, KeyPair, NewView, PeerMessage, PrePrepare, Prepare, PreparedProof, Proposal, ReplicaId,
    ReplicaInfo, Request, Signable, Signed, SignedRequest, Status, ViewChange,
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

// Generated once from the code at FORMAT_VERSION 1 (MEDCHAIN_PRINT_GOLDEN=1 prints the
// current values, for adding a vector) and cross-checked outside Rust: the hashes with
// Python's hashlib, the Merkle root by hand, the keys and request signature with the
// `cryptography` package's Ed25519. See the module comment before changing any of them.
const EXPECTED: &[(&str, &str)] = &[
    ("request", "01002a000000000000001e00000070617469656e743a31323320616c6c657267793a70656e6963696c6c696e"),
    ("signed-request", "01002a000000000000001e00000070617469656e743a31323320616c6c657267793a70656e6963696c6c696e4dc3fbe9105f38eaf241bad0124a98d5d5f85ceb1483444fa9900b773efcbae565946fe041afdbf9ebe54d0ae3edfd9fe32010a55463069ed6b712eb35953d09"),
    ("proposal", "070000000000000002000000000000000200404ae7cf8b0100000200000001002a000000000000001e00000070617469656e743a31323320616c6c657267793a70656e6963696c6c696e4dc3fbe9105f38eaf241bad0124a98d5d5f85ceb1483444fa9900b773efcbae565946fe041afdbf9ebe54d0ae3edfd9fe32010a55463069ed6b712eb35953d090000010000000000000000000000d31629ca8d7ae33dbcd9960d98953f2846d55eb0bf2a2b6335ebaa300fce64da8fc60fa7d66e199b89551ecd7ca2c305e2623fe907e75c9160c9ca7b3da4dc0c"),
    ("proposal-header", "070000000000000002000000000000000200404ae7cf8b0100000d0fde54f4bf847a954c8acf1c4ab7f35e290881d3c3847c93edcda9ab14b108"),
    ("proposal-digest", "6097cc26d395ceb4b4b535743a07ef27ebdedebec76f2d131be13e2ff78627b2"),
    ("block-header", "0700000000000000020000000000000011111111111111111111111111111111111111111111111111111111111111110d0fde54f4bf847a954c8acf1c4ab7f35e290881d3c3847c93edcda9ab14b1080200404ae7cf8b010000"),
    ("block-hash", "1c9038a9508a822aee77a1a18682a79861d586858227cdeacd626fbc98744a11"),
    ("genesis", "0106000000676f6c64656e040000000000050000006f72672d30274d5c791fda499c6a863453c04c2fac0d1d17852ddad7c09782c9714a49e0ec0d00000031302e302e302e303a373030300d00000031302e302e302e303a383030300100050000006f72672d314046662d72b4bc4d0132a4ad55349d0129f0e969d72f4a7af498cef4b77038ac0d00000031302e302e302e313a373030300d00000031302e302e302e313a383030300200050000006f72672d326a949455f51c8d2fbf5fad8906c8b743f60fbd826c75662cb8ed18092fee3e650d00000031302e302e302e323a373030300d00000031302e302e302e323a383030300300050000006f72672d332ef16521927d8d8b373a40c851bc1f18723de190d8766219af11ac0033658f9a0d00000031302e302e302e333a373030300d00000031302e302e302e333a38303030020000000400000067772d30026406da8d7751459b3d12eb094a8751739a112464662c28f393b7b0d356a65c0400000067772d316e455b2e7973838ceafa4321a04e0d1a761a023640de5a16a2f7d13bd4fdc3d3010000000500000061646d696e050000006f72672d30"),
    ("genesis-hash", "2f3f3483b1880333566ba5d985dd5da2e29d4d1ce0af45cdd8c89bcad8d30172"),
    ("msg/request", "0001002a000000000000001e00000070617469656e743a31323320616c6c657267793a70656e6963696c6c696e4dc3fbe9105f38eaf241bad0124a98d5d5f85ceb1483444fa9900b773efcbae565946fe041afdbf9ebe54d0ae3edfd9fe32010a55463069ed6b712eb35953d09"),
    ("msg/pre-prepare", "01020000000000000007000000000000006097cc26d395ceb4b4b535743a07ef27ebdedebec76f2d131be13e2ff78627b20200da844e51da263bf8c69cabeb2ba749b9943f8bd3c1371567c39f9e34dc68c4606defadbcb3216a744fd3cbd0a7720fc4a8feffd2279714173c5e3aa3b155b108070000000000000002000000000000000200404ae7cf8b0100000200000001002a000000000000001e00000070617469656e743a31323320616c6c657267793a70656e6963696c6c696e4dc3fbe9105f38eaf241bad0124a98d5d5f85ceb1483444fa9900b773efcbae565946fe041afdbf9ebe54d0ae3edfd9fe32010a55463069ed6b712eb35953d090000010000000000000000000000d31629ca8d7ae33dbcd9960d98953f2846d55eb0bf2a2b6335ebaa300fce64da8fc60fa7d66e199b89551ecd7ca2c305e2623fe907e75c9160c9ca7b3da4dc0c"),
    ("msg/prepare", "02020000000000000007000000000000006097cc26d395ceb4b4b535743a07ef27ebdedebec76f2d131be13e2ff78627b20300900e93a03c6a23afa55923441028ce6f24ba582d80774264dccd81d5af9977f536501c8e264a7c6db33fb3265be4160ad82b382c64d8815d3fbff08dd25e2206"),
    ("msg/commit", "03020000000000000007000000000000006097cc26d395ceb4b4b535743a07ef27ebdedebec76f2d131be13e2ff78627b20000924af44ed8008311099cce5b85d0b04c9797c249bcfa1b807fbec3b19b51751677262d3c8e12cb2c1bdaffaaa8cae008ae81dd4a24f2599e5dc6fb6aa0def408"),
    ("msg/checkpoint", "0407000000000000001c9038a9508a822aee77a1a18682a79861d586858227cdeacd626fbc98744a110100efd98c3d5d19a408cf9be40ffacc6af293e9f3ecfc9f01162beaada77a07a4e18a64442135a99d610429c5e562de5c4df0d091dc0be460bdd4fd6017a8fe470b"),
    ("msg/view-change", "05030000000000000000000000000000002f3f3483b1880333566ba5d985dd5da2e29d4d1ce0af45cdd8c89bcad8d301720000000001000000020000000000000007000000000000006097cc26d395ceb4b4b535743a07ef27ebdedebec76f2d131be13e2ff78627b20200da844e51da263bf8c69cabeb2ba749b9943f8bd3c1371567c39f9e34dc68c4606defadbcb3216a744fd3cbd0a7720fc4a8feffd2279714173c5e3aa3b155b10802000000020000000000000007000000000000006097cc26d395ceb4b4b535743a07ef27ebdedebec76f2d131be13e2ff78627b200001f3dd8c811cacf082338073297e20d618e8021a1f3ed0fda55ac7beb1da8107b9b9694cbe6d9bf59db73eed2746b772ae48d7a7fa69cce3717a5353ff91e8a0a020000000000000007000000000000006097cc26d395ceb4b4b535743a07ef27ebdedebec76f2d131be13e2ff78627b20300900e93a03c6a23afa55923441028ce6f24ba582d80774264dccd81d5af9977f536501c8e264a7c6db33fb3265be4160ad82b382c64d8815d3fbff08dd25e220601001de727faa600ead0d9dd9beba51cb897f352ce50c5f20b5e08bc4f1f9a88fbb9b6240915fcf02416ab2eff92abed5880cf02aed078d71360d86aefbc11cec40c01000000070000000000000002000000000000000200404ae7cf8b0100000200000001002a000000000000001e00000070617469656e743a31323320616c6c657267793a70656e6963696c6c696e4dc3fbe9105f38eaf241bad0124a98d5d5f85ceb1483444fa9900b773efcbae565946fe041afdbf9ebe54d0ae3edfd9fe32010a55463069ed6b712eb35953d090000010000000000000000000000d31629ca8d7ae33dbcd9960d98953f2846d55eb0bf2a2b6335ebaa300fce64da8fc60fa7d66e199b89551ecd7ca2c305e2623fe907e75c9160c9ca7b3da4dc0c"),
    ("msg/new-view", "06030000000000000001000000030000000000000000000000000000002f3f3483b1880333566ba5d985dd5da2e29d4d1ce0af45cdd8c89bcad8d301720000000001000000020000000000000007000000000000006097cc26d395ceb4b4b535743a07ef27ebdedebec76f2d131be13e2ff78627b20200da844e51da263bf8c69cabeb2ba749b9943f8bd3c1371567c39f9e34dc68c4606defadbcb3216a744fd3cbd0a7720fc4a8feffd2279714173c5e3aa3b155b10802000000020000000000000007000000000000006097cc26d395ceb4b4b535743a07ef27ebdedebec76f2d131be13e2ff78627b200001f3dd8c811cacf082338073297e20d618e8021a1f3ed0fda55ac7beb1da8107b9b9694cbe6d9bf59db73eed2746b772ae48d7a7fa69cce3717a5353ff91e8a0a020000000000000007000000000000006097cc26d395ceb4b4b535743a07ef27ebdedebec76f2d131be13e2ff78627b20300900e93a03c6a23afa55923441028ce6f24ba582d80774264dccd81d5af9977f536501c8e264a7c6db33fb3265be4160ad82b382c64d8815d3fbff08dd25e220601001de727faa600ead0d9dd9beba51cb897f352ce50c5f20b5e08bc4f1f9a88fbb9b6240915fcf02416ab2eff92abed5880cf02aed078d71360d86aefbc11cec40c01000000030000000000000007000000000000006097cc26d395ceb4b4b535743a07ef27ebdedebec76f2d131be13e2ff78627b203005981f8dc8bb6138ea7c39dd67f006321bf39bd7f45a71d8e8300ae65c9e56b8d1e0d07473a04c2eb58295b1c04056e6eea171979abc5b6818ffaa6bea998370003007fbd702ee209828570fcd73e2f70f33b6a71fdde170ab45db4c760fc3078378fa1c0de87169c8742d8e61eed649bec7b607b17a462b868eb0f93f41d8da2810301000000070000000000000002000000000000000200404ae7cf8b0100000200000001002a000000000000001e00000070617469656e743a31323320616c6c657267793a70656e6963696c6c696e4dc3fbe9105f38eaf241bad0124a98d5d5f85ceb1483444fa9900b773efcbae565946fe041afdbf9ebe54d0ae3edfd9fe32010a55463069ed6b712eb35953d090000010000000000000000000000d31629ca8d7ae33dbcd9960d98953f2846d55eb0bf2a2b6335ebaa300fce64da8fc60fa7d66e199b89551ecd7ca2c305e2623fe907e75c9160c9ca7b3da4dc0c"),
    ("msg/status", "0703000000000000000106000000000000000400000000000000020047b2130a6382b8cb62e84d9d2fdd0ecceee5268afeb4f307c36f5efb935fcf2261528a4013dd613f80435a15788948f63aa8528d989358ea27ce8d0c5a04b30c"),
    ("msg/fetch-blocks", "0805000000000000002000000000007208628cdbfaf8eb585d8ad152412fa086f748cf3eec5cda28703bba3e48cc27ffd18e6a5b58f59c7505676f0687d7b48f7eca3419de8eec8843c8f729d93a07"),
    ("msg/blocks", "09010000000700000000000000020000000000000011111111111111111111111111111111111111111111111111111111111111110d0fde54f4bf847a954c8acf1c4ab7f35e290881d3c3847c93edcda9ab14b1080200404ae7cf8b0100000200000001002a000000000000001e00000070617469656e743a31323320616c6c657267793a70656e6963696c6c696e4dc3fbe9105f38eaf241bad0124a98d5d5f85ceb1483444fa9900b773efcbae565946fe041afdbf9ebe54d0ae3edfd9fe32010a55463069ed6b712eb35953d090000010000000000000000000000d31629ca8d7ae33dbcd9960d98953f2846d55eb0bf2a2b6335ebaa300fce64da8fc60fa7d66e199b89551ecd7ca2c305e2623fe907e75c9160c9ca7b3da4dc0c020000000000000007000000000000006097cc26d395ceb4b4b535743a07ef27ebdedebec76f2d131be13e2ff78627b2030000000000924af44ed8008311099cce5b85d0b04c9797c249bcfa1b807fbec3b19b51751677262d3c8e12cb2c1bdaffaaa8cae008ae81dd4a24f2599e5dc6fb6aa0def4080100bbbf318310fd6dc5e8e783eb0c42d05752bcb8d678d0864f33c70b21af948b9f27b2fbcb4e0f6a02600417d922e0afee282d6952152af24a4fabec9ed21908080300365b3fa7e1dfaa90fa7039067ba4d3c669b8555e74c930a0d6c5741e1036549893b474caa98a4d519656d00bf40a872c03196f88bd035fb6610a6addbb0ba301"),
];

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
    assert_eq!(
        hex::encode(client_key(1).public().0),
        PINNED_CLIENT_1_PUBLIC
    );
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

const PINNED_REPLICA_0_PUBLIC: &str =
    "274d5c791fda499c6a863453c04c2fac0d1d17852ddad7c09782c9714a49e0ec";
const PINNED_CLIENT_1_PUBLIC: &str =
    "6e455b2e7973838ceafa4321a04e0d1a761a023640de5a16a2f7d13bd4fdc3d3";
const PINNED_REQUEST_SIGNATURE: &str =
    "4dc3fbe9105f38eaf241bad0124a98d5d5f85ceb1483444fa9900b773efcbae565946fe041afdbf9ebe54d0ae3edfd9fe32010a55463069ed6b712eb35953d09";
const PINNED_COMMIT_SIGNATURE: &str =
    "924af44ed8008311099cce5b85d0b04c9797c249bcfa1b807fbec3b19b51751677262d3c8e12cb2c1bdaffaaa8cae008ae81dd4a24f2599e5dc6fb6aa0def408";
