//! View-change progress (section 4.4's liveness mechanisms: timeouts that double, the f+1
//! join rule, a primary that sends NEW-VIEW, and section 4.5.2): after GST the correct
//! replicas end up in normal operation in one common view rather than changing views
//! forever or waiting for a NEW-VIEW that never comes.
//!
//! PBFT lets a correct replica that timed out alone (during the faults) wait in a higher
//! view until the others next change view: it has promised, in its VIEW-CHANGE, not to
//! take part in lower views, and the rest of the cluster is live without it. So at most f
//! correct replicas may be left waiting in a view change; every other correct replica
//! must be in normal mode, and all normal ones in the same view.

use medchain_pbft::Mode;
use medchain_types::{ReplicaId, ViewNum};

use super::Violation;

#[derive(Debug, Default)]
pub struct ViewChangeProgress;

impl ViewChangeProgress {
    pub fn check(
        &self,
        states: &[(ReplicaId, Mode, ViewNum)],
        f: usize,
        deadline_ms: u64,
    ) -> Vec<Violation> {
        let normal: Vec<ViewNum> = states
            .iter()
            .filter(|(_, m, _)| *m == Mode::Normal)
            .map(|(_, _, v)| *v)
            .collect();
        let waiting = states.len() - normal.len();
        let one_view = normal.windows(2).all(|w| w[0] == w[1]);
        if normal.is_empty() || !one_view || waiting > f {
            vec![Violation::NoCommonView {
                states: states.to_vec(),
                deadline_ms,
            }]
        } else {
            Vec::new()
        }
    }

    /// True when every correct replica is in one normal view.
    pub fn settled(&self, states: &[(ReplicaId, Mode, ViewNum)]) -> bool {
        self.check(states, 0, 0).is_empty()
    }
}
