//! Catching up (section 4.3 and TOCS section 6.2, simplified by self-certifying blocks):
//! a replica that is behind (restarted, partitioned, slow) fetches committed blocks with
//! their commit certificates from peers, from its last executed height on. Every block
//! arrives verified (certificate, Merkle root, signatures) and must link to the previous
//! one, so a Byzantine peer can waste a fetch but never make us apply a wrong block.
//!
//! A replica learns it is behind from 2f+1 checkpoints above its height, from a NEW-VIEW
//! whose stable checkpoint is above it, or from STATUS heartbeats: the (f+1)-th highest
//! height peers claim has been reached by at least one correct replica.

use medchain_types::{CommittedBlock, FetchBlocks, PeerMessage, ReplicaId, SeqNum, Signed, Status};

use crate::io::Output;
use crate::replica::{Mode, Replica};

impl Replica {
    pub(crate) fn send_status(&mut self) {
        let status = self.status();
        self.broadcast(status);
    }

    fn status(&self) -> PeerMessage {
        PeerMessage::Status(Signed::sign(
            Status {
                view: self.view,
                in_view_change: self.mode == Mode::ViewChange,
                last_executed: self.last_executed,
                stable_seq: self.stable_seq,
                replica: self.cfg.id,
            },
            &self.key,
        ))
    }

    pub(crate) fn on_status(&mut self, s: Signed<Status>) {
        let from = s.body.replica;
        if from == self.cfg.id {
            return;
        }
        self.peer_progress[from.index()] = s.body.last_executed;
        // A peer behind us (typically one that just started) learns our height now
        // rather than at our next heartbeat, so its state transfer starts a round trip
        // after it connects. At most twice per heartbeat interval per peer, so a peer
        // cannot make us sign on demand.
        let answered = &mut self.status_answered_ms[from.index()];
        if s.body.last_executed < self.last_executed
            && answered.is_none_or(|t| self.now_ms >= t + self.cfg.status_interval_ms / 2)
        {
            *answered = Some(self.now_ms);
            let status = self.status();
            self.send(from, status);
        }
        // A peer in an older view, or still waiting for the NEW-VIEW of ours: relay it.
        if self.mode == Mode::Normal
            && (s.body.view < self.view || (s.body.view == self.view && s.body.in_view_change))
        {
            if let Some(nv) = self.new_view_msg.clone() {
                self.send(from, nv);
            }
        }
        // A peer whose stable checkpoint is older than ours: give it our proof.
        if s.body.stable_seq < self.stable_seq {
            for c in self.stable_proof.clone() {
                self.send(from, PeerMessage::Checkpoint(c));
            }
        }
    }

    /// A height at least one correct replica claims to have executed.
    pub(crate) fn claimed_target(&self) -> SeqNum {
        let mut heights: Vec<SeqNum> = self
            .peer_progress
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != self.cfg.id.index())
            .map(|(_, h)| *h)
            .collect();
        heights.sort_unstable_by(|a, b| b.cmp(a));
        heights.get(self.f).copied().unwrap_or(0)
    }

    /// Ask a peer for blocks if we are behind and no fetch is outstanding.
    pub(crate) fn maybe_fetch(&mut self) {
        if self.fetch.is_some() {
            return;
        }
        let stalled = self.now_ms >= self.last_progress_ms + self.cfg.resend_interval_ms;
        // A transfer under way goes on while peers claim more: waiting for the stall
        // timer between ranges would idle for most of it.
        let transferring = self
            .last_transfer_ms
            .is_some_and(|t| self.now_ms < t + self.cfg.resend_interval_ms);
        let target = if stalled || transferring {
            self.certified_target.max(self.claimed_target())
        } else {
            self.certified_target
        };
        if target <= self.last_executed {
            return;
        }
        let me = self.cfg.id.index();
        let mut candidates: Vec<ReplicaId> = (0..self.n)
            .filter(|i| *i != me && self.peer_progress[*i] > self.last_executed)
            .map(|i| ReplicaId(i as u16))
            .collect();
        if candidates.is_empty() {
            candidates = (0..self.n)
                .filter(|i| *i != me)
                .map(|i| ReplicaId(i as u16))
                .collect();
        }
        let Some(&peer) = candidates.get(self.fetch_rotation % candidates.len().max(1)) else {
            return;
        };
        self.fetch_rotation = self.fetch_rotation.wrapping_add(1);
        let req = Signed::sign(
            FetchBlocks {
                from_height: self.last_executed + 1,
                max_blocks: self.cfg.limits.max_fetch_blocks as u32,
                replica: self.cfg.id,
            },
            &self.key,
        );
        self.send(peer, PeerMessage::FetchBlocks(req));
        self.fetch = Some((peer, self.now_ms + self.cfg.fetch_timeout_ms));
    }

    pub(crate) fn on_fetch_blocks(&mut self, f: Signed<FetchBlocks>) {
        let b = &f.body;
        if b.replica == self.cfg.id || b.from_height == 0 || b.from_height > self.last_executed {
            return;
        }
        let available = self.last_executed - b.from_height + 1;
        let max_blocks = (b.max_blocks as u64)
            .min(available)
            .min(self.cfg.limits.max_fetch_blocks as u64) as usize;
        self.out.push(Output::ReadBlocks {
            to: b.replica,
            from_height: b.from_height,
            max_blocks,
        });
    }

    pub(crate) fn on_blocks(&mut self, blocks: Vec<CommittedBlock>) {
        let before = self.last_executed;
        for block in blocks {
            if block.height() <= self.last_executed {
                continue;
            }
            if block.height() != self.last_executed + 1 || block.header.prev_hash != self.last_hash
            {
                break;
            }
            self.execute_block(block);
        }
        if self.last_executed > before {
            self.fetch = None;
            self.last_transfer_ms = Some(self.now_ms);
            // Checkpoints we held votes for may now be ours too.
            let seqs: Vec<SeqNum> = self
                .checkpoint_votes
                .range(..=self.last_executed)
                .map(|(s, _)| *s)
                .collect();
            for s in seqs {
                self.check_stable(s);
            }
            // Normal-case slots may be waiting for exactly these heights.
            self.try_execute();
        }
    }
}
