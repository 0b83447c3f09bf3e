//! State transfer (Castro & Liskov, OSDI 1999, section 4.3; TOCS 2002, section 6.2): a
//! replica that fell behind learns so from stable checkpoints and heartbeats, fetches
//! certified blocks from a peer, applies only blocks that extend its own chain, and asks
//! another peer when one does not answer.

mod common;

use common::*;
use medchain_pbft::Output;
use medchain_types::{FetchBlocks, Hash32, PeerMessage, ReplicaId, Signed, Status};

/// Heartbeats every 100 ms so that a reconnected replica hears from its peers quickly.
fn cluster() -> Cluster {
    Cluster::with_config(|cfg| cfg.status_interval_ms = 100)
}

/// Heartbeats every 100 ms and a 200 ms stall period: for transfers of several ranges.
fn cluster_with_fast_resends() -> Cluster {
    Cluster::with_config(|cfg| {
        cfg.status_interval_ms = 100;
        cfg.resend_interval_ms = 200;
    })
}

/// Commit `count` blocks while replica `away` hears nothing.
fn commit_without(c: &mut Cluster, away: usize, count: u64) {
    c.isolate(away);
    for id in 1..=count {
        c.submit(0, request(0, id));
    }
    for i in (0..N).filter(|i| *i != away) {
        assert_eq!(c.disks[i].chain.len() as u64, count);
    }
    assert!(c.disks[away].chain.is_empty());
}

/// Peers replica `id` asked for blocks, with the time.
fn fetches_by(c: &Cluster, id: usize) -> Vec<(u64, ReplicaId)> {
    c.outputs[id]
        .iter()
        .filter_map(|(t, o)| match o {
            Output::Send {
                to,
                message: PeerMessage::FetchBlocks(_),
            } => Some((*t, *to)),
            _ => None,
        })
        .collect()
}

/// Section 4.3 / TOCS 6.2: a replica that missed six blocks (and the checkpoint at 4)
/// is told the stable checkpoint by its peers, fetches the certified blocks and ends with
/// the same chain and head hash; then it takes part in ordering again.
#[test]
fn lagging_replica_catches_up_to_the_same_head() {
    let mut c = cluster();
    commit_without(&mut c, 3, 6);
    assert_eq!(c.replicas[0].stable_seq(), 4);

    c.reconnect(3);
    c.advance_to(300);

    let fetches = fetches_by(&c, 3);
    assert!(!fetches.is_empty(), "replica 3 never asked for blocks");
    let answered = c
        .delivered
        .iter()
        .any(|(_, _, to, m)| *to == rid(3) && matches!(m, PeerMessage::Blocks(b) if !b.is_empty()));
    assert!(answered, "no blocks reached replica 3");
    let read = c.outputs[fetches[0].1.index()]
        .iter()
        .any(|(_, o)| matches!(o, Output::ReadBlocks { to, from_height: 1, .. } if *to == rid(3)));
    assert!(read, "the asked peer did not read its store");

    assert_eq!(c.disks[3].chain, c.disks[0].chain);
    assert_eq!(c.replicas[3].last_executed(), 6);
    assert_eq!(c.replicas[3].last_hash(), c.replicas[0].last_hash());
    assert_eq!(c.replicas[3].stable_seq(), 4);
    for b in &c.disks[3].chain {
        c.verifier
            .check_block(b)
            .expect("transferred blocks are certified");
    }

    c.submit(0, request(1, 1));
    assert_eq!(c.heights(), vec![7; N]);
    assert_eq!(c.disks[3].chain[6].hash(), c.disks[0].chain[6].hash());
}

