//! Property tests of the canonical codec: every value has exactly one encoding, and
//! `decode` turns any hostile input (trailing bytes, oversize input, lying length
//! prefixes, truncation, non-canonical booleans, unknown tags) into an error rather than
//! a panic, a huge allocation or a second accepted encoding.

use medchain_types::block::CommitCertificate;
use medchain_types::{
    decode, encode, BlockHeader, Checkpoint, ClientId, CodecError, Commit, CommittedBlock,
    FetchBlocks, Hash32, NewView, PeerMessage, PrePrepare, Prepare, PreparedProof, Proposal,
    ReplicaId, Request, Signature, Signed, SignedRequest, Status, ViewChange,
};
use proptest::collection::vec;
use proptest::prelude::*;

/// Generous enough for any value the strategies build.
const MAX: usize = 1 << 20;

fn hash() -> impl Strategy<Value = Hash32> {
    prop::array::uniform32(any::<u8>()).prop_map(Hash32)
}

fn signature() -> impl Strategy<Value = Signature> {
    (
        prop::array::uniform32(any::<u8>()),
        prop::array::uniform32(any::<u8>()),
    )
        .prop_map(|(a, b)| {
            let mut s = [0u8; 64];
            s[..32].copy_from_slice(&a);
            s[32..].copy_from_slice(&b);
            Signature(s)
        })
}

fn replica() -> impl Strategy<Value = ReplicaId> {
    any::<u16>().prop_map(ReplicaId)
}

fn request() -> impl Strategy<Value = Request> {
    (any::<u16>(), any::<u64>(), vec(any::<u8>(), 0..96)).prop_map(
        |(client, request_id, payload)| Request {
            client: ClientId(client),
            request_id,
            payload,
            content_hashes: Vec::new(),
        },
    )
}

fn signed_request() -> impl Strategy<Value = SignedRequest> {
    (request(), signature()).prop_map(|(request, signature)| SignedRequest {
        request,
        signature,
        content: Vec::new(),
    })
}

fn proposal() -> impl Strategy<Value = Proposal> {
    (
        any::<u64>(),
        any::<u64>(),
        replica(),
        any::<u64>(),
        vec(signed_request(), 0..4),
    )
        .prop_map(
            |(height, view, proposer, timestamp_ms, requests)| Proposal {
                height,
                view,
                proposer,
                timestamp_ms,
                requests,
            },
        )
}

fn signed<T: std::fmt::Debug>(body: impl Strategy<Value = T>) -> impl Strategy<Value = Signed<T>> {
    (body, signature()).prop_map(|(body, signature)| Signed { body, signature })
}

/// (view, seq, digest, replica), the shape shared by the three normal-case votes.
fn vote_fields() -> impl Strategy<Value = (u64, u64, Hash32, ReplicaId)> {
    (any::<u64>(), any::<u64>(), hash(), replica())
}

fn pre_prepare() -> impl Strategy<Value = Signed<PrePrepare>> {
    signed(
        vote_fields().prop_map(|(view, seq, digest, replica)| PrePrepare {
            view,
            seq,
            digest,
            replica,
        }),
    )
}

fn prepare() -> impl Strategy<Value = Signed<Prepare>> {
    signed(
        vote_fields().prop_map(|(view, seq, digest, replica)| Prepare {
            view,
            seq,
            digest,
            replica,
        }),
    )
}

fn commit() -> impl Strategy<Value = Signed<Commit>> {
    signed(
        vote_fields().prop_map(|(view, seq, digest, replica)| Commit {
            view,
            seq,
            digest,
            replica,
        }),
    )
}

fn checkpoint() -> impl Strategy<Value = Signed<Checkpoint>> {
    signed(
        (any::<u64>(), hash(), replica()).prop_map(|(seq, digest, replica)| Checkpoint {
            seq,
            digest,
            replica,
        }),
    )
}

fn status() -> impl Strategy<Value = Signed<Status>> {
    signed(
        (
            any::<u64>(),
            any::<bool>(),
            any::<u64>(),
            any::<u64>(),
            replica(),
        )
            .prop_map(
                |(view, in_view_change, last_executed, stable_seq, replica)| Status {
                    view,
                    in_view_change,
                    last_executed,
                    stable_seq,
                    replica,
                },
            ),
    )
}

fn fetch_blocks() -> impl Strategy<Value = Signed<FetchBlocks>> {
    signed((any::<u64>(), any::<u32>(), replica()).prop_map(
        |(from_height, max_blocks, replica)| FetchBlocks {
            from_height,
            max_blocks,
            replica,
        },
    ))
}

