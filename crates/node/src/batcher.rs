//! The node's gateway batcher: this node's PBFT client, in process. It gathers the
//! transactions its users submit at about the same time into one batch, signs the batch
//! with the node's client key (so every record is attributable to the organisation that vouched for its
//! user), hands it to the core, and answers each transaction once the block holding the
//! batch is durable here.
//!
//! Why batch: a request costs one signature and one verification at every replica, and
//! its share of the consensus messages, whatever it carries. Batching pays those per
//! batch instead of per record. It adds no waiting at low load: a batch leaves as soon as
//! one of `IN_FLIGHT` slots is free, with whatever has queued meanwhile, so batches grow
//! only when the ledger is busy (and latency is spent waiting for a slot anyway).

use std::sync::Arc;
use std::time::Duration;

use std::future::Future;
use std::sync::mpsc::TrySendError;

use medchain_types::{ClientId, Hash32, KeyPair, Request, Verifier};
use tokio::sync::{mpsc, oneshot, Semaphore};

use crate::core_input::{CoreInput, CoreSender};
use crate::metrics::{Metrics, RequestResult};
use crate::reply::ClientReply;

/// Transactions waiting for a batch. Beyond this the gateway answers "busy" at once: a
/// fast refusal keeps the ledger's capacity for the work it already holds, where an
/// unbounded queue would only turn every request into a timeout.
pub const QUEUED_TXS_MAX: usize = 8_192;
/// Batches of this gateway between submission and commit at once.
pub const BATCHES_IN_FLIGHT: usize = 4;
/// A batch whose commit has not arrived by then gives its slot back (the API's callers
/// stop waiting after 10 s too).
const BATCH_TIMEOUT: Duration = Duration::from_secs(10);

/// How an application's transactions make one request payload: its bounds, and the
/// function that joins transactions encoded one by one (in order) into the payload.
#[derive(Debug, Clone, Copy)]
pub struct BatchFormat {
    pub max_txs: usize,
    pub max_payload_bytes: usize,
    pub join: fn(&[&[u8]]) -> Vec<u8>,
}

/// A committed transaction, as the replica answered it: which request carried it, at
/// which index of that request's batch, and the block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Committed {
    pub client: u16,
    pub request_id: u64,
    pub index: u32,
    pub height: u64,
    pub block_hash: Hash32,
}

/// Why a transaction did not reach a commit (the application's own verdicts are its
/// business, not these).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SubmitError {
    /// The batcher's queue is full: refused at once rather than queued into a timeout.
    #[error("the gateway is busy")]
    Busy,
    #[error("the gateway has stopped")]
    Stopped,
    /// The request was not signed or the replica did not take it.
    #[error("the replica refused the request: {0}")]
    Refused(String),
    /// Taken, but no commit came back (timeout, or the replica dropped it).
    #[error("no commit: {0}")]
    NoCommit(&'static str),
}

impl SubmitError {
    fn counted_as(&self) -> RequestResult {
        match self {
            SubmitError::Busy | SubmitError::Stopped | SubmitError::Refused(_) => {
                RequestResult::Refused
            }
            SubmitError::NoCommit(_) => RequestResult::Abandoned,
        }
    }
}

/// One user's transaction on its way into a batch.
#[derive(Debug)]
struct Item {
    tx: Vec<u8>,
    content: Vec<Vec<u8>>,
    done: oneshot::Sender<Result<Committed, SubmitError>>,
}

/// The handle the application submits through. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Batcher {
    queue: mpsc::Sender<Item>,
    metrics: Arc<Metrics>,
}

/// Counts a transaction as abandoned if its caller stops waiting (the API's commit timeout
/// drops the future) before the answer; the core counts the commit itself.
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

/// What the batching task needs to sign and submit.
struct Signer {
    client: ClientId,
    key: KeyPair,
    verifier: Verifier,
    core: CoreSender,
    next_id: u64,
    format: BatchFormat,
}

impl Batcher {
    /// Start the batching task (on the current tokio runtime). `first_id` must be above
    /// every id this client has had executed (the PBFT client window starts right after
    /// the last executed one).
    pub(crate) fn start(
        client: ClientId,
        key: KeyPair,
        verifier: Verifier,
        core: CoreSender,
        first_id: u64,
        format: BatchFormat,
        metrics: Arc<Metrics>,
    ) -> Self {
        let (queue, rx) = mpsc::channel(QUEUED_TXS_MAX);
        let signer = Signer {
            client,
            key,
            verifier,
            core,
            next_id: first_id.max(1),
            format,
        };
        tokio::spawn(batch_loop(rx, signer));
        Batcher { queue, metrics }
    }

