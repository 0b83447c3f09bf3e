//! Integrity (section 4.5.1, and the at-most-once semantics of section 4.1): only
//! requests that correct clients signed are committed, and each executes at most once at
//! each correct replica, even when replayed, duplicated or re-proposed.

use std::collections::{BTreeMap, BTreeSet};

use medchain_pbft::Reply;
use medchain_types::{encode, ClientId, CommittedBlock, Hash32, ReplicaId, SignedRequest};

use super::Violation;

#[derive(Debug, Default)]
pub struct Integrity {
    issued: BTreeMap<(ClientId, u64), Hash32>,
    executed: BTreeSet<(ReplicaId, ClientId, u64)>,
}

impl Integrity {
    pub fn on_issue(&mut self, r: &SignedRequest) {
        self.issued.insert(r.key(), Hash32::sha256(&encode(r)));
    }

    pub fn on_commit(
        &mut self,
        replica: ReplicaId,
        block: &CommittedBlock,
    ) -> Result<(), Violation> {
        for r in &block.requests {
            if self.issued.get(&r.key()) != Some(&Hash32::sha256(&encode(r))) {
                return Err(Violation::NotIssued {
                    replica,
                    request: r.key(),
                    height: block.height(),
                });
            }
        }
        Ok(())
    }

    pub fn on_reply(&mut self, reply: &Reply) -> Result<(), Violation> {
        if reply.retransmission {
            return Ok(());
        }
        if !self
            .executed
            .insert((reply.replica, reply.client, reply.request_id))
        {
            return Err(Violation::ExecutedTwice {
                replica: reply.replica,
                request: (reply.client, reply.request_id),
            });
        }
        Ok(())
    }
}
