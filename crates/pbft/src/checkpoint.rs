//! Checkpoints and garbage collection (section 4.3): every K blocks each replica signs
//! the block hash at that height; 2f+1 matching signatures make the checkpoint stable,
//! the log below it is dropped, and the watermark window moves up.

use medchain_types::{Checkpoint, Hash32, PeerMessage, SeqNum, Signed};

use crate::durable::DurableRecord;
use crate::replica::Replica;

impl Replica {
    /// Most checkpoint sequence numbers for which votes are held.
    fn max_checkpoint_seqs(&self) -> usize {
        (4 * self.cfg.limits.window / self.cfg.checkpoint_interval.max(1)) as usize + 16
    }

    pub(crate) fn sign_checkpoint(&self, seq: SeqNum, digest: Hash32) -> Signed<Checkpoint> {
        Signed::sign(
            Checkpoint {
                seq,
                digest,
                replica: self.cfg.id,
            },
            &self.key,
        )
    }

    pub(crate) fn own_checkpoint(&mut self, seq: SeqNum, digest: Hash32) {
        self.own_checkpoints.insert(seq, digest);
        while self.own_checkpoints.len() > self.max_checkpoint_seqs() {
            self.own_checkpoints.pop_first();
        }
        let c = self.sign_checkpoint(seq, digest);
        self.broadcast(PeerMessage::Checkpoint(c.clone()));
        self.record_checkpoint_vote(c);
    }

    pub(crate) fn on_checkpoint(&mut self, c: Signed<Checkpoint>) {
        if c.body.replica == self.cfg.id {
            return;
        }
        self.record_checkpoint_vote(c);
    }

    fn record_checkpoint_vote(&mut self, c: Signed<Checkpoint>) {
        let seq = c.body.seq;
        let k = self.cfg.checkpoint_interval.max(1);
        // Only checkpoint heights, above the stable one, and either inside the window or
        // already executed here (a replica catching up collects proofs for those).
        if seq <= self.stable_seq
            || !seq.is_multiple_of(k)
            || (seq > self.stable_seq + self.cfg.limits.window && seq > self.last_executed)
        {
            return;
        }
        self.checkpoint_votes
            .entry(seq)
            .or_default()
            .entry(c.body.replica)
            .or_insert(c);
        while self.checkpoint_votes.len() > self.max_checkpoint_seqs() {
            self.checkpoint_votes.pop_first();
        }
        self.check_stable(seq);
    }

    /// Make `seq` stable if 2f+1 replicas vouch for the digest this replica computed.
    pub(crate) fn check_stable(&mut self, seq: SeqNum) {
        let Some(votes) = self.checkpoint_votes.get(&seq) else {
            return;
        };
        // Group by digest; the first digest with a quorum wins (two cannot, since 2f+1
        // quorums intersect in a correct replica that signs one digest per height).
        let mut digests: Vec<Hash32> = votes.values().map(|c| c.body.digest).collect();
        digests.sort_unstable();
        digests.dedup();
        for d in digests {
            let proof: Vec<Signed<Checkpoint>> = votes
                .values()
                .filter(|c| c.body.digest == d)
                .cloned()
                .collect();
            if proof.len() < self.quorum() {
                continue;
            }
            if seq > self.last_executed {
                // The cluster is ahead of us: catch up by state transfer.
                self.certified_target = self.certified_target.max(seq);
                return;
            }
            if self.own_checkpoints.get(&seq) == Some(&d) {
                self.make_stable(seq, d, proof);
            }
            return;
        }
    }

    /// Adopt a stable checkpoint proven by `proof` and collect the garbage below it.
    pub(crate) fn make_stable(
        &mut self,
        seq: SeqNum,
        digest: Hash32,
        proof: Vec<Signed<Checkpoint>>,
    ) {
        if seq <= self.stable_seq {
            return;
        }
        self.stable_seq = seq;
        self.stable_digest = digest;
        self.stable_proof = proof.clone();
        self.persist(DurableRecord::StableCheckpoint { seq, digest, proof });
        self.log = self.log.split_off(&(seq + 1));
        self.checkpoint_votes = self.checkpoint_votes.split_off(&(seq + 1));
        self.own_checkpoints = self.own_checkpoints.split_off(&seq);
        self.next_seq = self.next_seq.max(seq + 1);
        if seq > self.last_executed {
            self.certified_target = self.certified_target.max(seq);
        }
    }
}
