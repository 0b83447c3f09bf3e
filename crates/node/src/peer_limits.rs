//! What one authenticated peer may cost a replica: one live connection per genesis
//! identity (a newer connection with the same key replaces the older, so a peer that
//! reconnects after a network cut is never locked out, and a peer that opens many
//! connections keeps only one), and a rate for the messages that make a replica work on
//! the sender's behalf (FETCH-BLOCKS reads and sends blocks, STATUS may be answered).
//! Everything else a peer sends is bounded by PBFT's own watermarks and queues.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use medchain_types::{Genesis, PeerMessage};
use tokio::sync::watch;

use crate::handshake::Role;

/// FETCH-BLOCKS accepted per peer per second, and as a burst. A catching-up replica has
/// at most two fetches outstanding, each answered with up to 256 blocks, and rotates
/// among its peers: about 5 a second in the catch-up benchmark.
pub const FETCH_BLOCKS_PER_SEC: f64 = 20.0;
pub const FETCH_BLOCKS_BURST: f64 = 40.0;
/// STATUS accepted per peer per second, and as a burst (a correct peer sends one per
/// `status_interval_ms`, 300 ms by default, plus answers).
pub const STATUS_PER_SEC: f64 = 20.0;
pub const STATUS_BURST: f64 = 40.0;

/// The generation of each identity's newest connection.
#[derive(Debug)]
pub struct LiveLinks {
    replicas: Vec<watch::Sender<u64>>,
    clients: Vec<watch::Sender<u64>>,
}

/// A connection's claim on its identity, lost when a newer connection claims it.
#[derive(Debug)]
pub struct Claim {
    generation: u64,
    newest: watch::Receiver<u64>,
}

impl Claim {
    /// Resolves when a newer connection of the same identity has proven itself.
    pub async fn superseded(mut self) {
        loop {
            if *self.newest.borrow_and_update() != self.generation {
                return;
            }
            if self.newest.changed().await.is_err() {
                // The node is stopping; the connection ends with it.
                return std::future::pending().await;
            }
        }
    }
}

impl LiveLinks {
    pub fn new(genesis: &Genesis) -> Self {
        let slots = |n: usize| (0..n).map(|_| watch::channel(0).0).collect();
        LiveLinks {
            replicas: slots(genesis.replicas.len()),
            clients: slots(genesis.clients.len()),
        }
    }

    /// Make this connection the identity's live one; any older one is told to close.
    /// `None` for an identity the genesis does not list (the handshake refuses those).
    pub fn claim(&self, role: Role) -> Option<Claim> {
        let slot = match role {
            Role::Replica(r) => self.replicas.get(r.index())?,
            Role::Client(c) => self.clients.get(usize::from(c.0))?,
        };
        let mut generation = 0;
        slot.send_modify(|g| {
            *g += 1;
            generation = *g;
        });
        Some(Claim {
            generation,
            newest: slot.subscribe(),
        })
    }
}

/// A token bucket: `rate` per second, at most `burst` saved up.
#[derive(Debug)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

impl Bucket {
    fn full(burst: f64, now: Instant) -> Self {
        Bucket {
            tokens: burst,
            at: now,
        }
    }

