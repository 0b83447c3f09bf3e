//! View change and new view (section 4.4).
//!
//! A backup whose request waits too long moves to view v+1 and sends VIEW-CHANGE with
//! its stable checkpoint and its prepared certificates (the P set). The primary of v+1
//! gathers 2f+1 of them, computes the O set (for every sequence number between the
//! highest stable checkpoint and the highest prepared one: the prepared digest of the
//! highest view, or a null request) and sends NEW-VIEW. Backups recompute O from the
//! same 2f+1 view changes and reject a NEW-VIEW that differs. Timeouts double with each
//! consecutive failed view; f+1 view changes for higher views pull a replica along.

use medchain_types::{
    Checkpoint, Hash32, NewView, PeerMessage, PrePrepare, PreparedProof, Proposal, ReplicaId,
    SeqNum, Signed, ViewChange, ViewNum,
};

use crate::durable::DurableRecord;
use crate::io::Output;
use crate::replica::{Mode, Replica};

/// One entry of the O set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OEntry {
    pub seq: SeqNum,
    /// The prepared digest with the highest view, and where its proof is
    /// (index of the view change, index in its P set); `None` for a null request.
    pub prepared: Option<(Hash32, usize, usize)>,
}

/// What a NEW-VIEW must contain, computed from its view changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OSet {
    /// min-s: the highest stable checkpoint among the view changes.
    pub min_s: SeqNum,
    pub stable_digest: Hash32,
    pub stable_proof: Vec<Signed<Checkpoint>>,
    pub entries: Vec<OEntry>,
}

/// Compute the O set from view changes (a pure function, so the new primary and every
/// backup get the same answer).
pub fn compute_o(view_changes: &[Signed<ViewChange>]) -> OSet {
    let mut best_stable: Option<&ViewChange> = None;
    for vc in view_changes {
        if best_stable.is_none_or(|b| vc.body.stable_seq > b.stable_seq) {
            best_stable = Some(&vc.body);
        }
    }
    let (min_s, stable_digest, stable_proof) = best_stable
        .map(|b| (b.stable_seq, b.stable_digest, b.checkpoint_proof.clone()))
        .unwrap_or_default();
    let max_s = view_changes
        .iter()
        .flat_map(|vc| vc.body.prepared.iter().map(|p| p.pre_prepare.body.seq))
        .max()
        .unwrap_or(min_s)
        .max(min_s);
    let mut entries = Vec::new();
    for seq in min_s + 1..=max_s {
        let mut best: Option<(ViewNum, Hash32, usize, usize)> = None;
        for (i, vc) in view_changes.iter().enumerate() {
            if let Ok(j) = vc
                .body
                .prepared
                .binary_search_by_key(&seq, |p| p.pre_prepare.body.seq)
            {
                let pp = &vc.body.prepared[j].pre_prepare.body;
                if best.is_none_or(|(v, ..)| pp.view > v) {
                    best = Some((pp.view, pp.digest, i, j));
                }
            }
        }
        entries.push(OEntry {
            seq,
            prepared: best.map(|(_, d, i, j)| (d, i, j)),
        });
    }
    OSet {
        min_s,
        stable_digest,
        stable_proof,
        entries,
    }
}

impl Replica {
    /// Move to view `view` and send VIEW-CHANGE.
    pub(crate) fn start_view_change(&mut self, view: ViewNum) {
        if view <= self.view {
            return;
        }
        self.view = view;
        self.mode = Mode::ViewChange;
        self.request_deadline_ms = None;
        self.view_change_deadline_ms = None;
        self.queue.clear();
        self.queue_since_ms = None;
        self.new_view_msg = None;
        self.persist(DurableRecord::View {
            view,
            normal: false,
        });
        self.send_view_change();
        self.after_view_change_vote();
    }

