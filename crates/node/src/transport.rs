//! Peer transport: one outbound connection per peer (reconnecting with exponential
//! backoff, fed by a bounded queue so that a slow or dead peer costs at most the queue),
//! and a listener that accepts authenticated replicas and clients. Incoming messages are
//! decoded and signature-checked on tokio's worker threads, off the core's thread.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::SyncSender;
use std::sync::Arc;
use std::time::{Duration, Instant};

use medchain_types::{
    decode, encode, ClientId, Genesis, KeyPair, ReplicaId, ReplicaInfo, SignedRequest,
    VerifiedFrames, Verifier,
};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, Notify};

use crate::client::ClientReply;
use crate::core_input::CoreInput;
use crate::frame::{read_frame, write_frame};
use crate::handshake::{accept, dial, Role};

/// Frames queued per peer before new ones are dropped (PBFT retransmits what matters).
pub const PEER_QUEUE_FRAMES: usize = 8192;
/// Bytes queued per peer before new frames are dropped. Counting frames alone is not a
/// bound: view changes and batches of clinical content make frames of megabytes, and a
/// peer that reads slowly during a view-change storm once let a replica grow to 9 GB.
/// A frame larger than this still goes out when nothing else is queued.
pub const PEER_QUEUE_BYTES: usize = 64 << 20;
/// Frames older than this are dropped instead of sent. A peer that was down for a while
/// would otherwise get the whole queue of stale votes and proposals on reconnecting
/// (up to `PEER_QUEUE_BYTES` of them, all to be verified and mostly ignored); by now
/// PBFT's retransmission or state transfer has taken over from any of them that
/// still matter.
pub const STALE_FRAME_AGE: Duration = Duration::from_secs(2);
/// Client requests queued per connection.
pub const CLIENT_QUEUE_FRAMES: usize = 4096;
/// Largest client request frame.
pub const CLIENT_FRAME_MAX_BYTES: usize = 128 << 10;

/// Counters for metrics and tests.
#[derive(Debug, Default)]
pub struct TransportStats {
    pub rejected_frames: AtomicU64,
    pub dropped_sends: AtomicU64,
}

/// A frame shared by every peer queue it is broadcast to.
pub type Frame = Arc<Vec<u8>>;

/// A frame and when it was queued.
type Queued = (Instant, Frame);

/// One peer's send queue and the bytes waiting in it.
type PeerQueue = (mpsc::Sender<Queued>, Arc<AtomicUsize>);

/// Wakes a peer's writer out of its reconnect backoff.
#[derive(Debug, Clone, Default)]
pub struct Redial(Arc<Vec<Arc<Notify>>>);

impl Redial {
    /// Replica `peer` just proved itself on an inbound connection, so it is up: dial it
    /// now. Its writer may be in a backoff of up to two seconds from while it was down,
    /// and everything we send it (the answer to its STATUS, the blocks it fetches)
    /// would wait that long.
    pub fn wake(&self, peer: ReplicaId) {
        if let Some(n) = self.0.get(peer.index()) {
            n.notify_one();
        }
    }
}

/// Sending side of the transport, used by the core thread.
#[derive(Debug, Clone)]
pub struct Outbound {
    me: ReplicaId,
    peers: Arc<Vec<Option<PeerQueue>>>,
    redial: Redial,
    pub isolated: Arc<AtomicBool>,
    pub stats: Arc<TransportStats>,
}

