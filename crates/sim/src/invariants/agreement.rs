//! Agreement (safety, section 4.5.1 / TOCS appendix): no two correct replicas commit
//! different blocks at the same height.

use std::collections::BTreeMap;

use medchain_types::{CommittedBlock, Hash32, ReplicaId, SeqNum};

use super::Violation;

/// The first block hash any correct replica committed at each height.
#[derive(Debug, Default)]
pub struct Agreement {
    committed: BTreeMap<SeqNum, (ReplicaId, Hash32)>,
}

impl Agreement {
    pub fn on_commit(
        &mut self,
        replica: ReplicaId,
        block: &CommittedBlock,
    ) -> Result<(), Violation> {
        let h = block.height();
        let hash = block.hash();
        match self.committed.get(&h) {
            Some((first, other)) if *other != hash => Err(Violation::Agreement {
                replica,
                hash,
                height: h,
                first: *first,
                other: *other,
            }),
            Some(_) => Ok(()),
            None => {
                self.committed.insert(h, (replica, hash));
                Ok(())
            }
        }
    }

    /// Highest height any correct replica committed.
    pub fn height(&self) -> SeqNum {
        self.committed.keys().next_back().copied().unwrap_or(0)
    }
}
