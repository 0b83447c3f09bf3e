//! What a replica measures about itself: commit latency, committed records and blocks,
//! success rates, view changes, queue length, peers, CPU time and energy. One registry
//! per node (passed around, never global), exported as Prometheus text at `/metrics` and
//! as a one-second time series at `/api/metrics` for the UI.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use medchain_types::{PeerMessage, ReplicaId};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::{Registry, Unit};

use crate::energy::{EnergyMeter, ProcessClock};

/// Points kept for the UI's charts: five minutes at one per second.
const SERIES_SECONDS: usize = 300;
/// A peer not heard from for this long is shown as down (it sends STATUS every 300 ms).
const PEER_SILENCE: Duration = Duration::from_secs(2);
/// Longest latency the interval histogram tracks; slower commits are clamped to it.
const LATENCY_TRACKED_MAX_US: u64 = 60_000_000;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabel {
    result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PeerLabel {
    peer: u16,
}

/// How a request that reached this replica ended, as its client saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestResult {
    /// Committed and durable here.
    Committed,
    /// Not accepted: the core's queue was full, or the replica is stopping.
    Refused,
    /// The client stopped waiting (timeout, or its connection closed) before the commit.
    Abandoned,
}

impl RequestResult {
    fn label(self) -> &'static str {
        match self {
            RequestResult::Committed => "committed",
            RequestResult::Refused => "refused",
            RequestResult::Abandoned => "abandoned",
        }
    }
}

#[derive(Debug, Default, Clone, Copy)]
struct PeerSeen {
    last_seen: Option<Instant>,
    height: Option<u64>,
    view: Option<u64>,
}

/// Counts since the last one-second sample, for the time series.
#[derive(Debug)]
struct Interval {
    latency_us: hdrhistogram::Histogram<u64>,
    committed: u64,
    failed: u64,
}

#[derive(Debug)]
struct Sampler {
    started: Instant,
    last_at: Instant,
    last_records: u64,
    clock: ProcessClock,
    energy: EnergyMeter,
    series: VecDeque<MetricsPoint>,
}

