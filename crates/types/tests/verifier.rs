//! The Verifier is the only gate between the network and the PBFT core: every message it
//! passes is trusted. These tests check it accepts each well-formed message kind and
//! rejects forgeries, wrong roles, short quorums, digest mismatches and limit breaches,
//! and that the per-thread signature memo never changes an answer.

mod common;

use common::*;
use medchain_types::crypto::set_thread_verification_memo;
use medchain_types::{
    encode, Checkpoint, ClientId, Commit, FetchBlocks, Genesis, Hash32, Limits, NewView,
    PeerMessage, PrePrepare, Prepare, PreparedProof, Proposal, ReplicaId, Request, Signed, Status,
    Verifier, VerifyError, ViewChange,
};

fn verifier() -> (Genesis, Verifier) {
    let g = genesis();
    let v = Verifier::new(&g, Limits::default());
    (g, v)
}

fn reject(v: &Verifier, msg: PeerMessage) -> VerifyError {
    let kind = msg.kind();
    v.verify_message(msg)
        .map(|_| ())
        .expect_err(&format!("{kind} must be rejected"))
}

fn accept(v: &Verifier, msg: PeerMessage) {
    let kind = msg.kind();
    let bytes = encode(&msg);
    let verified = v
        .verify_message(msg.clone())
        .unwrap_or_else(|e| panic!("{kind} must be accepted: {e}"));
    assert_eq!(verified.get(), &msg);
    // The network path (decode, then verify) must agree with the in-memory path.
    let decoded = v.decode_message(&bytes).expect("decodes and verifies");
    assert_eq!(decoded.into_inner(), msg);
}

/// Block 1's batch, proposed by r0 in view 0.
fn proposal_1() -> Proposal {
    proposal(1, 0, requests(1, 2))
}

fn pre_prepare_msg(p: &Proposal, view: u64, replica: u16) -> PeerMessage {
    PeerMessage::PrePrepare {
        pre_prepare: KEYS.pre_prepare(view, p, ReplicaId(replica)),
        proposal: p.clone(),
    }
}

/// Proof that `p` was prepared in its own view: the primary's pre-prepare and 2f = 2
/// prepares from backups `backups`.
fn prepared_proof(p: &Proposal, backups: &[u16]) -> PreparedProof {
    KEYS.prepared_proof(p.view, p, p.proposer, backups)
}

/// A view change to `new_view` from `replica`, from the genesis checkpoint, carrying the
/// prepared proof of block 1.
fn view_change_body(g: &Genesis, new_view: u64, replica: u16) -> ViewChange {
    ViewChange {
        new_view,
        stable_seq: 0,
        stable_digest: g.hash(),
        checkpoint_proof: vec![],
        prepared: vec![prepared_proof(&proposal_1(), &[1, 2])],
        replica: ReplicaId(replica),
    }
}

/// NEW-VIEW for view 1 (primary r1) from the view changes of `senders`, re-proposing
/// block 1's batch.
fn new_view_msg(g: &Genesis, senders: &[u16], replica: u16) -> PeerMessage {
    let p = proposal_1();
    PeerMessage::NewView {
        new_view: KEYS.sign(NewView {
            view: 1,
            view_changes: senders
                .iter()
                .map(|&r| KEYS.sign(view_change_body(g, 1, r)))
                .collect(),
            pre_prepares: vec![KEYS.sign(PrePrepare {
                view: 1,
                seq: 1,
                digest: p.digest(),
                replica: ReplicaId(replica),
            })],
            replica: ReplicaId(replica),
        }),
        proposals: vec![p],
    }
}