    /// Build, remember and broadcast this replica's VIEW-CHANGE for the current view.
    pub(crate) fn send_view_change(&mut self) {
        let mut prepared: Vec<PreparedProof> = Vec::new();
        let mut proposals: Vec<Proposal> = Vec::new();
        for slot in self.log.range(self.stable_seq + 1..).map(|(_, s)| s) {
            if let Some((proof, proposal)) = &slot.prepared {
                if proof.pre_prepare.body.view < self.view {
                    prepared.push(proof.clone());
                    proposals.push(proposal.clone());
                }
            }
        }
        let vc = Signed::sign(
            ViewChange {
                new_view: self.view,
                stable_seq: self.stable_seq,
                stable_digest: self.stable_digest,
                checkpoint_proof: self.stable_proof.clone(),
                prepared,
                replica: self.cfg.id,
            },
            &self.key,
        );
        let msg = PeerMessage::ViewChange {
            view_change: vc.clone(),
            proposals: proposals.clone(),
        };
        self.own_view_change = Some(msg.clone());
        self.view_changes.insert(self.cfg.id, (vc, proposals));
        self.broadcast(msg);
    }

    pub(crate) fn on_view_change(&mut self, vc: Signed<ViewChange>, proposals: Vec<Proposal>) {
        let from = vc.body.replica;
        let v = vc.body.new_view;
        if from == self.cfg.id {
            return;
        }
        if self
            .view_changes
            .get(&from)
            .is_some_and(|(old, _)| old.body.new_view >= v)
        {
            return;
        }
        if v <= self.view && (self.mode == Mode::Normal || v < self.view) {
            // The sender is behind: it may have missed the NEW-VIEW we accepted.
            if self.mode == Mode::Normal {
                if let Some(nv) = self.new_view_msg.clone() {
                    self.send(from, nv);
                }
            }
            return;
        }
        self.view_changes.insert(from, (vc, proposals));
        // Join rule: f+1 others in higher views means at least one correct replica is.
        let mut higher: Vec<ViewNum> = self
            .view_changes
            .iter()
            .filter(|(r, _)| **r != self.cfg.id)
            .map(|(_, (vc, _))| vc.body.new_view)
            .filter(|w| *w > self.view)
            .collect();
        if higher.len() > self.f {
            higher.sort_unstable();
            self.start_view_change(higher[0]);
        }
        self.after_view_change_vote();
    }

    /// Start the NEW-VIEW timer once 2f+1 replicas are changing view (so a lone replica
    /// cannot race ahead), and, as the new primary, send NEW-VIEW when possible.
    fn after_view_change_vote(&mut self) {
        if self.mode != Mode::ViewChange {
            return;
        }
        let support = self
            .view_changes
            .values()
            .filter(|(vc, _)| vc.body.new_view >= self.view)
            .count();
        if support >= self.quorum() && self.view_change_deadline_ms.is_none() {
            let timeout = self.cfg.view_change_timeout_ms << self.backoff;
            self.view_change_deadline_ms = Some(self.now_ms + timeout);
        }
        if self.is_primary() && self.new_view_msg.is_none() {
            self.try_send_new_view();
        }
    }

    fn try_send_new_view(&mut self) {
        let view = self.view;
        let chosen: Vec<(Signed<ViewChange>, Vec<Proposal>)> = self
            .view_changes
            .values()
            .filter(|(vc, _)| vc.body.new_view == view)
            .take(self.quorum())
            .cloned()
            .collect();
        if chosen.len() < self.quorum() {
            return;
        }
        let vcs: Vec<Signed<ViewChange>> = chosen.iter().map(|(vc, _)| vc.clone()).collect();
        let o = compute_o(&vcs);
        let mut pre_prepares = Vec::new();
        let mut proposals = Vec::new();
        for e in &o.entries {
            let proposal = match e.prepared {
                Some((_, i, j)) => chosen[i].1[j].clone(),
                None => Proposal::null(e.seq, view, self.cfg.id),
            };
            pre_prepares.push(Signed::sign(
                PrePrepare {
                    view,
                    seq: e.seq,
                    digest: proposal.digest(),
                    replica: self.cfg.id,
                },
                &self.key,
            ));
            proposals.push(proposal);
        }
        let nv = Signed::sign(
            NewView {
                view,
                view_changes: vcs,
                pre_prepares,
                replica: self.cfg.id,
            },
            &self.key,
        );
        self.broadcast(PeerMessage::NewView {
            new_view: nv.clone(),
            proposals: proposals.clone(),
        });
        self.install_new_view(nv, proposals, o);
    }