/// One replica's metrics.
pub struct Metrics {
    replica: ReplicaId,
    replicas: usize,
    registry: Registry,
    committed_records: Counter,
    committed_blocks: Counter,
    commit_latency: Histogram,
    requests: Family<ResultLabel, Counter>,
    blocks_proposed: Counter,
    own_blocks_committed: Counter,
    view_changes: Counter,
    pending_requests: Gauge,
    height: Gauge,
    view: Gauge,
    cpu_seconds: Counter<f64, AtomicU64>,
    energy_joules: Counter<f64, AtomicU64>,
    resident_memory: Gauge,
    peer_up: Family<PeerLabel, Gauge>,
    peer_height: Family<PeerLabel, Gauge>,
    peer_view: Family<PeerLabel, Gauge>,
    energy_source: &'static str,
    peers: Mutex<Vec<PeerSeen>>,
    interval: Mutex<Interval>,
    sampler: Mutex<Sampler>,
    scrapes: AtomicU64,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics")
            .field("replica", &self.replica)
            .field("energy_source", &self.energy_source)
            .finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Metrics {
    /// Metrics for `replica` of a cluster of `replicas`, with energy measured by `energy`.
    // Kept long on purpose: a flat list of registrations, one per metric in the order
    // `/metrics` prints them, which reads best as the one list it is.
    pub fn new(replica: ReplicaId, replicas: usize, energy: EnergyMeter) -> Self {
        let mut registry = Registry::with_prefix("medchain");
        let committed_records = Counter::default();
        registry.register(
            "committed_records",
            "Records (client requests) in blocks committed and durable here",
            committed_records.clone(),
        );
        let committed_blocks = Counter::default();
        registry.register(
            "committed_blocks",
            "Blocks committed and durable here",
            committed_blocks.clone(),
        );
        // 0.25 ms .. ~8 s: below the fsync floor up to the client timeout.
        let commit_latency = Histogram::new(exponential_buckets(0.000_25, 2.0, 16));
        registry.register_with_unit(
            "commit_latency",
            "From a client's request reaching this replica to its reply (block durable)",
            Unit::Seconds,
            commit_latency.clone(),
        );
        let requests = Family::<ResultLabel, Counter>::default();
        registry.register(
            "requests",
            "Client requests received here, by how they ended",
            requests.clone(),
        );
        let blocks_proposed = Counter::default();
        registry.register(
            "blocks_proposed",
            "Blocks this replica proposed as primary",
            blocks_proposed.clone(),
        );
        let own_blocks_committed = Counter::default();
        registry.register(
            "own_blocks_committed",
            "Blocks this replica proposed that were committed",
            own_blocks_committed.clone(),
        );
        let view_changes = Counter::default();
        registry.register(
            "view_changes",
            "New views installed since start",
            view_changes.clone(),
        );
        let pending_requests = Gauge::default();
        registry.register(
            "pending_requests",
            "Requests waiting for a block",
            pending_requests.clone(),
        );
        let height = Gauge::default();
        registry.register("height", "Last executed block", height.clone());
        let view = Gauge::default();
        registry.register("view", "Current view", view.clone());
        let cpu_seconds = Counter::<f64, AtomicU64>::default();
        registry.register(
            "cpu_seconds",
            "CPU time of this process (user and system), measured",
            cpu_seconds.clone(),
        );
        let energy_joules = Counter::<f64, AtomicU64>::default();
        registry.register(
            "energy_joules",
            "Energy attributed to this process (see energy_source_info)",
            energy_joules.clone(),
        );
        let energy_source = energy.source();
        registry.register(
            "energy_source",
            "How energy_joules is obtained",
            Info::new(vec![("source", energy_source)]),
        );
        let resident_memory = Gauge::default();
        registry.register_with_unit(
            "resident_memory",
            "Resident set size of this process",
            Unit::Bytes,
            resident_memory.clone(),
        );
        let peer_up = Family::<PeerLabel, Gauge>::default();
        registry.register(
            "peer_up",
            "1 if the peer was heard from in the last 2 s",
            peer_up.clone(),
        );
        let peer_height = Family::<PeerLabel, Gauge>::default();
        registry.register(
            "peer_height",
            "Last executed block a peer reported",
            peer_height.clone(),
        );
        let peer_view = Family::<PeerLabel, Gauge>::default();
        registry.register("peer_view", "View a peer is in", peer_view.clone());
        let now = Instant::now();
        Metrics {
            replica,
            replicas,
            registry,
            committed_records,
            committed_blocks,
            commit_latency,
            requests,
            blocks_proposed,
            own_blocks_committed,
            view_changes,
            pending_requests,
            height,
            view,
            cpu_seconds,
            energy_joules,
            resident_memory,
            peer_up,
            peer_height,
            peer_view,
            energy_source,
            peers: Mutex::new(vec![PeerSeen::default(); replicas]),
            interval: Mutex::new(Interval {
                latency_us: new_interval_histogram(),
                committed: 0,
                failed: 0,
            }),
            sampler: Mutex::new(Sampler {
                started: now,
                last_at: now,
                last_records: 0,
                clock: ProcessClock::default(),
                energy,
                series: VecDeque::with_capacity(SERIES_SECONDS),
            }),
            scrapes: AtomicU64::new(0),
        }
    }

    /// A block is durable here.
    pub fn block_committed(&self, records: usize, proposer: ReplicaId) {
        self.committed_blocks.inc();
        self.committed_records.inc_by(records as u64);
        if proposer == self.replica {
            self.own_blocks_committed.inc();
        }
    }

    /// This replica, as primary, sent a pre-prepare for a new block.
    pub fn block_proposed(&self) {
        self.blocks_proposed.inc();
    }

    pub fn view_installed(&self) {
        self.view_changes.inc();
    }

    /// A request that arrived here at `received` was answered now.
    /// Counted per transaction, so that a batch of 100 weighs as 100 requests against the
    /// gateway's refused and abandoned ones (which are per transaction too).
    pub fn request_committed(&self, received: Instant, transactions: usize) {
        let latency = received.elapsed();
        let n = transactions.max(1);
        for _ in 0..n {
            self.commit_latency.observe(latency.as_secs_f64());
        }
        self.requests
            .get_or_create(&ResultLabel {
                result: RequestResult::Committed.label(),
            })
            .inc_by(n as u64);
        let mut i = lock(&self.interval);
        let us = (latency.as_micros() as u64).clamp(1, LATENCY_TRACKED_MAX_US);
        let _ = i.latency_us.record_n(us, n as u64);
        i.committed += n as u64;
    }

    /// A request ended without a commit.
    pub fn request_failed(&self, result: RequestResult) {
        self.requests
            .get_or_create(&ResultLabel {
                result: result.label(),
            })
            .inc();
        lock(&self.interval).failed += 1;
    }

    /// The core's figures after a step.
    pub fn core_state(&self, height: u64, view: u64, pending: usize) {
        self.height.set(height as i64);
        self.view.set(view as i64);
        self.pending_requests.set(pending as i64);
    }

    /// Note what a verified peer message tells about its sender.
    pub fn observe_peer(&self, m: &PeerMessage) {
        let (peer, view, height) = match m {
            PeerMessage::Status(s) => (
                s.body.replica,
                Some(s.body.view),
                Some(s.body.last_executed),
            ),
            PeerMessage::Prepare(p) => (p.body.replica, Some(p.body.view), None),
            PeerMessage::Commit(c) => (c.body.replica, Some(c.body.view), None),
            PeerMessage::PrePrepare { pre_prepare, .. } => {
                (pre_prepare.body.replica, Some(pre_prepare.body.view), None)
            }
            PeerMessage::Checkpoint(c) => (c.body.replica, None, Some(c.body.seq)),
            PeerMessage::NewView { new_view, .. } => {
                (new_view.body.replica, Some(new_view.body.view), None)
            }
            PeerMessage::ViewChange { view_change, .. } => (view_change.body.replica, None, None),
            PeerMessage::FetchBlocks(f) => (f.body.replica, None, None),
            // Forwarded requests and block transfers do not name their sender.
            PeerMessage::Request(_) | PeerMessage::Blocks(_) => return,
        };
        let mut peers = lock(&self.peers);
        let Some(p) = peers.get_mut(usize::from(peer.0)) else {
            return;
        };
        p.last_seen = Some(Instant::now());
        if let Some(v) = view {
            p.view = Some(v);
        }
        if let Some(h) = height {
            p.height = Some(p.height.map_or(h, |old| old.max(h)));
        }
    }

    /// Take a one-second sample: CPU, energy, memory, peers and a point of the series.
    /// Called by the node's sampler task.
    pub fn sample(&self) {
        let mut s = lock(&self.sampler);
        let now = Instant::now();
        let secs = now.duration_since(s.last_at).as_secs_f64().max(1e-3);
        s.last_at = now;

        let cpu_delta = s.clock.advance();
        self.cpu_seconds.inc_by(cpu_delta);
        let joules = s.energy.joules(cpu_delta);
        self.energy_joules.inc_by(joules);
        if let Some(rss) = resident_bytes() {
            self.resident_memory.set(rss as i64);
        }
        self.refresh_peer_gauges();

        let records = self.committed_records.get();
        let delta_records = records.saturating_sub(s.last_records);
        s.last_records = records;
        let (p50, p99, committed, failed) = {
            let mut i = lock(&self.interval);
            let q = |q: f64| {
                (!i.latency_us.is_empty())
                    .then(|| i.latency_us.value_at_quantile(q) as f64 / 1000.0)
            };
            let out = (q(0.5), q(0.99), i.committed, i.failed);
            i.latency_us.reset();
            i.committed = 0;
            i.failed = 0;
            out
        };
        let answered = committed + failed;
        let point = MetricsPoint {
            t_ms: now.duration_since(s.started).as_millis() as u64,
            committed_records_per_s: delta_records as f64 / secs,
            p50_ms: p50,
            p99_ms: p99,
            success_rate: (answered > 0).then(|| committed as f64 / answered as f64),
            energy_joules: joules,
            records_per_joule: (joules > 0.0).then(|| delta_records as f64 / joules),
            cpu_percent: cpu_delta / secs * 100.0,
            view_changes: self.view_changes.get(),
        };
        if s.series.len() == SERIES_SECONDS {
            s.series.pop_front();
        }
        s.series.push_back(point);
    }

    fn refresh_peer_gauges(&self) {
        let peers = lock(&self.peers);
        for (i, p) in peers.iter().enumerate() {
            if i == usize::from(self.replica.0) {
                continue;
            }
            let label = PeerLabel { peer: i as u16 };
            let up = p.last_seen.is_some_and(|t| t.elapsed() < PEER_SILENCE);
            self.peer_up.get_or_create(&label).set(i64::from(up));
            if let Some(h) = p.height {
                self.peer_height.get_or_create(&label).set(h as i64);
            }
            if let Some(v) = p.view {
                self.peer_view.get_or_create(&label).set(v as i64);
            }
        }
    }

    fn peer_statuses(&self) -> Vec<PeerStatus> {
        let peers = lock(&self.peers);
        (0..self.replicas)
            .map(|i| {
                if i == usize::from(self.replica.0) {
                    return PeerStatus {
                        replica: i as u16,
                        up: true,
                        height: Some(self.height.get().max(0) as u64),
                        view: Some(self.view.get().max(0) as u64),
                        last_seen_ms_ago: Some(0),
                    };
                }
                let p = peers.get(i).copied().unwrap_or_default();
                let ago = p.last_seen.map(|t| t.elapsed());
                PeerStatus {
                    replica: i as u16,
                    up: ago.is_some_and(|a| a < PEER_SILENCE),
                    height: p.height,
                    view: p.view,
                    last_seen_ms_ago: ago.map(|a| a.as_millis() as u64),
                }
            })
            .collect()
    }
}

fn new_interval_histogram() -> hdrhistogram::Histogram<u64> {
    // Three significant digits from 1 µs to a minute: fixed bounds that are always valid.
    #[allow(clippy::expect_used)]
    hdrhistogram::Histogram::new_with_bounds(1, LATENCY_TRACKED_MAX_US, 3)
        .expect("1 µs .. 60 s at 3 digits are valid bounds")
}

/// Resident set size of this process, from /proc.
fn resident_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

impl Metrics {
    /// Prometheus (OpenMetrics) text.
    pub fn prometheus_text(&self) -> String {
        self.scrapes.fetch_add(1, Ordering::Relaxed);
        let mut out = String::new();
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }

    /// The figures since start and the recent series, for the API and the UI.
    pub fn snapshot(&self) -> MetricsSnapshot {
        let series: Vec<MetricsPoint> = lock(&self.sampler).series.iter().cloned().collect();
        let requests = |r: RequestResult| {
            self.requests
                .get_or_create(&ResultLabel { result: r.label() })
                .get()
        };
        let ok = requests(RequestResult::Committed);
        let failed = requests(RequestResult::Refused) + requests(RequestResult::Abandoned);
        let proposed = self.blocks_proposed.get();
        let records = self.committed_records.get();
        let energy = self.energy_joules.get();
        MetricsSnapshot {
            replica: self.replica.0,
            energy_source: self.energy_source.to_string(),
            committed_records: records,
            committed_blocks: self.committed_blocks.get(),
            requests_committed: ok,
            requests_failed: failed,
            success_rate: (ok + failed > 0).then(|| ok as f64 / (ok + failed) as f64),
            blocks_proposed: proposed,
            block_success_rate: (proposed > 0)
                .then(|| (self.own_blocks_committed.get() as f64 / proposed as f64).min(1.0)),
            view_changes: self.view_changes.get(),
            pending_requests: self.pending_requests.get().max(0) as u64,
            cpu_seconds: self.cpu_seconds.get(),
            energy_joules: energy,
            records_per_joule: (energy > 0.0).then(|| records as f64 / energy),
            resident_memory_bytes: self.resident_memory.get().max(0) as u64,
            series,
            peers: self.peer_statuses(),
        }
    }
}

/// One point of a replica's one-second time series.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct MetricsPoint {
    /// Milliseconds since the replica started.
    pub t_ms: u64,
    pub committed_records_per_s: f64,
    /// Commit latency of requests answered in this second (null: none answered).
    pub p50_ms: Option<f64>,
    pub p99_ms: Option<f64>,
    /// Committed / (committed + refused + abandoned) in this second (null: no requests).
    pub success_rate: Option<f64>,
    /// Joules used by this replica in this second.
    pub energy_joules: f64,
    pub records_per_joule: Option<f64>,
    /// CPU time used in this second, in percent of one core.
    pub cpu_percent: f64,
    /// View changes since the replica started.
    pub view_changes: u64,
}

