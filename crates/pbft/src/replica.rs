//! The replica state machine and the normal case of PBFT (section 4.2): requests,
//! batching, pre-prepare, prepare, commit, and in-order execution.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use medchain_types::{
    BlockHeader, Checkpoint, ClientId, Commit, CommitCertificate, CommittedBlock, Genesis, Hash32,
    KeyPair, PeerMessage, PrePrepare, Prepare, PreparedProof, Proposal, ReplicaId, SeqNum, Signed,
    SignedRequest, ViewChange, ViewNum,
};

use crate::clients::{ClientTable, RequestState};
use crate::config::Config;
use crate::durable::{DurableRecord, DurableSlot, DurableState};
use crate::io::{Input, Output, Reply};
use crate::log::Slot;

/// Whether the replica runs the normal case or waits for a NEW-VIEW.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Normal,
    ViewChange,
}

/// What a restarting replica knows from its block store.
#[derive(Debug, Clone)]
pub struct ChainState {
    pub last_executed: SeqNum,
    pub last_hash: Hash32,
    /// The client table rebuilt by replaying the chain (`ClientTable::apply_block`).
    pub clients: ClientTable,
    /// Hashes of recent blocks (at least those above the stable checkpoint), so that a
    /// restarted replica can still vouch for checkpoints it executed before the crash.
    pub recent_hashes: Vec<(SeqNum, Hash32)>,
}

pub(crate) type RequestKey = (ClientId, u64);

/// One PBFT replica.
#[derive(Debug)]
pub struct Replica {
    pub(crate) cfg: Config,
    pub(crate) key: KeyPair,
    pub(crate) n: usize,
    pub(crate) f: usize,
    pub(crate) now_ms: u64,

    pub(crate) view: ViewNum,
    pub(crate) mode: Mode,

    // Execution.
    pub(crate) last_executed: SeqNum,
    pub(crate) last_hash: Hash32,
    pub(crate) clients: ClientTable,
    pub(crate) last_progress_ms: u64,

    // Checkpoints (checkpoint.rs).
    pub(crate) stable_seq: SeqNum,
    pub(crate) stable_digest: Hash32,
    pub(crate) stable_proof: Vec<Signed<Checkpoint>>,
    pub(crate) checkpoint_votes: BTreeMap<SeqNum, BTreeMap<ReplicaId, Signed<Checkpoint>>>,
    pub(crate) own_checkpoints: BTreeMap<SeqNum, Hash32>,

    // The message log, sequence numbers in (stable_seq, stable_seq + L].
    pub(crate) log: BTreeMap<SeqNum, Slot>,
    /// The next sequence number this replica assigns when it is primary.
    pub(crate) next_seq: SeqNum,

    // Requests received and not yet executed.
    pub(crate) waiting: BTreeMap<RequestKey, SignedRequest>,
    /// Sum of `size_hint` over `waiting`.
    pub(crate) waiting_bytes: usize,
    /// Primary only: waiting requests not yet in a proposal, oldest first.
    pub(crate) queue: VecDeque<RequestKey>,
    pub(crate) queue_since_ms: Option<u64>,
    /// Requests in an accepted, not yet executed proposal.
    pub(crate) in_flight: BTreeSet<RequestKey>,
    pub(crate) request_deadline_ms: Option<u64>,

    // View change (view_change.rs).
    pub(crate) view_changes: BTreeMap<ReplicaId, (Signed<ViewChange>, Vec<Proposal>)>,
    pub(crate) own_view_change: Option<PeerMessage>,
    pub(crate) new_view_msg: Option<PeerMessage>,
    pub(crate) view_change_deadline_ms: Option<u64>,
    pub(crate) backoff: u32,
    /// Consecutive views in which our requests timed out without any block executing:
    /// the request timeout doubles with each.
    pub(crate) request_backoff: u32,

    // Periodic work.
    pub(crate) next_status_ms: u64,
    pub(crate) next_resend_ms: u64,

    // State transfer (state_transfer.rs).
    pub(crate) peer_progress: Vec<SeqNum>,
    /// When we last answered each peer's STATUS with ours (see `on_status`).
    pub(crate) status_answered_ms: Vec<Option<u64>>,
    pub(crate) certified_target: SeqNum,
    pub(crate) fetch: Option<(ReplicaId, u64)>,
    pub(crate) fetch_rotation: usize,
    /// When fetched blocks last extended our chain.
    pub(crate) last_transfer_ms: Option<u64>,

