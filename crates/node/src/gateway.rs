//! The node's API gateway as a PBFT client, in process: it signs each transaction with
//! the node's client key (so every record is attributable to the organisation that
//! vouched for its user), hands it to the core, and resolves once the block holding it
//! is durable here.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{SyncSender, TrySendError};
use std::sync::Arc;

use medchain_api::state::{Committed, SubmitFuture, Submitter};
use medchain_types::{ClientId, Hash32, KeyPair, Request, Verifier};
use tokio::sync::mpsc;

use crate::metrics::{Metrics, RequestResult};
use crate::runtime::CoreInput;

#[derive(Debug)]
pub struct Gateway {
    client: ClientId,
    key: KeyPair,
    verifier: Verifier,
    core: SyncSender<CoreInput>,
    next_id: AtomicU64,
    metrics: Arc<Metrics>,
}

/// Counts a request as abandoned if its caller stops waiting (the API's commit timeout
/// drops the future) before the reply; the core counts the commit itself.
struct Waiting {
    metrics: Arc<Metrics>,
    done: bool,
}

impl Drop for Waiting {
    fn drop(&mut self) {
        if !self.done {
            self.metrics.request_failed(RequestResult::Abandoned);
        }
    }
}

impl Gateway {
    /// `first_id` must be above every id this client has had executed (the PBFT client
    /// window starts right after the last executed one).
    pub fn new(
        client: ClientId,
        key: KeyPair,
        verifier: Verifier,
        core: SyncSender<CoreInput>,
        first_id: u64,
        metrics: Arc<Metrics>,
    ) -> Self {
        Gateway {
            client,
            key,
            verifier,
            core,
            next_id: AtomicU64::new(first_id.max(1)),
            metrics,
        }
    }
}

impl Submitter for Gateway {
    fn submit(&self, payload: Vec<u8>, content: Vec<Vec<u8>>) -> SubmitFuture {
        let request_id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let signed = Request {
            client: self.client,
            request_id,
            payload,
            content_hashes: content.iter().map(|c| Hash32::sha256(c)).collect(),
        }
        .sign_with_content(&self.key, content);
        let verified = self.verifier.verify_request(signed);
        let (tx, mut rx) = mpsc::channel(1);
        let sent = match verified {
            Err(e) => Err(format!("request refused: {e}")),
            Ok(v) => match self.core.try_send(CoreInput::Client(v, tx)) {
                Ok(()) => Ok(()),
                Err(TrySendError::Full(_)) => Err("replica busy".to_string()),
                Err(TrySendError::Disconnected(_)) => Err("replica stopped".to_string()),
            },
        };
        let client = self.client.0;
        if sent.is_err() {
            self.metrics.request_failed(RequestResult::Refused);
        }
        let mut waiting = Waiting {
            metrics: self.metrics.clone(),
            done: sent.is_err(),
        };
        Box::pin(async move {
            sent?;
            let r = rx.recv().await;
            waiting.done = true;
            let r = r.ok_or_else(|| {
                waiting.metrics.request_failed(RequestResult::Abandoned);
                "replica dropped the request".to_string()
            })?;
            Ok(Committed {
                client,
                request_id: r.request_id,
                height: r.height,
                block_hash: r.block_hash,
            })
        })
    }
}
