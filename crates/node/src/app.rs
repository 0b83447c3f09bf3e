//! What the node needs of the application it runs, as a trait: the node orders and
//! stores requests whatever they mean, and asks the application only for its state
//! machine, how many transactions a payload carries, how to join transactions into one
//! payload, where a gateway's request ids continue after a restart, and its HTTP
//! surface. The records service is one such application (wired in `medchain-server`).

use std::sync::Arc;

use medchain_store::{Reader, StateMachine, StoreError};
use medchain_types::ClientId;

use crate::batcher::{BatchFormat, Batcher};
use crate::config::NodeFiles;
use crate::core_input::LiveStatus;
use crate::error::NodeError;
use crate::metrics::Metrics;

/// The handles an application's HTTP surface is built from.
#[derive(Debug)]
pub struct NodeHandles<'a> {
    pub files: &'a NodeFiles,
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

    /// How the node's gateway joins transactions into one request payload.
    fn batch_format(&self) -> BatchFormat;

    /// The highest request id of `client` that the state has executed, so that the
    /// node's gateway continues above it after a restart.
    fn last_request_id(&self, reader: &Reader, client: ClientId)
        -> Result<Option<u64>, StoreError>;

    /// The HTTP surface (API and UI) of this node.
    fn http(&self, handles: NodeHandles<'_>) -> Result<axum::Router, NodeError>;
}