fn valid_messages(g: &Genesis) -> Vec<PeerMessage> {
    let p = proposal_1();
    let d = p.digest();
    let chain = build_chain(g, 3);
    let stable = chain[1].hash();
    vec![
        PeerMessage::Request(KEYS.request(1, 42, b"allergy: penicillin")),
        pre_prepare_msg(&p, 0, 0),
        PeerMessage::Prepare(KEYS.sign(Prepare {
            view: 0,
            seq: 1,
            digest: d,
            replica: ReplicaId(2),
        })),
        PeerMessage::Commit(KEYS.sign(Commit {
            view: 0,
            seq: 1,
            digest: d,
            replica: ReplicaId(0),
        })),
        PeerMessage::Checkpoint(KEYS.sign(Checkpoint {
            seq: 2,
            digest: stable,
            replica: ReplicaId(3),
        })),
        PeerMessage::ViewChange {
            view_change: KEYS.sign(view_change_body(g, 1, 3)),
            proposals: vec![p.clone()],
        },
        // From a stable checkpoint at 2, with a prepared batch above it.
        PeerMessage::ViewChange {
            view_change: KEYS.sign(ViewChange {
                new_view: 2,
                stable_seq: 2,
                stable_digest: stable,
                checkpoint_proof: KEYS.checkpoint_proof(2, stable, &[0, 2, 3]),
                prepared: vec![prepared_proof(&proposal(3, 1, requests(100, 1)), &[2, 3])],
                replica: ReplicaId(0),
            }),
            proposals: vec![proposal(3, 1, requests(100, 1))],
        },
        new_view_msg(g, &[0, 2, 3], 1),
        PeerMessage::Status(KEYS.sign(Status {
            view: 1,
            in_view_change: true,
            last_executed: 3,
            stable_seq: 2,
            replica: ReplicaId(2),
        })),
        PeerMessage::FetchBlocks(KEYS.sign(FetchBlocks {
            from_height: 1,
            max_blocks: 16,
            replica: ReplicaId(3),
        })),
        PeerMessage::Blocks(chain),
    ]
}

#[test]
fn accepts_every_well_formed_message_kind() {
    let (g, v) = verifier();
    let msgs = valid_messages(&g);
    let mut kinds: Vec<_> = msgs.iter().map(|m| m.kind()).collect();
    kinds.dedup();
    assert_eq!(
        kinds.len(),
        10,
        "one of each PeerMessage variant: {kinds:?}"
    );
    for m in msgs {
        accept(&v, m);
    }
}

#[test]
fn prepare_forged_for_another_replica() {
    let (_, v) = verifier();
    // Replica 1 tries to cast a vote in replica 2's name.
    let forged = Signed::sign(
        Prepare {
            view: 0,
            seq: 1,
            digest: proposal_1().digest(),
            replica: ReplicaId(2),
        },
        &KEYS.replica(1),
    );
    assert_eq!(
        reject(&v, PeerMessage::Prepare(forged)),
        VerifyError::BadSignature("prepare")
    );
}

#[test]
fn prepare_from_unknown_replica() {
    let (_, v) = verifier();
    let msg = PeerMessage::Prepare(Signed::sign(
        Prepare {
            view: 0,
            seq: 1,
            digest: Hash32::default(),
            replica: ReplicaId(4),
        },
        &KEYS.replica(4),
    ));
    assert_eq!(reject(&v, msg), VerifyError::UnknownReplica(ReplicaId(4)));
}

#[test]
fn signature_does_not_carry_over_between_message_kinds() {
    let (_, v) = verifier();
    // Same fields, same signer: only the domain tag tells a prepare from a commit.
    let d = proposal_1().digest();
    let prepare = KEYS.sign(Prepare {
        view: 0,
        seq: 1,
        digest: d,
        replica: ReplicaId(2),
    });
    let as_commit = Signed {
        body: Commit {
            view: 0,
            seq: 1,
            digest: d,
            replica: ReplicaId(2),
        },
        signature: prepare.signature,
    };
    assert_eq!(
        reject(&v, PeerMessage::Commit(as_commit)),
        VerifyError::BadSignature("commit")
    );
}

#[test]
fn pre_prepare_from_non_primary() {
    let (_, v) = verifier();
    let msg = pre_prepare_msg(&proposal_1(), 0, 1);
    assert_eq!(reject(&v, msg), VerifyError::NotPrimary(ReplicaId(1), 0));
}

#[test]
fn prepare_from_primary_is_rejected() {
    let (_, v) = verifier();
    let msg = PeerMessage::Prepare(KEYS.sign(Prepare {
        view: 0,
        seq: 1,
        digest: proposal_1().digest(),
        replica: ReplicaId(0),
    }));
    assert_eq!(
        reject(&v, msg),
        VerifyError::Malformed("prepare from the primary")
    );
}

