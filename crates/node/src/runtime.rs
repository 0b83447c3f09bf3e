//! The core thread and node start-up: load and check the database, restore the replica,
//! start the transport and HTTP, then run `step` in a loop, making every vote and block
//! durable before any message that depends on it leaves, and answering clients only
//! after their block is durable.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use medchain_pbft::{Input, Mode, Output, Replica};
use medchain_store::{Reader, Store, StoreError, WriteOp};
use medchain_types::{encode, ClientId, Hash32, PeerMessage, SignedRequest, Verified, Verifier};
use tokio::sync::mpsc;

use crate::client::ClientReply;
use crate::config::NodeFiles;
use crate::energy::EnergyMeter;
use crate::metrics::{Metrics, RequestResult};
use crate::transport::{self, Outbound, TransportStats};

/// Blocks whose certificates are fully re-verified at start-up (all are hash-checked).
const TAIL_BLOCKS_VERIFIED: u64 = 64;
/// Most clients waiting for replies.
const MAX_WAITING_CLIENTS: usize = 200_000;
/// Inputs queued for the core.
const CORE_QUEUE: usize = 65_536;
/// Most inputs stepped before their outputs are carried out (one durable write for all).
const MAX_INPUTS_PER_WRITE: usize = 256;

/// Something that reaches the core thread.
#[derive(Debug)]
pub enum CoreInput {
    /// A verified peer message and the size of its frame (see `Inbound::queued_bytes`).
    Peer(Verified<PeerMessage>, usize),
    Client(Verified<SignedRequest>, mpsc::Sender<ClientReply>),
    Shutdown,
}

