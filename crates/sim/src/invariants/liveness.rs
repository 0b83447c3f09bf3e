//! Liveness (section 4.5.2): once faults stop (after GST), every request of a correct
//! client commits within a bound of simulated time, and all correct replicas reach the
//! same height (none is left behind: state transfer works).

use std::collections::{BTreeMap, BTreeSet};

use medchain_pbft::Reply;
use medchain_types::{ClientId, ReplicaId, SeqNum};

use super::Violation;

#[derive(Debug, Default)]
pub struct Liveness {
    pub replies: BTreeMap<(ClientId, u64), BTreeSet<ReplicaId>>,
}

impl Liveness {
    pub fn on_reply(&mut self, reply: &Reply) {
        self.replies
            .entry((reply.client, reply.request_id))
            .or_default()
            .insert(reply.replica);
    }

    /// A request is committed for its client once f+1 replicas answered (section 4.1).
    pub fn is_done(&self, key: &(ClientId, u64), f: usize) -> bool {
        self.replies.get(key).is_some_and(|s| s.len() > f)
    }

    /// Checked at the deadline: every issued request committed, heights converged.
    pub fn check(
        &self,
        issued: &[(ClientId, u64)],
        f: usize,
        heights: &[(ReplicaId, SeqNum)],
        deadline_ms: u64,
    ) -> Vec<Violation> {
        let mut v = Vec::new();
        let missing: Vec<_> = issued.iter().filter(|k| !self.is_done(k, f)).collect();
        if !missing.is_empty() {
            v.push(Violation::NotCommitted {
                missing: missing.len(),
                first: *missing[0],
                deadline_ms,
            });
        }
        let first = heights.first().map(|(_, h)| *h);
        if heights.iter().any(|(_, h)| Some(*h) != first) {
            v.push(Violation::HeightsDiverge {
                heights: heights.to_vec(),
                deadline_ms,
            });
        }
        v
    }
}
