//! Checkpoints, garbage collection and the watermark window (Castro & Liskov, OSDI 1999,
//! section 4.3): every K blocks a CHECKPOINT, stability at 2f+1 matching ones, the
//! durable log trimmed below it, and sequence numbers confined to (h, h + L].

mod common;

use common::*;
use medchain_pbft::DurableRecord;
use medchain_types::{Checkpoint, PeerMessage, Signed};

const K: u64 = 4;
const L: u64 = 16;

/// Commit `count` single-request blocks through the primary.
fn commit_blocks(c: &mut Cluster, count: u64) {
    let start = c.disks[0].chain.len() as u64;
    for id in 1..=count {
        c.submit(0, request(0, start + id));
    }
}

fn checkpoints_sent(c: &Cluster, i: usize) -> Vec<Signed<Checkpoint>> {
    c.sent_by(i)
        .into_iter()
        .filter_map(|(_, m)| match m {
            PeerMessage::Checkpoint(x) => Some(x.clone()),
            _ => None,
        })
        .collect()
}

/// Section 4.3: after executing the request at a multiple of K a replica multicasts a
/// CHECKPOINT naming that state (here the block hash); with 2f+1 matching ones it is
/// stable, proven, persisted, and the log at or below it is discarded.
#[test]
fn checkpoint_every_k_blocks_becomes_stable_with_a_quorum() {
    let mut c = Cluster::new();
    commit_blocks(&mut c, K - 1);
    for i in 0..N {
        assert!(
            checkpoints_sent(&c, i).is_empty(),
            "checkpoint before K blocks"
        );
        assert_eq!(c.replicas[i].stable_seq(), 0);
    }

    commit_blocks(&mut c, 1);
    for i in 0..N {
        let cps = checkpoints_sent(&c, i);
        assert_eq!(cps.len(), 1, "replica {i}");
        assert_eq!(cps[0].body.seq, K);
        assert_eq!(cps[0].body.digest, c.disks[i].chain[K as usize - 1].hash());
        assert_eq!(cps[0].body.replica, rid(i));

        assert_eq!(c.replicas[i].stable_seq(), K);
        let stable: Vec<_> = persisted_in(&c.outputs_of(i))
            .into_iter()
            .filter_map(|r| match r {
                DurableRecord::StableCheckpoint { seq, digest, proof } => {
                    Some((seq, digest, proof))
                }
                _ => None,
            })
            .collect();
        assert_eq!(
            stable.len(),
            1,
            "replica {i} persisted one stable checkpoint"
        );
        let (seq, digest, proof) = &stable[0];
        assert_eq!(
            (*seq, *digest),
            (K, c.disks[i].chain[K as usize - 1].hash())
        );
        c.verifier
            .check_checkpoint_proof(proof, *seq, digest)
            .expect("the stable checkpoint carries a valid 2f+1 proof");

        assert_eq!(c.disks[i].durable.stable_seq, K);
        assert!(
            c.disks[i].durable.slots.keys().all(|s| *s > K),
            "replica {i} kept durable slots at or below the stable checkpoint"
        );
    }

    // Slots above the checkpoint survive garbage collection.
    commit_blocks(&mut c, 1);
    for i in 0..N {
        assert_eq!(
            c.disks[i].durable.slots.keys().copied().collect::<Vec<_>>(),
            [K + 1]
        );
    }
}

/// Section 4.3: a checkpoint is stable only with 2f+1 matching messages; 2f (here the
/// replica's own and one other) do not move the low watermark.
#[test]
fn two_f_checkpoints_are_not_enough() {
    let mut c = Cluster::new();
    c.set_rule(|from, _, m| match m {
        PeerMessage::Checkpoint(_) if from == rid(2) || from == rid(3) => Fate::Hold,
        _ => Fate::Deliver,
    });
    commit_blocks(&mut c, K);
    assert_eq!(c.heights(), vec![K; N]);
    // Replicas 0 and 1 have checkpoints from 0 and 1 only.
    assert_eq!(c.replicas[0].stable_seq(), 0);
    assert_eq!(c.replicas[1].stable_seq(), 0);
    assert_eq!(c.disks[0].durable.stable_seq, 0);
    // Replicas 2 and 3 have their own and those of 0 and 1: 2f+1.
    assert_eq!(c.replicas[2].stable_seq(), K);
    assert_eq!(c.replicas[3].stable_seq(), K);

    c.clear_rule();
    c.release_held();
    c.run();
    for i in 0..N {
        assert_eq!(c.replicas[i].stable_seq(), K, "replica {i}");
    }
}

