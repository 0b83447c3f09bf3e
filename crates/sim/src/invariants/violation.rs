//! What an invariant found, as a type: each kind of violation with the facts that show
//! it. `Display` gives the one line the simulator prints and replays by.

use std::fmt;

use medchain_pbft::Mode;
use medchain_types::{ClientId, Hash32, ReplicaId, SeqNum, ViewNum};

/// A correct replica as the end-of-run checks see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplicaView {
    pub replica: ReplicaId,
    pub mode: Mode,
    pub view: ViewNum,
    pub height: SeqNum,
}

/// A broken safety or liveness property.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Violation {
    /// Two correct replicas committed different blocks at one height (section 4.5.1).
    Agreement {
        replica: ReplicaId,
        hash: Hash32,
        height: SeqNum,
        first: ReplicaId,
        other: Hash32,
    },
    /// A committed block whose certificate or contents do not verify.
    BadCertificate {
        replica: ReplicaId,
        height: SeqNum,
        error: String,
    },
    /// A committed block that does not extend the replica's own chain.
    NotExtending {
        replica: ReplicaId,
        height: SeqNum,
        head: SeqNum,
    },
    /// A committed request that no client issued.
    NotIssued {
        replica: ReplicaId,
        request: (ClientId, u64),
        height: SeqNum,
    },
    /// A request executed twice by one replica.
    ExecutedTwice {
        replica: ReplicaId,
        request: (ClientId, u64),
    },
    /// Requests not committed by the liveness deadline (section 4.5.2).
    NotCommitted {
        missing: usize,
        first: (ClientId, u64),
        deadline_ms: u64,
    },
    /// Correct replicas at different heights at the deadline.
    HeightsDiverge {
        heights: Vec<(ReplicaId, SeqNum)>,
        deadline_ms: u64,
    },
    /// Correct replicas not settled in one normal view by the deadline.
    NoCommonView {
        states: Vec<(ReplicaId, Mode, ViewNum)>,
        deadline_ms: u64,
    },
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Violation::Agreement {
                replica,
                hash,
                height,
                first,
                other,
            } => write!(
                f,
                "agreement: {replica} committed {hash:?} at height {height}, {first} committed {other:?}"
            ),
            Violation::BadCertificate {
                replica,
                height,
                error,
            } => write!(f, "certificates: {replica} committed block {height}: {error}"),
            Violation::NotExtending {
                replica,
                height,
                head,
            } => write!(
                f,
                "certificates: {replica} committed block {height} that does not extend its chain at {head}"
            ),
            Violation::NotIssued {
                replica,
                request,
                height,
            } => write!(
                f,
                "integrity: {replica} committed request {request:?} at {height} that no client issued"
            ),
            Violation::ExecutedTwice { replica, request } => write!(
                f,
                "integrity: {replica} executed request ({:?}, {}) twice",
                request.0, request.1
            ),
            Violation::NotCommitted {
                missing,
                first,
                deadline_ms,
            } => write!(
                f,
                "liveness: {missing} request(s) not committed by {deadline_ms} ms (first: {first:?})"
            ),
            Violation::HeightsDiverge {
                heights,
                deadline_ms,
            } => write!(
                f,
                "liveness: correct replicas at different heights at {deadline_ms} ms: {heights:?}"
            ),
            Violation::NoCommonView {
                states,
                deadline_ms,
            } => write!(
                f,
                "view-change progress: correct replicas not in one normal view by {deadline_ms} ms: {states:?}"
            ),
        }
    }
}
