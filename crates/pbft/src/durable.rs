//! The vote state a replica persists so that after a crash it never contradicts itself:
//! it never sends a PREPARE or COMMIT conflicting with one it sent before (its accepted
//! pre-prepares and prepared certificates are on disk before the votes leave), never
//! goes back to an older view, and still reports its prepared certificates in view
//! changes (section 4.4 needs them to carry committed requests into the next view).

use borsh::{BorshDeserialize, BorshSerialize};
use std::collections::BTreeMap;

use medchain_types::{
    Checkpoint, Hash32, PrePrepare, PreparedProof, Proposal, SeqNum, Signed, ViewNum,
};

/// One change to the durable state.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub enum DurableRecord {
    /// The replica moved to `view`; `normal` is false while it waits for NEW-VIEW.
    View { view: ViewNum, normal: bool },
    /// Accepted (or, as primary, issued) a pre-prepare; about to send PREPARE.
    PrePrepared {
        pre_prepare: Signed<PrePrepare>,
        proposal: Proposal,
    },
    /// Became prepared; about to send COMMIT.
    Prepared {
        proof: PreparedProof,
        proposal: Proposal,
    },
    /// A checkpoint became stable; everything at or below it can go.
    StableCheckpoint {
        seq: SeqNum,
        digest: Hash32,
        proof: Vec<Signed<Checkpoint>>,
    },
}

/// Durable state of one sequence number.
#[derive(Debug, Clone, Default, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct DurableSlot {
    pub pre_prepare: Option<(Signed<PrePrepare>, Proposal)>,
    pub prepared: Option<(PreparedProof, Proposal)>,
}

/// The folded durable state: what a restarting replica loads.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct DurableState {
    pub view: ViewNum,
    pub normal: bool,
    pub stable_seq: SeqNum,
    pub stable_digest: Hash32,
    pub stable_proof: Vec<Signed<Checkpoint>>,
    pub slots: BTreeMap<SeqNum, DurableSlot>,
}

impl DurableState {
    /// The state of a replica that has never run.
    pub fn genesis(genesis_hash: Hash32) -> Self {
        DurableState {
            view: 0,
            normal: true,
            stable_seq: 0,
            stable_digest: genesis_hash,
            stable_proof: Vec::new(),
            slots: BTreeMap::new(),
        }
    }

    /// Fold one record in (what a store does on write, or on replay of its log).
    pub fn apply(&mut self, record: &DurableRecord) {
        match record {
            DurableRecord::View { view, normal } => {
                if *view >= self.view {
                    self.view = *view;
                    self.normal = *normal;
                }
            }
            DurableRecord::PrePrepared {
                pre_prepare,
                proposal,
            } => {
                let seq = pre_prepare.body.seq;
                if seq > self.stable_seq {
                    let slot = self.slots.entry(seq).or_default();
                    if slot
                        .pre_prepare
                        .as_ref()
                        .is_none_or(|(pp, _)| pp.body.view <= pre_prepare.body.view)
                    {
                        slot.pre_prepare = Some((pre_prepare.clone(), proposal.clone()));
                    }
                }
            }
            DurableRecord::Prepared { proof, proposal } => {
                let seq = proof.pre_prepare.body.seq;
                if seq > self.stable_seq {
                    let slot = self.slots.entry(seq).or_default();
                    if slot
                        .prepared
                        .as_ref()
                        .is_none_or(|(p, _)| p.pre_prepare.body.view <= proof.pre_prepare.body.view)
                    {
                        slot.prepared = Some((proof.clone(), proposal.clone()));
                    }
                }
            }
            DurableRecord::StableCheckpoint { seq, digest, proof } => {
                if *seq > self.stable_seq {
                    self.stable_seq = *seq;
                    self.stable_digest = *digest;
                    self.stable_proof = proof.clone();
                    self.slots = self.slots.split_off(&(seq + 1));
                }
            }
        }
    }
}
