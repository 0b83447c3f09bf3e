//! What the node needs of the application it runs, as a trait: the node orders and
//! stores requests whatever they mean, and asks the application only for its state
//! machine, how many transactions a payload carries, how to join transactions into one
//! payload, where a gateway's request ids continue after a restart, and its HTTP
//! surface. The records service is one such application (wired in `medchain-server`).

use std::sync::mpsc::SyncSender;
use std::sync::Arc;

use medchain_store::{Reader, StateMachine, StoreError};
use medchain_types::ClientId;

use crate::batcher::Batcher;
use crate::config::NodeFiles;
use crate::core_input::{CoreInput, LiveStatus};
use crate::error::NodeError;
use crate::metrics::Metrics;

/// Bounds of one batch of transactions, as the application's state machine accepts it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchLimits {
    pub max_txs: usize,
    pub max_payload_bytes: usize,
}

/// The handles an application's HTTP surface is built from.
#[derive(Debug)]
pub struct NodeHandles<'a> {
    pub files: &'a NodeFiles,
    pub reader: &'a Reader,
    /// This node's gateway: batches, signs and submits transactions as its client.
    pub batcher: Batcher,
    pub status: LiveStatus,
    pub metrics: Arc<Metrics>,
}

/// The application a node runs.
pub trait Application: Send + Sync + 'static {
    /// The deterministic state machine executed in each block's transaction.
    fn state_machine(&self, files: &NodeFiles) -> Box<dyn StateMachine>;

    /// How many transactions `payload` carries, read cheaply (metrics and waiters; 0
    /// when it cannot tell).
    fn transactions_in(&self, payload: &[u8]) -> usize;

    /// One request payload from transactions encoded one by one, in order.
    fn join_batch(&self, encoded_txs: &[&[u8]]) -> Vec<u8>;

    fn batch_limits(&self) -> BatchLimits;

    /// The highest request id of `client` that the state has executed, so that the
    /// node's gateway continues above it after a restart.
    fn last_request_id(&self, reader: &Reader, client: ClientId)
        -> Result<Option<u64>, StoreError>;

    /// The HTTP surface (API and UI) of this node.
    fn http(&self, handles: NodeHandles<'_>) -> Result<axum::Router, NodeError>;
}

/// What the batcher needs to reach the core (kept here so that `batcher` and `run` agree).
pub(crate) type CoreSender = SyncSender<CoreInput>;