    pub(crate) out: Vec<Output>,
}

impl Replica {
    /// A replica starting from the genesis.
    pub fn new(cfg: Config, key: KeyPair, genesis: &Genesis) -> Self {
        let chain = ChainState {
            last_executed: 0,
            last_hash: genesis.hash(),
            clients: ClientTable::new(genesis.clients.len()),
            recent_hashes: Vec::new(),
        };
        Self::restore(
            cfg,
            key,
            genesis,
            DurableState::genesis(genesis.hash()),
            chain,
        )
    }

    /// A replica restarting from its durable vote state and its block store.
    pub fn restore(
        cfg: Config,
        key: KeyPair,
        genesis: &Genesis,
        durable: DurableState,
        chain: ChainState,
    ) -> Self {
        let n = genesis.n();
        let mut r = Replica {
            n,
            f: genesis.f(),
            now_ms: 0,
            view: durable.view,
            mode: if durable.normal {
                Mode::Normal
            } else {
                Mode::ViewChange
            },
            last_executed: chain.last_executed,
            last_hash: chain.last_hash,
            clients: chain.clients,
            last_progress_ms: 0,
            stable_seq: durable.stable_seq,
            stable_digest: durable.stable_digest,
            stable_proof: durable.stable_proof,
            checkpoint_votes: BTreeMap::new(),
            own_checkpoints: BTreeMap::new(),
            log: BTreeMap::new(),
            next_seq: 1,
            waiting: BTreeMap::new(),
            waiting_bytes: 0,
            queue: VecDeque::new(),
            queue_since_ms: None,
            in_flight: BTreeSet::new(),
            request_deadline_ms: None,
            view_changes: BTreeMap::new(),
            own_view_change: None,
            new_view_msg: None,
            view_change_deadline_ms: None,
            backoff: 0,
            request_backoff: 0,
            next_status_ms: 0,
            next_resend_ms: 0,
            peer_progress: vec![0; n],
            status_answered_ms: vec![None; n],
            certified_target: 0,
            fetch: None,
            fetch_rotation: 0,
            last_transfer_ms: None,
            out: Vec::new(),
            cfg,
            key,
        };
        r.restore_checkpoints(&chain.recent_hashes);
        r.certified_target = r.stable_seq;
        let mut max_seq = r.last_executed.max(r.stable_seq);
        for (seq, ds) in durable.slots {
            if r.restore_slot(seq, ds) {
                max_seq = max_seq.max(seq);
            }
        }
        r.next_seq = max_seq + 1;
        if r.mode == Mode::ViewChange {
            r.send_view_change();
            r.out.clear();
        }
        r
    }

    /// The checkpoints this replica had taken above its stable one (section 4.3), from
    /// the hashes of its executed blocks.
    fn restore_checkpoints(&mut self, recent_hashes: &[(SeqNum, Hash32)]) {
        if self.last_executed == self.stable_seq {
            self.own_checkpoints.insert(self.stable_seq, self.last_hash);
        }
        let k = self.cfg.checkpoint_interval.max(1);
        for (seq, hash) in recent_hashes {
            if *seq > self.stable_seq && seq.is_multiple_of(k) && *seq <= self.last_executed {
                self.own_checkpoints.insert(*seq, *hash);
            }
        }
    }

    /// Put one durable slot back into the log, with the votes this replica had sent for
    /// it in the current view; whether it holds a pre-prepare of the current view (its
    /// sequence number is then taken).
    fn restore_slot(&mut self, seq: SeqNum, ds: DurableSlot) -> bool {
        let mut slot = Slot {
            prepared: ds.prepared,
            ..Slot::default()
        };
        let current = ds
            .pre_prepare
            .filter(|(pp, _)| self.mode == Mode::Normal && pp.body.view == self.view);
        let taken = current.is_some();
        if let Some((pp, proposal)) = current {
            let digest = pp.body.digest;
            for req in &proposal.requests {
                self.in_flight.insert(req.key());
            }
            slot.pre_prepare = Some((pp, proposal));
            if self.primary_of(self.view) != self.cfg.id {
                // Re-signing gives the same bytes (Ed25519 is deterministic): this is
                // the prepare we sent before the crash, not a new vote.
                let p = Signed::sign(
                    Prepare {
                        view: self.view,
                        seq,
                        digest,
                        replica: self.cfg.id,
                    },
                    &self.key,
                );
                slot.prepares.insert(self.cfg.id, p);
            }
            let prepared_here = slot
                .prepared
                .as_ref()
                .is_some_and(|(p, _)| p.pre_prepare.body.view == self.view);
            if prepared_here {
                slot.prepared_now = true;
                let c = Signed::sign(
                    Commit {
                        view: self.view,
                        seq,
                        digest,
                        replica: self.cfg.id,
                    },
                    &self.key,
                );
                slot.commits.insert(self.cfg.id, c);
            }
        }
        self.log.insert(seq, slot);
        taken
    }

