//! One sequence number's state in the message log (section 4.2).

use std::collections::BTreeMap;

use medchain_types::{
    Commit, Hash32, PrePrepare, Prepare, PreparedProof, Proposal, ReplicaId, Signed, ViewNum,
};

/// Votes for one sequence number. The `current view` fields are reset when a new view is
/// installed; the prepared certificate survives view changes, for the P set.
#[derive(Debug, Clone, Default)]
pub(crate) struct Slot {
    /// The accepted pre-prepare of the current view, and its batch.
    pub pre_prepare: Option<(Signed<PrePrepare>, Proposal)>,
    /// First prepare of the current view from each replica.
    pub prepares: BTreeMap<ReplicaId, Signed<Prepare>>,
    /// First commit of the current view from each replica.
    pub commits: BTreeMap<ReplicaId, Signed<Commit>>,
    /// Prepared in the current view (and our COMMIT sent).
    pub prepared_now: bool,
    /// Committed-local in the current view.
    pub committed: bool,
    /// The highest-view prepared certificate this replica holds, with its batch.
    pub prepared: Option<(PreparedProof, Proposal)>,
    /// When the slot last changed, to pace resends.
    pub touched_ms: u64,
}

impl Slot {
    /// Digest and view of the current pre-prepare.
    pub fn accepted(&self) -> Option<(ViewNum, Hash32)> {
        self.pre_prepare
            .as_ref()
            .map(|(pp, _)| (pp.body.view, pp.body.digest))
    }

    /// Forget the current view's votes (a new view was installed).
    pub fn reset_view(&mut self) {
        self.pre_prepare = None;
        self.prepares.clear();
        self.commits.clear();
        self.prepared_now = false;
        self.committed = false;
    }
}
