//! `medchain-testkit`: the one set of test identities, genesis builder, signing helpers and
//! in-memory network that the PBFT tests, the simulator and the other crates' tests share,
//! instead of each keeping its own copy. Never a dependency of production code.
//!
//! - [`TestKeys`]: deterministic replica and client keys under a per-suite prefix.
//! - [`GenesisBuilder`]: a genesis of n replicas and c clients, with optional names,
//!   addresses, users and consents, so each suite rebuilds exactly the genesis it had.
//! - [`sign`]: validly signed pre-prepares, prepared and checkpoint proofs, commit
//!   certificates and committed blocks.
//! - [`config`]: the small protocol shape (K = 4, L = 16, batches of 4) both the PBFT tests
//!   and the simulator run.
//! - [`Network`] and [`Disk`]: what it takes to drive real `medchain_pbft::Replica`s in
//!   memory: a deterministic queue of encoded messages with its traffic counts, and each
//!   replica's durable state and chain, folded, served and replayed on restart.
//!
//! # What the PBFT tests' `Cluster` and the simulator share, and what they do not
//!
//! Both post every message as encoded bytes onto one [`Network`], open it at its
//! destination through the real verifier, and fold each replica's outputs into a
//! [`Disk`] they restart it from. What stays with each of them is genuinely different:
//!
//! - Faults. The `Cluster` decides each message's fate with a test's rule (deliver, hold
//!   until released, drop) and by isolation; it needs the decoded message, so it applies
//!   the rule before encoding. The simulator draws drops, delays, duplicates and
//!   partitions from its seeded RNG, and the order of those draws is part of every trace
//!   hash: moving them into a shared fault model would change every pinned trace.
//! - Time. The `Cluster` delivers instantly (it posts at the current time, so the queue is
//!   FIFO) and moves time only when a test says so, ticking replicas at their exact
//!   deadlines. The simulator's queue also carries its own events (ticks, clients,
//!   crashes, checks), which is why [`Network`] is generic over an event type: deliveries
//!   and events at equal times must keep one posting order.
//! - What a step records. The `Cluster` keeps every output and delivered message for
//!   assertions and checks the host contract ([`Disk::check_chain`]); the simulator runs
//!   its invariants, Byzantine mocks and trace hash instead.
//! - How much of the chain a restart sees. The `Cluster` hands back every block hash, the
//!   simulator the last 64 (its traces depend on it), so [`Disk::restore`] takes the count.

pub mod config;
pub mod disk;
pub mod genesis;
pub mod keys;
pub mod network;
pub mod sign;

pub use config::{small_config, small_limits};
pub use disk::Disk;
pub use genesis::GenesisBuilder;
pub use keys::TestKeys;
pub use network::{Due, Envelope, Network, Traffic};