    pub(crate) fn on_new_view(&mut self, nv: Signed<NewView>, proposals: Vec<Proposal>) {
        let v = nv.body.view;
        if nv.body.replica == self.cfg.id
            || v < self.view
            || (v == self.view && self.mode == Mode::Normal)
        {
            return;
        }
        let o = compute_o(&nv.body.view_changes);
        #[cfg(feature = "planted-bugs")]
        let skip = self
            .cfg
            .bug(crate::config::PlantedBug::SkipNewViewValidation);
        #[cfg(not(feature = "planted-bugs"))]
        let skip = false;
        if !skip {
            // Recompute O and insist on exactly it (section 4.4: "the backup verifies that
            // O is correct by performing a computation similar to the one used by the
            // primary").
            let primary = self.primary_of(v);
            let expected: Vec<(SeqNum, Hash32)> = o
                .entries
                .iter()
                .map(|e| {
                    let d = match e.prepared {
                        Some((d, ..)) => d,
                        None => Proposal::null(e.seq, v, primary).digest(),
                    };
                    (e.seq, d)
                })
                .collect();
            let got: Vec<(SeqNum, Hash32)> = nv
                .body
                .pre_prepares
                .iter()
                .map(|pp| (pp.body.seq, pp.body.digest))
                .collect();
            if expected != got {
                return;
            }
        }
        self.install_new_view(nv, proposals, o);
    }

    /// Enter view `nv.view` in normal mode with the O set's pre-prepares.
    fn install_new_view(&mut self, nv: Signed<NewView>, proposals: Vec<Proposal>, o: OSet) {
        let view = nv.body.view;
        self.view = view;
        self.mode = Mode::Normal;
        self.view_change_deadline_ms = None;
        self.own_view_change = None;
        self.persist(DurableRecord::View { view, normal: true });
        self.view_changes
            .retain(|_, (vc, _)| vc.body.new_view > view);
        if o.min_s > self.stable_seq {
            self.make_stable(o.min_s, o.stable_digest, o.stable_proof);
        }
        for slot in self.log.values_mut() {
            slot.reset_view();
        }
        self.in_flight.clear();
        let max_s = o.entries.last().map(|e| e.seq).unwrap_or(o.min_s);
        for (pp, proposal) in nv.body.pre_prepares.iter().zip(&proposals) {
            if self.in_window(pp.body.seq) {
                self.accept_pre_prepare(pp.clone(), proposal.clone());
            }
        }
        self.next_seq = max_s.max(self.stable_seq).max(self.last_executed) + 1;
        self.new_view_msg = Some(PeerMessage::NewView {
            new_view: nv,
            proposals,
        });
        self.out.push(Output::ViewInstalled { view });
        // Requests that were waiting go to the new primary.
        let keys: Vec<_> = self
            .waiting
            .keys()
            .filter(|k| !self.in_flight.contains(k))
            .copied()
            .collect();
        if self.is_primary() {
            self.queue = keys.into_iter().collect();
            if !self.queue.is_empty() {
                self.queue_since_ms = Some(self.now_ms);
            }
        } else {
            let primary: ReplicaId = self.primary_of(view);
            for k in keys.into_iter().take(self.cfg.limits.max_batch_requests) {
                if let Some(r) = self.waiting.get(&k).cloned() {
                    self.send(primary, PeerMessage::Request(r));
                }
            }
        }
        self.request_deadline_ms =
            (!self.waiting.is_empty()).then_some(self.now_ms + self.request_timeout_ms());
        // Committed slots may be executable again.
        self.try_execute();
    }
}
