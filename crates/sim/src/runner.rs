//! The simulation loop: the test kit's network queue and disks standing in for the
//! network, the clock and the disk, with this crate's seeded faults on top, driving real
//! replicas and checking the invariants after every step.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::rc::Rc;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use sha2::{Digest, Sha256};

use medchain_pbft::{Config, Input, Output, Replica};
use medchain_testkit::{
    small_config, small_limits, Disk, Due, Envelope, GenesisBuilder, Network, TestKeys,
};
use medchain_types::{
    encode, ClientId, Genesis, Hash32, PeerMessage, ReplicaId, SignedRequest, Verifier,
};

use crate::byzantine::{ByzantineMock, Wire};
use crate::invariants::{
    Agreement, Certificates, Integrity, Liveness, ReplicaView, ViewChangeProgress, Violation,
};
use crate::scenario::Scenario;

/// What one seed did.
#[derive(Debug, Clone)]
pub struct SeedOutcome {
    pub seed: u64,
    pub n: usize,
    pub trace_hash: Hash32,
    pub violations: Vec<Violation>,
    pub faults: u64,
    pub view_changes: u64,
    /// Highest view a correct replica ended in.
    pub max_view: u64,
    pub committed_blocks: u64,
    pub requests: u64,
    pub end_ms: u64,
    pub messages: u64,
    pub rejected: u64,
}

/// The replica configuration the simulator uses: the kit's small windows with short
/// intervals, so that short runs go through checkpoints, garbage collection and view
/// changes.
pub fn sim_config(id: ReplicaId) -> Config {
    let mut c = small_config(id);
    c.max_batch_delay_ms = 5;
    c.request_timeout_ms = 500;
    c.view_change_timeout_ms = 400;
    c.resend_interval_ms = 200;
    c.status_interval_ms = 300;
    c.fetch_timeout_ms = 400;
    c
}

/// Keys are fixed per index (not per seed), so the memo also hits across seeds. The
/// prefix is part of every trace hash: changing it changes every trace.
pub const SIM_KEYS: TestKeys = TestKeys::new("sim-");

pub const MAX_CLIENTS: usize = 4;

/// Block hashes a restarted replica gets back (traces depend on this count).
const RECENT_BLOCKS: usize = 64;

pub fn sim_genesis(n: usize) -> Genesis {
    GenesisBuilder::new(format!("medchain-sim-{n}"), SIM_KEYS)
        .replicas(n)
        .clients(MAX_CLIENTS)
        .build()
}

/// The simulator's own events, queued on the kit's network with the messages.
#[derive(Debug)]
enum Event {
    ClientArrive {
        to: ReplicaId,
        request: Rc<SignedRequest>,
    },
    ClientIssue {
        client: usize,
        index: usize,
    },
    ClientRetry {
        client: usize,
        index: usize,
    },
    Tick {
        replica: ReplicaId,
        at: u64,
    },
    Crash(ReplicaId),
    Restart(ReplicaId),
    Check,
}

#[derive(Debug)]
struct Node {
    replica: Option<Replica>,
    disk: Disk,
    byz: Option<ByzantineMock>,
    tick_at: Option<u64>,
}

#[derive(Debug)]
struct Client {
    requests: Vec<Rc<SignedRequest>>,
    home: ReplicaId,
}

struct Sim<'a> {
    s: &'a Scenario,
    f: usize,
    genesis: Genesis,
    verifier: Verifier,
    rng: ChaCha8Rng,
    now: u64,
    net: Network<Event>,
    nodes: Vec<Node>,
    clients: Vec<Client>,
    issued: Vec<(ClientId, u64)>,
    trace: Option<String>,
    hasher: Sha256,
    agreement: Agreement,
    certificates: Certificates,
    integrity: Integrity,
    liveness: Liveness,
    progress: ViewChangeProgress,
    violations: Vec<Violation>,
    faults: u64,
    views_installed: BTreeSet<u64>,
}