#[test]
fn pre_prepare_with_proposal_not_matching_digest() {
    let (_, v) = verifier();
    let p = proposal_1();
    let mut other = p.clone();
    other.requests.pop();
    let PeerMessage::PrePrepare { pre_prepare, .. } = pre_prepare_msg(&p, 0, 0) else {
        unreachable!()
    };
    let msg = PeerMessage::PrePrepare {
        pre_prepare,
        proposal: other,
    };
    assert_eq!(reject(&v, msg), VerifyError::Digest("proposal"));
}

#[test]
fn pre_prepare_with_proposal_for_another_height() {
    let (_, v) = verifier();
    let mut msg = pre_prepare_msg(&proposal_1(), 0, 0);
    if let PeerMessage::PrePrepare { proposal, .. } = &mut msg {
        proposal.height = 2;
    }
    assert_eq!(reject(&v, msg), VerifyError::Malformed("proposal height"));
}

#[test]
fn proposal_over_batch_limit() {
    let g = genesis();
    let limits = Limits {
        max_batch_requests: 2,
        ..Limits::default()
    };
    let v = Verifier::new(&g, limits);
    accept(&v, pre_prepare_msg(&proposal(1, 0, requests(1, 2)), 0, 0));
    let msg = pre_prepare_msg(&proposal(1, 0, requests(1, 3)), 0, 0);
    assert_eq!(reject(&v, msg), VerifyError::Limit("batch size"));
}

#[test]
fn request_payload_over_limit() {
    let g = genesis();
    let v = Verifier::new(
        &g,
        Limits {
            max_payload_bytes: 8,
            ..Limits::default()
        },
    );
    accept(&v, PeerMessage::Request(KEYS.request(0, 1, b"12345678")));
    let msg = PeerMessage::Request(KEYS.request(0, 1, b"123456789"));
    assert_eq!(reject(&v, msg), VerifyError::Limit("request payload"));
}

#[test]
fn request_from_unknown_client() {
    let (_, v) = verifier();
    // Signed by a real key, but client index 2 is not in the 2-client genesis.
    let mut r = KEYS.request(0, 1, b"x");
    r.request.client.0 = 2;
    assert_eq!(
        reject(&v, PeerMessage::Request(r.clone())),
        VerifyError::UnknownClient(2)
    );
    // Inside a batch too.
    let msg = pre_prepare_msg(&proposal(1, 0, vec![r]), 0, 0);
    assert_eq!(reject(&v, msg), VerifyError::UnknownClient(2));
}

#[test]
fn request_with_bad_signature() {
    let (_, v) = verifier();
    let mut r = KEYS.request(1, 7, b"blood type: O-");
    r.signature.0[33] ^= 0x04;
    assert_eq!(
        reject(&v, PeerMessage::Request(r.clone())),
        VerifyError::BadSignature("request")
    );
    // A valid signature of the other client does not count either.
    let mut stolen = KEYS.request(0, 7, b"blood type: O-");
    stolen.request.client.0 = 1;
    assert_eq!(
        reject(&v, PeerMessage::Request(stolen)),
        VerifyError::BadSignature("request")
    );
    let msg = pre_prepare_msg(&proposal(1, 0, vec![r]), 0, 0);
    assert_eq!(reject(&v, msg), VerifyError::BadSignature("request"));
}

#[test]
fn view_change_with_one_prepare_in_prepared_proof() {
    let (g, v) = verifier();
    let mut body = view_change_body(&g, 1, 3);
    body.prepared[0].prepares.truncate(1);
    let msg = PeerMessage::ViewChange {
        view_change: KEYS.sign(body),
        proposals: vec![proposal_1()],
    };
    assert_eq!(reject(&v, msg), VerifyError::Quorum("prepared proof"));
}

#[test]
fn view_change_with_duplicate_prepares() {
    let (g, v) = verifier();
    let mut body = view_change_body(&g, 1, 3);
    let dup = body.prepared[0].prepares[0].clone();
    body.prepared[0].prepares[1] = dup;
    let msg = PeerMessage::ViewChange {
        view_change: KEYS.sign(body),
        proposals: vec![proposal_1()],
    };
    assert_eq!(
        reject(&v, msg),
        VerifyError::Malformed("prepared proof: prepares not sorted")
    );
}

