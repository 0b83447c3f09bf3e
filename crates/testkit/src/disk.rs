//! What a replica's host keeps across a crash, held in memory: the folded vote records and
//! the committed chain. The PBFT tests and the simulator both restart replicas from it,
//! so both must fold, serve and replay it the way the node's store does.

use medchain_pbft::{ChainState, ClientTable, Config, DurableState, Output, Replica};
use medchain_types::{CommittedBlock, Genesis, Hash32, KeyPair, PeerMessage, ReplicaId};

/// One replica's durable state and chain.
#[derive(Debug, Clone)]
pub struct Disk {
    pub durable: DurableState,
    pub chain: Vec<CommittedBlock>,
}

impl Disk {
    /// A fresh replica's disk: nothing voted, nothing committed.
    pub fn new(genesis: &Genesis) -> Self {
        Disk {
            durable: DurableState::genesis(genesis.hash()),
            chain: Vec::new(),
        }
    }

    /// Carry out the disk's share of `output`: fold a vote record, append a committed
    /// block, or read blocks for a peer. Returns the peer and the `Blocks` message a read
    /// asks to send (none when the range is empty); other outputs are the caller's.
    ///
    /// Blocks are appended as the replica hands them over; [`Disk::check_chain`] is the
    /// separate test of the host contract, so the simulator can leave that judgement to
    /// its own invariants.
    pub fn apply(&mut self, output: &Output) -> Option<(ReplicaId, PeerMessage)> {
        match output {
            Output::Persist(record) => self.durable.apply(record),
            Output::Commit(block) => self.chain.push(block.clone()),
            Output::ReadBlocks {
                to,
                from_height,
                max_blocks,
            } => {
                let blocks = self.blocks(*from_height, *max_blocks);
                if !blocks.is_empty() {
                    return Some((*to, PeerMessage::Blocks(blocks)));
                }
            }
            Output::Send { .. }
            | Output::Broadcast(_)
            | Output::Reply(_)
            | Output::ViewInstalled { .. } => {}
        }
        None
    }

    /// Up to `max_blocks` committed blocks from height `from_height` on.
    pub fn blocks(&self, from_height: u64, max_blocks: usize) -> Vec<CommittedBlock> {
        let chain = &self.chain;
        let start = usize::try_from(from_height)
            .unwrap_or(usize::MAX)
            .saturating_sub(1)
            .min(chain.len());
        let end = start.saturating_add(max_blocks).min(chain.len());
        chain[start..end].to_vec()
    }

    /// The host contract from block `from` (a chain index) on: heights follow one
    /// another from 1 and every block links to the one before (the genesis for the first).
    pub fn check_chain(&self, genesis: &Genesis, from: usize) -> Result<(), String> {
        for (i, block) in self.chain.iter().enumerate().skip(from) {
            if block.height() != i as u64 + 1 {
                return Err(format!(
                    "block {} at height {}: skipped",
                    block.height(),
                    i + 1
                ));
            }
            let prev = i
                .checked_sub(1)
                .map_or(genesis.hash(), |p| self.chain[p].hash());
            if block.header.prev_hash != prev {
                return Err(format!("block {} broke the hash chain", block.height()));
            }
        }
        Ok(())
    }

    /// The chain as a restarting replica sees it: the client table replayed from every
    /// block, and the hashes of the last `recent_blocks` blocks.
    pub fn chain_state(&self, genesis: &Genesis, recent_blocks: usize) -> ChainState {
        let mut clients = ClientTable::new(genesis.clients.len());
        for block in &self.chain {
            clients.apply_block(block);
        }
        let skipped = self.chain.len().saturating_sub(recent_blocks);
        ChainState {
            last_executed: self.chain.len() as u64,
            last_hash: self
                .chain
                .last()
                .map_or(genesis.hash(), CommittedBlock::hash),
            clients,
            recent_hashes: self.chain[skipped..]
                .iter()
                .map(|b| (b.height(), b.hash()))
                .collect::<Vec<(u64, Hash32)>>(),
        }
    }

    /// A replica rebuilt from this disk, as after a crash.
    pub fn restore(
        &self,
        config: Config,
        key: KeyPair,
        genesis: &Genesis,
        recent_blocks: usize,
    ) -> Replica {
        let chain = self.chain_state(genesis, recent_blocks);
        Replica::restore(config, key, genesis, self.durable.clone(), chain)
    }
}
