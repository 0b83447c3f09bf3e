//! Shared helpers for the PBFT integration tests: this suite's 4-replica, 2-client genesis
//! and keys, signing helpers for hand-made (but validly signed) messages, and `Cluster`,
//! which drives real replicas over the test kit's in-memory network with encoded bytes
//! that pass the real verifier. The generic parts live in `medchain-testkit`.
#![allow(dead_code)]

use std::collections::BTreeSet;
use std::fmt;
use std::rc::Rc;

use medchain_pbft::{Config, DurableRecord, Input, Output, Replica, Reply};
use medchain_testkit::{
    small_config, small_limits, Disk, Due, Envelope, GenesisBuilder, Network, TestKeys,
};
use medchain_types::{
    encode, Checkpoint, ClientId, Commit, CommittedBlock, Genesis, Hash32, Limits, PeerMessage,
    PrePrepare, Prepare, PreparedProof, Proposal, ReplicaId, SeqNum, Signed, SignedRequest,
    Verifier, ViewChange, ViewNum,
};

/// Replicas in the test genesis (f = 1).
pub const N: usize = 4;
pub const F: usize = 1;
/// 2f + 1.
pub const QUORUM: usize = 2 * F + 1;
pub const CLIENTS: usize = 2;

/// This suite's keys (its fixtures were made with them).
pub const KEYS: TestKeys = TestKeys::new("pbft-test-");

pub fn rid(i: usize) -> ReplicaId {
    ReplicaId(i as u16)
}

pub fn genesis() -> Genesis {
    GenesisBuilder::new("medchain-pbft-tests", KEYS)
        .replicas(N)
        .clients(CLIENTS)
        .build()
}

/// Small limits so that batches, windows and fetches are exercised by a handful of requests.
pub fn limits() -> Limits {
    small_limits()
}

/// K = 4, L = 16, batches of at most 4 proposed at once. Status and resend periods are
/// long so that tests see only the traffic they cause; tests that need them shorten them.
pub fn config(id: ReplicaId) -> Config {
    let mut c = small_config(id);
    c.max_batch_delay_ms = 0;
    c.request_timeout_ms = 1_000;
    c.view_change_timeout_ms = 1_000;
    c.resend_interval_ms = 10_000;
    c.status_interval_ms = 10_000;
    c.fetch_timeout_ms = 1_000;
    c
}

pub fn verifier() -> Verifier {
    Verifier::new(&genesis(), limits())
}

pub fn primary(view: ViewNum) -> ReplicaId {
    rid((view % N as u64) as usize)
}

// ----- requests and hand-signed protocol messages -----

pub fn request(client: u16, id: u64) -> SignedRequest {
    request_with(
        client,
        id,
        format!("client {client} request {id}").as_bytes(),
    )
}

pub fn request_with(client: u16, id: u64, payload: &[u8]) -> SignedRequest {
    KEYS.request(client, id, payload)
}

/// A batch first proposed in `view` by that view's primary.
pub fn proposal(
    seq: SeqNum,
    view: ViewNum,
    timestamp_ms: u64,
    requests: Vec<SignedRequest>,
) -> Proposal {
    Proposal {
        height: seq,
        view,
        proposer: primary(view),
        timestamp_ms,
        requests,
    }
}

/// The pre-prepare the primary of `view` signs for `p` at `p.height`.
pub fn pre_prepare(view: ViewNum, p: &Proposal) -> Signed<PrePrepare> {
    KEYS.pre_prepare(view, p, primary(view))
}

pub fn pre_prepare_msg(view: ViewNum, p: &Proposal) -> PeerMessage {
    PeerMessage::PrePrepare {
        pre_prepare: pre_prepare(view, p),
        proposal: p.clone(),
    }
}

pub fn prepare(view: ViewNum, seq: SeqNum, digest: Hash32, replica: usize) -> Signed<Prepare> {
    KEYS.sign(Prepare {
        view,
        seq,
        digest,
        replica: rid(replica),
    })
}

pub fn commit(view: ViewNum, seq: SeqNum, digest: Hash32, replica: usize) -> Signed<Commit> {
    KEYS.sign(Commit {
        view,
        seq,
        digest,
        replica: rid(replica),
    })
}

/// A prepared certificate for `p` in `view`: the primary's pre-prepare and the prepares
/// of the first 2f backups.
pub fn prepared_proof(view: ViewNum, p: &Proposal) -> PreparedProof {
    let backups: Vec<u16> = (0..N as u16)
        .filter(|i| ReplicaId(*i) != primary(view))
        .collect();
    KEYS.prepared_proof(view, p, primary(view), &backups[..2 * F])
}