#[test]
fn view_change_with_two_checkpoint_signatures() {
    let (g, v) = verifier();
    let stable = build_chain(&g, 2)[1].hash();
    let body = ViewChange {
        new_view: 1,
        stable_seq: 2,
        stable_digest: stable,
        checkpoint_proof: KEYS.checkpoint_proof(2, stable, &[0, 1]),
        prepared: vec![],
        replica: ReplicaId(2),
    };
    let msg = PeerMessage::ViewChange {
        view_change: KEYS.sign(body),
        proposals: vec![],
    };
    assert_eq!(reject(&v, msg), VerifyError::Quorum("checkpoint proof"));
}

#[test]
fn view_change_from_genesis_must_name_the_genesis() {
    let (g, v) = verifier();
    let mut body = view_change_body(&g, 1, 3);
    body.stable_digest = Hash32([1; 32]);
    let msg = PeerMessage::ViewChange {
        view_change: KEYS.sign(body),
        proposals: vec![proposal_1()],
    };
    assert_eq!(
        reject(&v, msg),
        VerifyError::Malformed("genesis checkpoint")
    );
}

#[test]
fn view_change_without_its_proposals() {
    let (g, v) = verifier();
    let msg = PeerMessage::ViewChange {
        view_change: KEYS.sign(view_change_body(&g, 1, 3)),
        proposals: vec![],
    };
    assert_eq!(
        reject(&v, msg),
        VerifyError::Malformed("view-change proposals")
    );
}

#[test]
fn new_view_with_two_view_changes() {
    let (g, v) = verifier();
    assert_eq!(
        reject(&v, new_view_msg(&g, &[0, 2], 1)),
        VerifyError::Quorum("new-view")
    );
}

#[test]
fn new_view_with_duplicate_view_changes() {
    let (g, v) = verifier();
    assert_eq!(
        reject(&v, new_view_msg(&g, &[0, 2, 2], 1)),
        VerifyError::Malformed("new-view: view changes not sorted")
    );
}

#[test]
fn new_view_from_non_primary() {
    let (g, v) = verifier();
    assert_eq!(
        reject(&v, new_view_msg(&g, &[0, 1, 3], 2)),
        VerifyError::NotPrimary(ReplicaId(2), 1)
    );
}

#[test]
fn new_view_naming_the_primary_but_signed_by_another() {
    let (g, v) = verifier();
    let PeerMessage::NewView {
        new_view,
        proposals,
    } = new_view_msg(&g, &[0, 2, 3], 1)
    else {
        unreachable!()
    };
    let forged = Signed::sign(new_view.body, &KEYS.replica(2));
    let msg = PeerMessage::NewView {
        new_view: forged,
        proposals,
    };
    assert_eq!(reject(&v, msg), VerifyError::BadSignature("new-view"));
}

#[test]
fn blocks_with_bad_certificate() {
    let (g, v) = verifier();
    let mut chain = build_chain(&g, 3);
    let (_, sig) = &mut chain[2].certificate.signatures[0];
    sig.0[63] ^= 0x01;
    assert_eq!(
        reject(&v, PeerMessage::Blocks(chain)),
        VerifyError::Quorum("commit certificate")
    );
}

#[test]
fn blocks_over_fetch_limit() {
    let g = genesis();
    let v = Verifier::new(
        &g,
        Limits {
            max_fetch_blocks: 2,
            ..Limits::default()
        },
    );
    let chain = build_chain(&g, 3);
    accept(&v, PeerMessage::Blocks(chain[..2].to_vec()));
    assert_eq!(
        reject(&v, PeerMessage::Blocks(chain)),
        VerifyError::Limit("blocks per answer")
    );
}

#[test]
fn insane_view_numbers_are_rejected() {
    let (_, v) = verifier();
    let msg = PeerMessage::Status(KEYS.sign(Status {
        view: u64::MAX,
        in_view_change: false,
        last_executed: 0,
        stable_seq: 0,
        replica: ReplicaId(0),
    }));
    assert_eq!(reject(&v, msg), VerifyError::Limit("view"));
}