/// Why a node cannot run.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    #[error("storage: {0}")]
    Store(#[from] StoreError),
    #[error("refusing to start: {0}")]
    Corrupt(String),
    #[error("network: {0}")]
    Io(#[from] std::io::Error),
    #[error("API: {0}")]
    Api(String),
}

/// Live figures shared with HTTP.
#[derive(Debug, Default)]
pub struct Shared {
    pub view: AtomicU64,
    pub height: AtomicU64,
    pub in_view_change: AtomicBool,
    pub head_hash: Mutex<Hash32>,
}

fn wall_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Check the database before serving from it: every hash link, and every certificate
/// of the last blocks.
pub fn check_database(
    files: &NodeFiles,
    reader: &Reader,
) -> Result<medchain_pbft::ChainState, NodeError> {
    let chain = reader
        .chain_state(&files.genesis)
        .map_err(|e| NodeError::Corrupt(e.to_string()))?;
    let verifier = Verifier::new(&files.genesis, files.limits());
    let from = chain.last_executed.saturating_sub(TAIL_BLOCKS_VERIFIED) + 1;
    for b in reader.blocks(from, TAIL_BLOCKS_VERIFIED as usize)? {
        verifier.check_block(&b).map_err(|e| {
            NodeError::Corrupt(format!("corrupt database: block {}: {e}", b.height()))
        })?;
    }
    Ok(chain)
}

/// Run a replica until `shutdown` resolves.
pub async fn run_node(
    files: NodeFiles,
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<(), NodeError> {
    std::fs::create_dir_all(&files.data_dir)?;
    let store = Store::open_with(
        &files.db_path(),
        Box::new(medchain_records::Ledger::new(files.genesis.clone())),
    )?;
    let reader = store.reader()?;
    let chain = check_database(&files, &reader)?;
    let durable = reader.durable_state(files.genesis.hash())?;
    let id = files.id();
    tracing::info!(replica = %id, height = chain.last_executed, view = durable.view, "starting");
    let shared = Arc::new(Shared::default());
    shared.height.store(chain.last_executed, Ordering::Relaxed);
    shared.view.store(durable.view, Ordering::Relaxed);
    if let Ok(mut h) = shared.head_hash.lock() {
        *h = chain.last_hash;
    }
    let replica = Replica::restore(
        files.pbft_config(),
        files.key.clone(),
        &files.genesis,
        durable,
        chain,
    );

    let metrics = Arc::new(Metrics::new(
        id,
        files.genesis.replicas.len(),
        EnergyMeter::detect(files.config.energy_watts_per_core),
    ));
    tokio::spawn(sample_every_second(metrics.clone()));

    let isolated = Arc::new(AtomicBool::new(false));
    let stats = Arc::new(TransportStats::default());
    let outbound = transport::start_outbound(
        id,
        &files.genesis,
        &files.key,
        isolated.clone(),
        stats.clone(),
    );
    let (core_tx, core_rx) = sync_channel::<CoreInput>(CORE_QUEUE);
    let inbound_bytes = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let (listener, p2p_addr) = transport::bind(&files.config.p2p_listen).await?;
    tokio::spawn(transport::serve(
        listener,
        Arc::new(transport::Inbound {
            genesis: files.genesis.clone(),
            me: id,
            verifier: Verifier::new(&files.genesis, files.limits()),
            core: core_tx.clone(),
            isolated: isolated.clone(),
            stats: stats.clone(),
            redial: outbound.redial(),
            seen: medchain_types::VerifiedFrames::new(transport::SEEN_FRAMES),
            queued_bytes: inbound_bytes.clone(),
        }),
    ));
    tokio::spawn(watch_fault_switch(
        files.data_dir.join("FAULT_ISOLATE"),
        isolated,
    ));

    let http = tokio::net::TcpListener::bind(&files.config.http_listen).await?;
    let http_addr = http.local_addr()?;
    let app = crate::http::app(crate::http::api_state(
        &files,
        &reader,
        core_tx.clone(),
        shared.clone(),
        metrics.clone(),
    )?);
    tokio::spawn(async move {
        let _ = axum::serve(
            http,
            app.into_make_service_with_connect_info::<std::net::SocketAddr>(),
        )
        .await;
    });
    tracing::info!(replica = %id, p2p = %p2p_addr, http = %http_addr, "listening");

    let core_shared = shared.clone();
    // Fail-stop: if the core ends on its own (a failed durable write), the node stops
    // too, instead of serving HTTP for a replica that no longer votes or commits.
    let (core_ended_tx, core_ended) = tokio::sync::oneshot::channel::<()>();
    let core = std::thread::Builder::new()
        .name("pbft-core".into())
        .spawn(move || {
            let io = CoreIo {
                store,
                reader,
                out: outbound,
                shared: core_shared,
                metrics,
                inbound_bytes,
            };
            let r = core_loop(replica, core_rx, &io);
            if let Err(e) = &r {
                tracing::error!(error = %e, "the replica core stopped");
            }
            let _ = core_ended_tx.send(());
            r
        })?;
    tokio::select! {
        _ = shutdown => tracing::info!(replica = %id, "stopping"),
        _ = core_ended => tracing::error!(replica = %id, "stopping: the core ended"),
    }
    let _ = core_tx.send(CoreInput::Shutdown);
    let result = tokio::task::spawn_blocking(move || core.join())
        .await
        .map_err(|_| NodeError::Corrupt("core thread lost".into()))?;
    match result {
        Ok(r) => r,
        Err(_) => Err(NodeError::Corrupt("core thread panicked".into())),
    }
}

/// The partition switch for fault tests: while the file exists, this replica neither
/// sends to nor hears from its peers.
async fn watch_fault_switch(path: std::path::PathBuf, isolated: Arc<AtomicBool>) {
    loop {
        let now = path.exists();
        if isolated.swap(now, Ordering::Relaxed) != now {
            tracing::warn!(isolated = now, "fault switch");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// One sample a second for the metrics' time series, CPU time and energy.
async fn sample_every_second(metrics: Arc<Metrics>) {
    let mut every = tokio::time::interval(Duration::from_secs(1));
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        every.tick().await;
        metrics.sample();
    }
}

/// Clients waiting for their request's commit, with when the request arrived here.
/// Clients waiting for replies: where to answer, when the request arrived, and how many
/// transactions it carries.
type Waiting = HashMap<(ClientId, u64), (mpsc::Sender<ClientReply>, Instant, usize)>;

/// What the core thread acts on besides the replica: the database, the network, the
/// figures shared with HTTP.
struct CoreIo {
    store: Store,
    reader: Reader,
    out: Outbound,
    shared: Arc<Shared>,
    metrics: Arc<Metrics>,
    /// Bytes of peer frames queued for the core (shared with the transport).
    inbound_bytes: Arc<std::sync::atomic::AtomicUsize>,
}

fn core_loop(
    mut replica: Replica,
    rx: std::sync::mpsc::Receiver<CoreInput>,
    io: &CoreIo,
) -> Result<(), NodeError> {
    let metrics = &io.metrics;
    let mut clients: Waiting = HashMap::new();
    let mut last_now = 0u64;
    loop {
        let now = wall_ms().max(last_now);
        last_now = now;
        let wait = replica.next_deadline_ms().saturating_sub(now).min(1_000);
        let first = match rx.recv_timeout(Duration::from_millis(wait)) {
            Ok(input) => Some(input),
            Err(RecvTimeoutError::Timeout) => None,
            Err(RecvTimeoutError::Disconnected) => return Ok(()),
        };
        let Some(mut outputs) = take_input(&mut replica, first, io, &mut clients) else {
            return Ok(());
        };
        // Everything else already queued is stepped too, and all of it is made durable
        // in one write: under load one fsync then covers many votes and blocks instead
        // of one each, and nothing leaves before that write (see `carry_out`).
        for _ in 1..MAX_INPUTS_PER_WRITE {
            let Ok(input) = rx.try_recv() else { break };
            let Some(more) = take_input(&mut replica, Some(input), io, &mut clients) else {
                return Ok(());
            };
            outputs.extend(more);
        }
        carry_out(&replica, outputs, io, &mut clients)?;
        metrics.core_state(
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
    clients: &mut Waiting,
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
            if clients.len() >= MAX_WAITING_CLIENTS {
                // Forget waiters whose connection is gone before refusing new ones.
                let before = clients.len();
                clients.retain(|_, (tx, ..)| !tx.is_closed());
                for _ in clients.len()..before {
                    metrics.request_failed(RequestResult::Abandoned);
                }
            }
            if clients.len() < MAX_WAITING_CLIENTS {
                let n = medchain_records::Batch::count_in(&r.request.payload);
                clients.insert(r.key(), (reply, Instant::now(), n));
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
    clients: &mut Waiting,
) -> Result<(), NodeError> {
    let CoreIo {
        store,
        reader,
        out,
        shared,
        metrics,
        ..
    } = io;
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
                    .map(|r| medchain_records::Batch::count_in(&r.request.payload))
                    .sum();
                metrics.block_committed(records, b.header.proposer);
                hashes.insert(b.height(), b.hash());
                ops.push(WriteOp::Block(b));
            }
            // A request for blocks promises nothing and depends on nothing unwritten:
            // it leaves now, so a catching-up replica fetches the next range while it
            // writes this one.
            Output::Send {
                to,
                message: message @ PeerMessage::FetchBlocks(_),
            } => out.send(to, Arc::new(encode(&message))),
            other => rest.push(other),
        }
    }
    // A failed write is fatal: continuing would mean voting on state we did not save.
    store.write(ops)?;
    if let Some((&height, &hash)) = hashes.iter().max_by_key(|(h, _)| **h) {
        shared.height.store(height, Ordering::Relaxed);
        if let Ok(mut h) = shared.head_hash.lock() {
            *h = hash;
        }
    }
    for o in rest {
        match o {
            Output::Send { to, message } => out.send(to, Arc::new(encode(&message))),
            Output::Broadcast(message) => {
                if matches!(&message, PeerMessage::PrePrepare { pre_prepare, .. } if pre_prepare.body.replica == replica.id())
                {
                    metrics.block_proposed();
                }
                out.broadcast(Arc::new(encode(&message)));
            }
            Output::Reply(r) => {
                if let Some((tx, received, n)) = clients.remove(&(r.client, r.request_id)) {
                    metrics.request_committed(received, n);
                    let block_hash = hashes
                        .get(&r.height)
                        .copied()
                        .or_else(|| reader.block(r.height).ok().flatten().map(|b| b.hash()))
                        .unwrap_or_default();
                    let _ = tx.try_send(ClientReply {
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
                let blocks = reader.blocks_with_content(from_height, max_blocks, max_bytes)?;
                if !blocks.is_empty() {
                    out.send(to, Arc::new(encode(&PeerMessage::Blocks(blocks))));
                }
            }
            Output::ViewInstalled { view } => {
                metrics.view_installed();
                tracing::info!(view, "new view installed");
            }
            Output::Persist(_) | Output::Commit(_) => {}
        }
    }
    shared.view.store(replica.view(), Ordering::Relaxed);
    shared
        .in_view_change
        .store(replica.mode() == Mode::ViewChange, Ordering::Relaxed);
    Ok(())
}