impl Outbound {
    pub fn send(&self, to: ReplicaId, bytes: Arc<Vec<u8>>) {
        if to == self.me || self.isolated.load(Ordering::Relaxed) {
            return;
        }
        if let Some(Some((tx, queued))) = self.peers.get(to.index()) {
            let len = bytes.len();
            let before = queued.fetch_add(len, Ordering::Relaxed);
            if (before > 0 && before + len > PEER_QUEUE_BYTES)
                || tx.try_send((Instant::now(), bytes)).is_err()
            {
                queued.fetch_sub(len, Ordering::Relaxed);
                self.stats.dropped_sends.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// The handle the listener uses to cut a peer's reconnect backoff short.
    pub fn redial(&self) -> Redial {
        self.redial.clone()
    }

    pub fn broadcast(&self, bytes: Arc<Vec<u8>>) {
        for i in 0..self.peers.len() {
            self.send(ReplicaId(i as u16), bytes.clone());
        }
    }
}

/// Start one writer task per peer; returns the handle the core uses to send.
pub fn start_outbound(
    me: ReplicaId,
    genesis: &Genesis,
    key: &KeyPair,
    isolated: Arc<AtomicBool>,
    stats: Arc<TransportStats>,
) -> Outbound {
    let genesis_hash = genesis.hash();
    let mut peers = Vec::new();
    let wakers: Vec<Arc<Notify>> = genesis
        .replicas
        .iter()
        .map(|_| Arc::new(Notify::new()))
        .collect();
    for info in &genesis.replicas {
        if info.id == me {
            peers.push(None);
            continue;
        }
        let redial = wakers[info.id.index()].clone();
        let (tx, rx) = mpsc::channel(PEER_QUEUE_FRAMES);
        let queued = Arc::new(AtomicUsize::new(0));
        peers.push(Some((tx, queued.clone())));
        tokio::spawn(peer_writer(
            PeerLink {
                me,
                peer: info.clone(),
                key: key.clone(),
                genesis: genesis_hash,
                stats: stats.clone(),
                redial,
            },
            rx,
            queued,
        ));
    }
    Outbound {
        me,
        peers: Arc::new(peers),
        redial: Redial(Arc::new(wakers)),
        isolated,
        stats,
    }
}

/// Who a peer writer dials and how it proves itself.
struct PeerLink {
    me: ReplicaId,
    peer: ReplicaInfo,
    key: KeyPair,
    genesis: medchain_types::Hash32,
    stats: Arc<TransportStats>,
    redial: Arc<Notify>,
}

async fn peer_writer(link: PeerLink, mut rx: mpsc::Receiver<Queued>, queued: Arc<AtomicUsize>) {
    let PeerLink {
        me,
        peer:
            ReplicaInfo {
                id: peer,
                peer_addr: addr,
                ..
            },
        key,
        genesis,
        stats,
        redial,
    } = link;
    let mut backoff_ms = 50u64;
    loop {
        let connected = async {
            let mut s = TcpStream::connect(&addr).await?;
            s.set_nodelay(true)?;
            tokio::time::timeout(
                Duration::from_secs(5),
                dial(&mut s, Role::Replica(me), &key, genesis, peer),
            )
            .await
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "handshake"))??;
            Ok::<_, std::io::Error>(s)
        }
        .await;
        match connected {
            Ok(mut s) => {
                backoff_ms = 50;
                tracing::debug!(%peer, "connected");
                while let Some((at, frame)) = rx.recv().await {
                    queued.fetch_sub(frame.len(), Ordering::Relaxed);
                    if at.elapsed() > STALE_FRAME_AGE {
                        stats.dropped_sends.fetch_add(1, Ordering::Relaxed);
                        continue;
                    }
                    if write_frame(&mut s, &frame).await.is_err() {
                        break;
                    }
                }
                if rx.is_closed() {
                    return;
                }
            }
            Err(e) => {
                tracing::trace!(%peer, error = %e, "connect failed");
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_millis(backoff_ms)) => {
                        backoff_ms = (backoff_ms * 2).min(2_000);
                    }
                    _ = redial.notified() => backoff_ms = 50,
                }
            }
        }
    }
}

/// What every inbound connection needs, shared by all of them.
#[derive(Debug)]
pub struct Inbound {
    pub genesis: Genesis,
    pub me: ReplicaId,
    pub verifier: Verifier,
    pub core: SyncSender<CoreInput>,
    pub isolated: Arc<AtomicBool>,
    pub stats: Arc<TransportStats>,
    /// Wakes our writer to a peer that has just connected to us.
    pub redial: Redial,
    /// Retransmitted frames that already passed verification.
    pub seen: VerifiedFrames,
    /// Bytes of peer frames waiting for the core: a core busy with a slow disk must not
    /// let peers' retransmissions pile up in memory (the queue's count bound alone
    /// allows gigabytes of megabyte frames).
    pub queued_bytes: Arc<AtomicUsize>,
}