fn view_change() -> impl Strategy<Value = Signed<ViewChange>> {
    let proof =
        (pre_prepare(), vec(prepare(), 0..3)).prop_map(|(pre_prepare, prepares)| PreparedProof {
            pre_prepare,
            prepares,
        });
    signed(
        (
            any::<u64>(),
            any::<u64>(),
            hash(),
            vec(checkpoint(), 0..3),
            vec(proof, 0..2),
            replica(),
        )
            .prop_map(
                |(new_view, stable_seq, stable_digest, checkpoint_proof, prepared, replica)| {
                    ViewChange {
                        new_view,
                        stable_seq,
                        stable_digest,
                        checkpoint_proof,
                        prepared,
                        replica,
                    }
                },
            ),
    )
}

fn committed_block() -> impl Strategy<Value = CommittedBlock> {
    let header = (
        any::<u64>(),
        any::<u64>(),
        hash(),
        hash(),
        replica(),
        any::<u64>(),
    )
        .prop_map(
            |(height, view, prev_hash, tx_root, proposer, timestamp_ms)| BlockHeader {
                height,
                view,
                prev_hash,
                tx_root,
                proposer,
                timestamp_ms,
            },
        );
    let certificate = (
        any::<u64>(),
        any::<u64>(),
        hash(),
        vec((replica(), signature()), 0..4),
    )
        .prop_map(
            |(view, height, proposal_digest, signatures)| CommitCertificate {
                view,
                height,
                proposal_digest,
                signatures,
            },
        );
    (header, vec(signed_request(), 0..3), certificate).prop_map(
        |(header, requests, certificate)| CommittedBlock {
            header,
            requests,
            certificate,
        },
    )
}

fn peer_message() -> impl Strategy<Value = PeerMessage> {
    prop_oneof![
        signed_request().prop_map(PeerMessage::Request),
        (pre_prepare(), proposal()).prop_map(|(pre_prepare, proposal)| {
            PeerMessage::PrePrepare {
                pre_prepare,
                proposal,
            }
        }),
        prepare().prop_map(PeerMessage::Prepare),
        commit().prop_map(PeerMessage::Commit),
        checkpoint().prop_map(PeerMessage::Checkpoint),
        (view_change(), vec(proposal(), 0..2)).prop_map(|(view_change, proposals)| {
            PeerMessage::ViewChange {
                view_change,
                proposals,
            }
        }),
        (
            any::<u64>(),
            vec(view_change(), 0..2),
            vec(pre_prepare(), 0..2),
            replica(),
            signature(),
            vec(proposal(), 0..2),
        )
            .prop_map(
                |(view, view_changes, pre_prepares, replica, signature, proposals)| {
                    PeerMessage::NewView {
                        new_view: Signed {
                            body: NewView {
                                view,
                                view_changes,
                                pre_prepares,
                                replica,
                            },
                            signature,
                        },
                        proposals,
                    }
                }
            ),
        status().prop_map(PeerMessage::Status),
        fetch_blocks().prop_map(PeerMessage::FetchBlocks),
        vec(committed_block(), 0..3).prop_map(PeerMessage::Blocks),
    ]
}

/// Decoding must give back the value, and re-encoding must give back the same bytes
/// (one encoding per value).
fn assert_round_trip<T>(value: &T) -> Result<(), TestCaseError>
where
    T: borsh::BorshSerialize + borsh::BorshDeserialize + PartialEq + std::fmt::Debug,
{
    let bytes = encode(value);
    let back: T = decode(&bytes, MAX).map_err(|e| TestCaseError::fail(e.to_string()))?;
    prop_assert_eq!(&back, value);
    prop_assert_eq!(encode(&back), bytes);
    Ok(())
}

