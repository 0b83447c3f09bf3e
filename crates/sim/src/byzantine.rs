//! Byzantine replicas as mocks around a real replica: the inner core runs the protocol,
//! and the mock rewrites what leaves it. Each behaviour is one attack from the paper's
//! threat model; none can sign as another replica, since it holds only its own key.

use rand::Rng;
use rand_chacha::ChaCha8Rng;

use medchain_pbft::{Output, Replica};
use medchain_types::{
    encode, Checkpoint, Commit, Hash32, KeyPair, NewView, PeerMessage, PrePrepare, Prepare,
    Proposal, ReplicaId, Signed, ViewChange,
};

/// An attack.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Behaviour {
    /// Sends nothing at all.
    Silent,
    /// As primary, sends different pre-prepares to different backups, and votes for both.
    Equivocate,
    /// Sends messages claiming to be other replicas, corrupted signatures, and garbage.
    Forge,
    /// Re-sends old messages it has seen.
    Replay,
    /// Votes (prepare, commit, checkpoint) with wrong digests.
    WrongDigest,
    /// Sends VIEW-CHANGE messages for random views and NEW-VIEW messages with a wrong O set.
    BogusViewChange,
    /// Floods sequence numbers far outside the watermark window.
    Flood,
}

impl Behaviour {
    pub const ALL: [Behaviour; 7] = [
        Behaviour::Silent,
        Behaviour::Equivocate,
        Behaviour::Forge,
        Behaviour::Replay,
        Behaviour::WrongDigest,
        Behaviour::BogusViewChange,
        Behaviour::Flood,
    ];

    pub fn random(rng: &mut ChaCha8Rng) -> Self {
        Self::ALL[rng.gen_range(0..Self::ALL.len())]
    }
}

/// Where a Byzantine message goes.
#[derive(Debug, Clone)]
pub enum Wire {
    To(ReplicaId, Vec<u8>),
    All(Vec<u8>),
}

/// The mock wrapped around a Byzantine replica's core.
#[derive(Debug)]
pub struct ByzantineMock {
    pub behaviour: Behaviour,
    id: ReplicaId,
    n: usize,
    key: KeyPair,
    seen: Vec<Vec<u8>>,
    /// Count of misbehaving messages sent (reported as faults).
    pub attacks: u64,
}

const MAX_SEEN: usize = 128;

fn random_hash(rng: &mut ChaCha8Rng) -> Hash32 {
    Hash32(rng.gen())
}

impl ByzantineMock {
    pub fn new(behaviour: Behaviour, id: ReplicaId, n: usize, key: KeyPair) -> Self {
        ByzantineMock {
            behaviour,
            id,
            n,
            key,
            seen: Vec::new(),
            attacks: 0,
        }
    }

    /// Remember a message that reached this replica, for replays.
    pub fn observe(&mut self, bytes: &[u8], rng: &mut ChaCha8Rng) {
        if self.behaviour != Behaviour::Replay {
            return;
        }
        if self.seen.len() < MAX_SEEN {
            self.seen.push(bytes.to_vec());
        } else {
            let i = rng.gen_range(0..MAX_SEEN);
            self.seen[i] = bytes.to_vec();
        }
    }

    fn others(&self) -> Vec<ReplicaId> {
        (0..self.n)
            .map(|i| ReplicaId(i as u16))
            .filter(|r| *r != self.id)
            .collect()
    }

    /// Rewrite the network outputs of the inner replica; other outputs are the caller's.
    pub fn transform(
        &mut self,
        inner: &Replica,
        outputs: &[Output],
        rng: &mut ChaCha8Rng,
    ) -> Vec<Wire> {
        let mut wire = Vec::new();
        for o in outputs {
            let (to, msg) = match o {
                Output::Send { to, message } => (Some(*to), message),
                Output::Broadcast(m) => (None, m),
                _ => continue,
            };
            let honest = |m: &PeerMessage| match to {
                Some(t) => Wire::To(t, encode(m)),
                None => Wire::All(encode(m)),
            };
            match self.behaviour {
                Behaviour::Silent => {}
                Behaviour::Equivocate => self.equivocate(msg, &honest, rng, &mut wire),
                Behaviour::Forge => {
                    wire.push(honest(msg));
                    self.forge(msg, rng, &mut wire);
                }
                Behaviour::Replay => {
                    wire.push(honest(msg));
                    for _ in 0..rng.gen_range(0..=2) {
                        if self.seen.is_empty() {
                            break;
                        }
                        let old = self.seen[rng.gen_range(0..self.seen.len())].clone();
                        let target = self.others()[rng.gen_range(0..self.n - 1)];
                        wire.push(Wire::To(target, old));
                        self.attacks += 1;
                    }
                }
                Behaviour::WrongDigest => wire.push(honest(&self.wrong_digest(msg, rng))),
                Behaviour::BogusViewChange => {
                    wire.push(honest(&self.bogus_new_view(msg, rng)));
                    if matches!(msg, PeerMessage::Status(_)) {
                        self.bogus_view_changes(inner, rng, &mut wire);
                    }
                }
                Behaviour::Flood => {
                    wire.push(honest(msg));
                    if matches!(msg, PeerMessage::Status(_) | PeerMessage::PrePrepare { .. }) {
                        self.flood(inner, rng, &mut wire);
                    }
                }
            }
        }
        wire
    }