    // ----- accessors (for the runtime, metrics and the simulator's invariants) -----

    pub fn id(&self) -> ReplicaId {
        self.cfg.id
    }
    pub fn view(&self) -> ViewNum {
        self.view
    }
    pub fn mode(&self) -> Mode {
        self.mode
    }
    pub fn last_executed(&self) -> SeqNum {
        self.last_executed
    }
    pub fn last_hash(&self) -> Hash32 {
        self.last_hash
    }
    pub fn stable_seq(&self) -> SeqNum {
        self.stable_seq
    }
    /// How long a request may wait before this replica suspects the primary: the
    /// configured timeout, doubled for each consecutive view that made no progress.
    pub(crate) fn request_timeout_ms(&self) -> u64 {
        self.cfg.request_timeout_ms << self.request_backoff
    }

    /// The limits this replica checks and keeps to.
    pub fn limits(&self) -> &medchain_types::Limits {
        &self.cfg.limits
    }

    pub fn pending_requests(&self) -> usize {
        self.waiting.len()
    }
    pub fn is_primary(&self) -> bool {
        self.primary_of(self.view) == self.cfg.id
    }

    pub(crate) fn primary_of(&self, view: ViewNum) -> ReplicaId {
        ReplicaId((view % self.n as u64) as u16)
    }

    pub(crate) fn in_window(&self, seq: SeqNum) -> bool {
        seq > self.stable_seq && seq <= self.stable_seq + self.cfg.limits.window
    }

    pub(crate) fn quorum(&self) -> usize {
        2 * self.f + 1
    }

    /// The earliest time at which `step(.., Input::Tick)` has work to do.
    pub fn next_deadline_ms(&self) -> u64 {
        let mut d = self.next_status_ms.min(self.next_resend_ms);
        for t in [
            self.request_deadline_ms,
            self.view_change_deadline_ms,
            self.fetch.map(|(_, t)| t),
            self.queue_since_ms
                .filter(|_| self.mode == Mode::Normal && self.is_primary() && self.window_open())
                .map(|t| t + self.cfg.max_batch_delay_ms),
        ]
        .into_iter()
        .flatten()
        {
            d = d.min(t);
        }
        // Everything due now was handled by the step that just ran.
        d.max(self.now_ms + 1)
    }

    /// The primary may assign `next_seq`: inside the watermarks and the in-flight limit.
    fn window_open(&self) -> bool {
        self.next_seq <= self.stable_seq + self.cfg.limits.window
            && self.next_seq <= self.last_executed + self.cfg.max_in_flight
    }

    /// Feed one input; returns what the caller must do, in order.
    pub fn step(&mut self, now_ms: u64, input: Input) -> Vec<Output> {
        self.now_ms = self.now_ms.max(now_ms);
        match input {
            Input::ClientRequest(r) => self.on_request(r.into_inner(), true),
            Input::Message(m) => self.on_message(m.into_inner()),
            Input::Tick => {}
        }
        self.on_timers();
        self.try_propose();
        std::mem::take(&mut self.out)
    }

    fn on_message(&mut self, msg: PeerMessage) {
        match msg {
            PeerMessage::Request(r) => self.on_request(r, false),
            PeerMessage::PrePrepare {
                pre_prepare,
                proposal,
            } => self.on_pre_prepare(pre_prepare, proposal),
            PeerMessage::Prepare(p) => self.on_prepare(p),
            PeerMessage::Commit(c) => self.on_commit(c),
            PeerMessage::Checkpoint(c) => self.on_checkpoint(c),
            PeerMessage::ViewChange {
                view_change,
                proposals,
            } => self.on_view_change(view_change, proposals),
            PeerMessage::NewView {
                new_view,
                proposals,
            } => self.on_new_view(new_view, proposals),
            PeerMessage::Status(s) => self.on_status(s),
            PeerMessage::FetchBlocks(f) => self.on_fetch_blocks(f),
            PeerMessage::Blocks(blocks) => self.on_blocks(blocks),
        }
    }

