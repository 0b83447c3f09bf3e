//! What a seed means: cluster size, clients, the fault plan, and the Byzantine replicas.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::byzantine::Behaviour;
use medchain_types::ReplicaId;

/// A partition: `side` cannot talk to the others between `start_ms` and `end_ms`.
#[derive(Debug, Clone)]
pub struct Partition {
    pub start_ms: u64,
    pub end_ms: u64,
    pub side: Vec<ReplicaId>,
}

/// A crash of a correct replica and its restart from its persisted state.
#[derive(Debug, Clone)]
pub struct Crash {
    pub replica: ReplicaId,
    pub at_ms: u64,
    pub restart_ms: u64,
}

/// One simulated run.
#[derive(Debug, Clone)]
pub struct Scenario {
    pub seed: u64,
    pub n: usize,
    pub clients: usize,
    pub requests_per_client: usize,
    /// Requests are issued between 0 and this time.
    pub issue_until_ms: u64,
    /// Global stabilisation time: network faults stop, crashed replicas are back.
    pub gst_ms: u64,
    /// Liveness bound: every request must have committed by `gst_ms + liveness_bound_ms`.
    pub liveness_bound_ms: u64,
    pub drop_prob: f64,
    pub dup_prob: f64,
    pub max_delay_ms: u64,
    pub partitions: Vec<Partition>,
    pub crashes: Vec<Crash>,
    pub byzantine: Vec<(ReplicaId, Behaviour)>,
    /// Enabled only in the planted-bug tests.
    #[cfg(feature = "planted-bugs")]
    pub planted_bug: Option<medchain_pbft::PlantedBug>,
}

impl Scenario {
    pub fn f(&self) -> usize {
        (self.n - 1) / 3
    }

    /// A fault-free run: the baseline named scenarios start from.
    pub fn calm(seed: u64, n: usize) -> Self {
        Scenario {
            seed,
            n,
            clients: 2,
            requests_per_client: 5,
            issue_until_ms: 1_000,
            gst_ms: 0,
            liveness_bound_ms: 30_000,
            drop_prob: 0.0,
            dup_prob: 0.0,
            max_delay_ms: 5,
            partitions: Vec::new(),
            crashes: Vec::new(),
            byzantine: Vec::new(),
            #[cfg(feature = "planted-bugs")]
            planted_bug: None,
        }
    }

    /// The scenario a seed stands for.
    pub fn from_seed(seed: u64, n: usize) -> Self {
        let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x6d65_6463_6861_696e);
        let f = (n - 1) / 3;
        let mut s = Scenario::calm(seed, n);
        s.clients = rng.gen_range(1..=3);
        s.requests_per_client = rng.gen_range(2..=8);
        s.gst_ms = rng.gen_range(500..4_000);
        s.issue_until_ms = s.gst_ms + rng.gen_range(0..1_000);
        let calm_network = rng.gen_bool(0.15);
        if !calm_network {
            s.drop_prob = rng.gen_range(0.0..0.25);
            s.dup_prob = rng.gen_range(0.0..0.1);
            s.max_delay_ms = rng.gen_range(5..300);
        }
        // Byzantine replicas: none in a fifth of the runs, otherwise 1..=f.
        let mut ids: Vec<ReplicaId> = (0..n).map(|i| ReplicaId(i as u16)).collect();
        shuffle(&mut ids, &mut rng);
        let byz_count = if rng.gen_bool(0.2) {
            0
        } else {
            rng.gen_range(1..=f)
        };
        for id in ids.iter().take(byz_count) {
            s.byzantine.push((*id, Behaviour::random(&mut rng)));
        }
        let correct: Vec<ReplicaId> = ids[byz_count..].to_vec();
        for _ in 0..rng.gen_range(0..=2) {
            let at_ms = rng.gen_range(0..s.gst_ms);
            let restart_ms = rng.gen_range(at_ms..=s.gst_ms);
            let replica = correct[rng.gen_range(0..correct.len())];
            s.crashes.push(Crash {
                replica,
                at_ms,
                restart_ms,
            });
        }
        for _ in 0..rng.gen_range(0..=2) {
            let start_ms = rng.gen_range(0..s.gst_ms);
            let end_ms = rng.gen_range(start_ms..=s.gst_ms);
            let size = rng.gen_range(1..=n / 2);
            let mut side = ids.clone();
            shuffle(&mut side, &mut rng);
            side.truncate(size);
            s.partitions.push(Partition {
                start_ms,
                end_ms,
                side,
            });
        }
        s
    }

    /// Count of fault events planned (crashes, partitions, Byzantine replicas); message
    /// faults are counted as they happen.
    pub fn planned_faults(&self) -> u64 {
        (self.crashes.len() + self.partitions.len() + self.byzantine.len()) as u64
    }
}

/// Fisher-Yates with our seeded generator (rand's `SliceRandom` would do, but keeping it
/// here pins the exact sequence of draws a seed makes).
pub(crate) fn shuffle<T>(v: &mut [T], rng: &mut ChaCha8Rng) {
    for i in (1..v.len()).rev() {
        let j = rng.gen_range(0..=i);
        v.swap(i, j);
    }
}