#[test]
fn decode_message_enforces_max_message_bytes() {
    let g = genesis();
    let msg = PeerMessage::Request(KEYS.request(0, 1, &[0u8; 64]));
    let bytes = encode(&msg);
    let v = Verifier::new(
        &g,
        Limits {
            max_content_pieces: 8,
            max_content_bytes: 1 << 16,
            max_message_bytes: bytes.len() - 1,
            ..Limits::default()
        },
    );
    assert!(matches!(
        v.decode_message(&bytes),
        Err(VerifyError::Decode(
            medchain_types::CodecError::TooLarge { .. }
        ))
    ));
}

/// Valid messages plus an invalid twin of each signed one, for the memo comparison.
fn memo_corpus(g: &Genesis) -> Vec<PeerMessage> {
    let mut msgs = valid_messages(g);
    let mut broken = Vec::new();
    for m in &msgs {
        let mut m = m.clone();
        let changed = match &mut m {
            PeerMessage::Request(r) => {
                r.request.payload.push(0);
                true
            }
            PeerMessage::Prepare(p) => {
                p.body.seq += 1;
                true
            }
            PeerMessage::Commit(c) => {
                c.signature.0[0] ^= 1;
                true
            }
            PeerMessage::Checkpoint(c) => {
                c.body.digest.0[0] ^= 1;
                true
            }
            PeerMessage::Status(s) => {
                s.body.in_view_change = !s.body.in_view_change;
                true
            }
            PeerMessage::FetchBlocks(f) => {
                f.body.max_blocks += 1;
                true
            }
            PeerMessage::Blocks(b) => {
                b[0].requests[0].signature.0[5] ^= 1;
                true
            }
            _ => false,
        };
        if changed {
            broken.push(m);
        }
    }
    msgs.extend(broken);
    msgs.push(PeerMessage::Prepare(Signed::sign(
        Prepare {
            view: 0,
            seq: 1,
            digest: Hash32::default(),
            replica: ReplicaId(2),
        },
        &KEYS.replica(1),
    )));
    msgs
}

#[test]
fn verification_memo_gives_the_same_answers() {
    let (g, v) = verifier();
    let corpus = memo_corpus(&g);
    let answers = |v: &Verifier| -> Vec<Result<(), VerifyError>> {
        corpus
            .iter()
            .map(|m| v.verify_message(m.clone()).map(|_| ()))
            .collect()
    };
    set_thread_verification_memo(false);
    let plain = answers(&v);
    assert!(plain.iter().any(Result::is_ok));
    assert!(plain.iter().any(Result::is_err));

    set_thread_verification_memo(true);
    // First pass fills the memo, second pass is answered from it: both must agree.
    let cold = answers(&v);
    let warm = answers(&v);
    set_thread_verification_memo(false);
    assert_eq!(plain, cold);
    assert_eq!(plain, warm);
}

#[test]
fn memo_does_not_let_a_signature_move_to_other_bytes() {
    let (_, v) = verifier();
    set_thread_verification_memo(true);
    let good = KEYS.request(0, 1, b"ok");
    v.verify_request(good.clone()).expect("valid");
    // Same key and signature, different bytes: must not hit the cached "true".
    let mut moved = good.clone();
    moved.request.request_id = 2;
    let moved_result = v.verify_request(moved);
    // And a cached "false" must not stick to the valid original.
    let mut bad = good.clone();
    bad.signature.0[1] ^= 1;
    let bad_result = v.verify_request(bad);
    let again = v.verify_request(good);
    set_thread_verification_memo(false);
    assert_eq!(moved_result, Err(VerifyError::BadSignature("request")));
    assert_eq!(bad_result, Err(VerifyError::BadSignature("request")));
    assert!(again.is_ok());
}

/// A proposal's `view` is bounded by the view of the pre-prepare carrying it, so the
/// primary of view 0 cannot label its batch "view 5, proposed by r1" and have the block
/// header attribute it to a replica that never proposed it.
#[test]
fn pre_prepare_carrying_a_proposal_from_a_future_view() {
    let (_, v) = verifier();
    let p = proposal(1, 5, requests(1, 1));
    assert_eq!(p.proposer, ReplicaId(1));
    let msg = pre_prepare_msg(&p, 0, 0);
    assert!(v.verify_message(msg).is_err());
}

