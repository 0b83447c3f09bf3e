//! Node start-up and shutdown: load and check the database, restore the replica, start
//! the transport, the application's HTTP surface and the core thread, and stop them all
//! when asked (or when the core stops on its own: fail-stop).

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::sync_channel;
use std::sync::Arc;
use std::time::Duration;

use medchain_pbft::{ChainState, Replica};
use medchain_store::{Reader, Store};
use medchain_types::Verifier;

use crate::app::{Application, NodeHandles};
use crate::batcher::Batcher;
use crate::config::NodeFiles;
use crate::core::{core_loop, CoreIo};
use crate::core_input::{CoreInput, LiveStatus};
use crate::energy::EnergyMeter;
use crate::error::NodeError;
use crate::metrics::Metrics;
use crate::transport;

/// Blocks whose certificates are fully re-verified at start-up (all are hash-checked).
const TAIL_BLOCKS_VERIFIED: u64 = 64;
/// Inputs queued for the core.
const CORE_QUEUE_INPUTS: usize = 65_536;
/// How often the fault switch file is looked for.
const FAULT_SWITCH_POLL_MS: u64 = 100;

/// Check the database before serving from it: every hash link, and every certificate
/// of the last blocks.
pub fn check_database(files: &NodeFiles, reader: &Reader) -> Result<ChainState, NodeError> {
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

/// Run a replica of `app` until `shutdown` resolves.
pub async fn run_node(
    files: NodeFiles,
    app: Arc<dyn Application>,
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<(), NodeError> {
    std::fs::create_dir_all(&files.data_dir)?;
    let store = Store::open_with(&files.db_path(), app.state_machine(&files))?;
    let reader = store.reader()?;
    let chain = check_database(&files, &reader)?;
    let durable = reader.durable_state(files.genesis.hash())?;
    let id = files.id();
    tracing::info!(replica = %id, height = chain.last_executed, view = durable.view, "starting");
    let live = LiveStatus::default();
    live.set_head(chain.last_executed, chain.last_hash);
    live.set_view(durable.view, false);
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

    let (core_tx, core_rx) = sync_channel::<CoreInput>(CORE_QUEUE_INPUTS);
    let (outbound, inbound_bytes) = start_transport(&files, core_tx.clone()).await?;

    let router = app.http(NodeHandles {
        files: &files,
        batcher: start_batcher(&files, &reader, app.as_ref(), core_tx.clone(), &metrics)?,
        status: live.clone(),
        metrics: metrics.clone(),
    })?;
    serve_http(&files, router).await?;

    let io = CoreIo {
        store,
        reader,
        out: outbound,
        live,
        metrics,
        app,
        inbound_bytes,
    };
    run_core(id, replica, core_rx, core_tx, io, shutdown).await
}

/// Listen for peers and start dialling them; returns the outbound side and the counter
/// of peer bytes queued for the core.
async fn start_transport(
    files: &NodeFiles,
    core: crate::core_input::CoreSender,
) -> Result<(transport::Outbound, Arc<AtomicUsize>), NodeError> {
    let id = files.id();
    let isolated = Arc::new(AtomicBool::new(false));
    let stats = Arc::new(transport::TransportStats::default());
    let outbound = transport::start_outbound(
        id,
        &files.genesis,
        &files.key,
        isolated.clone(),
        stats.clone(),
    )?;
    let inbound_bytes = Arc::new(AtomicUsize::new(0));
    let (listener, p2p_addr) = transport::bind(&files.config.p2p_listen).await?;
    let (live, budgets, handshakes) = transport::Inbound::limits_for(&files.genesis);
    tokio::spawn(transport::serve(
        listener,
        Arc::new(transport::Inbound {
            genesis: files.genesis.clone(),
            tls: crate::tls::acceptor(&files.key, &files.genesis)?,
            me: id,
            verifier: Verifier::new(&files.genesis, files.limits()),
            core,
            isolated: isolated.clone(),
            stats,
            redial: outbound.redial(),
            seen: medchain_types::VerifiedFrames::new(transport::SEEN_FRAMES),
            queued_bytes: inbound_bytes.clone(),
            live,
            budgets,
            handshakes,
        }),
    ));
    tokio::spawn(watch_fault_switch(
        files.data_dir.join("FAULT_ISOLATE"),
        isolated,
    ));
    tracing::info!(replica = %id, p2p = %p2p_addr, "listening for peers");
    Ok((outbound, inbound_bytes))
}

/// Serve the application's HTTP surface on the configured address: HTTPS when the
/// config names PEM files, plain HTTP only on a loopback address.
async fn serve_http(files: &NodeFiles, router: axum::Router) -> Result<(), NodeError> {
    let tls = match files.https_files() {
        Some((cert, key)) => Some(
            crate::http_server::https_config(&cert, &key)
                .map_err(|e| NodeError::Http(e.to_string()))?,
        ),
        None => None,
    };
    let http = tokio::net::TcpListener::bind(&files.config.http_listen).await?;
    let http_addr = http.local_addr()?;
    if tls.is_none() && !crate::http_server::plain_http_allowed(&http_addr) {
        return Err(NodeError::Http(format!(
            "refusing to serve plain HTTP on {http_addr}, which is not a loopback address: \
             set https_cert and https_key (PEM files) in {}, or listen on 127.0.0.1",
            files.config_path.display()
        )));
    }
    let scheme = if tls.is_some() { "https" } else { "http" };
    tokio::spawn(crate::http_server::serve(http, router, tls));
    tracing::info!(replica = %files.id(), http = %http_addr, scheme, "listening");
    Ok(())
}

/// Start this node's gateway batcher, continuing after the last request id its client
/// had executed (the PBFT client window starts right after it).
fn start_batcher(
    files: &NodeFiles,
    reader: &Reader,
    app: &dyn Application,
    core: crate::core_input::CoreSender,
    metrics: &Arc<Metrics>,
) -> Result<Batcher, NodeError> {
    let client = files.client_id;
    let last_id = app.last_request_id(reader, client)?;
    Ok(Batcher::start(
        client,
        files.client_key.clone(),
        Verifier::new(&files.genesis, files.limits()),
        core,
        last_id.map_or(1, |i| i + 1),
        app.batch_format(),
        metrics.clone(),
    ))
}

/// Run the core thread until `shutdown` resolves or the core ends on its own.
async fn run_core(
    id: medchain_types::ReplicaId,
    replica: Replica,
    core_rx: std::sync::mpsc::Receiver<CoreInput>,
    core_tx: std::sync::mpsc::SyncSender<CoreInput>,
    io: CoreIo,
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<(), NodeError> {
    // Fail-stop: if the core ends on its own (a failed durable write), the node stops
    // too, instead of serving HTTP for a replica that no longer votes or commits.
    let (core_ended_tx, core_ended) = tokio::sync::oneshot::channel::<()>();
    let core = std::thread::Builder::new()
        .name("pbft-core".into())
        .spawn(move || {
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
        tokio::time::sleep(Duration::from_millis(FAULT_SWITCH_POLL_MS)).await;
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
