//! The persisted vote state (Castro & Liskov, OSDI 1999, section 4.2 on accepted
//! pre-prepares, 4.4 on the P set and views; TOCS 2002, section 4.1's requirement that
//! a replica never contradicts a vote it sent): what a replica writes before voting, and
//! how a restarted replica behaves from it.

mod common;

use common::*;
use medchain_pbft::{
    ChainState, ClientTable, DurableRecord, DurableState, Input, Mode, Output, Replica,
};
use medchain_types::{Hash32, PeerMessage, ReplicaId, ViewNum};

/// The vote an output carries, and the record that must precede it on disk.
fn needs_record(o: &Output) -> Option<(&'static str, u64, u64)> {
    let m = match o {
        Output::Broadcast(m) => m,
        Output::Send { message, .. } => message,
        _ => return None,
    };
    match m {
        PeerMessage::PrePrepare { pre_prepare: p, .. } => {
            Some(("pre-prepared", p.body.view, p.body.seq))
        }
        PeerMessage::Prepare(p) => Some(("pre-prepared", p.body.view, p.body.seq)),
        PeerMessage::Commit(c) => Some(("prepared", c.body.view, c.body.seq)),
        PeerMessage::ViewChange { view_change, .. } => Some(("view", view_change.body.new_view, 0)),
        _ => None,
    }
}

fn record_key(r: &DurableRecord) -> Option<(&'static str, u64, u64)> {
    match r {
        DurableRecord::PrePrepared { pre_prepare, .. } => {
            Some(("pre-prepared", pre_prepare.body.view, pre_prepare.body.seq))
        }
        DurableRecord::Prepared { proof, .. } => Some((
            "prepared",
            proof.pre_prepare.body.view,
            proof.pre_prepare.body.seq,
        )),
        DurableRecord::View { view, .. } => Some(("view", *view, 0)),
        DurableRecord::StableCheckpoint { .. } => None,
    }
}

/// Every vote in `outs` comes after the record that makes it safe to send.
fn assert_persisted_before_sent(id: usize, outs: &[Output]) -> usize {
    let mut written = Vec::new();
    let mut votes = 0;
    for o in outs {
        if let Output::Persist(r) = o {
            written.extend(record_key(r));
        }
        if let Some(k) = needs_record(o) {
            assert!(
                written.contains(&k),
                "replica {id} sent {k:?} before persisting it"
            );
            votes += 1;
        }
    }
    votes
}

/// Section 4.2 / TOCS 4.1: PRE-PREPARE and PREPARE leave only after the accepted
/// pre-prepare is on disk, COMMIT after the prepared certificate, VIEW-CHANGE after the
/// new view number; otherwise a crash could make a replica vote twice.
#[test]
fn votes_are_persisted_before_they_are_sent() {
    let mut c = Cluster::new();
    c.submit(0, request(0, 1));
    c.submit(0, request(0, 2));
    // And a view change, with the primary silent.
    c.isolate(0);
    for i in 1..N {
        c.client_request(i, request(1, 1));
    }
    c.advance_to(1_000);
    assert_eq!(c.heights(), vec![2, 3, 3, 3]);
    for i in 0..N {
        let votes = assert_persisted_before_sent(i, &c.outputs_of(i));
        assert!(votes >= 4, "replica {i} sent only {votes} votes");
    }
}

/// Section 4.2: a backup accepts one pre-prepare per (view, seq); the durable record makes
/// that survive a crash, so the restarted backup refuses a conflicting pre-prepare and
/// re-sends exactly the prepare it sent before.
#[test]
fn restored_backup_refuses_a_conflicting_pre_prepare_and_resends_its_prepare() {
    let a = proposal(1, 0, 10, vec![request(0, 1)]);
    let b = proposal(1, 0, 10, vec![request(1, 1)]);

    // Without its durable state a replica would accept either: what is at stake.
    let mut amnesiac = Cluster::new();
    assert_eq!(
        prepares_in(&amnesiac.inject(1, pre_prepare_msg(0, &b))).len(),
        1
    );

    let mut c = Cluster::new();
    let sent = prepares_in(&c.inject(1, pre_prepare_msg(0, &a)));
    assert_eq!(sent.len(), 1);
    let slot = &c.disks[1].durable.slots[&1];
    assert_eq!(
        slot.pre_prepare
            .as_ref()
            .map(|(pp, p)| (pp.body.digest, p.clone())),
        Some((a.digest(), a.clone()))
    );

    c.restart(1);
    assert_eq!(c.replicas[1].view(), 0);
    let outs = c.inject(1, pre_prepare_msg(0, &b));
    assert!(
        prepares_in(&outs).is_empty(),
        "restarted backup voted for both batches"
    );
    assert!(persisted_in(&outs).is_empty());

    c.now = c.configs[1].resend_interval_ms;
    let resent = prepares_in(&c.tick(1));
    assert_eq!(
        resent, sent,
        "the re-sent prepare differs from the one sent before"
    );

    // The old vote still counts: with its own prepare, one more makes batch a prepared.
    let commits = commits_in(&c.inject(1, PeerMessage::Prepare(prepare(0, 1, a.digest(), 2))));
    assert_eq!(commits.len(), 1);
    assert_eq!(commits[0].body.digest, a.digest());
}

