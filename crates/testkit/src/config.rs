//! The small protocol shape both the PBFT tests and the simulator run replicas with, so
//! that a handful of requests already goes through batches, checkpoints, watermark
//! windows and bounded fetches. Timeouts are left to each user: they differ on purpose.

use medchain_pbft::Config;
use medchain_types::{Limits, ReplicaId};

/// Batches of at most 4 requests, a window L of 16, fetches of at most 8 blocks.
pub fn small_limits() -> Limits {
    Limits {
        max_content_pieces: 8,
        max_content_bytes: 1 << 16,
        max_message_bytes: 1 << 20,
        max_batch_requests: 4,
        max_payload_bytes: 256,
        window: 16,
        max_fetch_blocks: 8,
    }
}

/// `Config::new(id)` with a checkpoint every 4 sequence numbers, [`small_limits`], at most
/// 8 batches in flight and the view-change backoff capped at 2^4.
pub fn small_config(id: ReplicaId) -> Config {
    let mut c = Config::new(id);
    c.checkpoint_interval = 4;
    c.limits = small_limits();
    c.max_in_flight = 8;
    c.max_backoff_exponent = 4;
    c
}