/// TOCS 6.2: a fetch that gets no answer times out and goes to another peer, so one
/// faulty or slow peer cannot keep a replica behind.
#[test]
fn unanswered_fetch_goes_to_another_peer() {
    let mut c = cluster();
    commit_without(&mut c, 3, 5);
    let mut first = true;
    c.set_rule(move |_, _, m| match m {
        PeerMessage::FetchBlocks(_) if first => {
            first = false;
            Fate::Drop
        }
        _ => Fate::Deliver,
    });
    c.reconnect(3);
    c.advance_to(3_000);

    let fetches = fetches_by(&c, 3);
    assert!(fetches.len() >= 2, "{fetches:?}");
    let (t0, p0) = fetches[0];
    let (t1, p1) = fetches[1];
    assert_ne!(p0, p1, "asked the silent peer again");
    assert!(
        t1 >= t0 + c.configs[3].fetch_timeout_ms,
        "gave up before the timeout"
    );
    assert_eq!(c.disks[3].chain, c.disks[0].chain);
}

/// Section 4.3 (and the hash chain): every transferred block must carry the next height
/// and link to the replica's last block. A block with a valid certificate but another
/// `prev_hash` (which the certificate does not cover) is not applied, nor is anything
/// after it or after a gap.
#[test]
fn blocks_that_do_not_link_are_not_applied() {
    let mut c = cluster();
    commit_without(&mut c, 3, 3);
    let good = c.disks[0].chain.clone();
    let mut forged = good[1].clone();
    forged.header.prev_hash = Hash32::sha256(b"somewhere else");
    c.verifier
        .check_block(&forged)
        .expect("prev_hash is outside the certificate, so the verifier cannot catch this");
    let mut forged_first = good[0].clone();
    forged_first.header.prev_hash = Hash32::sha256(b"not the genesis");

    let commits = |outs: &[Output]| {
        outs.iter()
            .filter(|o| matches!(o, Output::Commit(_)))
            .count()
    };

    let outs = c.inject(3, PeerMessage::Blocks(vec![forged_first]));
    assert_eq!(commits(&outs), 0);
    assert_eq!(c.replicas[3].last_executed(), 0);

    let outs = c.inject(3, PeerMessage::Blocks(vec![good[2].clone()]));
    assert_eq!(commits(&outs), 0, "applied a block after a gap");

    let outs = c.inject(
        3,
        PeerMessage::Blocks(vec![good[0].clone(), forged, good[2].clone()]),
    );
    assert_eq!(commits(&outs), 1, "only the block before the broken link");
    assert_eq!(c.disks[3].chain, good[..1].to_vec());
    assert_eq!(c.replicas[3].last_hash(), good[0].hash());

    let outs = c.inject(3, PeerMessage::Blocks(good[1..].to_vec()));
    assert_eq!(commits(&outs), 2);
    assert_eq!(c.disks[3].chain, good);
    assert_eq!(c.replicas[3].last_hash(), c.replicas[0].last_hash());
}

/// TOCS 6.2: a replica answers a fetch with what it has executed, no more than asked for
/// and no more than the limit, and ignores a fetch beyond its height.
#[test]
fn fetch_is_answered_from_the_executed_chain() {
    let mut c = cluster();
    for id in 1..=5 {
        c.submit(0, request(0, id));
    }
    let fetch = |from_height: u64, max_blocks: u32| {
        PeerMessage::FetchBlocks(Signed::sign(
            FetchBlocks {
                from_height,
                max_blocks,
                replica: rid(3),
            },
            &KEYS.replica(3),
        ))
    };
    let reads = |outs: &[Output]| -> Vec<(ReplicaId, u64, usize)> {
        outs.iter()
            .filter_map(|o| match o {
                Output::ReadBlocks {
                    to,
                    from_height,
                    max_blocks,
                } => Some((*to, *from_height, *max_blocks)),
                _ => None,
            })
            .collect()
    };
    assert_eq!(reads(&c.inject(0, fetch(2, 100))), vec![(rid(3), 2, 4)]);
    assert_eq!(reads(&c.inject(0, fetch(1, 2))), vec![(rid(3), 1, 2)]);
    assert_eq!(reads(&c.inject(0, fetch(5, 8))), vec![(rid(3), 5, 1)]);
    assert!(reads(&c.inject(0, fetch(6, 8))).is_empty());
    assert!(reads(&c.inject(0, fetch(0, 8))).is_empty());
}