    pub(crate) fn persist(&mut self, record: DurableRecord) {
        self.out.push(Output::Persist(record));
    }
    pub(crate) fn broadcast(&mut self, msg: PeerMessage) {
        self.out.push(Output::Broadcast(msg));
    }
    pub(crate) fn send(&mut self, to: ReplicaId, message: PeerMessage) {
        if to != self.cfg.id {
            self.out.push(Output::Send { to, message });
        }
    }

    /// Send (a bounded number of) the requests we wait for to every replica.
    fn relay_waiting(&mut self) {
        let relay: Vec<SignedRequest> = self
            .waiting
            .values()
            .take(self.cfg.limits.max_batch_requests)
            .cloned()
            .collect();
        for r in relay {
            self.broadcast(PeerMessage::Request(r));
        }
    }

    fn on_timers(&mut self) {
        let now = self.now_ms;
        if self.mode == Mode::Normal && self.request_deadline_ms.is_some_and(|d| now >= d) {
            let catching_up = self.claimed_target() > self.last_executed
                && now < self.last_progress_ms + 2 * self.cfg.request_timeout_ms;
            if catching_up {
                // We are behind the others and still catching up: our requests are likely
                // executed already, and state transfer is the cure, not suspecting the
                // primary. (Claims can be stale, e.g. a dead primary's last STATUS, so
                // this holds only while we are actually making progress.)
                self.request_deadline_ms = Some(now + self.request_timeout_ms());
            } else {
                // Section 4.4: a backup whose request waited too long suspects the primary.
                // Its requests may have reached only it and a faulty primary (a gateway
                // talks to its own replica), so it first relays them to every replica, as
                // a PBFT client would on its own timeout (section 4.1): their timers start
                // too, and 2f+1 of them can complete the view change.
                self.request_deadline_ms = None;
                self.relay_waiting();
                // This view made no progress on our requests in time: the next one gets
                // longer (reset by the next executed block). With a fixed timeout, a
                // cluster whose commits take longer than it (big batches on a slow disk)
                // would change views forever without committing anything.
                self.request_backoff =
                    (self.request_backoff + 1).min(self.cfg.max_backoff_exponent);
                self.start_view_change(self.view + 1);
            }
        }
        if self.mode == Mode::ViewChange && self.view_change_deadline_ms.is_some_and(|d| now >= d) {
            // The new view did not arrive: try the next one, waiting longer.
            self.view_change_deadline_ms = None;
            self.backoff = (self.backoff + 1).min(self.cfg.max_backoff_exponent);
            self.start_view_change(self.view + 1);
        }
        if now >= self.next_status_ms {
            self.next_status_ms = now + self.cfg.status_interval_ms;
            self.send_status();
        }
        if now >= self.next_resend_ms {
            self.next_resend_ms = now + self.cfg.resend_interval_ms;
            self.resend();
        }
        if self.fetch.is_some_and(|(_, d)| now >= d) {
            self.fetch = None;
        }
        self.maybe_fetch();
    }

    // ----- requests -----

    pub(crate) fn on_request(&mut self, r: SignedRequest, from_client: bool) {
        let key = r.key();
        match self.clients.state(key.0, key.1) {
            RequestState::Executed(Some(height)) => {
                if from_client {
                    // A retransmission: the client missed our reply (section 4.1).
                    self.out.push(Output::Reply(Reply {
                        replica: self.cfg.id,
                        client: key.0,
                        request_id: key.1,
                        height,
                        retransmission: true,
                    }));
                }
                return;
            }
            RequestState::Executed(None) | RequestState::Invalid => return,
            RequestState::New => {}
        }
        if self.waiting.contains_key(&key) {
            if from_client && self.mode == Mode::Normal && !self.is_primary() {
                self.send(self.primary_of(self.view), PeerMessage::Request(r));
            }
            return;
        }
        if self.waiting.len() >= self.cfg.max_pending_requests
            || self.waiting_bytes + r.size_hint() > self.cfg.max_pending_bytes
        {
            return; // Full: the client retries later.
        }
        if self.mode == Mode::Normal {
            if self.is_primary() {
                if !self.in_flight.contains(&key) {
                    self.queue.push_back(key);
                    self.queue_since_ms.get_or_insert(self.now_ms);
                }
            } else if from_client {
                self.send(self.primary_of(self.view), PeerMessage::Request(r.clone()));
            }
        }
        self.waiting_bytes += r.size_hint();
        self.waiting.insert(key, r);
        if self.mode == Mode::Normal && self.request_deadline_ms.is_none() {
            self.request_deadline_ms = Some(self.now_ms + self.request_timeout_ms());
        }
    }