proptest! {
    #[test]
    fn request_round_trips(r in request()) {
        assert_round_trip(&r)?;
    }

    #[test]
    fn signed_request_round_trips(r in signed_request()) {
        assert_round_trip(&r)?;
    }

    #[test]
    fn proposal_round_trips(p in proposal()) {
        assert_round_trip(&p)?;
        // The digest depends only on the encoding, so it survives the round trip.
        let back: Proposal = decode(&encode(&p), MAX).expect("round trip");
        prop_assert_eq!(back.digest(), p.digest());
    }

    #[test]
    fn peer_message_round_trips(m in peer_message()) {
        assert_round_trip(&m)?;
    }

    #[test]
    fn trailing_bytes_are_rejected(m in peer_message(), extra in vec(any::<u8>(), 1..32)) {
        let mut bytes = encode(&m);
        bytes.extend_from_slice(&extra);
        prop_assert_eq!(
            decode::<PeerMessage>(&bytes, MAX),
            Err(CodecError::TrailingBytes(extra.len()))
        );
    }

    #[test]
    fn inputs_over_max_len_are_rejected(m in peer_message(), short_by in 1usize..64) {
        let bytes = encode(&m);
        let max = bytes.len().saturating_sub(short_by);
        prop_assert_eq!(
            decode::<PeerMessage>(&bytes, max),
            Err(CodecError::TooLarge { len: bytes.len(), max })
        );
        // Exactly at the limit is fine.
        prop_assert_eq!(decode::<PeerMessage>(&bytes, bytes.len()), Ok(m));
    }

    #[test]
    fn every_strict_prefix_is_rejected(m in peer_message()) {
        let bytes = encode(&m);
        for cut in 0..bytes.len() {
            prop_assert!(
                decode::<PeerMessage>(&bytes[..cut], MAX).is_err(),
                "prefix of {} of {} bytes decoded", cut, bytes.len()
            );
        }
    }

    #[test]
    fn every_strict_prefix_of_a_request_is_rejected(r in signed_request()) {
        let bytes = encode(&r);
        for cut in 0..bytes.len() {
            prop_assert!(decode::<SignedRequest>(&bytes[..cut], MAX).is_err());
        }
    }

    #[test]
    fn huge_payload_length_prefix_is_an_error(r in request(), claim in any::<u32>()) {
        let mut bytes = encode(&r);
        // client (2) + request_id (8), then the u32 payload length.
        prop_assert_eq!(&bytes[10..14], &(r.payload.len() as u32).to_le_bytes()[..]);
        let remaining = (bytes.len() - 14) as u64;
        let claim = if u64::from(claim) <= remaining { u32::MAX } else { claim };
        bytes[10..14].copy_from_slice(&claim.to_le_bytes());
        prop_assert!(matches!(decode::<Request>(&bytes, MAX), Err(CodecError::Malformed(_))));
    }

    #[test]
    fn non_canonical_bool_is_rejected(s in status(), b in 2u8..=255) {
        let mut bytes = encode(&s);
        // Status.view (8 bytes), then in_view_change.
        prop_assert!(bytes[8] <= 1);
        bytes[8] = b;
        prop_assert!(matches!(
            decode::<Signed<Status>>(&bytes, MAX),
            Err(CodecError::Malformed(_))
        ));
        // Same inside the envelope, after the one-byte variant tag.
        let mut msg = encode(&PeerMessage::Status(s));
        prop_assert_eq!(msg[0], 7);
        msg[9] = b;
        prop_assert!(matches!(decode::<PeerMessage>(&msg, MAX), Err(CodecError::Malformed(_))));
    }

    #[test]
    fn unknown_variant_tag_is_rejected(m in peer_message(), tag in 10u8..=255) {
        let mut bytes = encode(&m);
        bytes[0] = tag;
        prop_assert!(matches!(decode::<PeerMessage>(&bytes, MAX), Err(CodecError::Malformed(_))));
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in vec(any::<u8>(), 0..512)) {
        // Either outcome is fine; what matters is that decode returns at all, and that
        // anything accepted is the one canonical encoding of what it decoded to.
        if let Ok(m) = decode::<PeerMessage>(&bytes, MAX) {
            prop_assert_eq!(encode(&m), bytes);
        }
    }
}

/// The exact case from the codec's promise: a valid request whose payload length prefix
/// is overwritten with 0xFFFFFFFF (4 GiB) must fail cleanly, not allocate 4 GiB.
#[test]
fn request_payload_length_ffffffff() {
    let r = Request {
        client: ClientId(1),
        request_id: 99,
        payload: b"lab result".to_vec(),
        content_hashes: Vec::new(),
    };
    let mut bytes = encode(&r);
    bytes[10..14].copy_from_slice(&[0xFF; 4]);
    assert!(matches!(
        decode::<Request>(&bytes, MAX),
        Err(CodecError::Malformed(_))
    ));
}

/// Same for a vector of structs (a different borsh code path from `Vec<u8>`).
#[test]
fn request_count_ffffffff_in_proposal_and_blocks() {
    let p = Proposal {
        height: 1,
        view: 0,
        proposer: ReplicaId(0),
        timestamp_ms: 5,
        requests: vec![],
    };
    let mut bytes = encode(&p);
    // height (8) + view (8) + proposer (2) + timestamp (8), then the u32 count.
    assert_eq!(bytes.len(), 30);
    bytes[26..30].copy_from_slice(&[0xFF; 4]);
    assert!(matches!(
        decode::<Proposal>(&bytes, MAX),
        Err(CodecError::Malformed(_))
    ));

    let mut msg = encode(&PeerMessage::Blocks(vec![]));
    assert_eq!(msg, [9, 0, 0, 0, 0]);
    msg[1..5].copy_from_slice(&[0xFF; 4]);
    assert!(matches!(
        decode::<PeerMessage>(&msg, MAX),
        Err(CodecError::Malformed(_))
    ));
}

#[test]
fn empty_input_is_rejected() {
    assert!(matches!(
        decode::<PeerMessage>(&[], MAX),
        Err(CodecError::Malformed(_))
    ));
}
