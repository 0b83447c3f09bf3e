//! Knobs of a replica. Every count and duration has a limit; units are in the names.

use medchain_types::{Limits, ReplicaId};

/// A deliberate protocol bug for proving that the simulator catches bugs.
#[cfg(feature = "planted-bugs")]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlantedBug {
    /// "Prepared" after the pre-prepare and 2f-1 prepares (2f votes instead of 2f+1).
    PrepareQuorum2f,
    /// Accept a NEW-VIEW without recomputing its O set from its view changes.
    SkipNewViewValidation,
}

/// Replica configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// This replica.
    pub id: ReplicaId,
    /// Checkpoint every K sequence numbers.
    pub checkpoint_interval: u64,
    /// Message and window limits (the window L lives here, shared with the verifier).
    pub limits: Limits,
    /// Most sequence numbers the primary keeps proposed but not yet executed.
    pub max_in_flight: u64,
    /// How long the primary waits to fill a batch while earlier proposals are in flight
    /// (an idle primary proposes at once).
    pub max_batch_delay_ms: u64,
    /// Most client requests a replica holds unexecuted.
    pub max_pending_requests: usize,
    /// Most bytes of waiting requests held (requests carry content, up to megabytes).
    pub max_pending_bytes: usize,
    /// A backup suspects the primary when a request waits this long.
    pub request_timeout_ms: u64,
    /// How long to wait for NEW-VIEW once 2f+1 replicas are changing view; doubles with
    /// each consecutive failed view, up to `2^max_backoff_exponent` times.
    pub view_change_timeout_ms: u64,
    pub max_backoff_exponent: u32,
    /// Resend own votes for unexecuted sequence numbers after this long.
    pub resend_interval_ms: u64,
    /// Heartbeat (STATUS) period.
    pub status_interval_ms: u64,
    /// Give up on a state-transfer request after this long and ask another peer.
    pub fetch_timeout_ms: u64,
    #[cfg(feature = "planted-bugs")]
    pub planted_bug: Option<PlantedBug>,
}

impl Config {
    /// Defaults for a replica on a LAN or loopback. These are the only defaults: a node's
    /// configuration file (`medchain_node::config::PbftSettings`) starts from them.
    pub fn new(id: ReplicaId) -> Self {
        Config {
            id,
            checkpoint_interval: 64,
            limits: Limits::default(),
            max_in_flight: 64,
            max_batch_delay_ms: 2,
            max_pending_requests: 100_000,
            max_pending_bytes: 512 << 20,
            request_timeout_ms: 500,
            view_change_timeout_ms: 1_000,
            max_backoff_exponent: 6,
            resend_interval_ms: 300,
            status_interval_ms: 300,
            fetch_timeout_ms: 900,
            #[cfg(feature = "planted-bugs")]
            planted_bug: None,
        }
    }

    #[cfg(feature = "planted-bugs")]
    pub(crate) fn bug(&self, bug: PlantedBug) -> bool {
        self.planted_bug == Some(bug)
    }
}