/// Section 4.2: a prepared replica has sent COMMIT; after a restart it re-sends the same
/// commit and keeps its prepared certificate for the P set of a later view change.
#[test]
fn restored_prepared_replica_resends_the_same_commit() {
    let mut c = Cluster::new();
    let a = proposal(1, 0, 10, vec![request(0, 1)]);
    c.inject(1, pre_prepare_msg(0, &a));
    let commit = commits_in(&c.inject(1, PeerMessage::Prepare(prepare(0, 1, a.digest(), 2))));
    assert_eq!(commit.len(), 1);
    assert!(c.disks[1].durable.slots[&1].prepared.is_some());

    c.restart(1);
    c.now = c.configs[1].resend_interval_ms;
    let outs = c.tick(1);
    assert_eq!(commits_in(&outs), commit);

    // Had it crashed after moving to view 1, its VIEW-CHANGE would still carry the
    // certificate (the P set comes from disk, not from memory).
    let d = c.disks[1].durable.clone();
    assert!(d.slots[&1].prepared.is_some());
    let mut r = Replica::restore(
        c.configs[1].clone(),
        KEYS.replica(1),
        &c.genesis,
        DurableState {
            view: 1,
            normal: false,
            ..d
        },
        fresh_chain(&c),
    );
    let outs = r.step(c.configs[1].resend_interval_ms, Input::Tick);
    let p_set: Vec<_> = messages(&outs)
        .into_iter()
        .filter_map(|m| match m {
            PeerMessage::ViewChange { view_change, .. } => Some(
                view_change
                    .body
                    .prepared
                    .iter()
                    .map(|p| (p.pre_prepare.body.seq, p.pre_prepare.body.digest))
                    .collect::<Vec<_>>(),
            ),
            _ => None,
        })
        .collect();
    assert_eq!(p_set, vec![vec![(1, a.digest())]]);
}

/// The block store of a replica that has executed nothing.
fn fresh_chain(c: &Cluster) -> ChainState {
    ChainState {
        last_executed: 0,
        last_hash: c.genesis.hash(),
        clients: ClientTable::new(CLIENTS),
        recent_hashes: Vec::new(),
    }
}

/// Section 4.2: a sequence number is bound to one batch per view, so a primary that
/// restarts must not assign a number it already proposed.
#[test]
fn restored_primary_does_not_reuse_a_sequence_number() {
    let mut c = Cluster::new();
    let a = request(0, 1);
    let b = request(1, 1);
    let first = pre_prepares_in(&c.client_request(0, a.clone()));
    assert_eq!(first[0].0.body.seq, 1);

    c.restart(0);
    let second = pre_prepares_in(&c.client_request(0, b.clone()));
    assert_eq!(second.len(), 1);
    assert_eq!(
        second[0].0.body.seq, 2,
        "the restarted primary reused a number"
    );

    c.run();
    for chain in c.chains() {
        assert_eq!(chain.len(), 2);
        assert_eq!(chain[0].requests, vec![a.clone()]);
        assert_eq!(chain[1].requests, vec![b.clone()]);
    }
}

/// Section 4.4: a replica never goes back to an older view; a replica that crashed while
/// waiting for a NEW-VIEW restarts in that view, still waiting, and still owes its
/// VIEW-CHANGE.
#[test]
fn restored_replica_keeps_its_view_change() {
    let mut c = Cluster::new();
    c.isolate(0);
    // The new primary's NEW-VIEW, and the proposal it makes right after, are late.
    c.set_rule(|_, _, m| match m {
        PeerMessage::NewView { .. } | PeerMessage::PrePrepare { .. } => Fate::Hold,
        _ => Fate::Deliver,
    });
    let req = request(0, 1);
    for i in 1..N {
        c.client_request(i, req.clone());
    }
    c.advance_to(1_000);
    assert_eq!(
        (c.disks[2].durable.view, c.disks[2].durable.normal),
        (1, false)
    );

    c.restart(2);
    assert_eq!(
        (c.replicas[2].view(), c.replicas[2].mode()),
        (1, Mode::ViewChange)
    );

    // Standalone copy: on its resend timer it re-broadcasts its VIEW-CHANGE for view 1.
    let mut copy = Replica::restore(
        c.configs[2].clone(),
        KEYS.replica(2),
        &c.genesis,
        c.disks[2].durable.clone(),
        fresh_chain(&c),
    );
    let outs = copy.step(c.configs[2].resend_interval_ms, Input::Tick);
    let vcs: Vec<(ViewNum, ReplicaId)> = messages(&outs)
        .into_iter()
        .filter_map(|m| match m {
            PeerMessage::ViewChange { view_change, .. } => {
                Some((view_change.body.new_view, view_change.body.replica))
            }
            _ => None,
        })
        .collect();
    assert_eq!(vcs, vec![(1, rid(2))]);

    // The held messages arrive: the restarted replica installs view 1 and takes part.
    c.clear_rule();
    c.release_held();
    c.run();
    for i in 1..N {
        assert_eq!(
            (c.replicas[i].view(), c.replicas[i].mode()),
            (1, Mode::Normal)
        );
        assert_eq!(c.disks[i].chain.len(), 1, "replica {i}");
    }
}

