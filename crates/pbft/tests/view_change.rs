//! View changes (Castro & Liskov, OSDI 1999, section 4.4; TOCS 2002, section 4.5.2 for
//! the liveness rules): the O set a NEW-VIEW must carry, replacing a silent primary,
//! carrying prepared requests into the next view, rejecting a forged O set, and the
//! doubling view-change timeout.

mod common;

use common::*;
use medchain_pbft::view_change::{compute_o, OEntry};
use medchain_pbft::{Mode, Output};
use medchain_types::{Hash32, NewView, PeerMessage, Proposal, Signed, ViewChange};

/// View changes that pass the verifier, so `compute_o` sees only what a replica can see.
fn checked(vcs: Vec<(Signed<ViewChange>, Vec<Proposal>)>) -> Vec<Signed<ViewChange>> {
    let v = verifier();
    vcs.into_iter()
        .map(|(view_change, proposals)| {
            v.verify_message(PeerMessage::ViewChange {
                view_change: view_change.clone(),
                proposals,
            })
            .expect("test view changes are valid");
            view_change
        })
        .collect()
}

/// Section 4.4: with no prepared certificates there is nothing to re-propose: O is empty
/// and starts above the stable checkpoint.
#[test]
fn compute_o_with_empty_p_sets_is_empty() {
    let vcs = checked((0..3).map(|i| view_change(i, 1, None, &[])).collect());
    let o = compute_o(&vcs);
    assert_eq!(o.min_s, 0);
    assert_eq!(o.stable_digest, genesis().hash());
    assert!(o.stable_proof.is_empty());
    assert!(o.entries.is_empty());

    let d4 = Hash32::sha256(b"state at 4");
    let vcs = checked(vec![
        view_change(0, 1, None, &[]),
        view_change(1, 1, Some((4, d4)), &[]),
        view_change(2, 1, None, &[]),
    ]);
    let o = compute_o(&vcs);
    assert_eq!((o.min_s, o.stable_digest), (4, d4));
    assert!(o.entries.is_empty());
}

/// Section 4.4: "if there is no set in P with sequence number n", the new primary puts a
/// null request at n, so that every number between min-s and max-s is filled.
#[test]
fn compute_o_fills_a_gap_with_a_null_entry() {
    let p1 = proposal(1, 0, 11, vec![request(0, 1)]);
    let p3 = proposal(3, 0, 33, vec![request(0, 3)]);
    let vcs = checked(vec![
        view_change(0, 1, None, &[(0, p1.clone()), (0, p3.clone())]),
        view_change(1, 1, None, &[(0, p1.clone())]),
        view_change(2, 1, None, &[]),
    ]);
    let o = compute_o(&vcs);
    assert_eq!(o.min_s, 0);
    assert_eq!(
        o.entries,
        vec![
            OEntry {
                seq: 1,
                prepared: Some((p1.digest(), 0, 0)),
            },
            OEntry {
                seq: 2,
                prepared: None,
            },
            OEntry {
                seq: 3,
                prepared: Some((p3.digest(), 0, 1)),
            },
        ]
    );
}

/// Section 4.4: when several certificates name the same sequence number, O takes the one
/// prepared in the highest view, whichever view change it comes in.
#[test]
fn compute_o_prefers_the_certificate_of_the_higher_view() {
    let old = proposal(1, 0, 10, vec![request(0, 1)]);
    let new = proposal(1, 1, 20, vec![request(1, 1)]);
    assert_ne!(old.digest(), new.digest());
    let low = view_change(2, 2, None, &[(0, old.clone())]);
    let high = view_change(3, 2, None, &[(1, new.clone())]);
    let none = view_change(0, 2, None, &[]);

    let o = compute_o(&checked(vec![low.clone(), high.clone(), none.clone()]));
    assert_eq!(o.entries.len(), 1);
    assert_eq!(o.entries[0].prepared, Some((new.digest(), 1, 0)));

    let o = compute_o(&checked(vec![high, none, low]));
    assert_eq!(o.entries[0].prepared, Some((new.digest(), 0, 0)));
}

/// Section 4.4: min-s is the sequence number of the latest stable checkpoint in the view
/// changes; certificates at or below it are not re-proposed, and O starts right above.
#[test]
fn compute_o_starts_at_the_highest_stable_checkpoint() {
    let d4 = Hash32::sha256(b"state at 4");
    let p3 = proposal(3, 0, 3, vec![request(0, 3)]);
    let p6 = proposal(6, 0, 6, vec![request(0, 6)]);
    let vcs = checked(vec![
        view_change(0, 1, None, &[(0, p3), (0, p6.clone())]),
        view_change(1, 1, Some((4, d4)), &[]),
        view_change(2, 1, None, &[]),
    ]);
    let o = compute_o(&vcs);
    assert_eq!(o.min_s, 4);
    assert_eq!(o.stable_digest, d4);
    assert_eq!(o.stable_proof, checkpoint_proof(4, d4));
    verifier()
        .check_checkpoint_proof(&o.stable_proof, o.min_s, &o.stable_digest)
        .expect("O carries the proof of its checkpoint");
    assert_eq!(
        o.entries,
        vec![
            OEntry {
                seq: 5,
                prepared: None,
            },
            OEntry {
                seq: 6,
                prepared: Some((p6.digest(), 0, 1)),
            },
        ]
    );
}