/// Run one scenario. With `trace`, a readable trace of every event is returned in
/// `violations`' companion string (printed by the CLI).
pub fn run_scenario(s: &Scenario, trace: bool) -> (SeedOutcome, String) {
    let genesis = sim_genesis(s.n);
    let verifier = Verifier::new(&genesis, small_limits());
    let mut sim = Sim {
        s,
        f: s.f(),
        certificates: Certificates::new(verifier.clone(), genesis.hash(), s.n),
        verifier,
        rng: ChaCha8Rng::seed_from_u64(s.seed),
        now: 0,
        net: Network::new(),
        nodes: Vec::new(),
        clients: Vec::new(),
        issued: Vec::new(),
        trace: trace.then(String::new),
        hasher: Sha256::new(),
        agreement: Agreement::default(),
        integrity: Integrity::default(),
        liveness: Liveness::default(),
        progress: ViewChangeProgress,
        violations: Vec::new(),
        faults: s.planned_faults(),
        views_installed: BTreeSet::new(),
        genesis,
    };
    sim.setup();
    sim.run();
    let outcome = SeedOutcome {
        seed: s.seed,
        n: s.n,
        trace_hash: Hash32(sim.hasher.clone().finalize().into()),
        violations: sim.violations.clone(),
        faults: sim.faults,
        view_changes: sim.views_installed.len() as u64,
        max_view: sim
            .correct_states()
            .iter()
            .map(|s| s.view)
            .max()
            .unwrap_or(0),
        committed_blocks: sim.agreement.height(),
        requests: sim.issued.len() as u64,
        end_ms: sim.now,
        messages: sim.net.traffic.sent,
        rejected: sim.net.traffic.rejected,
    };
    (outcome, sim.trace.take().unwrap_or_default())
}

