//! The core thread: `step` the sans-IO PBFT replica in a loop, make every vote and block
//! durable before any message that depends on it leaves, and answer clients only after
//! their block is durable.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use medchain_pbft::{Input, Mode, Output, Replica};
use medchain_store::{Reader, Store, WriteOp};
use medchain_types::{encode, ClientId, Hash32, PeerMessage};
use tokio::sync::mpsc;

use crate::app::Application;
use crate::core_input::{CoreInput, LiveStatus};
use crate::error::NodeError;
use crate::metrics::{Metrics, RequestResult};
use crate::reply::ClientReply;
use crate::transport::Outbound;

/// Most clients waiting for replies.
const WAITING_CLIENTS_MAX: usize = 200_000;
/// Most inputs stepped before their outputs are carried out (one durable write for all).
const INPUTS_PER_WRITE_MAX: usize = 256;
/// The longest the core sleeps without a tick.
const IDLE_TICK_MS: u64 = 1_000;

/// A client waiting for its request's commit.
#[derive(Debug)]
struct Waiter {
    reply: mpsc::Sender<ClientReply>,
    /// When the request reached this replica (commit latency is measured from here).
    received: Instant,
    /// Transactions the request carries.
    transactions: usize,
}

type Waiters = HashMap<(ClientId, u64), Waiter>;

/// What the core thread acts on besides the replica: the database, the network, the
/// figures shared with HTTP, the application's reading of payloads.
pub(crate) struct CoreIo {
    pub store: Store,
    pub reader: Reader,
    pub out: Outbound,
    pub live: LiveStatus,
    pub metrics: Arc<Metrics>,
    pub app: Arc<dyn Application>,
    /// Bytes of peer frames queued for the core (shared with the transport).
    pub inbound_bytes: Arc<AtomicUsize>,
}

fn wall_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

pub(crate) fn core_loop(
    mut replica: Replica,
    rx: Receiver<CoreInput>,
    io: &CoreIo,
) -> Result<(), NodeError> {
    let mut waiters = Waiters::new();
    let mut last_now = 0u64;
    loop {
        let now = wall_ms().max(last_now);
        last_now = now;
        let wait = replica
            .next_deadline_ms()
            .saturating_sub(now)
            .min(IDLE_TICK_MS);
        let first = match rx.recv_timeout(Duration::from_millis(wait)) {
            Ok(input) => Some(input),
            Err(RecvTimeoutError::Timeout) => None,
            Err(RecvTimeoutError::Disconnected) => return Ok(()),
        };
        let Some(mut outputs) = take_input(&mut replica, first, io, &mut waiters) else {
            return Ok(());
        };
        // Everything else already queued is stepped too, and all of it is made durable
        // in one write: under load one fsync then covers many votes and blocks instead
        // of one each, and nothing leaves before that write (see `carry_out`).
        for _ in 1..INPUTS_PER_WRITE_MAX {
            let Ok(input) = rx.try_recv() else { break };
            let Some(more) = take_input(&mut replica, Some(input), io, &mut waiters) else {
                return Ok(());
            };
            outputs.extend(more);
        }
        carry_out(&replica, outputs, io, &mut waiters)?;
        io.metrics.core_state(
            replica.last_executed(),
            replica.view(),
            replica.pending_requests(),
        );
    }
}

/// Step the replica with one input (`None`: a timer tick); `None` back means stop.
fn take_input(
    replica: &mut Replica,
    input: Option<CoreInput>,
    io: &CoreIo,
    waiters: &mut Waiters,
) -> Option<Vec<Output>> {
    let metrics = &io.metrics;
    let now = wall_ms();
    Some(match input {
        None => replica.step(now, Input::Tick),
        Some(CoreInput::Shutdown) => return None,
        Some(CoreInput::Peer(m, len)) => {
            io.inbound_bytes.fetch_sub(len, Ordering::Relaxed);
            metrics.observe_peer(&m);
            replica.step(now, Input::Message(m))
        }
        Some(CoreInput::Client(r, reply)) => {
            if waiters.len() >= WAITING_CLIENTS_MAX {
                // Forget waiters whose connection is gone before refusing new ones.
                let before = waiters.len();
                waiters.retain(|_, w| !w.reply.is_closed());
                for _ in waiters.len()..before {
                    metrics.request_failed(RequestResult::Abandoned);
                }
            }
            if waiters.len() < WAITING_CLIENTS_MAX {
                let waiter = Waiter {
                    reply,
                    received: Instant::now(),
                    transactions: io.app.transactions_in(&r.request.payload),
                };
                waiters.insert(r.key(), waiter);
            } else {
                metrics.request_failed(RequestResult::Refused);
            }
            replica.step(now, Input::ClientRequest(r))
        }
    })
}