/// Bytes of peer frames queued for the core before new ones are dropped.
pub const CORE_QUEUE_BYTES: usize = 256 << 20;

/// Frames remembered as verified (32 bytes each, about 1 MB in all).
pub const SEEN_FRAMES: usize = 16_384;

/// Accept connections on the peer port until the process stops.
pub async fn serve(listener: TcpListener, ctx: Arc<Inbound>) {
    loop {
        let Ok((stream, addr)) = listener.accept().await else {
            continue;
        };
        let ctx = ctx.clone();
        tokio::spawn(async move {
            if let Err(e) = handle_connection(stream, &ctx).await {
                tracing::debug!(%addr, error = %e, "connection closed");
            }
        });
    }
}

async fn handle_connection(mut stream: TcpStream, ctx: &Inbound) -> std::io::Result<()> {
    stream.set_nodelay(true)?;
    let role = tokio::time::timeout(
        Duration::from_secs(5),
        accept(&mut stream, &ctx.genesis, ctx.me),
    )
    .await
    .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "handshake"))??;
    match role {
        Role::Replica(peer) => serve_replica(stream, ctx, peer).await,
        Role::Client(client) => serve_client(stream, ctx, client).await,
    }
}

/// Reads an authenticated replica's frames until the connection fails, passing those
/// that verify to the core.
async fn serve_replica(
    mut stream: TcpStream,
    ctx: &Inbound,
    peer: ReplicaId,
) -> std::io::Result<()> {
    let Inbound {
        verifier,
        core,
        isolated,
        stats,
        redial,
        seen,
        queued_bytes,
        ..
    } = ctx;
    let max = verifier.limits().max_message_bytes;
    redial.wake(peer);
    loop {
        let frame = read_frame(&mut stream, max).await?;
        if isolated.load(Ordering::Relaxed) {
            continue;
        }
        match verifier.decode_message_cached(&frame, seen) {
            Ok(m) => {
                let len = frame.len();
                let before = queued_bytes.fetch_add(len, Ordering::Relaxed);
                if (before > 0 && before + len > CORE_QUEUE_BYTES)
                    || core.try_send(CoreInput::Peer(m, len)).is_err()
                {
                    queued_bytes.fetch_sub(len, Ordering::Relaxed);
                    stats.dropped_sends.fetch_add(1, Ordering::Relaxed);
                }
            }
            Err(e) => {
                stats.rejected_frames.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(error = %e, "rejected a peer frame");
            }
        }
    }
}

/// Reads an authenticated client's requests until the connection fails, passing those
/// that verify to the core; replies go back through a writer task of their own.
async fn serve_client(stream: TcpStream, ctx: &Inbound, client: ClientId) -> std::io::Result<()> {
    let Inbound {
        verifier,
        core,
        stats,
        ..
    } = ctx;
    let (mut rd, mut wr) = stream.into_split();
    let (tx, mut rx) = mpsc::channel::<ClientReply>(CLIENT_QUEUE_FRAMES);
    tokio::spawn(async move {
        while let Some(reply) = rx.recv().await {
            if write_frame(&mut wr, &encode(&reply)).await.is_err() {
                break;
            }
        }
    });
    loop {
        let frame = read_frame(&mut rd, CLIENT_FRAME_MAX_BYTES).await?;
        let request: SignedRequest = match decode(&frame, CLIENT_FRAME_MAX_BYTES) {
            Ok(r) => r,
            Err(_) => {
                stats.rejected_frames.fetch_add(1, Ordering::Relaxed);
                continue;
            }
        };
        // A client may only submit requests in its own name.
        if request.request.client != client {
            stats.rejected_frames.fetch_add(1, Ordering::Relaxed);
            continue;
        }
        match verifier.verify_request(request) {
            Ok(v) => {
                let _ = core.try_send(CoreInput::Client(v, tx.clone()));
            }
            Err(_) => {
                stats.rejected_frames.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

/// Bind the peer port.
pub async fn bind(addr: &str) -> std::io::Result<(TcpListener, SocketAddr)> {
    let l = TcpListener::bind(addr).await?;
    let a = l.local_addr()?;
    Ok((l, a))
}