fn view_changes_sent(c: &Cluster, i: usize, view: u64) -> Vec<Signed<ViewChange>> {
    c.sent_by(i)
        .into_iter()
        .filter_map(|(_, m)| match m {
            PeerMessage::ViewChange { view_change, .. } if view_change.body.new_view == view => {
                Some(view_change.clone())
            }
            _ => None,
        })
        .collect()
}

fn new_views_sent(c: &Cluster, i: usize) -> Vec<(Signed<NewView>, Vec<Proposal>)> {
    c.sent_by(i)
        .into_iter()
        .filter_map(|(_, m)| match m {
            PeerMessage::NewView {
                new_view,
                proposals,
            } => Some((new_view.clone(), proposals.clone())),
            _ => None,
        })
        .collect()
}

/// Section 4.4: backups whose request waits longer than the timeout suspect the primary,
/// move to view 1 with VIEW-CHANGE, the new primary (replica 1) sends NEW-VIEW, and the
/// request commits in view 1 without the old primary.
#[test]
fn silent_primary_is_replaced_and_the_request_commits() {
    let mut c = Cluster::new();
    c.isolate(0);
    let req = request(0, 1);
    for i in 1..N {
        c.client_request(i, req.clone());
    }
    c.advance_to(999);
    for i in 1..N {
        assert_eq!(c.replicas[i].view(), 0, "replica {i} gave up early");
        assert!(view_changes_sent(&c, i, 1).is_empty());
    }

    c.advance_to(1_000);
    for i in 1..N {
        assert_eq!(c.view_change_started(i, 1), Some(1_000), "replica {i}");
        assert_eq!(view_changes_sent(&c, i, 1).len(), 1, "replica {i}");
    }
    let nvs = new_views_sent(&c, 1);
    assert_eq!(nvs.len(), 1);
    assert_eq!(nvs[0].0.body.view, 1);
    assert!(nvs[0].0.body.view_changes.len() >= QUORUM);
    assert!(new_views_sent(&c, 2).is_empty() && new_views_sent(&c, 3).is_empty());

    for i in 1..N {
        assert_eq!(c.installed(i), vec![(1_000, 1)], "replica {i}");
        assert_eq!(
            (c.replicas[i].view(), c.replicas[i].mode()),
            (1, Mode::Normal)
        );
        assert_eq!(c.disks[i].chain.len(), 1, "replica {i}");
        let block = &c.disks[i].chain[0];
        assert_eq!(block.requests, vec![req.clone()]);
        assert_eq!(block.certificate.view, 1);
        assert_eq!(block.header.proposer, rid(1));
        c.verifier.check_block(block).expect("valid certificate");
        assert_eq!(c.replies_for(i, 0, 1).len(), 1);
    }
    assert_eq!(c.replicas[0].view(), 0);
    assert!(c.installed(0).is_empty());
}

/// Set up a request prepared everywhere in view 0 but committed nowhere, then silence
/// the primary. Returns the cluster, the request and the digest prepared in view 0.
fn prepared_but_not_committed() -> (Cluster, medchain_types::SignedRequest, Hash32) {
    let mut c = Cluster::new();
    c.set_rule(|_, _, m| match m {
        PeerMessage::Commit(_) => Fate::Drop,
        _ => Fate::Deliver,
    });
    let req = request(0, 1);
    let pps = pre_prepares_in(&c.client_request(0, req.clone()));
    assert_eq!(pps.len(), 1);
    let digest = pps[0].0.body.digest;
    // The client also reached the backups, so their request timers run.
    for i in 1..N {
        c.client_request(i, req.clone());
    }
    c.run();
    for i in 0..N {
        let slot = &c.disks[i].durable.slots[&1];
        let (proof, _) = slot.prepared.as_ref().expect("prepared in view 0");
        assert_eq!(proof.pre_prepare.body.digest, digest);
        assert!(c.disks[i].chain.is_empty());
    }
    c.clear_rule();
    c.isolate(0);
    (c, req, digest)
}