/// A replica as this one sees it (from the messages it hears).
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct PeerStatus {
    pub replica: u16,
    pub up: bool,
    pub height: Option<u64>,
    pub view: Option<u64>,
    pub last_seen_ms_ago: Option<u64>,
}

/// A replica's measured figures since it started, and its recent time series.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct MetricsSnapshot {
    pub replica: u16,
    /// `rapl` (CPU energy counters) or `cpu_time_x_watts` (CPU time × power per core).
    pub energy_source: String,
    pub committed_records: u64,
    pub committed_blocks: u64,
    pub requests_committed: u64,
    pub requests_failed: u64,
    pub success_rate: Option<f64>,
    pub blocks_proposed: u64,
    /// Of the blocks this replica proposed, the share that was committed.
    pub block_success_rate: Option<f64>,
    pub view_changes: u64,
    pub pending_requests: u64,
    pub cpu_seconds: f64,
    pub energy_joules: f64,
    pub records_per_joule: Option<f64>,
    pub resident_memory_bytes: u64,
    pub series: Vec<MetricsPoint>,
    pub peers: Vec<PeerStatus>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::energy::EnergyMeter;

    fn metrics() -> Metrics {
        Metrics::new(ReplicaId(1), 4, EnergyMeter::cpu_time(7.5))
    }

    #[test]
    fn prometheus_text_names_what_bench_and_dashboards_read() {
        let m = metrics();
        m.block_committed(3, ReplicaId(1));
        m.request_committed(Instant::now(), 1);
        m.sample();
        let text = m.prometheus_text();
        for name in [
            "medchain_committed_records_total 3",
            "medchain_committed_blocks_total 1",
            "medchain_commit_latency_seconds_bucket",
            "medchain_requests_total{result=\"committed\"} 1",
            "medchain_cpu_seconds_total ",
            "medchain_energy_joules_total ",
            "medchain_energy_source_info{source=\"cpu_time_x_watts\"} 1",
            "medchain_resident_memory_bytes ",
            "medchain_peer_up{peer=\"0\"} 0",
        ] {
            assert!(text.contains(name), "missing {name:?} in\n{text}");
        }
    }

    #[test]
    fn series_point_reports_the_interval_only() {
        let m = metrics();
        let t = Instant::now() - Duration::from_millis(20);
        m.request_committed(t, 1);
        m.request_failed(RequestResult::Abandoned);
        m.block_committed(1, ReplicaId(0));
        m.sample();
        m.sample();
        let s = m.snapshot();
        assert_eq!(s.series.len(), 2);
        let first = &s.series[0];
        assert_eq!(first.success_rate, Some(0.5));
        let p50 = first.p50_ms.expect("a latency was recorded");
        assert!((20.0..1_000.0).contains(&p50), "p50 {p50}");
        assert!(first.committed_records_per_s > 0.0);
        // Nothing happened in the second interval.
        assert_eq!(s.series[1].p50_ms, None);
        assert_eq!(s.series[1].success_rate, None);
        assert_eq!(s.success_rate, Some(0.5));
        assert_eq!(s.block_success_rate, None, "replica 1 proposed nothing");
    }

    #[test]
    fn peers_are_up_only_when_heard_from() {
        let m = metrics();
        let kp = medchain_types::KeyPair::for_test("replica-2");
        let status = medchain_types::Status {
            view: 3,
            in_view_change: false,
            last_executed: 42,
            stable_seq: 0,
            replica: ReplicaId(2),
        };
        m.observe_peer(&PeerMessage::Status(medchain_types::Signed::sign(
            status, &kp,
        )));
        m.core_state(40, 3, 0);
        let peers = m.snapshot().peers;
        assert_eq!(peers.len(), 4);
        assert!(peers[1].up, "this node");
        assert_eq!(peers[1].height, Some(40));
        assert!(peers[2].up);
        assert_eq!((peers[2].height, peers[2].view), (Some(42), Some(3)));
        assert!(!peers[0].up && peers[0].height.is_none());
        assert!(!peers[3].up);
    }

    #[test]
    fn series_is_bounded() {
        let m = metrics();
        for _ in 0..SERIES_SECONDS + 10 {
            m.sample();
        }
        assert_eq!(m.snapshot().series.len(), SERIES_SECONDS);
    }
}
