//! The normal case of PBFT (Castro & Liskov, OSDI 1999, section 4.2): pre-prepare,
//! prepare and commit phases, batching, several sequence numbers in flight, at-most-once
//! execution, the 2f+1 commit quorum, and a backup's refusal of an equivocating primary.

mod common;

use common::*;
use medchain_pbft::Output;
use medchain_types::{ClientId, PeerMessage, ReplicaId};

/// Section 4.2: one request flows request -> PRE-PREPARE -> 2f PREPAREs -> 2f+1 COMMITs,
/// and every replica executes the same block at height 1 with a verifiable certificate
/// and replies exactly once.
#[test]
fn request_to_primary_commits_everywhere_with_a_valid_certificate() {
    let mut c = Cluster::new();
    let req = request(0, 1);
    let outs = c.client_request(0, req.clone());

    let pps = pre_prepares_in(&outs);
    assert_eq!(
        pps.len(),
        1,
        "the primary proposes at once (no batch delay)"
    );
    let (pp, proposal) = &pps[0];
    assert_eq!((pp.body.view, pp.body.seq), (0, 1));
    assert_eq!(pp.body.digest, proposal.digest());
    assert_eq!(proposal.requests, vec![req.clone()]);
    // The primary's pre-prepare stands for its prepare; it must not send one too.
    assert!(prepares_in(&outs).is_empty());

    c.run();

    let prepare_senders: Vec<ReplicaId> = (0..N)
        .flat_map(|i| prepares_in(&c.outputs_of(i)))
        .filter(|p| p.body.seq == 1 && p.body.digest == pp.body.digest)
        .map(|p| p.body.replica)
        .collect();
    assert_eq!(prepare_senders, vec![rid(1), rid(2), rid(3)]);
    let commit_senders: Vec<ReplicaId> = (0..N)
        .flat_map(|i| commits_in(&c.outputs_of(i)))
        .filter(|x| x.body.seq == 1 && x.body.digest == pp.body.digest)
        .map(|x| x.body.replica)
        .collect();
    assert_eq!(commit_senders.len(), N);

    let head = c.disks[0].chain[0].hash();
    for i in 0..N {
        assert_eq!(c.disks[i].chain.len(), 1, "replica {i} height");
        let block = &c.disks[i].chain[0];
        assert_eq!(block.hash(), head, "replica {i} agrees on block 1");
        assert_eq!(block.height(), 1);
        assert_eq!(block.header.prev_hash, c.genesis.hash());
        assert_eq!(block.requests, vec![req.clone()]);
        assert_eq!(block.certificate.proposal_digest, pp.body.digest);
        assert!(block.certificate.signatures.len() >= QUORUM);
        c.verifier
            .check_block(block)
            .expect("the commit certificate verifies");
        assert_eq!(c.replicas[i].last_executed(), 1);
        assert_eq!(c.replicas[i].last_hash(), head);

        let replies = c.replies_for(i, 0, 1);
        assert_eq!(replies.len(), 1, "replica {i} replies exactly once");
        assert_eq!(replies[0].replica, rid(i));
        assert_eq!(replies[0].height, 1);
        assert!(!replies[0].retransmission);
        assert_eq!(c.replicas[i].pending_requests(), 0);
    }
}

