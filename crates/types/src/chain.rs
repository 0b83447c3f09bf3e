//! Offline verification of a whole chain against its genesis: what an auditor (or
//! `medchain verify`) runs, holding nothing but the genesis file.

use crate::block::CommittedBlock;
use crate::genesis::Genesis;
use crate::ids::{Hash32, SeqNum};
use crate::verify::{Limits, Verifier};

/// The first thing wrong with a chain.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("block {height}: {reason}")]
pub struct ChainError {
    pub height: SeqNum,
    pub reason: String,
}

/// What a verified chain amounts to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainSummary {
    pub height: SeqNum,
    pub head_hash: Hash32,
    pub requests: u64,
}

/// Checks blocks one at a time, in order, so callers can stream a long chain and show
/// progress.
#[derive(Debug)]
pub struct ChainVerifier {
    verifier: Verifier,
    summary: ChainSummary,
}

impl ChainVerifier {
    /// Fails (at height 0) when the genesis itself is invalid.
    pub fn new(genesis: &Genesis) -> Result<Self, ChainError> {
        genesis.validate().map_err(|e| ChainError {
            height: 0,
            reason: format!("invalid genesis: {e}"),
        })?;
        Ok(ChainVerifier {
            verifier: Verifier::new(genesis, Limits::default()),
            summary: ChainSummary {
                height: 0,
                head_hash: genesis.hash(),
                requests: 0,
            },
        })
    }

    /// Check the next block: its height, its link to the previous block, its Merkle root,
    /// its requests' signatures and its commit certificate.
    pub fn push(&mut self, block: &CommittedBlock) -> Result<(), ChainError> {
        let expected = self.summary.height + 1;
        let fail = |reason: String| ChainError {
            height: expected,
            reason,
        };
        if block.header.height != expected {
            return Err(fail(format!(
                "height {} where {expected} was expected",
                block.header.height
            )));
        }
        if block.header.prev_hash != self.summary.head_hash {
            return Err(fail("previous-hash link broken".into()));
        }
        self.verifier
            .check_block(block)
            .map_err(|e| fail(e.to_string()))?;
        self.summary.height = expected;
        self.summary.head_hash = block.hash();
        self.summary.requests += block.requests.len() as u64;
        Ok(())
    }

    pub fn summary(&self) -> &ChainSummary {
        &self.summary
    }
}

/// Verify a whole chain from height 1; report the first bad height (0 for a bad genesis).
pub fn verify_chain<'a>(
    genesis: &Genesis,
    blocks: impl IntoIterator<Item = &'a CommittedBlock>,
) -> Result<ChainSummary, ChainError> {
    let mut v = ChainVerifier::new(genesis)?;
    for b in blocks {
        v.push(b)?;
    }
    Ok(v.summary)
}
