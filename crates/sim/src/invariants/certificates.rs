//! Certificates (section 4.2's committed predicate, made checkable): every block a correct
//! replica commits carries a commit certificate of 2f+1 valid replica signatures over its
//! proposal, its Merkle root matches its requests, and it links to that replica's
//! previous block. This is what lets `verify_chain` check a chain offline.

use medchain_types::{CommittedBlock, Hash32, ReplicaId, SeqNum, Verifier};

use super::Violation;

#[derive(Debug)]
pub struct Certificates {
    verifier: Verifier,
    heads: Vec<(SeqNum, Hash32)>,
}

impl Certificates {
    pub fn new(verifier: Verifier, genesis_hash: Hash32, n: usize) -> Self {
        Certificates {
            verifier,
            heads: vec![(0, genesis_hash); n],
        }
    }

    pub fn on_commit(
        &mut self,
        replica: ReplicaId,
        block: &CommittedBlock,
    ) -> Result<(), Violation> {
        self.verifier
            .check_block(block)
            .map_err(|e| Violation::BadCertificate {
                replica,
                height: block.height(),
                error: e.to_string(),
            })?;
        let (height, hash) = self.heads[replica.index()];
        if block.height() != height + 1 || block.header.prev_hash != hash {
            return Err(Violation::NotExtending {
                replica,
                height: block.height(),
                head: height,
            });
        }
        self.heads[replica.index()] = (block.height(), block.hash());
        Ok(())
    }
}