    /// Primary: turn queued requests into proposals while the window and the in-flight
    /// limit allow, a batch when it is full or its delay has passed.
    fn try_propose(&mut self) {
        if self.mode != Mode::Normal || !self.is_primary() {
            return;
        }
        loop {
            let Some(since) = self.queue_since_ms else {
                return;
            };
            if self.queue.is_empty() {
                self.queue_since_ms = None;
                return;
            }
            let window_open = self.window_open();
            let full = self.queue.len() >= self.cfg.limits.max_batch_requests;
            // Waiting to fill a batch only pays while earlier proposals are in flight
            // (their round trip is what the waiting requests would share); with none in
            // flight, waiting would only add the delay to every lone request's latency.
            let idle = self.next_seq == self.last_executed + 1;
            if !window_open || (!full && !idle && self.now_ms < since + self.cfg.max_batch_delay_ms)
            {
                return;
            }
            let mut requests = Vec::new();
            // A proposal must stay well inside the message limit, since it travels in
            // pre-prepares, view changes and state transfer.
            let max_bytes = self.cfg.limits.max_message_bytes / 4;
            let mut bytes = 0;
            while requests.len() < self.cfg.limits.max_batch_requests {
                let Some(key) = self.queue.pop_front() else {
                    break;
                };
                if self.in_flight.contains(&key)
                    || self.clients.state(key.0, key.1) != RequestState::New
                {
                    continue;
                }
                if let Some(r) = self.waiting.get(&key) {
                    if !requests.is_empty() && bytes + r.size_hint() > max_bytes {
                        self.queue.push_front(key);
                        break;
                    }
                    bytes += r.size_hint();
                    requests.push(r.clone());
                }
            }
            self.queue_since_ms = (!self.queue.is_empty()).then_some(self.now_ms);
            if requests.is_empty() {
                continue;
            }
            let proposal = Proposal {
                height: self.next_seq,
                view: self.view,
                proposer: self.cfg.id,
                timestamp_ms: self.now_ms,
                requests,
            };
            self.next_seq += 1;
            let pp = Signed::sign(
                PrePrepare {
                    view: self.view,
                    seq: proposal.height,
                    digest: proposal.digest(),
                    replica: self.cfg.id,
                },
                &self.key,
            );
            self.accept_pre_prepare(pp, proposal);
        }
    }

    // ----- normal case (section 4.2) -----

    fn on_pre_prepare(&mut self, pp: Signed<PrePrepare>, proposal: Proposal) {
        let b = &pp.body;
        if self.mode != Mode::Normal || b.view != self.view || !self.in_window(b.seq) {
            return;
        }
        if b.replica == self.cfg.id || proposal.view != b.view {
            // Normal-case batches are new in this view; re-proposals come in NEW-VIEW.
            return;
        }
        if let Some((v, _)) = self.log.get(&b.seq).and_then(Slot::accepted) {
            if v == b.view {
                // Already accepted one for (v, n): a second, different one is
                // equivocation, and accepting it would be a conflicting vote.
                return;
            }
        }
        let mut keys: Vec<RequestKey> = proposal.requests.iter().map(|r| r.key()).collect();
        keys.sort_unstable();
        if keys.windows(2).any(|w| w[0] == w[1]) {
            return; // A batch that repeats a request is malformed.
        }
        self.accept_pre_prepare(pp, proposal);
    }