pub fn checkpoint(seq: SeqNum, digest: Hash32, replica: usize) -> Signed<Checkpoint> {
    KEYS.sign(Checkpoint {
        seq,
        digest,
        replica: rid(replica),
    })
}

/// 2f+1 checkpoints for (seq, digest), sorted by replica.
pub fn checkpoint_proof(seq: SeqNum, digest: Hash32) -> Vec<Signed<Checkpoint>> {
    let signers: Vec<u16> = (0..QUORUM as u16).collect();
    KEYS.checkpoint_proof(seq, digest, &signers)
}

/// A VIEW-CHANGE from `replica` to `new_view`, with a stable checkpoint (genesis when
/// `None`) and prepared certificates `(view prepared in, batch)`, sorted by sequence number.
pub fn view_change(
    replica: usize,
    new_view: ViewNum,
    stable: Option<(SeqNum, Hash32)>,
    prepared: &[(ViewNum, Proposal)],
) -> (Signed<ViewChange>, Vec<Proposal>) {
    let (stable_seq, stable_digest, checkpoint_proof) = match stable {
        Some((seq, digest)) => (seq, digest, checkpoint_proof(seq, digest)),
        None => (0, genesis().hash(), Vec::new()),
    };
    let vc = KEYS.sign(ViewChange {
        new_view,
        stable_seq,
        stable_digest,
        checkpoint_proof,
        prepared: prepared
            .iter()
            .map(|(v, p)| prepared_proof(*v, p))
            .collect(),
        replica: rid(replica),
    });
    (vc, prepared.iter().map(|(_, p)| p.clone()).collect())
}

// ----- looking at outputs -----

/// Every message in `outs`, sent or broadcast.
pub fn messages(outs: &[Output]) -> Vec<&PeerMessage> {
    outs.iter()
        .filter_map(|o| match o {
            Output::Send { message, .. } => Some(message),
            Output::Broadcast(m) => Some(m),
            _ => None,
        })
        .collect()
}

pub fn prepares_in(outs: &[Output]) -> Vec<Signed<Prepare>> {
    messages(outs)
        .into_iter()
        .filter_map(|m| match m {
            PeerMessage::Prepare(p) => Some(p.clone()),
            _ => None,
        })
        .collect()
}

pub fn commits_in(outs: &[Output]) -> Vec<Signed<Commit>> {
    messages(outs)
        .into_iter()
        .filter_map(|m| match m {
            PeerMessage::Commit(c) => Some(c.clone()),
            _ => None,
        })
        .collect()
}

pub fn pre_prepares_in(outs: &[Output]) -> Vec<(Signed<PrePrepare>, Proposal)> {
    messages(outs)
        .into_iter()
        .filter_map(|m| match m {
            PeerMessage::PrePrepare {
                pre_prepare,
                proposal,
            } => Some((pre_prepare.clone(), proposal.clone())),
            _ => None,
        })
        .collect()
}

pub fn persisted_in(outs: &[Output]) -> Vec<DurableRecord> {
    outs.iter()
        .filter_map(|o| match o {
            Output::Persist(r) => Some(r.clone()),
            _ => None,
        })
        .collect()
}

// ----- the in-memory cluster -----

/// What the network does with one message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fate {
    Deliver,
    Drop,
    /// Keep aside until `Cluster::release_held`.
    Hold,
}

/// Decides the fate of a message from `.0` to `.1`.
pub type Rule = Box<dyn FnMut(ReplicaId, ReplicaId, &PeerMessage) -> Fate>;

/// Four replicas, a verifier and the kit's network, used FIFO: every message is posted
/// at the current time, encoded on send and decoded and verified on delivery, as in the
/// node. Each replica's outputs are folded into its `Disk` (durable state and chain).
pub struct Cluster {
    pub genesis: Genesis,
    pub verifier: Verifier,
    pub configs: Vec<Config>,
    pub replicas: Vec<Replica>,
    pub disks: Vec<Disk>,
    pub replies: Vec<Vec<Reply>>,
    /// Every output of every replica, with the time it was produced.
    pub outputs: Vec<Vec<(u64, Output)>>,
    /// Every delivered message: (time, from, to, message).
    pub delivered: Vec<(u64, ReplicaId, ReplicaId, PeerMessage)>,
    pub net: Network,
    pub held: Vec<Envelope>,
    pub now: u64,
    isolated: BTreeSet<ReplicaId>,
    rule: Option<Rule>,
}

impl fmt::Debug for Cluster {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Cluster")
            .field("now", &self.now)
            .field("queue", &self.net.len())
            .field("held", &self.held.len())
            .field("isolated", &self.isolated)
            .finish_non_exhaustive()
    }
}