    fn equivocate(
        &mut self,
        msg: &PeerMessage,
        honest: &dyn Fn(&PeerMessage) -> Wire,
        rng: &mut ChaCha8Rng,
        wire: &mut Vec<Wire>,
    ) {
        match msg {
            PeerMessage::PrePrepare {
                pre_prepare,
                proposal,
            } if pre_prepare.body.replica == self.id => {
                // A second batch for the same sequence number: same requests, another
                // order and timestamp, so another digest.
                let mut alt = proposal.clone();
                alt.timestamp_ms += 1;
                alt.requests.reverse();
                let alt_pp = Signed::sign(
                    PrePrepare {
                        digest: alt.digest(),
                        ..pre_prepare.body.clone()
                    },
                    &self.key,
                );
                let alt_msg = PeerMessage::PrePrepare {
                    pre_prepare: alt_pp.clone(),
                    proposal: alt,
                };
                for r in self.others() {
                    let m = if rng.gen_bool(0.5) { msg } else { &alt_msg };
                    wire.push(Wire::To(r, encode(m)));
                }
                // And a commit for the alternative, so both can gather votes.
                let c = Signed::sign(
                    Commit {
                        view: alt_pp.body.view,
                        seq: alt_pp.body.seq,
                        digest: alt_pp.body.digest,
                        replica: self.id,
                    },
                    &self.key,
                );
                wire.push(Wire::All(encode(&PeerMessage::Commit(c))));
                self.attacks += 1;
            }
            PeerMessage::Prepare(p) => {
                // Vote for the real digest to some and for another to the rest.
                for r in self.others() {
                    let digest = if rng.gen_bool(0.5) {
                        p.body.digest
                    } else {
                        random_hash(rng)
                    };
                    let v = Signed::sign(
                        Prepare {
                            digest,
                            ..p.body.clone()
                        },
                        &self.key,
                    );
                    wire.push(Wire::To(r, encode(&PeerMessage::Prepare(v))));
                }
                self.attacks += 1;
            }
            m => wire.push(honest(m)),
        }
    }

    fn forge(&mut self, msg: &PeerMessage, rng: &mut ChaCha8Rng, wire: &mut Vec<Wire>) {
        let victim = ReplicaId(rng.gen_range(0..self.n) as u16);
        let forged = match msg {
            // Claim another replica's identity under our signature.
            PeerMessage::Prepare(p) => PeerMessage::Prepare(Signed {
                body: Prepare {
                    replica: victim,
                    ..p.body.clone()
                },
                signature: p.signature,
            }),
            PeerMessage::Commit(c) => PeerMessage::Commit(Signed {
                body: Commit {
                    replica: victim,
                    ..c.body.clone()
                },
                signature: c.signature,
            }),
            PeerMessage::Checkpoint(c) => PeerMessage::Checkpoint(Signed {
                body: Checkpoint {
                    replica: victim,
                    ..c.body.clone()
                },
                signature: c.signature,
            }),
            // Corrupt a signature bit.
            PeerMessage::Status(s) => {
                let mut s = s.clone();
                s.signature.0[rng.gen_range(0..64)] ^= 1 << rng.gen_range(0..8);
                PeerMessage::Status(s)
            }
            PeerMessage::PrePrepare {
                pre_prepare,
                proposal,
            } => {
                let mut pp = pre_prepare.clone();
                pp.signature.0[0] ^= 0x80;
                PeerMessage::PrePrepare {
                    pre_prepare: pp,
                    proposal: proposal.clone(),
                }
            }
            _ => {
                let len = rng.gen_range(0..200);
                let garbage: Vec<u8> = (0..len).map(|_| rng.gen()).collect();
                wire.push(Wire::All(garbage));
                self.attacks += 1;
                return;
            }
        };
        wire.push(Wire::All(encode(&forged)));
        self.attacks += 1;
    }