    /// Accept (or, as primary, issue) a pre-prepare: persist it, then vote PREPARE.
    pub(crate) fn accept_pre_prepare(&mut self, pp: Signed<PrePrepare>, proposal: Proposal) {
        let (view, seq, digest) = (pp.body.view, pp.body.seq, pp.body.digest);
        self.persist(DurableRecord::PrePrepared {
            pre_prepare: pp.clone(),
            proposal: proposal.clone(),
        });
        for r in &proposal.requests {
            self.in_flight.insert(r.key());
        }
        let is_primary = self.primary_of(view) == self.cfg.id;
        let msg = is_primary.then(|| PeerMessage::PrePrepare {
            pre_prepare: pp.clone(),
            proposal: proposal.clone(),
        });
        let now = self.now_ms;
        let slot = self.log.entry(seq).or_default();
        slot.pre_prepare = Some((pp, proposal));
        slot.touched_ms = now;
        if let Some(m) = msg {
            self.broadcast(m);
        } else {
            let prepare = Signed::sign(
                Prepare {
                    view,
                    seq,
                    digest,
                    replica: self.cfg.id,
                },
                &self.key,
            );
            self.log
                .entry(seq)
                .or_default()
                .prepares
                .insert(self.cfg.id, prepare.clone());
            self.broadcast(PeerMessage::Prepare(prepare));
        }
        self.check_prepared(seq);
    }

    /// A peer's vote counts only in normal mode, in the current view, inside the window.
    fn accepts_vote(&self, view: ViewNum, seq: SeqNum, from: ReplicaId) -> bool {
        self.mode == Mode::Normal && view == self.view && self.in_window(seq) && from != self.cfg.id
    }

    fn on_prepare(&mut self, p: Signed<Prepare>) {
        let (view, seq, from) = (p.body.view, p.body.seq, p.body.replica);
        if self.accepts_vote(view, seq, from) {
            // The first vote of each replica counts; a later, different one is ignored.
            self.log
                .entry(seq)
                .or_default()
                .prepares
                .entry(from)
                .or_insert(p);
            self.check_prepared(seq);
        }
    }

    fn on_commit(&mut self, c: Signed<Commit>) {
        let (view, seq, from) = (c.body.view, c.body.seq, c.body.replica);
        if self.accepts_vote(view, seq, from) {
            self.log
                .entry(seq)
                .or_default()
                .commits
                .entry(from)
                .or_insert(c);
            self.check_committed(seq);
        }
    }

    /// Prepare votes needed besides the pre-prepare: 2f (section 4.2's `prepared`).
    fn prepares_needed(&self) -> usize {
        #[cfg(feature = "planted-bugs")]
        if self.cfg.bug(crate::config::PlantedBug::PrepareQuorum2f) {
            return (2 * self.f).saturating_sub(1);
        }
        2 * self.f
    }

    fn check_prepared(&mut self, seq: SeqNum) {
        let needed = self.prepares_needed();
        let Some(slot) = self.log.get_mut(&seq) else {
            return;
        };
        if slot.prepared_now {
            return;
        }
        let Some((pp, proposal)) = slot.pre_prepare.clone() else {
            return;
        };
        let (view, digest) = (pp.body.view, pp.body.digest);
        let prepares: Vec<Signed<Prepare>> = slot
            .prepares
            .values()
            .filter(|p| p.body.view == view && p.body.digest == digest)
            .cloned()
            .collect();
        if prepares.len() < needed {
            return;
        }
        slot.prepared_now = true;
        let proof = PreparedProof {
            pre_prepare: pp,
            prepares,
        };
        slot.prepared = Some((proof.clone(), proposal.clone()));
        self.persist(DurableRecord::Prepared { proof, proposal });
        let commit = Signed::sign(
            Commit {
                view,
                seq,
                digest,
                replica: self.cfg.id,
            },
            &self.key,
        );
        if let Some(slot) = self.log.get_mut(&seq) {
            slot.commits.insert(self.cfg.id, commit.clone());
        }
        self.broadcast(PeerMessage::Commit(commit));
        self.check_committed(seq);
    }

    fn check_committed(&mut self, seq: SeqNum) {
        let quorum = self.quorum();
        let Some(slot) = self.log.get_mut(&seq) else {
            return;
        };
        if !slot.prepared_now || slot.committed {
            return;
        }
        let Some((view, digest)) = slot.accepted() else {
            return;
        };
        let matching = slot
            .commits
            .values()
            .filter(|c| c.body.view == view && c.body.digest == digest)
            .count();
        if matching >= quorum {
            slot.committed = true;
            self.try_execute();
        }
    }

