//! The simulator over many seeds, as CI runs it: no invariant may break, the seeds must
//! really inject faults and force view changes, and a seed must replay to the same trace.

use medchain_sim::{run_scenario, Scenario, SeedOutcome};

fn run_range(range: std::ops::Range<u64>, n: usize) -> Vec<SeedOutcome> {
    let threads = std::thread::available_parallelism().map_or(1, |p| p.get());
    let seeds: Vec<u64> = range.collect();
    let chunks: Vec<Vec<u64>> = seeds
        .chunks(seeds.len().div_ceil(threads).max(1))
        .map(|c| c.to_vec())
        .collect();
    std::thread::scope(|s| {
        let handles: Vec<_> = chunks
            .into_iter()
            .map(|chunk| {
                s.spawn(move || {
                    medchain_types::crypto::set_thread_verification_memo(true);
                    chunk
                        .into_iter()
                        .map(|seed| run_scenario(&Scenario::from_seed(seed, n), false).0)
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("worker panicked"))
            .collect()
    })
}

fn assert_clean(outcomes: &[SeedOutcome]) {
    let bad: Vec<_> = outcomes
        .iter()
        .filter(|o| !o.violations.is_empty())
        .collect();
    assert!(
        bad.is_empty(),
        "{} seed(s) violated invariants, first: seed {} {:?}",
        bad.len(),
        bad[0].seed,
        bad[0].violations
    );
    let faults: u64 = outcomes.iter().map(|o| o.faults).sum();
    let view_changes: u64 = outcomes.iter().map(|o| o.view_changes).sum();
    let blocks: u64 = outcomes.iter().map(|o| o.committed_blocks).sum();
    let requests: u64 = outcomes.iter().map(|o| o.requests).sum();
    // The run is only evidence if it really stressed the protocol.
    assert!(
        faults > outcomes.len() as u64 * 10,
        "too few faults: {faults}"
    );
    assert!(
        view_changes > outcomes.len() as u64 / 4,
        "too few view changes: {view_changes}"
    );
    assert!(blocks > 0 && requests > 0);
}

#[test]
fn two_thousand_seeds_with_four_replicas_keep_every_invariant() {
    assert_clean(&run_range(0..2_000, 4));
}

#[test]
fn three_hundred_seeds_with_seven_replicas_keep_every_invariant() {
    assert_clean(&run_range(0..300, 7));
}

#[test]
fn same_seed_same_trace() {
    for seed in [3, 17, 99] {
        let s = Scenario::from_seed(seed, 4);
        let a = run_scenario(&s, false).0;
        let b = run_scenario(&s, true).0;
        assert_eq!(
            a.trace_hash, b.trace_hash,
            "seed {seed} is not deterministic"
        );
        assert_eq!(a.committed_blocks, b.committed_blocks);
    }
    let a = run_scenario(&Scenario::from_seed(1, 4), false).0;
    let b = run_scenario(&Scenario::from_seed(2, 4), false).0;
    assert_ne!(a.trace_hash, b.trace_hash, "different seeds must differ");
}