/// Section 4.4: a replica that installed view 1 restarts in view 1, normal, ignores
/// view-0 traffic, and is needed (with replica 0 down) for the next commit.
#[test]
fn restored_replica_keeps_its_installed_view() {
    let mut c = Cluster::new();
    c.isolate(0);
    for i in 1..N {
        c.client_request(i, request(0, 1));
    }
    c.advance_to(1_000);
    assert_eq!(c.heights(), vec![0, 1, 1, 1]);
    assert_eq!(
        (c.disks[3].durable.view, c.disks[3].durable.normal),
        (1, true)
    );

    c.restart(3);
    assert_eq!(
        (c.replicas[3].view(), c.replicas[3].mode()),
        (1, Mode::Normal)
    );
    assert_eq!(c.replicas[3].last_executed(), 1);

    let stale = proposal(2, 0, 5, vec![request(1, 1)]);
    assert!(prepares_in(&c.inject(3, pre_prepare_msg(0, &stale))).is_empty());

    c.submit(1, request(0, 2));
    assert_eq!(c.heights(), vec![0, 2, 2, 2]);
    assert!(c.disks[1].chain[1].certificate.signers().contains(&rid(3)));
}

/// Sections 4.3 and 4.4, as stored: in the durable fold later views win, a pre-prepare
/// or certificate of a lower view never replaces one of a higher view, and a stable
/// checkpoint discards every slot at or below it (and keeps them out afterwards).
#[test]
fn durable_state_apply_folds_and_collects_garbage() {
    let mut d = DurableState::genesis(genesis().hash());
    let batches: Vec<_> = (1..=6)
        .map(|s| proposal(s, 0, s, vec![request(0, s)]))
        .collect();
    for p in &batches {
        d.apply(&DurableRecord::PrePrepared {
            pre_prepare: pre_prepare(0, p),
            proposal: p.clone(),
        });
    }
    for p in [&batches[2], &batches[4]] {
        d.apply(&DurableRecord::Prepared {
            proof: prepared_proof(0, p),
            proposal: p.clone(),
        });
    }
    assert_eq!(
        d.slots.keys().copied().collect::<Vec<_>>(),
        [1, 2, 3, 4, 5, 6]
    );

    let d4 = Hash32::sha256(b"state at 4");
    d.apply(&DurableRecord::StableCheckpoint {
        seq: 4,
        digest: d4,
        proof: checkpoint_proof(4, d4),
    });
    assert_eq!((d.stable_seq, d.stable_digest), (4, d4));
    assert_eq!(d.stable_proof, checkpoint_proof(4, d4));
    assert_eq!(d.slots.keys().copied().collect::<Vec<_>>(), [5, 6]);
    assert!(d.slots[&5].prepared.is_some());
    assert!(d.slots[&6].prepared.is_none());

    // Records at or below the checkpoint, and older checkpoints, change nothing.
    let before = d.clone();
    d.apply(&DurableRecord::PrePrepared {
        pre_prepare: pre_prepare(0, &batches[1]),
        proposal: batches[1].clone(),
    });
    d.apply(&DurableRecord::Prepared {
        proof: prepared_proof(0, &batches[3]),
        proposal: batches[3].clone(),
    });
    let other = Hash32::sha256(b"another state at 4");
    d.apply(&DurableRecord::StableCheckpoint {
        seq: 4,
        digest: other,
        proof: checkpoint_proof(4, other),
    });
    d.apply(&DurableRecord::StableCheckpoint {
        seq: 0,
        digest: genesis().hash(),
        proof: Vec::new(),
    });
    assert_eq!(d, before);

    // A higher view's pre-prepare replaces a lower one; not the other way round.
    let again = proposal(6, 1, 60, vec![request(1, 6)]);
    d.apply(&DurableRecord::PrePrepared {
        pre_prepare: pre_prepare(1, &again),
        proposal: again.clone(),
    });
    d.apply(&DurableRecord::PrePrepared {
        pre_prepare: pre_prepare(0, &batches[5]),
        proposal: batches[5].clone(),
    });
    let pp6 = d.slots[&6].pre_prepare.as_ref().map(|(pp, _)| pp.body.view);
    assert_eq!(pp6, Some(1));

    // Views only move forward; `normal` follows the latest record of the current view.
    d.apply(&DurableRecord::View {
        view: 3,
        normal: false,
    });
    d.apply(&DurableRecord::View {
        view: 2,
        normal: true,
    });
    assert_eq!((d.view, d.normal), (3, false));
    d.apply(&DurableRecord::View {
        view: 3,
        normal: true,
    });
    assert_eq!((d.view, d.normal), (3, true));
}