impl Sim<'_> {
    fn log(&mut self, line: impl FnOnce() -> String) {
        if let Some(t) = self.trace.as_mut() {
            let _ = writeln!(t, "{:>7} ms  {}", self.now, line());
        }
    }

    fn schedule(&mut self, at: u64, event: Event) {
        self.net.schedule(at, event);
    }

    fn is_byzantine(&self, r: ReplicaId) -> bool {
        self.s.byzantine.iter().any(|(b, _)| *b == r)
    }

    fn new_replica(&self, i: usize) -> Config {
        #[allow(unused_mut)]
        let mut c = sim_config(ReplicaId(i as u16));
        #[cfg(feature = "planted-bugs")]
        {
            c.planted_bug = self.s.planted_bug;
        }
        c
    }

    fn setup(&mut self) {
        for i in 0..self.s.n {
            let id = ReplicaId(i as u16);
            let replica = Replica::new(self.new_replica(i), SIM_KEYS.replica(i), &self.genesis);
            let byz = self
                .s
                .byzantine
                .iter()
                .find(|(b, _)| *b == id)
                .map(|(_, beh)| ByzantineMock::new(*beh, id, self.s.n, SIM_KEYS.replica(i)));
            self.nodes.push(Node {
                replica: Some(replica),
                disk: Disk::new(&self.genesis),
                byz,
                tick_at: None,
            });
            self.schedule(0, Event::Tick { replica: id, at: 0 });
            self.nodes[i].tick_at = Some(0);
        }
        let correct: Vec<ReplicaId> = (0..self.s.n)
            .map(|i| ReplicaId(i as u16))
            .filter(|r| !self.is_byzantine(*r))
            .collect();
        for c in 0..self.s.clients.min(MAX_CLIENTS) {
            let mut requests = Vec::new();
            for k in 0..self.s.requests_per_client {
                let len = self.rng.gen_range(8..64);
                let mut payload = format!("seed{}-c{c}-r{k}:", self.s.seed).into_bytes();
                payload.extend((0..len).map(|_| self.rng.gen::<u8>()));
                let r = SIM_KEYS.request(c as u16, k as u64 + 1, &payload);
                self.integrity.on_issue(&r);
                self.issued.push(r.key());
                requests.push(Rc::new(r));
                let at = self.rng.gen_range(0..=self.s.issue_until_ms);
                self.schedule(
                    at,
                    Event::ClientIssue {
                        client: c,
                        index: k,
                    },
                );
            }
            // Clients talk to a replica of their organisation; some orgs are Byzantine.
            let home = ReplicaId(self.rng.gen_range(0..self.s.n) as u16);
            self.clients.push(Client { requests, home });
        }
        let _ = correct;
        for c in self.s.crashes.clone() {
            self.schedule(c.at_ms, Event::Crash(c.replica));
            self.schedule(c.restart_ms, Event::Restart(c.replica));
        }
        self.schedule(100, Event::Check);
    }

    fn partitioned(&self, a: ReplicaId, b: ReplicaId) -> bool {
        self.s.partitions.iter().any(|p| {
            self.now >= p.start_ms
                && self.now < p.end_ms
                && (p.side.contains(&a) != p.side.contains(&b))
        })
    }

    /// The fault model: before GST it drops, delays (and so reorders), duplicates and
    /// partitions; after GST it delivers everything within a few milliseconds. Returns
    /// when each copy arrives (none when lost); the draws happen in this order for every
    /// message, and the trace hashes depend on that order.
    fn arrivals(&mut self, from: Option<ReplicaId>, to: ReplicaId) -> Vec<u64> {
        let faulty = self.now < self.s.gst_ms;
        if faulty {
            if from.is_some_and(|f| self.partitioned(f, to)) {
                self.faults += 1;
                return Vec::new();
            }
            if self.rng.gen_bool(self.s.drop_prob) {
                self.faults += 1;
                return Vec::new();
            }
        }
        let max_delay_ms = if faulty { self.s.max_delay_ms } else { 5 };
        let copies = if faulty && self.rng.gen_bool(self.s.dup_prob) {
            self.faults += 1;
            2
        } else {
            1
        };
        let now = self.now;
        (0..copies)
            .map(|_| now + self.rng.gen_range(1..=max_delay_ms.max(1)))
            .collect()
    }

    fn send_bytes(&mut self, from: ReplicaId, to: ReplicaId, bytes: Rc<Vec<u8>>) {
        if !self.net.offer(from, to) {
            return;
        }
        let arrivals = self.arrivals(Some(from), to);
        if arrivals.is_empty() {
            self.net.lose();
        }
        for at in arrivals {
            let bytes = bytes.clone();
            self.net.post(at, Envelope { from, to, bytes });
        }
    }

    /// A client's request to replica `to`, through the same fault model as messages.
    fn send_request(&mut self, to: ReplicaId, request: &Rc<SignedRequest>) {
        for at in self.arrivals(None, to) {
            let request = request.clone();
            self.schedule(at, Event::ClientArrive { to, request });
        }
    }

    fn broadcast_bytes(&mut self, from: ReplicaId, bytes: Rc<Vec<u8>>) {
        for i in 0..self.s.n {
            self.send_bytes(from, ReplicaId(i as u16), bytes.clone());
        }
    }

    fn run(&mut self) {
        let deadline = self.s.gst_ms + self.s.liveness_bound_ms;
        while let Some((at, due)) = self.net.pop() {
            if at > deadline {
                break;
            }
            self.now = at;
            match due {
                Due::Message(envelope) => self.deliver(&envelope),
                Due::Event(Event::Check) => {
                    if self.settled() {
                        self.log(|| "settled: all requests committed, replicas converged".into());
                        return;
                    }
                    self.schedule(self.now + 100, Event::Check);
                }
                Due::Event(event) => self.handle(event),
            }
        }
        self.now = self.now.max(deadline);
        let states = self.correct_states();
        let heights: Vec<_> = states.iter().map(|s| (s.replica, s.height)).collect();
        let modes: Vec<_> = states.iter().map(|s| (s.replica, s.mode, s.view)).collect();
        let mut v = self
            .liveness
            .check(&self.issued, self.f, &heights, deadline);
        v.extend(self.progress.check(&modes, self.f, deadline));
        for violation in v {
            self.log(|| format!("VIOLATION {violation}"));
            self.violations.push(violation);
        }
    }

    fn correct_states(&self) -> Vec<ReplicaView> {
        self.nodes
            .iter()
            .enumerate()
            .filter(|(_, n)| n.byz.is_none())
            .filter_map(|(i, n)| {
                n.replica.as_ref().map(|r| ReplicaView {
                    replica: ReplicaId(i as u16),
                    mode: r.mode(),
                    view: r.view(),
                    height: r.last_executed(),
                })
            })
            .collect()
    }

    fn settled(&self) -> bool {
        if self.now < self.s.gst_ms.max(self.s.issue_until_ms) {
            return false;
        }
        let states = self.correct_states();
        if states.len() < self.s.n - self.s.byzantine.len() {
            return false;
        }
        let modes: Vec<_> = states.iter().map(|s| (s.replica, s.mode, s.view)).collect();
        let h = states.first().map(|s| s.height);
        self.issued.iter().all(|k| self.liveness.is_done(k, self.f))
            && states.iter().all(|s| Some(s.height) == h)
            && self.progress.settled(&modes)
    }

    fn deliver(&mut self, envelope: &Envelope) {
        let to = envelope.to;
        self.hasher.update(self.now.to_le_bytes());
        self.hasher.update([1, to.0 as u8]);
        self.hasher.update(envelope.bytes.as_slice());
        let node = &mut self.nodes[to.index()];
        if node.replica.is_none() {
            return;
        }
        if let Some(b) = node.byz.as_mut() {
            b.observe(&envelope.bytes, &mut self.rng);
        }
        match self.net.open(&self.verifier, envelope) {
            Err(e) => self.log(|| format!("{to} rejected a message: {e}")),
            Ok(m) => {
                self.log(|| describe(to, m.get()));
                self.step(to, Input::Message(m));
            }
        }
    }

    fn handle(&mut self, event: Event) {
        match event {
            Event::ClientArrive { to, request } => {
                self.hasher.update(self.now.to_le_bytes());
                self.hasher.update([2, to.0 as u8]);
                if self.nodes[to.index()].replica.is_none() {
                    return;
                }
                match self.verifier.verify_request((*request).clone()) {
                    Ok(r) => {
                        self.log(|| format!("{to} <- client request {:?}", request.key()));
                        self.step(to, Input::ClientRequest(r));
                    }
                    Err(e) => self.log(|| format!("{to} rejected a client request: {e}")),
                }
            }
            Event::ClientIssue { client, index } => {
                let home = self.clients[client].home;
                let req = self.clients[client].requests[index].clone();
                self.log(|| format!("client {client} issues {:?} to {home}", req.key()));
                self.send_request(home, &req);
                self.schedule(self.now + 1_000, Event::ClientRetry { client, index });
            }
            Event::ClientRetry { client, index } => {
                let req = self.clients[client].requests[index].clone();
                if self.liveness.is_done(&req.key(), self.f) {
                    return;
                }
                // Section 4.1: a client that gets no answer broadcasts to all replicas.
                for i in 0..self.s.n {
                    self.send_request(ReplicaId(i as u16), &req);
                }
                self.schedule(self.now + 1_000, Event::ClientRetry { client, index });
            }
            Event::Tick { replica, at } => {
                let node = &mut self.nodes[replica.index()];
                if node.tick_at != Some(at) || node.replica.is_none() {
                    return;
                }
                node.tick_at = None;
                self.step(replica, Input::Tick);
            }
            Event::Crash(r) => {
                self.log(|| format!("{r} CRASHES"));
                self.hasher.update([3, r.0 as u8]);
                let node = &mut self.nodes[r.index()];
                node.replica = None;
                node.tick_at = None;
            }
            Event::Restart(r) => {
                if self.nodes[r.index()].replica.is_some() {
                    return;
                }
                self.log(|| format!("{r} RESTARTS from its disk"));
                self.hasher.update([4, r.0 as u8]);
                let replica = self.restore(r);
                let node = &mut self.nodes[r.index()];
                node.replica = Some(replica);
                node.tick_at = Some(self.now);
                self.schedule(
                    self.now,
                    Event::Tick {
                        replica: r,
                        at: self.now,
                    },
                );
            }
            Event::Check => {}
        }
    }

    /// Rebuild a replica from what its disk holds: the durable vote state and the chain.
    fn restore(&self, r: ReplicaId) -> Replica {
        self.nodes[r.index()].disk.restore(
            self.new_replica(r.index()),
            SIM_KEYS.replica(r.index()),
            &self.genesis,
            RECENT_BLOCKS,
        )
    }

    fn step(&mut self, id: ReplicaId, input: Input) {
        let now = self.now;
        let Some(replica) = self.nodes[id.index()].replica.as_mut() else {
            return;
        };
        let outputs = replica.step(now, input);
        let next = replica.next_deadline_ms();
        self.apply_outputs(id, outputs);
        let node = &mut self.nodes[id.index()];
        if node.replica.is_some() && node.tick_at.is_none_or(|t| next < t) {
            node.tick_at = Some(next);
            self.schedule(
                next,
                Event::Tick {
                    replica: id,
                    at: next,
                },
            );
        }
    }

    fn apply_outputs(&mut self, id: ReplicaId, outputs: Vec<Output>) {
        if self.nodes[id.index()].byz.is_some() {
            let node = &mut self.nodes[id.index()];
            let (Some(byz), Some(replica)) = (node.byz.as_mut(), node.replica.as_ref()) else {
                return;
            };
            let before = byz.attacks;
            let wire = byz.transform(replica, &outputs, &mut self.rng);
            self.faults += byz.attacks - before;
            for w in wire {
                match w {
                    Wire::To(to, b) => self.send_bytes(id, to, Rc::new(b)),
                    Wire::All(b) => self.broadcast_bytes(id, Rc::new(b)),
                }
            }
        }
        let correct = self.nodes[id.index()].byz.is_none();
        for o in outputs {
            // The disk's share comes first for every replica: a Byzantine one still
            // persists, commits and serves blocks honestly (only its votes lie).
            if let Some((to, blocks)) = self.nodes[id.index()].disk.apply(&o) {
                self.send_bytes(id, to, Rc::new(encode(&blocks)));
            }
            if !correct {
                continue;
            }
            match o {
                Output::Send { to, message } => {
                    self.send_bytes(id, to, Rc::new(encode(&message)));
                }
                Output::Broadcast(message) => self.broadcast_bytes(id, Rc::new(encode(&message))),
                other => self.check_output(id, &other),
            }
        }
    }

    /// Run the invariants on what a correct replica committed, replied and installed.
    fn check_output(&mut self, id: ReplicaId, output: &Output) {
        match output {
            Output::Commit(block) => {
                self.log(|| {
                    format!(
                        "{id} COMMITS block {} {:?} ({} requests)",
                        block.height(),
                        block.hash(),
                        block.requests.len()
                    )
                });
                for check in [
                    self.agreement.on_commit(id, block),
                    self.certificates.on_commit(id, block),
                    self.integrity.on_commit(id, block),
                ] {
                    if let Err(v) = check {
                        self.log(|| format!("VIOLATION {v}"));
                        self.violations.push(v);
                    }
                }
            }
            Output::Reply(reply) => {
                if let Err(v) = self.integrity.on_reply(reply) {
                    self.log(|| format!("VIOLATION {v}"));
                    self.violations.push(v);
                }
                self.liveness.on_reply(reply);
            }
            Output::ViewInstalled { view } => {
                self.log(|| format!("{id} installs view {view}"));
                self.views_installed.insert(*view);
            }
            Output::Persist(_)
            | Output::Send { .. }
            | Output::Broadcast(_)
            | Output::ReadBlocks { .. } => {}
        }
    }
}

