//! A simulator that cannot catch a known bug proves nothing: plant protocol bugs in the
//! real core and require the simulator to report a violation within 10,000 seeds.
#![cfg(feature = "planted-bugs")]

use medchain_pbft::PlantedBug;
use medchain_sim::invariants::Violation;
use medchain_sim::{run_scenario, Scenario};

/// The first seed below `limit` whose run reports a violation with `bug` planted.
fn first_violation(bug: PlantedBug, limit: u64) -> Option<(u64, Vec<Violation>)> {
    medchain_types::crypto::set_thread_verification_memo(true);
    (0..limit).find_map(|seed| {
        let mut s = Scenario::from_seed(seed, 4);
        s.planted_bug = Some(bug);
        let (o, _) = run_scenario(&s, false);
        (!o.violations.is_empty()).then_some((seed, o.violations))
    })
}

#[test]
fn skipping_new_view_validation_is_caught() {
    let found = first_violation(PlantedBug::SkipNewViewValidation, 10_000);
    let (seed, violations) = found.expect("planted bug not caught within 10,000 seeds");
    eprintln!("SkipNewViewValidation caught at seed {seed}: {violations:?}");
}

#[test]
fn a_prepare_quorum_of_2f_is_caught() {
    let found = first_violation(PlantedBug::PrepareQuorum2f, 10_000);
    let (seed, violations) = found.expect("planted bug not caught within 10,000 seeds");
    eprintln!("PrepareQuorum2f caught at seed {seed}: {violations:?}");
}