/// Carry out a step's outputs: first everything durable in one write (so no vote or
/// reply leaves before what it depends on is on disk), then the network and clients.
fn carry_out(
    replica: &Replica,
    outputs: Vec<Output>,
    io: &CoreIo,
    waiters: &mut Waiters,
) -> Result<(), NodeError> {
    // Votes and blocks move into one durable write (no copies of batches on this path);
    // the rest waits until that write is on disk.
    let mut ops = Vec::new();
    let mut rest = Vec::new();
    let mut hashes: HashMap<u64, Hash32> = HashMap::new();
    for o in outputs {
        match o {
            Output::Persist(r) => ops.push(WriteOp::Vote(r)),
            Output::Commit(b) => {
                let records = b
                    .requests
                    .iter()
                    .map(|r| io.app.transactions_in(&r.request.payload))
                    .sum();
                io.metrics.block_committed(records, b.header.proposer);
                hashes.insert(b.height(), b.hash());
                ops.push(WriteOp::Block(b));
            }
            // A request for blocks promises nothing and depends on nothing unwritten:
            // it leaves now, so a catching-up replica fetches the next range while it
            // writes this one.
            Output::Send {
                to,
                message: message @ PeerMessage::FetchBlocks(_),
            } => io.out.send(to, Arc::new(encode(&message))),
            other => rest.push(other),
        }
    }
    // A failed write is fatal: continuing would mean voting on state we did not save.
    io.store.write(ops)?;
    if let Some((&height, &hash)) = hashes.iter().max_by_key(|(h, _)| **h) {
        io.live.set_head(height, hash);
    }
    for o in rest {
        send_output(replica, o, io, waiters, &hashes)?;
    }
    io.live
        .set_view(replica.view(), replica.mode() == Mode::ViewChange);
    Ok(())
}

/// Carry out one output that depends on nothing unwritten any more.
fn send_output(
    replica: &Replica,
    output: Output,
    io: &CoreIo,
    waiters: &mut Waiters,
    hashes: &HashMap<u64, Hash32>,
) -> Result<(), NodeError> {
    match output {
        Output::Send { to, message } => io.out.send(to, Arc::new(encode(&message))),
        Output::Broadcast(message) => {
            if matches!(&message, PeerMessage::PrePrepare { pre_prepare, .. } if pre_prepare.body.replica == replica.id())
            {
                io.metrics.block_proposed();
            }
            io.out.broadcast(Arc::new(encode(&message)));
        }
        Output::Reply(r) => {
            if let Some(w) = waiters.remove(&(r.client, r.request_id)) {
                io.metrics.request_committed(w.received, w.transactions);
                let block_hash = hashes
                    .get(&r.height)
                    .copied()
                    .or_else(|| io.reader.block(r.height).ok().flatten().map(|b| b.hash()))
                    .unwrap_or_default();
                let _ = w.reply.try_send(ClientReply {
                    request_id: r.request_id,
                    height: r.height,
                    block_hash,
                });
            }
        }
        Output::ReadBlocks {
            to,
            from_height,
            max_blocks,
        } => {
            // A quarter of the frame limit: well inside what the peer accepts.
            let max_bytes = replica.limits().max_message_bytes / 4;
            let blocks = io
                .reader
                .blocks_with_content(from_height, max_blocks, max_bytes)?;
            if !blocks.is_empty() {
                io.out
                    .send(to, Arc::new(encode(&PeerMessage::Blocks(blocks))));
            }
        }
        Output::ViewInstalled { view } => {
            io.metrics.view_installed();
            tracing::info!(view, "new view installed");
        }
        Output::Persist(_) | Output::Commit(_) => {
            debug_assert!(false, "durable outputs are written before the rest");
        }
    }
    Ok(())
}
