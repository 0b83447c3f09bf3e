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
use medchain_types::genesis::{ClientInfo, GenesisConsent, GenesisUser, UserRole, GENESIS_DOMAIN};
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
        users: vec![
            GenesisUser {
                user_id: "admin".into(),
                role: UserRole::Department,
                organisation: ReplicaId(0),
                department: "general".into(),
                display_name: "Admin".into(),
            },
            GenesisUser {
                user_id: "p1".into(),
                role: UserRole::Patient,
                organisation: ReplicaId(0),
                department: "general".into(),
                display_name: "Patient One".into(),
            },
            GenesisUser {
                user_id: "d1".into(),
                role: UserRole::Doctor,
                organisation: ReplicaId(0),
                department: "general".into(),
                display_name: "Doctor One".into(),
            },
        ],
        consents: vec![GenesisConsent {
            patient: "p1".into(),
            doctor: "d1".into(),
        }],
        policy: Default::default(),
        encryption_keys: Vec::new(),
    }
}

fn request() -> Request {
    Request {
        client: ClientId(1),
        request_id: 42,
        payload: b"patient:123 allergy:penicillin".to_vec(),
        content_hashes: vec![Hash32::sha256(b"diagnosis: asthma")],
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
                content_hashes: vec![],
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
    ("request", "01002a000000000000001e00000070617469656e743a31323320616c6c657267793a70656e6963696c6c696e01000000dd7629fa10516e25361db4ab21d5b6e827704a0c0d804a53afe9b694d1ce9e71"),
    ("signed-request", "01002a000000000000001e00000070617469656e743a31323320616c6c657267793a70656e6963696c6c696e01000000dd7629fa10516e25361db4ab21d5b6e827704a0c0d804a53afe9b694d1ce9e71c7b20b0b052e68934e4519cb587d064334160bea06c8aff2ab625973366a6ee6130d11449c386e58632fa5b01f226a741fc896c4f07620d3a7de8a17f2b8fb0300000000"),
    ("proposal", "070000000000000002000000000000000200404ae7cf8b0100000200000001002a000000000000001e00000070617469656e743a31323320616c6c657267793a70656e6963696c6c696e01000000dd7629fa10516e25361db4ab21d5b6e827704a0c0d804a53afe9b694d1ce9e71c7b20b0b052e68934e4519cb587d064334160bea06c8aff2ab625973366a6ee6130d11449c386e58632fa5b01f226a741fc896c4f07620d3a7de8a17f2b8fb03000000000000010000000000000000000000000000001654b5ca201a090b9b8934753b98374e8fd213b2f1768c91efb191edd421a4fea283353f8b320faa80b6ee08714225549f69c7e508e66f12f34bfb3028e8390800000000"),
    ("proposal-header", "070000000000000002000000000000000200404ae7cf8b0100000ec896c6bb3137c3b6babd8c52c3b97aed1cee6ed960a9ef426bfdec192e5cc3"),
    ("proposal-digest", "c6a6e9ed37db5610fa9b529e8b74565dd15c9066747f1db0b59edde39d0cc3b0"),
    ("block-header", "0700000000000000020000000000000011111111111111111111111111111111111111111111111111111111111111110ec896c6bb3137c3b6babd8c52c3b97aed1cee6ed960a9ef426bfdec192e5cc30200404ae7cf8b010000"),
    ("block-hash", "3578157f80af07d4c8f1bcf1b810ed17cfedf2e904439314a49b4ff311cc5dac"),
    ("genesis", "0106000000676f6c64656e040000000000050000006f72672d30274d5c791fda499c6a863453c04c2fac0d1d17852ddad7c09782c9714a49e0ec0d00000031302e302e302e303a373030300d00000031302e302e302e303a383030300100050000006f72672d314046662d72b4bc4d0132a4ad55349d0129f0e969d72f4a7af498cef4b77038ac0d00000031302e302e302e313a373030300d00000031302e302e302e313a383030300200050000006f72672d326a949455f51c8d2fbf5fad8906c8b743f60fbd826c75662cb8ed18092fee3e650d00000031302e302e302e323a373030300d00000031302e302e302e323a383030300300050000006f72672d332ef16521927d8d8b373a40c851bc1f18723de190d8766219af11ac0033658f9a0d00000031302e302e302e333a373030300d00000031302e302e302e333a38303030020000000400000067772d30026406da8d7751459b3d12eb094a8751739a112464662c28f393b7b0d356a65c0400000067772d316e455b2e7973838ceafa4321a04e0d1a761a023640de5a16a2f7d13bd4fdc3d3030000000500000061646d696e0300000700000067656e6572616c0500000041646d696e0200000070310100000700000067656e6572616c0b00000050617469656e74204f6e650200000064310000000700000067656e6572616c0a000000446f63746f72204f6e6501000000020000007031020000006431"),
    ("genesis-hash", "f66625345e132370cb61e07f90acb994ce9f2ae5aee1c156b86a8963073d8bc1"),
    ("msg/request", "0001002a000000000000001e00000070617469656e743a31323320616c6c657267793a70656e6963696c6c696e01000000dd7629fa10516e25361db4ab21d5b6e827704a0c0d804a53afe9b694d1ce9e71c7b20b0b052e68934e4519cb587d064334160bea06c8aff2ab625973366a6ee6130d11449c386e58632fa5b01f226a741fc896c4f07620d3a7de8a17f2b8fb0300000000"),
    ("msg/pre-prepare", "0102000000000000000700000000000000c6a6e9ed37db5610fa9b529e8b74565dd15c9066747f1db0b59edde39d0cc3b002004ea45aee8ad58503daae9cc4d78e8f64ba79696b18e584114e5e38bd35faac6be88461adf0b512129df5675dbff414432bf40041a99ca2951506b59f6234120a070000000000000002000000000000000200404ae7cf8b0100000200000001002a000000000000001e00000070617469656e743a31323320616c6c657267793a70656e6963696c6c696e01000000dd7629fa10516e25361db4ab21d5b6e827704a0c0d804a53afe9b694d1ce9e71c7b20b0b052e68934e4519cb587d064334160bea06c8aff2ab625973366a6ee6130d11449c386e58632fa5b01f226a741fc896c4f07620d3a7de8a17f2b8fb03000000000000010000000000000000000000000000001654b5ca201a090b9b8934753b98374e8fd213b2f1768c91efb191edd421a4fea283353f8b320faa80b6ee08714225549f69c7e508e66f12f34bfb3028e8390800000000"),
    ("msg/prepare", "0202000000000000000700000000000000c6a6e9ed37db5610fa9b529e8b74565dd15c9066747f1db0b59edde39d0cc3b003008ba971b6d2f3a938e7d3b5f2f33b088565ede8ef51e3f18227baf4ef986dfd7f0a3f93cef112c131390d65167db065048d3c707ca1ca739081158f5f48faa20c"),
    ("msg/commit", "0302000000000000000700000000000000c6a6e9ed37db5610fa9b529e8b74565dd15c9066747f1db0b59edde39d0cc3b00000f38e8044ec08b2a87e5d37703d3543916a0e88e7a0083182318a742d838ec56e75c966018d35fa166572d085ac1ed4f7f65cfcd6b11746eb1f23eb9dd1feaa06"),
    ("msg/checkpoint", "0407000000000000003578157f80af07d4c8f1bcf1b810ed17cfedf2e904439314a49b4ff311cc5dac0100133560f4dd77e2ea990ccd70662472e851093fcfeba5f2bb838910c928b072f4460a2ff50fa7d6c9c45a59f20f136664ab42041f0ccd14471cc92cdc2d59630e"),
    ("msg/view-change", "0503000000000000000000000000000000f66625345e132370cb61e07f90acb994ce9f2ae5aee1c156b86a8963073d8bc1000000000100000002000000000000000700000000000000c6a6e9ed37db5610fa9b529e8b74565dd15c9066747f1db0b59edde39d0cc3b002004ea45aee8ad58503daae9cc4d78e8f64ba79696b18e584114e5e38bd35faac6be88461adf0b512129df5675dbff414432bf40041a99ca2951506b59f6234120a0200000002000000000000000700000000000000c6a6e9ed37db5610fa9b529e8b74565dd15c9066747f1db0b59edde39d0cc3b00000eeddd439ba984badb10c722da86b061b47a7be15358097def2b902ac95c9a939f5a45d4a6de4820dae19756b835dfc782a8fa3ab4253c638587bd4c06de0470502000000000000000700000000000000c6a6e9ed37db5610fa9b529e8b74565dd15c9066747f1db0b59edde39d0cc3b003008ba971b6d2f3a938e7d3b5f2f33b088565ede8ef51e3f18227baf4ef986dfd7f0a3f93cef112c131390d65167db065048d3c707ca1ca739081158f5f48faa20c010026e4ce144bf681f6260565d4a92d42823e3adc29a68ae7a323ed07ab04c78628aab2ed9e0a62bce2ca167fa23cdf518c87a7ea5537d03b46390f7005bd64f60701000000070000000000000002000000000000000200404ae7cf8b0100000200000001002a000000000000001e00000070617469656e743a31323320616c6c657267793a70656e6963696c6c696e01000000dd7629fa10516e25361db4ab21d5b6e827704a0c0d804a53afe9b694d1ce9e71c7b20b0b052e68934e4519cb587d064334160bea06c8aff2ab625973366a6ee6130d11449c386e58632fa5b01f226a741fc896c4f07620d3a7de8a17f2b8fb03000000000000010000000000000000000000000000001654b5ca201a090b9b8934753b98374e8fd213b2f1768c91efb191edd421a4fea283353f8b320faa80b6ee08714225549f69c7e508e66f12f34bfb3028e8390800000000"),
    ("msg/new-view", "0603000000000000000100000003000000000000000000000000000000f66625345e132370cb61e07f90acb994ce9f2ae5aee1c156b86a8963073d8bc1000000000100000002000000000000000700000000000000c6a6e9ed37db5610fa9b529e8b74565dd15c9066747f1db0b59edde39d0cc3b002004ea45aee8ad58503daae9cc4d78e8f64ba79696b18e584114e5e38bd35faac6be88461adf0b512129df5675dbff414432bf40041a99ca2951506b59f6234120a0200000002000000000000000700000000000000c6a6e9ed37db5610fa9b529e8b74565dd15c9066747f1db0b59edde39d0cc3b00000eeddd439ba984badb10c722da86b061b47a7be15358097def2b902ac95c9a939f5a45d4a6de4820dae19756b835dfc782a8fa3ab4253c638587bd4c06de0470502000000000000000700000000000000c6a6e9ed37db5610fa9b529e8b74565dd15c9066747f1db0b59edde39d0cc3b003008ba971b6d2f3a938e7d3b5f2f33b088565ede8ef51e3f18227baf4ef986dfd7f0a3f93cef112c131390d65167db065048d3c707ca1ca739081158f5f48faa20c010026e4ce144bf681f6260565d4a92d42823e3adc29a68ae7a323ed07ab04c78628aab2ed9e0a62bce2ca167fa23cdf518c87a7ea5537d03b46390f7005bd64f6070100000003000000000000000700000000000000c6a6e9ed37db5610fa9b529e8b74565dd15c9066747f1db0b59edde39d0cc3b00300931eb3b33a97416358175ad116ce0ad10e31ebd542d563c2932e700cef4a4b061fab7199a60bcd4425f52f1b0981694fdfd65cf2b5e26bb61a746cb678ce91070300550a0b609eae8f73bca223ecd1ccbbb0282df6a22d48783d26b848a2bdfe73cd5ff8f1088f5dcfb47dd37d6c475d4b675041c3f6179a636e807200dafcda980501000000070000000000000002000000000000000200404ae7cf8b0100000200000001002a000000000000001e00000070617469656e743a31323320616c6c657267793a70656e6963696c6c696e01000000dd7629fa10516e25361db4ab21d5b6e827704a0c0d804a53afe9b694d1ce9e71c7b20b0b052e68934e4519cb587d064334160bea06c8aff2ab625973366a6ee6130d11449c386e58632fa5b01f226a741fc896c4f07620d3a7de8a17f2b8fb03000000000000010000000000000000000000000000001654b5ca201a090b9b8934753b98374e8fd213b2f1768c91efb191edd421a4fea283353f8b320faa80b6ee08714225549f69c7e508e66f12f34bfb3028e8390800000000"),
    ("msg/status", "0703000000000000000106000000000000000400000000000000020047b2130a6382b8cb62e84d9d2fdd0ecceee5268afeb4f307c36f5efb935fcf2261528a4013dd613f80435a15788948f63aa8528d989358ea27ce8d0c5a04b30c"),
    ("msg/fetch-blocks", "0805000000000000002000000000007208628cdbfaf8eb585d8ad152412fa086f748cf3eec5cda28703bba3e48cc27ffd18e6a5b58f59c7505676f0687d7b48f7eca3419de8eec8843c8f729d93a07"),
    ("msg/blocks", "09010000000700000000000000020000000000000011111111111111111111111111111111111111111111111111111111111111110ec896c6bb3137c3b6babd8c52c3b97aed1cee6ed960a9ef426bfdec192e5cc30200404ae7cf8b0100000200000001002a000000000000001e00000070617469656e743a31323320616c6c657267793a70656e6963696c6c696e01000000dd7629fa10516e25361db4ab21d5b6e827704a0c0d804a53afe9b694d1ce9e71c7b20b0b052e68934e4519cb587d064334160bea06c8aff2ab625973366a6ee6130d11449c386e58632fa5b01f226a741fc896c4f07620d3a7de8a17f2b8fb03000000000000010000000000000000000000000000001654b5ca201a090b9b8934753b98374e8fd213b2f1768c91efb191edd421a4fea283353f8b320faa80b6ee08714225549f69c7e508e66f12f34bfb3028e839080000000002000000000000000700000000000000c6a6e9ed37db5610fa9b529e8b74565dd15c9066747f1db0b59edde39d0cc3b0030000000000f38e8044ec08b2a87e5d37703d3543916a0e88e7a0083182318a742d838ec56e75c966018d35fa166572d085ac1ed4f7f65cfcd6b11746eb1f23eb9dd1feaa060100e22653a38562127a214402daef8d4d5fdfbba4411e0a524dce9e0bff983a6c2ec88be5e104a27df6714e31e3e93cf0ab307fbdafff6862495e26ea2eb4c79900030081447147d6d755278fcc9c57041fc3ea0968e76a91f4c7b8d59dbafc4d2be8c2008fd5167268ff9447ae9716950f3b21cd33b6c83d20f994133a373f6c42a802"),
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
    "c7b20b0b052e68934e4519cb587d064334160bea06c8aff2ab625973366a6ee6130d11449c386e58632fa5b01f226a741fc896c4f07620d3a7de8a17f2b8fb03";
const PINNED_COMMIT_SIGNATURE: &str =
    "f38e8044ec08b2a87e5d37703d3543916a0e88e7a0083182318a742d838ec56e75c966018d35fa166572d085ac1ed4f7f65cfcd6b11746eb1f23eb9dd1feaa06";
