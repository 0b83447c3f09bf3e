//! The node's API gateway as a PBFT client, in process. It gathers the transactions its
//! users submit at about the same time into one batch, signs the batch with the node's
//! client key (so every record is attributable to the organisation that vouched for its
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

use medchain_api::state::{Committed, SubmitFuture, Submitter};
use medchain_records::tx::{MAX_BATCH_BYTES, MAX_BATCH_TXS};
use medchain_records::Envelope;
use medchain_types::{encode, ClientId, Hash32, KeyPair, Request, Verifier};
use std::sync::mpsc::{SyncSender, TrySendError};
use tokio::sync::{mpsc, oneshot, Semaphore};

use crate::client::ClientReply;
use crate::metrics::{Metrics, RequestResult};
use crate::runtime::CoreInput;

/// Transactions waiting for a batch. Beyond this the gateway answers "busy" at once: a
/// fast refusal keeps the ledger's capacity for the work it already holds, where an
/// unbounded queue would only turn every request into a timeout.
pub const MAX_QUEUED: usize = 8_192;
/// Batches of this gateway between submission and commit at once.
pub const IN_FLIGHT: usize = 4;
/// A batch whose commit has not arrived by then gives its slot back (the API's callers
/// stop waiting after 10 s too).
const BATCH_TIMEOUT: Duration = Duration::from_secs(10);

/// A commit, or why not (refused before reaching the ledger, or abandoned after) and what
/// to tell the caller.
type Answer = Result<Committed, (RequestResult, String)>;

/// One user's transaction on its way into a batch.
#[derive(Debug)]
struct Item {
    env: Vec<u8>,
    content: Vec<Vec<u8>>,
    done: oneshot::Sender<Answer>,
}

#[derive(Debug)]
pub struct Gateway {
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
    core: SyncSender<CoreInput>,
    next_id: u64,
}

impl Gateway {
    /// Start the batching task (on the current tokio runtime). `first_id` must be above
    /// every id this client has had executed (the PBFT client window starts right after
    /// the last executed one).
    pub fn start(
        client: ClientId,
        key: KeyPair,
        verifier: Verifier,
        core: SyncSender<CoreInput>,
        first_id: u64,
        metrics: Arc<Metrics>,
    ) -> Self {
        let (queue, rx) = mpsc::channel(MAX_QUEUED);
        let signer = Signer {
            client,
            key,
            verifier,
            core,
            next_id: first_id.max(1),
        };
        tokio::spawn(batch_loop(rx, signer));
        Gateway { queue, metrics }
    }
}

impl Submitter for Gateway {
    fn submit(&self, env: Envelope, content: Vec<Vec<u8>>) -> SubmitFuture {
        let (done, rx) = oneshot::channel();
        let sent = match self.queue.try_send(Item {
            env: encode(&env),
            content,
            done,
        }) {
            Ok(()) => Ok(()),
            Err(mpsc::error::TrySendError::Full(_)) => Err("gateway busy".to_string()),
            Err(mpsc::error::TrySendError::Closed(_)) => Err("gateway stopped".to_string()),
        };
        if sent.is_err() {
            self.metrics.request_failed(RequestResult::Refused);
        }
        let mut waiting = Waiting {
            metrics: self.metrics.clone(),
            done: sent.is_err(),
        };
        Box::pin(async move {
            sent?;
            let answer = rx.await;
            waiting.done = true;
            match answer {
                Ok(Ok(c)) => Ok(c),
                Ok(Err((result, e))) => {
                    waiting.metrics.request_failed(result);
                    Err(e)
                }
                Err(_) => {
                    waiting.metrics.request_failed(RequestResult::Abandoned);
                    Err("replica dropped the request".to_string())
                }
            }
        })
    }
}

/// Take a slot, gather what is queued (within the ledger's limits), sign, submit, and
/// hand the answer to every transaction of the batch when the commit arrives.
async fn batch_loop(mut rx: mpsc::Receiver<Item>, mut signer: Signer) {
    let slots = Arc::new(Semaphore::new(IN_FLIGHT));
    let limits = signer.verifier.limits().clone();
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
                let fits = payload_bytes + item.env.len() <= MAX_BATCH_BYTES
                    && pieces + item.content.len() <= limits.max_content_pieces
                    && content_bytes + item_content <= limits.max_content_bytes;
                if !items.is_empty() && !fits {
                    carried = Some(item);
                    break;
                }
                payload_bytes += item.env.len();
                pieces += item.content.len();
                content_bytes += item_content;
                items.push(item);
            }
            if items.len() >= MAX_BATCH_TXS {
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
                    let _ = item.done.send(Err((RequestResult::Refused, e.clone())));
                }
            }
        }
    }
}

/// Sign the batch (its payload is the borsh encoding of `Batch(envelopes)`: a u32 count,
/// then each envelope) and hand it to the core.
fn submit_batch(
    signer: &Signer,
    request_id: u64,
    items: &mut [Item],
) -> Result<mpsc::Receiver<ClientReply>, String> {
    let mut payload = Vec::with_capacity(4 + items.iter().map(|i| i.env.len()).sum::<usize>());
    payload.extend_from_slice(&(items.len() as u32).to_le_bytes());
    let mut content = Vec::new();
    for item in items.iter_mut() {
        payload.extend_from_slice(&item.env);
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
        .map_err(|e| format!("request refused: {e}"))?;
    let (tx, rx) = mpsc::channel(1);
    match signer.core.try_send(CoreInput::Client(verified, tx)) {
        Ok(()) => Ok(rx),
        Err(TrySendError::Full(_)) => Err("replica busy".to_string()),
        Err(TrySendError::Disconnected(_)) => Err("replica stopped".to_string()),
    }
}

/// Wait (bounded) for the batch's commit and answer each transaction with its index.
async fn answer(client: u16, items: Vec<Item>, mut reply: mpsc::Receiver<ClientReply>) {
    let r = match tokio::time::timeout(BATCH_TIMEOUT, reply.recv()).await {
        Ok(Some(r)) => Ok(r),
        Ok(None) => Err("replica dropped the request".to_string()),
        Err(_) => Err("no commit in time".to_string()),
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
            Err(e) => Err((RequestResult::Abandoned, e.clone())),
        };
        let _ = item.done.send(a);
    }
}

#[cfg(test)]
mod tests {
    use medchain_records::{Actor, Batch, Transaction};

    use super::*;

    #[test]
    fn hand_built_payload_is_the_batch_encoding() {
        let envs: Vec<Envelope> = (0..3)
            .map(|i| Envelope {
                actor: Actor::User(format!("d00{i}")),
                tx: Transaction::Marker,
            })
            .collect();
        let mut payload = (envs.len() as u32).to_le_bytes().to_vec();
        for e in &envs {
            payload.extend_from_slice(&encode(e));
        }
        assert_eq!(payload, Batch(envs.clone()).encode());
        assert_eq!(Batch::one(&envs[0]), Batch(vec![envs[0].clone()]).encode());
        assert_eq!(Batch::count_in(&payload), 3);
    }
}
