//! The access monitor exists so that every read of a patient's data is either explained by
//! a ledger fact or flagged with a named rule a privacy officer can read (DESIGN.md, "Every
//! access is explained or flagged"). It is sans-IO and deterministic: the node feeds it the
//! ledger's facts in order and every replica computes the same alerts for the same chain.
//!
//! - [`facts`]: the plain ledger events it reads.
//! - [`explain`]: the explanations of a read, strongest first.
//! - [`rules`]: the named rules, their thresholds and sentences.
//! - [`monitor`]: the state machine, `Monitor::apply(&Fact) -> Vec<Alert>`.
//! - [`score`]: the learned score (isolation forest) with the features that drove it.
//! - [`eval`]: a synthetic consortium workload with injected snooping, and its report.

pub mod eval;
pub mod explain;
pub mod facts;
pub mod monitor;
pub mod rules;
pub mod score;

pub use explain::{explain, Explanation, ReadContext};
pub use facts::{Fact, FactKind, Grantee, ReadVia, Role};
pub use monitor::{Alert, Applied, Counters, DayTally, Footprint, Limits, Monitor, ReaderDay};
pub use rules::{Finding, Rule, VolumeWindow};
pub use score::{features, Driver, Feature, ForestOptions, IsolationForest, Score, ScoreError};
