//! Shared helpers for the PBFT integration tests: a 4-replica, 2-client genesis, signing
//! helpers for hand-made (but validly signed) messages, and `Cluster`, a tiny in-memory
//! network that drives real replicas with encoded bytes that pass the real verifier.
#![allow(dead_code)]

use std::collections::{BTreeSet, VecDeque};
use std::fmt;

use medchain_pbft::{
    ChainState, ClientTable, Config, DurableRecord, DurableState, Input, Output, Replica, Reply,
};
use medchain_types::genesis::ClientInfo;
use medchain_types::{
    codec::FORMAT_VERSION, encode, Checkpoint, ClientId, Commit, CommittedBlock, Genesis, Hash32,
    KeyPair, Limits, PeerMessage, PrePrepare, Prepare, PreparedProof, Proposal, ReplicaId,
    ReplicaInfo, Request, SeqNum, Signed, SignedRequest, Verifier, ViewChange, ViewNum,
};

/// Replicas in the test genesis (f = 1).
pub const N: usize = 4;
pub const F: usize = 1;
/// 2f + 1.
pub const QUORUM: usize = 2 * F + 1;
pub const CLIENTS: usize = 2;

pub fn rid(i: usize) -> ReplicaId {
    ReplicaId(i as u16)
}

pub fn replica_key(i: usize) -> KeyPair {
    KeyPair::for_test(&format!("pbft-test-replica-{i}"))
}

pub fn client_key(i: usize) -> KeyPair {
    KeyPair::for_test(&format!("pbft-test-client-{i}"))
}

pub fn genesis() -> Genesis {
    Genesis {
        format_version: FORMAT_VERSION,
        chain_id: "medchain-pbft-tests".into(),
        replicas: (0..N)
            .map(|i| ReplicaInfo {
                id: rid(i),
                organisation: format!("org-{i}"),
                public_key: replica_key(i).public(),
                peer_addr: String::new(),
                http_addr: String::new(),
            })
            .collect(),
        clients: (0..CLIENTS)
            .map(|i| ClientInfo {
                name: format!("client-{i}"),
                public_key: client_key(i).public(),
            })
            .collect(),
        users: Vec::new(),
        consents: Vec::new(),
    }
}