/// Section 4.4: a request prepared at 2f+1 replicas in view v (it may have committed
/// somewhere) is re-proposed in view v+1 under the same digest, so it commits with the
/// same batch.
#[test]
fn prepared_request_is_carried_into_the_new_view() {
    let (mut c, req, digest) = prepared_but_not_committed();
    c.advance_to(1_000);

    for i in 1..N {
        let vcs = view_changes_sent(&c, i, 1);
        assert_eq!(vcs.len(), 1);
        let p: Vec<_> = vcs[0]
            .body
            .prepared
            .iter()
            .map(|p| {
                (
                    p.pre_prepare.body.view,
                    p.pre_prepare.body.seq,
                    p.pre_prepare.body.digest,
                )
            })
            .collect();
        assert_eq!(p, vec![(0, 1, digest)], "replica {i}'s P set");
    }
    let nvs = new_views_sent(&c, 1);
    assert_eq!(nvs.len(), 1);
    let o: Vec<_> = nvs[0]
        .0
        .body
        .pre_prepares
        .iter()
        .map(|pp| (pp.body.view, pp.body.seq, pp.body.digest))
        .collect();
    assert_eq!(o, vec![(1, 1, digest)]);

    for i in 1..N {
        assert_eq!(c.disks[i].chain.len(), 1, "replica {i}");
        let block = &c.disks[i].chain[0];
        assert_eq!(block.certificate.proposal_digest, digest);
        assert_eq!(block.certificate.view, 1);
        assert_eq!(
            block.header.view, 0,
            "the batch keeps the view it was proposed in"
        );
        assert_eq!(block.requests, vec![req.clone()]);
        c.verifier.check_block(block).expect("valid certificate");
        assert_eq!(c.replies_for(i, 0, 1).len(), 1);
    }
}

/// Section 4.4: backups recompute O from the NEW-VIEW's view changes and reject a
/// NEW-VIEW whose O differs, even one validly signed by the new primary.
#[test]
fn new_view_with_an_altered_o_set_is_rejected() {
    let (mut c, _req, digest) = prepared_but_not_committed();
    c.set_rule(|_, _, m| match m {
        PeerMessage::NewView { .. } => Fate::Hold,
        _ => Fate::Deliver,
    });
    c.advance_to(1_000);
    for i in 2..N {
        assert_eq!(
            (c.replicas[i].view(), c.replicas[i].mode()),
            (1, Mode::ViewChange)
        );
    }
    let (nv, _) = new_views_sent(&c, 1)
        .pop()
        .expect("replica 1 sent NEW-VIEW");

    // Replace the batch at seq 1 by another one, re-signing everything as replica 1.
    let other = proposal(1, 1, 77, vec![request(1, 9)]);
    assert_ne!(other.digest(), digest);
    let mut swapped = nv.body.clone();
    swapped.pre_prepares = vec![pre_prepare(1, &other)];
    // And a NEW-VIEW that silently drops the prepared request.
    let mut emptied = nv.body.clone();
    emptied.pre_prepares.clear();
    let forged = [
        (Signed::sign(swapped, &KEYS.replica(1)), vec![other]),
        (Signed::sign(emptied, &KEYS.replica(1)), Vec::new()),
    ];

    for (new_view, proposals) in forged {
        for i in 2..N {
            let outs = c.inject(
                i,
                PeerMessage::NewView {
                    new_view: new_view.clone(),
                    proposals: proposals.clone(),
                },
            );
            assert!(
                !outs
                    .iter()
                    .any(|o| matches!(o, Output::ViewInstalled { .. })),
                "replica {i} installed a forged NEW-VIEW"
            );
            assert!(prepares_in(&outs).is_empty());
            assert_eq!(
                (c.replicas[i].view(), c.replicas[i].mode()),
                (1, Mode::ViewChange)
            );
        }
    }
    c.run();
    assert!(c.disks[2].chain.is_empty() && c.disks[3].chain.is_empty());

    // The genuine NEW-VIEW is accepted, so the rejection was about the O set.
    c.clear_rule();
    c.release_held();
    c.run();
    for i in 1..N {
        assert_eq!(c.replicas[i].mode(), Mode::Normal);
        assert_eq!(c.disks[i].chain.len(), 1, "replica {i}");
        assert_eq!(c.disks[i].chain[0].certificate.proposal_digest, digest);
    }
}