    /// Execute committed sequence numbers in order (section 4.2, last paragraph).
    pub(crate) fn try_execute(&mut self) {
        loop {
            let next = self.last_executed + 1;
            let Some(slot) = self.log.get(&next) else {
                return;
            };
            if !slot.committed {
                return;
            }
            let Some((pp, proposal)) = &slot.pre_prepare else {
                return;
            };
            let (view, digest) = (pp.body.view, pp.body.digest);
            let signatures = slot
                .commits
                .values()
                .filter(|c| c.body.view == view && c.body.digest == digest)
                .map(|c| (c.body.replica, c.signature))
                .collect();
            let block = CommittedBlock {
                header: BlockHeader::new(&proposal.header(), self.last_hash),
                requests: proposal.requests.clone(),
                certificate: CommitCertificate {
                    view,
                    height: next,
                    proposal_digest: digest,
                    signatures,
                },
            };
            self.execute_block(block);
        }
    }

    /// Apply the next block (from the normal case or from state transfer).
    pub(crate) fn execute_block(&mut self, block: CommittedBlock) {
        let height = block.height();
        let hash = block.hash();
        let mut replies = Vec::new();
        for r in &block.requests {
            let key = r.key();
            if let Some(w) = self.waiting.remove(&key) {
                self.waiting_bytes -= w.size_hint();
            }
            self.in_flight.remove(&key);
            if self.clients.execute(key.0, key.1, height) {
                replies.push(Output::Reply(Reply {
                    replica: self.cfg.id,
                    client: key.0,
                    request_id: key.1,
                    height,
                    retransmission: false,
                }));
            }
        }
        self.out.push(Output::Commit(block));
        self.out.extend(replies);
        self.last_executed = height;
        self.last_hash = hash;
        self.last_progress_ms = self.now_ms;
        self.request_backoff = 0;
        if self.mode == Mode::Normal {
            self.backoff = 0;
            self.request_deadline_ms =
                (!self.waiting.is_empty()).then_some(self.now_ms + self.request_timeout_ms());
        }
        if height.is_multiple_of(self.cfg.checkpoint_interval.max(1)) {
            self.own_checkpoint(height, hash);
        }
    }

    /// Resend our votes for sequence numbers that have not executed for a while, and
    /// re-forward waiting requests: the network may have lost them.
    fn resend(&mut self) {
        // Our checkpoints above the stable one: if they were lost, no checkpoint becomes
        // stable and the window eventually closes (section 4.3).
        let checkpoints: Vec<(SeqNum, Hash32)> = self
            .own_checkpoints
            .range(self.stable_seq + 1..)
            .map(|(s, d)| (*s, *d))
            .collect();
        for (seq, digest) in checkpoints {
            let c = self.sign_checkpoint(seq, digest);
            self.broadcast(PeerMessage::Checkpoint(c));
        }
        match self.mode {
            Mode::ViewChange => {
                if let Some(m) = self.own_view_change.clone() {
                    self.broadcast(m);
                }
                // The requests relayed when the timer fired may have been lost, and then
                // no other replica has a reason to suspect the primary: a lone replica in
                // view change would wait forever while the others idle in the old view.
                // Relay them again, as a PBFT client retransmits to every replica.
                self.relay_waiting();
            }
            Mode::Normal => {
                let id = self.cfg.id;
                let is_primary = self.is_primary();
                let now = self.now_ms;
                let stale = self.cfg.resend_interval_ms;
                let mut msgs = Vec::new();
                for slot in self.log.range_mut(self.last_executed + 1..).map(|(_, s)| s) {
                    if now < slot.touched_ms + stale {
                        continue;
                    }
                    slot.touched_ms = now;
                    if is_primary {
                        if let Some((pp, proposal)) = &slot.pre_prepare {
                            msgs.push(PeerMessage::PrePrepare {
                                pre_prepare: pp.clone(),
                                proposal: proposal.clone(),
                            });
                        }
                    }
                    if let Some(p) = slot.prepares.get(&id) {
                        msgs.push(PeerMessage::Prepare(p.clone()));
                    }
                    if let Some(c) = slot.commits.get(&id) {
                        msgs.push(PeerMessage::Commit(c.clone()));
                    }
                }
                for m in msgs {
                    self.broadcast(m);
                }
                if !is_primary {
                    let primary = self.primary_of(self.view);
                    let forward: Vec<SignedRequest> = self
                        .waiting
                        .iter()
                        .filter(|(k, _)| !self.in_flight.contains(k))
                        .take(self.cfg.limits.max_batch_requests)
                        .map(|(_, r)| r.clone())
                        .collect();
                    for r in forward {
                        self.send(primary, PeerMessage::Request(r));
                    }
                }
            }
        }
    }
}
