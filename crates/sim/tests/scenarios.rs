//! Named scenarios from the PBFT paper's failure cases, each a hand-written fault plan
//! run through the simulator with every invariant checked.

use medchain_sim::scenario::{Crash, Partition};
use medchain_sim::{byzantine::Behaviour, run_scenario, Scenario, SeedOutcome};
use medchain_types::ReplicaId;

fn busy(seed: u64, n: usize) -> Scenario {
    let mut s = Scenario::calm(seed, n);
    s.clients = 3;
    s.requests_per_client = 8;
    s.issue_until_ms = 1_500;
    s.gst_ms = 3_000;
    s
}

fn run(s: Scenario) -> SeedOutcome {
    medchain_types::crypto::set_thread_verification_memo(true);
    let (o, trace) = run_scenario(&s, true);
    let tail: Vec<&str> = trace.lines().rev().take(40).collect();
    assert!(
        o.violations.is_empty(),
        "{:?}\nlast trace lines (newest first):\n{}",
        o.violations,
        tail.join("\n")
    );
    assert_eq!(o.requests, (s.clients * s.requests_per_client) as u64);
    o
}

/// Section 4.4: the primary dies with a batch half sent; backups time out, change view,
/// and the new primary re-proposes what was prepared. The old primary restarts from its
/// persisted votes and catches up.
#[test]
fn primary_crash_in_the_middle_of_a_batch() {
    let mut s = busy(1, 4);
    s.crashes.push(Crash {
        replica: ReplicaId(0),
        at_ms: 150,
        restart_ms: 2_500,
    });
    let o = run(s);
    assert!(o.view_changes >= 1 && o.max_view >= 1, "{o:?}");
    assert!(o.committed_blocks >= 6, "{o:?}");
}

/// Section 4.2: a Byzantine primary sends different pre-prepares for one sequence
/// number; no two correct replicas may commit different batches.
#[test]
fn equivocating_primary() {
    for seed in 0..20 {
        let mut s = busy(seed, 4);
        s.byzantine.push((ReplicaId(0), Behaviour::Equivocate));
        let o = run(s);
        assert!(o.committed_blocks >= 6, "{o:?}");
    }
}

/// Section 4.4: a primary cut off from everyone is replaced; the partition heals.
#[test]
fn primary_partitioned_away() {
    let mut s = busy(2, 4);
    s.partitions.push(Partition {
        start_ms: 100,
        end_ms: 2_800,
        side: vec![ReplicaId(0)],
    });
    let o = run(s);
    assert!(o.max_view >= 1, "{o:?}");
}

/// Section 4.4: the primaries of views 0 and 1 are both faulty (n = 7, f = 2); the view
/// change must go on to view 2, with doubled timeouts.
#[test]
fn two_faulty_primaries_in_a_row() {
    let mut s = busy(3, 7);
    s.byzantine.push((ReplicaId(0), Behaviour::Silent));
    s.byzantine.push((ReplicaId(1), Behaviour::Silent));
    let o = run(s);
    assert!(o.max_view >= 2, "{o:?}");
}

/// Sections 4.3 and TOCS 6.2: a replica down while the others commit many blocks and
/// move their stable checkpoint restarts from its old state and catches up by state
/// transfer to the same height (the liveness invariant checks the heights converge).
#[test]
fn replica_restarting_from_an_old_checkpoint_catches_up() {
    let mut s = busy(4, 4);
    s.requests_per_client = 12;
    s.gst_ms = 4_000;
    s.issue_until_ms = 3_000;
    s.crashes.push(Crash {
        replica: ReplicaId(3),
        at_ms: 50,
        restart_ms: 3_900,
    });
    let o = run(s);
    // 36 requests in batches of at most 4: at least 9 blocks, so checkpoints at 4 and 8.
    assert!(o.committed_blocks >= 9, "{o:?}");
}

/// Section 4.3: messages far above the high watermark are ignored, not stored.
#[test]
fn flood_outside_the_watermarks() {
    let mut s = busy(5, 4);
    s.byzantine.push((ReplicaId(2), Behaviour::Flood));
    let o = run(s);
    assert!(o.faults > 50, "the flooder must have sent its flood: {o:?}");
}

/// Sections 4.4 and 4.5: bogus VIEW-CHANGE messages and a NEW-VIEW with a wrong O set
/// from a Byzantine new primary are rejected.
#[test]
fn bogus_view_change_and_new_view() {
    for seed in 0..10 {
        let mut s = busy(seed, 4);
        s.byzantine.push((ReplicaId(1), Behaviour::BogusViewChange));
        // Force a view change to view 1, whose primary is the Byzantine replica.
        s.partitions.push(Partition {
            start_ms: 50,
            end_ms: 1_500,
            side: vec![ReplicaId(0)],
        });
        run(s);
    }
}