/// Section 4.3: a backup accepts a pre-prepare only if its sequence number lies between
/// the low watermark h and the high watermark h + L.
#[test]
fn pre_prepares_above_the_high_watermark_are_ignored() {
    let mut c = Cluster::new();
    let beyond = proposal(L + 1, 0, 1, vec![request(0, 1)]);
    let outs = c.inject(1, pre_prepare_msg(0, &beyond));
    assert!(prepares_in(&outs).is_empty(), "prepared above h + L");
    assert!(persisted_in(&outs).is_empty());

    let edge = proposal(L, 0, 1, vec![request(0, 2)]);
    let outs = c.inject(1, pre_prepare_msg(0, &edge));
    let p = prepares_in(&outs);
    assert_eq!(p.len(), 1, "h + L itself is inside the window");
    assert_eq!(p[0].body.seq, L);
}

/// Section 4.3: when the checkpoint at K becomes stable the window moves to (K, K + L].
#[test]
fn a_stable_checkpoint_moves_the_window() {
    let mut c = Cluster::new();
    commit_blocks(&mut c, K);
    assert_eq!(c.replicas[1].stable_seq(), K);

    let old = proposal(K, 0, 1, vec![request(1, 1)]);
    let outs = c.inject(1, pre_prepare_msg(0, &old));
    assert!(prepares_in(&outs).is_empty(), "prepared at or below h");

    let beyond = proposal(K + L + 1, 0, 1, vec![request(1, 2)]);
    let outs = c.inject(1, pre_prepare_msg(0, &beyond));
    assert!(
        prepares_in(&outs).is_empty(),
        "prepared above the new h + L"
    );

    let edge = proposal(K + L, 0, 1, vec![request(1, 3)]);
    let outs = c.inject(1, pre_prepare_msg(0, &edge));
    assert_eq!(
        prepares_in(&outs).len(),
        1,
        "K + L is inside the moved window"
    );
}

/// Section 4.3: the primary does not assign sequence numbers above h + L, and resumes
/// once a new stable checkpoint moves the window.
#[test]
fn primary_stops_at_the_high_watermark_until_a_checkpoint_is_stable() {
    let mut c = Cluster::with_config(|cfg| cfg.max_in_flight = 64);
    // Nothing executes while commits are held, so no checkpoint can become stable.
    c.set_rule(|_, _, m| match m {
        PeerMessage::Commit(_) => Fate::Hold,
        _ => Fate::Deliver,
    });
    let mut proposed = Vec::new();
    for id in 1..=L + 5 {
        proposed.extend(pre_prepares_in(&c.submit(0, request(0, id))));
    }
    let seqs: Vec<u64> = proposed.iter().map(|(pp, _)| pp.body.seq).collect();
    assert_eq!(seqs, (1..=L).collect::<Vec<_>>());
    assert_eq!(c.heights(), vec![0; N]);

    c.clear_rule();
    c.release_held();
    c.run();
    for i in 0..N {
        assert_eq!(c.replicas[i].stable_seq(), L, "replica {i}");
        // The five requests that piled up go out as a full batch and the rest.
        let tail: Vec<usize> = c.disks[i].chain[L as usize..]
            .iter()
            .map(|b| b.requests.len())
            .collect();
        assert_eq!(tail, vec![4, 1], "replica {i}");
        let executed: usize = c.disks[i].chain.iter().map(|b| b.requests.len()).sum();
        assert_eq!(executed as u64, L + 5);
    }
}

/// Section 4.3 with lossy links (TOCS 2002, section 5.2: replicas retransmit what peers
/// miss): a checkpoint whose messages were lost must still become stable once the network
/// heals, or a primary at the high watermark can never propose again.
#[test]
fn lost_checkpoint_messages_are_recovered() {
    let mut c = Cluster::with_config(|cfg| {
        cfg.max_in_flight = 64;
        cfg.resend_interval_ms = 200;
        cfg.status_interval_ms = 100;
    });
    c.set_rule(|_, _, m| match m {
        PeerMessage::Checkpoint(_) => Fate::Drop,
        _ => Fate::Deliver,
    });
    commit_blocks(&mut c, L);
    assert_eq!(c.heights(), vec![L; N]);
    assert!((0..N).all(|i| c.replicas[i].stable_seq() == 0));

    // The network heals; a client broadcasts a new request.
    c.clear_rule();
    let req = request(1, 1);
    for i in 0..N {
        c.client_request(i, req.clone());
    }
    c.advance_to(10_000);
    for i in 0..N {
        let r = &c.replicas[i];
        assert_eq!(
            r.stable_seq(),
            L,
            "replica {i} never made {L} stable (now in view {} {:?})",
            r.view(),
            r.mode()
        );
        assert_eq!(c.disks[i].chain.len() as u64, L + 1, "replica {i} is stuck");
    }
}