/// Small limits so that batches, windows and fetches are exercised by a handful of requests.
pub fn limits() -> Limits {
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

/// K = 4, L = 16, batches of at most 4 proposed at once. Status and resend periods are
/// long so that tests see only the traffic they cause; tests that need them shorten them.
pub fn config(id: ReplicaId) -> Config {
    let mut c = Config::new(id);
    c.checkpoint_interval = 4;
    c.limits = limits();
    c.max_in_flight = 8;
    c.max_batch_delay_ms = 0;
    c.request_timeout_ms = 1_000;
    c.view_change_timeout_ms = 1_000;
    c.max_backoff_exponent = 4;
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
    Request {
        client: ClientId(client),
        request_id: id,
        payload: payload.to_vec(),
        content_hashes: Vec::new(),
    }
    .sign(&client_key(usize::from(client)))
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
    let primary = primary(view);
    Signed::sign(
        PrePrepare {
            view,
            seq: p.height,
            digest: p.digest(),
            replica: primary,
        },
        &replica_key(primary.index()),
    )
}

pub fn pre_prepare_msg(view: ViewNum, p: &Proposal) -> PeerMessage {
    PeerMessage::PrePrepare {
        pre_prepare: pre_prepare(view, p),
        proposal: p.clone(),
    }
}

pub fn prepare(view: ViewNum, seq: SeqNum, digest: Hash32, replica: usize) -> Signed<Prepare> {
    Signed::sign(
        Prepare {
            view,
            seq,
            digest,
            replica: rid(replica),
        },
        &replica_key(replica),
    )
}

pub fn commit(view: ViewNum, seq: SeqNum, digest: Hash32, replica: usize) -> Signed<Commit> {
    Signed::sign(
        Commit {
            view,
            seq,
            digest,
            replica: rid(replica),
        },
        &replica_key(replica),
    )
}

/// A prepared certificate for `p` in `view`: the primary's pre-prepare and the prepares
/// of the first 2f backups.
pub fn prepared_proof(view: ViewNum, p: &Proposal) -> PreparedProof {
    let backups: Vec<usize> = (0..N).filter(|i| rid(*i) != primary(view)).collect();
    PreparedProof {
        pre_prepare: pre_prepare(view, p),
        prepares: backups[..2 * F]
            .iter()
            .map(|b| prepare(view, p.height, p.digest(), *b))
            .collect(),
    }
}

pub fn checkpoint(seq: SeqNum, digest: Hash32, replica: usize) -> Signed<Checkpoint> {
    Signed::sign(
        Checkpoint {
            seq,
            digest,
            replica: rid(replica),
        },
        &replica_key(replica),
    )
}

/// 2f+1 checkpoints for (seq, digest), sorted by replica.
pub fn checkpoint_proof(seq: SeqNum, digest: Hash32) -> Vec<Signed<Checkpoint>> {
    (0..QUORUM).map(|i| checkpoint(seq, digest, i)).collect()
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
    let vc = Signed::sign(
        ViewChange {
            new_view,
            stable_seq,
            stable_digest,
            checkpoint_proof,
            prepared: prepared
                .iter()
                .map(|(v, p)| prepared_proof(*v, p))
                .collect(),
            replica: rid(replica),
        },
        &replica_key(replica),
    );
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

/// A message on the wire.
#[derive(Debug, Clone)]
pub struct Envelope {
    pub from: ReplicaId,
    pub to: ReplicaId,
    pub bytes: Vec<u8>,
}

/// Four replicas, a verifier and a FIFO network. Every message is encoded on send and
/// decoded and verified on delivery, as in the node; `Persist` outputs are folded into
/// per-replica durable states and `Commit`s appended to per-replica chains.
pub struct Cluster {
    pub genesis: Genesis,
    pub verifier: Verifier,
    pub configs: Vec<Config>,
    pub replicas: Vec<Replica>,
    pub durable: Vec<DurableState>,
    pub chains: Vec<Vec<CommittedBlock>>,
    pub replies: Vec<Vec<Reply>>,
    /// Every output of every replica, with the time it was produced.
    pub outputs: Vec<Vec<(u64, Output)>>,
    /// Every delivered message: (time, from, to, message).
    pub delivered: Vec<(u64, ReplicaId, ReplicaId, PeerMessage)>,
    pub queue: VecDeque<Envelope>,
    pub held: Vec<Envelope>,
    pub dropped: usize,
    pub now: u64,
    isolated: BTreeSet<ReplicaId>,
    rule: Option<Rule>,
}

impl fmt::Debug for Cluster {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Cluster")
            .field("now", &self.now)
            .field("queue", &self.queue.len())
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
            .map(|(i, c)| Replica::new(c.clone(), replica_key(i), &genesis))
            .collect();
        let mut cluster = Cluster {
            verifier: Verifier::new(&genesis, configs[0].limits.clone()),
            durable: vec![DurableState::genesis(genesis.hash()); N],
            chains: vec![Vec::new(); N],
            replies: vec![Vec::new(); N],
            outputs: vec![Vec::new(); N],
            delivered: Vec::new(),
            queue: VecDeque::new(),
            held: Vec::new(),
            dropped: 0,
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
        self.queue.extend(self.held.drain(..));
    }

    fn enqueue(&mut self, from: ReplicaId, to: ReplicaId, msg: &PeerMessage) {
        if from == to {
            return;
        }
        if self.isolated.contains(&from) || self.isolated.contains(&to) {
            self.dropped += 1;
            return;
        }
        let fate = self
            .rule
            .as_mut()
            .map_or(Fate::Deliver, |rule| rule(from, to, msg));
        let env = Envelope {
            from,
            to,
            bytes: encode(msg),
        };
        match fate {
            Fate::Deliver => self.queue.push_back(env),
            Fate::Hold => self.held.push(env),
            Fate::Drop => self.dropped += 1,
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
        let Some(env) = self.queue.pop_front() else {
            return false;
        };
        let msg = self
            .verifier
            .decode_message(&env.bytes)
            .expect("a correct replica's message decodes and verifies");
        self.delivered
            .push((self.now, env.from, env.to, msg.get().clone()));
        self.step(env.to.index(), Input::Message(msg));
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
        let mut clients = ClientTable::new(self.genesis.clients.len());
        for b in &self.chains[id] {
            clients.apply_block(b);
        }
        let chain = ChainState {
            last_executed: self.chains[id].len() as u64,
            last_hash: self.chains[id]
                .last()
                .map_or(self.genesis.hash(), CommittedBlock::hash),
            clients,
            recent_hashes: self.chains[id]
                .iter()
                .map(|b| (b.height(), b.hash()))
                .collect(),
        };
        self.replicas[id] = Replica::restore(
            self.configs[id].clone(),
            replica_key(id),
            &self.genesis,
            self.durable[id].clone(),
            chain,
        );
    }

    fn apply(&mut self, id: usize, outs: &[Output]) {
        let me = rid(id);
        for o in outs {
            self.outputs[id].push((self.now, o.clone()));
            match o {
                Output::Persist(rec) => self.durable[id].apply(rec),
                Output::Send { to, message } => self.enqueue(me, *to, message),
                Output::Broadcast(message) => {
                    for to in 0..N {
                        self.enqueue(me, rid(to), message);
                    }
                }
                Output::Commit(block) => {
                    let chain = &self.chains[id];
                    // The host contract: heights arrive consecutively and link up.
                    assert_eq!(block.height(), chain.len() as u64 + 1, "r{id} skipped");
                    let prev = chain.last().map_or(self.genesis.hash(), |b| b.hash());
                    assert_eq!(block.header.prev_hash, prev, "r{id} broke the hash chain");
                    self.chains[id].push(block.clone());
                }
                Output::Reply(r) => self.replies[id].push(r.clone()),
                Output::ReadBlocks {
                    to,
                    from_height,
                    max_blocks,
                } => {
                    let chain = &self.chains[id];
                    let start = (*from_height as usize).saturating_sub(1).min(chain.len());
                    let end = (start + max_blocks).min(chain.len());
                    let blocks = chain[start..end].to_vec();
                    if !blocks.is_empty() {
                        self.enqueue(me, *to, &PeerMessage::Blocks(blocks));
                    }
                }
                Output::ViewInstalled { .. } => {}
            }
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
        self.chains.iter().map(|c| c.len() as u64).collect()
    }
}