/// One line describing a delivered message, for readable traces.
fn describe(to: ReplicaId, m: &PeerMessage) -> String {
    match m {
        PeerMessage::Request(r) => format!("{to} <- request {:?}", r.key()),
        PeerMessage::PrePrepare {
            pre_prepare: p,
            proposal,
        } => format!(
            "{to} <- pre-prepare v{} n{} {:?} from {} ({} requests)",
            p.body.view,
            p.body.seq,
            p.body.digest,
            p.body.replica,
            proposal.requests.len()
        ),
        PeerMessage::Prepare(p) => format!(
            "{to} <- prepare v{} n{} {:?} from {}",
            p.body.view, p.body.seq, p.body.digest, p.body.replica
        ),
        PeerMessage::Commit(c) => format!(
            "{to} <- commit v{} n{} {:?} from {}",
            c.body.view, c.body.seq, c.body.digest, c.body.replica
        ),
        PeerMessage::Checkpoint(c) => format!(
            "{to} <- checkpoint n{} {:?} from {}",
            c.body.seq, c.body.digest, c.body.replica
        ),
        PeerMessage::ViewChange { view_change: v, .. } => format!(
            "{to} <- view-change to v{} from {} (stable {}, {} prepared)",
            v.body.new_view,
            v.body.replica,
            v.body.stable_seq,
            v.body.prepared.len()
        ),
        PeerMessage::NewView { new_view: v, .. } => format!(
            "{to} <- new-view v{} from {} ({} in O)",
            v.body.view,
            v.body.replica,
            v.body.pre_prepares.len()
        ),
        PeerMessage::Status(s) => format!(
            "{to} <- status from {}: v{}{} executed {} stable {}",
            s.body.replica,
            s.body.view,
            if s.body.in_view_change {
                " (changing)"
            } else {
                ""
            },
            s.body.last_executed,
            s.body.stable_seq
        ),
        PeerMessage::FetchBlocks(f) => format!(
            "{to} <- fetch-blocks from {} starting {}",
            f.body.replica, f.body.from_height
        ),
        PeerMessage::Blocks(b) => format!(
            "{to} <- {} blocks {}..",
            b.len(),
            b.first().map_or(0, |b| b.height())
        ),
    }
}
