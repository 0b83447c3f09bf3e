//! The medical records service that runs on the ledger: users and roles, consent and
//! one-time consent codes, records and amendments, prescriptions and dispensing, the
//! audit trail of reads, and break-glass access.
//!
//! `tx` is what goes on the ledger, `execute` turns committed blocks into state (inside
//! the block's own SQLite transaction), and `query` reads that state for the API.

pub mod execute;
pub mod query;
pub mod tx;

pub use execute::{
    break_glass_active, break_glass_until, consent_active, consent_code_usable, doctor_has_consent,
    user, Ledger, Outcome, UserRow,
};
pub use tx::{Actor, Batch, Envelope, Grantee, Medication, RecordContent, Transaction};