#[test]
fn request_content_must_match_its_signed_hashes() {
    let (_, v) = verifier();
    let content = b"diagnosis: asthma".to_vec();
    let request = Request {
        client: ClientId(0),
        request_id: 1,
        payload: b"add record".to_vec(),
        content_hashes: vec![Hash32::sha256(&content)],
    };
    let good = request
        .clone()
        .sign_with_content(&KEYS.client(0), vec![content]);
    accept(&v, PeerMessage::Request(good.clone()));
    // Stripped (stored, or erased) content still verifies: the hash is what is signed.
    accept(&v, PeerMessage::Request(good.stripped()));
    let mut swapped = good.clone();
    swapped.content = vec![b"diagnosis: none".to_vec()];
    assert_eq!(
        reject(&v, PeerMessage::Request(swapped)),
        VerifyError::Digest("request content")
    );
    let mut extra = good;
    extra.content.push(b"unsigned extra".to_vec());
    assert_eq!(
        reject(&v, PeerMessage::Request(extra)),
        VerifyError::Digest("request content")
    );
}

#[test]
fn one_bad_signature_anywhere_in_a_large_batch_rejects_the_proposal() {
    // Large batches are verified together (batch verification); the answer must be the
    // one-by-one answer wherever the bad signature sits.
    let (_, v) = verifier();
    let good: Vec<_> = (1..=40u64)
        .map(|i| KEYS.request((i % 2) as u16, i, b"record"))
        .collect();
    accept(&v, pre_prepare_msg(&proposal(1, 0, good.clone()), 0, 0));
    for bad_at in [0, 17, 39] {
        let mut batch = good.clone();
        batch[bad_at].signature.0[5] ^= 0x01;
        let msg = pre_prepare_msg(&proposal(1, 0, batch), 0, 0);
        assert_eq!(
            reject(&v, msg),
            VerifyError::BadSignature("request"),
            "bad at {bad_at}"
        );
    }
    // A signature valid for one client but presented as another's.
    let mut batch = good;
    batch[3].request.client.0 ^= 1;
    let msg = pre_prepare_msg(&proposal(1, 0, batch), 0, 0);
    assert_eq!(reject(&v, msg), VerifyError::BadSignature("request"));
}

#[test]
fn retransmitted_frames_skip_reverification_but_altered_ones_do_not() {
    let (_, v) = verifier();
    let seen = medchain_types::VerifiedFrames::new(2);
    let good = encode(&pre_prepare_msg(&proposal_1(), 0, 0));
    let first = v.decode_message_cached(&good, &seen).expect("valid");
    let again = v.decode_message_cached(&good, &seen).expect("cached");
    assert_eq!(first, again);
    // One flipped bit anywhere is a different frame: verified in full, and refused.
    let mut bad = encode(&PeerMessage::Request(KEYS.request(1, 9, b"x")));
    let last = bad.len() - 1;
    bad[last] ^= 1;
    for _ in 0..2 {
        assert!(v.decode_message_cached(&bad, &seen).is_err());
    }
    // Bounded: after two more frames the first is forgotten (and still verifies).
    for id in [10, 11] {
        let f = encode(&PeerMessage::Request(KEYS.request(1, id, b"y")));
        v.decode_message_cached(&f, &seen).expect("valid");
    }
    v.decode_message_cached(&good, &seen).expect("re-verified");
}

#[test]
fn a_gateway_signs_its_own_requests_only_with_the_registered_key() {
    let (_, v) = verifier();
    let request = |client: u16| Request {
        client: ClientId(client),
        request_id: 9,
        payload: b"batch".to_vec(),
        content_hashes: vec![Hash32::sha256(b"note")],
    };
    let ok = v
        .sign_request(request(1), vec![b"note".to_vec()], &KEYS.client(1))
        .expect("the client's own key");
    // What it made passes the full check too.
    assert!(v.verify_request(ok.into_inner()).is_ok());
    assert_eq!(
        v.sign_request(request(1), vec![b"note".to_vec()], &KEYS.client(0))
            .unwrap_err(),
        VerifyError::BadSignature("request"),
        "another client's key"
    );
    assert_eq!(
        v.sign_request(request(1), vec![b"other".to_vec()], &KEYS.client(1))
            .unwrap_err(),
        VerifyError::Digest("request content"),
        "limits and content are still checked"
    );
}