    /// Submit one transaction (its canonical encoding, with `content` beside it); resolves
    /// once the block holding it is committed and durable here.
    pub fn submit(
        &self,
        tx: Vec<u8>,
        content: Vec<Vec<u8>>,
    ) -> impl Future<Output = Result<Committed, SubmitError>> + Send + 'static {
        let (done, rx) = oneshot::channel();
        let sent = match self.queue.try_send(Item { tx, content, done }) {
            Ok(()) => Ok(()),
            Err(mpsc::error::TrySendError::Full(_)) => Err(SubmitError::Busy),
            Err(mpsc::error::TrySendError::Closed(_)) => Err(SubmitError::Stopped),
        };
        if sent.is_err() {
            self.metrics.request_failed(RequestResult::Refused);
        }
        let mut waiting = Waiting {
            metrics: self.metrics.clone(),
            done: sent.is_err(),
        };
        async move {
            sent?;
            let answer = rx.await;
            waiting.done = true;
            let answer = answer.unwrap_or(Err(SubmitError::NoCommit(
                "the replica dropped the request",
            )));
            if let Err(e) = &answer {
                waiting.metrics.request_failed(e.counted_as());
            }
            answer
        }
    }
}

/// Take a slot, gather what is queued (within the ledger's limits), sign, submit, and
/// hand the answer to every transaction of the batch when the commit arrives.
async fn batch_loop(mut rx: mpsc::Receiver<Item>, mut signer: Signer) {
    let slots = Arc::new(Semaphore::new(BATCHES_IN_FLIGHT));
    let limits = signer.verifier.limits().clone();
    let BatchFormat {
        max_txs,
        max_payload_bytes,
        ..
    } = signer.format;
    let mut carried: Option<Item> = None;
    loop {
        let first = match carried.take() {
            Some(i) => i,
            None => match rx.recv().await {
                Some(i) => i,
                None => return,
            },
        };
        let Ok(slot) = slots.clone().acquire_owned().await else {
            return;
        };
        // Callers that gave up while waiting for the slot need no commit.
        let mut items: Vec<Item> = Vec::new();
        let mut payload_bytes = 4;
        let (mut pieces, mut content_bytes) = (0, 0);
        let mut next = Some(first);
        while let Some(item) = next.take() {
            if !item.done.is_closed() {
                let item_content: usize = item.content.iter().map(Vec::len).sum();
                let fits = payload_bytes + item.tx.len() <= max_payload_bytes
                    && pieces + item.content.len() <= limits.max_content_pieces
                    && content_bytes + item_content <= limits.max_content_bytes;
                if !items.is_empty() && !fits {
                    carried = Some(item);
                    break;
                }
                payload_bytes += item.tx.len();
                pieces += item.content.len();
                content_bytes += item_content;
                items.push(item);
            }
            if items.len() >= max_txs {
                break;
            }
            next = rx.try_recv().ok();
        }
        if items.is_empty() {
            continue;
        }
        let request_id = signer.next_id;
        signer.next_id += 1;
        match submit_batch(&signer, request_id, &mut items) {
            Ok(reply) => {
                let client = signer.client.0;
                tokio::spawn(async move {
                    answer(client, items, reply).await;
                    drop(slot);
                });
            }
            Err(e) => {
                for item in items {
                    let _ = item.done.send(Err(e.clone()));
                }
            }
        }
    }
}

/// Sign the batch (its payload joined by the application) and hand it to the core.
fn submit_batch(
    signer: &Signer,
    request_id: u64,
    items: &mut [Item],
) -> Result<mpsc::Receiver<ClientReply>, SubmitError> {
    let txs: Vec<&[u8]> = items.iter().map(|i| i.tx.as_slice()).collect();
    let payload = (signer.format.join)(&txs);
    let mut content = Vec::new();
    for item in items.iter_mut() {
        content.append(&mut item.content);
    }
    let request = Request {
        client: signer.client,
        request_id,
        payload,
        content_hashes: content.iter().map(|c| Hash32::sha256(c)).collect(),
    };
    let verified = signer
        .verifier
        .sign_request(request, content, &signer.key)
        .map_err(|e| SubmitError::Refused(e.to_string()))?;
    let (tx, rx) = mpsc::channel(1);
    match signer.core.try_send(CoreInput::Client(verified, tx)) {
        Ok(()) => Ok(rx),
        Err(TrySendError::Full(_)) => Err(SubmitError::Refused("replica busy".into())),
        Err(TrySendError::Disconnected(_)) => Err(SubmitError::Refused("replica stopped".into())),
    }
}

/// Wait (bounded) for the batch's commit and answer each transaction with its index.
async fn answer(client: u16, items: Vec<Item>, mut reply: mpsc::Receiver<ClientReply>) {
    let r = match tokio::time::timeout(BATCH_TIMEOUT, reply.recv()).await {
        Ok(Some(r)) => Ok(r),
        Ok(None) => Err(SubmitError::NoCommit("the replica dropped the request")),
        Err(_) => Err(SubmitError::NoCommit("no commit in time")),
    };
    for (index, item) in items.into_iter().enumerate() {
        let a = match &r {
            Ok(r) => Ok(Committed {
                client,
                request_id: r.request_id,
                index: index as u32,
                height: r.height,
                block_hash: r.block_hash,
            }),
            Err(e) => Err(e.clone()),
        };
        let _ = item.done.send(a);
    }
}