/// Section 4.3: a replica more than a window (L = 16) behind cannot take part in the
/// normal case at all; it catches up by repeated fetches (8 blocks at most per answer),
/// adopts the stable checkpoint, and then orders new requests with the others.
#[test]
fn replica_more_than_a_window_behind_catches_up_and_takes_part() {
    let mut c = cluster_with_fast_resends();
    commit_without(&mut c, 3, 20);
    assert_eq!(c.replicas[0].stable_seq(), 20);

    c.reconnect(3);
    c.advance_to(3_000);
    assert!(
        fetches_by(&c, 3).len() >= 3,
        "20 blocks need 3 answers of 8"
    );
    assert_eq!(c.disks[3].chain, c.disks[0].chain);
    assert_eq!(c.replicas[3].stable_seq(), 20);

    // With replica 2 cut off, the next block needs replica 3's votes.
    c.isolate(2);
    c.submit(0, request(1, 1));
    assert_eq!(c.disks[3].chain.len(), 21);
    assert_eq!(c.disks[3].chain[20].hash(), c.disks[0].chain[20].hash());
    assert!(c.disks[0].chain[20].certificate.signers().contains(&rid(3)));
}

/// A STATUS from a peer behind us is answered at once (so a restarted replica starts its
/// state transfer a round trip after it connects, not at our next heartbeat), at most
/// twice per heartbeat interval, and not at all when the peer is level with us.
#[test]
fn a_behind_peer_hears_our_height_at_once() {
    let mut c = cluster();
    commit_without(&mut c, 3, 6);
    let status_of = |replica: usize, last_executed: u64| {
        PeerMessage::Status(Signed::sign(
            Status {
                view: 0,
                in_view_change: false,
                last_executed,
                stable_seq: 0,
                replica: rid(replica),
            },
            &KEYS.replica(replica),
        ))
    };
    let answers_to = |outs: &[Output], to: ReplicaId| -> Vec<u64> {
        outs.iter()
            .filter_map(|o| match o {
                Output::Send {
                    to: t,
                    message: PeerMessage::Status(s),
                } if *t == to => Some(s.body.last_executed),
                _ => None,
            })
            .collect()
    };

    let outs = c.inject(0, status_of(3, 0));
    assert_eq!(
        answers_to(&outs, rid(3)),
        vec![6],
        "the behind peer gets our height"
    );
    let outs = c.inject(0, status_of(3, 0));
    assert!(
        answers_to(&outs, rid(3)).is_empty(),
        "a second ask at once is not answered"
    );

    c.advance_to(c.now + 50);
    let outs = c.inject(0, status_of(3, 0));
    assert_eq!(
        answers_to(&outs, rid(3)),
        vec![6],
        "half an interval later it is"
    );

    c.advance_to(c.now + 50);
    let outs = c.inject(0, status_of(1, 6));
    assert!(
        answers_to(&outs, rid(1)).is_empty(),
        "a level peer is not answered"
    );
}

/// A replica that is many ranges behind asks for the next range as soon as the last
/// one extends its chain, not a stall period later (which once left a catching-up
/// replica idle for most of its transfer).
#[test]
fn the_next_range_is_fetched_as_soon_as_one_lands() {
    let mut c = cluster_with_fast_resends();
    commit_without(&mut c, 3, 20);
    c.reconnect(3);
    c.advance_to(3_000);

    let fetches = fetches_by(&c, 3);
    assert!(fetches.len() >= 3, "20 blocks need 3 answers of 8");
    let first = fetches[0].0;
    assert!(
        fetches[..3].iter().all(|(t, _)| *t == first),
        "ranges waited between them: {fetches:?}"
    );
    assert_eq!(c.disks[3].chain, c.disks[0].chain);
}
