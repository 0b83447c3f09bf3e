//! The medical records service that runs on the ledger: users and roles, consent and
//! one-time consent codes, records and amendments, prescriptions and dispensing, the
//! audit trail of reads, break-glass access, and co-signed proposals.
//!
//! Map: [`tx`] is what goes on the ledger; [`ledger`] is the state machine that turns
//! committed blocks into state inside each block's own SQLite transaction (savepoints,
//! outcomes), with the rules of each family of transactions in `rules/`; [`policy`] holds
//! the read predicates that the rules and the API share; [`limits`] every bound;
//! [`outcome`] the verdicts as types; [`schema`] the tables; [`query`] the reads the API
//! serves; [`sealed`] the format of encrypted content and the reader's hook.

pub mod ledger;
pub mod limits;
pub mod names;
pub mod outcome;
pub mod policy;
pub mod query;
mod rules;
pub mod schema;
pub mod sealed;
pub mod tx;

pub use ledger::Ledger;
pub use outcome::{Outcome, Rejection};
pub use policy::{
    break_glass_active, break_glass_until, consent_active, consent_code_usable, doctor_has_consent,
    may_add_record, user, UserRow,
};
pub use tx::{
    Actor, Batch, Envelope, Grantee, Medication, ProposedAction, RecordContent, ReviewOutcome,
    Transaction,
};