impl Default for Cluster {
    fn default() -> Self {
        Self::new()
    }
}

impl Cluster {
    pub fn new() -> Self {
        Self::with_config(|_| {})
    }

    /// A cluster whose replica configurations are adjusted by `tweak`.
    pub fn with_config(tweak: impl Fn(&mut Config)) -> Self {
        let genesis = genesis();
        let configs: Vec<Config> = (0..N)
            .map(|i| {
                let mut c = config(rid(i));
                tweak(&mut c);
                c
            })
            .collect();
        let replicas = configs
            .iter()
            .enumerate()
            .map(|(i, c)| Replica::new(c.clone(), KEYS.replica(i), &genesis))
            .collect();
        let mut cluster = Cluster {
            verifier: Verifier::new(&genesis, configs[0].limits.clone()),
            disks: vec![Disk::new(&genesis); N],
            replies: vec![Vec::new(); N],
            outputs: vec![Vec::new(); N],
            delivered: Vec::new(),
            net: Network::new(),
            held: Vec::new(),
            now: 0,
            isolated: BTreeSet::new(),
            rule: None,
            configs,
            replicas,
            genesis,
        };
        // A host ticks each replica once at start-up, which fires the periodic timers
        // (status, resend) that are all due at time 0; do it here so that tests see only
        // the traffic they cause.
        cluster.tick_all();
        cluster.run();
        cluster
    }

    // ----- network faults -----

    /// Cut `r` off: every message to or from it is lost (it keeps running and ticking).
    pub fn isolate(&mut self, r: usize) {
        self.isolated.insert(rid(r));
    }

    pub fn reconnect(&mut self, r: usize) {
        self.isolated.remove(&rid(r));
    }

    /// Decide the fate of every later message with `rule` (replacing any earlier rule).
    pub fn set_rule(
        &mut self,
        rule: impl FnMut(ReplicaId, ReplicaId, &PeerMessage) -> Fate + 'static,
    ) {
        self.rule = Some(Box::new(rule));
    }

    pub fn clear_rule(&mut self) {
        self.rule = None;
    }

    /// Put the held messages back on the wire (rules and isolation are not re-applied).
    pub fn release_held(&mut self) {
        for envelope in std::mem::take(&mut self.held) {
            self.net.post(self.now, envelope);
        }
    }

    fn enqueue(&mut self, from: ReplicaId, to: ReplicaId, msg: &PeerMessage) {
        if !self.net.offer(from, to) {
            return;
        }
        if self.isolated.contains(&from) || self.isolated.contains(&to) {
            self.net.lose();
            return;
        }
        let fate = self
            .rule
            .as_mut()
            .map_or(Fate::Deliver, |rule| rule(from, to, msg));
        let envelope = Envelope {
            from,
            to,
            bytes: Rc::new(encode(msg)),
        };
        match fate {
            Fate::Deliver => self.net.post(self.now, envelope),
            Fate::Hold => self.held.push(envelope),
            Fate::Drop => self.net.lose(),
        }
    }

    // ----- driving replicas -----

    /// Step replica `id` with `input` at the current time, carry out its outputs, and
    /// return them.
    pub fn step(&mut self, id: usize, input: Input) -> Vec<Output> {
        let outs = self.replicas[id].step(self.now, input);
        self.apply(id, &outs);
        outs
    }

    /// A client hands `req` to replica `id` (not delivered further until `run`).
    pub fn client_request(&mut self, id: usize, req: SignedRequest) -> Vec<Output> {
        let v = self
            .verifier
            .verify_request(req)
            .expect("test requests are validly signed");
        self.step(id, Input::ClientRequest(v))
    }

    /// `client_request` and deliver everything that follows.
    pub fn submit(&mut self, id: usize, req: SignedRequest) -> Vec<Output> {
        let outs = self.client_request(id, req);
        self.run();
        outs
    }

    /// Hand a (hand-made) message straight to replica `to`, through the verifier.
    pub fn inject(&mut self, to: usize, msg: PeerMessage) -> Vec<Output> {
        let v = self
            .verifier
            .verify_message(msg)
            .expect("injected messages are validly signed");
        self.step(to, Input::Message(v))
    }

    pub fn tick(&mut self, id: usize) -> Vec<Output> {
        self.step(id, Input::Tick)
    }

    pub fn tick_all(&mut self) {
        for i in 0..N {
            self.tick(i);
        }
    }