    fn wrong_digest(&mut self, msg: &PeerMessage, rng: &mut ChaCha8Rng) -> PeerMessage {
        let digest = random_hash(rng);
        let out = match msg {
            PeerMessage::Prepare(p) => PeerMessage::Prepare(Signed::sign(
                Prepare {
                    digest,
                    ..p.body.clone()
                },
                &self.key,
            )),
            PeerMessage::Commit(c) => PeerMessage::Commit(Signed::sign(
                Commit {
                    digest,
                    ..c.body.clone()
                },
                &self.key,
            )),
            PeerMessage::Checkpoint(c) => PeerMessage::Checkpoint(Signed::sign(
                Checkpoint {
                    digest,
                    ..c.body.clone()
                },
                &self.key,
            )),
            m => return m.clone(),
        };
        self.attacks += 1;
        out
    }

    /// A pre-prepare for `p` in `view`, validly signed by this (Byzantine) replica.
    fn sign_pre_prepare(&self, view: u64, p: &Proposal) -> Signed<PrePrepare> {
        Signed::sign(
            PrePrepare {
                view,
                seq: p.height,
                digest: p.digest(),
                replica: self.id,
            },
            &self.key,
        )
    }

    /// As new primary, send a NEW-VIEW whose O set does not follow from its view changes.
    fn bogus_new_view(&mut self, msg: &PeerMessage, rng: &mut ChaCha8Rng) -> PeerMessage {
        let PeerMessage::NewView {
            new_view,
            proposals,
        } = msg
        else {
            return msg.clone();
        };
        let mut body: NewView = new_view.body.clone();
        let mut proposals = proposals.clone();
        if body.pre_prepares.is_empty() {
            let min_s = body
                .view_changes
                .iter()
                .map(|vc| vc.body.stable_seq)
                .max()
                .unwrap_or(0);
            let mut p = Proposal::null(min_s + 1, body.view, self.id);
            p.timestamp_ms = rng.gen_range(1..1_000_000);
            body.pre_prepares.push(self.sign_pre_prepare(body.view, &p));
            proposals.push(p);
        } else {
            let k = rng.gen_range(0..body.pre_prepares.len());
            let p = &mut proposals[k];
            p.view = body.view;
            p.proposer = self.id;
            p.timestamp_ms = rng.gen_range(1..1_000_000);
            if rng.gen_bool(0.5) {
                p.requests.pop();
            }
            body.pre_prepares[k] = self.sign_pre_prepare(body.view, p);
        }
        self.attacks += 1;
        PeerMessage::NewView {
            new_view: Signed::sign(body, &self.key),
            proposals,
        }
    }

    /// View changes for random higher views, some with a tampered P set.
    fn bogus_view_changes(&mut self, inner: &Replica, rng: &mut ChaCha8Rng, wire: &mut Vec<Wire>) {
        let vc = ViewChange {
            new_view: inner.view() + rng.gen_range(1..5),
            stable_seq: 0,
            stable_digest: Hash32::default(),
            checkpoint_proof: Vec::new(),
            prepared: Vec::new(),
            replica: self.id,
        };
        let msg = PeerMessage::ViewChange {
            view_change: Signed::sign(vc, &self.key),
            proposals: Vec::new(),
        };
        wire.push(Wire::All(encode(&msg)));
        self.attacks += 1;
    }

    /// Votes far above the high watermark and in far-future views.
    fn flood(&mut self, inner: &Replica, rng: &mut ChaCha8Rng, wire: &mut Vec<Wire>) {
        for _ in 0..8 {
            let seq = inner.stable_seq() + 10_000 + rng.gen_range(0..1_000_000);
            let view = inner.view() + rng.gen_range(0..3);
            let digest = random_hash(rng);
            let m = if rng.gen_bool(0.5) {
                PeerMessage::Commit(Signed::sign(
                    Commit {
                        view,
                        seq,
                        digest,
                        replica: self.id,
                    },
                    &self.key,
                ))
            } else {
                PeerMessage::Checkpoint(Signed::sign(
                    Checkpoint {
                        seq: seq - seq % 4,
                        digest,
                        replica: self.id,
                    },
                    &self.key,
                ))
            };
            wire.push(Wire::All(encode(&m)));
            self.attacks += 1;
        }
    }
}