/// TOCS section 4.5.2: if the new view does not start in time the replica tries the next
/// one and waits twice as long, so that eventually correct replicas overlap in a view
/// long enough to agree.
#[test]
fn view_change_timeouts_double_for_consecutive_failed_views() {
    let mut c = Cluster::new();
    // The primary of view 1 is down, and the primaries of views 0 and 2 are faulty:
    // their (pre-prepare and new-view) proposals never arrive.
    c.isolate(1);
    c.set_rule(|_, _, m| match m {
        PeerMessage::PrePrepare { pre_prepare, .. } if pre_prepare.body.view < 3 => Fate::Drop,
        PeerMessage::NewView { new_view, .. } if new_view.body.view < 3 => Fate::Drop,
        _ => Fate::Deliver,
    });
    let req = request(0, 1);
    for i in [0, 2, 3] {
        c.client_request(i, req.clone());
    }
    c.advance_to(6_000);

    let timeout = c.configs[0].view_change_timeout_ms;
    for i in [0, 3] {
        let t1 = c.view_change_started(i, 1).expect("moved to view 1");
        let t2 = c.view_change_started(i, 2).expect("moved to view 2");
        let t3 = c.view_change_started(i, 3).expect("moved to view 3");
        assert_eq!(t1, c.configs[0].request_timeout_ms, "replica {i}");
        assert_eq!(t2 - t1, timeout, "replica {i}: first failed view");
        assert_eq!(
            t3 - t2,
            2 * timeout,
            "replica {i}: second consecutive failed view"
        );
    }
    // View 3's primary is correct: the request finally commits.
    for i in [0, 2, 3] {
        assert_eq!(c.replicas[i].view(), 3, "replica {i}");
        assert_eq!(c.replicas[i].mode(), Mode::Normal);
        assert_eq!(c.disks[i].chain.len(), 1);
        assert_eq!(c.disks[i].chain[0].requests, vec![req.clone()]);
    }
}

/// TOCS section 4.5.2: a replica alone cannot drag others into a view change, but a
/// replica that sees f+1 others in a higher view joins them even if its own timer has
/// not fired.
#[test]
fn a_replica_joins_a_view_change_only_after_f_plus_one_others() {
    let mut c = Cluster::new();
    c.isolate(0);
    let req = request(0, 1);
    c.client_request(2, req.clone());
    c.advance_to(1_000);
    assert_eq!(c.view_change_started(2, 1), Some(1_000));

    // The client retries at replica 1, which will time out at 2000; replica 3 never has
    // the request, so only f+1 = 2 others in view 1 can move it.
    c.client_request(1, req.clone());
    c.advance_to(1_999);
    assert_eq!(
        (c.replicas[2].view(), c.replicas[2].mode()),
        (1, Mode::ViewChange)
    );
    for i in [1, 3] {
        assert_eq!(
            (c.replicas[i].view(), c.replicas[i].mode()),
            (0, Mode::Normal),
            "replica {i} followed a lone view change"
        );
    }

    c.advance_to(2_500);
    assert_eq!(c.view_change_started(1, 1), Some(2_000));
    assert_eq!(c.view_change_started(3, 1), Some(2_000));
    for i in 1..N {
        assert_eq!(
            (c.replicas[i].view(), c.replicas[i].mode()),
            (1, Mode::Normal)
        );
        assert_eq!(c.disks[i].chain.len(), 1, "replica {i}");
    }
}

/// Section 4.4: with a stable checkpoint at 4, the view changes carry its proof, O starts
/// at 5 (executed batches are re-proposed unchanged, never re-executed), and a batch
/// prepared at 6 commits in the new view under its old digest.
#[test]
fn view_change_above_a_stable_checkpoint() {
    let mut c = Cluster::new();
    for id in 1..=5 {
        c.submit(0, request(0, id));
    }
    assert_eq!(c.replicas[1].stable_seq(), 4);
    let d5 = c.disks[1].chain[4].certificate.proposal_digest;

    c.set_rule(|_, _, m| match m {
        PeerMessage::Commit(_) => Fate::Drop,
        _ => Fate::Deliver,
    });
    let req = request(1, 1);
    let d6 = pre_prepares_in(&c.client_request(0, req.clone()))[0]
        .0
        .body
        .digest;
    for i in 1..N {
        c.client_request(i, req.clone());
    }
    c.run();
    c.clear_rule();
    c.isolate(0);
    c.advance_to(1_000);

    let (nv, _) = new_views_sent(&c, 1)
        .pop()
        .expect("replica 1 sent NEW-VIEW");
    assert!(nv
        .body
        .view_changes
        .iter()
        .all(|vc| vc.body.stable_seq == 4));
    let o: Vec<_> = nv
        .body
        .pre_prepares
        .iter()
        .map(|pp| (pp.body.seq, pp.body.digest))
        .collect();
    assert_eq!(o, vec![(5, d5), (6, d6)]);
    for i in 1..N {
        assert_eq!(c.replicas[i].view(), 1);
        assert_eq!(c.disks[i].chain.len(), 6, "replica {i}");
        assert_eq!(c.disks[i].chain[5].certificate.proposal_digest, d6);
        assert_eq!(c.disks[i].chain[5].requests, vec![req.clone()]);
    }
}