    /// Deliver the oldest message on the wire; false when there is none.
    pub fn deliver_one(&mut self) -> bool {
        let envelope = match self.net.pop() {
            None => return false,
            Some((_, Due::Message(envelope))) => envelope,
            Some((_, Due::Event(never))) => match never {},
        };
        let msg = self
            .net
            .open(&self.verifier, &envelope)
            .expect("a correct replica's message decodes and verifies");
        self.delivered
            .push((self.now, envelope.from, envelope.to, msg.get().clone()));
        self.step(envelope.to.index(), Input::Message(msg));
        true
    }

    /// Deliver until the wire is empty (time does not move).
    pub fn run(&mut self) {
        let mut steps = 0;
        while self.deliver_one() {
            steps += 1;
            assert!(steps < 200_000, "the cluster does not quiesce");
        }
    }

    /// Let time pass up to `t`, ticking each replica exactly at its next deadline and
    /// delivering everything in between, so that timeouts fire at their exact times.
    pub fn advance_to(&mut self, t: u64) {
        loop {
            self.run();
            let next = self
                .replicas
                .iter()
                .map(Replica::next_deadline_ms)
                .min()
                .expect("the cluster has replicas");
            if next > t {
                break;
            }
            self.now = self.now.max(next);
            for i in 0..N {
                if self.replicas[i].next_deadline_ms() <= self.now {
                    self.tick(i);
                }
            }
        }
        self.now = self.now.max(t);
        self.tick_all();
        self.run();
    }

    /// Crash replica `id` and restart it from what its disk holds: the folded durable
    /// records and the committed chain (with the client table replayed from it).
    pub fn restart(&mut self, id: usize) {
        self.replicas[id] = self.disks[id].restore(
            self.configs[id].clone(),
            KEYS.replica(id),
            &self.genesis,
            usize::MAX,
        );
    }

    fn apply(&mut self, id: usize, outs: &[Output]) {
        let me = rid(id);
        let committed_before = self.disks[id].chain.len();
        for o in outs {
            self.outputs[id].push((self.now, o.clone()));
            if let Some((to, blocks)) = self.disks[id].apply(o) {
                self.enqueue(me, to, &blocks);
            }
            match o {
                Output::Send { to, message } => self.enqueue(me, *to, message),
                Output::Broadcast(message) => {
                    for to in 0..N {
                        self.enqueue(me, rid(to), message);
                    }
                }
                Output::Reply(r) => self.replies[id].push(r.clone()),
                Output::Persist(_)
                | Output::Commit(_)
                | Output::ReadBlocks { .. }
                | Output::ViewInstalled { .. } => {}
            }
        }
        // The host contract: heights arrive consecutively and link up.
        if let Err(e) = self.disks[id].check_chain(&self.genesis, committed_before) {
            panic!("r{id}: {e}");
        }
    }

    // ----- what happened -----

    /// Every output of replica `id`, in order, without times.
    pub fn outputs_of(&self, id: usize) -> Vec<Output> {
        self.outputs[id].iter().map(|(_, o)| o.clone()).collect()
    }

    /// Every message replica `id` sent or broadcast, with the time.
    pub fn sent_by(&self, id: usize) -> Vec<(u64, &PeerMessage)> {
        self.outputs[id]
            .iter()
            .filter_map(|(t, o)| match o {
                Output::Send { message, .. } => Some((*t, message)),
                Output::Broadcast(m) => Some((*t, m)),
                _ => None,
            })
            .collect()
    }

    /// The views replica `id` installed, with the time.
    pub fn installed(&self, id: usize) -> Vec<(u64, ViewNum)> {
        self.outputs[id]
            .iter()
            .filter_map(|(t, o)| match o {
                Output::ViewInstalled { view } => Some((*t, *view)),
                _ => None,
            })
            .collect()
    }

    /// When replica `id` moved to `view` and started waiting for its NEW-VIEW.
    pub fn view_change_started(&self, id: usize, view: ViewNum) -> Option<u64> {
        self.outputs[id].iter().find_map(|(t, o)| match o {
            Output::Persist(DurableRecord::View {
                view: v,
                normal: false,
            }) if *v == view => Some(*t),
            _ => None,
        })
    }

    /// The replies replica `id` gave for (client, request id).
    pub fn replies_for(&self, id: usize, client: u16, request_id: u64) -> Vec<&Reply> {
        self.replies[id]
            .iter()
            .filter(|r| r.client == ClientId(client) && r.request_id == request_id)
            .collect()
    }

    pub fn heights(&self) -> Vec<u64> {
        self.chains().map(|c| c.len() as u64).collect()
    }

    /// Every replica's committed chain, in replica order.
    pub fn chains(&self) -> impl Iterator<Item = &[CommittedBlock]> {
        self.disks.iter().map(|d| d.chain.as_slice())
    }
}