    fn take(&mut self, rate: f64, burst: f64, now: Instant) -> bool {
        let elapsed = now.saturating_duration_since(self.at).as_secs_f64();
        self.tokens = (self.tokens + elapsed * rate).min(burst);
        self.at = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// Per-peer budgets for the messages that make us work for the sender. Kept by identity,
/// not by connection, so that reconnecting does not refill them.
#[derive(Debug)]
pub struct PeerBudgets {
    peers: Vec<Mutex<(Bucket, Bucket)>>,
}

impl PeerBudgets {
    pub fn new(genesis: &Genesis, now: Instant) -> Self {
        PeerBudgets {
            peers: (0..genesis.replicas.len())
                .map(|_| {
                    Mutex::new((
                        Bucket::full(FETCH_BLOCKS_BURST, now),
                        Bucket::full(STATUS_BURST, now),
                    ))
                })
                .collect(),
        }
    }

    /// Whether `peer` may have this message handled now; messages outside the budgeted
    /// kinds always may.
    pub fn admit(&self, peer: medchain_types::ReplicaId, m: &PeerMessage, now: Instant) -> bool {
        let Some(slot) = self.peers.get(peer.index()) else {
            return false;
        };
        let Ok(mut buckets) = slot.lock() else {
            return false;
        };
        match m {
            PeerMessage::FetchBlocks(_) => {
                buckets
                    .0
                    .take(FETCH_BLOCKS_PER_SEC, FETCH_BLOCKS_BURST, now)
            }
            PeerMessage::Status(_) => buckets.1.take(STATUS_PER_SEC, STATUS_BURST, now),
            _ => true,
        }
    }
}

/// How long the rest of a frame may take once its length has arrived: 10 s, plus a
/// second per MiB so that a large (view-change) frame over a slow link still fits.
pub fn frame_deadline(len: usize) -> Duration {
    Duration::from_secs(10 + (len >> 20) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use medchain_testkit::{GenesisBuilder, TestKeys};
    use medchain_types::{ClientId, FetchBlocks, ReplicaId, Signed};

    const KEYS: TestKeys = TestKeys::new("peer-limits-test-");

    fn genesis() -> Genesis {
        GenesisBuilder::new("peer-limits-test", KEYS).build()
    }

    #[tokio::test]
    async fn a_newer_connection_of_the_same_identity_supersedes_the_older() {
        let links = LiveLinks::new(&genesis());
        let first = links.claim(Role::Replica(ReplicaId(1))).unwrap();
        let other = links.claim(Role::Replica(ReplicaId(2))).unwrap();
        let client = links.claim(Role::Client(ClientId(1))).unwrap();
        let second = links.claim(Role::Replica(ReplicaId(1))).unwrap();
        let wait = Duration::from_millis(200);
        assert!(tokio::time::timeout(wait, first.superseded()).await.is_ok());
        assert!(tokio::time::timeout(wait, second.superseded())
            .await
            .is_err());
        assert!(tokio::time::timeout(wait, other.superseded())
            .await
            .is_err());
        assert!(tokio::time::timeout(wait, client.superseded())
            .await
            .is_err());
        assert!(links.claim(Role::Replica(ReplicaId(9))).is_none());
        assert!(links.claim(Role::Client(ClientId(99))).is_none());
    }

    #[test]
    fn fetch_blocks_are_admitted_up_to_the_burst_then_at_the_rate() {
        let g = genesis();
        let t0 = Instant::now();
        let budgets = PeerBudgets::new(&g, t0);
        let fetch = PeerMessage::FetchBlocks(Signed::sign(
            FetchBlocks {
                from_height: 1,
                max_blocks: 256,
                replica: ReplicaId(1),
            },
            &KEYS.replica(1),
        ));
        let peer = ReplicaId(1);
        let admitted = (0..1000)
            .filter(|_| budgets.admit(peer, &fetch, t0))
            .count();
        assert_eq!(admitted, FETCH_BLOCKS_BURST as usize);
        // Another peer's budget is its own.
        assert!(budgets.admit(ReplicaId(2), &fetch, t0));
        // Half a second later: the rate's worth, no more.
        let later = t0 + Duration::from_millis(500);
        let refilled = (0..1000)
            .filter(|_| budgets.admit(peer, &fetch, later))
            .count();
        assert_eq!(refilled, (FETCH_BLOCKS_PER_SEC / 2.0) as usize);
        assert!(!budgets.admit(ReplicaId(7), &fetch, later));
    }

    #[test]
    fn the_frame_deadline_grows_with_the_frame() {
        assert_eq!(frame_deadline(100), Duration::from_secs(10));
        assert_eq!(frame_deadline(64 << 20), Duration::from_secs(74));
    }
}