/// Section 4.1: a client may send its request to a backup, which relays it to the primary
/// (only the primary assigns sequence numbers).
#[test]
fn backup_forwards_a_client_request_to_the_primary() {
    let mut c = Cluster::new();
    let req = request(1, 7);
    let outs = c.client_request(2, req.clone());

    let forwarded: Vec<_> = outs
        .iter()
        .filter_map(|o| match o {
            Output::Send {
                to,
                message: PeerMessage::Request(r),
            } => Some((*to, r.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(forwarded, vec![(rid(0), req.clone())]);
    assert!(pre_prepares_in(&outs).is_empty(), "a backup never proposes");

    c.run();
    for i in 0..N {
        assert_eq!(c.disks[i].chain.len(), 1);
        assert_eq!(c.disks[i].chain[0].requests, vec![req.clone()]);
        assert_eq!(c.replies_for(i, 1, 7).len(), 1);
    }
}

/// Section 4.2 (batching, TOCS 5.1.4): a batch never exceeds the batch limit; with a
/// proposal in flight, a full batch is proposed at once and the remainder waits for the
/// batch delay.
#[test]
fn batches_respect_the_maximum_size() {
    let mut c = Cluster::with_config(|cfg| cfg.max_batch_delay_ms = 50);
    let reqs: Vec<_> = (1..=6).map(|id| request(0, id)).collect();
    let mut proposals = Vec::new();
    for r in &reqs {
        proposals.extend(pre_prepares_in(&c.client_request(0, r.clone())));
    }
    let sizes: Vec<usize> = proposals.iter().map(|(_, p)| p.requests.len()).collect();
    assert_eq!(
        sizes,
        vec![1, 4],
        "an idle primary proposes the first request at once; then only a full batch \
         goes out before the delay"
    );
    assert_eq!(proposals[1].1.requests, reqs[1..5].to_vec());

    c.run();
    // Executing both emptied the pipeline, so the sixth request went out as well.
    assert_eq!(c.heights(), vec![3; N]);
    for chain in c.chains() {
        let sizes: Vec<usize> = chain.iter().map(|b| b.requests.len()).collect();
        assert_eq!(sizes, vec![1, 4, 1]);
        assert!(chain
            .iter()
            .all(|b| b.requests.len() <= limits().max_batch_requests));
        assert_eq!(chain[2].requests, vec![reqs[5].clone()]);
    }
    for i in 0..N {
        for id in 1..=6 {
            assert_eq!(c.replies_for(i, 0, id).len(), 1);
        }
    }
}

/// Section 4.2 (batching): with a proposal in flight, a lone request waits up to the
/// batch delay for company, and no longer; an idle primary does not wait at all.
#[test]
fn batches_respect_the_maximum_delay() {
    let mut c = Cluster::with_config(|cfg| cfg.max_batch_delay_ms = 50);
    // Hold the commits, so the first proposal stays in flight.
    c.set_rule(|_, _, m| match m {
        PeerMessage::Commit(_) => Fate::Hold,
        _ => Fate::Deliver,
    });
    let first = pre_prepares_in(&c.client_request(0, request(0, 1)));
    assert_eq!(first.len(), 1, "an idle primary waited to fill a batch");
    c.run();
    let outs = c.client_request(0, request(0, 2));
    assert!(
        pre_prepares_in(&outs).is_empty(),
        "proposed before the delay while a proposal was in flight"
    );
    assert_eq!(c.replicas[0].next_deadline_ms(), 50);

    c.now = 49;
    assert!(pre_prepares_in(&c.tick(0)).is_empty(), "proposed at 49 ms");

    c.now = 50;
    let pps = pre_prepares_in(&c.tick(0));
    assert_eq!(pps.len(), 1, "not proposed when the delay ran out");
    assert_eq!(pps[0].1.requests.len(), 1);
    c.clear_rule();
    c.release_held();
    c.run();
    assert_eq!(c.heights(), vec![2; N]);
}

/// Section 4.2: the primary may have several sequence numbers in flight, and replicas
/// execute in sequence order even when a later one commits first.
#[test]
fn several_sequence_numbers_in_flight_execute_in_order() {
    let mut c = Cluster::new();
    // The commits of seq 1 are late, so seq 2 commits first.
    c.set_rule(|_, _, m| match m {
        PeerMessage::Commit(x) if x.body.seq == 1 => Fate::Hold,
        _ => Fate::Deliver,
    });
    let a = request(0, 1);
    let b = request(1, 1);
    let first = pre_prepares_in(&c.client_request(0, a.clone()));
    let second = pre_prepares_in(&c.client_request(0, b.clone()));
    assert_eq!(first.len(), 1);
    assert_eq!(second.len(), 1);
    assert_eq!(first[0].0.body.seq, 1);
    assert_eq!(
        second[0].0.body.seq, 2,
        "second proposal before the first commits"
    );

    c.run();
    assert_eq!(
        c.heights(),
        vec![0; N],
        "seq 2 must not execute before seq 1"
    );
    for i in 0..N {
        let commits_for_2 = c
            .sent_by(i)
            .iter()
            .filter(|(_, m)| matches!(m, PeerMessage::Commit(x) if x.body.seq == 2))
            .count();
        assert_eq!(commits_for_2, 1, "replica {i} prepared seq 2 meanwhile");
    }

    c.clear_rule();
    c.release_held();
    c.run();
    for chain in c.chains() {
        assert_eq!(chain.len(), 2);
        assert_eq!(chain[0].requests, vec![a.clone()]);
        assert_eq!(chain[1].requests, vec![b.clone()]);
    }
}

/// Section 4.1: requests are executed at most once, however often the client sends
/// them and whichever replicas it sends them to, before or after execution.
#[test]
fn duplicate_requests_execute_once() {
    let mut c = Cluster::new();
    let req = request(0, 1);
    // The client broadcasts (as after a timeout) and also repeats itself to the primary.
    c.client_request(0, req.clone());
    c.client_request(0, req.clone());
    for i in 1..N {
        c.client_request(i, req.clone());
    }
    c.run();
    for i in 0..N {
        assert_eq!(c.disks[i].chain.len(), 1);
        assert_eq!(c.disks[i].chain[0].requests, vec![req.clone()]);
        assert_eq!(c.replies_for(i, 0, 1).len(), 1);
    }

    // After execution: the same request again, and a different payload under the same id,
    // to the primary and to a backup.
    for r in [req.clone(), request_with(0, 1, b"a different payload")] {
        for to in [0, 2] {
            let outs = c.submit(to, r.clone());
            assert!(
                pre_prepares_in(&outs).is_empty(),
                "re-proposed an executed request"
            );
            assert!(messages(&outs).is_empty(), "relayed an executed request");
        }
    }
    c.advance_to(5_000);
    assert_eq!(c.heights(), vec![1; N], "a duplicate was executed");
    for i in 0..N {
        assert!(
            c.replies_for(i, 0, 1)
                .iter()
                .filter(|r| !r.retransmission)
                .count()
                == 1
        );
    }
}

/// Section 4.1: "If the client's request was already executed, replicas simply re-send
/// the reply": a client that lost its replies and retransmits its latest request must be
/// answered again (with the height it executed at), or it retries forever.
#[test]
fn retransmitted_executed_request_is_answered_again() {
    let mut c = Cluster::new();
    let req = request(0, 1);
    c.submit(0, req.clone());
    assert_eq!(c.heights(), vec![1; N]);

    for i in 0..N {
        let outs = c.client_request(i, req.clone());
        let again: Vec<_> = outs
            .iter()
            .filter_map(|o| match o {
                Output::Reply(r) => Some(r.clone()),
                _ => None,
            })
            .collect();
        assert_eq!(
            again.len(),
            1,
            "replica {i} did not answer the retransmission"
        );
        assert_eq!(
            (again[0].client, again[0].request_id, again[0].height),
            (ClientId(0), 1, 1)
        );
        assert!(again[0].retransmission);
    }
    c.run();
    assert_eq!(c.heights(), vec![1; N]);
}

/// Section 4.2: prepared(m, v, n, i) needs the pre-prepare and 2f matching prepares from
/// distinct backups (a backup's own prepare counts); only then does COMMIT go out.
#[test]
fn prepared_needs_the_pre_prepare_and_two_f_prepares() {
    let mut c = Cluster::new();
    let a = proposal(1, 0, 10, vec![request(0, 1)]);

    // A backup: its own prepare is one of the 2f.
    let outs = c.inject(1, pre_prepare_msg(0, &a));
    assert_eq!(prepares_in(&outs).len(), 1);
    assert!(commits_in(&outs).is_empty(), "prepared with 1 prepare");
    let outs = c.inject(1, PeerMessage::Prepare(prepare(0, 1, a.digest(), 2)));
    assert_eq!(commits_in(&outs).len(), 1);

    // Prepares before the pre-prepare are kept, but do not prepare anything by themselves.
    let outs = c.inject(2, PeerMessage::Prepare(prepare(0, 1, a.digest(), 1)));
    let outs2 = c.inject(2, PeerMessage::Prepare(prepare(0, 1, a.digest(), 3)));
    assert!(commits_in(&outs).is_empty() && commits_in(&outs2).is_empty());
    let outs = c.inject(2, pre_prepare_msg(0, &a));
    assert_eq!(commits_in(&outs).len(), 1);

    // The primary sends no prepare; it needs 2f prepares from backups.
    let mut c = Cluster::new();
    let pps = pre_prepares_in(&c.client_request(0, request(0, 1)));
    let d = pps[0].0.body.digest;
    let outs = c.inject(0, PeerMessage::Prepare(prepare(0, 1, d, 1)));
    assert!(
        commits_in(&outs).is_empty(),
        "primary prepared with 1 prepare"
    );
    let outs = c.inject(0, PeerMessage::Prepare(prepare(0, 1, d, 2)));
    assert_eq!(commits_in(&outs).len(), 1);
}

/// Section 4.2: committed-local needs 2f+1 matching commits; with only 2f a replica must
/// wait (one replica is down and another's commits are late).
#[test]
fn two_f_commits_are_not_enough() {
    let mut c = Cluster::new();
    c.isolate(3);
    c.set_rule(|from, _, m| match m {
        PeerMessage::Commit(_) if from == rid(2) => Fate::Hold,
        _ => Fate::Deliver,
    });
    c.submit(0, request(0, 1));

    // Replicas 0 and 1 hold their own commit and each other's: 2f.
    assert_eq!(c.disks[0].chain.len(), 0);
    assert_eq!(c.disks[1].chain.len(), 0);
    // Replica 2 holds commits from 0, 1 and itself: 2f+1, the quorum.
    assert_eq!(c.disks[2].chain.len(), 1);
    assert!(!c.held.is_empty());

    c.clear_rule();
    c.release_held();
    c.run();
    assert_eq!(c.disks[0].chain.len(), 1);
    assert_eq!(c.disks[1].chain.len(), 1);
    assert_eq!(c.disks[0].chain[0].hash(), c.disks[2].chain[0].hash());
    assert_eq!(c.disks[0].chain[0].certificate.signatures.len(), QUORUM);
}

/// Section 4.2: a backup accepts a pre-prepare only if it has not accepted a different
/// one for the same view and sequence number, so an equivocating primary gets no second
/// prepare.
#[test]
fn backup_refuses_an_equivocating_pre_prepare() {
    let mut c = Cluster::new();
    let a = proposal(1, 0, 10, vec![request(0, 1)]);
    let b = proposal(1, 0, 10, vec![request(1, 1)]);
    assert_ne!(a.digest(), b.digest());

    let first = c.inject(1, pre_prepare_msg(0, &a));
    let p = prepares_in(&first);
    assert_eq!(p.len(), 1);
    assert_eq!((p[0].body.view, p[0].body.seq), (0, 1));
    assert_eq!(p[0].body.digest, a.digest());

    let second = c.inject(1, pre_prepare_msg(0, &b));
    assert!(prepares_in(&second).is_empty(), "prepared for both batches");
    assert!(
        persisted_in(&second).is_empty(),
        "logged the conflicting batch"
    );
    let slot = &c.disks[1].durable.slots[&1];
    assert_eq!(
        slot.pre_prepare.as_ref().map(|(pp, _)| pp.body.digest),
        Some(a.digest())
    );

    // A prepare for the other batch does not count towards the accepted one; a matching
    // one completes the 2f and the backup commits to the batch it accepted first.
    let outs = c.inject(1, PeerMessage::Prepare(prepare(0, 1, b.digest(), 2)));
    assert!(commits_in(&outs).is_empty());
    let outs = c.inject(1, PeerMessage::Prepare(prepare(0, 1, a.digest(), 3)));
    let cm = commits_in(&outs);
    assert_eq!(cm.len(), 1);
    assert_eq!(cm[0].body.digest, a.digest());
}
