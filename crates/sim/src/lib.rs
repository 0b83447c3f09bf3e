//! `medchain-sim`: the deterministic simulator of the MedChain PBFT core.
//!
//! It runs n replicas of the real core (the same code the node runs) against a seeded
//! simulated network, clock and disk, injects the faults the seed picks (message drop,
//! delay, duplication and reordering; partitions; crash and restart from the persisted
//! state; up to f Byzantine replicas from [`byzantine`]) and checks the [`invariants`]
//! after every step. Same seed, same trace: every run prints a hash of its trace.
//! Signatures stay real; a per-thread memo verifies each signed byte string once.

pub mod byzantine;
pub mod invariants;
pub mod runner;
pub mod scenario;

pub use runner::{run_scenario, SeedOutcome};
pub use scenario::Scenario;
